//! The mount plan: everything the launcher must mount, in order, as data.
//!
//! The compiler writes it to `mounts.toml`; `podc launch` reads it back through the same
//! types, so there is one definition of the format. Container paths are absolute paths inside
//! the pod's root; cgroup paths are relative to the pod's own cgroup on the host, which the
//! launcher learns from `/proc/self/cgroup` when it runs.

use serde::{Deserialize, Serialize};

pub use super::cgroup::Controller;

use crate::manifest::{
    CgroupVersion, Egress, HostResource, HostType, ItemKind, Network, Protocol, UserNamespace,
};

/// `key = value` and a line break; `key` is a bare TOML key.
fn line(out: &mut String, key: &str, value: impl toml_writer::WriteTomlValue) {
    use toml_writer::TomlWrite;
    out.push_str(key);
    out.push_str(" = ");
    out.value(value).expect("writing to a String cannot fail");
    out.push('\n');
}

/// What an `image` step's `given` may list: the settings the manifest gave itself, which the
/// image's config then does not supply.
pub const GIVEN: [&str; 3] = ["exec", "workingDirectory", "user"];

/// Format version of `mounts.toml`.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MountPlan {
    pub format: u32,
    pub pod: String,
    pub cgroup: CgroupVersion,
    /// The systemd version the tree was built for (`target.systemd`, `--systemd`): the pod's
    /// systemd is the host's (its `/usr`), so the launcher and `podc install` hold the host to
    /// it. `None` in a tree of a podc that did not write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<u32>,
    /// The apps, in manifest order (their units are `<app>.service`).
    pub apps: Vec<String>,
    /// `private`: the pod gets a network namespace of its own (loopback only). Written only
    /// when not `host`, so plans of pods without networking read as they always did.
    #[serde(default = "host_network", skip_serializing_if = "is_host_network")]
    pub network: Network,
    /// `nat`: the launcher gives the private network a way out through the host (a veth on
    /// the `podc0` bridge, NAT by nftables). Written only when not `none`.
    #[serde(default = "no_egress", skip_serializing_if = "is_no_egress")]
    pub egress: Egress,
    /// The host networks the pod joins (bridges `podc-<name>`), for the launcher.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Ports of the host the pod may connect to (`allowHost`), let through podc's table for
    /// the pod's addresses while it runs.
    #[serde(rename = "allowHost", default, skip_serializing_if = "Vec::is_empty")]
    pub allow_host: Vec<HostPort>,
    /// `private`: the pod runs in a user namespace of its own, on a range of host ids the
    /// launcher gives it. Written only when not `host`.
    #[serde(
        rename = "userNamespace",
        default = "host_users",
        skip_serializing_if = "is_host_users"
    )]
    pub user_namespace: UserNamespace,
    /// The published ports, in the order of the host socket unit's listeners (and so of the
    /// file descriptors the pod is handed). Without a socket handed over by systemd, the
    /// launcher binds these itself.
    #[serde(rename = "listen", default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<Listen>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

fn is_directory(t: &HostType) -> bool {
    *t == HostType::Directory
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A bind's `subPath` and `makeMissing` lines, each only when set.
fn sub_path_lines(out: &mut String, sub_path: &Option<String>, make_missing: bool) {
    if let Some(sub) = sub_path {
        line(out, "subPath", sub);
    }
    if make_missing {
        line(out, "makeMissing", true);
    }
}

fn host_network() -> Network {
    Network::Host
}

fn is_host_network(n: &Network) -> bool {
    *n == Network::Host
}

fn host_users() -> UserNamespace {
    UserNamespace::Host
}

fn is_host_users(u: &UserNamespace) -> bool {
    *u == UserNamespace::Host
}

fn no_egress() -> Egress {
    Egress::None
}

fn is_no_egress(e: &Egress) -> bool {
    *e == Egress::None
}

/// A port of the host a private pod may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    pub protocol: Protocol,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    /// As `podc status` and POD.md show it: `5432/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol.name())
    }
}

/// A socket the pod listens on through the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub protocol: Protocol,
    /// As systemd's `ListenStream=` takes it: `8080`, `127.0.0.1:8080`, `[::1]:8080`.
    pub address: String,
}

