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
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::action::*;
use crate::limits;
use crate::manifest::{config, ItemKind};
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

/// nspawn's flag that passes a number counted on the host into the pod as the item's system
/// credential (digits alone: nothing for nspawn to unescape).
pub(super) fn set_credential(kind: ItemKind, name: &str, value: &str) -> String {
    debug_assert!(value.bytes().all(|b| b.is_ascii_digit()));
    format!(
        "--set-credential={}:{value}",
        credential_id(kind.name(), name)
    )
}

/// One app's variables from items: its single variables, and the items it takes every key of.
type AppEnv = (Vec<EnvSource>, Vec<EnvEvery>);

/// Each app's variables from items, in the order of the uses' apps.
fn env_by_app(uses: &[ItemUse]) -> Vec<(&str, AppEnv)> {
    let mut apps: Vec<(&str, AppEnv)> = Vec::new();
    for u in uses {
        if matches!(u.taken, Taken::File | Taken::Project { .. }) {
            continue;
        }
        let at = match apps.iter().position(|(a, _)| *a == u.app) {
            Some(i) => i,
            None => {
                apps.push((u.app.as_str(), (Vec::new(), Vec::new())));
                apps.len() - 1
            }
        };
        let (vars, every) = &mut apps[at].1;
        match &u.taken {
            Taken::Variable { name, key } => vars.push(EnvSource {
                variable: name.clone(),
                kind: u.kind,
                name: u.name.clone(),
                path: u.path.clone(),
                key: key.clone(),
                counted: u.counted.clone(),
            }),
            Taken::Every(e) => every.push(e.clone()),
            Taken::File | Taken::Project { .. } => {}
        }
    }
    apps
}

/// The actions that give apps their variables from items: a tmpfs at the pod's
/// `/etc/podc/env` and one file per app on it.
pub(super) fn env_actions(tree: &Path, pod: &str, uses: &[ItemUse]) -> Vec<Action> {
    let apps = env_by_app(uses);
    if apps.is_empty() {
        return Vec::new();
    }
    let dir = tree.join(ENV_DIR);
    let mut actions = vec![Action::Mkdir(dir.clone()), Action::Tmpfs(dir.clone())];
    for (app, (vars, every)) in apps {
        actions.push(Action::Env {
            pod: pod.to_string(),
            app: app.to_string(),
            path: dir.join(app),
            vars,
            every,
        });
    }
    actions
}

/// Every key of an item as variables, read now: `(name, value)` in key order, and what was
/// skipped (names only).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Every {
    pub vars: Vec<(String, String)>,
    /// Keys whose name with the prefix is not a variable name (a file's: `line N`).
    pub not_names: Vec<String>,
    /// Entries of a directory that are not regular files (links, directories, sockets).
    pub not_files: Vec<String>,
}

