//! Resources: the cpu and memory limits as `resources.limits`, the requests and the relative
//! CPU weight as `resources.requests`, quantities written as Kubernetes reads them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::common::{app_path, Out};
use crate::diag::codes;
use crate::kube::{shares_to_millis, APPS_ANNOTATION};
use crate::pod::{App, CpuWeight, Limits};
use crate::systemd::resources::{KubeField, Limit};

/// A quantity Kubernetes reads the same as podc: digits, an optional fraction and a suffix.
pub(super) fn plain_quantity(text: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let Some(number) = SUFFIXES.iter().find_map(|s| text.strip_suffix(s)) else {
        return false;
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

pub(super) fn millis_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The limit as Kubernetes reads it: the manifest's text where Kubernetes reads it the same,
/// else the exact value (and the text goes to the annotation, for the units' comments).
pub(super) fn quantity(written: Option<&String>, exact: String) -> (Quantity, Option<String>) {
    match written {
        Some(w) if plain_quantity(w) => (Quantity(w.clone()), None),
        Some(w) => (Quantity(exact), Some(w.clone())),
        None => (Quantity(exact), None),
    }
}

/// `resources.limits` from the cpu and memory limits, `resources.requests` from the requests
/// and the relative weight; what import would not read back the same goes to `podc/apps`.
pub(super) fn resources(a: &App, i: usize, out: &mut Out) -> Option<core::ResourceRequirements> {
    let l: &Limits = &a.limits;
    let mut limits = BTreeMap::new();
    let mut requests = BTreeMap::new();
    if let Some(m) = l.cpu_millis {
        let (q, text) = quantity(l.written.cpu.as_ref(), millis_quantity(m));
        limits.insert(field(Limit::Cpu), q);
        if let Some(t) = text {
            out.app(&a.name, Limit::Cpu.key(), json!(t));
        }
    }
    if let Some(b) = l.memory_bytes {
        let (q, text) = quantity(l.written.memory.as_ref(), b.to_string());
        limits.insert(field(Limit::Memory), q);
        if let Some(t) = text {
            out.app(&a.name, Limit::Memory.key(), json!(t));
        }
    }
    if let Some(b) = l.memory_low_bytes {
        let (q, text) = quantity(l.written.memory_request.as_ref(), b.to_string());
        requests.insert(field(Limit::MemoryRequest), q);
        if let Some(t) = text {
            out.app(&a.name, Limit::MemoryRequest.key(), json!(t));
        }
    }
    match l.cpu_weight {
        Some(CpuWeight::Request(m)) => {
            let (q, text) = quantity(l.written.cpu_request.as_ref(), millis_quantity(m));
            requests.insert(field(Limit::CpuRequest), q);
            if let Some(t) = text {
                out.app(&a.name, Limit::CpuRequest.key(), json!(t));
            }
        }
        Some(w) => weight(a, i, w, &mut requests, out),
        None => {}
    }
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    Some(core::ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        ..Default::default()
    })
}

/// `cpuShares` or `cpuWeight` as the CPU request with the same shares, where the cpu limit
/// allows it; import reads a request as `cpuRequest` (which the kubelet weighs otherwise on
/// cgroup v2), so the weight itself always goes to `podc/apps` as well.
fn weight(
    a: &App,
    i: usize,
    w: CpuWeight,
    requests: &mut BTreeMap<String, Quantity>,
    out: &mut Out,
) {
    let millis = shares_to_millis(w.shares());
    if a.limits.cpu_millis.is_some_and(|limit| millis > limit) {
        out.warn(
            codes::KUBE_CPU_REQUEST,
            format!("{}.isolators", app_path(i)),
            format!(
                "app {:?}: its relative CPU weight ({}m as a request) is above its cpu limit, and Kubernetes refuses a request above the limit; no request written, the weight is kept in {APPS_ANNOTATION}",
                a.name, millis
            ),
        );
    } else {
        requests.insert(field(Limit::CpuShares), Quantity(millis_quantity(millis)));
    }
    match w {
        CpuWeight::Shares(s) => out.app(&a.name, Limit::CpuShares.key(), json!(s)),
        CpuWeight::Weight(w) => out.app(&a.name, Limit::CpuWeight.key(), json!(w)),
        CpuWeight::Request(_) => {}
    }
}

/// The name of a limit's field in `resources.limits` or `resources.requests` (the limits
/// table's Kubernetes column).
fn field(limit: Limit) -> String {
    match limit.row().kubernetes {
        Some(KubeField::Limits(name) | KubeField::Requests(name)) => name.to_string(),
        None => unreachable!("{} has no Kubernetes field", limit.key()),
    }
}
