//! A host volume's path as Kubernetes' hostPath `type` wants it, checked (and made) before it
//! is bound, as the kubelet's `hostPathTypeChecker` does: `directory-or-create` is
//! `mkdir -p` with mode 0755; `file-or-create` an empty file of mode 0644 in a directory that
//! must exist; `file` and `socket` must be one (links followed, as the kubelet's `stat`);
//! `any` (Kubernetes' unset type) binds whatever is there and makes a directory where nothing
//! is, as containerd and CRI-O do, but refuses a device, which no app of a pod could open.
//! The host path is the manifest author's to choose, as on Kubernetes: links in it are
//! followed; only what is bound into an app's root is held to the pod's root.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;

use super::action::LaunchError;
use crate::manifest::HostType;

/// Checks `path` against `host_type`, first making what `*-or-create` and `any` make where it
/// is missing if `make` (else, for `podc launch --check`, saying only what is wrong now).
pub fn host_path(path: &Path, host_type: HostType, make: bool) -> Result<(), LaunchError> {
    let fail = |message: String| LaunchError::HostPath {
        path: path.to_path_buf(),
        message,
    };
    let io = |e: io::Error| fail(e.to_string());
    let found = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let Some(m) = found else {
        return match host_type {
            HostType::DirectoryOrCreate | HostType::Any if make => {
                make_dirs(path).and_then(|()| for_the_pod(path)).map_err(io)
            }
            HostType::FileOrCreate if make => {
                make_file(path).and_then(|()| for_the_pod(path)).map_err(io)
            }
            HostType::FileOrCreate => match path.parent().map(Path::is_dir) {
                Some(true) => Ok(()),
                _ => Err(fail(
                    "does not exist, and neither does its directory, which `file-or-create` does not make (as Kubernetes)".into(),
                )),
            },
            HostType::DirectoryOrCreate | HostType::Any => Ok(()),
            _ => Err(fail(format!("does not exist (hostPath type {})", host_type.name()))),
        };
    };
    let t = m.file_type();
    let wrong = match host_type {
        HostType::Directory | HostType::DirectoryOrCreate if !t.is_dir() => "is not a directory",
        HostType::File | HostType::FileOrCreate if !t.is_file() => "is not a regular file",
        HostType::Socket if !t.is_socket() => "is not a socket",
        HostType::Any if t.is_char_device() || t.is_block_device() => {
            "is a device, and podc passes no devices into a pod"
        }
        _ => return Ok(()),
    };
    Err(fail(format!(
        "{wrong} (hostPath type {})",
        host_type.name()
    )))
}

/// What the launcher made for the pod (the directory or file itself, not the parents it made
/// on the way) given to the pod's root: the host's root, or in a pod of its own user namespace
/// the first id of its range, whom the pod's root is on the host. The kubelet makes them as
/// root for a pod whose root is the host's; a pod of its own user namespace could not write
/// there otherwise.
fn for_the_pod(path: &Path) -> io::Result<()> {
    match super::userns::host_id(0) {
        0 => Ok(()), // made by the launcher, as root
        root => std::os::unix::fs::chown(path, Some(root), Some(root)),
    }
}

/// `mkdir -p` with mode 0755 for every directory it makes, whatever the umask.
fn make_dirs(path: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    for dir in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o755).create(dir) {
            Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An empty file of mode 0644; its directory is not made.
fn make_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
    {
        Ok(f) => f.set_permissions(fs::Permissions::from_mode(0o644)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn each_type_is_made_or_checked_as_kubernetes_does() {
        let d = tempfile::tempdir().unwrap();
        let p = |s: &str| d.path().join(s);
        // directory-or-create: parents too, 0755.
        host_path(&p("a/b/c"), HostType::DirectoryOrCreate, true).unwrap();
        assert!(p("a/b/c").is_dir());
        assert_eq!((mode(&p("a")), mode(&p("a/b/c"))), (0o755, 0o755));
        // file-or-create: an empty 0644 file; no parents.
        host_path(&p("a/f"), HostType::FileOrCreate, true).unwrap();
        assert_eq!(
            (fs::read(p("a/f")).unwrap().len(), mode(&p("a/f"))),
            (0, 0o644)
        );
        let e = host_path(&p("x/f"), HostType::FileOrCreate, true).unwrap_err();
        assert!(!p("x").exists(), "{e}");
        // An existing file is kept as it is.
        fs::write(p("a/f"), "kept").unwrap();
        host_path(&p("a/f"), HostType::FileOrCreate, true).unwrap();
        assert_eq!(fs::read_to_string(p("a/f")).unwrap(), "kept");
        // Wrong kinds.
        for (path, t, says) in [
            ("a/f", HostType::Directory, "is not a directory"),
            ("a/f", HostType::DirectoryOrCreate, "is not a directory"),
            ("a", HostType::File, "is not a regular file"),
            ("a", HostType::FileOrCreate, "is not a regular file"),
            ("a/f", HostType::Socket, "is not a socket"),
            ("none", HostType::File, "does not exist"),
            ("none", HostType::Socket, "does not exist"),
        ] {
            let e = host_path(&p(path), t, true).unwrap_err().to_string();
            assert!(e.contains(says), "{path} {t:?}: {e}");
        }
        let e = host_path(Path::new("/dev/null"), HostType::Any, true).unwrap_err();
        assert!(e.to_string().contains("is a device"), "{e}");
        // any: whatever is there; a directory where nothing is.
        host_path(&p("a/f"), HostType::Any, true).unwrap();
        host_path(&p("new/dir"), HostType::Any, true).unwrap();
        assert!(p("new/dir").is_dir());
        // Without `make` nothing is made.
        host_path(&p("later"), HostType::DirectoryOrCreate, false).unwrap();
        host_path(&p("a/later"), HostType::FileOrCreate, false).unwrap();
        assert!(!p("later").exists() && !p("a/later").exists());
        let socket = std::os::unix::net::UnixListener::bind(p("s")).unwrap();
        host_path(&p("s"), HostType::Socket, true).unwrap();
        drop(socket);
    }
}
