//! Health probes, three units in the pod per app with a probe: `podc-ready-<app>.service`,
//! which the app wants and which starts after it, probes until the probe first passes (apps
//! `after` it order themselves after this unit too, so they start only then) and kills the
//! app if it never does; `podc-health-<app>.timer` and `.service` probe it while it runs and
//! restart it after `failures` failed probes in a row. The logic is in HEALTH_SCRIPT (bash,
//! from the pod's /usr, run outside the app's root: an app's `ExecStartPost=` would run in its
//! root, where neither bash nor the pod's tools are); the probe's parameters are its
//! arguments, so the units say everything. A gRPC or HTTPS probe runs podc itself, which the
//! launcher binds into the pod at PROBE_PROGRAM (the mount plan's `bind-podc` step).

use super::units::*;
use crate::manifest::HttpScheme;
use crate::pod::{show_ms, App, Health, Pod, Probe};
use crate::systemd::escape;
use crate::tree::layout::{
    health_unit, ready_unit, unit_name, HEALTH_SCRIPT, PROBE_COMMAND, PROBE_HTTPS_COMMAND,
    PROBE_PROGRAM,
};

/// The shell of the health script: bash for its /dev/tcp (an HTTP or TCP probe without a
/// client program in the pod).
const BASH: &str = "/usr/bin/bash";

/// The script's arguments after its mode: the app, then the probe's times, kind and target.
fn arguments(app: &str, h: &Health) -> Vec<String> {
    let mut argv = vec![
        app.to_string(),
        h.start_period_ms.to_string(),
        h.interval_ms.to_string(),
        h.timeout_ms.to_string(),
        h.failures.to_string(),
    ];
    match &h.probe {
        Probe::Exec(cmd) => {
            argv.push("exec".into());
            argv.extend(cmd.iter().cloned());
        }
        Probe::Http {
            scheme,
            host,
            port,
            path,
            headers,
        } => {
            // HTTPS is podc's own client (`probe-https`), bound into the pod as for gRPC.
            if *scheme == HttpScheme::Https {
                argv.extend([
                    "https".into(),
                    PROBE_PROGRAM.into(),
                    PROBE_HTTPS_COMMAND.into(),
                ]);
            } else {
                argv.push("http".into());
            }
            argv.extend([host.to_string(), port.to_string(), path.clone()]);
            // Each header as two words, never text the script interprets.
            for (name, value) in headers {
                argv.extend([name.clone(), value.clone()]);
            }
        }
        Probe::Tcp { host, port } => {
            argv.extend(["tcp".into(), host.to_string(), port.to_string()]);
        }
        Probe::Grpc {
            host,
            port,
            service,
        } => {
            argv.extend([
                "grpc".into(),
                PROBE_PROGRAM.into(),
                PROBE_COMMAND.into(),
                host.to_string(),
                port.to_string(),
                service.clone(),
            ]);
        }
    }
    argv
}

fn script_line(mode: &str, app: &str, h: &Health) -> String {
    let mut argv = vec![
        BASH.to_string(),
        HEALTH_SCRIPT.to_string(),
        mode.to_string(),
    ];
    argv.extend(arguments(app, h));
    escape::exec_line(&argv)
}

/// The probe in words: `http GET 127.0.0.1:8080/healthz with "Host: example.com"`,
/// `exec "/bin/check" "a b"`, `grpc Check 127.0.0.1:7070 service "cart"`.
fn describe(p: &Probe) -> String {
    let addr = |host: &std::net::IpAddr, port: u16| std::net::SocketAddr::new(*host, port);
    match p {
        Probe::Exec(argv) => {
            let words: Vec<String> = argv.iter().map(|w| escape::comment_text(w)).collect();
            format!("exec {}", words.join(" "))
        }
        Probe::Http {
            scheme,
            host,
            port,
            path,
            headers,
        } => {
            let mut text = match scheme {
                HttpScheme::Http => format!("http GET {}{path}", addr(host, *port)),
                HttpScheme::Https => format!(
                    "https GET {}{path} (certificate not verified)",
                    addr(host, *port)
                ),
            };
            for (i, (name, value)) in headers.iter().enumerate() {
                text.push_str(if i == 0 { " with " } else { ", " });
                text.push_str(&escape::comment_text(&format!("{name}: {value}")));
            }
            text
        }
        Probe::Tcp { host, port } => format!("tcp connect {}", addr(host, *port)),
        Probe::Grpc {
            host,
            port,
            service,
        } if service.is_empty() => format!("grpc Check {}", addr(host, *port)),
        Probe::Grpc {
            host,
            port,
            service,
        } => format!(
            "grpc Check {} service {}",
            addr(host, *port),
            escape::comment_text(service)
        ),
    }
}

/// The probe and its times in words, for the units' comments and POD.md.
pub fn summary(h: &Health) -> String {
    format!(
        "{}, every {}, {} timeout, restarted after {} failed in a row; {} to pass first",
        describe(&h.probe),
        show_ms(h.interval_ms),
        show_ms(h.timeout_ms),
        h.failures,
        show_ms(h.start_period_ms)
    )
}

/// The app wants its readiness unit, with the probe in words above.
pub(super) fn wants_ready(a: &App) -> Option<Directive> {
    let h = a.health.as_ref()?;
    // An exec probe's arguments and an HTTP probe's headers are quoted (comment_text), so no
    // line break gets in.
    Some(commented(
        "Wants",
        ready_unit(&a.name),
        ["health: ", &summary(h)].concat(),
    ))
}

/// The timer and service that probe each running app with a probe.
pub(super) fn lower_health(pod: &Pod) -> Vec<HealthUnits> {
    pod.apps
        .iter()
        .filter_map(|a| {
            let h = a.health.as_ref()?;
            let name = health_unit(&a.name);
            let app = unit_name(&a.name);
            let every = show_ms(h.interval_ms);
            // The script bounds the wait by the start period; systemd's own start timeout
            // (90 s by default) must not end it first.
            let limit = h.start_period_ms + h.timeout_ms + 10_000;
            Some(HealthUnits {
                name,
                app: a.name.clone(),
                ready: ready_unit(&a.name),
                ready_description: escape::verbatim(&format!(
                    "podc pod {}: wait until app {} passes its health probe",
                    pod.name, a.name
                )),
                ready_service: vec![
                    d("Type", "oneshot"),
                    d("RemainAfterExit", "yes"),
                    d("ExecStart", script_line("start", &a.name, h)),
                    d("TimeoutStartSec", show_ms(limit)),
                ],
                description: escape::verbatim(&format!(
                    "podc pod {}: probe the health of app {}",
                    pod.name, a.name
                )),
                // Runs while the app runs: started by the readiness unit once the probe first
                // passed, stopped with the app.
                // A probe every interval would soon hit systemd's start limit (5 in 10 s).
                unit: vec![
                    d("BindsTo", app.clone()),
                    d("After", app),
                    d("StartLimitIntervalSec", "0"),
                ],
                timer: vec![
                    d("OnActiveSec", every.clone()),
                    d("OnUnitActiveSec", every),
                    d("AccuracySec", "1ms"),
                ],
                service: vec![
                    d("Type", "oneshot"),
                    d("ExecStart", script_line("live", &a.name, h)),
                ],
            })
        })
        .collect()
}
