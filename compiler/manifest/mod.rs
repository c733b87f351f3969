//! The manifest as written: a plain mirror of the YAML or TOML document.
//!
//! These types decide nothing. Every field the document may hold is here, optional where the
//! document may leave it out, so that serde rejects unknown keys and wrong types and
//! [`crate::resolve`] can check every rule of the format with the document path in hand.
//! The JSON Schema in `schemas/pod.schema.json` is generated from these types.

pub mod config;
pub mod expand;
pub mod kube_names;
pub mod linux;
pub mod quantity;
pub mod reference;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

pub use config::{ConfigItem, EnvFrom, EnvFromItem, EnvValue, HostResource, ItemKind, SecretItem};
pub use expand::Word;
pub use quantity::Quantity;

/// A podc pod manifest (format 1).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "podc pod manifest")]
pub struct Manifest {
    /// Format version; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub podc: u64,
    /// Pod name: lowercase letters, digits and single dashes, 1 to 59 characters (the pod runs
    /// as machine `podc-<name>`, and machine names hold at most 64).
    #[schemars(
        regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"),
        length(min = 1, max = 59)
    )]
    pub name: String,
    /// What the generated units are for; `podc build --cgroup/--systemd` override it.
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// Pod-level limits, applied by the host wrapper unit to the whole container.
    #[serde(default)]
    pub isolators: Option<PodIsolators>,
    /// Volumes apps can mount.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Named configuration apps take as files (`mounts`) or environment variables.
    #[serde(default)]
    pub config: Vec<ConfigItem>,
    /// Named secrets, each a file or a directory of the host read at launch, which apps take
    /// as files (`mounts`) or environment variables; never written into the tree.
    #[serde(default)]
    pub secrets: Vec<SecretItem>,
    /// The apps of the pod, each run as its own service inside the container.
    #[schemars(length(min = 1))]
    pub apps: Vec<App>,
    /// Free-form notes copied into comments of the generated units.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Kubernetes labels: kept, shown in POD.md and written back by `podc kube`; they change
    /// nothing on the host. Keys and values follow Kubernetes' rules.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Kubernetes namespace the pod was written for: kept, shown in POD.md and written
    /// back by `podc kube`; it changes nothing on the host.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub namespace: Option<String>,
    /// The pod's network: `host` (default: the host's network, as before networking was
    /// configurable) or `private` (its own network namespace with loopback only; published
    /// ports reach it from the host).
    pub network: Option<Network>,
    /// A private pod's way out: `none` (default: loopback only) or `nat` (a veth on the host's
    /// `podc0` bridge, an address from the host's pod range, a default route, and the host's
    /// address on the way out; `/etc/resolv.conf` names the host's DNS servers). Only with
    /// `network: private`.
    pub egress: Option<Egress>,
    /// Networks of the host a private pod joins, each a bridge `podc-<name>` shared by the
    /// pods that name it: they reach one another there by pod name (`/etc/hosts`, kept up to
    /// date by podc launch), and nothing else. Names: 1 to 10 lowercase letters, digits and
    /// inner dashes. Only with `network: private`.
    #[serde(default)]
    pub networks: Vec<NetworkName>,
    /// Ports of the host itself a private pod may connect to, on the host's address on the
    /// pod's bridge (`host.podc.internal` in the pod's `/etc/hosts`): each `port` (1..65535)
    /// and `protocol` (`tcp`, default, or `udp`). Every other service of the host stays out of
    /// the pod's reach. Only with `egress: nat` or `networks`.
    #[serde(default)]
    pub allow_host: Vec<HostPort>,
    /// When the pod starts: `boot` (default: when the host unit is enabled) or `connection`
    /// (on the first connection to a published port: the host socket unit starts it).
    pub start: Option<Start>,
    /// Whose ids the pod's processes have: `private` (default: a user namespace of the pod's
    /// own: its uid 0 is an unprivileged id of the host, from a range of 65,536 podc gives the
    /// pod and keeps for it) or `host` (the host's ids: root in the pod is root on the host;
    /// warned).
    pub user_namespace: Option<UserNamespace>,
}

