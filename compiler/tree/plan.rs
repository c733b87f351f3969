//! The mount plan: everything the launcher must mount, in order, as data.
//!
//! The compiler writes it to `mounts.toml`; `podc launch` reads it back through the same
//! types, so there is one definition of the format. Container paths are absolute paths inside
//! the pod's root; cgroup paths are relative to the pod's own cgroup on the host, which the
//! launcher learns from `/proc/self/cgroup` when it runs.

use serde::{Deserialize, Serialize};

use crate::manifest::{CgroupVersion, Egress, ItemKind, Network, Protocol};
use crate::systemd::escape;

/// `key = value` and a line break; `key` is a bare TOML key.
fn line(out: &mut String, key: &str, value: impl toml_writer::WriteTomlValue) {
    use toml_writer::TomlWrite;
    out.push_str(key);
    out.push_str(" = ");
    out.value(value).expect("writing to a String cannot fail");
    out.push('\n');
}

/// A cgroup v1 controller whose files the pod's systemd writes (its limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    /// Its name, as the kernel and `/proc/self/cgroup` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    /// The files of an app's cgroup that systemd in the pod writes for its limits (from the
    /// limits table).
    pub fn knobs(self) -> Vec<&'static str> {
        crate::systemd::resources::knobs(self.name())
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    /// The published ports, in the order of the host socket unit's listeners (and so of the
    /// file descriptors the pod is handed). Without a socket handed over by systemd, the
    /// launcher binds these itself.
    #[serde(rename = "listen", default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<Listen>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

fn host_network() -> Network {
    Network::Host
}

fn is_host_network(n: &Network) -> bool {
    *n == Network::Host
}

fn no_egress() -> Egress {
    Egress::None
}

fn is_no_egress(e: &Egress) -> bool {
    *e == Egress::None
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
    },
    /// Bind a host path into the pod's root before nspawn starts.
    BindHost {
        source: String,
        target: String,
        read_only: bool,
    },
    /// Bind a volume's directory (empty, persistent or memory) into the pod's root before
    /// nspawn starts.
    BindVolume {
        volume: String,
        target: String,
        read_only: bool,
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
    /// `source` (none: a config item's text, in the tree's `rootfs/etc/podc/config/<name>`).
    /// The launcher refuses to start the pod when it cannot read it.
    Credential {
        kind: ItemKind,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
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
    /// The plan as TOML, byte for byte what `toml::to_string` makes of it (tests/mountplan.rs
    /// holds the two together), laid out here because the serializer cost as much as the rest
    /// of rendering a pod. Strings are encoded by `toml_writer`, as the serializer does.
    pub fn to_toml(&self) -> String {
        let mut out = String::with_capacity(128 + self.steps.len() * 128);
        line(&mut out, "format", self.format);
        line(&mut out, "pod", self.pod.as_str());
        line(&mut out, "cgroup", self.cgroup.to_string().as_str());
        line(&mut out, "apps", &self.apps);
        if self.network != Network::Host {
            line(&mut out, "network", self.network.name());
        }
        if self.egress != Egress::None {
            line(&mut out, "egress", self.egress.name());
        }
        if !self.networks.is_empty() {
            line(&mut out, "networks", &self.networks);
        }
        for l in &self.listen {
            out.push_str("\n[[listen]]\n");
            line(&mut out, "protocol", l.protocol.name());
            line(&mut out, "address", l.address.as_str());
        }
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
                } => {
                    line(&mut out, "volume", volume);
                    line(&mut out, "mode", mode);
                    line(&mut out, "uid", *uid);
                    line(&mut out, "gid", *gid);
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
                Step::BindHost {
                    source,
                    target,
                    read_only,
                } => {
                    line(&mut out, "source", source);
                    line(&mut out, "target", target);
                    line(&mut out, "readOnly", *read_only);
                }
                Step::BindVolume {
                    volume,
                    target,
                    read_only,
                } => {
                    line(&mut out, "volume", volume);
                    line(&mut out, "target", target);
                    line(&mut out, "readOnly", *read_only);
                }
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

    /// Checks a plan read back from disk by the rules `resolve` and `lower` made it with: a tree
    /// can be edited after review, and the launcher runs it as root. The error names the step.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not one this podc reads (it reads {FORMAT})",
                self.format
            ));
        }
        if !escape::is_name(&self.pod) || self.pod.len() > crate::tree::layout::MAX_POD_NAME {
            return Err(format!("pod {:?} is not a pod name", self.pod));
        }
        if let Some(a) = self.apps.iter().find(|a| !escape::is_name(a)) {
            return Err(format!("app {a:?} is not an app name"));
        }
        for (i, l) in self.listen.iter().enumerate() {
            if l.parse().is_none() {
                return Err(format!(
                    "listen {}: address {:?} is not a port, address:port or [address]:port",
                    i + 1,
                    l.address
                ));
            }
        }
        let mut volumes = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            step.validate(&self.apps, &volumes)
                .map_err(|e| format!("step {} ({}): {e}", i + 1, step.kind()))?;
            if let Some(volume) = step.made_volume() {
                volumes.push(volume);
            }
        }
        Ok(())
    }
}

