//! One app as a container: its image, command, environment, working directory, ports and
//! mounts; the security context and resources come from their own parts, and what has no
//! Kubernetes field goes to `podc/apps`.

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::common::{app_path, Out};
use super::health::probes;
use super::resources::resources;
use super::security::security_context;
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::dollar::escape;
use crate::kube::{KubeOptions, APPS_ANNOTATION};
use crate::manifest::expand::{write, Piece};
use crate::manifest::{Activation, Protocol};
use crate::pod::{App, Arg, Command, Filter, Image, Part, Pod};

/// App `i` of the pod as a container (or init container).
pub(super) fn container(pod: &Pod, i: usize, opts: &KubeOptions, out: &mut Out) -> core::Container {
    let a = &pod.apps[i];
    let image = image(a, i, opts, out);
    let lifecycle = lifecycle(a);
    let sc = security_context(a, i, out);
    extras(a, i, out);
    let resources = resources(a, i, out);
    let ports = ports(a, out);
    let (startup_probe, liveness_probe) = probes(a, i, out);
    let sc_empty = sc == core::SecurityContext::default();
    let mut env: Vec<core::EnvVar> = a
        .environment
        .iter()
        .map(|(k, v)| core::EnvVar {
            name: k.clone(),
            // Written so that the kubelet expands nothing in it, as podc does not.
            value: Some(escape(v)),
            value_from: None,
        })
        .collect();
    env.extend(super::items::env(a, i, out));
    env.sort_by(|x, y| x.name.cmp(&y.name));
    let mut volume_mounts: Vec<core::VolumeMount> = a
        .mounts
        .iter()
        .map(|m| core::VolumeMount {
            name: m.volume.clone(),
            mount_path: m.path.clone(),
            read_only: m.read_only.then_some(true),
            sub_path: m.sub_path.clone(),
            ..Default::default()
        })
        .collect();
    volume_mounts.extend(super::items::mounts(a));
    let env_from = super::items::env_from(pod, a, i, out);
    core::Container {
        name: a.name.clone(),
        image: Some(image),
        // `exec` is the whole command line, `args` Kubernetes' args without a command: the
        // image's Entrypoint with them. A bare program is looked up in the image's PATH on
        // Kubernetes too.
        command: match &a.command {
            Command::Exec(exec) | Command::LookUp(exec) => Some(escape_all(exec)),
            Command::Args(_) | Command::Image => None,
        },
        args: match &a.command {
            Command::Args(args) => Some(escape_all(args)),
            _ => None,
        },
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        working_dir: a
            .given
            .working_directory
            .then(|| a.working_directory.clone()),
        security_context: (!sc_empty).then_some(sc),
        resources,
        volume_mounts: (!volume_mounts.is_empty()).then_some(volume_mounts),
        ports: (!ports.is_empty()).then_some(ports),
        startup_probe,
        liveness_probe,
        lifecycle,
        ..Default::default()
    }
}

/// The app's hooks as `lifecycle`, each an exec handler (an init app has none: resolve refuses
/// them, as Kubernetes refuses an init container a lifecycle).
fn lifecycle(a: &App) -> Option<core::Lifecycle> {
    if a.hooks.is_empty() {
        return None;
    }
    let handler = |argv: &Option<Vec<String>>| {
        argv.as_ref().map(|argv| core::LifecycleHandler {
            exec: Some(core::ExecAction {
                command: Some(argv.clone()),
            }),
            ..Default::default()
        })
    };
    Some(core::Lifecycle {
        post_start: handler(&a.hooks.post_start),
        pre_stop: handler(&a.hooks.pre_stop),
        ..Default::default()
    })
}

/// The image: `--image` for the app, else its reference; a path image without `--image` is
/// an error.
fn image(a: &App, i: usize, opts: &KubeOptions, out: &mut Out) -> String {
    let path = app_path(i);
    match (opts.images.get(&a.name), &a.image) {
        (Some(r), _) => r.clone(),
        (None, Image::Reference(r)) => r.to_string(),
        (None, Image::Path(p)) => {
            out.errors.push(
                Diagnostic::new(
                    codes::KUBE_IMAGE_PATH,
                    format!(
                        "app {:?} runs the root filesystem {p:?}, a path that has no meaning on a cluster",
                        a.name
                    ),
                )
                .at(format!("{path}.image"), None)
                .help(format!(
                    "push the image to a registry and give its reference: --image {}=REGISTRY/NAME:TAG",
                    a.name
                )),
            );
            String::new()
        }
    }
}