/// Whose ids a pod runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserNamespace {
    /// A user namespace of the pod's own, mapped to a range of host ids.
    Private,
    /// The host's user namespace.
    Host,
}

impl UserNamespace {
    pub fn name(self) -> &'static str {
        match self {
            UserNamespace::Private => "private",
            UserNamespace::Host => "host",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// A network namespace of the pod's own, with loopback only.
    Private,
}

/// The name of a network pods share (its bridge is `podc-<name>`, an interface name of at
/// most 15 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct NetworkName(
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$"))] pub String,
);

/// A port of the host a private pod may connect to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    /// The port the host's service listens on (1..65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: u64,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<Protocol>,
}

/// A private pod's way out of its network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Loopback only: no route out.
    None,
    /// Out through the host, which masquerades the pod's address as its own.
    Nat,
}

impl Egress {
    pub fn name(self) -> &'static str {
        match self {
            Egress::None => "none",
            Egress::Nat => "nat",
        }
    }
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::Host => "host",
            Network::Private => "private",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// With the host (the host unit is wanted by machines.target).
    Boot,
    /// On the first connection to one of the pod's published ports.
    Connection,
}

/// A port an app serves, published on the host by the pod's host socket unit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Port {
    /// A name for the port (as a Kubernetes containerPort name: up to 15 lowercase letters,
    /// digits and dashes, with a letter), unique in the pod.
    pub name: Option<String>,
    /// The port the app serves on inside the pod (1..65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: u64,
    /// The port published on the host (1..65535). Default: `port`.
    #[schemars(range(min = 1, max = 65535))]
    pub host_port: Option<u64>,
    /// The host address to publish on, an IPv4 or IPv6 address. Default: every address.
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<Protocol>,
    /// `proxy` (default): the app listens on `port` itself and systemd-socket-proxyd in the
    /// pod forwards each connection to it (tcp, private network). `socket`: the app is handed
    /// the listening socket (socket activation, `sd_listen_fds`).
    pub activation: Option<Activation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Proxy,
    Socket,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSpec {
    /// The cgroup hierarchy of the host: v1 (legacy/hybrid) or v2 (unified). Default v2.
    #[serde(default)]
    pub cgroup: Option<CgroupVersion>,
    /// The systemd version inside the pod and on the host. Default 252.
    #[serde(default)]
    #[schemars(range(min = 230))]
    pub systemd: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// Pod-level resource limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodIsolators {
    /// CPU quota in cores (Kubernetes quantity: "2", "500m", 1.5).
    pub cpu: Option<Quantity>,
    /// Relative CPU weight as cgroup v1 shares (2..262144). Not with cpuWeight.
    #[schemars(range(min = 2, max = 262144))]
    pub cpu_shares: Option<u64>,
    /// Relative CPU weight as cgroup v2 weight (1..10000). Not with cpuShares.
    #[schemars(range(min = 1, max = 10000))]
    pub cpu_weight: Option<u64>,
    /// Hard memory limit in bytes (Kubernetes quantity: "1Gi", "512M").
    pub memory: Option<Quantity>,
    /// Maximum number of tasks (processes and threads).
    #[schemars(range(min = 1))]
    pub tasks: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    /// Volume name (same rule as pod names), unique in the pod.
    #[schemars(
        regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    pub kind: VolumeKind,
    /// Host path (kind host only, absolute).
    pub source: Option<String>,
    /// What the host path of a host volume is, checked (or made) at each launch as Kubernetes'
    /// hostPath `type`: `directory` (default: a directory that exists), `directory-or-create`,
    /// `file`, `file-or-create`, `socket`, or `any` (Kubernetes' unset type: whatever is
    /// there, a directory made where nothing is).
    #[serde(rename = "type")]
    pub host_type: Option<HostType>,
    /// Read-only for every app that mounts it. Default false.
    pub read_only: Option<bool>,
    /// Permissions of an empty, persistent, memory or projected volume, an octal string such as
    /// "0750". Default "0755". A persistent volume gets them when it is made, at its first
    /// launch; a projected volume's files get them without the execute bits.
    #[schemars(regex(pattern = r"^0?[0-7]{3,4}$"))]
    pub mode: Option<String>,
    /// Owner of an empty, persistent, memory or projected volume (and its files). Default 0.
    pub uid: Option<u32>,
    /// Group of an empty, persistent, memory or projected volume (and its files). Default 0.
    pub gid: Option<u32>,
    /// The size of a memory volume (kind memory only, required there): a byte quantity such
    /// as "64Mi", the tmpfs's size limit.
    pub size: Option<Quantity>,
    /// What a projected volume holds (kind projected only, required there): the regular files
    /// of these `dir` config items and secrets, copied by `podc launch` at every start, a
    /// later source's file winning over an earlier one of the same name.
    pub sources: Option<Vec<ProjectedSource>>,
    /// The OCI image whose root filesystem an image volume is (kind image only, required
    /// there): a reference as an app's `image` takes it, resolved by `podc launch` from the
    /// host's image store (a short name is Docker Hub's, with a warning).
    pub image: Option<String>,
}

