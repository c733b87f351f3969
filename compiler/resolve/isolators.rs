//! Resource limits of the pod and of each app: cpu, CPU weight, memory, tasks, and what the
//! target must have for them.

use super::checker::*;
use crate::diag::codes;
use crate::manifest::quantity;
use crate::manifest::{self, CgroupVersion};
use crate::parse::source::join_key;
use crate::pod::{CpuWeight, Limits};
use crate::systemd::target::{Feature, Target};

pub(super) fn resolve_limits(
    c: &mut Checker,
    base: &str,
    i: &manifest::AppIsolators,
    t: Target,
) -> Limits {
    let mut l = Limits::default();
    cpu(c, base, i, t, &mut l);
    cpu_weight(c, base, i, &mut l);
    memory(c, base, i, &mut l);
    tasks(c, base, i, &mut l);
    super::requests::cpu_request(c, base, i, &mut l);
    super::requests::memory_request(c, base, i, t, &mut l);
    target_directives(c, base, t, &l);
    super::requests::request_target(c, base, t, &l);
    l
}

/// `cpu`: a quota, in what the target's `CPUQuota=` can express.
fn cpu(c: &mut Checker, base: &str, i: &manifest::AppIsolators, t: Target, l: &mut Limits) {
    if let Some(q) = &i.cpu {
        let path = join_key(base, "cpu");
        match quantity::millicores(&q.text) {
            Ok(m) if m > 214_748_364 => {
                c.value(
                    codes::CPU_TOO_LARGE,
                    &path,
                    format!(
                        "cpu {} is larger than systemd's CPUQuota= can express",
                        show(&q.text)
                    ),
                );
            }
            Ok(m) => {
                // One requirement at a time: the stricter first.
                let needs = if m < 10 {
                    Some(Feature::CpuQuotaBelowOnePercent)
                } else if m % 10 != 0 {
                    Some(Feature::CpuQuotaFraction)
                } else {
                    None
                };
                if let Some(feature) = needs.filter(|f| !t.has(*f)) {
                    require(c, &path, t, feature, &format!("cpu {}", show(&q.text)));
                }
                l.cpu_millis = Some(m);
                l.written.cpu = Some(q.text.trim().to_string());
            }
            Err(e) => {
                let d = c.value(codes::QUANTITY, &path, format!("cpu {} {e}", show(&q.text)));
                d.help = quantity::suggest_cpu(&q.text);
            }
        }
    }
}

/// `cpuShares` or `cpuWeight`, one of them, in range.
fn cpu_weight(c: &mut Checker, base: &str, i: &manifest::AppIsolators, l: &mut Limits) {
    match (i.cpu_shares, i.cpu_weight) {
        (Some(_), Some(_)) => {
            c.key(
                codes::CPU_WEIGHT_TWICE,
                &join_key(base, "cpuWeight"),
                "cpuShares and cpuWeight are two spellings of one setting; give only one",
            );
        }
        (Some(s), None) => {
            let path = join_key(base, "cpuShares");
            if !(2..=262_144).contains(&s) {
                c.value(
                    codes::OUT_OF_RANGE,
                    &path,
                    format!("cpuShares {s} is out of range 2..262144"),
                );
            } else {
                l.cpu_weight = Some(CpuWeight::Shares(s));
            }
        }
        (None, Some(w)) => {
            let path = join_key(base, "cpuWeight");
            if !(1..=10_000).contains(&w) {
                c.value(
                    codes::OUT_OF_RANGE,
                    &path,
                    format!("cpuWeight {w} is out of range 1..10000"),
                );
            } else {
                l.cpu_weight = Some(CpuWeight::Weight(w));
            }
        }
        (None, None) => {}
    }
}

/// `memory`: a byte quantity.
fn memory(c: &mut Checker, base: &str, i: &manifest::AppIsolators, l: &mut Limits) {
    if let Some(q) = &i.memory {
        let path = join_key(base, "memory");
        match quantity::bytes(&q.text) {
            Ok(b) => {
                l.memory_bytes = Some(b);
                l.written.memory = Some(q.text.trim().to_string());
            }
            Err(e) => {
                let d = c.value(
                    codes::QUANTITY,
                    &path,
                    format!("memory {} {e}", show(&q.text)),
                );
                d.help = quantity::suggest_memory(&q.text);
            }
        }
    }
}

/// `tasks`: at least 1, and a number systemd can hold.
fn tasks(c: &mut Checker, base: &str, i: &manifest::AppIsolators, l: &mut Limits) {
    if let Some(n) = i.tasks {
        let path = join_key(base, "tasks");
        if n == 0 {
            c.value(codes::TASKS, &path, "tasks must be at least 1");
        } else if n == u64::MAX {
            c.value(codes::TASKS, &path, "tasks is too large");
        } else {
            l.tasks = Some(n);
        }
    }
}

/// The directives the target must have for the limits `l` holds, and a v1 weight that
/// systemd would turn into other shares.
fn target_directives(c: &mut Checker, base: &str, t: Target, l: &Limits) {
    // Directives the target must have for these limits.
    let (mem, weight) = if t.unified_directives() {
        (Feature::MemoryMax, Feature::CpuWeight)
    } else {
        (Feature::MemoryLimit, Feature::CpuShares)
    };
    if l.memory_bytes.is_some() {
        require(c, &join_key(base, "memory"), t, mem, "a memory limit");
    }
    if let Some(w) = l.cpu_weight {
        let key = match w {
            CpuWeight::Shares(_) => "cpuShares",
            CpuWeight::Weight(_) => "cpuWeight",
            CpuWeight::Request(_) => "cpuRequest",
        };
        require(c, &join_key(base, key), t, weight, "a CPU weight");
        if let (CpuWeight::Shares(s), CgroupVersion::V1, true) =
            (w, t.cgroup, t.unified_directives())
        {
            if CpuWeight::exact_weight_for_shares(s).is_none() {
                let lo = (s * 100 / 1024).max(1);
                let systemd = c.systemd(t);
                c.value(codes::CPU_SHARES_INEXACT, &join_key(base, key), format!(
                    "cpuShares {s} cannot be set exactly with {systemd}: it deprecates CPUShares= and turns CPUWeight=W into W*1024/100 shares on cgroup v1"
                ))
                .help = Some(format!(
                    "the nearest exact values are cpuShares {} (cpuWeight {lo}) and cpuShares {} (cpuWeight {})",
                    lo * 1024 / 100,
                    (lo + 1) * 1024 / 100,
                    lo + 1
                ));
            }
        }
    }
}
