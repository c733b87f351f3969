//! What a launch is: the actions the launcher performs (pure data, shown by `--dry-run`),
//! the nspawn command line, and why a launch cannot go ahead.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::manifest::{HostType, ItemKind};
use crate::tree::plan::{HostPort, Listen, MountPlan};

/// An app or image volume whose image the store lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImage {
    /// What needs it: `app web`, `volume data`.
    pub needed_by: String,
    pub reference: String,
    /// The plan's reference, where the tree's record pinned it to `reference`.
    pub recorded_for: Option<String>,
    pub store: PathBuf,
}

impl fmt::Display for MissingImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: image {}", self.needed_by, self.reference)?;
        if let Some(r) = &self.recorded_for {
            write!(
                f,
                " (what {r} named when the tree recorded it in {})",
                crate::tree::layout::IMAGE_RECORD
            )?;
        }
        write!(
            f,
            " is not in the image store ({}); fetch it with: podc image pull {}",
            self.store.display(),
            self.reference
        )
    }
}

/// One app's use of a config item or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemUse {
    pub app: String,
    pub kind: ItemKind,
    pub name: String,
    /// The file it is read from: a host file, or the tree's file of a config item's text (for
    /// a number counted on the host, where it was counted).
    pub path: PathBuf,
    /// A `host` config item's number, counted on the host (not secret): no file is read.
    pub counted: Option<String>,
    pub taken: Taken,
}

/// How an app takes a config item or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// As a file (a credential).
    File,
    /// As one environment variable: its name and the `key` line it takes (`None`: the whole
    /// file).
    Variable { name: String, key: Option<String> },
    /// Every key as variables (`environmentFrom`), the app's own (`given`) excepted.
    Every(EnvEvery),
    /// Every file of its directory, in a projected volume the app mounts.
    Project { optional: bool },
}

/// A source of a projected volume: its directory's regular files, copied into the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub pod: String,
    pub volume: String,
    /// The apps that mount the volume (the first is named in an error).
    pub apps: Vec<String>,
    pub kind: ItemKind,
    pub name: String,
    pub dir: PathBuf,
    /// A missing directory gives no files instead of stopping the launch.
    pub optional: bool,
    /// The volume's directory.
    pub target: PathBuf,
    /// Each file's permission bits and owner.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Where every key of an item is read as variables (`environmentFrom`): the regular files of
/// a directory, else the `KEY=VALUE` lines of a file; never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEvery {
    pub kind: ItemKind,
    pub name: String,
    /// The directory, or the file.
    pub path: PathBuf,
    pub dir: bool,
    /// Put before each key (empty: none).
    pub prefix: String,
    /// The app's own variables (`environment`), which win over every key.
    pub given: Vec<String>,
}

/// Where one variable of an app's environment file is read: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSource {
    pub variable: String,
    pub kind: ItemKind,
    pub name: String,
    pub path: PathBuf,
    pub key: Option<String>,
    /// A `host` config item's number (then nothing is read from `path`).
    pub counted: Option<String>,
}

/// Why an app's config item or secret stops the launch: it names the pod, the app, the item
/// and its file, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}, app {app}: {kind} {name}: {}: {problem}; nothing was started", path.display())]
pub struct ItemProblem {
    pub pod: String,
    pub app: String,
    pub kind: &'static str,
    pub name: String,
    pub path: PathBuf,
    pub problem: String,
}

