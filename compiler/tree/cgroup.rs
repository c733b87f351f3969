//! The cgroup v1 controllers a pod's plan names, and the rules of its `cgroup-dir` and
//! `cgroup-bind` steps: what of the pod's hierarchy the launcher makes and binds, and what may
//! be bound writable. A leaf of [`super::plan`], which re-exports [`Controller`].

use serde::{Deserialize, Serialize};

use crate::systemd::escape;

/// A cgroup v1 controller whose files the pod's systemd writes (its limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    /// Its name, as the kernel and `/proc/self/cgroup` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    /// The files of an app's cgroup that systemd in the pod writes for its limits (from the
    /// limits table).
    pub fn knobs(self) -> Vec<&'static str> {
        crate::systemd::resources::knobs(self.name())
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `p` is `system.slice/<app>.service` for an app of the pod.
pub(super) fn app_cgroup(apps: &[String], p: &str) -> bool {
    p.strip_prefix("system.slice/")
        .and_then(|r| r.strip_suffix(".service"))
        .is_some_and(|a| apps.iter().any(|x| x == a))
}

/// A `cgroup-bind` step: a file or directory of the pod's v1 hierarchy at its place, writable
/// only where systemd inside must write (cgroup.procs, an app's own limit files).
pub(super) fn cgroup_bind_step(
    apps: &[String],
    controller: Controller,
    path: &String,
    target: &String,
    read_only: bool,
) -> Result<(), String> {
    let app_cgroup = |p: &str| app_cgroup(apps, p);
    let knobs = controller.knobs();
    if !escape::is_normal_rel_path(path) {
        return Err(format!(
            "path {path:?} is not a relative path in normal form"
        ));
    }
    let want = if path.is_empty() {
        format!("/sys/fs/cgroup/{controller}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{path}")
    };
    if *target != want {
        return Err(format!("target {target:?} is not {want:?}"));
    }
    // Writable: cgroup.procs of the pod or an app, and an app's own knobs.
    if !read_only {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let allowed = (file == "cgroup.procs" && (dir.is_empty() || app_cgroup(dir)))
            || (app_cgroup(dir) && knobs.contains(&file));
        if !allowed {
            return Err(format!(
                    "path {path:?} may not be bound writable (only cgroup.procs and an app's own limit files may)"
                ));
        }
    }
    Ok(())
}