/// The isolators Kubernetes has no field for (tasks, oomScoreAdj, system call logging and
/// ABIs, relaxed sandbox parts):
/// each to `podc/apps` with a warning.
fn extras(a: &App, i: usize, out: &mut Out) {
    let path = app_path(i);
    let extra = |key: &str, value: Value, what: String, out: &mut Out| {
        out.warn(
            codes::KUBE_APP_EXTRA,
            format!("{path}.isolators.{key}"),
            format!(
                "app {:?}: {what} has no Kubernetes field; kept in {APPS_ANNOTATION}",
                a.name
            ),
        );
        out.app(&a.name, key, value);
    };
    if let Some(t) = a.limits.tasks {
        extra("tasks", json!(t), "the tasks limit".into(), out);
    }
    if let Some(o) = a.oom_score_adj {
        extra("oomScoreAdj", json!(o), "oomScoreAdj".into(), out);
    }
    if a.cgroup_writable {
        // Kubernetes' field (securityContext.cgroupOptions.mountMode: ReadWrite, KEP-5474) is
        // alpha, and in none of the APIs podc writes for (1.30 to 1.37, k8s-openapi 0.29).
        out.warn(
            codes::KUBE_APP_EXTRA,
            format!("{path}.isolators.cgroupMount"),
            format!(
                "app {:?}: cgroupMount: read-write is Kubernetes' securityContext.cgroupOptions.mountMode: ReadWrite, an alpha field the Kubernetes API podc writes for does not have; kept in {APPS_ANNOTATION}",
                a.name
            ),
        );
        out.app(&a.name, "cgroupMount", json!("read-write"));
    }
    if let Some(f) = &a.syscall_log {
        let (key, list) = match f {
            Filter::Retain(l) => ("retain", l),
            Filter::Remove(l) => ("remove", l),
        };
        extra(
            "syscallLog",
            json!({ key: list }),
            "logging system calls".into(),
            out,
        );
    }
    if !a.syscall_architectures.is_empty() {
        extra(
            "syscallArchitectures",
            json!(a.syscall_architectures),
            "a restriction of the system call ABIs".into(),
            out,
        );
    }
    if !a.relax.is_empty() {
        extra(
            "relax",
            json!(a.relax.iter().map(|r| r.name()).collect::<Vec<_>>()),
            "relaxing podc's sandbox".into(),
            out,
        );
    }
}

/// The published ports; how each reaches the app (socket activation) to `podc/apps`.
fn ports(a: &App, out: &mut Out) -> Vec<core::ContainerPort> {
    let ports: Vec<core::ContainerPort> = a
        .ports
        .iter()
        .map(|p| core::ContainerPort {
            name: p.name.clone(),
            container_port: i32::from(p.port),
            host_port: Some(i32::from(p.host_port)),
            host_ip: p.host_ip.map(|ip| ip.to_string()),
            protocol: Some(
                match p.protocol {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                }
                .into(),
            ),
        })
        .collect();
    if a.ports.iter().any(|p| p.activation == Activation::Socket) {
        // How the port reaches the app is podc's own; Kubernetes' default is a proxy.
        let list: Vec<Value> = a
            .ports
            .iter()
            .map(|p| {
                json!(match p.activation {
                    Activation::Proxy => "proxy",
                    Activation::Socket => "socket",
                })
            })
            .collect();
        out.app(&a.name, "activation", Value::Array(list));
    }
    ports
}

/// A command line written so that the kubelet's `$(NAME)` expansion gives it back as podc runs
/// it: text escaped, a variable read at launch as `$(NAME)`.
fn escape_all(list: &[Arg]) -> Vec<String> {
    list.iter()
        .map(|a| {
            write(a.parts().iter().map(|p| match p {
                Part::Text(t) => Piece::Text(t),
                Part::Var(n) => Piece::Ref(n),
            }))
        })
        .collect()
}