/// One thing the launcher does before it execs nspawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter a private mount namespace.
    Unshare,
    /// Create a directory (and its parents) if missing.
    Mkdir(PathBuf),
    /// Create a symbolic link if missing.
    Symlink {
        link: PathBuf,
        target: String,
    },
    /// Give the pod its machine id: the one derived from the host's (see [`pod_machine_id`]),
    /// or, on a host without one, the one the pod has, or a fresh one on its first launch.
    MachineId {
        path: PathBuf,
        id: Option<String>,
    },
    /// Write a file if it does not exist yet.
    Seed {
        path: PathBuf,
        content: String,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    Tmpfs(PathBuf),
    /// Mount an overlay: `lower` read-only under `upper` (with its `work` directory) at `target`.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// Add the users and groups an app names to the pod's user database (`etc` is the pod's
    /// `/etc`), with the ids its image's own `/etc/passwd` and `/etc/group` give them.
    Names {
        app: String,
        image: PathBuf,
        etc: PathBuf,
        users: Vec<String>,
        groups: Vec<String>,
    },
    /// Write a file, replacing what is there (the launcher's own files, made anew each launch).
    Write {
        path: PathBuf,
        content: String,
        what: String,
    },
    /// Give the pod's user database a numeric uid (with its primary gid) and a gid an image
    /// says an app runs as, where it lacks them (as systemd-sysusers does for the manifest's).
    Ids {
        etc: PathBuf,
        uid: Option<(u32, u32)>,
        gid: Option<u32>,
    },
    /// Make an empty volume's directory (on the volumes tmpfs).
    Volume {
        path: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Make a persistent volume's directory `<root>/<pod>/<volume>` if it is missing (with
    /// `mode`, `uid` and `gid`), else keep it as it is; never through a symbolic link.
    PersistentVolume {
        root: PathBuf,
        pod: String,
        volume: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Mount a fresh tmpfs of `size` bytes for a memory volume at `path` (made on the volumes
    /// tmpfs), its root with `mode`, `uid` and `gid`.
    MemoryVolume {
        path: PathBuf,
        size: u64,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Make or check a host volume's path as its `type` says
    /// ([`super::host_paths::host_path`]).
    HostPath {
        path: PathBuf,
        host_type: HostType,
    },
    /// Make `target` a mount point for `source` as `source` is: a directory, or an empty file.
    MountPoint {
        source: PathBuf,
        target: PathBuf,
    },
    /// Bind `sub` inside the volume directory `base` (empty: `base` itself) at `target`:
    /// reached from `base` without a symbolic link that leads out of it, made as a directory
    /// where it is missing if `make` (each missing directory with the permissions of `base`,
    /// as the kubelet makes a `subPath`), its mount point made as what it is (a directory or
    /// an empty file); read-only, and `noexec` (an image volume), as asked.
    BindWithin {
        base: PathBuf,
        sub: String,
        target: PathBuf,
        read_only: bool,
        make: bool,
        noexec: bool,
    },
    /// Give the pod its range of host ids (the tree's, else a free one, recorded) and a user
    /// namespace of that range for the idmapped mounts that follow ([`super::userns`]).
    UserNamespace {
        tree: PathBuf,
    },
    /// Bind `source` (that mount alone) at `target` through the pod's idmapping: the host's
    /// root owns what the pod's root owns there.
    IdmappedBind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    /// Put an idmapped copy of the pod's root over it, the mounts below it unchanged.
    IdmapRoot(PathBuf),
    /// Give the pod's root a cgroup directory of the host's v1 hierarchy and its files, which
    /// nspawn binds writable into a pod of its own user namespace.
    OwnCgroup(PathBuf),
    /// Create a cgroup directory on the host.
    Cgroup(PathBuf),
    /// Bind and listen on a published port in the host's network (no socket was handed over),
    /// to hand it to the pod as systemd would.
    Listen(Listen),
    /// Give the private network a way out (`egress: nat`) and the host networks it joins:
    /// see [`super::network`]. Performed last, just before nspawn starts, and undone when the
    /// pod ends.
    Network {
        pod: String,
        way_out: bool,
        networks: Vec<String>,
        /// Ports of the host the pod may connect to (`allowHost`).
        allow_host: Vec<HostPort>,
        /// Ports below 1024 open to every id of the pod (a pod of its own user namespace:
        /// this network namespace is the host's user namespace's, where the pod's root holds
        /// no capability, so otherwise not even it could bind one).
        low_ports: bool,
    },
    /// Copy a source's files into a projected volume (on the volumes tmpfs): read now, never
    /// shown.
    Project(Project),
    /// Write an app's environment file from config items and secrets (mode 0600, on the
    /// launcher's tmpfs): each variable read from its file now, never shown.
    Env {
        pod: String,
        app: String,
        path: PathBuf,
        vars: Vec<EnvSource>,
        /// Every key of these items (`environmentFrom`), in order, before `vars`.
        every: Vec<EnvEvery>,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Unshare => write!(f, "unshare the mount namespace (private)"),
            Action::Mkdir(p) => write!(f, "mkdir {}", p.display()),
            Action::Symlink { link, target } => write!(f, "symlink {} -> {target}", link.display()),
            Action::MachineId { path, id: Some(id) } => write!(
                f,
                "write {} {id} (the pod's machine id, from the host's, the tree and the pod name)",
                path.display()
            ),
            Action::MachineId { path, id: None } => write!(
                f,
                "write {} (a fresh machine id, unless the pod has one)",
                path.display()
            ),
            Action::Seed { path, .. } => write!(f, "write {} (if missing)", path.display()),
            Action::Bind {
                source,
                target,
                read_only,
            } => write!(
                f,
                "bind {} {} {}",
                if *read_only { "ro" } else { "rw" },
                source.display(),
                target.display()
            ),
            Action::Tmpfs(p) => write!(f, "mount tmpfs {}", p.display()),
            Action::Overlay {
                lower,
                upper,
                target,
                ..
            } => write!(
                f,
                "mount overlay {} (image, unchanged) + {} (the pod's writes) at {}",
                lower.display(),
                upper.display(),
                target.display()
            ),
            Action::Names {
                app,
                image,
                users,
                groups,
                ..
            } => write!(
                f,
                "add app {app}'s users [{}] and groups [{}] with their ids in {}/etc to the pod's user database",
                users.join(" "),
                groups.join(" "),
                image.display()
            ),
            other => other.fmt_more(f),
        }
    }
}

impl Action {
    /// A [`Action::HostPath`]'s or [`Action::MountPoint`]'s line.
    fn fmt_host_path(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::HostPath { path, host_type } => {
                let path = path.display();
                match host_type {
                    HostType::Directory => write!(f, "check that {path} is a directory"),
                    HostType::DirectoryOrCreate => write!(f, "mkdir {path} (and its parents) mode 0755 if missing; check that it is a directory (hostPath type DirectoryOrCreate)"),
                    HostType::File => write!(f, "check that {path} is a regular file (hostPath type File)"),
                    HostType::FileOrCreate => write!(f, "create {path} empty, mode 0644, if missing (not its directory); check that it is a regular file (hostPath type FileOrCreate)"),
                    HostType::Socket => write!(f, "check that {path} is a socket (hostPath type Socket)"),
                    HostType::Any => write!(f, "mkdir {path} (and its parents) mode 0755 if nothing is there; refuse a device (a hostPath without a type)"),
                }
            }
            Action::MountPoint { source, target } => write!(
                f,
                "mkdir or create {} as {} is (a directory, or an empty file)",
                target.display(),
                source.display()
            ),
            _ => Ok(()),
        }
    }

    /// A [`Action::BindWithin`]'s line.
    fn fmt_within(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Action::BindWithin {
            base,
            sub,
            target,
            read_only,
            make,
            noexec,
        } = self
        else {
            return Ok(());
        };
        let flags = match (*read_only, *noexec) {
            (true, true) => "ro,noexec",
            (true, false) => "ro",
            (false, true) => "rw,noexec",
            (false, false) => "rw",
        };
        if sub.is_empty() {
            return write!(f, "bind {flags} {} {}", base.display(), target.display());
        }
        write!(
            f,
            "bind {flags} {}/{sub} {} (never through a link out of {}{})",
            base.display(),
            target.display(),
            base.display(),
            if *make {
                "; made as a directory if missing"
            } else {
                ""
            }
        )
    }

    /// How the actions of a pod's own user namespace read in `--dry-run`.
    fn fmt_users(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::UserNamespace { tree } => write!(
                f,
                "give the pod a user namespace of its own: the tree's range of 65536 host ids ({}/{}, else the lowest free one from {}, recorded in both)",
                tree.join(crate::tree::layout::STATE).display(),
                super::userns::TREE_RECORD,
                super::userns::REGISTRY
            ),
            Action::IdmappedBind {
                source,
                target,
                read_only,
            } => write!(
                f,
                "bind {} {} {} idmapped (the host's owners as the pod's)",
                if *read_only { "ro" } else { "rw" },
                source.display(),
                target.display()
            ),
            Action::OwnCgroup(p) => write!(
                f,
                "chown cgroup {} and its files to the pod's root",
                p.display()
            ),
            Action::IdmapRoot(p) => write!(
                f,
                "idmap the pod's root {} (the host's owners as the pod's; the mounts below it as they are); an overlay's lower layer is idmapped where it is mounted",
                p.display()
            ),
            _ => unreachable!("only the actions of a user namespace"),
        }
    }

    /// The rest of [`Action`]'s `Display`: volumes, files written, sockets.
    fn fmt_more(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Volume {
                path,
                mode,
                uid,
                gid,
            } => {
                write!(
                    f,
                    "mkdir {} mode {mode:04o} owner {uid}:{gid}",
                    path.display()
                )
            }
            Action::PersistentVolume {
                root,
                pod,
                volume,
                mode,
                uid,
                gid,
            } => write!(
                f,
                "persistent volume {}: mkdir mode {mode:04o} owner {uid}:{gid} if missing, else keep it as the pod left it (never through a symbolic link)",
                root.join(pod).join(volume).display()
            ),
            Action::MemoryVolume {
                path,
                size,
                mode,
                uid,
                gid,
            } => write!(
                f,
                "mkdir {0} and mount tmpfs {0} size {size} mode {mode:04o} owner {uid}:{gid} (a memory volume, fresh for this run)",
                path.display()
            ),
            Action::BindWithin { .. } => self.fmt_within(f),
            Action::HostPath { .. } | Action::MountPoint { .. } => self.fmt_host_path(f),
            Action::Cgroup(p) => write!(f, "mkdir cgroup {}", p.display()),
            Action::UserNamespace { .. }
            | Action::IdmappedBind { .. }
            | Action::OwnCgroup(_)
            | Action::IdmapRoot(_) => self.fmt_users(f),
            Action::Project(p) => fmt_project(f, p),
            Action::Write {
                path,
                content,
                what,
            } => {
                write!(f, "write {} ({what}):", path.display())?;
                for l in content.lines() {
                    write!(f, "\n    {l}")?;
                }
                Ok(())
            }
            Action::Ids { etc, uid, gid } => {
                write!(f, "add to {}/passwd and group where missing:", etc.display())?;
                if let Some((u, g)) = uid {
                    write!(f, " uid {u} (group {g})")?;
                }
                if let Some(g) = gid {
                    write!(f, " gid {g}")?;
                }
                Ok(())
            }
            Action::Listen(l) => write!(
                f,
                "listen {} {} (no socket was handed over; the pod is handed this one)",
                l.protocol.name(),
                l.address
            ),
            Action::Env {
                app,
                path,
                vars,
                every,
                ..
            } => {
                write!(
                    f,
                    "write {} (mode 0600; app {app}'s variables from config and secrets, read now):",
                    path.display()
                )?;
                for e in every {
                    write!(f, "\n    every key of {} {}", e.kind, e.name)?;
                    if !e.prefix.is_empty() {
                        write!(f, " as {}<key>", e.prefix)?;
                    }
                    let what = if e.dir { "the files of" } else { "the lines of" };
                    write!(f, ", from {what} {}", e.path.display())?;
                    if !e.given.is_empty() {
                        write!(f, " (not {}: the app's own)", e.given.join(" "))?;
                    }
                }
                for v in vars {
                    write!(f, "\n    {} = {} {}", v.variable, v.kind, v.name)?;
                    if let Some(k) = &v.key {
                        write!(f, ", key {k}")?;
                    }
                    match &v.counted {
                        Some(n) => write!(f, ", {n}, counted from {}", v.path.display())?,
                        None => write!(f, ", from {}", v.path.display())?,
                    }
                }
                Ok(())
            }
            Action::Network {
                pod,
                way_out,
                networks,
                allow_host,
                low_ports,
            } => fmt_network(f, pod, (*way_out, *low_ports), networks, allow_host),
            _ => unreachable!("fmt handles every other action"),
        }
    }
}