/// A source of a projected volume: every file of a `dir` config item or secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectedSource {
    /// A `dir` config item of the pod. Not with `secret`.
    pub config: Option<String>,
    /// A `dir` secret of the pod. Not with `config`.
    pub secret: Option<String>,
    /// A directory that is missing at launch gives no files (else it stops the launch).
    /// Default false.
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// A directory of the host.
    Host,
    /// A fresh empty directory for each run of the pod.
    Empty,
    /// A directory of the pod's own on the host (/var/lib/podc/volumes/<pod>/<name>), made at
    /// its first launch and kept across restarts, reinstalls and reboots until `podc uninstall
    /// --delete-data`.
    Persistent,
    /// A fresh tmpfs of `size` bytes for each run of the pod; its pages count against the
    /// memory of the app that writes them.
    Memory,
    /// A fresh read-only directory for each run of the pod, on the launcher's tmpfs, holding
    /// the files of `sources` (Kubernetes' projected volume of whole ConfigMaps and Secrets):
    /// each file with the volume's `mode` without its execute bits (default "0755": files
    /// 0644), owned by `uid` and `gid`.
    Projected,
    /// The root filesystem of the OCI image `image` from the host's image store (Kubernetes'
    /// image volume): read-only, and no program runs from it (noexec).
    Image,
}

/// What a host volume's path is, as Kubernetes' hostPath `type` says (`any` is its unset
/// type); checked, or made, by `podc launch` before the pod starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostType {
    /// A directory that exists.
    #[default]
    Directory,
    /// A directory, made (mode 0755, with its parents) where it is missing.
    DirectoryOrCreate,
    /// A regular file that exists, bound as a file.
    File,
    /// A regular file, made empty (mode 0644) where it is missing; its directory must exist.
    FileOrCreate,
    /// A UNIX socket that exists.
    Socket,
    /// Whatever is there, bound as it is (a directory, a file, a socket); where nothing is, a
    /// directory is made (mode 0755), as the container runtimes do for a hostPath without a
    /// type. A device is refused.
    Any,
}

