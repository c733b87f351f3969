//! What the host commands read of a built or installed tree: its pod and units from
//! `mounts.toml` and the host unit, and the install directory an installed pod's unit names.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::systemd::*;

/// A built tree, as far as installing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub pod: String,
    /// The install directory, from the host unit's `ExecStart=`.
    pub install_dir: String,
    /// The host unit files in the tree: `podc-<pod>.service`, and `podc-<pod>.socket` for a
    /// pod with published ports.
    pub units: Vec<String>,
    /// The unit `--now` enables and starts: the socket where there is one (`start:
    /// connection`), else the service.
    pub start_unit: String,
}

impl Tree {
    pub fn service(&self) -> String {
        format!("podc-{}.service", self.pod)
    }
}

/// Reads what `install` needs from a tree `podc build` wrote, holding it to the launcher's
/// rules (a tree can be edited after review).
pub fn read_tree(tree: &Path) -> Result<Tree, OpError> {
    let plan = crate::launch::read_plan(tree)?;
    let service = format!("podc-{}.service", plan.pod);
    let path = tree.join(&service);
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    let install_dir = install_dir_of(&text).ok_or_else(|| OpError::NoExecStart(path.clone()))?;
    let socket = format!("podc-{}.socket", plan.pod);
    super::units::check_tree(tree, &plan.pod, tree.join(&socket).is_file())?;
    let mut units = vec![service.clone()];
    let start_unit = if tree.join(&socket).is_file() {
        units.push(socket.clone());
        socket
    } else {
        service
    };
    Ok(Tree {
        pod: plan.pod,
        install_dir,
        units,
        start_unit,
    })
}

/// The install directory named by a host unit: the third word of `ExecStart=<podc> launch
/// <dir>`, decoded as systemd reads it. Only a normal absolute path is accepted (podc build
/// writes nothing else there).
pub fn install_dir_of(unit: &str) -> Option<String> {
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let words = crate::systemd::escape::decode_words(line, true)?;
    match words.as_slice() {
        [_, launch, dir]
            if launch == "launch" && crate::systemd::escape::is_normal_abs_path(dir) =>
        {
            Some(dir.clone())
        }
        _ => None,
    }
}

/// A pod name given on the command line, held to the manifest's name rule's essentials: it
/// names files in /etc/systemd/system, so no `/`, no leading `.`, nothing empty.
pub(super) fn check_pod_name(pod: &str) -> Result<(), OpError> {
    let ok = !pod.is_empty()
        && !pod.starts_with('.')
        && pod
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(OpError::BadName(pod.into()))
    }
}

/// An installed pod: its host unit and install directory.
#[derive(Debug, Clone)]
pub struct InstalledPod {
    pub pod: String,
    pub service_file: PathBuf,
    pub dir: PathBuf,
}

/// Finds an installed pod through its host unit in /etc/systemd/system.
pub fn find_installed(pod: &str, root: &Root) -> Result<InstalledPod, OpError> {
    check_pod_name(pod)?;
    let service_file = root.path(UNIT_DIR).join(format!("podc-{pod}.service"));
    let text = match fs::read_to_string(&service_file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OpError::NotInstalled {
                pod: pod.into(),
                unit: service_file,
            })
        }
        Err(e) => return Err(io_err(&service_file)(e)),
    };
    let dir = install_dir_of(&text).ok_or_else(|| OpError::NoExecStart(service_file.clone()))?;
    Ok(InstalledPod {
        pod: pod.into(),
        service_file,
        dir: root.path(&dir),
    })
}