/// How [`Action::Project`] reads in `--dry-run`.
fn fmt_project(f: &mut fmt::Formatter<'_>, p: &Project) -> fmt::Result {
    write!(
                f,
                "copy the regular files of {} {} from {}{} into {} (mode {:04o} owner {}:{}; a later source's file replaces one of its name; read now)",
                p.kind,
                p.name,
                p.dir.display(),
                if p.optional { " (optional: none if it is missing)" } else { "" },
                p.target.display(),
                p.mode,
                p.uid,
                p.gid
            )
}

/// How [`Action::Network`] reads in `--dry-run`.
fn fmt_network(
    f: &mut fmt::Formatter<'_>,
    pod: &str,
    (way_out, low_ports): (bool, bool),
    networks: &[String],
    allow_host: &[HostPort],
) -> fmt::Result {
    use super::network as net;
    if !way_out && networks.is_empty() {
        write!(
            f,
            "give pod {pod} a network namespace nspawn runs in, with loopback only:"
        )?;
    } else {
        write!(
            f,
            "give pod {pod} a network namespace nspawn runs in, with veth pairs to the host (nft table inet {}):",
            net::TABLE
        )?;
    }
    if low_ports {
        write!(f, "\n    ports below 1024 open to the pod's ids (net.ipv4.ip_unprivileged_port_start=0 in its network namespace, which its own user namespace holds no capability in)")?;
    }
    let mut n = 0;
    if way_out {
        write!(
            f,
            "\n    eth0: a lease on the host's pod subnet, veth {} on bridge {} (isolated from other pods), default route, NAT out; {} from the host's DNS servers",
            net::veth_name(pod, 0),
            net::BRIDGE,
            net::RESOLV
        )?;
        n = 1;
    }
    for (i, name) in networks.iter().enumerate() {
        write!(
            f,
            "\n    eth{}: a lease on network {name}, veth {} on bridge {}",
            n + i,
            net::veth_name(pod, n + i),
            net::network_bridge(name)
        )?;
    }
    if !allow_host.is_empty() {
        let ports: Vec<String> = allow_host.iter().map(HostPort::to_string).collect();
        write!(
            f,
            "\n    ports of the host it may connect to (set hostports): {}",
            ports.join(", ")
        )?;
    }
    if !networks.is_empty() || !allow_host.is_empty() {
        write!(
            f,
            "\n    {} at /etc/hosts: the host as {} and the pods of its networks by name",
            net::hosts_file(pod).display(),
            net::HOST_NAME
        )?;
    }
    Ok(())
}

