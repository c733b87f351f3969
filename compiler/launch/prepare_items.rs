//! The item steps of a launch being prepared: config items and secrets as credentials and
//! variables, and the numbers of the host a `host` item counts.

use super::*;

impl Prep<'_> {
    /// A `host` config item's number, counted now, with where it was counted; `None` for any
    /// other item. A host that does not say stops the launch, naming the first app.
    pub(super) fn counted(
        &self,
        pod: &str,
        apps: &[String],
        kind: crate::manifest::ItemKind,
        name: &str,
        host: Option<crate::manifest::HostResource>,
        divisor: Option<u64>,
    ) -> Result<Option<(PathBuf, String)>, LaunchError> {
        let (Some(resource), Some(divisor)) = (host, divisor) else {
            return Ok(None);
        };
        let (from, n) = self.host.resources.count(resource, divisor, self.tree);
        n.map(|n| Some((from.clone(), n))).map_err(|problem| {
            LaunchError::Item(Box::new(ItemProblem {
                pod: pod.to_string(),
                app: apps.first().cloned().unwrap_or_default(),
                kind: kind.name(),
                name: name.to_string(),
                path: from,
                problem,
            }))
        })
    }

    /// An app's variable from a config item or secret (its `key`, or the whole file).
    pub(super) fn env(
        &mut self,
        app: &str,
        kind: crate::manifest::ItemKind,
        name: &str,
        source: Option<&str>,
        counted: Option<(PathBuf, String)>,
        taken: Taken,
    ) {
        let (path, counted) = match counted {
            Some((from, n)) => (from, Some(n)),
            None => (item_path(self.tree, name, source), None),
        };
        self.items.push(ItemUse {
            app: app.to_string(),
            kind,
            name: name.to_string(),
            path,
            counted,
            taken,
        });
    }

    /// Every key of a config item or secret as an app's variables: the files of a directory,
    /// else the lines of a file (a config item's text: the tree's file).
    pub(super) fn env_all(&mut self, step: &Step) {
        let Step::EnvAll {
            app,
            kind,
            name,
            source,
            dir,
            prefix,
            given,
        } = step
        else {
            return;
        };
        let (path, is_dir) = match dir {
            Some(d) => (PathBuf::from(d), true),
            None => (item_path(self.tree, name, source.as_deref()), false),
        };
        self.items.push(ItemUse {
            app: app.clone(),
            kind: *kind,
            name: name.clone(),
            path: path.clone(),
            counted: None,
            taken: Taken::Every(EnvEvery {
                kind: *kind,
                name: name.clone(),
                path,
                dir: is_dir,
                prefix: prefix.clone(),
                given: given.clone(),
            }),
        });
    }

    /// A config item or secret the apps `apps` take as a file: an nspawn credential.
    pub(super) fn credential(
        &mut self,
        kind: crate::manifest::ItemKind,
        name: &str,
        source: Option<&str>,
        counted: Option<(PathBuf, String)>,
        apps: &[String],
    ) {
        let (path, counted) = match counted {
            Some((from, n)) => {
                // A number, not secret: its value is the flag's.
                self.nspawn_mounts.push(set_credential(kind, name, &n));
                (from, Some(n))
            }
            None => {
                let path = item_path(self.tree, name, source);
                self.nspawn_mounts.push(load_credential(kind, name, &path));
                (path, None)
            }
        };
        self.items.extend(apps.iter().map(|app| ItemUse {
            app: app.clone(),
            kind,
            name: name.to_string(),
            path: path.clone(),
            counted: counted.clone(),
            taken: Taken::File,
        }));
    }
}
