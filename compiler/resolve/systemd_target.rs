//! The target: the systemd version and cgroup hierarchy the units are for, from the manifest
//! and the command line's overrides.

use super::checker::*;
use crate::diag::codes;
use crate::manifest::{CgroupVersion, Manifest};
use crate::systemd::target::{self, Feature, Target};

pub(super) fn resolve_target(c: &mut Checker, m: &Manifest, overrides: Overrides) -> Target {
    let spec = m.target.as_ref();
    let mut t = Target::default();
    if let Some(v) = spec.and_then(|s| s.cgroup) {
        t.cgroup = v;
    }
    if let Some(v) = spec.and_then(|s| s.systemd) {
        if v < u64::from(target::MIN_SYSTEMD) || v > 9999 {
            c.value(
                codes::SYSTEMD_VERSION,
                "target.systemd",
                format!(
                    "systemd {v} is not a version podc can target; use {} or newer",
                    target::MIN_SYSTEMD
                ),
            );
        } else {
            t.systemd = v as u32;
        }
    }
    if let Some(v) = overrides.cgroup {
        t.cgroup = v;
    }
    if let Some(v) = overrides.systemd {
        t.systemd = v;
    }
    if t.cgroup == CgroupVersion::V1 && t.systemd >= target::CGROUP_V1_REMOVED {
        // Name each side where it was set: a flag, or the manifest's key.
        let flags: Vec<String> = [
            overrides.cgroup.map(|_| "--cgroup v1".to_string()),
            overrides.systemd.map(|v| format!("--systemd {v}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let message = format!(
            "systemd {} cannot run on cgroup v1: support for it was removed in systemd {}",
            t.systemd,
            target::CGROUP_V1_REMOVED
        );
        let manifest_side = if overrides.cgroup.is_none() && spec.and_then(|s| s.cgroup).is_some() {
            Some("target.cgroup")
        } else if overrides.systemd.is_none() {
            Some("target.systemd")
        } else {
            None
        };
        match (flags.is_empty(), manifest_side) {
            (true, _) => {
                let path = if spec.and_then(|s| s.cgroup).is_some() {
                    "target.cgroup"
                } else {
                    "target.systemd"
                };
                c.value(codes::CGROUP_V1_REMOVED, path, message);
            }
            (false, Some(path)) => {
                c.value(
                    codes::CGROUP_V1_REMOVED,
                    path,
                    format!("{message} (the command line says {})", flags.join(" ")),
                );
            }
            (false, None) => {
                c.flag(
                    codes::CGROUP_V1_REMOVED,
                    format!("{}: {message}", flags.join(" ")),
                );
            }
        }
    }
    // Every app needs MountAPIVFS= to run in its own root directory.
    if !t.has(Feature::MountApiVfs) && !m.apps.is_empty() {
        let (since, _) = target::availability(Feature::MountApiVfs);
        let message = format!(
            "{} cannot run apps in their own root filesystem: podc needs MountAPIVFS= (systemd {since} or newer)",
            c.systemd(t)
        );
        if overrides.systemd.is_some() {
            c.flag(codes::NO_MOUNT_API_VFS, message);
        } else {
            c.value(codes::NO_MOUNT_API_VFS, "target.systemd", message);
        }
    }
    t
}