/// Reads every key of an item as variables (`environmentFrom`): each regular file of the
/// directory `path` (file name = key, content = value as it is, byte for byte, a final line
/// break included, as Kubernetes keeps a key's value), or each `KEY=VALUE` line of the file
/// `path` (the last line of a key wins). A key whose name with `prefix` is not a variable
/// name is skipped and never read, as Kubernetes skips it; so is an entry of the directory
/// that is not a regular file (a symbolic link is never followed). At most
/// [`limits::MAX_DIR_KEYS`] entries and [`limits::MAX_ENV_FROM_BYTES`] bytes are read. The
/// error never shows a value.
pub fn read_every(path: &Path, dir: bool, prefix: &str) -> Result<Every, String> {
    let mut every = Every::default();
    let too_large = || {
        format!(
            "holds more than {} bytes; podc takes at most that much from one item's keys",
            limits::MAX_ENV_FROM_BYTES
        )
    };
    if !dir {
        let bytes = read_bounded(path, limits::MAX_ENV_FROM_BYTES)
            .map_err(|e| format!("cannot read it: {e}"))?
            .ok_or_else(too_large)?;
        let text = utf8(&bytes)?;
        let mut at: BTreeMap<String, usize> = BTreeMap::new();
        for (line, key, value) in config::env_lines(text) {
            let variable = format!("{prefix}{key}");
            if !escape::is_env_name(&variable) {
                every.not_names.push(format!("line {line}"));
                continue;
            }
            check_value(&variable, value).map_err(|e| format!("line {line}: {e}"))?;
            match at.get(&variable) {
                Some(&i) => every.vars[i].1 = value.to_string(),
                None => {
                    at.insert(variable.clone(), every.vars.len());
                    every.vars.push((variable, value.to_string()));
                }
            }
        }
        return Ok(every);
    }
    let meta = fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("is not a directory (a `dir` item's keys are the files of one)".into());
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| format!("cannot read it: {e}"))? {
        let entry = entry.map_err(|e| format!("cannot read it: {e}"))?;
        if names.len() == limits::MAX_DIR_KEYS {
            return Err(format!(
                "has more than {} entries; podc takes at most that many keys from one directory",
                limits::MAX_DIR_KEYS
            ));
        }
        names.push(entry.file_name());
    }
    names.sort();
    let mut left = limits::MAX_ENV_FROM_BYTES;
    for name in names {
        let key = name.to_string_lossy().into_owned();
        let variable = format!("{prefix}{key}");
        if name.to_str().is_none() || !escape::is_env_name(&variable) {
            every.not_names.push(key);
            continue;
        }
        let Some(bytes) =
            read_key(&path.join(&name), left).map_err(|e| format!("{key}: cannot read it: {e}"))?
        else {
            every.not_files.push(key);
            continue;
        };
        let bytes = bytes.ok_or_else(too_large)?;
        left -= bytes.len();
        let value = utf8(&bytes).map_err(|e| format!("{key}: {e}"))?;
        check_value(&variable, value).map_err(|e| format!("{key}: {e}"))?;
        every.vars.push((variable, value.to_string()));
    }
    Ok(every)
}

/// A file's bytes, at most `max` (`None`: it holds more).
fn read_bounded(path: &Path, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= max).then_some(bytes))
}

/// A key of a directory: `None` when it is not a regular file (never followed if a link, never
/// waited on if a FIFO); else its bytes, at most `max` (`Some(None)`: it holds more).
fn read_key(path: &Path, max: usize) -> std::io::Result<Option<Option<Vec<u8>>>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path);
    let file = match file {
        Ok(f) => f,
        // O_NOFOLLOW on a link.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok(Some((bytes.len() <= max).then_some(bytes)))
}

/// `O_NOFOLLOW | O_NONBLOCK`: a key is never a link followed nor a FIFO waited on.
fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32
}

/// Text an environment file can hold, or why not (never the text).
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 text (at byte {}), which an environment file must be",
            e.valid_up_to()
        )
    })
}

/// A variable's value an environment file and the kernel can carry, or why not.
fn check_value(variable: &str, value: &str) -> Result<(), String> {
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
    Ok(())
}