impl Step {
    /// The step's `do`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::MakeVolume { .. } => "make-volume",
            Step::PersistentVolume { .. } => "persistent-volume",
            Step::MemoryVolume { .. } => "memory-volume",
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
            | Step::MemoryVolume { volume, .. } => Some(volume),
            _ => None,
        }
    }

    fn validate(&self, apps: &[String], volumes: &[&str]) -> Result<(), String> {
        let container_path = |what: &str, p: &str| {
            if escape::is_normal_abs_path(p) && p != "/" {
                Ok(())
            } else {
                Err(format!(
                    "{what} {p:?} is not an absolute path in normal form below /"
                ))
            }
        };
        let app_cgroup = |p: &str| app_cgroup(apps, p);
        match self {
            Step::MakeVolume { volume, mode, .. }
            | Step::PersistentVolume { volume, mode, .. }
            | Step::MemoryVolume { volume, mode, .. } => {
                if !escape::is_name(volume) {
                    return Err(format!("volume {volume:?} is not a volume name"));
                }
                if volumes.contains(&volume.as_str()) {
                    return Err(format!(
                        "volume {volume:?} is made by an earlier step already"
                    ));
                }
                let octal = (3..=4).contains(&mode.len())
                    && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
                if !octal {
                    return Err(format!("mode {mode:?} is not 3 or 4 octal digits"));
                }
                if let Step::MemoryVolume { size, .. } = self {
                    // A tmpfs of size 0 has no limit at all.
                    if *size == 0 || *size > i64::MAX as u64 {
                        return Err(format!("size {size} is not 1 to {} bytes", i64::MAX));
                    }
                }
            }
            Step::Overlay {
                app,
                source,
                target,
            } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
                if !escape::is_normal_abs_path(source) || !escape::overlay_safe(source) {
                    return Err(format!(
                        "source {source:?} is not an absolute path in normal form without `,`, `:` or `\\`"
                    ));
                }
                let want = crate::tree::layout::app_root(app);
                if *target != want {
                    return Err(format!("target {target:?} is not {want:?}"));
                }
            }
            Step::Image {
                app,
                reference,
                target,
                given,
                environment,
                exec,
                args,
                ..
            } => {
                image_step(apps, app, reference, target, given, environment)?;
                image_command(given, exec, args)?;
            }
            Step::BindHost { source, target, .. } => {
                if !escape::is_normal_abs_path(source) {
                    return Err(format!(
                        "source {source:?} is not an absolute path in normal form"
                    ));
                }
                container_path("target", target)?;
            }
            Step::BindVolume { volume, target, .. } => {
                if !volumes.contains(&volume.as_str()) {
                    return Err(format!("volume {volume:?} is not made by an earlier step"));
                }
                container_path("target", target)?;
            }
            Step::Names { app, users, groups } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
                if let Some(n) = users
                    .iter()
                    .chain(groups)
                    .find(|n| !escape::is_user_name(n))
                {
                    return Err(format!("{n:?} is not a user or group name"));
                }
            }
            Step::Tmpfs { target } => container_path("target", target)?,
            Step::BindPodc => {}
            Step::WritableCgroup { app } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
            }
            Step::CgroupDir { path, .. } => {
                if !app_cgroup(path) {
                    return Err(format!(
                        "path {path:?} is not system.slice/<app>.service of an app of the pod"
                    ));
                }
            }
            Step::CgroupBind {
                controller,
                path,
                target,
                read_only,
            } => cgroup_bind_step(apps, *controller, path, target, *read_only)?,
            Step::Credential { .. } | Step::Env { .. } | Step::EnvAll { .. } => {
                item_step(apps, self)?
            }
        }
        Ok(())
    }
}