impl HostType {
    /// Its word in a manifest and a plan (`file-or-create`).
    pub fn name(self) -> &'static str {
        match self {
            HostType::Directory => "directory",
            HostType::DirectoryOrCreate => "directory-or-create",
            HostType::File => "file",
            HostType::FileOrCreate => "file-or-create",
            HostType::Socket => "socket",
            HostType::Any => "any",
        }
    }

    /// Kubernetes' name (`FileOrCreate`; `None` for `any`, Kubernetes' unset type).
    pub fn kube_name(self) -> Option<&'static str> {
        match self {
            HostType::Directory => Some("Directory"),
            HostType::DirectoryOrCreate => Some("DirectoryOrCreate"),
            HostType::File => Some("File"),
            HostType::FileOrCreate => Some("FileOrCreate"),
            HostType::Socket => Some("Socket"),
            HostType::Any => None,
        }
    }

    /// Whether the path is a file (or socket), never a directory.
    pub fn is_file(self) -> bool {
        matches!(
            self,
            HostType::File | HostType::FileOrCreate | HostType::Socket
        )
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct App {
    /// App name (same rule as pod names), unique in the pod; the unit is `<name>.service`.
    #[schemars(
        regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// The app's root filesystem: an absolute path on the target host, or an OCI image
    /// reference (`registry.example/name:tag`, best pinned with `@sha256:<digest>`), resolved
    /// by `podc launch` from the host's image store. A short name without a registry is
    /// Docker Hub's, as Docker and Kubernetes read it (`nginx` is
    /// `docker.io/library/nginx:latest`), with a warning.
    pub image: String,
    /// The whole command line, replacing the image's Entrypoint and Cmd. exec[0] is an
    /// absolute path inside the image or, for an image by reference, a bare name looked up in
    /// the image's PATH at launch. Required for an image given by path; for an image by
    /// reference the image's Entrypoint and Cmd are the default. A word is passed as written,
    /// or written `{expand: TEXT}` with `$(NAME)` references to the app's variables.
    #[schemars(length(min = 1))]
    pub exec: Option<Vec<Word>>,
    /// Arguments that replace the image's Cmd after its Entrypoint (Kubernetes' `args`
    /// without `command`); only for an image by reference, and not with `exec`. Words as in
    /// `exec`.
    #[schemars(length(min = 1))]
    pub args: Option<Vec<Word>>,
    /// User to run as: a uid or a user name. Default 0 (for an image by reference, when
    /// neither user nor group is given: the image's User).
    pub user: Option<IdOrName>,
    /// Group to run as: a gid or a group name. Default 0.
    pub group: Option<IdOrName>,
    /// Additional groups.
    pub supplementary_groups: Option<Vec<IdOrName>>,
    /// Absolute working directory inside the image. Default / (for an image by reference: the
    /// image's WorkingDir, else /).
    pub working_directory: Option<String>,
    /// Environment variables: a string, or `{config: NAME}` / `{secret: NAME}` with an optional
    /// `key`, read at launch.
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    /// Every key of config items and secrets as variables, read at launch (Kubernetes'
    /// `envFrom`): `{config: NAME}` or `{secret: NAME}` with an optional `prefix`. A variable
    /// of `environment` wins; a later entry wins over an earlier one.
    #[serde(default)]
    pub environment_from: Vec<EnvFromItem>,
    /// Per-app resource limits and security settings.
    #[serde(default)]
    pub isolators: Option<AppIsolators>,
    /// Volumes mounted into the app.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Mount the app's root filesystem read-only. Default false.
    pub read_only_rootfs: Option<bool>,
    /// Apps of this pod that must be started first (an init app: that must have completed).
    #[serde(default)]
    pub after: Vec<String>,
    /// An init app: it runs to completion before any app that names it in `after` starts,
    /// and those start only if it exited 0 (else they never start and the pod fails). Its
    /// `restart` is `no` or `on-failure` (retried until it succeeds; systemd 254 or newer); it
    /// has no `health` and no `ports`. Default false.
    pub init: Option<bool>,
    /// Restart policy. Default "no".
    pub restart: Option<Restart>,
    /// Ports the app serves, published on the host.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// How podc tells that the app works: the app counts as started once its probe first
    /// passes, and is restarted after `failures` failed probes in a row.
    pub health: Option<Health>,
    /// Commands run in the app's root, as its user and with its environment, right after it
    /// started (`postStart`) and before it is stopped (`preStop`), as Kubernetes' lifecycle
    /// hooks.
    pub hooks: Option<Hooks>,
}

/// An app's lifecycle hooks, each a command like `exec` (exec[0] an absolute path in the
/// image).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hooks {
    /// Run once the app's process has started, beside it (`ExecStartPost=`). The app counts as
    /// started when the command exits 0; any other end fails the start (the app is stopped,
    /// and its `restart` policy applies).
    #[schemars(length(min = 1))]
    pub post_start: Option<Vec<String>>,
    /// Run when the app is stopped, before it is sent SIGTERM (`ExecStop=`); its exit status is
    /// ignored, and it has the pod's stop timeout (10s). systemd runs it too after the app
    /// exited 0 by itself.
    #[schemars(length(min = 1))]
    pub pre_stop: Option<Vec<String>>,
}

