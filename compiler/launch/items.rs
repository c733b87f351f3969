//! Config items and secrets at launch: where each is read (a host file, or a config item's
//! text in the tree), the nspawn flag that passes a file into the pod as a credential, the
//! environment files the launcher writes on a tmpfs of its own, and the checks that stop a
//! launch before anything starts when one cannot be read.
//!
//! Architecture invariant: a value read here goes only into the tmpfs environment file and
//! nowhere else: not into an [`Action`]'s text (`--dry-run`), not into an error message (which
//! names the pod, the app, the item, its file and a line number at most), not into the tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::action::*;
use crate::manifest::ItemKind;
use crate::systemd::escape;
use crate::tree::layout::{config_text_file, credential_id, ENV_DIR};

/// The most bytes of credentials systemd passes to one unit (systemd.exec(5)).
pub const MAX_CREDENTIAL_BYTES: u64 = 1 << 20;

/// The file a plan's item is read from.
pub(super) fn item_path(tree: &Path, name: &str, source: Option<&str>) -> PathBuf {
    match source {
        Some(s) => PathBuf::from(s),
        None => tree.join(config_text_file(name)),
    }
}

/// nspawn's flag that passes the item into the pod as its system credential.
pub(super) fn load_credential(kind: ItemKind, name: &str, path: &Path) -> String {
    format!(
        "--load-credential={}:{}",
        credential_id(kind.name(), name),
        path.display()
    )
}

/// The actions that give apps their variables from items: a tmpfs at the pod's
/// `/etc/podc/env` and one file per app on it.
pub(super) fn env_actions(tree: &Path, pod: &str, uses: &[ItemUse]) -> Vec<Action> {
    let mut by_app: BTreeMap<&str, Vec<EnvSource>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for u in uses {
        if let Some((variable, key)) = &u.variable {
            if !order.contains(&u.app.as_str()) {
                order.push(&u.app);
            }
            by_app.entry(&u.app).or_default().push(EnvSource {
                variable: variable.clone(),
                kind: u.kind,
                name: u.name.clone(),
                path: u.path.clone(),
                key: key.clone(),
            });
        }
    }
    if order.is_empty() {
        return Vec::new();
    }
    let dir = tree.join(ENV_DIR);
    let mut actions = vec![Action::Mkdir(dir.clone()), Action::Tmpfs(dir.clone())];
    for app in order {
        actions.push(Action::Env {
            pod: pod.to_string(),
            app: app.to_string(),
            path: dir.join(app),
            vars: by_app.remove(app).unwrap_or_default(),
        });
    }
    actions
}

/// The value of a variable from a file's bytes: the whole file without one final line break,
/// or the value of the last `KEY=VALUE` line with this key (lines split at `\n`; blanks
/// around KEY ignored; VALUE everything after the first `=`, verbatim; other lines, such as
/// comments, ignored). The error never shows the file's text.
pub fn env_value(bytes: &[u8], key: Option<&str>, variable: &str) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 text (at byte {}), which an environment file must be",
            e.valid_up_to()
        )
    })?;
    let value = match key {
        None => text.strip_suffix('\n').unwrap_or(text),
        Some(key) => text
            .rsplit('\n')
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim_matches([' ', '\t']) == key)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("has no line `{key}=...`"))?,
    };
    if let Some(problem) = escape::env_file_problem(value) {
        return Err(format!("the value for {variable} holds {problem}"));
    }
    if variable.len() + 1 + value.len() >= escape::MAX_ARG_STRLEN {
        return Err(format!(
            "the value for {variable} has {} bytes; the kernel passes at most {} bytes per environment entry",
            value.len(),
            escape::MAX_ARG_STRLEN - 1
        ));
    }
    Ok(value.to_string())
}

/// An error about one app's item.
fn item_error(
    pod: &str,
    app: &str,
    kind: ItemKind,
    name: &str,
    path: &Path,
    problem: String,
) -> LaunchError {
    LaunchError::Item(Box::new(ItemProblem {
        pod: pod.to_string(),
        app: app.to_string(),
        kind: kind.name(),
        name: name.to_string(),
        path: path.to_path_buf(),
        problem,
    }))
}

