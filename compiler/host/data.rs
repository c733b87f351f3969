//! A pod's data outside its install directory: its persistent volumes, which the launcher
//! makes below the volumes root (`<root>/<pod>/<volume>`, see `launch::volumes_dir`). They
//! outlive restarts, reinstalls and `podc uninstall`; `podc status` lists them, and only
//! `podc uninstall --delete-data` removes them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::marker::check_ancestors;
use super::systemd::*;
use crate::tree::plan::{MountPlan, Step};

/// The directory of a pod's persistent volumes on the host (below `root` for `--root`).
pub fn volumes_of(root: &Root, pod: &str) -> PathBuf {
    root.path(&crate::launch::volumes_dir().to_string_lossy())
        .join(pod)
}

/// Whether the pod has a volumes directory to remove, checked before anything is stopped or
/// removed: a real directory (not a link), root's and writable by no one else, below
/// directories no one else can change. It is removed whole, with volumes the pod no longer
/// declares: they are its data too.
pub(super) fn check_volumes_dir(dir: &Path) -> Result<bool, OpError> {
    let m = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let refuse = |reason: String| OpError::NotVolumes {
        path: dir.to_path_buf(),
        reason,
    };
    if m.file_type().is_symlink() {
        return Err(refuse("a symbolic link".into()));
    }
    if !m.is_dir() {
        return Err(refuse("not a directory".into()));
    }
    if m.uid() != 0 && m.uid() != crate::sys::effective_uid() {
        return Err(refuse(format!("owned by uid {}, not root", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "mode {:04o}, writable by group or others",
            m.mode() & 0o7777
        )));
    }
    check_ancestors(dir)?;
    Ok(true)
}

/// A persistent volume of an installed pod, for `podc status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeStatus {
    pub name: String,
    /// Its directory on the host.
    pub path: PathBuf,
    /// Whether it exists yet (the launcher makes it at the pod's first launch).
    pub exists: bool,
    /// Bytes it takes on disk (allocated blocks, not following links or leaving its file
    /// system), counted over at most [`MAX_COUNTED`] entries.
    pub bytes: Option<u64>,
    /// Whether `bytes` counts every entry (false: there were more than [`MAX_COUNTED`]).
    pub complete: bool,
}

/// The most entries `podc status` looks at in one volume: the size is a glance, not `du`.
pub const MAX_COUNTED: usize = 100_000;

/// The persistent volumes the plan declares, where they are on the host and what they take.
pub fn persistent_volumes(plan: &MountPlan, root: &Root) -> Vec<VolumeStatus> {
    let dir = volumes_of(root, &plan.pod);
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::PersistentVolume { volume, .. } => Some(volume),
            _ => None,
        })
        .map(|name| {
            let path = dir.join(name);
            let exists = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let (bytes, complete) = if exists {
                let (b, c) = disk_usage(&path);
                (Some(b), c)
            } else {
                (None, true)
            };
            VolumeStatus {
                name: name.clone(),
                path,
                exists,
                bytes,
                complete,
            }
        })
        .collect()
}

/// Allocated bytes below `dir` on its own file system, and whether every entry was counted.
fn disk_usage(dir: &Path) -> (u64, bool) {
    let Ok(top) = fs::symlink_metadata(dir) else {
        return (0, true);
    };
    let mut total = top.blocks() * 512;
    let mut seen = 1;
    let mut queue = vec![dir.to_path_buf()];
    while let Some(d) = queue.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if seen >= MAX_COUNTED {
                return (total, false);
            }
            seen += 1;
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.dev() != top.dev() {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                queue.push(e.path());
            }
        }
    }
    (total, true)
}