/// A health probe: exactly one of `exec`, `http`, `tcp` and `grpc`, and how often it runs.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Health {
    /// A command run in the app's root filesystem as the app's user (exec[0] an absolute path
    /// in the image, or a name looked up on PATH there); exit status 0 is healthy.
    #[schemars(length(min = 1))]
    pub exec: Option<Vec<String>>,
    /// An HTTP GET (or HTTPS, with `scheme: https`) in the pod's network; an answer with a 2xx
    /// or 3xx status is healthy.
    pub http: Option<HttpProbe>,
    /// A TCP connection in the pod's network; accepted is healthy.
    pub tcp: Option<TcpProbe>,
    /// A call of the gRPC Health Checking Protocol (`grpc.health.v1.Health/Check`, plaintext
    /// HTTP/2) in the pod's network; the answer SERVING is healthy.
    pub grpc: Option<GrpcProbe>,
    /// Time between probes: a number with a unit (ms, s, m, h), e.g. "10s". Default "10s".
    pub interval: Option<String>,
    /// Time one probe may take before it counts as failed. Default "1s".
    pub timeout: Option<String>,
    /// Failed probes in a row after which a running app is restarted. Default 3.
    #[schemars(range(min = 1, max = 1000))]
    pub failures: Option<u32>,
    /// How long a starting app has to pass its first probe; until it does, it is not started
    /// (apps `after` it wait) and after that its start fails. Default "60s".
    pub start_period: Option<String>,
}

/// An HTTP probe.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    /// The port the app serves HTTP on.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// The path asked for. Default "/".
    pub path: Option<String>,
    /// The address connected to (an IP address). Default 127.0.0.1.
    pub host: Option<String>,
    /// Headers sent with the request, name to value (`Host: example.com`). A `Host`,
    /// `User-Agent` or `Connection` header replaces podc's own line of that name.
    #[serde(default)]
    #[schemars(schema_with = "header_map")]
    pub headers: BTreeMap<String, String>,
    /// `http` (default) or `https`: GET over TLS, as Kubernetes' `scheme: HTTPS`, which accepts
    /// any certificate (it is not verified) and follows redirects to the same host.
    pub scheme: Option<HttpScheme>,
}

/// How an HTTP probe connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpScheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTP over TLS; the server's certificate is not verified.
    Https,
}

/// The schema of `headers`: names are tokens of RFC 7230, values strings.
fn header_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
        "additionalProperties": { "type": "string" }
    })
}

/// A TCP probe.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpProbe {
    /// The port connected to.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// The address connected to (an IP address). Default 127.0.0.1.
    pub host: Option<String>,
}

/// A gRPC health probe, as Kubernetes' `grpc` probe: one `Check` call without TLS.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcProbe {
    /// The port the app serves gRPC on.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// The service whose health is asked for (`HealthCheckRequest.service`). Default "": the
    /// server as a whole.
    #[schemars(length(max = 1024))]
    pub service: Option<String>,
    /// The address connected to (an IP address). Default 127.0.0.1.
    pub host: Option<String>,
}