/// The TOML lines of a `credential`, `env` or `env-all` step (after its `do`).
fn item_toml(out: &mut String, step: &Step) {
    match step {
        Step::Credential {
            kind,
            name,
            source,
            apps,
        } => {
            line(out, "kind", kind.name());
            line(out, "name", name);
            if let Some(source) = source {
                line(out, "source", source);
            }
            line(out, "apps", apps);
        }
        Step::Env {
            app,
            variable,
            kind,
            name,
            source,
            key,
        } => {
            line(out, "app", app);
            line(out, "variable", variable);
            line(out, "kind", kind.name());
            line(out, "name", name);
            if let Some(source) = source {
                line(out, "source", source);
            }
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

/// A `credential` step (an item some of the pod's apps take as a file), an `env` step (a
/// variable of one of its apps from an item) or an `env-all` step (every key of an item as
/// variables of one of its apps).
fn item_step(apps: &[String], step: &Step) -> Result<(), String> {
    match step {
        Step::Credential {
            kind,
            name,
            source,
            apps: takers,
        } => {
            item_source(*kind, name, source.as_deref())?;
            if takers.is_empty() {
                return Err("apps lists no app".into());
            }
            if let Some(a) = takers.iter().find(|a| !apps.contains(a)) {
                return Err(format!("app {a:?} is not an app of the pod"));
            }
        }
        Step::Env {
            app,
            variable,
            kind,
            name,
            source,
            key,
        } => {
            if !apps.contains(app) {
                return Err(format!("app {app:?} is not an app of the pod"));
            }
            if !escape::is_env_name(variable) {
                return Err(format!("variable {variable:?} is not a variable name"));
            }
            item_source(*kind, name, source.as_deref())?;
            if let Some(k) = key.as_ref().filter(|k| !escape::is_env_name(k)) {
                return Err(format!("key {k:?} is not a variable name"));
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
            if !apps.contains(app) {
                return Err(format!("app {app:?} is not an app of the pod"));
            }
            if source.is_some() && dir.is_some() {
                return Err("it has both a source and a dir".into());
            }
            if let Some(d) = dir.as_ref().filter(|d| !escape::is_normal_abs_path(d)) {
                return Err(format!("dir {d:?} is not an absolute path in normal form"));
            }
            item_source(*kind, name, source.as_deref().or(dir.as_deref()))?;
            if !prefix.is_empty() && !escape::is_env_name(prefix) {
                return Err(format!("prefix {prefix:?} cannot start a variable name"));
            }
            if let Some(g) = given.iter().find(|g| !escape::is_env_name(g)) {
                return Err(format!("given {g:?} is not a variable name"));
            }
        }
        _ => unreachable!("only credential and env steps"),
    }
    Ok(())
}

/// A config item or secret's name and source: a secret is always a host file, named by an
/// absolute path in normal form; a config item without one is text in the tree.
fn item_source(kind: ItemKind, name: &str, source: Option<&str>) -> Result<(), String> {
    if !escape::is_name(name) {
        return Err(format!("{kind} {name:?} is not a name"));
    }
    match source {
        None if kind == ItemKind::Secret => Err(format!(
            "secret {name:?} has no source: a secret is never in the tree"
        )),
        Some(s) if !escape::is_normal_abs_path(s) || s == "/" => Err(format!(
            "source {s:?} is not an absolute path in normal form"
        )),
        _ => Ok(()),
    }
}

/// An `image` step: an app's image by reference at the app's root, with the manifest's
/// settings named as given.
fn image_step(
    apps: &[String],
    app: &String,
    reference: &str,
    target: &String,
    given: &[String],
    environment: &[String],
) -> Result<(), String> {
    if !apps.contains(app) {
        return Err(format!("app {app:?} is not an app of the pod"));
    }
    crate::manifest::reference::Reference::parse(reference)
        .map_err(|e| format!("reference {reference:?}: {e}"))?;
    let want = crate::tree::layout::app_root(app);
    if *target != want {
        return Err(format!("target {target:?} is not {want:?}"));
    }
    if let Some(g) = given.iter().find(|g| !GIVEN.contains(&g.as_str())) {
        return Err(format!("given {g:?} is not one of {}", GIVEN.join(", ")));
    }
    if let Some(n) = environment.iter().find(|n| !escape::is_env_name(n)) {
        return Err(format!("environment {n:?} is not a variable name"));
    }
    Ok(())
}

/// An `image` step's command: at most one of `exec` given (in the unit), `exec` (its
/// program a bare name) and `args`.
fn image_command(given: &[String], exec: &[String], args: &[String]) -> Result<(), String> {
    let in_unit = given.iter().any(|g| g == "exec");
    if [in_unit, !exec.is_empty(), !args.is_empty()]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err("more than one of exec given, exec and args".into());
    }
    if let Some(program) = exec.first() {
        if program.is_empty() || program == "." || program == ".." || program.contains('/') {
            return Err(format!(
                "exec program {program:?} is not a bare name to look up in the image's PATH"
            ));
        }
    }
    Ok(())
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
    for (key, list) in [("exec", exec), ("args", args)] {
        if !list.is_empty() {
            line(out, key, list);
        }
    }
}

/// Whether `p` is `system.slice/<app>.service` for an app of the pod.
fn app_cgroup(apps: &[String], p: &str) -> bool {
    p.strip_prefix("system.slice/")
        .and_then(|r| r.strip_suffix(".service"))
        .is_some_and(|a| apps.iter().any(|x| x == a))
}

/// A `cgroup-bind` step: a file or directory of the pod's v1 hierarchy at its place, writable
/// only where systemd inside must write (cgroup.procs, an app's own limit files).
fn cgroup_bind_step(
    apps: &[String],
    controller: Controller,
    path: &String,
    target: &String,
    read_only: bool,
) -> Result<(), String> {
    let app_cgroup = |p: &str| app_cgroup(apps, p);
    let knobs = controller.knobs();
    if !escape::is_normal_rel_path(path) {
        return Err(format!(
            "path {path:?} is not a relative path in normal form"
        ));
    }
    let want = if path.is_empty() {
        format!("/sys/fs/cgroup/{controller}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{path}")
    };
    if *target != want {
        return Err(format!("target {target:?} is not {want:?}"));
    }
    // Writable: cgroup.procs of the pod or an app, and an app's own knobs.
    if !read_only {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let allowed = (file == "cgroup.procs" && (dir.is_empty() || app_cgroup(dir)))
            || (app_cgroup(dir) && knobs.contains(&file));
        if !allowed {
            return Err(format!(
                    "path {path:?} may not be bound writable (only cgroup.procs and an app's own limit files may)"
                ));
        }
    }
    Ok(())
}