/// The value of a variable from a file's bytes: the whole file without one final line break,
/// or the value of the last `KEY=VALUE` line with this key (lines split at `\n`; blanks
/// around KEY ignored; VALUE everything after the first `=`, verbatim; other lines, such as
/// comments, ignored). The error never shows the file's text.
pub fn env_value(bytes: &[u8], key: Option<&str>, variable: &str) -> Result<String, String> {
    let text = utf8(bytes)?;
    let value = match key {
        None => text.strip_suffix('\n').unwrap_or(text),
        Some(key) => config::env_lines(text)
            .filter(|(_, k, _)| *k == key)
            .last()
            .map(|(_, _, v)| v)
            .ok_or_else(|| format!("has no line `{key}=...`"))?,
    };
    check_value(variable, value)?;
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

/// Every problem with the launch's items: each file and directory must exist; with `read` (as
/// root, at a real launch) each is read, every variable's value found and valid, and each
/// app's files within what systemd passes.
pub fn check_items(launch: &Launch, read: bool) -> Vec<LaunchError> {
    let pod = &launch.plan.pod;
    let mut problems = Vec::new();
    let mut cache: BTreeMap<&Path, Result<u64, String>> = BTreeMap::new();
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for u in &launch.items {
        let fail = |problem: String| item_error(pod, &u.app, u.kind, &u.name, &u.path, problem);
        if u.counted.is_some() {
            // Counted on the host already; nothing to read.
            continue;
        }
        if let Taken::Project { optional } = u.taken {
            // A projected volume's source: a directory, missing only if optional.
            let checked = if read {
                super::project::read_files(&u.path).map(|f| f.is_some())
            } else {
                Ok(u.path.exists())
            };
            match checked {
                Ok(false) if !optional => problems.push(fail(
                    "cannot read it: No such file or directory (os error 2)".into(),
                )),
                Err(problem) => problems.push(fail(problem)),
                Ok(_) => {}
            }
            continue;
        }
        if !read {
            if let Err(e) = fs::metadata(&u.path) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    problems.push(fail(format!("cannot read it: {e}")));
                }
            }
            continue;
        }
        if u.taken != Taken::File {
            continue;
        }
        let size = cache.entry(&u.path).or_insert_with(|| {
            fs::read(&u.path)
                .map(|b| b.len() as u64)
                .map_err(|e| e.to_string())
        });
        match size {
            Ok(size) => {
                let total = sizes.entry(&u.app).or_default();
                *total += *size;
                if *total > MAX_CREDENTIAL_BYTES {
                    problems.push(fail(format!("the app's config and secrets as files take {total} bytes with this one; systemd passes at most {MAX_CREDENTIAL_BYTES} to an app")));
                }
            }
            Err(e) => problems.push(fail(format!("cannot read it: {e}"))),
        }
    }
    if read {
        for (app, (vars, every)) in env_by_app(&launch.items) {
            if let Err(errors) = env_text(pod, app, &vars, &every) {
                problems.extend(errors);
            }
        }
    }
    // One message for each app's item, however many variables take it.
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|e| seen.insert(e.to_string()));
    problems
}

/// An app's environment file, read now: every key of the `every` items in order (a later one
/// wins; none of the app's own variables), then `vars`; and a note for each item whose keys
/// were skipped (names only). Every problem, when there is one.
pub fn env_text(
    pod: &str,
    app: &str,
    vars: &[EnvSource],
    every: &[EnvEvery],
) -> Result<(String, Vec<String>), Vec<LaunchError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut values: Vec<(String, String)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    let mut set = |name: String, value: String| match at.get(&name) {
        Some(&i) => values[i].1 = value,
        None => {
            at.insert(name.clone(), values.len());
            values.push((name, value));
        }
    };
    for e in every {
        let fail = |problem: String| item_error(pod, app, e.kind, &e.name, &e.path, problem);
        match read_every(&e.path, e.dir, &e.prefix) {
            Err(problem) => errors.push(fail(problem)),
            Ok(read) => {
                if let Some(note) = skipped_note(e, &read) {
                    notes.push(format!(
                        "pod {pod}, app {app}: {} {}: {}: {note}",
                        e.kind,
                        e.name,
                        e.path.display()
                    ));
                }
                for (name, value) in read.vars {
                    if !e.given.contains(&name) {
                        set(name, value);
                    }
                }
            }
        }
    }
    for v in vars {
        let fail = |problem: String| item_error(pod, app, v.kind, &v.name, &v.path, problem);
        if let Some(n) = &v.counted {
            set(v.variable.clone(), n.clone());
            continue;
        }
        match fs::read(&v.path) {
            Err(e) => errors.push(fail(format!("cannot read it: {e}"))),
            Ok(bytes) => match env_value(&bytes, v.key.as_deref(), &v.variable) {
                Ok(value) => set(v.variable.clone(), value),
                Err(problem) => errors.push(fail(problem)),
            },
        }
    }
    let text: String = values
        .iter()
        .map(|(name, value)| escape::env_file_line(name, value))
        .collect();
    if let (Some(e), true) = (every.last(), text.len() > escape::MAX_ARGS_TOTAL) {
        errors.push(item_error(pod, app, e.kind, &e.name, &e.path, format!(
            "the app's variables from config and secrets take {} bytes with these; podc gives an app at most {} bytes of environment",
            text.len(),
            escape::MAX_ARGS_TOTAL
        )));
    }
    if errors.is_empty() {
        Ok((text, notes))
    } else {
        Err(errors)
    }
}