impl Listen {
    /// The address's host part (`None`: every address) and port, if it is one of the forms
    /// podc writes.
    pub fn parse(&self) -> Option<(Option<std::net::IpAddr>, u16)> {
        if let Ok(p) = self.address.parse::<u16>() {
            return (p > 0 && p.to_string() == self.address).then_some((None, p));
        }
        let addr: std::net::SocketAddr = self.address.parse().ok()?;
        (addr.port() > 0 && addr.to_string() == self.address)
            .then_some((Some(addr.ip()), addr.port()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "do",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Step {
    /// Make a fresh, empty directory for an empty volume, for this run of the pod.
    MakeVolume {
        volume: String,
        /// Octal permission bits, e.g. "0755".
        mode: String,
        uid: u32,
        gid: u32,
    },
    /// Use the pod's persistent directory for a volume: `<volumes root>/<pod>/<volume>` on the
    /// host (the root is the launcher's, never the plan's), made with these permissions at the
    /// first launch and kept as the pod left it after that.
    PersistentVolume {
        volume: String,
        /// Octal permission bits, e.g. "0750".
        mode: String,
        uid: u32,
        gid: u32,
    },
    /// Mount a fresh tmpfs of `size` bytes for a memory volume, for this run of the pod.
    MemoryVolume {
        volume: String,
        size: u64,
        /// Octal permission bits, e.g. "1777".
        mode: String,
        uid: u32,
        gid: u32,
    },
    /// Make a fresh directory for a projected volume on the volumes tmpfs, for this run of the
    /// pod (as `make-volume`); the `project` steps after it fill it.
    ProjectedVolume {
        volume: String,
        /// Octal permission bits, e.g. "0755"; its files get them without execute bits.
        mode: String,
        uid: u32,
        gid: u32,
    },
    /// Copy the regular files of the host directory `dir` (a `dir` config item or secret) into
    /// the projected volume, each with the volume's mode without execute bits and its owner; a
    /// file of an earlier step of that name is replaced. A link is never followed; what is not
    /// a regular file is skipped (by name, in the launcher's log). A missing `dir` stops the
    /// launch, unless `optional`. `apps` mount the volume.
    Project {
        volume: String,
        kind: ItemKind,
        name: String,
        dir: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
        apps: Vec<String>,
    },
    /// Mount an app's image writable for this pod without changing it: an overlay whose lower
    /// layer is the image and whose upper layer is the pod's own (`TREE/state/<app>`), which
    /// takes the app's writes and the mount points the image lacks.
    Overlay {
        app: String,
        source: String,
        target: String,
    },
    /// An app's image by reference: the launcher resolves `reference` from the host's image
    /// store and mounts the image's root at `target` as an overlay (like [`Step::Overlay`]), or
    /// read-only (`readOnly`, like a read-only [`Step::BindHost`]); the image's root is never
    /// written. Its config supplies the settings the manifest left out: the command unless
    /// `given` has `exec`, the working directory unless `workingDirectory`, the user unless
    /// `user`, and every environment variable not in `environment` (the names the manifest
    /// sets), written as a drop-in for the app's unit. The command is the image's Entrypoint
    /// and Cmd, or `exec` (the manifest's, whose program is a bare name the launcher looks up
    /// in the image's PATH), or the Entrypoint with `args` in place of the Cmd.
    Image {
        app: String,
        reference: String,
        target: String,
        read_only: bool,
        #[serde(default)]
        given: Vec<String>,
        #[serde(default)]
        environment: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exec: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// Variables read at launch that `exec` or `args` refer to: with any, their words are
        /// written as Kubernetes writes a command (`$(NAME)` of a name here, `$$` for `$`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expand: Vec<String>,
    },
    /// An image volume: the launcher resolves `reference` from the host's image store as it
    /// resolves an `image` step's, and binds the image's root (or a path inside it) wherever a
    /// `bind-volume` step names the volume, always read-only and noexec.
    ImageVolume { volume: String, reference: String },
    /// Bind a host path into the pod's root before nspawn starts, made or checked first as
    /// `type` says (see [`HostType`]); with `subPath`, that path inside it (see
    /// [`Step::BindVolume`]).
    BindHost {
        source: String,
        target: String,
        read_only: bool,
        /// What `source` is, checked or made before it is bound (a host volume's `type`);
        /// written only when not `directory`.
        #[serde(rename = "type", default, skip_serializing_if = "is_directory")]
        host_type: HostType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub_path: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        make_missing: bool,
    },
    /// Bind a volume's directory (empty, persistent or memory) into the pod's root before
    /// nspawn starts; with `subPath`, the directory or file at that relative path inside it
    /// instead, reached without a symbolic link leading out of the volume, and with
    /// `makeMissing` (a volume the pod may write) made as a directory where it is missing,
    /// with the volume directory's permissions, as the kubelet makes it.
    BindVolume {
        volume: String,
        target: String,
        read_only: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub_path: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        make_missing: bool,
    },
    /// Give the pod's user database the users and groups an app names, with the ids its own
    /// image gives them (its `/etc/passwd` and `/etc/group`), as rkt did; a name the image does
    /// not know stops the launch.
    Names {
        app: String,
        users: Vec<String>,
        groups: Vec<String>,
    },
    /// A tmpfs inside the container (an nspawn `--tmpfs`).
    Tmpfs { target: String },
    /// Bind the launcher's own executable read-only at
    /// [`PROBE_PROGRAM`](crate::tree::layout::PROBE_PROGRAM) in the pod, for the gRPC health
    /// probes (`podc probe-grpc`), whatever podc launched the pod and wherever it is installed.
    BindPodc,
    /// App `app` sees its own cgroup writable (`cgroupMount: read-write`), which is safe only
    /// where the host's cgroup2 at /sys/fs/cgroup is mounted with `nsdelegate` (the kernel then
    /// keeps the app's own limits out of its reach): the launcher starts nothing elsewhere.
    WritableCgroup { app: String },
    /// Create a directory below the pod's cgroup in one controller's hierarchy.
    CgroupDir {
        controller: Controller,
        path: String,
    },
    /// Bind a cgroup directory or file of the pod into the container (an nspawn `--bind`);
    /// `path` is relative to the pod's cgroup, empty for the pod's cgroup itself.
    CgroupBind {
        controller: Controller,
        path: String,
        target: String,
        read_only: bool,
    },
    /// A config item or secret that `apps` take as a file: passed into the pod as the system
    /// credential `podc.<kind>.<name>` (nspawn `--load-credential`), read from the host file
    /// `source` (none: a config item's text, in the tree's `rootfs/etc/podc/config/<name>`),
    /// or for a config item with `host` the number the launcher counts (`--set-credential`).
    /// The launcher refuses to start the pod when it cannot read it.
    Credential {
        kind: ItemKind,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<HostResource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        divisor: Option<u64>,
        apps: Vec<String>,
    },
    /// An environment variable of `app` from a config item or secret (its `source` as for
    /// [`Step::Credential`]): the whole file without one final line break, or the value of its
    /// `key` line; written at launch into the app's environment file on a tmpfs.
    Env {
        app: String,
        variable: String,
        kind: ItemKind,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<HostResource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        divisor: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Every key of a config item or secret as variables of `app` (`environmentFrom`), written
    /// at launch into the app's environment file after the earlier `env-all` steps' (a later
    /// key wins): the regular files of the host directory `dir` (file name = key, content =
    /// value), or the `KEY=VALUE` lines of the host file `source` (neither: a config item's
    /// text, in the tree); each key whose name with `prefix` is a variable name. The variables
    /// `given` (the app's own `environment`) are never taken from it.
    EnvAll {
        app: String,
        kind: ItemKind,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        given: Vec<String>,
    },
}

impl MountPlan {
    /// The plan's top-level keys and its `allowHost` and `listen` tables, as [`Self::to_toml`]
    /// lays them out before the steps.
    fn head_toml(&self, out: &mut String) {
        line(out, "format", self.format);
        line(out, "pod", self.pod.as_str());
        line(out, "cgroup", self.cgroup.to_string().as_str());
        if let Some(systemd) = self.systemd {
            line(out, "systemd", systemd);
        }
        line(out, "apps", &self.apps);
        if self.network != Network::Host {
            line(out, "network", self.network.name());
        }
        if self.egress != Egress::None {
            line(out, "egress", self.egress.name());
        }
        if !self.networks.is_empty() {
            line(out, "networks", &self.networks);
        }
        if self.user_namespace != UserNamespace::Host {
            line(out, "userNamespace", self.user_namespace.name());
        }
        for h in &self.allow_host {
            out.push_str("\n[[allowHost]]\n");
            line(out, "protocol", h.protocol.name());
            line(out, "port", h.port);
        }
        for l in &self.listen {
            out.push_str("\n[[listen]]\n");
            line(out, "protocol", l.protocol.name());
            line(out, "address", l.address.as_str());
        }
    }

    /// The plan as TOML, byte for byte what `toml::to_string` makes of it (tests/mountplan.rs
    /// holds the two together), laid out here because the serializer cost as much as the rest
    /// of rendering a pod. Strings are encoded by `toml_writer`, as the serializer does.
    pub fn to_toml(&self) -> String {
        let mut out = String::with_capacity(128 + self.steps.len() * 128);
        self.head_toml(&mut out);
        if self.steps.is_empty() {
            // As serde writes an empty array of tables.
            line(&mut out, "step", [0u8; 0]);
        }
        for step in &self.steps {
            out.push_str("\n[[step]]\n");
            line(&mut out, "do", step.kind());
            match step {
                Step::MakeVolume {
                    volume,
                    mode,
                    uid,
                    gid,
                }
                | Step::PersistentVolume {
                    volume,
                    mode,
                    uid,
                    gid,
                }
                | Step::ProjectedVolume {
                    volume,
                    mode,
                    uid,
                    gid,
                } => {
                    line(&mut out, "volume", volume);
                    line(&mut out, "mode", mode);
                    line(&mut out, "uid", *uid);
                    line(&mut out, "gid", *gid);
                }
                Step::Project { .. } => project_lines(&mut out, step),
                Step::ImageVolume { volume, reference } => {
                    line(&mut out, "volume", volume);
                    line(&mut out, "reference", reference);
                }
                Step::MemoryVolume {
                    volume,
                    size,
                    mode,
                    uid,
                    gid,
                } => {
                    line(&mut out, "volume", volume);
                    line(&mut out, "size", *size);
                    line(&mut out, "mode", mode);
                    line(&mut out, "uid", *uid);
                    line(&mut out, "gid", *gid);
                }
                Step::Overlay {
                    app,
                    source,
                    target,
                } => {
                    line(&mut out, "app", app);
                    line(&mut out, "source", source);
                    line(&mut out, "target", target);
                }
                Step::Image { .. } => image_lines(&mut out, step),
                Step::BindHost { .. } | Step::BindVolume { .. } => bind_lines(&mut out, step),
                Step::Names { app, users, groups } => {
                    line(&mut out, "app", app);
                    line(&mut out, "users", users);
                    line(&mut out, "groups", groups);
                }
                Step::Tmpfs { target } => line(&mut out, "target", target),
                Step::BindPodc => {}
                Step::WritableCgroup { app } => line(&mut out, "app", app),
                Step::CgroupDir { controller, path } => {
                    line(&mut out, "controller", controller.name());
                    line(&mut out, "path", path);
                }
                Step::CgroupBind {
                    controller,
                    path,
                    target,
                    read_only,
                } => {
                    line(&mut out, "controller", controller.name());
                    line(&mut out, "path", path);
                    line(&mut out, "target", target);
                    line(&mut out, "readOnly", *read_only);
                }
                Step::Credential { .. } | Step::Env { .. } | Step::EnvAll { .. } => {
                    item_toml(&mut out, step)
                }
            }
        }
        out
    }

    pub fn from_toml(text: &str) -> Result<MountPlan, toml::de::Error> {
        toml::from_str(text)
    }
}

impl Step {
    /// The step's `do`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::MakeVolume { .. } => "make-volume",
            Step::PersistentVolume { .. } => "persistent-volume",
            Step::MemoryVolume { .. } => "memory-volume",
            Step::ProjectedVolume { .. } => "projected-volume",
            Step::Project { .. } => "project",
            Step::ImageVolume { .. } => "image-volume",
            Step::Overlay { .. } => "overlay",
            Step::Image { .. } => "image",
            Step::BindHost { .. } => "bind-host",
            Step::BindVolume { .. } => "bind-volume",
            Step::Names { .. } => "names",
            Step::Tmpfs { .. } => "tmpfs",
            Step::BindPodc => "bind-podc",
            Step::WritableCgroup { .. } => "writable-cgroup",
            Step::CgroupDir { .. } => "cgroup-dir",
            Step::CgroupBind { .. } => "cgroup-bind",
            Step::Credential { .. } => "credential",
            Step::Env { .. } => "env",
            Step::EnvAll { .. } => "env-all",
        }
    }

    /// The volume a `make-volume`, `persistent-volume` or `memory-volume` step makes.
    pub fn made_volume(&self) -> Option<&str> {
        match self {
            Step::MakeVolume { volume, .. }
            | Step::PersistentVolume { volume, .. }
            | Step::MemoryVolume { volume, .. }
            | Step::ProjectedVolume { volume, .. }
            | Step::ImageVolume { volume, .. } => Some(volume),
            _ => None,
        }
    }
}

/// The TOML lines of a `credential`, `env` or `env-all` step (after its `do`).
fn item_toml(out: &mut String, step: &Step) {
    match step {
        Step::Credential {
            kind,
            name,
            source,
            host,
            divisor,
            apps,
        } => {
            line(out, "kind", kind.name());
            line(out, "name", name);
            if let Some(source) = source {
                line(out, "source", source);
            }
            host_lines(out, host, divisor);
            line(out, "apps", apps);
        }
        Step::Env {
            app,
            variable,
            kind,
            name,
            source,
            host,
            divisor,
            key,
        } => {
            line(out, "app", app);
            line(out, "variable", variable);
            line(out, "kind", kind.name());
            line(out, "name", name);
            if let Some(source) = source {
                line(out, "source", source);
            }
            host_lines(out, host, divisor);
            if let Some(key) = key {
                line(out, "key", key);
            }
        }
        Step::EnvAll {
            app,
            kind,
            name,
            source,
            dir,
            prefix,
            given,
        } => {
            line(out, "app", app);
            line(out, "kind", kind.name());
            line(out, "name", name);
            for (k, v) in [("source", source), ("dir", dir)] {
                if let Some(v) = v {
                    line(out, k, v);
                }
            }
            if !prefix.is_empty() {
                line(out, "prefix", prefix);
            }
            if !given.is_empty() {
                line(out, "given", given);
            }
        }
        _ => unreachable!("only credential and env steps"),
    }
}

/// The lines of a `bind-host` or `bind-volume` step after its `do`.
fn bind_lines(out: &mut String, step: &Step) {
    match step {
        Step::BindHost {
            source,
            target,
            read_only,
            host_type,
            sub_path,
            make_missing,
        } => {
            line(out, "source", source);
            line(out, "target", target);
            line(out, "readOnly", *read_only);
            if *host_type != HostType::Directory {
                line(out, "type", host_type.name());
            }
            sub_path_lines(out, sub_path, *make_missing);
        }
        Step::BindVolume {
            volume,
            target,
            read_only,
            sub_path,
            make_missing,
        } => {
            line(out, "volume", volume);
            line(out, "target", target);
            line(out, "readOnly", *read_only);
            sub_path_lines(out, sub_path, *make_missing);
        }
        _ => unreachable!("only bind steps"),
    }
}

/// The `host` and `divisor` lines of a `credential` or `env` step.
fn host_lines(out: &mut String, host: &Option<HostResource>, divisor: &Option<u64>) {
    if let (Some(host), Some(divisor)) = (host, divisor) {
        line(out, "host", host.name());
        line(out, "divisor", *divisor);
    }
}

/// The lines of a `project` step after its `do`.
fn project_lines(out: &mut String, step: &Step) {
    if let Step::Project {
        volume,
        kind,
        name,
        dir,
        optional,
        apps,
    } = step
    {
        line(out, "volume", volume);
        line(out, "kind", kind.name());
        line(out, "name", name);
        line(out, "dir", dir);
        if *optional {
            line(out, "optional", true);
        }
        line(out, "apps", apps);
    }
}

/// The lines of an `image` step after its `do`.
fn image_lines(out: &mut String, step: &Step) {
    let Step::Image {
        app,
        reference,
        target,
        read_only,
        given,
        environment,
        exec,
        args,
        expand,
    } = step
    else {
        return;
    };
    line(out, "app", app);
    line(out, "reference", reference);
    line(out, "target", target);
    line(out, "readOnly", *read_only);
    line(out, "given", given);
    line(out, "environment", environment);
    // Only when set: plans of pods without them read as they always did.
    for (key, list) in [("exec", exec), ("args", args), ("expand", expand)] {
        if !list.is_empty() {
            line(out, key, list);
        }
    }
}
