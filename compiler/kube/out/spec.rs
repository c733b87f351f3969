//! The pod spec's own fields: in what order the init apps are init containers, the restart
//! policy, the supplementary groups, the volumes (and the claims persistent ones need); and
//! what of `after` and the apps' order import would not read back from them, into `podc/apps`
//! and `podc/pod`.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{json, Value};

use super::common::{
    app_path, id_or_name, restart_policy, restart_rank, restart_word, Out, MAX_ID,
};
use super::resources::plain_quantity;
use crate::diag::codes;
use crate::kube::{Kind, APPS_ANNOTATION};
use crate::manifest::{IdOrName, ItemKind, Restart};
use crate::pod::{App, Pod, VolumeKind};

/// Which apps are init containers, in the order Kubernetes runs them: the apps with `init:
/// true`, in the manifest's order, except that one comes after every init app it names (a
/// stable topological sort).
pub fn init_apps(pod: &Pod) -> Vec<usize> {
    let n = pod.apps.len();
    let index = |name: &str| pod.apps.iter().position(|a| a.name == name);
    let init: Vec<bool> = pod.apps.iter().map(|a| a.init).collect();
    let mut order = Vec::new();
    let mut placed = vec![false; n];
    // `after` has no cycles (resolve checks), so each round places at least one app. An app
    // that is no init container has no place in the order.
    while order.len() < init.iter().filter(|&&x| x).count() {
        let next = (0..n).find(|&i| {
            init[i]
                && !placed[i]
                && pod.apps[i]
                    .after
                    .iter()
                    .all(|d| index(d).is_some_and(|j| placed[j] || !init[j]))
        });
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => break,
        }
    }
    order
}

/// The pod's restart policy: that of its long-running apps (`regular`), the most restarting
/// one if they differ, or Always for a Deployment; an app that restarts otherwise is kept in
/// `podc/apps` with a warning. Import reads an init container as `restart: no`, so an init
/// app that restarts on-failure is kept there too, with a warning where the pod's policy is
/// Never (Kubernetes then does not retry an init container either).
pub(super) fn restart(
    pod: &Pod,
    kind: Kind,
    (init, regular): (&[usize], &[usize]),
    out: &mut Out,
) -> Restart {
    // A Deployment's pods always restart (Kubernetes takes no other policy there).
    let policy = match kind {
        Kind::Deployment => Restart::Always,
        Kind::Pod => regular
            .iter()
            .map(|&i| pod.apps[i].restart)
            .max_by_key(|&r| restart_rank(r))
            .unwrap_or(Restart::No),
    };
    for &i in regular {
        let a = &pod.apps[i];
        if a.restart != policy {
            let why = match kind {
                Kind::Deployment => "a Deployment's restartPolicy is Always",
                Kind::Pod => "the pod's restartPolicy is Always (from another app)",
            };
            let why = why.replace("Always", restart_policy(policy));
            out.warn(
                codes::KUBE_RESTART,
                format!("{}.restart", app_path(i)),
                format!(
                    "app {:?} restarts `{}`, but {why}; kept in {APPS_ANNOTATION}",
                    a.name,
                    restart_word(a.restart),
                ),
            );
            out.app(&a.name, "restart", json!(restart_word(a.restart)));
        }
    }
    for &i in init {
        let a = &pod.apps[i];
        if a.restart == Restart::No {
            continue;
        }
        if policy == Restart::No {
            out.warn(
                codes::KUBE_RESTART,
                format!("{}.restart", app_path(i)),
                format!(
                    "init app {:?} restarts `{}`, but under the pod's restartPolicy Never Kubernetes does not retry a failed init container; kept in {APPS_ANNOTATION}",
                    a.name,
                    restart_word(a.restart),
                ),
            );
        }
        out.app(&a.name, "restart", json!(restart_word(a.restart)));
    }
    policy
}

/// The supplementary groups Kubernetes keeps for the whole pod: the numeric ids every app
/// has, in the first app's order; an app with others keeps its own list in `podc/apps`.
pub(super) fn supplementary_groups(pod: &Pod, out: &mut Out) -> Vec<u32> {
    let numeric = |a: &App| -> Vec<u32> {
        a.supplementary_groups
            .iter()
            .filter_map(|g| match g {
                IdOrName::Id(id) if *id <= MAX_ID => Some(*id),
                IdOrName::Id(_) => None,
                IdOrName::Name(_) => None,
            })
            .collect()
    };
    let groups: Vec<u32> = numeric(&pod.apps[0])
        .into_iter()
        .filter(|g| pod.apps.iter().all(|a| numeric(a).contains(g)))
        .collect();
    for (i, a) in pod.apps.iter().enumerate() {
        let own: Vec<IdOrName> = groups.iter().map(|&g| IdOrName::Id(g)).collect();
        if a.supplementary_groups != own {
            out.warn(
                codes::KUBE_GROUPS,
                format!("{}.supplementaryGroups", app_path(i)),
                format!(
                    "app {:?} has supplementary groups other than the one list Kubernetes keeps for the whole pod ({}); kept in {APPS_ANNOTATION}",
                    a.name,
                    if groups.is_empty() {
                        "here: none".to_string()
                    } else {
                        format!("supplementalGroups: {groups:?}")
                    }
                ),
            );
            let list: Vec<Value> = a.supplementary_groups.iter().map(id_or_name).collect();
            out.app(&a.name, "supplementaryGroups", Value::Array(list));
        }
    }
    groups
}