/// Per-app isolators.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppIsolators {
    /// CPU quota in cores (Kubernetes quantity).
    pub cpu: Option<Quantity>,
    /// Relative CPU weight as cgroup v1 shares (2..262144). Not with cpuWeight.
    #[schemars(range(min = 2, max = 262144))]
    pub cpu_shares: Option<u64>,
    /// Relative CPU weight as cgroup v2 weight (1..10000). Not with cpuShares.
    #[schemars(range(min = 1, max = 10000))]
    pub cpu_weight: Option<u64>,
    /// Hard memory limit in bytes (Kubernetes quantity).
    pub memory: Option<Quantity>,
    /// CPU the app is guaranteed under contention, as a Kubernetes request (quantity, e.g.
    /// "250m"): the relative CPU weight Kubernetes derives from it (cgroup v1 shares =
    /// millicores × 1024 / 1000, at least 2; on cgroup v2 the weight the kubelet converts those
    /// shares to). Not with cpuShares or cpuWeight; at most cpu.
    pub cpu_request: Option<Quantity>,
    /// Memory protected from reclaim, as a Kubernetes request (quantity, e.g. "64Mi"):
    /// `MemoryLow=`. cgroup v2 only; at most memory.
    pub memory_request: Option<Quantity>,
    /// Maximum number of tasks.
    #[schemars(range(min = 1))]
    pub tasks: Option<u64>,
    /// OOM killer adjustment, -1000..1000.
    #[schemars(range(min = -1000, max = 1000))]
    pub oom_score_adj: Option<i64>,
    /// Forbid gaining privileges through execve (setuid binaries, file capabilities).
    pub no_new_privileges: Option<bool>,
    /// The capability bounding set.
    pub capabilities: Option<NameSet>,
    /// The system call filter.
    pub seccomp: Option<Seccomp>,
    /// System calls the kernel logs (SystemCallLog=, systemd 247): `retain` logs only the
    /// listed calls, `remove` every call but them (`retain: ["@known"]` logs every call).
    pub syscall_log: Option<NameSet>,
    /// The system call ABIs the app may use (SystemCallArchitectures=), `x86-64` among them: a
    /// call of another ABI kills the process. Without it, every ABI of the host.
    pub syscall_architectures: Option<Vec<SyscallArch>>,
    /// Parts of podc's default sandbox this app does without (see the README).
    #[serde(default)]
    pub relax: Vec<Relax>,
    /// `read-only` (default): the pod's cgroups, read-only. `read-write`: the app's own cgroup
    /// at /sys/fs/cgroup, writable, in a cgroup namespace of its own, so that it can make
    /// sub-cgroups but not change its own limits (Kubernetes' `cgroupOptions.mountMode:
    /// ReadWrite`); cgroup v2 and systemd 257 only.
    pub cgroup_mount: Option<CgroupMount>,
}

/// How an app sees /sys/fs/cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupMount {
    /// The pod's cgroups, read-only (ProtectControlGroups=yes).
    #[default]
    ReadOnly,
    /// The app's own cgroup, writable and delegated to it (ProtectControlGroups=private,
    /// Delegate=yes).
    ReadWrite,
}

/// A part of the default sandbox every app gets, which an app may explicitly do without.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Relax {
    /// A private /tmp and /var/tmp (PrivateTmp=yes).
    Tmp,
    /// A private /dev with only the pseudo devices (PrivateDevices=yes).
    Devices,
    /// Read-only /proc/sys, /sys and friends (ProtectKernelTunables=yes).
    KernelTunables,
    /// No loading of kernel modules (ProtectKernelModules=yes).
    KernelModules,
    /// No kernel log access (ProtectKernelLogs=yes).
    KernelLogs,
    /// Read-only cgroup file systems (ProtectControlGroups=yes).
    ControlGroups,
    /// No setting of the clock (ProtectClock=yes).
    Clock,
    /// No setting of the host name (ProtectHostname=yes).
    Hostname,
    /// Other users' processes hidden in /proc (ProtectProc=invisible).
    Proc,
    /// /proc/kcore, /proc/keys and other sensitive entries inaccessible (InaccessiblePaths=).
    ProcMasks,
    /// No new namespaces (RestrictNamespaces=yes).
    Namespaces,
    /// No realtime scheduling (RestrictRealtime=yes).
    Realtime,
    /// No changing of the execution domain (LockPersonality=yes).
    Personality,
}

