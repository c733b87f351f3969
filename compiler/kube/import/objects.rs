//! ConfigMaps and Secrets as a pod takes them on Kubernetes: a key as a variable
//! (`configMapKeyRef`, `secretKeyRef`), every key as variables (`envFrom`), every key (or the
//! `items` chosen) as files under a mount, one key as a file (`subPath`).
//!
//! A ConfigMap in the pod's file or given with `--configmap` is configuration: a variable's
//! value is written as it is and a file's text becomes a config item of the tree. A Secret's
//! values never enter the build: each key of it the pod takes is a podc secret read at launch
//! from `<dir>/<key>` on the host, where `dir` is the one given with `--secret`, else
//! [`super::SECRETS_DIR`]`/<name>`. A ConfigMap podc was not given is read the same way, from
//! [`super::CONFIG_MAPS_DIR`]`/<name>`, as config items. A mount of every key of such an object
//! whose keys podc does not know binds its directory, read-only.
//!
//! A pod written by `podc kube` (it has podc's annotations) names its config items and secrets
//! in `podc/pod` instead: its references are read the way `podc kube` wrote them.

use serde_json::{json, Value};

use super::convert::{problem, Convert, ItemVolume};
use super::doc::{EnvFromSource, KeyRef};
use super::stream::{config_map_dir, secret_dir};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::manifest::ItemKind;
use crate::parse::source::join_key;

