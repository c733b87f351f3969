//! The resolved pod: every rule checked, every default applied.
//!
//! A [`Pod`] is what [`crate::resolve`] makes of a manifest that passed. Its fields hold final
//! values (bytes, millicores, uids or names, the effective read-only flag of each mount), so
//! lowering is a plain translation that cannot fail.

use std::collections::BTreeMap;

use std::net::IpAddr;

use crate::manifest::reference::Reference;
use crate::manifest::{
    Activation, Egress, HostResource, HostType, HttpScheme, IdOrName, ItemKind, Network, Protocol,
    Relax, Restart, Start, SyscallArch, UserNamespace,
};
use crate::systemd::target::Target;
pub use crate::tree::plan::HostPort;

pub use crate::systemd::argv::{Arg, Part};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    /// The manifest's file name (no directory), for the "generated from" headers.
    pub manifest_file: String,
    pub target: Target,
    pub limits: Limits,
    pub volumes: Vec<Volume>,
    /// The config items, then the secrets, each in manifest order.
    pub items: Vec<Item>,
    /// In manifest order.
    pub apps: Vec<App>,
    pub annotations: BTreeMap<String, String>,
    /// Kubernetes labels and namespace, kept for POD.md and `podc kube`.
    pub labels: BTreeMap<String, String>,
    pub namespace: Option<String>,
    pub network: Network,
    /// A private pod's way out (`none` on the host's network).
    pub egress: Egress,
    /// The host networks it joins (`podc-<name>` bridges), in manifest order.
    pub networks: Vec<String>,
    /// Ports of the host it may connect to (`allowHost`), in manifest order.
    pub allow_host: Vec<HostPort>,
    pub start: Start,
    /// Whose ids the pod runs with (`userNamespace`).
    pub user_namespace: UserNamespace,
}

impl Pod {
    /// Every published port, app by app in manifest order: the order of the host socket
    /// unit's listeners, and so of the file descriptors the pod is handed.
    pub fn ports(&self) -> impl Iterator<Item = (&App, &Port)> {
        self.apps
            .iter()
            .flat_map(|a| a.ports.iter().map(move |p| (a, p)))
    }

    /// Whether the host unit restarts the pod when it fails as a whole (`Restart=on-failure`):
    /// when it has apps that are not init apps and every one of them restarts (`on-failure`
    /// or `always`). Such a pod is a service, meant to run until it is stopped: it ends with a
    /// failure only when something an app's own restart cannot mend went wrong (the pod's
    /// systemd or nspawn died, the pod's memory limit killed its init, an app hit its start
    /// limit). A pod with an app that does not restart may end by design, as a job, and its
    /// exit status is the record of that run: restarting it would run finished work again.
    pub fn restarts(&self) -> bool {
        let mut apps = self.apps.iter().filter(|a| !a.init).peekable();
        apps.peek().is_some() && apps.all(|a| a.restart != Restart::No)
    }
}

/// Resource limits, pod-level or per-app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPU quota in thousandths of a core.
    pub cpu_millis: Option<u64>,
    pub cpu_weight: Option<CpuWeight>,
    pub memory_bytes: Option<u64>,
    /// `memoryRequest`: memory protected from reclaim (`MemoryLow=`, cgroup v2 only).
    pub memory_low_bytes: Option<u64>,
    pub tasks: Option<u64>,
    /// `cpu` and `memory` as the manifest wrote them (`500m`, `128Mi`), for the comment above
    /// each directive and POD.md: a reviewer reads `MemoryMax=134217728` against these. The
    /// integer settings (cpuShares, cpuWeight, tasks) are written as they were given.
    pub written: Written,
}

/// Quantities as the manifest wrote them (surrounding whitespace trimmed), set exactly when
/// the resolved value beside them is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// Set exactly when the weight is a [`CpuWeight::Request`].
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
}

/// A relative CPU weight as the manifest gave it; the target decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuWeight {
    Shares(u64),
    Weight(u64),
    /// `cpuRequest`, in millicores (at most [`MAX_REQUEST_MILLIS`]): weighted as Kubernetes
    /// weighs a CPU request.
    Request(u64),
}

