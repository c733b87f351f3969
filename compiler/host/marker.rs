//! Which directories `podc install` may replace and `podc uninstall` may remove (#22).
//!
//! The header of `mounts.toml` is text anyone can write, so it proves nothing about whose a
//! directory is. An install directory is podc's when:
//! - every directory from `/` down to its parent (the real path, links resolved) is root's
//!   and no one else can write it, or is sticky (then no one else can rename or remove what
//!   root owns in it): else another user could swap the directory between the check and the
//!   change, or change the tree a pod runs from as root;
//! - it is a real directory (not a link), root's, writable by no one else;
//! - it holds [`INSTALL_MARKER`], a regular file (opened without following a link), root's,
//!   writable by no one else, with one link, that `install` created with `O_EXCL` in its
//!   staging copy, and whose text names the pod;
//! - its `mounts.toml` is that same pod's.
//!
//! "Root's" is the user podc runs as, which is root on a host (install and uninstall require
//! it); under `--root`, run by another user to make an image, that user's files count too.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::systemd::{io_err, OpError};
use crate::tree::layout::INSTALL_MARKER;

/// The marker's text for pod `pod`; nothing else is a marker.
fn marker_text(pod: &str) -> String {
    format!(
        "# podc install made this directory; podc replaces or removes it only while this file names its pod.\npod = \"{pod}\"\n"
    )
}

/// Whether a file or directory owned by `uid` counts as podc's own.
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == crate::sys::effective_uid()
}

/// Creates the marker naming `pod` in `dir` (the staging copy of a tree), never over an
/// existing file or link.
pub(super) fn create_marker(dir: &Path, pod: &str) -> Result<(), OpError> {
    let path = dir.join(INSTALL_MARKER);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(marker_text(pod).as_bytes())
        .map_err(io_err(&path))?;
    Ok(())
}

/// Checks the directories that hold `path` (an install directory, which need not exist yet):
/// from its deepest existing ancestor, links resolved, up to `/`.
pub(super) fn check_ancestors(path: &Path) -> Result<(), OpError> {
    let mut existing = path.parent().unwrap_or(path);
    while let Err(e) = fs::symlink_metadata(existing) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(io_err(existing)(e));
        }
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let real = fs::canonicalize(existing).map_err(io_err(existing))?;
    for dir in real.ancestors() {
        let m = fs::symlink_metadata(dir).map_err(io_err(dir))?;
        let unsafe_dir = |reason: String| OpError::UnsafeDir {
            path: dir.to_path_buf(),
            install_dir: path.to_path_buf(),
            reason,
        };
        if !m.is_dir() {
            return Err(unsafe_dir("not a directory".into()));
        }
        if !trusted(m.uid()) {
            return Err(unsafe_dir(format!("owned by uid {}, not root", m.uid())));
        }
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Err(unsafe_dir(format!(
                "mode {:04o}: writable by group or others, and not sticky",
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Checks that `dir` is the install directory podc made for pod `pod` (see the module's
/// documentation); `Foreign` says why not.
pub(super) fn check_ours(dir: &Path, pod: &str) -> Result<(), OpError> {
    let foreign = |reason: String, hint: String| OpError::Foreign {
        path: dir.to_path_buf(),
        reason,
        hint,
    };
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return Err(foreign("not a directory".into(), String::new()))
        }
        Err(e) => return Err(io_err(dir)(e.into())),
    };
    let d = File::from(fd);
    let m = d.metadata().map_err(io_err(dir))?;
    owned_by_us(&m).map_err(|r| foreign(r, String::new()))?;
    let path = dir.join(INSTALL_MARKER);
    let fd = match rustix::fs::openat(
        &d,
        INSTALL_MARKER,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => {
            let hint = format!(
                " (a pod installed by a podc older than {INSTALL_MARKER} has none: if this is pod {pod}'s, move it aside and install again, or `podc uninstall {pod} --keep-data` and remove it by hand)"
            );
            return Err(foreign(format!("no {INSTALL_MARKER} in it"), hint));
        }
        Err(rustix::io::Errno::LOOP) => {
            return Err(foreign(
                format!("its {INSTALL_MARKER} is a symbolic link"),
                String::new(),
            ))
        }
        Err(e) => return Err(io_err(&path)(e.into())),
    };
    let mut f = File::from(fd);
    let m = f.metadata().map_err(io_err(&path))?;
    let bad = |r: String| foreign(format!("its {INSTALL_MARKER} is {r}"), String::new());
    if !m.is_file() {
        return Err(bad("not a regular file".into()));
    }
    owned_by_us(&m).map_err(bad)?;
    if m.nlink() != 1 {
        return Err(bad(format!("a file with {} links", m.nlink())));
    }
    let mut text = String::new();
    let expected = marker_text(pod);
    (&mut f)
        .take(expected.len() as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|_| bad("not text".into()))?;
    if text != expected {
        let named = text
            .lines()
            .find_map(|l| l.strip_prefix("pod = \"")?.strip_suffix('"'));
        return Err(match named {
            Some(other) if other != pod => bad(format!("pod {other}'s, not pod {pod}'s")),
            _ => bad("not one podc wrote".into()),
        });
    }
    let plan = crate::launch::read_plan(dir)
        .map_err(|e| foreign(format!("its mounts.toml: {e}"), String::new()))?;
    if plan.pod != pod {
        return Err(foreign(
            format!("its mounts.toml is pod {}'s, not pod {pod}'s", plan.pod),
            String::new(),
        ));
    }
    Ok(())
}

/// Owned by podc's user and writable by no one else: `Err` says how not.
fn owned_by_us(m: &fs::Metadata) -> Result<(), String> {
    if !trusted(m.uid()) {
        return Err(format!("owned by uid {}, not root", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:04o}, writable by group or others",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// What `uninstall` removes: `dir` if something is there (a link too, to be refused), after
/// the checks.
pub(super) fn present(dir: &Path) -> Result<bool, OpError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(dir)(e)),
    }
}