/// A podc item name for a key of an object: `<object>-<key>` in podc's name rule (lowercase
/// letters, digits and single `-`), at most 63 characters.
pub(super) fn item_name(object: &str, key: &str) -> String {
    let mut name = String::new();
    for c in format!("{object}-{key}").chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

impl Convert<'_> {
    /// A variable's value from a key of a ConfigMap or Secret; `None` for an optional key
    /// that is missing.
    pub(super) fn key_value(
        &mut self,
        kind: ItemKind,
        r: &KeyRef,
        at: &str,
    ) -> Result<Option<Value>, Diagnostic> {
        let optional = r.optional == Some(true);
        let source = self.source(kind, &r.name, &join_key(at, "name"));
        match source.keys() {
            Some(keys) if !keys.contains(&r.key) => {
                if optional {
                    return Ok(None);
                }
                Err(problem(
                    self.doc,
                    &join_key(at, "key"),
                    format!("{} `{}` has no key `{}`", kind_noun(kind), r.name, r.key),
                )
                .help(keys_help(keys.iter())))
            }
            _ => match &source {
                // Configuration at hand is the variable's value as it is.
                Source::Data(data) => Ok(Some(json!(data[&r.key]))),
                Source::Dir { .. } => {
                    let item = self.file_item(kind, &r.name, &r.key, &source);
                    Ok(Some(json!({ kind.name(): item })))
                }
            },
        }
    }

    /// `envFrom`: every key of a ConfigMap or Secret that is a variable name, with the prefix.
    pub(super) fn env_from_all(
        &mut self,
        from: &EnvFromSource,
        at: &str,
    ) -> Result<Vec<(String, Value)>, Diagnostic> {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, r, field) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), None) => (ItemKind::Config, r, "configMapRef"),
            (None, Some(r)) => (ItemKind::Secret, r, "secretRef"),
            _ => {
                return Err(problem(
                    self.doc,
                    at,
                    "an `envFrom` entry needs exactly one of `configMapRef` and `secretRef`",
                ))
            }
        };
        let at = join_key(&join_key(at, field), "name");
        // A pod by `podc kube`: `envFrom` names the item of podc/pod as it is.
        if self.legacy {
            self.env_dirs.push(env_dir_entry(kind, &r.name, &prefix));
            return Ok(Vec::new());
        }
        let source = self.source(kind, &r.name, &at);
        let Some(keys) = source.keys() else {
            if r.optional == Some(true) {
                return Ok(Vec::new());
            }
            // Every file of its directory, read at launch: a `dir` item of the pod.
            let Source::Dir { dir, .. } = &source else {
                unreachable!("data has keys")
            };
            let name = item_name(&r.name, "");
            let item = json!({"name": name, "dir": dir});
            let items = match kind {
                ItemKind::Config => &mut self.config_items,
                ItemKind::Secret => &mut self.secret_items,
            };
            items.entry(name.clone()).or_insert(item);
            self.env_dirs.push(env_dir_entry(kind, &name, &prefix));
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for k in keys {
            // Kubernetes skips a key that is not a variable name, too.
            let name = format!("{prefix}{k}");
            if !crate::systemd::escape::is_env_name(&name) {
                continue;
            }
            let value = match &source {
                Source::Data(data) => json!(data[&k]),
                Source::Dir { .. } => {
                    json!({ kind.name(): self.file_item(kind, &r.name, &k, &source) })
                }
            };
            out.push((name, value));
        }
        Ok(out)
    }

    /// The mounts a mount of a ConfigMap or Secret volume makes at `path`: a file per key (or
    /// per item chosen) under it, or the one key at `path` itself (`subPath`), or the object's
    /// directory on the host when podc does not know its keys.
    pub(super) fn item_mounts(
        &mut self,
        v: &ItemVolume,
        path: &str,
        sub_path: Option<&str>,
        at: &str,
        shared: bool,
    ) -> Result<Vec<Value>, Diagnostic> {
        let source = self.source(v.kind, &v.object, &join_key(at, "name"));
        // Every key taken, with the name of its file under the mount.
        let files: Vec<(String, String)> = match (&v.items, source.keys(), sub_path) {
            (Some(items), _, _) => items.clone(),
            (None, Some(keys), _) => keys.into_iter().map(|k| (k.clone(), k)).collect(),
            (None, None, Some(sub)) => vec![(sub.to_string(), sub.to_string())],
            // Its directory can be the mount only when it is the mount's one source.
            (None, None, None) if shared => {
                return Err(self.unknown_keys(v.kind, &v.object, &join_key(at, "name")))
            }
            (None, None, None) => {
                let Source::Dir { dir, .. } = &source else {
                    unreachable!("data has keys")
                };
                let volume = item_name(v.kind.name(), &v.object);
                self.dir_volumes.entry(volume.clone()).or_insert_with(
                    || json!({"name": volume, "kind": "host", "source": dir, "readOnly": true}),
                );
                return Ok(vec![
                    json!({"volume": volume, "path": path, "readOnly": true}),
                ]);
            }
        };
        let known = source.keys();
        let mut mounts = Vec::new();
        for (key, file) in files {
            let target = match sub_path {
                Some(sub) if sub == file => path.to_string(),
                Some(_) => continue,
                None => format!("{}/{file}", path.trim_end_matches('/')),
            };
            if known.as_ref().is_some_and(|k| !k.contains(&key)) {
                if v.optional {
                    continue;
                }
                return Err(problem(
                    self.doc,
                    at,
                    format!("{} `{}` has no key `{key}`", kind_noun(v.kind), v.object),
                ));
            }
            let item = self.file_item(v.kind, &v.object, &key, &source);
            mounts.push(json!({ v.kind.name(): item, "path": target }));
        }
        if let (Some(sub), true, false) = (sub_path, mounts.is_empty(), v.optional) {
            return Err(problem(
                self.doc,
                &join_key(at, "subPath"),
                format!("`{sub}` is no key of {} `{}`", kind_noun(v.kind), v.object),
            ));
        }
        Ok(mounts)
    }

    /// Whether podc does not know the keys of the ConfigMap or Secret `name` (it reads its
    /// directory at launch), as [`Self::source`] finds it.
    pub(super) fn keys_unknown(&self, kind: ItemKind, name: &str) -> bool {
        match kind {
            ItemKind::Config => {
                !self.local_maps.contains_key(name) && !self.objects.config_maps.contains_key(name)
            }
            ItemKind::Secret => self
                .objects
                .secrets
                .get(name)
                .is_none_or(|s| s.keys.is_empty()),
        }
    }

    /// The `dir` item of every key of a ConfigMap or Secret whose keys podc does not know (its
    /// directory, read at launch), made once: its name.
    pub(super) fn dir_item(&mut self, kind: ItemKind, object: &str, at: &str) -> String {
        let dir = match self.source(kind, object, at) {
            Source::Dir { dir, .. } => dir,
            Source::Data(_) => unreachable!("keys_unknown said so"),
        };
        let name = item_name(object, "");
        let items = match kind {
            ItemKind::Config => &mut self.config_items,
            ItemKind::Secret => &mut self.secret_items,
        };
        items
            .entry(name.clone())
            .or_insert(json!({"name": name, "dir": dir}));
        name
    }

    /// Where the keys of a ConfigMap or Secret come from; an object podc was not given is
    /// read from its directory on the host, with a warning (once).
    fn source(&mut self, kind: ItemKind, name: &str, at: &str) -> Source {
        match kind {
            ItemKind::Config => {
                if let Some(m) = self.local_maps.get(name) {
                    return Source::Data(m.data.clone());
                }
                if let Some(m) = self.objects.config_maps.get(name) {
                    return Source::Data(m.data.clone());
                }
            }
            ItemKind::Secret => {
                if let Some(s) = self.objects.secrets.get(name) {
                    let keys = (!s.keys.is_empty()).then(|| s.keys.clone());
                    return Source::Dir {
                        dir: s.dir.clone(),
                        keys,
                    };
                }
            }
        }
        let (dir, code, flag) = match kind {
            ItemKind::Config => (
                config_map_dir(name),
                codes::KUBE_CONFIG_FILES,
                "--configmap",
            ),
            ItemKind::Secret => (secret_dir(name), codes::KUBE_SECRET_FILES, "--secret"),
        };
        if self.warned.insert((kind, name.to_string())) {
            self.warnings.push(
                Diagnostic::new(
                    code,
                    format!(
                        "{} `{name}` is not in this file: podc reads its keys from files in {dir} at launch",
                        kind_noun(kind)
                    ),
                )
                .at(at, self.doc.value(at))
                .help(format!(
                    "write each key's value to {dir}/<key> on the host, put the {} in the file, or give it with `{flag}`",
                    kind_noun(kind)
                )),
            );
        }
        Source::Dir { dir, keys: None }
    }

    fn unknown_keys(&self, kind: ItemKind, name: &str, at: &str) -> Diagnostic {
        let flag = match kind {
            ItemKind::Config => "--configmap",
            ItemKind::Secret => "--secret",
        };
        problem(
            self.doc,
            at,
            format!(
                "podc needs the keys of {} `{name}` to take all of them",
                kind_noun(kind)
            ),
        )
        .help(format!(
            "put the {} in the file, or give its directory with `{flag}` (one file per key)",
            kind_noun(kind)
        ))
    }

    /// The config item or secret of a key of an object, made once; its name.
    fn file_item(&mut self, kind: ItemKind, object: &str, key: &str, source: &Source) -> String {
        let name = item_name(object, key);
        let host = self.host_keys.get(&(object.to_string(), key.to_string()));
        let item = match (source, host) {
            // A number counted on the host at launch.
            (Source::Data(_), Some(host)) => {
                let mut item = host.clone();
                item["name"] = json!(name);
                item
            }
            (Source::Data(data), None) => json!({"name": name, "text": data[key]}),
            (Source::Dir { dir, .. }, _) => json!({"name": name, "file": format!("{dir}/{key}")}),
        };
        let items = match kind {
            ItemKind::Config => &mut self.config_items,
            ItemKind::Secret => &mut self.secret_items,
        };
        items.entry(name.clone()).or_insert(item);
        name
    }
}

/// Where an object's keys come from.
enum Source {
    /// A ConfigMap's data, at hand.
    Data(std::collections::BTreeMap<String, String>),
    /// Files of a directory on the host, read at launch; its keys if podc knows them.
    Dir {
        dir: String,
        keys: Option<std::collections::BTreeSet<String>>,
    },
}

impl Source {
    fn keys(&self) -> Option<Vec<String>> {
        match self {
            Source::Data(d) => Some(d.keys().cloned().collect()),
            Source::Dir { keys, .. } => keys.as_ref().map(|k| k.iter().cloned().collect()),
        }
    }
}

/// An `environmentFrom` entry: every key of the item `name`, with the prefix if any.
fn env_dir_entry(kind: ItemKind, name: &str, prefix: &str) -> Value {
    let mut entry = json!({ kind.name(): name });
    if !prefix.is_empty() {
        entry["prefix"] = json!(prefix);
    }
    entry
}

fn kind_noun(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Config => "ConfigMap",
        ItemKind::Secret => "Secret",
    }
}

fn keys_help<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    if keys.is_empty() {
        "it has no keys".into()
    } else {
        format!("its keys are `{}`", keys.join("`, `"))
    }
}
