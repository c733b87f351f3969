//! A checked pod as a Kubernetes object: `podc kube`.
//!
//! [`to_kube`] maps each setting to its Kubernetes field where one says the same thing, and
//! writes everything else into two JSON annotations, `podc/pod` and `podc/apps`, with a
//! warning each (codes P11xx). The objects are k8s-openapi's types, serialized to YAML: the
//! bytes depend on the pod alone (every map is ordered, every list in the pod's order).
//!
//! Architecture invariant: for each lossy or order-sensitive setting, out computes what import
//! would read back from the Kubernetes fields alone (the rules in ARCHITECTURE.md, "Kubernetes")
//! and writes the setting into the annotation exactly when that differs. So podc → kube → podc
//! gives the same pod, and a Kubernetes object without the annotations reads as the fields say.

mod common;
mod container;
mod health;
mod items;
mod meta;
mod resources;
mod security;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
pub use meta::qualified_name;
pub use security::{capabilities, capabilities_back};
pub use spec::{claim_name, init_apps};

use crate::diag::{codes, Diagnostic};
use crate::kube::{Kind, KubeOptions, NAME_LABEL};
use crate::manifest::Network;
use crate::pod::Pod;

use common::{restart_policy, Out};

/// A pod as a Kubernetes document, and what did not map exactly.
#[derive(Debug, Clone)]
pub struct Kube {
    /// One YAML document, ending in a newline, without a `---` line.
    pub yaml: String,
    /// Warnings, each with the document path of the setting (`apps[1].isolators.tasks`).
    pub warnings: Vec<Diagnostic>,
}

/// The pod as a Kubernetes Pod or Deployment. Errors (an image by path without `--image`, an
/// annotation podc writes itself) come with the document path of what is wrong.
pub fn to_kube(pod: &Pod, opts: &KubeOptions) -> Result<Kube, Vec<Diagnostic>> {
    let mut out = Out::default();
    let (meta, spec) = pod_spec(pod, opts, &mut out);
    if !out.errors.is_empty() {
        return Err(out.errors);
    }
    let yaml = match opts.kind {
        Kind::Pod => to_yaml(&core::Pod {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                ..meta
            },
            spec: Some(spec),
            status: None,
        }),
        Kind::Deployment => {
            // The pod's labels select it; a pod without labels gets one with its name.
            let labels = match &meta.labels {
                Some(l) => l.clone(),
                None => BTreeMap::from([(NAME_LABEL.to_string(), pod.name.clone())]),
            };
            to_yaml(&Deployment {
                metadata: ObjectMeta {
                    name: Some(pod.name.clone()),
                    namespace: meta.namespace.clone(),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                spec: Some(DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector {
                        match_labels: Some(labels.clone()),
                        ..Default::default()
                    },
                    template: core::PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            namespace: None,
                            ..meta
                        }),
                        spec: Some(spec),
                    },
                    ..Default::default()
                }),
                status: None,
            })
        }
    };
    Ok(Kube {
        yaml,
        warnings: out.warnings,
    })
}

fn to_yaml<T: serde::Serialize>(object: &T) -> String {
    // Every string on one line, quoted where YAML 1.1 readers (Kubernetes' own) would take it
    // for something else: a reviewer compares a command or an image with the manifest's.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    // Serializing plain structs, maps, strings and numbers cannot fail.
    serde_saphyr::to_string_with_options(object, options)
        .expect("a Kubernetes object serializes to YAML")
}

/// The pod's metadata and spec, each part adding what Kubernetes cannot say to the
/// annotations as it goes.
/// `hostUsers`, always written (Kubernetes' default is the node's ids, podc's the pod's own
/// namespace): `false` for a pod of its own user namespace, but on the node's network, which
/// Kubernetes refuses with `hostUsers: false`: the choice is then kept in podc/pod alone.
fn host_users(pod: &Pod) -> Option<bool> {
    use crate::manifest::UserNamespace;
    match (pod.user_namespace, pod.network) {
        (UserNamespace::Host, _) => Some(true),
        (UserNamespace::Private, Network::Private) => Some(false),
        (UserNamespace::Private, Network::Host) => None,
    }
}

fn pod_spec(pod: &Pod, opts: &KubeOptions, out: &mut Out) -> (ObjectMeta, core::PodSpec) {
    meta::check_annotations(pod, out);
    meta::pod_extras(pod, out);
    items::extras(pod, out);

    let init = init_apps(pod);
    let regular: Vec<usize> = (0..pod.apps.len()).filter(|i| !init.contains(i)).collect();
    if regular.is_empty() {
        out.errors.push(
            Diagnostic::new(
                codes::KUBE_ONLY_INIT,
                "every app of this pod is an init app: on Kubernetes they are init containers, and a pod needs at least one container",
            )
            .at("apps", None)
            .help("make the last app a plain one (no `init`): it still runs after the apps it names"),
        );
    }
    let policy = spec::restart(pod, opts.kind, (&init, &regular), out);
    let groups = spec::supplementary_groups(pod, out);
    spec::order(pod, &init, &regular, out);

    let containers = |list: &[usize], out: &mut Out| -> Vec<core::Container> {
        list.iter()
            .map(|&i| container::container(pod, i, opts, out))
            .collect()
    };
    let init_containers = containers(&init, out);
    let regular_containers = containers(&regular, out);
    let mut volumes = spec::volumes(pod, out);
    volumes.extend(items::volumes(pod));

    let meta = meta::object_meta(pod, out);
    let spec = core::PodSpec {
        host_network: (pod.network == Network::Host).then_some(true),
        host_users: host_users(pod),
        restart_policy: Some(restart_policy(policy).into()),
        security_context: (!groups.is_empty()).then(|| core::PodSecurityContext {
            supplemental_groups: Some(groups.iter().map(|&g| i64::from(g)).collect()),
            ..Default::default()
        }),
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        containers: regular_containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..Default::default()
    };
    (meta, spec)
}
