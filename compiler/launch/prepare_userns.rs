//! A pod of its own user namespace, as the launch being prepared sees it: the range first,
//! the roots the pod shares with the host through idmapped mounts, the pod's root idmapped
//! last, and nspawn told the range.

use super::*;
use crate::manifest::UserNamespace;

/// Rewrites `actions` for a pod with `userNamespace: private` (nothing otherwise): its range
/// taken right after the mount namespace is, the binds of the host's /usr and of the apps'
/// read-only image roots made idmapped (an overlay's lower layer is, when it is mounted), and
/// the pod's root made idmapped once every mount is in place, before the network.
pub(super) fn with_user_namespace(
    actions: &mut Vec<Action>,
    plan: &MountPlan,
    tree: &Path,
    root: &Path,
) {
    if plan.user_namespace != UserNamespace::Private {
        return;
    }
    let shared: Vec<PathBuf> = std::iter::once(root.join("usr"))
        .chain(plan.apps.iter().map(|a| inside(root, &app_root(a))))
        .collect();
    for a in actions.iter_mut() {
        if let Action::Bind {
            source,
            target,
            read_only,
        } = a
        {
            if shared.contains(target) {
                *a = Action::IdmappedBind {
                    source: source.clone(),
                    target: target.clone(),
                    read_only: *read_only,
                };
            }
        }
    }
    let first = actions
        .iter()
        .position(|a| matches!(a, Action::Unshare))
        .map_or(0, |i| i + 1);
    actions.insert(
        first,
        Action::UserNamespace {
            tree: tree.to_path_buf(),
        },
    );
    let mut last = actions
        .iter()
        .position(|a| matches!(a, Action::Network { .. }))
        .unwrap_or(actions.len());
    if let Some(Action::Network { low_ports, .. }) = actions.get_mut(last) {
        // The launcher makes this network namespace, as the host's root: its owner is the
        // host's user namespace, where the pod's root holds no capability, so not even it
        // could bind a port below 1024 (an app on port 80 failed with EACCES). Every id of the
        // pod may, in this namespace of the pod's alone, as Docker lets every container.
        *low_ports = true;
    }
    // The mount points of the files nspawn binds there (the host's /etc/resolv.conf, or the
    // pod network's), made now: nspawn cannot make them through the idmapped root.
    let hosts = !plan.networks.is_empty() || !plan.allow_host.is_empty();
    let files: &[&str] = if hosts {
        &["etc/resolv.conf", "etc/hosts"]
    } else {
        &["etc/resolv.conf"]
    };
    for file in files {
        actions.insert(
            last,
            Action::Seed {
                path: root.join(file),
                content: String::new(),
            },
        );
        last += 1;
    }
    actions.insert(last, Action::IdmapRoot(root.to_path_buf()));
}

/// nspawn's options that keep it from writing into the pod's idmapped root as the host's
/// root (which that mount cannot map): no timezone link, and /etc/resolv.conf bound from the
/// host (on the host's network) or left alone (a private network brings its own, or none).
pub(super) fn nspawn_no_writes(plan: &MountPlan, argv: &mut Vec<String>) {
    if plan.user_namespace != UserNamespace::Private {
        return;
    }
    argv.push("--timezone=off".into());
    if !argv.iter().any(|a| a.starts_with("--resolv-conf=")) {
        argv.push(match plan.network {
            crate::manifest::Network::Host => "--resolv-conf=bind-host".into(),
            crate::manifest::Network::Private => "--resolv-conf=off".into(),
        });
    }
}

/// nspawn's options for a pod in the user namespace whose range starts at `base`: the range,
/// and no change of any file's owner (the launcher's idmapped mounts did what is needed).
pub fn nspawn_user_namespace(base: u32) -> [String; 2] {
    [
        format!("--private-users={base}:{}", crate::launch::userns::RANGE),
        "--private-users-ownership=off".to_string(),
    ]
}

/// nspawn's option for a pod of its own user namespace with a gRPC or HTTPS probe: a tmpfs at
/// the probe program's directory (`/run/podc`), below which the pod also keeps its health and
/// results. nspawn's bind of the program would make that directory as the host's root, where
/// the pod's systemd then cannot make `/run/podc/health` (EACCES); a tmpfs nspawn mounts is
/// owned by the pod's root (nspawn gives it the range's first id), and nspawn mounts it before
/// the bind below it (it sorts its mounts by path).
pub(super) fn probe_tmpfs() -> String {
    let dir = Path::new(crate::tree::layout::PROBE_PROGRAM)
        .parent()
        .unwrap_or(Path::new("/run"));
    format!("--tmpfs={}:mode=0755", dir.display())
}