/// `after` and the apps' order as far as import would not read them back from the init
/// containers (`init`, in their order) and the regular ones.
pub(super) fn order(pod: &Pod, init: &[usize], regular: &[usize], out: &mut Out) {
    // The apps each app names in `after` as import reads them back: an init container is
    // after the init containers before it, a long-running app after every init container.
    let names = |list: &[usize]| -> Vec<String> {
        list.iter().map(|&j| pod.apps[j].name.clone()).collect()
    };
    for (i, a) in pod.apps.iter().enumerate() {
        let implied = match init.iter().position(|&j| j == i) {
            Some(k) => names(&init[..k]),
            None => names(init),
        };
        if a.after != implied {
            let long_running: Vec<&String> = a
                .after
                .iter()
                .filter(|d| !init.iter().any(|&j| pod.apps[j].name == **d))
                .collect();
            if !long_running.is_empty() {
                out.warn(
                    codes::KUBE_AFTER,
                    format!("{}.after", app_path(i)),
                    format!(
                        "app {:?} starts after the long-running {}; Kubernetes starts containers together; kept in {APPS_ANNOTATION}",
                        a.name,
                        long_running
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            out.app(&a.name, "after", json!(a.after));
        }
    }
    let order: Vec<usize> = init
        .iter()
        .copied()
        .chain(regular.iter().copied())
        .collect();
    if order != (0..pod.apps.len()).collect::<Vec<_>>() {
        let names: Vec<&str> = pod.apps.iter().map(|a| a.name.as_str()).collect();
        out.pod.insert("appOrder".into(), json!(names));
    }
}

/// The pod's volumes: a host path, an emptyDir (in memory, with its size, for a memory
/// volume), an image, or for a persistent volume a claim named `<pod>-<volume>` that must exist (a
/// warning says so: its storage is the cluster's to decide).
pub(super) fn volumes(pod: &Pod, out: &mut Out) -> Vec<core::Volume> {
    let mut list = Vec::new();
    for (i, v) in pod.volumes.iter().enumerate() {
        let mut volume = core::Volume {
            name: v.name.clone(),
            ..Default::default()
        };
        match &v.kind {
            VolumeKind::Host { source, host_type } => {
                volume.host_path = Some(core::HostPathVolumeSource {
                    path: source.clone(),
                    type_: host_type.kube_name().map(str::to_string),
                })
            }
            VolumeKind::Empty { .. } => {
                volume.empty_dir = Some(core::EmptyDirVolumeSource::default())
            }
            VolumeKind::Projected { sources, .. } => {
                let optional = |s: &crate::pod::Projected| s.optional.then_some(true);
                let sources = sources
                    .iter()
                    .map(|s| match s.item.kind {
                        ItemKind::Config => core::VolumeProjection {
                            config_map: Some(core::ConfigMapProjection {
                                name: s.item.name.clone(),
                                optional: optional(s),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        ItemKind::Secret => core::VolumeProjection {
                            secret: Some(core::SecretProjection {
                                name: s.item.name.clone(),
                                optional: optional(s),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    })
                    .collect();
                volume.projected = Some(core::ProjectedVolumeSource {
                    sources: Some(sources),
                    ..Default::default()
                });
            }
            // Kubernetes 1.31 and newer.
            VolumeKind::Image { reference } => {
                volume.image = Some(core::ImageVolumeSource {
                    reference: Some(reference.to_string()),
                    pull_policy: None,
                })
            }
            VolumeKind::Memory { size, written, .. } => {
                let limit = if plain_quantity(written) {
                    written.clone()
                } else {
                    size.to_string()
                };
                volume.empty_dir = Some(core::EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(Quantity(limit)),
                });
            }
            VolumeKind::Persistent { .. } => {
                let claim = claim_name(&pod.name, &v.name);
                out.warn(
                    codes::KUBE_CLAIM,
                    format!("volumes[{i}]"),
                    format!(
                        "volume {:?} is persistent: on Kubernetes it is the PersistentVolumeClaim {claim:?}, which podc kube does not write; create it in the pod's namespace first (its storage class and size are the cluster's)",
                        v.name
                    ),
                );
                volume.persistent_volume_claim = Some(core::PersistentVolumeClaimVolumeSource {
                    claim_name: claim,
                    read_only: v.read_only.then_some(true),
                });
            }
        }
        list.push(volume);
    }
    list
}

/// The PersistentVolumeClaim of a persistent volume: `<pod>-<volume>`, as import expects it.
pub fn claim_name(pod: &str, volume: &str) -> String {
    [pod, "-", volume].concat()
}
