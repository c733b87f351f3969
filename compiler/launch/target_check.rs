//! The tree's target against the host it runs on.
//!
//! A tree is built for one cgroup layout and one systemd (`cgroup` and `systemd` in
//! `mounts.toml`), and its units are right for that target only: on a cgroup v2 target the
//! apps' limits are written for systemd to set in the pod's own cgroup2 subtree, on v1 the plan
//! binds each app's v1 knobs writable into the pod. Booted on another layout, systemd in the
//! pod sets nothing and says nothing: a v2 tree on a hybrid host ran with no memory, cpu or
//! pids limit at all (#28). And the pod's systemd is the host's (`/usr` is bound in), which
//! ignores, with a line in the pod's journal, every setting newer than itself.
//!
//! So `podc launch`, `launch --check` and `podc install` compare the two first and refuse a
//! mismatch that drops or changes a limit, naming the target, the host and the build that
//! fits; a mismatch that changes nothing is a warning. This file only reads: the host's cgroup
//! layout (the file system types at `/sys/fs/cgroup`, as systemd itself tells them apart), the
//! version of the systemd the pod would boot, and the limit lines of the tree's app units.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::manifest::CgroupVersion;
use crate::systemd::resources::LIMITS;
use crate::tree::layout::{unit_name, GENERATED, POD_UNIT_DIR};
use crate::tree::plan::MountPlan;

/// The systemd the pod boots: the host's own, from the `/usr` the launcher binds into the pod.
pub const POD_SYSTEMD: &str = "/usr/lib/systemd/systemd";

/// `statfs(2)` magic numbers (linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// How the host mounts its cgroups (systemd's three layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 alone at `/sys/fs/cgroup`, every controller in it.
    Unified,
    /// cgroup v1 controllers at `/sys/fs/cgroup/<controller>`, and cgroup2 at
    /// `/sys/fs/cgroup/unified` holding no controller (Debian 12 with
    /// `systemd.unified_cgroup_hierarchy=0`).
    Hybrid,
    /// cgroup v1 alone.
    Legacy,
}

impl Layout {
    /// The target that fits this layout.
    pub fn cgroup(self) -> CgroupVersion {
        match self {
            Layout::Unified => CgroupVersion::V2,
            Layout::Hybrid | Layout::Legacy => CgroupVersion::V1,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Layout::Unified => "unified cgroup v2",
            Layout::Hybrid => {
                "hybrid cgroups (v1 controllers; cgroup2 at /sys/fs/cgroup/unified without them)"
            }
            Layout::Legacy => "legacy cgroup v1",
        }
    }
}

/// What the host is, as far as a tree's target goes; `None` where it cannot be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTarget {
    pub layout: Option<Layout>,
    /// The version of [`POD_SYSTEMD`].
    pub systemd: Option<u32>,
}

impl HostTarget {
    /// Looks at this host: the file system types at `/sys/fs/cgroup` and `POD_SYSTEMD
    /// --version`.
    pub fn detect() -> HostTarget {
        let systemd = Command::new(POD_SYSTEMD)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| parse_systemd_version(&String::from_utf8_lossy(&o.stdout)));
        HostTarget {
            layout: cgroup_layout(Path::new("/sys/fs/cgroup")),
            systemd,
        }
    }
}

/// The layout of the cgroups mounted at `root`, told apart as systemd does
/// (`cg_unified_cached`): cgroup2 there is unified; a tmpfs there with cgroup2 at `unified`
/// is hybrid, with a v1 `systemd` hierarchy and no cgroup2 legacy.
pub fn cgroup_layout(root: &Path) -> Option<Layout> {
    let kind = |p: &Path| rustix::fs::statfs(p).ok().map(|s| s.f_type as u64);
    match kind(root)? {
        CGROUP2_SUPER_MAGIC => Some(Layout::Unified),
        TMPFS_MAGIC => match kind(&root.join("unified")) {
            Some(CGROUP2_SUPER_MAGIC) => Some(Layout::Hybrid),
            _ => {
                (kind(&root.join("systemd")) == Some(CGROUP_SUPER_MAGIC)).then_some(Layout::Legacy)
            }
        },
        _ => None,
    }
}

