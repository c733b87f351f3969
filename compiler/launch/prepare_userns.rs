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
    let last = actions
        .iter()
        .position(|a| matches!(a, Action::Network { .. }))
        .unwrap_or(actions.len());
    actions.insert(last, Action::IdmapRoot(root.to_path_buf()));
}

/// nspawn's options for a pod in the user namespace whose range starts at `base`: the range,
/// and no change of any file's owner (the launcher's idmapped mounts did what is needed).
pub fn nspawn_user_namespace(base: u32) -> [String; 2] {
    [
        format!("--private-users={base}:{}", super::super::userns::RANGE),
        "--private-users-ownership=off".to_string(),
    ]
}
