//! The resource limits podc knows, in one table: for each, the manifest key, the systemd
//! directive with the unified (cgroup v2) names and with the legacy ones, the cgroup v1
//! controller and the knob files systemd writes there, the Kubernetes field, and the label
//! POD.md gives it. lower, POD.md, the mount plan's v1 knobs and `podc kube` read their words
//! from here (as `Relax::name` is the one table of the sandbox parts).

/// One resource limit of an app or of the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Memory,
    MemoryRequest,
    Cpu,
    CpuShares,
    CpuWeight,
    CpuRequest,
    Tasks,
}

/// Where a Kubernetes container keeps a limit: `resources.limits.<name>` or
/// `resources.requests.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeField {
    Limits(&'static str),
    Requests(&'static str),
}

/// A row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub limit: Limit,
    /// The manifest's key under `isolators`.
    pub key: &'static str,
    /// The directive with systemd's unified names (systemd 252 and later, and every cgroup v2
    /// target).
    pub unified: &'static str,
    /// The directive with the legacy names (cgroup v1 targets before systemd 252).
    pub legacy: &'static str,
    /// The cgroup v1 controller the limit is set in.
    pub controller: &'static str,
    /// The files of an app's v1 cgroup that systemd writes for it (bound writable into the
    /// pod by the mount plan).
    pub knobs: &'static [&'static str],
    /// The Kubernetes field; `None` where Kubernetes has none (podc keeps it in `podc/apps`).
    pub kubernetes: Option<KubeField>,
    /// What POD.md calls it.
    pub label: &'static str,
}

/// The table, in the order the units, POD.md and the plan list limits.
pub const LIMITS: [Row; 7] = [
    Row {
        limit: Limit::Memory,
        key: "memory",
        unified: "MemoryMax",
        legacy: "MemoryLimit",
        controller: "memory",
        knobs: &["memory.limit_in_bytes"],
        kubernetes: Some(KubeField::Limits("memory")),
        label: "memory",
    },
    // cgroup v1 has no memory.low: resolve refuses a memoryRequest on a v1 target, so the
    // legacy name is never written and the plan binds no knob for it.
    Row {
        limit: Limit::MemoryRequest,
        key: "memoryRequest",
        unified: "MemoryLow",
        legacy: "MemoryLow",
        controller: "memory",
        knobs: &[],
        kubernetes: Some(KubeField::Requests("memory")),
        label: "memoryRequest",
    },
    Row {
        limit: Limit::Cpu,
        key: "cpu",
        unified: "CPUQuota",
        legacy: "CPUQuota",
        controller: "cpu",
        knobs: &["cpu.cfs_quota_us", "cpu.cfs_period_us"],
        kubernetes: Some(KubeField::Limits("cpu")),
        label: "cpu",
    },
    Row {
        limit: Limit::CpuShares,
        key: "cpuShares",
        unified: "CPUWeight",
        legacy: "CPUShares",
        controller: "cpu",
        knobs: &["cpu.shares"],
        kubernetes: Some(KubeField::Requests("cpu")),
        label: "cpuShares",
    },
    Row {
        limit: Limit::CpuWeight,
        key: "cpuWeight",
        unified: "CPUWeight",
        legacy: "CPUShares",
        controller: "cpu",
        knobs: &["cpu.shares"],
        kubernetes: Some(KubeField::Requests("cpu")),
        label: "cpuWeight",
    },
    Row {
        limit: Limit::CpuRequest,
        key: "cpuRequest",
        unified: "CPUWeight",
        legacy: "CPUShares",
        controller: "cpu",
        knobs: &["cpu.shares"],
        kubernetes: Some(KubeField::Requests("cpu")),
        label: "cpuRequest",
    },
    Row {
        limit: Limit::Tasks,
        key: "tasks",
        unified: "TasksMax",
        legacy: "TasksMax",
        controller: "pids",
        knobs: &["pids.max"],
        kubernetes: None,
        label: "tasks",
    },
];

impl Limit {
    /// Its row of the table.
    pub fn row(self) -> &'static Row {
        LIMITS
            .iter()
            .find(|r| r.limit == self)
            .expect("every limit has a row")
    }

    /// The manifest's key.
    pub fn key(self) -> &'static str {
        self.row().key
    }

    /// The directive: with the unified names, or the legacy ones.
    pub fn directive(self, unified: bool) -> &'static str {
        let r = self.row();
        if unified {
            r.unified
        } else {
            r.legacy
        }
    }
}

/// The v1 knob files of a controller, in the table's order, each once.
pub fn knobs(controller: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in LIMITS.iter().filter(|r| r.controller == controller) {
        for k in r.knobs {
            if !out.contains(k) {
                out.push(k);
            }
        }
    }
    out
}

/// `CPUQuota=` value: thousandths of a core as a percentage of one CPU.
pub fn cpu_percent(millis: u64) -> String {
    if millis.is_multiple_of(10) {
        format!("{}%", millis / 10)
    } else {
        format!("{}.{}%", millis / 10, millis % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_limit_once_and_each_controllers_knobs() {
        for (i, r) in LIMITS.iter().enumerate() {
            assert_eq!(r.limit.row().key, r.key);
            assert!(LIMITS[..i].iter().all(|o| o.key != r.key), "{}", r.key);
        }
        assert_eq!(knobs("memory"), ["memory.limit_in_bytes"]);
        assert_eq!(
            knobs("cpu"),
            ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"]
        );
        assert_eq!(knobs("pids"), ["pids.max"]);
        assert!(knobs("io").is_empty());
        assert_eq!(Limit::Memory.directive(false), "MemoryLimit");
        assert_eq!(Limit::CpuShares.directive(true), "CPUWeight");
    }
}