/// `252` of `systemd 252 (252.39-1~deb12u2)`, the first line `systemd --version` prints.
pub fn parse_systemd_version(text: &str) -> Option<u32> {
    let rest = text.lines().next()?.strip_prefix("systemd ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What the comparison found: refusals (the launch or install stops) and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCheck {
    pub refusals: Vec<String>,
    pub warnings: Vec<String>,
}

/// The limit settings of the tree's app units, one entry per app that has any:
/// `web.service (MemoryMax=67108864, TasksMax=32)`: what a pod booted on another cgroup layout
/// would lose. (The host unit's are set by the host's systemd, which applies them on either
/// layout.)
pub fn app_limits(tree: &Path, plan: &MountPlan) -> Vec<String> {
    let mut found = Vec::new();
    for app in &plan.apps {
        let unit = unit_name(app);
        let Ok(text) = fs::read_to_string(tree.join(POD_UNIT_DIR).join(&unit)) else {
            continue;
        };
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.split_once('=')
                    .is_some_and(|(k, _)| LIMITS.iter().any(|r| r.unified == k || r.legacy == k))
            })
            .collect();
        if !lines.is_empty() {
            found.push(format!("{unit} ({})", lines.join(", ")));
        }
    }
    found
}

/// The pod-level limit settings of the tree's host unit (`MemoryMax=536870912`, ...): the host
/// unit's systemd sets them in the cgroup `podc launch` runs in, and nothing else does.
pub fn pod_limits(tree: &Path, plan: &MountPlan) -> Vec<String> {
    let unit = format!("podc-{}.service", plan.pod);
    let text = fs::read_to_string(tree.join(unit)).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.split_once('=')
                .is_some_and(|(k, _)| LIMITS.iter().any(|r| r.unified == k || r.legacy == k))
        })
        .map(str::to_string)
        .collect()
}

/// What a launch by hand (no service manager waiting for it: not the host unit) should hear
/// about the pod-level limits it does not set.
pub fn by_hand_warning(tree: &Path, plan: &MountPlan) -> Option<String> {
    let limits = pod_limits(tree, plan);
    (!limits.is_empty()).then(|| {
        format!(
            "the pod-level limits of podc-{}.service ({}) are set by that host unit only; run by hand, the pod has them only if the cgroup podc launch runs in has them (on a systemd host: systemd-run --scope --slice machine.slice -p Delegate=yes -p LIMIT=VALUE ... podc launch TREE)",
            plan.pod,
            limits.join(", ")
        )
    })
}

/// The manifest a tree was built from, as its header names it (for the build command to
/// suggest), or `MANIFEST`.
fn manifest_of(plan_text: &str) -> String {
    plan_text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(GENERATED))
        .and_then(|l| l.split_once(". Do not edit"))
        .map(|(m, _)| m.to_string())
        .filter(|m| !m.is_empty() && !m.contains(char::is_whitespace))
        .unwrap_or_else(|| "MANIFEST".into())
}

