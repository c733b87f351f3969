//! The Kubernetes documents podc reads, as strict structs: every field podc does not take is
//! an error located at its path, and [`KUBERNETES_FIELDS`] tells such a field from a typo.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Kubernetes fields (of a Pod, PodSpec, Container and their parts, a Deployment) that podc
/// does not take, and why: an unknown key with one of these names is a field podc cannot run as
/// written, not a typo. (Fields podc ignores or takes at their default value never get here:
/// see `fields.rs`.)
pub(super) const KUBERNETES_FIELDS: &[(&str, &str)] = &[
    (
        "generateName",
        "podc needs the pod's `name`: it names the units and the tree",
    ),
    (
        "activeDeadlineSeconds",
        "podc does not stop a pod after a deadline",
    ),
    (
        "ephemeralContainers",
        "they are added to a running pod by the API; use `podc` on the host instead",
    ),
    ("os", "podc runs Linux pods"),
    (
        "resourceClaims",
        "dynamic resource allocation needs a cluster's drivers",
    ),
    (
        "volumeDevices",
        "podc does not pass raw block devices into a pod",
    ),
    ("sysctls", "podc does not set a pod's kernel parameters"),
    (
        "claims",
        "dynamic resource allocation needs a cluster's drivers",
    ),
    (
        "subPathExpr",
        "podc does not expand variables in mount paths",
    ),
    ("awsElasticBlockStore", CLUSTER_STORAGE),
    ("azureDisk", CLUSTER_STORAGE),
    ("azureFile", CLUSTER_STORAGE),
    ("cephfs", CLUSTER_STORAGE),
    ("cinder", CLUSTER_STORAGE),
    ("csi", CLUSTER_STORAGE),
    ("fc", CLUSTER_STORAGE),
    ("flexVolume", CLUSTER_STORAGE),
    ("flocker", CLUSTER_STORAGE),
    ("gcePersistentDisk", CLUSTER_STORAGE),
    ("glusterfs", CLUSTER_STORAGE),
    ("iscsi", CLUSTER_STORAGE),
    ("nfs", CLUSTER_STORAGE),
    ("photonPersistentDisk", CLUSTER_STORAGE),
    ("portworxVolume", CLUSTER_STORAGE),
    ("quobyte", CLUSTER_STORAGE),
    ("rbd", CLUSTER_STORAGE),
    ("scaleIO", CLUSTER_STORAGE),
    ("storageos", CLUSTER_STORAGE),
    ("vsphereVolume", CLUSTER_STORAGE),
    ("ephemeral", CLUSTER_STORAGE),
    (
        "gitRepo",
        "podc does not clone repositories into volumes (Kubernetes deprecated it too)",
    ),
    (
        "serviceAccountToken",
        "there is no Kubernetes API on one host, so no service account token",
    ),
    (
        "clusterTrustBundle",
        "there is no Kubernetes API on one host, so no trust bundles",
    ),
    (
        "podCertificate",
        "there is no Kubernetes API on one host, so no pod certificates",
    ),
];

/// Why a cluster's volume plugins are refused.
const CLUSTER_STORAGE: &str = "a volume plugin needs a cluster's storage: on one host use a `hostPath`, or a `persistentVolumeClaim` (a directory podc keeps for the pod)";

