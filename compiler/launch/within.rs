//! A path inside a volume (Kubernetes' `subPath`), bound into an app as the kubelet binds it:
//! resolved from the volume's directory with `openat2(RESOLVE_BENEATH)`, so a symbolic link
//! on the way may lead anywhere inside the volume but never out of it (an absolute link, or
//! one through `..` above the volume, is refused); the missing directories made one by one
//! with `mkdirat` below the one resolved before them, each opened again without following a
//! link and given the permissions of the volume's own directory (the kubelet's
//! `SafeMakeDir`); and bound from the descriptor it was resolved to (`/proc/self/fd/N`), so
//! what is bound is what was checked, whatever is renamed in the volume meanwhile.
//!
//! Mount points are made here too: a directory for a directory, an empty file for anything
//! else (a file, a socket), never through a symbolic link below the pod's root.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::fs::{fchmod, fstat, mkdirat, openat, openat2, FileType, Mode, OFlags, ResolveFlags};
use rustix::fs::{Gid, Uid};
use rustix::io::Errno;

use super::action::LaunchError;
use super::paths::{io_err, refuse_symlinks};

/// Links resolve inside the volume only; `/proc` magic links not at all.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// What a bind inside a volume asks for: see [`super::action::Action::BindWithin`].
pub(super) struct Within<'a> {
    pub(super) base: &'a Path,
    pub(super) sub: &'a str,
    pub(super) target: &'a Path,
    pub(super) read_only: bool,
    pub(super) make: bool,
    pub(super) noexec: bool,
}

/// Binds `w.sub` of the volume `w.base` at `w.target` (below the pod's `root`).
pub(super) fn bind_within(root: &Path, w: &Within) -> Result<(), LaunchError> {
    let fail = |message: String| LaunchError::SubPath {
        base: w.base.to_path_buf(),
        sub: w.sub.to_string(),
        message,
    };
    let base = openat(
        CWD,
        w.base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LaunchError::Io {
        what: "open",
        path: w.base.to_path_buf(),
        source: e.into(),
    })?;
    let fd = if w.sub.is_empty() {
        base
    } else {
        resolve(&base, w.sub, w.make).map_err(|e| fail(explain(e, w)))?
    };
    let is_dir = fstat(&fd)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .map_err(|e| fail(std::io::Error::from(e).to_string()))?;
    mount_point(root, w.target, is_dir).map_err(|e| match e {
        LaunchError::MountPoint { path, message } if is_dir => LaunchError::MountPoint {
            path,
            message: format!("{message}: the volume's {} is a directory (a missing subPath is made as one, as Kubernetes makes it)", w.sub),
        },
        e => e,
    })?;
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    crate::sys::bind_with(&source, w.target, w.read_only, w.noexec)
        .map_err(io_err("bind", w.target))
}

/// `sub` below `base` (a relative path in normal form), with what is missing of it made as
/// directories if `make`.
fn resolve(base: &OwnedFd, sub: &str, make: bool) -> Result<OwnedFd, Errno> {
    // O_PATH: a socket cannot be opened otherwise, and nothing is read through these.
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    match openat2(base, sub, flags, Mode::empty(), BENEATH) {
        Err(Errno::NOENT) if make => {}
        found => return found,
    }
    // The kubelet gives each directory it makes the permissions of the volume's own.
    let mode = Mode::from_raw_mode(fstat(base)?.st_mode & 0o777);
    let dir_flags = flags | OFlags::DIRECTORY;
    let parts: Vec<&str> = sub.split('/').collect();
    let mut dir = openat2(base, ".", dir_flags, Mode::empty(), BENEATH)?;
    for (i, part) in parts.iter().enumerate() {
        let prefix = parts[..=i].join("/");
        let last = i + 1 == parts.len();
        // What exists is resolved from the volume's top (links inside it followed).
        let open_flags = if last { flags } else { dir_flags };
        match openat2(base, &prefix, open_flags, Mode::empty(), BENEATH) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let made = match mkdirat(&dir, *part, mode) {
            Ok(()) => true,
            // Made meanwhile, or a dangling link (refused by the open below).
            Err(Errno::EXIST) => false,
            Err(e) => return Err(e),
        };
        let open = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(&dir, *part, open, Mode::empty())?;
        if made {
            // The kubelet makes them as root: here the pod's root, whom a pod of its own user
            // namespace is on the host by its range's first id.
            let root = super::userns::host_id(0);
            if root != 0 {
                let (uid, gid) = (Uid::from_raw(root), Gid::from_raw(root));
                rustix::fs::fchown(&fd, Some(uid), Some(gid))?;
            }
            // mkdirat is subject to the umask (and a chown may clear set-id bits).
            fchmod(&fd, mode)?;
        }
        dir = fd;
    }
    Ok(dir)
}