/// The largest `cpuRequest`: 256 CPUs are the kernel's 262144 shares.
pub const MAX_REQUEST_MILLIS: u64 = 256_000;

impl CpuWeight {
    /// cgroup v1 shares: systemd's linear mapping of a weight (weight 100 = 1024 shares),
    /// clamped; for a request, the kubelet's (`millicores * 1024 / 1000`, at least 2).
    pub fn shares(self) -> u64 {
        match self {
            CpuWeight::Shares(s) => s,
            CpuWeight::Weight(w) => (w * 1024 / 100).clamp(2, 262_144),
            CpuWeight::Request(m) => (m * 1024 / 1000).clamp(2, 262_144),
        }
    }

    /// The weight that systemd turns into exactly these shares on cgroup v1
    /// (`weight * 1024 / 100`), if there is one.
    pub fn exact_weight_for_shares(shares: u64) -> Option<u64> {
        let w = (shares * 100).div_ceil(1024);
        ((1..=10_000).contains(&w) && w * 1024 / 100 == shares).then_some(w)
    }

    /// cgroup v2 weight, with systemd's linear mapping, clamped; for a request, the weight the
    /// kubelet (and runc, and crun) give its shares on cgroup v2:
    /// `1 + (shares - 2) * 9999 / 262142`.
    pub fn weight(self) -> u64 {
        match self {
            CpuWeight::Shares(s) => (s * 100 / 1024).clamp(1, 10_000),
            CpuWeight::Weight(w) => w,
            CpuWeight::Request(_) => 1 + (self.shares() - 2) * 9999 / 262_142,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub kind: VolumeKind,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeKind {
    Host {
        source: String,
        /// What the path is, checked or made at launch.
        host_type: HostType,
    },
    Empty {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// The pod's own directory on the host, made with `mode`, `uid` and `gid` at the first
    /// launch and kept after.
    Persistent {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// The root filesystem of an OCI image of the host's store, read-only and noexec.
    Image {
        reference: Reference,
    },
    /// A tmpfs of `size` bytes (`written` as the manifest wrote it) for each run.
    Memory {
        size: u64,
        written: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A fresh read-only directory for each run, holding the files of `dir` config items and
    /// secrets (a later source winning), each with `mode` without execute bits, owned by
    /// `uid` and `gid`.
    Projected {
        sources: Vec<Projected>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// A source of a projected volume: a `dir` item of the pod, and whether it may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    pub item: ItemRef,
    pub optional: bool,
}

/// Where an app's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A root filesystem directory on the host.
    Path(String),
    /// An OCI image the launcher resolves from the host's image store; its config supplies
    /// what the manifest leaves out (see [`App::given`]).
    Reference(Reference),
}

/// What the app runs. Its arguments may hold variables of the app's environment read at
/// launch (an `{expand: ...}` word), which systemd puts in when it starts the app; the
/// program (the first word of `exec`) never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `exec` with an absolute program: the whole command line, the unit's `ExecStart=`.
    Exec(Vec<Arg>),
    /// `exec` whose program is a bare name (an image by reference only): `podc launch` looks
    /// it up in the image's PATH and writes `ExecStart=` into the app's drop-in.
    LookUp(Vec<Arg>),
    /// `args` (an image by reference only): the image's Entrypoint with these arguments in
    /// place of its Cmd, written by `podc launch` into the app's drop-in.
    Args(Vec<Arg>),
    /// Neither (an image by reference only): the image's Entrypoint and Cmd.
    Image,
}

impl Command {
    /// Whether the unit itself carries the command line (else the launcher's drop-in does).
    pub fn in_unit(&self) -> bool {
        matches!(self, Command::Exec(_))
    }
}

/// Which of the settings an image's config can supply the manifest gave itself. For an
/// image by path every one counts as given (the defaults are podc's own). The command is
/// [`App::command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    pub working_directory: bool,
    /// `user` or `group` (either one means the image's `User` is not used).
    pub user: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub image: Image,
    pub command: Command,
    pub given: Given,
    pub user: IdOrName,
    pub group: IdOrName,
    pub supplementary_groups: Vec<IdOrName>,
    pub working_directory: String,
    pub environment: BTreeMap<String, String>,
    pub limits: Limits,
    pub oom_score_adj: Option<i64>,
    pub no_new_privileges: Option<bool>,
    pub capabilities: Option<Filter>,
    pub seccomp: Option<Seccomp>,
    /// The system calls the kernel logs: `Retain` only these, `Remove` all but these.
    pub syscall_log: Option<Filter>,
    /// The system call ABIs the app may use (x86-64 first); empty: every ABI of the host.
    pub syscall_architectures: Vec<SyscallArch>,
    /// Parts of the default sandbox this app does without.
    pub relax: Vec<Relax>,
    /// Its own cgroup at /sys/fs/cgroup, writable and delegated (`cgroupMount: read-write`).
    pub cgroup_writable: bool,
    pub mounts: Vec<AppMount>,
    pub read_only_rootfs: bool,
    /// Apps that start first, in manifest order.
    pub after: Vec<String>,
    /// Runs to completion before the apps that name it in `after` start (`init: true`).
    pub init: bool,
    pub restart: Restart,
    pub ports: Vec<Port>,
    pub health: Option<Health>,
    pub hooks: Hooks,
    /// Config items and secrets the app takes as files, in manifest order.
    pub files: Vec<AppFile>,
    /// Environment variables taken from config items and secrets at launch (never a value).
    pub env_from: BTreeMap<String, EnvRef>,
    /// Every key of config items and secrets as variables (`environmentFrom`), in manifest
    /// order: a later one wins, and [`App::environment`] and [`App::env_from`] win over all.
    pub environment_from: Vec<EnvAll>,
}

/// An app's lifecycle hooks, checked: each a command whose program is an absolute path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub post_start: Option<Vec<String>>,
    pub pre_stop: Option<Vec<String>>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.post_start.is_none() && self.pre_stop.is_none()
    }
}

/// A health probe, checked; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub probe: Probe,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub failures: u32,
    pub start_period_ms: u64,
}

/// What a health probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A command in the app's root, as the app's user.
    Exec(Vec<String>),
    Http {
        /// `Https`: over TLS, any certificate accepted, made by podc itself (`probe-https`).
        scheme: HttpScheme,
        host: IpAddr,
        port: u16,
        path: String,
        /// Header names (tokens) to values (no line break or NUL), sent after podc's own
        /// lines, each of which a header of its name (compared without case) replaces.
        headers: BTreeMap<String, String>,
    },
    Tcp {
        host: IpAddr,
        port: u16,
    },
    /// A `grpc.health.v1.Health/Check` call for `service` ("" for the whole server).
    Grpc {
        host: IpAddr,
        port: u16,
        service: String,
    },
}

