//! Persistent volumes on the host: `<root>/<pod>/<volume>`, made at a pod's first launch and
//! kept after, reached without ever following a symbolic link.
//!
//! The root and each pod's directory in it are root's, mode 0700, writable by no one else: a
//! pod reaches its volume only through the bind of the volume itself, so no other user of the
//! host can read a pod's data or swap a directory under the launcher. Each directory is opened
//! relative to its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`: a symbolic link or a
//! file where a directory belongs is refused, never followed. A new volume is made under a
//! temporary name, given its owner and mode, and renamed into place, so a launch that dies
//! half-way never leaves a volume with the wrong owner behind. An existing volume is used as the
//! pod left it: its apps may chmod or chown their own data (as PostgreSQL does). But one from
//! the pod's life with the host's ids, launched now in a user namespace of its own, has its
//! owners shifted once into the pod's range ([`super::volume_shift`]).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{fchmod, fchown, fstat, mkdirat, openat, renameat_with, unlinkat};
use rustix::fs::{AtFlags, Gid, Mode, OFlags, RenameFlags, Uid, CWD};
use rustix::io::Errno;

use super::action::LaunchError;

/// Makes `<root>/<pod>/<volume>` with `mode`, `uid` and `gid` if it is missing; checks that it
/// and its parents are real directories, the parents root's alone. An existing volume of a pod
/// that runs in a user namespace of its own, owned by an id outside its range, has its owners
/// shifted into the range, said in `log`.
pub(super) fn make_persistent(
    root: &Path,
    pod: &str,
    volume: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    log: &mut dyn Write,
) -> Result<(), LaunchError> {
    let path = root.join(pod).join(volume);
    let fail = |what: &Path, message: String| LaunchError::PersistentVolume {
        path: what.to_path_buf(),
        message,
    };
    if let Some(parent) = root.parent() {
        fs::create_dir_all(parent).map_err(|e| fail(parent, e.to_string()))?;
    }
    let root_fd = private_dir(None, root).map_err(|m| fail(root, m))?;
    let pod_dir = root.join(pod);
    let pod_fd = private_dir(Some(&root_fd), Path::new(pod)).map_err(|m| fail(&pod_dir, m))?;
    match open_dir(&pod_fd, volume) {
        Ok(fd) => return shift_from_host_ids(&fd, pod, volume, log).map_err(|m| fail(&path, m)),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(fail(&path, not_a_directory(e))),
    }
    // Made under a name no volume has (volume names start with a letter or digit), owned and
    // moded, then renamed into place.
    let staging = format!(".{volume}.new");
    let _ = unlinkat(&pod_fd, staging.as_str(), AtFlags::REMOVEDIR);
    let io = |e: Errno| fail(&path, std::io::Error::from(e).to_string());
    mkdirat(&pod_fd, staging.as_str(), Mode::from_raw_mode(0o700)).map_err(io)?;
    let fd = open_dir(&pod_fd, &staging).map_err(io)?;
    let (uid, gid) = (super::userns::host_id(uid), super::userns::host_id(gid));
    fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(io)?;
    // After the chown, which clears set-id bits.
    fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io)?;
    renameat_with(
        &pod_fd,
        staging.as_str(),
        &pod_fd,
        volume,
        RenameFlags::NOREPLACE,
    )
    .map_err(io)?;
    Ok(())
}

/// Files of the pod's life with the host's ids (`userNamespace: host`, once the default): a
/// pod that runs in a user namespace of its own now (the launcher shifts owners by its base)
/// would see them as `nobody`, and its root could not write its own data. The volume's
/// directory owned by an id outside the pod's range says so: its owners are shifted into the
/// range, once (see [`super::volume_shift`]).
fn shift_from_host_ids(
    fd: &OwnedFd,
    pod: &str,
    volume: &str,
    log: &mut dyn Write,
) -> Result<(), String> {
    use super::volume_shift::{needed, shift};
    let base = super::userns::host_id(0);
    if base == 0 || !needed(fd.as_fd(), base).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let done = shift(fd.as_fd(), base).map_err(|e| e.to_string())?;
    if done.entries == 0 {
        // Its directory's owner is an id past 65535 (no shift takes it into the range), and
        // nothing in it was below 65536.
        return Ok(());
    }
    let mounts = match done.mounts {
        0 => String::new(),
        n => format!("; {n} mount point(s) in it left as they are"),
    };
    let _ = writeln!(
        log,
        "podc launch: pod {pod}, volume {volume}: its files were owned by the host's ids (from launches without a user namespace of its own); shifted the owners of {} entries into the pod's range {}{mounts}",
        done.entries,
        super::userns::IdRange { base },
    );
    Ok(())
}

/// What `podc launch --check` can tell without changing anything: the root, the pod's
/// directory and the volume, where they exist, are real directories.
pub fn check_persistent(root: &Path, pod: &str, volume: &str) -> Option<LaunchError> {
    for path in [
        root.to_path_buf(),
        root.join(pod),
        root.join(pod).join(volume),
    ] {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let message = if m.file_type().is_symlink() {
                    "is a symbolic link; podc follows none where persistent volumes live"
                } else {
                    "is not a directory"
                };
                return Some(LaunchError::PersistentVolume {
                    path,
                    message: message.into(),
                });
            }
            Err(_) => return None,
        }
    }
    None
}

/// Opens the directory `name` below `at` without following a symbolic link.
fn open_dir(at: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn not_a_directory(e: Errno) -> String {
    match e {
        Errno::LOOP | Errno::NOTDIR => {
            "is a symbolic link or not a directory; podc uses only a directory it made".into()
        }
        e => std::io::Error::from(e).to_string(),
    }
}

/// Makes (0700) or opens `name` below `at` (or the path `name` itself without `at`), a real
/// directory owned by this process's user and writable by no one else.
fn private_dir(at: Option<&OwnedFd>, name: &Path) -> Result<OwnedFd, String> {
    let made = match at {
        Some(at) => mkdirat(at, name, Mode::from_raw_mode(0o700)),
        None => mkdirat(CWD, name, Mode::from_raw_mode(0o700)),
    };
    match made {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(std::io::Error::from(e).to_string()),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match at {
        Some(at) => openat(at, name, flags, Mode::empty()),
        None => openat(CWD, name, flags, Mode::empty()),
    }
    .map_err(not_a_directory)?;
    let st = fstat(&fd).map_err(|e| std::io::Error::from(e).to_string())?;
    let me = crate::sys::effective_uid();
    if st.st_uid != me || st.st_mode & 0o022 != 0 {
        return Err(format!(
            "is owned by uid {} with mode {:04o}; the directories above a persistent volume must be uid {me}'s and writable by no one else",
            st.st_uid,
            st.st_mode & 0o7777
        ));
    }
    Ok(fd)
}