/// Why a subPath could not be reached, in words.
fn explain(e: Errno, w: &Within) -> String {
    match e {
        Errno::XDEV => {
            "a symbolic link on the way leads out of the volume; podc binds only what is inside it"
                .into()
        }
        Errno::LOOP => "a symbolic link is where a directory is made, or links loop".into(),
        Errno::NOTDIR => {
            "a part of the path is not a directory (or a symbolic link to nothing)".into()
        }
        Errno::NOENT if w.noexec => "does not exist in the image".into(),
        Errno::NOENT => "does not exist, and the volume is read-only".into(),
        e => std::io::Error::from(e).to_string(),
    }
}

/// Makes `target` (below `root`, never through a symbolic link) a mount point: a directory
/// (with its parents), or an empty file where something other than a directory is bound.
pub(super) fn mount_point(root: &Path, target: &Path, dir: bool) -> Result<(), LaunchError> {
    refuse_symlinks(root, target)?;
    let wrong = |message: &str| LaunchError::MountPoint {
        path: target.to_path_buf(),
        message: message.into(),
    };
    match (fs::symlink_metadata(target), dir) {
        (Ok(m), true) if !m.is_dir() => Err(wrong("is a file, where a directory is bound")),
        (Ok(m), false) if m.is_dir() => Err(wrong("is a directory, where a file is bound")),
        (Ok(_), _) => Ok(()),
        (Err(_), true) => fs::create_dir_all(target).map_err(io_err("mkdir", target)),
        (Err(_), false) => {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
            }
            fs::File::options()
                .write(true)
                .create_new(true)
                .open(target)
                .map(drop)
                .map_err(io_err("create", target))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    /// What `resolve` finds, as a path relative to `base` (`/proc/self/fd` names it).
    fn found(base: &Path, sub: &str, make: bool) -> Result<PathBuf, Errno> {
        let dir = openat(CWD, base, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        let fd = resolve(&dir, sub, make)?;
        let at = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        Ok(at.strip_prefix(base).unwrap().to_path_buf())
    }

    #[test]
    fn sub_paths_stay_inside_the_volume_and_are_made_with_its_mode() {
        let d = tempfile::tempdir().unwrap();
        let (base, outside) = (d.path().join("vol"), d.path().join("outside"));
        fs::create_dir_all(base.join("conf")).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(base.join("conf/app.conf"), "x").unwrap();
        symlink("conf", base.join("inside")).unwrap();
        symlink("../outside", base.join("up")).unwrap();
        symlink(&outside, base.join("absolute")).unwrap();
        symlink("nowhere", base.join("dangling")).unwrap();
        // Links inside the volume are followed; a file is found as a file.
        assert_eq!(
            found(&base, "inside/app.conf", false).unwrap(),
            Path::new("conf/app.conf")
        );
        // Missing: made, parents too, each with the volume's mode; not without `make`.
        assert_eq!(found(&base, "a/b", false), Err(Errno::NOENT));
        assert_eq!(found(&base, "a/b", true).unwrap(), Path::new("a/b"));
        for made in ["a", "a/b"] {
            let m = fs::metadata(base.join(made)).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o750, "{made}");
        }
        // Made through a link inside the volume, where it leads.
        assert_eq!(
            found(&base, "inside/new", true).unwrap(),
            Path::new("conf/new")
        );
        // Out of the volume: refused, nothing made there.
        for sub in ["up/x", "absolute/x", "up", "absolute"] {
            assert_eq!(found(&base, sub, true), Err(Errno::XDEV), "{sub}");
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // A dangling link is never made a directory through.
        let e = found(&base, "dangling/x", true).unwrap_err();
        assert!([Errno::LOOP, Errno::NOTDIR].contains(&e), "{e}");
        assert!(!base.join("nowhere").exists());
        // A file on the way is no directory.
        assert_eq!(found(&base, "conf/app.conf/x", true), Err(Errno::NOTDIR));
    }

    #[test]
    fn mount_points_are_made_as_what_is_bound() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        mount_point(root, &root.join("a/dir"), true).unwrap();
        assert!(root.join("a/dir").is_dir());
        mount_point(root, &root.join("b/file"), false).unwrap();
        assert!(root.join("b/file").is_file());
        let e = mount_point(root, &root.join("b/file"), true).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a file, where a directory is bound"),
            "{e}"
        );
        let e = mount_point(root, &root.join("a/dir"), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a directory, where a file is bound"),
            "{e}"
        );
        symlink("/etc", root.join("link")).unwrap();
        assert!(mount_point(root, &root.join("link/x"), false).is_err());
        assert!(!Path::new("/etc/x").exists());
    }
}
