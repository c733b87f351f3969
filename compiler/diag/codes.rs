//! Diagnostic codes: the one registry of every problem podc reports about a manifest.
//!
//! Each diagnostic carries a stable code (`P0703`) that CI rules, editors and the README's
//! "Diagnostic codes" table refer to. A code never changes meaning once given: a new kind of
//! problem gets a new code, and a code that is no longer produced stays listed here (retired)
//! rather than being reused. The hundreds group them by subject:
//!
//! | range | subject |
//! | --- | --- |
//! | P00xx | syntax and structure of the document |
//! | P01xx | names |
//! | P02xx | paths |
//! | P03xx | limits and quantities |
//! | P04xx | the command line and environment of an app |
//! | P05xx | identity and security (users, capabilities, seccomp) |
//! | P06xx | volumes and mounts |
//! | P07xx | the order of apps (`after`, `init`) |
//! | P08xx | networking and ports |
//! | P09xx | the target (systemd version, cgroup hierarchy, flags) |
//! | P1xxx | warnings: legal, but almost certainly a mistake |
//!
//! Producers name a code by its constant (`codes::AFTER_UNKNOWN`), so a typo is a compile
//! error and the summary shown in SARIF rules and the README comes from this table alone.

use std::fmt;

/// How bad a problem is. Errors refuse the manifest; warnings are printed and change the exit
/// status only under `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One registered code: its text, its severity and what it means in one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

macro_rules! codes {
    ($($name:ident = $code:literal, $sev:ident, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $name: &Code = &Code {
                code: $code,
                severity: Severity::$sev,
                summary: $summary,
            };
        )*
        /// Every registered code, in code order.
        pub const ALL: &[&Code] = &[$($name),*];
    };
}

