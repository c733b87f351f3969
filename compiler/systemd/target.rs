//! The target: which cgroup hierarchy and which systemd the generated units are for, and
//! which unit-file features each systemd version has.
//!
//! The table is data: one row per feature podc may emit, with the first systemd release that
//! understands it and, where it applies, the first release that no longer does. Resolution
//! asks it before anything is lowered, so `lower` never emits a directive the target lacks.

use crate::manifest::{CgroupVersion, Relax};

/// The systemd podc targets when the manifest and the command line say nothing.
pub const DEFAULT_SYSTEMD: u32 = 252;
/// The oldest systemd a manifest may name (SPEC section 1).
pub const MIN_SYSTEMD: u32 = 230;
/// The first systemd without cgroup v1 support.
pub const CGROUP_V1_REMOVED: u32 = 258;
/// The first systemd that warns about `MemoryLimit=` and `CPUShares=` ("will be removed
/// soon"; measured with systemd-analyze verify of systemd 252).
pub const V1_DIRECTIVES_DEPRECATED: u32 = 252;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub cgroup: CgroupVersion,
    pub systemd: u32,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            cgroup: CgroupVersion::V2,
            systemd: DEFAULT_SYSTEMD,
        }
    }
}

/// A unit-file feature whose availability depends on the systemd version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    MemoryMax,
    MemoryLow,
    CpuWeight,
    MemoryLimit,
    CpuShares,
    /// `CPUQuota=` with a fractional percentage such as `12.5%`.
    CpuQuotaFraction,
    /// `CPUQuota=` below 1%: the kernel's smallest quota is 1ms, so systemd must lengthen the
    /// period to fit, which it does since it gained `CPUQuotaPeriodSec=`.
    CpuQuotaBelowOnePercent,
    MountApiVfs,
    TypeExec,
    /// `SystemCallFilter=@group`, with the group name.
    SyscallGroup(&'static str),
    /// `SystemCallLog=`: system calls the kernel logs (systemd.exec(5): added in 247).
    SyscallLog,
    /// The directive of one part of the default sandbox.
    Sandbox(Relax),
    /// A config item or secret as a file in an app's root: `LoadCredential=` of a credential
    /// the container manager passed (247), bound with `BindReadOnlyPaths=%d/ID:PATH` (`%d`
    /// since 251; measured on 252 under systemd-nspawn --load-credential).
    CredentialFile,
    /// `RestartMode=direct`: a service being restarted goes straight back to activating, so
    /// units waiting for its start job keep waiting instead of failing with it (254; systemd.
    /// service(5): "dependent units are not notified of these temporary failures"). What an
    /// init app that restarts on-failure needs.
    RestartModeDirect,
    /// `ProtectControlGroups=private`: the unit runs in a cgroup namespace of its own, rooted at
    /// its cgroup, with its own writable cgroup2 mount at /sys/fs/cgroup (257; systemd.exec(5)).
    /// What an app with `cgroupMount: read-write` needs.
    ProtectControlGroupsPrivate,
}

/// `(first version with it, first version without it)`. Sources: systemd's NEWS ("CHANGES
/// WITH N"), the "Added in version N" notes of its man pages, and `systemd-analyze verify` of
/// Debian's builds of 247, 252 and 262.
pub fn availability(feature: Feature) -> (u32, Option<u32>) {
    match feature {
        Feature::MemoryMax | Feature::MemoryLow => (231, None),
        Feature::CpuWeight => (232, None),
        Feature::MemoryLimit | Feature::CpuShares => (0, Some(CGROUP_V1_REMOVED)),
        // One decimal (12.5%) is proven on 247 (measured); older releases are unconfirmed.
        Feature::CpuQuotaFraction => (247, None),
        Feature::CpuQuotaBelowOnePercent => (242, None),
        Feature::MountApiVfs => (233, None),
        Feature::TypeExec => (240, None),
        Feature::SyscallGroup(group) => (syscall_group_since(group).unwrap_or(0), None),
        Feature::SyscallLog => (247, None),
        Feature::Sandbox(part) => (sandbox_since(part), None),
        Feature::CredentialFile => (251, None),
        Feature::RestartModeDirect => (254, None),
        Feature::ProtectControlGroupsPrivate => (257, None),
    }
}

/// The first systemd with the directive of each part of the default sandbox (systemd.exec(5)'s
/// "Added in version N" and NEWS).
fn sandbox_since(part: Relax) -> u32 {
    match part {
        Relax::Tmp => 0,
        Relax::Devices => 209,
        Relax::KernelTunables | Relax::KernelModules | Relax::ControlGroups => 232,
        Relax::KernelLogs => 244,
        Relax::Clock => 245,
        Relax::Hostname => 242,
        Relax::Proc => 247,
        Relax::ProcMasks | Relax::Realtime => 231,
        Relax::Namespaces => 233,
        Relax::Personality => 235,
    }
}