/// Why podc does not take the Kubernetes field `name`, if it is one.
pub(super) fn not_supported(name: &str) -> Option<&'static str> {
    KUBERNETES_FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PodDoc {
    // Checked before these structs read the document.
    #[allow(dead_code)]
    pub(super) api_version: String,
    #[allow(dead_code)]
    pub(super) kind: String,
    pub(super) metadata: Meta,
    pub(super) spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeploymentDoc {
    // Checked before these structs read the document.
    #[allow(dead_code)]
    pub(super) api_version: String,
    #[allow(dead_code)]
    pub(super) kind: String,
    pub(super) metadata: DeploymentMeta,
    pub(super) spec: DeploymentSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Meta {
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeploymentMeta {
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeploymentSpec {
    pub(super) selector: Selector,
    pub(super) template: Template,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Selector {
    #[serde(default)]
    pub(super) match_labels: BTreeMap<String, String>,
    /// Which pods of a cluster the Deployment owns: nothing to check on one host.
    #[allow(dead_code)]
    pub(super) match_expressions: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Template {
    pub(super) metadata: TemplateMeta,
    pub(super) spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct TemplateMeta {
    /// A template's name is not the pod's (the Deployment's is).
    #[allow(dead_code)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PodSpec {
    pub(super) containers: Vec<Container>,
    #[serde(default)]
    pub(super) init_containers: Vec<Container>,
    #[serde(default)]
    pub(super) volumes: Vec<KubeVolume>,
    pub(super) restart_policy: Option<RestartPolicy>,
    pub(super) host_network: Option<bool>,
    /// `false`: a user namespace of the pod's own (`userNamespace: private`).
    pub(super) host_users: Option<bool>,
    pub(super) security_context: Option<PodSecurityContext>,
    /// Pod-level limits and requests: the pod's own cgroup.
    pub(super) resources: Option<Resources>,
    #[serde(default)]
    pub(super) host_aliases: Vec<HostAlias>,
}

/// Lines the kubelet adds to every container's /etc/hosts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HostAlias {
    pub(super) ip: String,
    #[serde(default)]
    pub(super) hostnames: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
pub(super) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PodSecurityContext {
    pub(super) supplemental_groups: Option<Vec<Value>>,
    pub(super) run_as_user: Option<Value>,
    pub(super) run_as_group: Option<Value>,
    pub(super) run_as_non_root: Option<bool>,
    pub(super) fs_group: Option<Value>,
    pub(super) seccomp_profile: Option<SeccompProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct KubeVolume {
    pub(super) name: String,
    pub(super) host_path: Option<HostPath>,
    pub(super) empty_dir: Option<EmptyDir>,
    pub(super) persistent_volume_claim: Option<Claim>,
    pub(super) image: Option<ImageVolume>,
    pub(super) config_map: Option<ConfigMapRef>,
    pub(super) secret: Option<SecretRef>,
    #[serde(rename = "downwardAPI")]
    pub(super) downward_api: Option<DownwardApi>,
    pub(super) projected: Option<Projected>,
}

/// The pod's own fields as files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DownwardApi {
    #[serde(default)]
    pub(super) items: Vec<DownwardItem>,
    #[allow(dead_code)]
    pub(super) default_mode: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DownwardItem {
    pub(super) path: String,
    pub(super) field_ref: Option<FieldRef>,
    pub(super) resource_field_ref: Option<ResourceFieldRef>,
    #[allow(dead_code)]
    pub(super) mode: Option<Value>,
}

/// Several ConfigMaps, Secrets and fields of the pod under one mount.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Projected {
    pub(super) sources: Vec<ProjectedSource>,
    #[allow(dead_code)]
    pub(super) default_mode: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ProjectedSource {
    pub(super) config_map: Option<ConfigMapRef>,
    /// In a projection a Secret is named by `name`.
    pub(super) secret: Option<ConfigMapRef>,
    #[serde(rename = "downwardAPI")]
    pub(super) downward_api: Option<DownwardApi>,
}

/// A ConfigMap as a volume: a config item of that name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigMapRef {
    pub(super) name: String,
    pub(super) items: Option<Vec<KeyToPath>>,
    #[serde(rename = "defaultMode")]
    pub(super) default_mode: Option<Value>,
    pub(super) optional: Option<bool>,
}

/// A key of a ConfigMap or Secret volume, as a file at `path` under the mount.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyToPath {
    pub(super) key: String,
    pub(super) path: String,
    #[allow(dead_code)]
    pub(super) mode: Option<Value>,
}

/// A Secret as a volume: a secret of that name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SecretRef {
    pub(super) secret_name: String,
    pub(super) items: Option<Vec<KeyToPath>>,
    pub(super) default_mode: Option<Value>,
    pub(super) optional: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HostPath {
    pub(super) path: String,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EmptyDir {
    pub(super) medium: Option<String>,
    pub(super) size_limit: Option<Value>,
    /// The directory's permissions (an octal number).
    pub(super) mode: Option<Value>,
}

/// An OCI image's root as a volume (Kubernetes 1.31 and newer); its `pullPolicy` is taken
/// out before (`fields.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ImageVolume {
    pub(super) reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Claim {
    pub(super) claim_name: String,
    pub(super) read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Container {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) command: Option<Vec<String>>,
    pub(super) args: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: Vec<EnvVar>,
    pub(super) working_dir: Option<String>,
    pub(super) resources: Option<Resources>,
    pub(super) security_context: Option<SecurityContext>,
    #[serde(default)]
    pub(super) volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub(super) ports: Vec<ContainerPort>,
    #[serde(default)]
    pub(super) env_from: Vec<EnvFromSource>,
    /// `Always` on an init container: a sidecar, which runs beside the pod's containers.
    pub(super) restart_policy: Option<RestartPolicy>,
    pub(super) lifecycle: Option<Lifecycle>,
    pub(super) liveness_probe: Option<KubeProbe>,
    pub(super) readiness_probe: Option<KubeProbe>,
    pub(super) startup_probe: Option<KubeProbe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct KubeProbe {
    pub(super) exec: Option<ExecAction>,
    pub(super) http_get: Option<HttpGetAction>,
    pub(super) tcp_socket: Option<TcpSocketAction>,
    pub(super) grpc: Option<GrpcAction>,
    pub(super) initial_delay_seconds: Option<u64>,
    pub(super) period_seconds: Option<u64>,
    pub(super) timeout_seconds: Option<u64>,
    pub(super) failure_threshold: Option<u64>,
    // Readiness only (1 for the others); podc's readiness is the first pass.
    #[allow(dead_code)]
    pub(super) success_threshold: Option<u64>,
    pub(super) termination_grace_period_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecAction {
    pub(super) command: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpGetAction {
    pub(super) path: Option<String>,
    #[serde(rename = "httpHeaders")]
    pub(super) http_headers: Option<Vec<HttpHeader>>,
    pub(super) port: Value,
    pub(super) host: Option<String>,
    pub(super) scheme: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpHeader {
    pub(super) name: String,
    pub(super) value: String,
}

/// A container's lifecycle hooks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Lifecycle {
    pub(super) post_start: Option<LifecycleHandler>,
    pub(super) pre_stop: Option<LifecycleHandler>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct LifecycleHandler {
    pub(super) exec: Option<ExecAction>,
    pub(super) http_get: Option<Value>,
    pub(super) tcp_socket: Option<Value>,
    pub(super) sleep: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TcpSocketAction {
    pub(super) port: Value,
    pub(super) host: Option<String>,
}

/// A gRPC probe: Kubernetes' port is a number (no port name), its service "" by default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrpcAction {
    pub(super) port: Value,
    pub(super) service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvVar {
    pub(super) name: String,
    pub(super) value: Option<String>,
    #[serde(rename = "valueFrom")]
    pub(super) value_from: Option<EnvVarSource>,
}

/// A variable's value from a key of a ConfigMap or a Secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EnvVarSource {
    pub(super) config_map_key_ref: Option<KeyRef>,
    pub(super) secret_key_ref: Option<KeyRef>,
    pub(super) field_ref: Option<FieldRef>,
    pub(super) resource_field_ref: Option<ResourceFieldRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRef {
    pub(super) name: String,
    pub(super) key: String,
    pub(super) optional: Option<bool>,
}

/// A field of the pod's own object, as a variable's value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FieldRef {
    pub(super) field_path: String,
    #[allow(dead_code)]
    pub(super) api_version: Option<String>,
}

/// A container's limit or request, as a variable's value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ResourceFieldRef {
    pub(super) resource: String,
    pub(super) container_name: Option<String>,
    pub(super) divisor: Option<Value>,
}

/// Every key of a ConfigMap or Secret as variables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EnvFromSource {
    pub(super) prefix: Option<String>,
    pub(super) config_map_ref: Option<ObjectRef>,
    pub(super) secret_ref: Option<ObjectRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ObjectRef {
    pub(super) name: String,
    pub(super) optional: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resources {
    pub(super) limits: Option<Limits>,
    pub(super) requests: Option<Requests>,
}

/// Limits or requests: cpu and memory, and other resources podc refuses by name.
#[derive(Deserialize, Default)]
pub(super) struct Limits {
    pub(super) cpu: Option<Value>,
    pub(super) memory: Option<Value>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

pub(super) type Requests = Limits;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SecurityContext {
    pub(super) run_as_non_root: Option<bool>,
    pub(super) run_as_user: Option<Value>,
    pub(super) run_as_group: Option<Value>,
    pub(super) capabilities: Option<Capabilities>,
    pub(super) allow_privilege_escalation: Option<bool>,
    pub(super) read_only_root_filesystem: Option<bool>,
    pub(super) seccomp_profile: Option<SeccompProfile>,
    pub(super) cgroup_options: Option<CgroupOptions>,
}

/// KEP-5474's `cgroupOptions` (alpha): how the container sees /sys/fs/cgroup.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CgroupOptions {
    pub(super) mount_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Capabilities {
    #[serde(default)]
    pub(super) add: Vec<String>,
    #[serde(default)]
    pub(super) drop: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct SeccompProfile {
    #[serde(rename = "type")]
    pub(super) kind: SeccompType,
    /// A `Localhost` profile's path below the seccomp directory.
    #[serde(rename = "localhostProfile")]
    pub(super) localhost_profile: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeccompType {
    RuntimeDefault,
    Unconfined,
    Localhost,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct VolumeMount {
    pub(super) name: String,
    pub(super) mount_path: String,
    pub(super) read_only: Option<bool>,
    pub(super) sub_path: Option<String>,
    pub(super) recursive_read_only: Option<RecursiveReadOnly>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecursiveReadOnly {
    Disabled,
    IfPossible,
    Enabled,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ContainerPort {
    pub(super) name: Option<String>,
    pub(super) container_port: Value,
    pub(super) host_port: Option<Value>,
    #[serde(rename = "hostIP")]
    pub(super) host_ip: Option<String>,
    pub(super) protocol: Option<PortProtocol>,
}

#[derive(Deserialize, Clone, Copy)]
#[allow(clippy::upper_case_acronyms)]
pub(super) enum PortProtocol {
    TCP,
    UDP,
}

/// What a `resourceFieldRef` may name of a container: its limits and requests.
pub(super) type ResourceList = Vec<(&'static str, Option<Value>)>;

impl Container {
    pub(super) fn resource_list(&self) -> ResourceList {
        let r = self.resources.as_ref();
        let l = r.and_then(|r| r.limits.as_ref());
        let q = r.and_then(|r| r.requests.as_ref());
        vec![
            ("limits.cpu", l.and_then(|l| l.cpu.clone())),
            ("limits.memory", l.and_then(|l| l.memory.clone())),
            ("requests.cpu", q.and_then(|q| q.cpu.clone())),
            ("requests.memory", q.and_then(|q| q.memory.clone())),
        ]
    }
}
