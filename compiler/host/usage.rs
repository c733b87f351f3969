//! A pod's and its apps' resource use and limits, read from their cgroup files (v1 or v2).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::CgroupVersion;

/// A limit: a number, or none (`max` on v2, the huge "unlimited" values on v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    Max(#[serde(serialize_with = "ser_max")] ()),
    Value(u64),
}

pub(super) fn ser_max<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("max")
}

/// An app's live limits and usage, read from its cgroup's files. `None`: not readable (the
/// controller is not there, or the app is not running).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub memory_max: Option<Limit>,
    pub memory_current: Option<u64>,
    /// The CPU quota as (quota, period) in microseconds; quota `Max` is no limit.
    pub cpu_max: Option<(Limit, u64)>,
    pub cpu_usage_usec: Option<u64>,
    pub pids_max: Option<Limit>,
    pub pids_current: Option<u64>,
}

/// v1 reports "no memory limit" as the largest page-aligned signed 64-bit value (or close).
pub(super) const V1_UNLIMITED: u64 = 1 << 62;

pub(super) fn num(s: Option<&str>) -> Option<u64> {
    s?.trim().parse().ok()
}

pub(super) fn limit(s: Option<&str>) -> Option<Limit> {
    match s?.trim() {
        "max" => Some(Limit::Max(())),
        v => v.parse().ok().map(Limit::Value),
    }
}

impl Usage {
    /// From a cgroup v2 directory's files, given as name → contents.
    pub fn from_v2(files: &BTreeMap<&str, String>) -> Usage {
        let f = |k: &str| files.get(k).map(String::as_str);
        let cpu_max = f("cpu.max").and_then(|s| {
            let (q, p) = s.trim().split_once(' ')?;
            Some((limit(Some(q))?, p.parse().ok()?))
        });
        let cpu_usage_usec = f("cpu.stat").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
        });
        Usage {
            memory_max: limit(f("memory.max")),
            memory_current: num(f("memory.current")),
            cpu_max,
            cpu_usage_usec,
            pids_max: limit(f("pids.max")),
            pids_current: num(f("pids.current")),
        }
    }

    /// From the cgroup v1 controllers' files of an app, given as `controller file` → contents
    /// (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, `cpuacct.usage`, `pids.max`, ...).
    pub fn from_v1(files: &BTreeMap<&str, String>) -> Usage {
        let f = |k: &str| files.get(k).map(String::as_str);
        let memory_max = num(f("memory.limit_in_bytes")).map(|v| {
            if v >= V1_UNLIMITED {
                Limit::Max(())
            } else {
                Limit::Value(v)
            }
        });
        let cpu_max = match (f("cpu.cfs_quota_us"), num(f("cpu.cfs_period_us"))) {
            (Some(q), Some(p)) => match q.trim() {
                "-1" => Some((Limit::Max(()), p)),
                q => q.parse().ok().map(|q| (Limit::Value(q), p)),
            },
            _ => None,
        };
        Usage {
            memory_max,
            memory_current: num(f("memory.usage_in_bytes")),
            cpu_max,
            // cpuacct.usage is in nanoseconds.
            cpu_usage_usec: num(f("cpuacct.usage")).map(|ns| ns / 1000),
            pids_max: limit(f("pids.max")),
            pids_current: num(f("pids.current")),
        }
    }
}

/// The files `status` reads in an app's cgroup directory, per hierarchy.
pub const V2_FILES: &[&str] = &[
    "memory.max",
    "memory.current",
    "cpu.max",
    "cpu.stat",
    "pids.max",
    "pids.current",
];

/// v1: (controller hierarchy, file); the cpu files are in the cpu controller's hierarchy,
/// `cpuacct.usage` in cpuacct's (one directory where they are co-mounted).
pub const V1_FILES: &[(&str, &str)] = &[
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.usage_in_bytes"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpuacct", "cpuacct.usage"),
    ("pids", "pids.max"),
    ("pids", "pids.current"),
];

