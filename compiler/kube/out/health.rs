//! A health probe as a `startupProbe` (the first pass: podc's start period) and a
//! `livenessProbe` (the restarts). Kubernetes counts in whole seconds and takes fewer header
//! names than podc; a probe whose times or headers it cannot carry exactly is kept whole in
//! `podc/apps`, with a warning.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::common::{app_path, Out};
use crate::diag::codes;
use crate::kube::APPS_ANNOTATION;
use crate::manifest::HttpScheme;
use crate::pod::{show_ms, App, Health, Probe};

/// The app's probes: `(startupProbe, livenessProbe)`.
pub(super) fn probes(
    a: &App,
    i: usize,
    out: &mut Out,
) -> (Option<core::Probe>, Option<core::Probe>) {
    let Some(h) = &a.health else {
        return (None, None);
    };
    let secs = |ms: u64| i32::try_from(ms.div_ceil(1000).max(1)).unwrap_or(i32::MAX);
    // A loopback host other than podc's default cannot be said either (see `handler`), nor
    // any host but the default for a gRPC probe, which has no host field.
    let default_host = std::net::IpAddr::from([127, 0, 0, 1]);
    let host_said = match &h.probe {
        Probe::Http { host, .. } | Probe::Tcp { host, .. } => {
            !host.is_loopback() || *host == default_host
        }
        Probe::Grpc { host, .. } => *host == default_host,
        Probe::Exec(_) => true,
    };
    let exact = h.interval_ms.is_multiple_of(1000)
        && h.timeout_ms.is_multiple_of(1000)
        && h.start_period_ms.is_multiple_of(h.interval_ms)
        && host_said;
    // Kubernetes takes header names of letters, digits and `-` only (IsHTTPHeaderName), a
    // stricter rule than the tokens podc takes: the others are left out there.
    let unsaid: Vec<&str> = match &h.probe {
        Probe::Http { headers, .. } => headers
            .keys()
            .filter(|n| !kube_header_name(n))
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    if !unsaid.is_empty() {
        out.warn(
            codes::KUBE_APP_EXTRA,
            format!("{}.health.http.headers", app_path(i)),
            format!(
                "app {:?}: Kubernetes takes header names of letters, digits and `-` only; the probes leave {} out, and the exact probe is kept in {APPS_ANNOTATION}",
                a.name,
                unsaid.join(", ")
            ),
        );
        out.app(&a.name, "health", manifest_health(h));
    }
    if !exact {
        out.warn(
            codes::KUBE_APP_EXTRA,
            format!("{}.health", app_path(i)),
            format!(
                "app {:?}: Kubernetes counts probe times in whole seconds (the start period in periods) and probes the pod's address; the probes round times up and leave a loopback host out, and the exact probe is kept in {APPS_ANNOTATION}",
                a.name
            ),
        );
        out.app(&a.name, "health", manifest_health(h));
    }
    let probe = |failures: u64| core::Probe {
        period_seconds: Some(secs(h.interval_ms)),
        timeout_seconds: Some(secs(h.timeout_ms)),
        failure_threshold: Some(i32::try_from(failures.max(1)).unwrap_or(i32::MAX)),
        ..handler(&h.probe)
    };
    (
        Some(probe(h.start_period_ms.div_ceil(h.interval_ms))),
        Some(probe(u64::from(h.failures))),
    )
}

fn handler(p: &Probe) -> core::Probe {
    // Kubernetes probes the pod's own address, where its containers listen: a loopback host
    // (podc's default: the probe runs inside the pod's network) is left out.
    let host = |h: &std::net::IpAddr| (!h.is_loopback()).then(|| h.to_string());
    match p {
        Probe::Exec(argv) => core::Probe {
            exec: Some(core::ExecAction {
                command: Some(argv.clone()),
            }),
            ..Default::default()
        },
        Probe::Http {
            scheme,
            host: h,
            port,
            path,
            headers,
        } => core::Probe {
            http_get: Some(core::HTTPGetAction {
                // Kubernetes' default is HTTP too.
                scheme: (*scheme == HttpScheme::Https).then(|| "HTTPS".to_string()),
                host: host(h),
                // By name, as the pod has them; a `Host` header replaces the default there too.
                http_headers: headers.keys().any(|n| kube_header_name(n)).then(|| {
                    headers
                        .iter()
                        .filter(|(name, _)| kube_header_name(name))
                        .map(|(name, value)| core::HTTPHeader {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect()
                }),
                path: Some(path.clone()),
                port: IntOrString::Int(i32::from(*port)),
            }),
            ..Default::default()
        },
        Probe::Tcp { host: h, port } => core::Probe {
            tcp_socket: Some(core::TCPSocketAction {
                host: host(h),
                port: IntOrString::Int(i32::from(*port)),
            }),
            ..Default::default()
        },
        // Kubernetes' default service is "" too.
        Probe::Grpc { port, service, .. } => core::Probe {
            grpc: Some(core::GRPCAction {
                port: i32::from(*port),
                service: (!service.is_empty()).then(|| service.clone()),
            }),
            ..Default::default()
        },
    }
}

/// Whether Kubernetes takes `name` as a header name: `^[-A-Za-z0-9]+$`.
fn kube_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The probe as the manifest writes it (for `podc/apps`).
fn manifest_health(h: &Health) -> Value {
    let mut v = match &h.probe {
        Probe::Exec(argv) => json!({ "exec": argv }),
        Probe::Http {
            scheme,
            host,
            port,
            path,
            headers,
        } => {
            let mut http = json!({ "port": port, "path": path, "host": host.to_string() });
            if !headers.is_empty() {
                http["headers"] = json!(headers);
            }
            if *scheme == HttpScheme::Https {
                http["scheme"] = json!(scheme);
            }
            json!({ "http": http })
        }
        Probe::Tcp { host, port } => json!({ "tcp": { "port": port, "host": host.to_string() } }),
        Probe::Grpc {
            host,
            port,
            service,
        } => {
            json!({ "grpc": { "port": port, "service": service, "host": host.to_string() } })
        }
    };
    v["interval"] = json!(show_ms(h.interval_ms));
    v["timeout"] = json!(show_ms(h.timeout_ms));
    v["failures"] = json!(h.failures);
    v["startPeriod"] = json!(show_ms(h.start_period_ms));
    v
}