/// Compares a tree's target (`plan.cgroup`, `plan.systemd`) with `host`. `limits` are the
/// tree's app limits ([`app_limits`]), `manifest` what the suggested build command names.
pub fn compare(
    plan: &MountPlan,
    limits: &[String],
    host: &HostTarget,
    manifest: &str,
) -> TargetCheck {
    let mut check = TargetCheck::default();
    let target = format!(
        "cgroup {}{}",
        plan.cgroup,
        plan.systemd
            .map(|s| format!(", systemd {s}"))
            .unwrap_or_default()
    );
    let mut why: Vec<String> = Vec::new();
    match host.layout {
        None => check.warnings.push(format!(
            "cannot tell this host's cgroup layout (/sys/fs/cgroup is neither cgroup2 nor a tmpfs of v1 hierarchies); the tree's {target} target is not checked against it"
        )),
        Some(layout) if layout.cgroup() == plan.cgroup => {}
        Some(layout) => match plan.cgroup {
            CgroupVersion::V1 => why.push(
                "there the pod's systemd needs the cgroup2 mount that a v1 plan covers with a tmpfs, and the v1 knobs the plan binds do not exist".into(),
            ),
            CgroupVersion::V2 if !limits.is_empty() => why.push(format!(
                "there the pod's systemd would not apply the limits of {} (a v2 plan binds no v1 knobs into the pod), and nothing would say so",
                limits.join(" and ")
            )),
            CgroupVersion::V2 => check.warnings.push(format!(
                "the tree is built for {target}, this host has {}; its apps set no limit, so none is lost",
                layout.describe()
            )),
        },
    }
    match (plan.systemd, host.systemd) {
        (None, _) => check.warnings.push(
            "the tree does not say which systemd it was built for (an older podc built it); rebuild it to have it checked".into(),
        ),
        (Some(_), None) => check.warnings.push(format!(
            "cannot tell the version of this host's systemd ({POD_SYSTEMD} --version), which the pod boots; the tree's systemd target is not checked against it"
        )),
        (Some(t), Some(h)) if h < t => why.push(format!(
            "the pod boots this host's systemd {h}, which ignores every setting newer than itself (a limit, a sandbox part, a restart mode) with no more than a line in the pod's journal"
        )),
        (Some(t), Some(h)) if h > t => check.warnings.push(format!(
            "the tree is built for systemd {t} and this host has systemd {h}, which keeps every setting podc writes for {t}; `podc build --systemd {h}` targets it exactly"
        )),
        _ => {}
    }
    if !why.is_empty() {
        let host_says = format!(
            "{}, systemd {}",
            host.layout
                .map(Layout::describe)
                .unwrap_or("cgroups of an unknown layout"),
            host.systemd
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
        let fits = format!(
            "podc build --cgroup {} --systemd {} {manifest}",
            host.layout.map(Layout::cgroup).unwrap_or(plan.cgroup),
            host.systemd
                .or(plan.systemd)
                .unwrap_or(crate::systemd::target::DEFAULT_SYSTEMD),
        );
        check.refusals.push(format!(
            "the tree is built for {target}, but this host has {host_says}: {}; build it for this host with `{fits}`",
            why.join("; and ")
        ));
    }
    check
}

/// Reads what the comparison needs from the tree at `tree` (its plan already read and held
/// to the rules) and compares it with `host`.
pub fn check_target(tree: &Path, plan: &MountPlan, host: &HostTarget) -> TargetCheck {
    let text = fs::read_to_string(tree.join(crate::tree::layout::PLAN)).unwrap_or_default();
    compare(plan, &app_limits(tree, plan), host, &manifest_of(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cgroup: CgroupVersion, systemd: Option<u32>) -> MountPlan {
        let text = format!(
            "format = 1\npod = \"web\"\ncgroup = \"{cgroup}\"\n{}apps = [\"web\"]\nstep = []\n",
            systemd
                .map(|s| format!("systemd = {s}\n"))
                .unwrap_or_default()
        );
        toml::from_str(&text).unwrap()
    }

    fn host(layout: Layout, systemd: u32) -> HostTarget {
        HostTarget {
            layout: Some(layout),
            systemd: Some(systemd),
        }
    }

    const LIMITS_: &[&str] = &["web.service (MemoryMax=67108864)"];

    #[test]
    fn a_matching_host_says_nothing() {
        for (cgroup, layout) in [
            (CgroupVersion::V2, Layout::Unified),
            (CgroupVersion::V1, Layout::Hybrid),
            (CgroupVersion::V1, Layout::Legacy),
        ] {
            let c = compare(
                &plan(cgroup, Some(252)),
                &LIMITS_.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &host(layout, 252),
                "pod.yaml",
            );
            assert_eq!(c, TargetCheck::default(), "{cgroup} on {layout:?}");
        }
    }

    #[test]
    fn a_v2_tree_with_app_limits_is_refused_on_v1_layouts() {
        let limits: Vec<String> = LIMITS_.iter().map(|s| s.to_string()).collect();
        for layout in [Layout::Hybrid, Layout::Legacy] {
            let c = compare(
                &plan(CgroupVersion::V2, Some(252)),
                &limits,
                &host(layout, 252),
                "pod.yaml",
            );
            assert_eq!(c.refusals.len(), 1, "{c:?}");
            let r = &c.refusals[0];
            assert!(
                r.starts_with("the tree is built for cgroup v2, systemd 252, but this host has "),
                "{r}"
            );
            assert!(
                r.contains("would not apply the limits of web.service (MemoryMax=67108864)"),
                "{r}"
            );
            assert!(
                r.ends_with("`podc build --cgroup v1 --systemd 252 pod.yaml`"),
                "{r}"
            );
            // Without app limits nothing is lost: a warning.
            let c = compare(
                &plan(CgroupVersion::V2, Some(252)),
                &[],
                &host(layout, 252),
                "p",
            );
            assert!(c.refusals.is_empty(), "{c:?}");
            assert_eq!(c.warnings.len(), 1, "{c:?}");
        }
    }

    #[test]
    fn a_v1_tree_is_refused_on_a_unified_host_even_without_limits() {
        let c = compare(
            &plan(CgroupVersion::V1, Some(252)),
            &[],
            &host(Layout::Unified, 257),
            "pod.yaml",
        );
        assert_eq!(c.refusals.len(), 1, "{c:?}");
        assert!(
            c.refusals[0].contains("unified cgroup v2, systemd 257"),
            "{c:?}"
        );
        assert!(
            c.refusals[0].ends_with("`podc build --cgroup v2 --systemd 257 pod.yaml`"),
            "{c:?}"
        );
        // The newer systemd alone would only have been a warning.
        assert_eq!(c.warnings.len(), 1, "{c:?}");
    }

    #[test]
    fn an_older_host_systemd_is_refused_a_newer_one_warned() {
        let c = compare(
            &plan(CgroupVersion::V2, Some(257)),
            &[],
            &host(Layout::Unified, 252),
            "pod.yaml",
        );
        assert_eq!(c.refusals.len(), 1, "{c:?}");
        assert!(
            c.refusals[0].contains("systemd 252, which ignores every setting newer"),
            "{c:?}"
        );
        assert!(
            c.refusals[0].ends_with("`podc build --cgroup v2 --systemd 252 pod.yaml`"),
            "{c:?}"
        );
        let c = compare(
            &plan(CgroupVersion::V2, Some(252)),
            &[],
            &host(Layout::Unified, 257),
            "pod.yaml",
        );
        assert!(c.refusals.is_empty(), "{c:?}");
        assert!(
            c.warnings[0].contains("`podc build --systemd 257`"),
            "{c:?}"
        );
    }

    #[test]
    fn both_mismatches_make_one_refusal_with_one_build() {
        let limits = vec!["web.service (TasksMax=32)".to_string()];
        let c = compare(
            &plan(CgroupVersion::V2, Some(257)),
            &limits,
            &host(Layout::Hybrid, 252),
            "pod.yaml",
        );
        assert_eq!(c.refusals.len(), 1, "{c:?}");
        assert!(c.refusals[0].contains("TasksMax=32"), "{c:?}");
        assert!(
            c.refusals[0].contains("; and the pod boots this host's systemd 252"),
            "{c:?}"
        );
        assert!(
            c.refusals[0].ends_with("`podc build --cgroup v1 --systemd 252 pod.yaml`"),
            "{c:?}"
        );
    }

    #[test]
    fn what_cannot_be_told_is_a_warning() {
        let c = compare(
            &plan(CgroupVersion::V2, None),
            &[],
            &HostTarget {
                layout: None,
                systemd: None,
            },
            "p",
        );
        assert!(c.refusals.is_empty(), "{c:?}");
        assert_eq!(c.warnings.len(), 2, "{c:?}");
    }

    #[test]
    fn versions_and_manifests_are_read() {
        assert_eq!(
            parse_systemd_version("systemd 252 (252.39-1~deb12u2)\n+PAM"),
            Some(252)
        );
        assert_eq!(
            parse_systemd_version("systemd 257 (257.9-1~deb13u1)"),
            Some(257)
        );
        assert_eq!(parse_systemd_version("systemd 256~rc3"), Some(256));
        assert_eq!(parse_systemd_version("nonsense"), None);
        assert_eq!(parse_systemd_version(""), None);
        assert_eq!(
            manifest_of("# Generated by podc from hello.yaml. Do not edit: change it\n"),
            "hello.yaml"
        );
        assert_eq!(manifest_of("format = 1\n"), "MANIFEST");
    }

    #[test]
    fn this_hosts_layout_is_one_of_three_or_unknown() {
        // Whatever this machine is, the reading does not fail on it; where /sys/fs/cgroup is
        // a cgroup2 mount it must say unified.
        let layout = cgroup_layout(Path::new("/sys/fs/cgroup"));
        if Path::new("/sys/fs/cgroup/cgroup.controllers").is_file() {
            assert_eq!(layout, Some(Layout::Unified));
        }
        if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").is_file()
            && Path::new("/sys/fs/cgroup/memory").is_dir()
        {
            assert_eq!(layout, Some(Layout::Hybrid));
        }
    }
}