codes! {
    // Syntax and structure.
    SYNTAX = "P0001", Error, "the text is not valid YAML or TOML";
    DUPLICATE_KEY = "P0002", Error, "a key appears twice in one mapping";
    READER_LIMIT = "P0003", Error, "the document is too large, too deeply nested or expands too many aliases";
    EMPTY = "P0004", Error, "the manifest is empty";
    NOT_A_MAPPING = "P0005", Error, "the manifest is not a mapping of keys to values";
    UNKNOWN_KEY = "P0006", Error, "a key the format does not have";
    MISSING_KEY = "P0007", Error, "a required key is missing";
    WRONG_TYPE = "P0008", Error, "a value has the wrong type";
    UNKNOWN_VARIANT = "P0009", Error, "a value is not one of the words the key allows";
    FORMAT_VERSION = "P0010", Error, "the manifest's `podc` format version is not 1";
    NOT_UTF8 = "P0011", Error, "the manifest is not valid UTF-8";
    TOO_LARGE = "P0012", Error, "the manifest is larger than podc reads";
    TOO_MANY = "P0013", Error, "too many apps, volumes or ports in one pod";
    NO_APPS = "P0014", Error, "a pod needs at least one app";
    KUBE_KIND = "P0020", Error, "a Kubernetes object other than a v1 Pod or an apps/v1 Deployment";
    KUBE_UNSUPPORTED = "P0021", Error, "a Kubernetes field or value with no podc equivalent";
    KUBE_PODC_ANNOTATION = "P0022", Error, "a podc annotation on a Kubernetes object does not parse or does not fit the pod";
    KUBE_STREAM = "P0023", Error, "a file of several documents without exactly one Pod or Deployment, or with a podc manifest among them";
    KUBE_MISSING_OBJECT = "P0024", Error, "a ConfigMap or Secret the pod needs is neither in its file nor given on the command line";
    KUBE_SECCOMP_PROFILE = "P0025", Error, "a `Localhost` seccomp profile that cannot be read: missing, unreadable or not a profile's JSON";
    KUBE_SECCOMP_RULE = "P0026", Error, "a `Localhost` seccomp profile with an action, condition, flag or architecture systemd cannot carry";
    // Names.
    BAD_NAME = "P0101", Error, "a pod, app or volume name breaks the name rule";
    POD_NAME_LONG = "P0102", Error, "a pod name is too long for its machine name";
    APP_NAME_RESERVED = "P0103", Error, "an app name would shadow a unit systemd or podc runs";
    APP_DUPLICATE = "P0104", Error, "two apps have the same name";
    VOLUME_DUPLICATE = "P0105", Error, "two volumes have the same name";
    POD_DUPLICATE = "P0106", Error, "two manifests of one build define the same pod";
    ENV_NAME = "P0107", Error, "an environment variable name is not valid";
    ANNOTATION_KEY = "P0108", Error, "an annotation key is empty or has control characters";
    ANNOTATION_RESERVED = "P0109", Error, "an annotation key podc writes itself on Kubernetes objects (podc/pod, podc/apps)";
    ANNOTATION_KUBERNETES = "P0110", Error, "an annotation Kubernetes does not accept (its key is not a qualified name, or all of them are over 256 KiB)";
    LABEL_KUBERNETES = "P0111", Error, "a label or namespace Kubernetes does not accept";
    // Paths.
    PATH_RELATIVE = "P0201", Error, "a path is not absolute";
    PATH_CONTROL = "P0202", Error, "a path contains a control character";
    PATH_DOTDOT = "P0203", Error, "a path contains `..`";
    PATH_COMPONENT_LONG = "P0204", Error, "a path component is longer than Linux allows";
    PATH_NOT_NORMAL = "P0205", Error, "a path is not in normal form";
    PATH_UNWRITABLE = "P0206", Error, "a path has a character the unit file or overlay cannot carry";
    PROGRAM_PATH = "P0207", Error, "the program path cannot be run by systemd";
    IMAGE_REFERENCE = "P0208", Error, "an image is neither an absolute path nor a valid image reference";
    KUBE_IMAGE_PATH = "P0209", Error, "an image given by path has no meaning on Kubernetes (map it with --image)";
    // Limits and quantities.
    QUANTITY = "P0301", Error, "a cpu or memory value is not a quantity podc can use exactly";
    CPU_TOO_LARGE = "P0302", Error, "a cpu limit is larger than CPUQuota= can express";
    CPU_WEIGHT_TWICE = "P0303", Error, "cpuShares and cpuWeight are both given";
    OUT_OF_RANGE = "P0304", Error, "cpuShares, cpuWeight or oomScoreAdj is out of range";
    TASKS = "P0305", Error, "a tasks limit is zero or too large";
    CPU_SHARES_INEXACT = "P0306", Error, "cpuShares cannot be set exactly on this target";
    CPU_REQUEST_WITH_WEIGHT = "P0330", Error, "cpuRequest is given with cpuShares or cpuWeight";
    REQUEST_ABOVE_LIMIT = "P0331", Error, "a cpuRequest or memoryRequest above the app's own limit of that resource";
    MEMORY_REQUEST_V1 = "P0332", Error, "memoryRequest on a cgroup v1 target, which has no memory.low";
    CPU_REQUEST_INEXACT = "P0333", Error, "cpuRequest cannot be set exactly on this target";
    CPU_REQUEST_TOO_LARGE = "P0334", Error, "a cpuRequest above 256 CPUs (262144 shares, the kernel's most)";
    // Command line and environment.
    EXEC_EMPTY = "P0401", Error, "exec names no program";
    NUL = "P0402", Error, "an argument or environment value contains NUL";
    ARG_TOO_LONG = "P0403", Error, "an argument or environment entry is longer than the kernel passes";
    LINE_TOO_LONG = "P0404", Error, "a value makes a unit file line longer than systemd reads";
    ARGS_TOTAL = "P0405", Error, "arguments and environment are too large together";
    EXEC_MISSING = "P0406", Error, "an app whose image is a path gives no exec";
    ARGS_WITH_EXEC = "P0407", Error, "an app gives both `args` and `exec`, which is the whole command line";
    ARGS_IMAGE_PATH = "P0408", Error, "`args` for an image given by path, which has no Entrypoint";
    ARGS_EMPTY = "P0409", Error, "`args` is an empty list";
    EXPAND_UNKNOWN = "P0410", Error, "an `{expand: ...}` word refers to a name that `environmentFrom` of keys read at launch may or may not give";
    ENV_FROM_SOURCE = "P0420", Error, "an environment variable from a config item or secret names not exactly one of `config` and `secret`";
    ENV_KEY = "P0421", Error, "an environment variable's `key` is not a variable name";
    HEALTH_KIND = "P0460", Error, "a health probe gives not exactly one of exec, http, tcp and grpc";
    DURATION = "P0461", Error, "a duration is not a number with a unit (ms, s, m, h) within range";
    HEALTH_VALUE = "P0462", Error, "a health probe's port, path, host, service, command or failures cannot be used";
    HEADER_NAME = "P0463", Error, "an HTTP probe's header name is not a token (RFC 7230)";
    HEADER_VALUE = "P0464", Error, "an HTTP probe's header value contains a line break or NUL";
    HEADER_TWICE = "P0465", Error, "an HTTP probe names one header twice (names are compared without case)";
    HOOK_EMPTY = "P0466", Error, "a lifecycle hook names no program";
    // Identity and security.
    BAD_ID = "P0501", Error, "a user or group id cannot be used";
    BAD_USER_NAME = "P0502", Error, "a user or group name is not valid";
    UNKNOWN_CAPABILITY = "P0503", Error, "an unknown capability name";
    UNKNOWN_SYSCALL = "P0504", Error, "an unknown system call name";
    UNKNOWN_SYSCALL_GROUP = "P0505", Error, "an unknown system call group";
    UNKNOWN_ERRNO = "P0506", Error, "an unknown errno name";
    RETAIN_REMOVE = "P0507", Error, "a filter needs exactly one non-empty `retain` or `remove`";
    SECCOMP_EXACT = "P0508", Error, "a seccomp filter's `exact` without `retain`";
    SYSCALL_ARCH_NATIVE = "P0509", Error, "`syscallArchitectures` without `x86-64`, the native ABI systemd always allows";
    CGROUP_MOUNT_V1 = "P0530", Error, "`cgroupMount: read-write` on a cgroup v1 target, where an app's cgroup cannot be delegated safely";
    CGROUP_MOUNT_RELAXED = "P0531", Error, "`cgroupMount: read-write` with `relax: [control-groups]`, which would show the app every cgroup of the pod";
    // Volumes and mounts.
    HOST_VOLUME_OWNERSHIP = "P0601", Error, "mode, uid or gid on a host volume";
    HOST_VOLUME_SOURCE = "P0602", Error, "a host volume without a source";
    EMPTY_VOLUME_SOURCE = "P0603", Error, "an empty volume with a source";
    VOLUME_MODE = "P0604", Error, "a volume mode is not an octal permission";
    UNKNOWN_VOLUME = "P0605", Error, "a mount names a volume the pod does not have";
    MOUNT_PATH = "P0606", Error, "a volume cannot be mounted at this path";
    MOUNT_PATH_TWICE = "P0607", Error, "two mounts of one app use the same path";
    MEMORY_VOLUME_SIZE = "P0620", Error, "a memory volume without a size";
    SIZE_NOT_MEMORY = "P0621", Error, "a size on a volume that is not a memory volume";
    VOLUME_SIZE = "P0622", Error, "a memory volume's size is not a whole number of bytes";
    VOLUME_SOURCE = "P0623", Error, "a persistent or memory volume with a source";
    PROJECTED_SOURCES = "P0624", Error, "a projected volume without `sources` or with `readOnly: false`, or `sources` on another kind of volume";
    PROJECTED_SOURCE = "P0625", Error, "a projected volume's source names not exactly one `dir` config item or secret of the pod";
    ITEM_NAME_TWICE = "P0640", Error, "a volume, config item or secret name is used twice in a pod";
    CONFIG_SOURCE = "P0641", Error, "a config item needs exactly one of `text` and `file`";
    MOUNT_SOURCE = "P0642", Error, "a mount names not exactly one of `volume`, `config` and `secret`";
    UNKNOWN_ITEM = "P0643", Error, "a mount, environment variable or `environmentFrom` entry names a config item or secret the pod does not have";
    ITEM_WRITABLE = "P0644", Error, "a config item or secret mounted with `readOnly: false`";
    CONFIG_TOO_LARGE = "P0645", Error, "a config item's text is larger than systemd passes to an app";
    KUBE_KEY_IS_NAME = "P0646", Error, "a `key` named like its config item or secret, which on Kubernetes is the key of the whole file";
    DIR_SOURCE = "P0647", Error, "a config item or secret gives `dir` with `file` or `text`, or a secret gives neither `file` nor `dir`";
    ENV_ALL_SOURCE = "P0648", Error, "an `environmentFrom` entry names not exactly one of `config` and `secret`";
    ENV_PREFIX = "P0649", Error, "an `environmentFrom` prefix is not the start of a variable name";
    DIR_MOUNTED = "P0650", Error, "a `dir` config item or secret mounted at a path, which systemd credentials cannot carry";
    DIR_VARIABLE = "P0651", Error, "a `dir` config item or secret taken as one environment variable (its keys are many)";
    ENV_TEXT_VALUE = "P0652", Error, "a config item's text taken as variables holds a value an environment file cannot carry";
    HOST_ITEM = "P0653", Error, "a `divisor` without `host`, or a `host` config item taken with a `key` or by `environmentFrom` (its value is one number)";
    SUB_PATH = "P0660", Error, "a mount's `subPath` is not a relative path in normal form inside its volume";
    SUB_PATH_NOT_DIRECTORY = "P0661", Error, "a `subPath` on a mount of a config item or secret, or of a host volume that is a file or socket";
    HOST_TYPE = "P0662", Error, "a `type` on a volume that is not a host volume";
    IMAGE_VOLUME = "P0663", Error, "an image volume without a valid `image` reference, or an `image` on another kind of volume";
    IMAGE_VOLUME_WRITABLE = "P0664", Error, "an image volume with `readOnly: false` (an image volume is always read-only)";
    IMAGE_VOLUME_KEY = "P0665", Error, "`source`, `mode`, `uid` or `gid` on an image volume";
    // Order of apps.
    AFTER_TWICE = "P0701", Error, "an app is listed twice in `after`";
    AFTER_SELF = "P0702", Error, "an app waits for itself";
    AFTER_UNKNOWN = "P0703", Error, "`after` names an app the pod does not have";
    AFTER_CYCLE = "P0704", Error, "apps wait for each other in a cycle";
    INIT_RESTART_ALWAYS = "P0705", Error, "an init app with `restart: always`, which never runs to completion";
    INIT_HEALTH = "P0706", Error, "an init app with a health probe";
    INIT_PORTS = "P0707", Error, "an init app that publishes ports";
    KUBE_ONLY_INIT = "P0708", Error, "a pod of init apps only, which Kubernetes cannot run (a pod needs a container)";
    INIT_HOOKS = "P0709", Error, "an init app with lifecycle hooks";
    // Networking.
    PORT_RANGE = "P0801", Error, "a port number is out of range";
    HOST_IP = "P0802", Error, "hostIP is not an IP address";
    PORT_NAME = "P0803", Error, "a port name is not valid";
    UDP_PROXY = "P0804", Error, "a udp port cannot be proxied";
    PRIVILEGED_PORT = "P0805", Error, "an app not run as root cannot listen below port 1024";
    SOCKET_HOST_PORT = "P0806", Error, "a socket-activated port with a different hostPort";
    PROXY_ON_HOST_NETWORK = "P0807", Error, "a proxied port on the host's network";
    HOST_PORT_TWICE = "P0808", Error, "a host port is published twice";
    PROXIED_TWICE = "P0809", Error, "a port is proxied to twice in one pod";
    PORT_NAME_TWICE = "P0810", Error, "a port name is used twice";
    START_WITHOUT_PORTS = "P0811", Error, "`start: connection` in a pod without ports";
    EGRESS_ON_HOST_NETWORK = "P0812", Error, "`egress` of a pod on the host's network";
    NETWORKS_ON_HOST_NETWORK = "P0813", Error, "`networks` of a pod on the host's network";
    NETWORK_NAME = "P0814", Error, "a network name is not valid, or named twice";
    ALLOW_HOST_WITHOUT_BRIDGE = "P0815", Error, "`allowHost` of a pod with no bridge to the host";
    ALLOW_HOST_PORT = "P0816", Error, "an allowed host port is out of range, or named twice";
    // Target.
    SYSTEMD_VERSION = "P0901", Error, "a systemd version podc cannot target";
    CGROUP_V1_REMOVED = "P0902", Error, "cgroup v1 with a systemd that no longer supports it";
    NO_MOUNT_API_VFS = "P0903", Error, "the target systemd cannot give apps their own root";
    FEATURE_MISSING = "P0904", Error, "the target systemd lacks a feature the manifest uses";
    // Warnings.
    MEMORY_TINY = "P1001", Warning, "a memory limit below 1 MiB, almost surely a missing suffix";
    CPU_HUGE = "P1002", Warning, "a cpu limit above what any host has";
    CPU_BARE_LARGE = "P1003", Warning, "a cpu limit of 100 or more whole CPUs written without a suffix";
    APP_ABOVE_POD = "P1004", Warning, "an app limit above its pod's limit, which caps it anyway";
    ROOT_RELAXED = "P1005", Warning, "an app runs as root and relaxes its sandbox";
    POD_TASKS_LOW = "P1006", Warning, "a pod tasks limit too low for systemd inside the pod to start";
    IMAGE_UNPINNED = "P1007", Warning, "an image reference not pinned by digest: what runs is whatever the store holds for its tag";
    IMAGE_SHORT_NAME = "P1008", Warning, "an image short name (no registry), read as Docker Hub's";
    LOW_PORTS_OWN_USERS = "P1009", Warning, "an app keeps CAP_NET_BIND_SERVICE in a pod of its own user namespace on the host's network, where it cannot bind a port below 1024";
    HOST_IDS = "P1010", Warning, "a pod runs with the host's ids (`userNamespace: host`): its root is the host's root";
    // Warnings of `podc kube`: what Kubernetes cannot say, kept in the podc/pod and podc/apps
    // annotations of the object.
    KUBE_POD_EXTRA = "P1101", Warning, "a pod setting Kubernetes has no field for, kept only in the podc/pod annotation";
    KUBE_APP_EXTRA = "P1102", Warning, "an app setting Kubernetes has no field for, kept only in the podc/apps annotation";
    KUBE_RESTART = "P1103", Warning, "apps restart differently; Kubernetes has one restart policy per pod";
    KUBE_GROUPS = "P1104", Warning, "apps have different supplementary groups; Kubernetes has one list per pod";
    KUBE_SECCOMP = "P1105", Warning, "a seccomp filter runs as the runtime's default profile on Kubernetes";
    KUBE_AFTER = "P1106", Warning, "an order between long-running apps that Kubernetes cannot express";
    KUBE_CPU_REQUEST = "P1107", Warning, "a relative CPU weight above the app's cpu limit, which Kubernetes refuses as a request";
    // Warnings about volumes.
    MEMORY_VOLUME_ABOVE_LIMIT = "P1110", Warning, "a memory volume larger than the memory limit of an app that writes it (its pages count against that limit)";
    KUBE_CLAIM = "P1111", Warning, "a persistent volume is a PersistentVolumeClaim on Kubernetes, which must exist before the pod";
    MEMORY_VOLUME_TINY = "P1112", Warning, "a memory volume below 1 MiB, almost surely a missing suffix";
    // Warnings of configuration and secrets (and what `podc kube` makes of them).
    ITEM_UNUSED = "P1114", Warning, "a config item or secret that no app takes";
    KUBE_CONFIG_MAP = "P1115", Warning, "a config item is a ConfigMap on Kubernetes, which must be created there";
    KUBE_SECRET = "P1116", Warning, "a secret is a Secret on Kubernetes, which must be created there";
    // Warnings of reading Kubernetes files as people write them.
    KUBE_IGNORED = "P1120", Warning, "a Kubernetes field that has no meaning on one host, ignored";
    KUBE_OBJECT_IGNORED = "P1121", Warning, "a Kubernetes object beside the pod that podc does not run (a Service, RBAC), ignored";
    KUBE_SECRET_VALUES = "P1122", Warning, "a Secret's values are read from files on the host at launch, never built into the tree";
    KUBE_SECRET_FILES = "P1123", Warning, "a Secret not in the file: its keys are read from files on the host at launch";
    KUBE_CONFIG_FILES = "P1124", Warning, "a ConfigMap not in the file: its keys are read from files on the host at launch";
    KUBE_NAME_CHANGED = "P1125", Warning, "a pod's Kubernetes name with dots, which podc's names (of units) cannot have: its dots are dashes";
}

/// The registered code with this text.
pub fn lookup(code: &str) -> Option<&'static Code> {
    ALL.iter().find(|c| c.code == code).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_well_formed() {
        for w in ALL.windows(2) {
            assert!(w[0].code < w[1].code, "{} then {}", w[0].code, w[1].code);
        }
        for c in ALL {
            assert!(
                c.code.len() == 5
                    && c.code.starts_with('P')
                    && c.code[1..].bytes().all(|b| b.is_ascii_digit()),
                "{}",
                c.code
            );
            // Warnings and only warnings live in P1xxx.
            assert_eq!(
                c.code.starts_with("P1"),
                c.severity == Severity::Warning,
                "{}",
                c.code
            );
            assert!(!c.summary.ends_with('.'), "{}", c.code);
        }
    }
}