impl Health {
    pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
    pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
    pub const DEFAULT_FAILURES: u32 = 3;
    pub const DEFAULT_START_PERIOD_MS: u64 = 60_000;
}

/// A duration as podc writes it: `90s`, `1500ms`, `2m`.
pub fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A config item or a secret of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    pub source: Source,
}

/// Where an item's bytes come from: text of the manifest (config only, written into the
/// tree), a file of the host, or a directory of the host whose regular files are its keys
/// (both read at launch only), or a number the launcher counts on the host (config only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Text(String),
    File(String),
    Dir(String),
    /// The resource's amount on the host divided by `divisor` (millicores of CPU, bytes of
    /// memory or storage; never 0), rounded up; `written` is the divisor as the manifest wrote
    /// it, if it did.
    Host {
        resource: HostResource,
        divisor: u64,
        written: Option<String>,
    },
}

/// A config item or secret as an app names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemRef {
    pub kind: ItemKind,
    pub name: String,
}

/// A config item or secret as a read-only file in the app's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFile {
    pub item: ItemRef,
    /// Absolute, normal path inside the app's root filesystem.
    pub path: String,
}

/// An environment variable's value from a config item or secret: the whole file (without one
/// final line break), or the value of one `KEY=VALUE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub item: ItemRef,
    pub key: Option<String>,
}