pub(super) fn bytes(v: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v} B")
    } else if x.fract() == 0.0 {
        format!("{x:.0} {}", UNITS[i])
    } else {
        format!("{x:.1} {}", UNITS[i])
    }
}

pub(super) fn or_dash<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

pub(super) fn limit_str(l: Limit, f: impl Fn(u64) -> String) -> String {
    match l {
        Limit::Max(()) => "max".into(),
        Limit::Value(v) => f(v),
    }
}

/// "used / limit" for a resource.
pub(super) fn pair(
    current: Option<u64>,
    max: Option<Limit>,
    f: impl Fn(u64) -> String + Copy,
) -> String {
    format!(
        "{} / {}",
        or_dash(current, f),
        or_dash(max, |l| limit_str(l, f))
    )
}

impl Usage {
    pub(super) fn cells(&self) -> [String; 4] {
        let cpu = or_dash(self.cpu_max, |(q, p)| match q {
            Limit::Max(()) => "max".into(),
            Limit::Value(q) if p > 0 => format!("{:.2}", q as f64 / p as f64),
            Limit::Value(q) => q.to_string(),
        });
        [
            pair(self.memory_current, self.memory_max, bytes),
            cpu,
            or_dash(self.cpu_usage_usec, |u| format!("{:.2}s", u as f64 / 1e6)),
            pair(self.pids_current, self.pids_max, |v| v.to_string()),
        ]
    }
}

/// The directory of `app`'s unit below `pod_cg`, found rather than assumed (nspawn puts the
/// container below `payload/` on v2; the pod's systemd adds `system.slice/`).
pub fn find_app_cgroup(pod_cg: &Path, app: &str) -> Option<PathBuf> {
    let want = format!("{app}.service");
    let mut queue = vec![(pod_cg.to_path_buf(), 0)];
    while let Some((dir, depth)) = queue.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subdirs.sort();
        for d in subdirs {
            if d.file_name().is_some_and(|n| n.to_string_lossy() == want) {
                return Some(d);
            }
            if depth < 3 {
                queue.push((d, depth + 1));
            }
        }
    }
    None
}

/// The cgroup v1 hierarchy directory of a controller (`cpu` may be `cpu,cpuacct`).
pub(super) fn v1_hierarchy(cgroup_root: &Path, controller: &str) -> PathBuf {
    for name in [
        controller.to_string(),
        "cpu,cpuacct".into(),
        "cpuacct,cpu".into(),
    ] {
        let p = cgroup_root.join(&name);
        if name.split(',').any(|c| c == controller) && p.is_dir() {
            return p;
        }
    }
    cgroup_root.join(controller)
}

/// Reads an app's usage from the host's cgroup files below `cgroup_root` (/sys/fs/cgroup).
pub fn read_usage(
    cgroup_root: &Path,
    version: CgroupVersion,
    pod: &str,
    app: &str,
) -> (Option<PathBuf>, Usage) {
    let pod_rel = format!("machine.slice/podc-{pod}.service");
    match version {
        CgroupVersion::V2 => {
            let Some(dir) = find_app_cgroup(&cgroup_root.join(&pod_rel), app) else {
                return (None, Usage::default());
            };
            let files = V2_FILES
                .iter()
                .filter_map(|&f| Some((f, fs::read_to_string(dir.join(f)).ok()?)))
                .collect();
            (Some(dir), Usage::from_v2(&files))
        }
        CgroupVersion::V1 => {
            let mut files = BTreeMap::new();
            let mut memory_dir = None;
            for &(controller, file) in V1_FILES {
                let pod_cg = v1_hierarchy(cgroup_root, controller).join(&pod_rel);
                if let Some(dir) = find_app_cgroup(&pod_cg, app) {
                    if let Ok(text) = fs::read_to_string(dir.join(file)) {
                        files.insert(file, text);
                    }
                    if controller == "memory" {
                        memory_dir = Some(dir);
                    }
                }
            }
            (memory_dir, Usage::from_v1(&files))
        }
    }
}
