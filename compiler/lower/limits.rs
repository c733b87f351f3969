//! Resource limits as directives of the target, each with a comment naming where the
//! manifest set it.

use super::units::*;
use crate::manifest::CgroupVersion;
use crate::pod::{CpuWeight, Limits};
use crate::systemd::escape;
use crate::systemd::resources::{cpu_percent, Limit};
use crate::systemd::target::Target;
use crate::tree::plan::Controller;

/// Where a limit came from in the manifest, for its comment: `isolators` (the pod's) or
/// `apps[web].isolators`.
pub(super) fn limits_source(app: Option<&str>) -> String {
    match app {
        None => "isolators".into(),
        Some(a) => ["apps[", a, "].isolators"].concat(),
    }
}

/// The comment above a limit: `memory: 128Mi (apps[web].isolators)`. `written` comes from the
/// manifest: resolution accepted it as a quantity, so it is plain ASCII, but anything else is
/// quoted and escaped rather than trusted to stay on the comment's line.
pub(super) fn limit_comment(key: &str, written: &str, source: &str) -> String {
    let plain = !written.is_empty() && written.bytes().all(|b| b.is_ascii_graphic());
    let shown = if plain {
        written.to_string()
    } else {
        escape::comment_text(written)
    };
    [key, ": ", &shown, " (", source, ")"].concat()
}

pub(super) fn limit_directives(l: &Limits, t: Target, source: &str) -> Vec<Directive> {
    let unified = t.unified_directives();
    let mut out = Vec::new();
    // Set together by resolution; a missing text would only lose the comment's detail.
    let written = |w: &Option<String>, v: String| w.clone().unwrap_or(v);
    if let Some(b) = l.memory_bytes {
        out.push(commented(
            Limit::Memory.directive(unified),
            b.to_string(),
            limit_comment(
                Limit::Memory.key(),
                &written(&l.written.memory, b.to_string()),
                source,
            ),
        ));
    }
    if let Some(b) = l.memory_low_bytes {
        out.push(commented(
            Limit::MemoryRequest.directive(unified),
            b.to_string(),
            limit_comment(
                Limit::MemoryRequest.key(),
                &written(&l.written.memory_request, b.to_string()),
                source,
            ),
        ));
    }
    if let Some(m) = l.cpu_millis {
        out.push(commented(
            Limit::Cpu.directive(unified),
            cpu_percent(m),
            limit_comment(
                Limit::Cpu.key(),
                &written(&l.written.cpu, format!("{m}m")),
                source,
            ),
        ));
    }
    if let Some(w) = l.cpu_weight {
        let weight = match w {
            CpuWeight::Shares(_) => Limit::CpuShares,
            CpuWeight::Weight(_) => Limit::CpuWeight,
            CpuWeight::Request(_) => Limit::CpuRequest,
        };
        let directive = match (t.cgroup, unified, w) {
            (CgroupVersion::V2, _, w) => d(weight.directive(true), w.weight().to_string()),
            (CgroupVersion::V1, false, w) => d(weight.directive(false), w.shares().to_string()),
            // Resolution made sure these shares have an exact weight.
            (CgroupVersion::V1, true, CpuWeight::Shares(_) | CpuWeight::Request(_)) => d(
                weight.directive(true),
                CpuWeight::exact_weight_for_shares(w.shares())
                    .unwrap_or_else(|| w.weight())
                    .to_string(),
            ),
            (CgroupVersion::V1, true, CpuWeight::Weight(w)) => {
                d(weight.directive(true), w.to_string())
            }
        };
        let shown = match w {
            CpuWeight::Shares(n) | CpuWeight::Weight(n) => n.to_string(),
            CpuWeight::Request(m) => written(&l.written.cpu_request, format!("{m}m")),
        };
        let key = weight.key();
        out.push(Directive {
            comment: Some(limit_comment(key, &shown, source)),
            ..directive
        });
    }
    if let Some(n) = l.tasks {
        let n = n.to_string();
        out.push(commented(
            Limit::Tasks.directive(unified),
            n.clone(),
            limit_comment(Limit::Tasks.key(), &n, source),
        ));
    }
    out
}

/// Whether an app's limits use a cgroup v1 controller.
pub(super) fn uses(l: &Limits, controller: Controller) -> bool {
    match controller {
        // memoryRequest is refused on cgroup v1 targets: it needs no knob there.
        Controller::Memory => l.memory_bytes.is_some(),
        Controller::Cpu => l.cpu_millis.is_some() || l.cpu_weight.is_some(),
        Controller::Pids => l.tasks.is_some(),
    }
}