/// What the launcher's log says of the keys of an item it skipped: their names, never a value.
fn skipped_note(e: &EnvEvery, read: &Every) -> Option<String> {
    let mut parts = Vec::new();
    if !read.not_names.is_empty() {
        let with = if e.prefix.is_empty() {
            String::new()
        } else {
            format!(" with the prefix {}", e.prefix)
        };
        let what = if e.dir { "keys" } else { "lines" };
        parts.push(format!(
            "skipped {what} that are not variable names{with}: {}",
            read.not_names.join(", ")
        ));
    }
    if !read.not_files.is_empty() {
        parts.push(format!(
            "skipped entries that are not regular files: {}",
            read.not_files.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Writes an app's environment file (mode 0600 on the launcher's tmpfs, itself made 0700);
/// what was skipped goes to `log`.
pub(super) fn write_env(
    pod: &str,
    app: &str,
    path: &Path,
    vars: &[EnvSource],
    every: &[EnvEvery],
    log: &mut dyn Write,
) -> Result<(), LaunchError> {
    let (text, notes) = env_text(pod, app, vars, every)
        .map_err(|errors| errors.into_iter().next().expect("an error"))?;
    for note in notes {
        let _ = writeln!(log, "podc launch: {note}");
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
    // The pod's root reads it (systemd in the pod, for EnvironmentFile=).
    let root = super::userns::host_id(0);
    if root != 0 {
        if let Some(dir) = path.parent() {
            std::os::unix::fs::chown(dir, Some(root), Some(root)).map_err(io("chown", dir))?;
        }
        std::os::unix::fs::fchown(&f, Some(root), Some(root)).map_err(io("chown", path))?;
    }
    f.write_all(text.as_bytes()).map_err(io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn every(path: &Path, dir: bool, prefix: &str, given: &[&str]) -> EnvEvery {
        EnvEvery {
            kind: ItemKind::Secret,
            name: "db".into(),
            path: path.to_path_buf(),
            dir,
            prefix: prefix.into(),
            given: given.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn every_file_of_a_directory_is_a_variable_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let w = |name: &str, bytes: &[u8]| fs::write(d.path().join(name), bytes).unwrap();
        w("password", b"s3cret\n");
        w("user", b"app");
        w("1st", b"never read");
        w("has-dash", b"never read");
        w(".hidden", b"never read");
        fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("linked")).unwrap();
        let got = read_every(d.path(), true, "").unwrap();
        assert_eq!(
            got.vars,
            [
                ("password".to_string(), "s3cret\n".to_string()),
                ("user".to_string(), "app".to_string())
            ]
        );
        assert_eq!(got.not_names, [".hidden", "1st", "has-dash"]);
        assert_eq!(got.not_files, ["linked", "sub"]);
        // With a prefix, `1st` is a variable name.
        let got = read_every(d.path(), true, "DB_").unwrap();
        let names: Vec<&str> = got.vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["DB_1st", "DB_password", "DB_user"]);
        assert_eq!(got.not_names, [".hidden", "has-dash"]);
    }

    #[test]
    fn a_directory_that_cannot_be_taken_is_refused_without_its_values() {
        let d = tempfile::tempdir().unwrap();
        let e = read_every(&d.path().join("missing"), true, "").unwrap_err();
        assert!(e.starts_with("cannot read it: No such file"), "{e}");
        fs::write(d.path().join("f"), "x").unwrap();
        let e = read_every(&d.path().join("f"), true, "").unwrap_err();
        assert!(e.starts_with("is not a directory"), "{e}");
        fs::write(d.path().join("nul"), b"hun\0ter2").unwrap();
        let e = read_every(d.path(), true, "").unwrap_err();
        assert!(e.starts_with("nul: the value for nul holds a NUL"), "{e}");
        assert!(!e.contains("hun"), "{e}");
        fs::remove_file(d.path().join("nul")).unwrap();
        fs::write(d.path().join("bin"), b"\xffhunter2").unwrap();
        let e = read_every(d.path(), true, "").unwrap_err();
        assert!(e.starts_with("bin: is not UTF-8"), "{e}");
        fs::remove_file(d.path().join("bin")).unwrap();
        // Bounded: bytes, then entries.
        let big = vec![b'a'; 100_000];
        for i in 0..11 {
            fs::write(d.path().join(format!("k{i}")), &big).unwrap();
        }
        let e = read_every(d.path(), true, "").unwrap_err();
        assert!(e.contains("holds more than 1048576 bytes"), "{e}");
        for i in 0..=limits::MAX_DIR_KEYS {
            fs::write(d.path().join(format!("k{i}")), "v").unwrap();
        }
        let e = read_every(d.path(), true, "").unwrap_err();
        assert!(e.starts_with("has more than 1000 entries"), "{e}");
    }

    #[test]
    fn every_line_of_a_file_is_a_variable_the_last_one_winning() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        fs::write(
            &f,
            "# user=nobody\n[section]\nuser=app\n bad key=1\npassword = p=w \nuser=last\n",
        )
        .unwrap();
        let got = read_every(&f, false, "DB_").unwrap();
        assert_eq!(
            got.vars,
            [
                ("DB_user".to_string(), "last".to_string()),
                ("DB_password".to_string(), " p=w ".to_string())
            ]
        );
        assert_eq!(got.not_names, ["line 4"]);
    }

    #[test]
    fn the_apps_own_variables_and_later_items_win() {
        let d = tempfile::tempdir().unwrap();
        let (one, two) = (d.path().join("one"), d.path().join("two"));
        fs::create_dir(&one).unwrap();
        fs::create_dir(&two).unwrap();
        for (dir, k, v) in [
            (&one, "A", "from one"),
            (&one, "B", "from one"),
            (&one, "OWN", "from one"),
            (&one, "bad-name", "x"),
            (&two, "B", "from two"),
        ] {
            fs::write(dir.join(k), v).unwrap();
        }
        let token = d.path().join("token");
        fs::write(&token, "tok\n").unwrap();
        let vars = [EnvSource {
            variable: "OWN".into(),
            kind: ItemKind::Secret,
            name: "token".into(),
            path: token,
            key: None,
            counted: None,
        }];
        let every = [
            every(&one, true, "", &["OWN", "PLAIN"]),
            every(&two, true, "", &["OWN", "PLAIN"]),
        ];
        let (text, notes) = env_text("p", "a", &vars, &every).unwrap();
        assert_eq!(text, "A=\"from one\"\nB=\"from two\"\nOWN=\"tok\"\n");
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].ends_with("/one: skipped keys that are not variable names: bad-name"),
            "{notes:?}"
        );
        // A missing directory names the pod, the app and the item.
        fs::remove_dir_all(&two).unwrap();
        let errors = env_text("p", "a", &vars, &every).unwrap_err();
        let e = errors[0].to_string();
        assert!(e.starts_with("pod p, app a: secret db: "), "{e}");
        assert!(e.contains("/two: cannot read it: No such file"), "{e}");
    }
}