/// Every problem with the launch's items: each file must exist; with `read` (as root, at a
/// real launch) each is read, every variable's value found and valid, and each app's files
/// within what systemd passes.
pub fn check_items(launch: &Launch, read: bool) -> Vec<LaunchError> {
    let pod = &launch.plan.pod;
    let mut problems = Vec::new();
    let mut cache: BTreeMap<&Path, Result<Vec<u8>, String>> = BTreeMap::new();
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for u in &launch.items {
        let fail = |problem: String| item_error(pod, &u.app, u.kind, &u.name, &u.path, problem);
        if !read {
            if let Err(e) = fs::metadata(&u.path) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    problems.push(fail(format!("cannot read it: {e}")));
                }
            }
            continue;
        }
        let read = cache
            .entry(&u.path)
            .or_insert_with(|| fs::read(&u.path).map_err(|e| e.to_string()));
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(fail(format!("cannot read it: {e}")));
                continue;
            }
        };
        match &u.variable {
            Some((variable, key)) => {
                if let Err(problem) = env_value(bytes, key.as_deref(), variable) {
                    problems.push(fail(problem));
                }
            }
            None => {
                let total = sizes.entry(&u.app).or_default();
                *total += bytes.len() as u64;
                if *total > MAX_CREDENTIAL_BYTES {
                    problems.push(fail(format!("the app's config and secrets as files take {total} bytes with this one; systemd passes at most {MAX_CREDENTIAL_BYTES} to an app")));
                }
            }
        }
    }
    // One message for each app's item, however many variables take it.
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|e| seen.insert(e.to_string()));
    problems
}

/// Writes an app's environment file (mode 0600 on the launcher's tmpfs, itself made 0700).
pub(super) fn write_env(
    pod: &str,
    app: &str,
    path: &Path,
    vars: &[EnvSource],
) -> Result<(), LaunchError> {
    let mut text = String::new();
    for v in vars {
        let fail = |problem: String| item_error(pod, app, v.kind, &v.name, &v.path, problem);
        let bytes = fs::read(&v.path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let value = env_value(&bytes, v.key.as_deref(), &v.variable).map_err(fail)?;
        text.push_str(&escape::env_file_line(&v.variable, &value));
    }
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| LaunchError::Io {
            what,
            path: p,
            source,
        }
    };
    if let Some(dir) = path.parent() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", dir))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("write", path))?;
    f.write_all(text.as_bytes()).map_err(io("write", path))
}

#[cfg(test)]
mod tests {
    use super::env_value;

    #[test]
    fn values_come_from_the_whole_file_or_a_key_line() {
        assert_eq!(env_value(b"s3cret\n", None, "V").unwrap(), "s3cret");
        assert_eq!(env_value(b"s3cret\n\n", None, "V").unwrap(), "s3cret\n");
        assert_eq!(env_value(b"a b", None, "V").unwrap(), "a b");
        let file = b"# db\n[section]\nuser=app\n  password =p=w \"x\" \n\npassword=second\n";
        assert_eq!(env_value(file, Some("user"), "V").unwrap(), "app");
        assert_eq!(env_value(file, Some("password"), "V").unwrap(), "second");
        assert_eq!(
            env_value(b"password=p=w \"x\" \n", Some("password"), "V").unwrap(),
            "p=w \"x\" "
        );
        assert_eq!(
            env_value(b"listen = 80\n", Some("listen"), "V").unwrap(),
            " 80"
        );
        assert_eq!(env_value(b"e=\n", Some("e"), "V").unwrap(), "");
    }

    #[test]
    fn errors_never_show_the_file() {
        let e = env_value(b"user=app\n", Some("password"), "V").unwrap_err();
        assert_eq!(e, "has no line `password=...`");
        let e = env_value(b"hun\0ter2", None, "V").unwrap_err();
        assert!(!e.contains("hun"), "{e}");
        let e = env_value(b"\xffhunter2", None, "V").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(env_value("a\u{feff}".as_bytes(), None, "V").is_err());
        assert!(env_value("a\u{fffe}".as_bytes(), None, "V").is_err());
        assert!(env_value("a\u{fdd0}".as_bytes(), None, "V").is_err());
        assert!(env_value(&vec![b'a'; 200_000], None, "V").is_err());
    }
}
