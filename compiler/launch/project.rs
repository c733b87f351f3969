//! Projected volumes at launch: the regular files of `dir` config items and secrets, copied
//! into a fresh directory on the launcher's tmpfs (never the tree's disk), each with the
//! volume's mode and owner; a later source's file replaces an earlier one of its name, as the
//! kubelet's projection does.
//!
//! Architecture invariant: a file's bytes go only into the volume; messages and the log name
//! the pod, the app, the item, its directory and a file's name at most, never its content.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{chown, OpenOptionsExt};
use std::path::Path;

use super::action::*;
use crate::limits;

/// The files a source gives: each regular file's name and bytes, in name order, and the
/// names of what was skipped (not a regular file: links are never followed). `None`: the
/// directory is missing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub files: Vec<(std::ffi::OsString, Vec<u8>)>,
    pub skipped: Vec<String>,
}

/// Reads a source's directory, within [`limits::MAX_DIR_KEYS`] entries and
/// [`limits::MAX_PROJECTED_BYTES`] bytes; `Ok(None)` when it is missing. The error never shows
/// a file's content.
pub fn read_files(dir: &Path) -> Result<Option<Files>, String> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if !meta.is_dir() {
        return Err("is not a directory (a `dir` item's keys are the files of one)".into());
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("cannot read it: {e}"))? {
        let entry = entry.map_err(|e| format!("cannot read it: {e}"))?;
        if names.len() == limits::MAX_DIR_KEYS {
            return Err(format!(
                "has more than {} entries; podc projects at most that many files of one directory",
                limits::MAX_DIR_KEYS
            ));
        }
        names.push(entry.file_name());
    }
    names.sort();
    let mut out = Files::default();
    let mut left = limits::MAX_PROJECTED_BYTES;
    for name in names {
        let shown = name.to_string_lossy().into_owned();
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(dir.join(&name));
        let file = match file {
            Ok(f) => f,
            // O_NOFOLLOW on a link.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                out.skipped.push(shown);
                continue;
            }
            Err(e) => return Err(format!("{shown}: cannot read it: {e}")),
        };
        let regular = file
            .metadata()
            .map_err(|e| format!("{shown}: {e}"))?
            .is_file();
        if !regular {
            out.skipped.push(shown);
            continue;
        }
        let mut bytes = Vec::new();
        file.take(left as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{shown}: cannot read it: {e}"))?;
        if bytes.len() > left {
            return Err(format!(
                "holds more than {} bytes; podc projects at most that much of one directory",
                limits::MAX_PROJECTED_BYTES
            ));
        }
        left -= bytes.len();
        out.files.push((name, bytes));
    }
    Ok(Some(out))
}

/// Copies a source's files into the volume `target` (mode `mode`, owned by `uid`:`gid`),
/// replacing a file of the same name; what was skipped goes to `log`, by name.
pub(super) fn fill(p: &Project, log: &mut dyn Write) -> Result<(), LaunchError> {
    let fail = |problem: String| {
        LaunchError::Item(Box::new(ItemProblem {
            pod: p.pod.clone(),
            app: p.apps.first().cloned().unwrap_or_default(),
            kind: p.kind.name(),
            name: p.name.clone(),
            path: p.dir.clone(),
            problem,
        }))
    };
    let files = match read_files(&p.dir).map_err(fail)? {
        Some(f) => f,
        None if p.optional => {
            let _ = writeln!(log, "podc launch: pod {}, volume {}: {} {}: {} is missing, and optional: it gives no files", p.pod, p.volume, p.kind, p.name, p.dir.display());
            return Ok(());
        }
        None => {
            return Err(fail(
                "cannot read it: No such file or directory (os error 2)".into(),
            ))
        }
    };
    if !files.skipped.is_empty() {
        let _ = writeln!(
            log,
            "podc launch: pod {}, volume {}: {} {}: {}: skipped entries that are not regular files: {}",
            p.pod,
            p.volume,
            p.kind,
            p.name,
            p.dir.display(),
            files.skipped.join(", ")
        );
    }
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { what, path, source }
    };
    for (name, bytes) in files.files {
        let path = p.target.join(&name);
        // A file of an earlier source is replaced, never followed if it were a link.
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("replace", &path)(e))
            }
            _ => {}
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(p.mode)
            .open(&path)
            .map_err(io("write", &path))?;
        f.write_all(&bytes).map_err(io("write", &path))?;
        let (uid, gid) = (super::userns::host_id(p.uid), super::userns::host_id(p.gid));
        chown(&path, Some(uid), Some(gid)).map_err(io("chown", &path))?;
        // The umask may have taken bits away.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(p.mode))
            .map_err(io("chmod", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_links_and_directories_skipped() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("user"), "admin").unwrap();
        fs::write(d.path().join(".hidden"), "x\n").unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("linked")).unwrap();
        let got = read_files(d.path()).unwrap().unwrap();
        let names: Vec<_> = got.files.iter().map(|(n, _)| n.to_str().unwrap()).collect();
        assert_eq!(names, [".hidden", "user"]);
        assert_eq!(got.files[1].1, b"admin");
        assert_eq!(got.skipped, ["linked", "sub"]);
        assert_eq!(read_files(&d.path().join("missing")).unwrap(), None);
        let e = read_files(&d.path().join("user")).unwrap_err();
        assert!(e.starts_with("is not a directory"), "{e}");
        fs::write(
            d.path().join("big"),
            vec![b's'; limits::MAX_PROJECTED_BYTES],
        )
        .unwrap();
        let e = read_files(d.path()).unwrap_err();
        assert!(e.starts_with("holds more than"), "{e}");
        assert!(!e.contains("sss"), "{e}");
    }

    #[test]
    fn a_later_source_replaces_an_earlier_file() {
        let d = tempfile::tempdir().unwrap();
        let (one, two, target) = (
            d.path().join("one"),
            d.path().join("two"),
            d.path().join("v"),
        );
        for dir in [&one, &two, &target] {
            fs::create_dir(dir).unwrap();
        }
        fs::write(one.join("a"), "from one").unwrap();
        fs::write(one.join("b"), "from one").unwrap();
        fs::write(two.join("b"), "from two").unwrap();
        let me = crate::sys::effective_uid();
        let gid = rustix::process::getegid().as_raw();
        let project = |dir: &Path| Project {
            pod: "p".into(),
            volume: "v".into(),
            apps: vec!["a".into()],
            kind: crate::manifest::ItemKind::Secret,
            name: "s".into(),
            dir: dir.to_path_buf(),
            optional: false,
            target: target.clone(),
            mode: 0o640,
            uid: me,
            gid,
        };
        let mut log = Vec::new();
        fill(&project(&one), &mut log).unwrap();
        fill(&project(&two), &mut log).unwrap();
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "from one");
        assert_eq!(fs::read_to_string(target.join("b")).unwrap(), "from two");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(target.join("b")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
        // A missing source stops the launch, naming it, unless it is optional.
        let e = fill(&project(&d.path().join("gone")), &mut log).unwrap_err();
        assert!(e.to_string().contains("/gone: cannot read it"), "{e}");
        let optional = Project {
            optional: true,
            ..project(&d.path().join("gone"))
        };
        fill(&optional, &mut log).unwrap();
        assert!(String::from_utf8_lossy(&log).contains("is missing, and optional"));
    }
}