impl Feature {
    /// How the feature is spelled in a unit file, for messages.
    pub fn spelling(self) -> String {
        match self {
            Feature::MemoryMax => "MemoryMax=".into(),
            Feature::MemoryLow => "MemoryLow=".into(),
            Feature::CpuWeight => "CPUWeight=".into(),
            Feature::MemoryLimit => "MemoryLimit=".into(),
            Feature::CpuShares => "CPUShares=".into(),
            Feature::CpuQuotaFraction => "a fractional CPUQuota= percentage".into(),
            Feature::CpuQuotaBelowOnePercent => "a CPUQuota= below 1%".into(),
            Feature::MountApiVfs => "MountAPIVFS=".into(),
            Feature::TypeExec => "Type=exec".into(),
            Feature::SyscallGroup(g) => format!("the system call group {g}"),
            Feature::SyscallLog => "SystemCallLog=".into(),
            Feature::Sandbox(part) => format!("the sandbox part {part:?}"),
            Feature::CredentialFile => "LoadCredential= with %d in BindReadOnlyPaths=".into(),
            Feature::RestartModeDirect => "RestartMode=direct".into(),
            Feature::ProtectControlGroupsPrivate => "ProtectControlGroups=private".into(),
        }
    }
}

impl Target {
    /// Whether limits are written with the unified directives (`MemoryMax=`, `CPUWeight=`).
    /// Always on cgroup v2; on cgroup v1 from the systemd that deprecates `MemoryLimit=` and
    /// `CPUShares=`, because systemd applies `MemoryMax=` to `memory.limit_in_bytes` and
    /// `CPUWeight=` to `cpu.shares` (weight × 1024 / 100) on the v1 hierarchy too.
    pub fn unified_directives(self) -> bool {
        self.cgroup == CgroupVersion::V2 || self.systemd >= V1_DIRECTIVES_DEPRECATED
    }

    pub fn has(self, feature: Feature) -> bool {
        let (since, until) = availability(feature);
        self.systemd >= since && until.is_none_or(|u| self.systemd < u)
    }
}

/// System call groups systemd knows, with the release that introduced each.
const SYSCALL_GROUPS: &[(&str, u32)] = &[
    ("@aio", 235),
    ("@basic-io", 231),
    ("@chown", 235),
    ("@clock", 231),
    ("@cpu-emulation", 231),
    ("@debug", 231),
    ("@default", 231),
    ("@file-system", 233),
    ("@io-event", 231),
    ("@ipc", 231),
    ("@keyring", 231),
    ("@known", 247),
    ("@memlock", 245),
    ("@module", 231),
    ("@mount", 231),
    ("@network-io", 231),
    ("@obsolete", 231),
    ("@pkey", 245),
    ("@privileged", 231),
    ("@process", 231),
    ("@raw-io", 231),
    ("@reboot", 233),
    ("@resources", 231),
    ("@sandbox", 250),
    ("@setuid", 235),
    ("@signal", 244),
    ("@swap", 233),
    ("@sync", 235),
    ("@system-service", 239),
    ("@timer", 240),
];

pub fn syscall_group_since(group: &str) -> Option<u32> {
    SYSCALL_GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, v)| *v)
}

pub fn syscall_groups() -> impl Iterator<Item = &'static str> {
    SYSCALL_GROUPS.iter().map(|(g, _)| *g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cgroup: CgroupVersion, systemd: u32) -> Target {
        Target { cgroup, systemd }
    }

    #[test]
    fn features_appear_and_disappear_with_versions() {
        let v2 = CgroupVersion::V2;
        assert!(!t(v2, 230).has(Feature::MemoryMax));
        assert!(t(v2, 231).has(Feature::MemoryMax));
        assert!(!t(v2, 231).has(Feature::CpuWeight));
        assert!(t(v2, 232).has(Feature::CpuWeight));
        assert!(!t(v2, 239).has(Feature::TypeExec));
        assert!(t(v2, 240).has(Feature::TypeExec));
        assert!(t(v2, 257).has(Feature::MemoryLimit));
        assert!(!t(v2, 258).has(Feature::MemoryLimit));
        assert!(!t(v2, 238).has(Feature::SyscallGroup("@system-service")));
        assert!(t(v2, 239).has(Feature::SyscallGroup("@system-service")));
        assert!(!t(v2, 246).has(Feature::Sandbox(crate::manifest::Relax::Proc)));
        assert!(t(v2, 247).has(Feature::Sandbox(crate::manifest::Relax::Proc)));
        assert!(t(v2, 233).has(Feature::Sandbox(crate::manifest::Relax::Tmp)));
        assert!(!t(v2, 253).has(Feature::RestartModeDirect));
        assert!(t(v2, 254).has(Feature::RestartModeDirect));
        assert!(!t(v2, 250).has(Feature::CredentialFile));
        assert!(t(v2, 251).has(Feature::CredentialFile));
    }

    #[test]
    fn unified_directives_on_v1_from_252() {
        assert!(!t(CgroupVersion::V1, 251).unified_directives());
        assert!(t(CgroupVersion::V1, 252).unified_directives());
        assert!(t(CgroupVersion::V2, 233).unified_directives());
    }
}