impl Relax {
    /// The part's word in a manifest (`kernel-tunables`), as serde reads and writes it.
    pub fn name(self) -> &'static str {
        match self {
            Relax::Tmp => "tmp",
            Relax::Devices => "devices",
            Relax::KernelTunables => "kernel-tunables",
            Relax::KernelModules => "kernel-modules",
            Relax::KernelLogs => "kernel-logs",
            Relax::ControlGroups => "control-groups",
            Relax::Clock => "clock",
            Relax::Hostname => "hostname",
            Relax::Proc => "proc",
            Relax::ProcMasks => "proc-masks",
            Relax::Namespaces => "namespaces",
            Relax::Realtime => "realtime",
            Relax::Personality => "personality",
        }
    }
}

/// Exactly one of `retain` (an allow list) or `remove` (a deny list).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NameSet {
    pub retain: Option<Vec<String>>,
    pub remove: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Seccomp {
    /// System calls or @groups to allow; everything else is denied (but systemd's `@default`
    /// group, unless `exact`).
    pub retain: Option<Vec<String>>,
    /// System calls or @groups to deny.
    pub remove: Option<Vec<String>>,
    /// The errno a denied call returns (e.g. EPERM) instead of killing the process.
    #[schemars(regex(pattern = r"^E[A-Z0-9]+$"))]
    pub errno: Option<String>,
    /// With `retain`: allow exactly the listed calls (an empty list allows none). Otherwise
    /// systemd also allows its `@default` group (execve, exit, clock and sleep calls, ...) with
    /// every allow list.
    pub exact: Option<bool>,
}

/// A system call ABI of the x86-64 target, as systemd names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
pub enum SyscallArch {
    /// The native ABI.
    #[serde(rename = "x86-64")]
    X86_64,
    /// The i386 ABI.
    #[serde(rename = "x86")]
    X86,
    /// The x32 ABI.
    #[serde(rename = "x32")]
    X32,
}

impl SyscallArch {
    /// The word of the manifest and of `SystemCallArchitectures=`.
    pub fn name(self) -> &'static str {
        match self {
            SyscallArch::X86_64 => "x86-64",
            SyscallArch::X86 => "x86",
            SyscallArch::X32 => "x32",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    /// A volume of this pod. Exactly one of `volume`, `config` and `secret`.
    pub volume: Option<String>,
    /// A config item of this pod, as a read-only file at `path`.
    pub config: Option<String>,
    /// A secret of this pod, as a read-only file at `path` (readable by the app's user only).
    pub secret: Option<String>,
    /// Absolute path inside the app's root filesystem.
    pub path: String,
    /// Mount read-only. Default false (config and secrets are always read-only).
    pub read_only: Option<bool>,
    /// Mount this directory or file inside the volume instead of the whole volume
    /// (Kubernetes' `subPath`): a relative path without `.` or `..`. A missing one is made at
    /// launch as a directory (with the permissions of the volume's own directory), as the
    /// kubelet makes it, unless the volume is read-only; a symbolic link on the way may not
    /// lead out of the volume.
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    OnFailure,
    Always,
}

/// A numeric id or a name.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum IdOrName {
    Id(u32),
    Name(String),
}

impl<'de> Deserialize<'de> for IdOrName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdOrName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a numeric id (0..4294967294) or a name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdOrName, E> {
                u32::try_from(v)
                    .map(IdOrName::Id)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdOrName, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdOrName, E> {
                Ok(IdOrName::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
