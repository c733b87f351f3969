//! Lower: a resolved [`Pod`] and install settings to a [`UnitTree`]. Cannot fail.
//!
//! Every decision about the generated files is made here: which directive spells a limit on
//! the target, how each value is escaped, which units exist and how they depend on each other,
//! and what the launcher must mount. The templates only lay the result out.

mod app;
mod health;
mod items;
mod lifecycle;
mod limits;
mod mount_plan;
mod sockets;
#[cfg(test)]
mod tests;
mod units;

pub use health::summary as health_summary;
use health::*;
use lifecycle::*;
use limits::*;
use mount_plan::*;
use sockets::*;
pub use sockets::{proxy_name, SOCKET_PROXYD};
pub use units::*;

use crate::manifest::Start;
use crate::pod::Pod;
use crate::systemd::escape;
use crate::tree::layout::unit_name;

use app::*;

/// Where the tree is installed on the host, and where podc is; both absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub dir: String,
    pub podc: String,
}

pub fn lower(pod: &Pod, install: &Install) -> UnitTree {
    let t = pod.target;
    let cgroup = format!("cgroup {}", t.cgroup);
    // An init app that other apps start after is started by them (see `held`).
    let app_units: Vec<String> = pod
        .apps
        .iter()
        .filter(|a| !held(pod, a))
        .map(|a| unit_name(&a.name))
        .collect();
    let socket = host_socket(pod);
    UnitTree {
        pod: pod.name.clone(),
        manifest_file: pod.manifest_file.clone(),
        annotations: pod
            .annotations
            .iter()
            .map(|(k, v)| format!("{} = {}", escape::comment_text(k), escape::comment_text(v)))
            .collect(),
        host: HostUnit {
            file: format!("podc-{}.service", pod.name),
            description: escape::verbatim(&format!("podc pod {}", pod.name)),
            unit: match &socket {
                Some(s) => vec![d("Requires", s.file.clone()), d("After", s.file.clone())],
                None => Vec::new(),
            },
            install: {
                let mut lines = Vec::new();
                if pod.start == Start::Boot {
                    lines.push(d("WantedBy", "machines.target"));
                }
                if let Some(s) = &socket {
                    lines.push(d("Also", s.file.clone()));
                }
                lines
            },
            service: host_service(pod, install),
            limits: limit_directives(&pod.limits, t, &limits_source(None)),
            cgroup: cgroup.clone(),
        },
        target: PodTarget {
            description: escape::verbatim(&format!("podc pod {}", pod.name)),
            wants: app_units.clone(),
        },
        apps: pod
            .apps
            .iter()
            .map(|a| lower_app(pod, a, &cgroup))
            .collect(),
        exit: lower_exit(pod),
        result: lower_result(pod),
        halt: HaltTarget {
            // A halt inside a container loses the exit status systemd was given (it ends with a
            // reboot() call that only says "halted"); exit.target ends systemd with that status,
            // after the same orderly stop of every unit (shutdown.target). Measured on systemd
            // 257: a pod stopped after an OOM kill ended 0 through halt.target.
            description: escape::verbatim(&format!("podc pod {}: stop by exiting", pod.name)),
            unit: vec![
                d("DefaultDependencies", "no"),
                d("Requires", "exit.target"),
                d("After", "exit.target"),
                d("AllowIsolate", "yes"),
            ],
        },
        manager: vec![d("DefaultTimeoutStopSec", STOP_TIMEOUT)],
        sysusers: sysusers(pod),
        sockets: pod_sockets(pod),
        proxies: proxies(pod),
        health: lower_health(pod),
        socket,
        plan: plan(pod),
        config_texts: items::config_texts(pod),
    }
}

/// The host unit's `[Service]`: podc launch, reporting readiness, in its own delegated cgroup.
fn host_service(pod: &Pod, install: &Install) -> Vec<Directive> {
    let mut service = vec![d("Type", "notify")];
    if pod.apps.iter().any(|a| a.init) {
        // The pod is ready once its systemd has started every app, and an init app has
        // started when it has completed, however long that takes.
        service.push(commented(
            "TimeoutStartSec",
            "infinity",
            "the pod has started once its init apps have completed".into(),
        ));
    }
    service.extend([
        d(
            "ExecStart",
            escape::exec_line(&[install.podc.clone(), "launch".into(), install.dir.clone()]),
        ),
        d("KillMode", "mixed"),
        d("Delegate", "yes"),
        d("Slice", "machine.slice"),
    ]);
    if pod.restarts() {
        service.push(commented(
            "Restart",
            "on-failure",
            "every app restarts: the pod is started again when it fails as a whole".into(),
        ));
    }
    service
}