/// Every key of a config item or secret as variables (`environmentFrom`): the files of a
/// `dir` item, the `KEY=VALUE` lines of a `file` or `text` item; each key whose name with the
/// prefix is a variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAll {
    pub item: ItemRef,
    /// Empty: none.
    pub prefix: String,
}

impl Pod {
    /// The item an app names.
    pub fn item(&self, r: &ItemRef) -> Option<&Item> {
        self.items
            .iter()
            .find(|i| i.kind == r.kind && i.name == r.name)
    }
}

/// A published port, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: Option<String>,
    pub port: u16,
    pub host_port: u16,
    /// `None`: every address of the host.
    pub host_ip: Option<IpAddr>,
    pub protocol: Protocol,
    pub activation: Activation,
}

impl Port {
    /// The address to listen on, as systemd's `ListenStream=`/`ListenDatagram=` take it and the
    /// mount plan records it: `8080` (every address), `127.0.0.1:8080`, `[::1]:8080`.
    pub fn listen(&self) -> String {
        match self.host_ip {
            None => self.host_port.to_string(),
            Some(IpAddr::V4(a)) => format!("{a}:{}", self.host_port),
            Some(IpAddr::V6(a)) => format!("[{a}]:{}", self.host_port),
        }
    }
}

/// An allow list or a deny list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Retain(Vec<String>),
    Remove(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    pub filter: Filter,
    pub errno: Option<String>,
    /// An allow list of exactly its calls, without systemd's implicit `@default` group.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMount {
    pub volume: String,
    /// Absolute, normalized path inside the app's root filesystem.
    pub path: String,
    /// Read-only if the mount or the volume says so.
    pub read_only: bool,
    /// The directory or file inside the volume that is mounted (a relative path in normal
    /// form), instead of the whole volume.
    pub sub_path: Option<String>,
}

/// The capability bounding set Docker and rkt gave every app (measured under nspawn: a root
/// app can then not mount, change network devices, ptrace its way out of its chroot through
/// `/proc/1/root`, or set the clock).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

#[cfg(test)]
mod tests {
    use super::CpuWeight;

    #[test]
    fn shares_and_weights_use_systemds_linear_mapping_clamped() {
        assert_eq!(CpuWeight::Shares(1024).weight(), 100);
        assert_eq!(CpuWeight::Shares(512).weight(), 50);
        assert_eq!(CpuWeight::Shares(1000).weight(), 97);
        assert_eq!(CpuWeight::Shares(2).weight(), 1);
        assert_eq!(CpuWeight::Shares(262_144).weight(), 10_000);
        assert_eq!(CpuWeight::Weight(100).shares(), 1024);
        assert_eq!(CpuWeight::Weight(1).shares(), 10);
        assert_eq!(CpuWeight::Weight(10_000).shares(), 102_400);
    }

    #[test]
    fn requests_weigh_as_the_kubelet_weighs_them() {
        // kubelet MilliCPUToShares, then runc's ConvertCPUSharesToCgroupV2Value.
        for (millis, shares, weight) in [
            (1, 2, 1),
            (10, 10, 1),
            (100, 102, 4),
            (250, 256, 10),
            (500, 512, 20),
            (1000, 1024, 39),
            (2000, 2048, 79),
            (256_000, 262_144, 10_000),
        ] {
            assert_eq!(CpuWeight::Request(millis).shares(), shares, "{millis}m");
            assert_eq!(CpuWeight::Request(millis).weight(), weight, "{millis}m");
        }
    }

    #[test]
    fn exact_weights_for_shares() {
        assert_eq!(CpuWeight::exact_weight_for_shares(512), Some(50));
        assert_eq!(CpuWeight::exact_weight_for_shares(1024), Some(100));
        assert_eq!(CpuWeight::exact_weight_for_shares(10), Some(1));
        assert_eq!(CpuWeight::exact_weight_for_shares(100), None);
        assert_eq!(CpuWeight::exact_weight_for_shares(2), None);
        for w in 1..=10_000u64 {
            assert_eq!(CpuWeight::exact_weight_for_shares(w * 1024 / 100), Some(w));
        }
    }
}