/// The launcher's whole work: actions, then the nspawn command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub plan: MountPlan,
    pub actions: Vec<Action>,
    pub argv: Vec<String>,
    /// Host paths that must exist before anything is done (images, volume sources).
    pub sources: Vec<PathBuf>,
    /// Apps whose image (by reference) the host's store lacks: nothing is done for them, and
    /// the launch stops (or `--check` reports each).
    pub missing_images: Vec<MissingImage>,
    /// Every app's use of a config item or secret: each must be readable before anything is
    /// done.
    pub items: Vec<ItemUse>,
}

impl fmt::Display for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        writeln!(f, "exec")?;
        for arg in &self.argv {
            writeln!(f, "  {arg}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}: not a podc tree (no mounts.toml written by podc build)")]
    NotATree(PathBuf),
    #[error("{path}: {message}")]
    BadPlan { path: PathBuf, message: String },
    #[error("podc launch must run as root (it mounts, makes cgroups and starts a container)")]
    NotRoot,
    #[error("systemd-nspawn is not installed; install the systemd-container package")]
    NoNspawn,
    #[error("{0}: does not exist (an image or volume source of the pod)")]
    MissingSource(PathBuf),
    #[error("the pod needs the cgroup v1 controller `{0}`, which this host does not have mounted")]
    MissingController(String),
    #[error("app {0} takes its own cgroup writable (cgroupMount: read-write), which is safe only where cgroup2 is mounted at /sys/fs/cgroup with nsdelegate (as systemd mounts it on a cgroup v2 host); on this host it is not, so nothing was started")]
    NoNsdelegate(String),
    #[error("podc launch runs in the root `{0}` cgroup; start it from its host unit (podc-<pod>.service) or in a cgroup of its own")]
    RootCgroup(String),
    #[error("{0}: a mount point is reached through this symbolic link; podc mounts only on real directories")]
    Symlink(PathBuf),
    #[error("persistent volume {path}: {message}")]
    PersistentVolume { path: PathBuf, message: String },
    #[error("{}/{sub}: {message}", base.display())]
    SubPath {
        base: PathBuf,
        sub: String,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    MountPoint { path: PathBuf, message: String },
    #[error("host path {}: {message}", path.display())]
    HostPath { path: PathBuf, message: String },
    #[error("app {app}: {kind} {name:?} is not in its image's {file}")]
    UnknownName {
        app: String,
        kind: &'static str,
        name: String,
        file: PathBuf,
    },
    #[error("app {app}: {kind} {name:?} has id {image_id} in its image but {pod_id} in the pod's user database (another image gives it that id)")]
    NameConflict {
        app: String,
        kind: &'static str,
        name: String,
        image_id: u32,
        pod_id: u32,
    },
    #[error("cannot listen on {protocol} {address}: {source}{hint}")]
    Listen {
        protocol: &'static str,
        address: String,
        source: io::Error,
        hint: &'static str,
    },
    #[error("{handed} sockets were handed to the launcher, but the pod publishes {planned} (is podc-<pod>.socket from the same build as the tree?)")]
    HandedSockets { handed: usize, planned: usize },
    #[error("{0}")]
    MissingImage(MissingImage),
    #[error("image {reference}: {message}")]
    Image { reference: String, message: String },
    #[error("app {app}: image {reference}: {message}")]
    ImageConfig {
        app: String,
        reference: String,
        message: String,
    },
    #[error("{0}")]
    Item(Box<ItemProblem>),
    #[error("the pod's way out (egress: nat): {0}")]
    Network(#[from] super::network::NetError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}
