//! The host checks of `podc launch` and `--check`: root, systemd-nspawn, cgroups, sources.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::action::*;
use super::host::*;
use super::items::*;
use super::paths::*;
use super::users::*;
use crate::manifest::{CgroupVersion, Egress};
use crate::tree::plan::Step;

/// Checks what must hold before anything is done: root, nspawn, the plan's host paths and
/// cgroup controllers.
pub fn preflight(launch: &Launch, host: &Host, need_root: bool) -> Result<PathBuf, LaunchError> {
    if need_root && crate::sys::effective_uid() != 0 {
        return Err(LaunchError::NotRoot);
    }
    if let Some(m) = launch.missing_images.first() {
        return Err(LaunchError::MissingImage(m.clone()));
    }
    if !host.nsdelegate {
        if let Some(Step::WritableCgroup { app }) = launch
            .plan
            .steps
            .iter()
            .find(|s| matches!(s, Step::WritableCgroup { .. }))
        {
            return Err(LaunchError::NoNsdelegate(app.clone()));
        }
    }
    let nspawn = find_in_path("systemd-nspawn").ok_or(LaunchError::NoNspawn)?;
    for s in &launch.sources {
        if !s.exists() {
            return Err(LaunchError::MissingSource(s.clone()));
        }
    }
    // Every config item and secret is read (as root) before anything is done.
    if let Some(e) = check_items(launch, crate::sys::effective_uid() == 0)
        .into_iter()
        .next()
    {
        return Err(e);
    }
    if launch.plan.egress == Egress::Nat || !launch.plan.networks.is_empty() {
        super::network::check_host()?;
    }
    if launch.plan.cgroup == CgroupVersion::V1 {
        for step in &launch.plan.steps {
            if let Step::CgroupDir { controller, .. } | Step::CgroupBind { controller, .. } = step {
                match host.cgroups.get(controller.name()) {
                    Some(dir) if dir.is_dir() => {
                        // The app cgroups go below ours; below the root they would land among
                        // the host's own system.slice.
                        if dir.parent() == Some(Path::new("/sys/fs/cgroup")) {
                            return Err(LaunchError::RootCgroup(controller.to_string()));
                        }
                    }
                    _ => return Err(LaunchError::MissingController(controller.to_string())),
                }
            }
        }
    }
    Ok(nspawn)
}

/// Looks at the host as the launch would, changing nothing and needing no root (`podc launch
/// --check`): what `preflight` checks, every user and group name in its app's image, and every
/// mount point below an app's root against symbolic links in that app's image. Every problem
/// found is returned.
pub fn check_host(launch: &Launch, host: &Host) -> Vec<LaunchError> {
    let mut problems: Vec<LaunchError> = launch
        .missing_images
        .iter()
        .cloned()
        .map(LaunchError::MissingImage)
        .collect();
    match preflight(launch, host, false) {
        Err(LaunchError::MissingImage(_)) => {
            // Listed above; the rest of preflight still applies.
            let rest = Launch {
                missing_images: Vec::new(),
                ..launch.clone()
            };
            problems.extend(
                preflight(&rest, host, false)
                    .err()
                    .filter(|e| !matches!(e, LaunchError::Item(_))),
            );
        }
        // Listed below with every other item's.
        Err(LaunchError::Item(_)) => {}
        Err(e) => problems.push(e),
        Ok(_) => {}
    }
    problems.extend(check_items(launch, crate::sys::effective_uid() == 0));
    // Each app's root in the tree and the image it shows, as the plan binds them.
    let root = root_of(&launch.actions);
    let app_roots: Vec<String> = launch
        .plan
        .apps
        .iter()
        .map(|a| crate::tree::layout::app_root(a))
        .collect();
    let images: Vec<(PathBuf, PathBuf)> = launch
        .plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Overlay { source, target, .. } | Step::BindHost { source, target, .. }
                if app_roots.contains(target) =>
            {
                Some((inside(root, target), PathBuf::from(source)))
            }
            Step::Image {
                reference, target, ..
            } => host
                .images
                .found
                .get(reference)
                .map(|i| (inside(root, target), i.root.clone())),
            _ => None,
        })
        .collect();
    for a in &launch.actions {
        match a {
            Action::Names {
                app,
                image,
                etc,
                users,
                groups,
            } if image.exists() => problems.extend(
                names_into_pod(app, image, etc, users, groups, false)
                    .into_iter()
                    .flatten(),
            ),
            Action::PersistentVolume {
                root, pod, volume, ..
            } => problems.extend(super::volumes::check_persistent(root, pod, volume)),
            Action::HostPath { path, host_type } => {
                problems.extend(super::host_paths::host_path(path, *host_type, false).err())
            }
            Action::Mkdir(p) | Action::BindWithin { target: p, .. } => {
                if let Some((root, image)) = images
                    .iter()
                    .find(|(root, _)| p.starts_with(root) && p != root)
                {
                    let rel = p.strip_prefix(root).expect("below the root");
                    if let Err(e) = refuse_symlinks(image, &image.join(rel)) {
                        problems.push(e);
                    }
                }
            }
            _ => {}
        }
    }
    problems.extend(check_idmaps(launch));
    problems
}

/// A pod of its own user namespace: every source the launcher will mount idmapped (the
/// host's `/usr`, image roots, overlays' lower layers, the tree) is tried now, with a
/// detached idmapped copy that is dropped again, so that a kernel or file system without
/// idmapped mounts is named before anything is done (as root; others cannot try).
fn check_idmaps(launch: &Launch) -> Vec<LaunchError> {
    use super::userns;
    let Some(tree) = launch.actions.iter().find_map(|a| match a {
        Action::UserNamespace { tree } => Some(tree),
        _ => None,
    }) else {
        return Vec::new();
    };
    if crate::sys::effective_uid() != 0 {
        return Vec::new();
    }
    let range = userns::IdRange {
        base: userns::FIRST_BASE,
    };
    let ns = match userns::namespace(range) {
        Ok(ns) => ns,
        Err(source) => {
            return vec![LaunchError::Io {
                what: "a user namespace for",
                path: tree.clone(),
                source,
            }]
        }
    };
    let mut sources = vec![tree.as_path()];
    sources.extend(launch.actions.iter().filter_map(|a| match a {
        Action::IdmappedBind { source, .. } => Some(source.as_path()),
        Action::Overlay { lower, .. } => Some(lower.as_path()),
        _ => None,
    }));
    sources.dedup();
    sources
        .into_iter()
        .filter(|p| p.exists())
        .filter_map(|p| {
            let e = userns::can_idmap(p, std::os::fd::AsFd::as_fd(&ns)).err()?;
            Some(LaunchError::Io {
                what: "userNamespace: private needs",
                path: p.to_path_buf(),
                source: e,
            })
        })
        .collect()
}

pub(super) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
