//! Resource requests of an app, as Kubernetes means them: `cpuRequest`, the relative CPU
//! weight the kubelet derives from a request, and `memoryRequest`, memory protected from
//! reclaim (`MemoryLow=`); and what the target and the app's own limits allow of them.

use super::checker::*;
use crate::diag::codes;
use crate::manifest::quantity;
use crate::manifest::{self, CgroupVersion};
use crate::parse::source::join_key;
use crate::pod::{CpuWeight, Limits, MAX_REQUEST_MILLIS};
use crate::systemd::target::{Feature, Target};

/// `cpuRequest`: a cpu quantity, the only weight of the app (not with cpuShares or
/// cpuWeight), at most 256 CPUs and at most the app's own `cpu`.
pub(super) fn cpu_request(c: &mut Checker, base: &str, i: &manifest::AppIsolators, l: &mut Limits) {
    let Some(q) = &i.cpu_request else { return };
    let path = join_key(base, "cpuRequest");
    if i.cpu_shares.is_some() || i.cpu_weight.is_some() {
        let other = if i.cpu_shares.is_some() {
            "cpuShares"
        } else {
            "cpuWeight"
        };
        c.key(
            codes::CPU_REQUEST_WITH_WEIGHT,
            &path,
            format!("cpuRequest and {other} both set the app's relative CPU weight; give only one"),
        )
        .help = Some(format!(
            "cpuRequest weighs the app as Kubernetes weighs a CPU request; {other} gives the weight itself"
        ));
        return;
    }
    let m = match quantity::millicores(&q.text) {
        Ok(m) => m,
        Err(e) => {
            let d = c.value(
                codes::QUANTITY,
                &path,
                format!("cpuRequest {} {e}", show(&q.text)),
            );
            d.help = quantity::suggest_cpu(&q.text);
            return;
        }
    };
    if m > MAX_REQUEST_MILLIS {
        c.value(
            codes::CPU_REQUEST_TOO_LARGE,
            &path,
            format!(
                "cpuRequest {} is more than 256 CPUs, the largest request a CPU weight can express (262144 shares)",
                show(&q.text)
            ),
        );
        return;
    }
    if let Some(limit) = l.cpu_millis.filter(|limit| m > *limit) {
        let written = l.written.cpu.clone().unwrap_or_else(|| format!("{limit}m"));
        c.value(
            codes::REQUEST_ABOVE_LIMIT,
            &path,
            format!(
                "cpuRequest {} is above the app's cpu {}",
                show(&q.text),
                show(&written)
            ),
        )
        .help = Some(
            "a request is at most the limit (Kubernetes refuses one above it); lower cpuRequest or raise cpu".into(),
        );
        return;
    }
    l.cpu_weight = Some(CpuWeight::Request(m));
    l.written.cpu_request = Some(q.text.trim().to_string());
}

/// `memoryRequest`: a byte quantity, on a cgroup v2 target, at most the app's own `memory`.
pub(super) fn memory_request(
    c: &mut Checker,
    base: &str,
    i: &manifest::AppIsolators,
    t: Target,
    l: &mut Limits,
) {
    let Some(q) = &i.memory_request else { return };
    let path = join_key(base, "memoryRequest");
    let b = match quantity::bytes(&q.text) {
        Ok(b) => b,
        Err(e) => {
            let d = c.value(
                codes::QUANTITY,
                &path,
                format!("memoryRequest {} {e}", show(&q.text)),
            );
            d.help = quantity::suggest_memory(&q.text);
            return;
        }
    };
    if t.cgroup == CgroupVersion::V1 {
        let flag = if c.flags.cgroup.is_some() {
            " (--cgroup v1)"
        } else {
            ""
        };
        c.value(
            codes::MEMORY_REQUEST_V1,
            &path,
            format!(
                "memoryRequest {} would have no effect on cgroup v1{flag}: v1 has no memory.low, and systemd ignores MemoryLow= there",
                show(&q.text)
            ),
        )
        .help = Some(
            "target cgroup v2, or remove memoryRequest (on cgroup v1 only the limit, `memory`, is kept)".into(),
        );
        return;
    }
    if let Some(limit) = l.memory_bytes.filter(|limit| b > *limit) {
        let written = l
            .written
            .memory
            .clone()
            .unwrap_or_else(|| limit.to_string());
        c.value(
            codes::REQUEST_ABOVE_LIMIT,
            &path,
            format!(
                "memoryRequest {} is above the app's memory {}",
                show(&q.text),
                show(&written)
            ),
        )
        .help = Some(
            "a request is at most the limit (Kubernetes refuses one above it); lower memoryRequest or raise memory".into(),
        );
        return;
    }
    l.memory_low_bytes = Some(b);
    l.written.memory_request = Some(q.text.trim().to_string());
}

/// What the target must have for the requests `l` holds: `MemoryLow=`, and on cgroup v1 with
/// the unified directives a `CPUWeight=` that systemd turns into exactly the request's shares.
pub(super) fn request_target(c: &mut Checker, base: &str, t: Target, l: &Limits) {
    if l.memory_low_bytes.is_some() {
        require(
            c,
            &join_key(base, "memoryRequest"),
            t,
            Feature::MemoryLow,
            "a memory request",
        );
    }
    let Some(CpuWeight::Request(m)) = l.cpu_weight else {
        return;
    };
    let shares = CpuWeight::Request(m).shares();
    if t.cgroup != CgroupVersion::V1
        || !t.unified_directives()
        || CpuWeight::exact_weight_for_shares(shares).is_some()
    {
        return;
    }
    let systemd = c.systemd(t);
    let written = l
        .written
        .cpu_request
        .clone()
        .unwrap_or_else(|| format!("{m}m"));
    let lo = m / 10 * 10;
    let nearest = if lo == 0 {
        "cpuRequest 10m".to_string()
    } else {
        format!("cpuRequest {lo}m and {}m", lo + 10)
    };
    c.value(
        codes::CPU_REQUEST_INEXACT,
        &join_key(base, "cpuRequest"),
        format!(
            "cpuRequest {} ({shares} shares) cannot be set exactly with {systemd}: it deprecates CPUShares= and turns CPUWeight=W into W*1024/100 shares on cgroup v1",
            show(&written)
        ),
    )
    .help = Some(format!(
        "a multiple of 10m is exact; the nearest are {nearest}"
    ));
}
