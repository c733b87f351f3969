//! The Kubernetes documents podc reads, as strict structs: every field podc does not take is
//! an error located at its path, and [`KUBERNETES_FIELDS`] tells such a field from a typo.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Names of Kubernetes fields (Pod, PodSpec, Container, their parts, Deployment) that podc
/// does not read: an unknown key with one of these names is a field podc cannot do, not a typo.
pub(super) const KUBERNETES_FIELDS: &[&str] = &[
    // Objects and metadata.
    "status",
    "labels",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "generation",
    "managedFields",
    "selfLink",
    // PodSpec.
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "ephemeralContainers",
    "hostAliases",
    "hostIPC",
    "hostPID",
    "hostUsers",
    "hostname",
    "imagePullSecrets",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "runtimeClassName",
    "schedulerName",
    "schedulingGates",
    "serviceAccount",
    "serviceAccountName",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    // Container.
    "envFrom",
    "imagePullPolicy",
    "lifecycle",
    "httpHeaders",
    "grpc",
    "resizePolicy",
    "restartPolicy",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "valueFrom",
    "fieldRef",
    "resourceFieldRef",
    "optional",
    "items",
    "defaultMode",
    // Resources.
    "claims",
    "memory",
    "ephemeral-storage",
    "hugepages-2Mi",
    "hugepages-1Gi",
    // Security contexts.
    "privileged",
    "procMount",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "seLinuxOptions",
    "seLinuxChangePolicy",
    "windowsOptions",
    "appArmorProfile",
    "fsGroup",
    "fsGroupChangePolicy",
    "seccompProfile",
    "supplementalGroupsPolicy",
    "sysctls",
    "localhostProfile",
    // Volumes.
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "image",
    "iscsi",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
    "mountPropagation",
    "recursiveReadOnly",
    "subPath",
    "subPathExpr",
    // Deployment.
    "minReadySeconds",
    "paused",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
    "strategy",
    "matchExpressions",
];

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
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeploymentMeta {
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeploymentSpec {
    pub(super) replicas: Option<u64>,
    pub(super) selector: Selector,
    pub(super) template: Template,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Selector {
    pub(super) match_labels: BTreeMap<String, String>,
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
    pub(super) security_context: Option<PodSecurityContext>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct KubeVolume {
    pub(super) name: String,
    pub(super) host_path: Option<HostPath>,
    pub(super) empty_dir: Option<EmptyDir>,
    pub(super) persistent_volume_claim: Option<Claim>,
    pub(super) config_map: Option<ConfigMapRef>,
    pub(super) secret: Option<SecretRef>,
}

/// A ConfigMap as a volume: a config item of that name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigMapRef {
    pub(super) name: String,
}

/// A Secret as a volume: a secret of that name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SecretRef {
    pub(super) secret_name: String,
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
    pub(super) port: Value,
    pub(super) host: Option<String>,
    pub(super) scheme: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TcpSocketAction {
    pub(super) port: Value,
    pub(super) host: Option<String>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRef {
    pub(super) name: String,
    pub(super) key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resources {
    pub(super) limits: Option<Limits>,
    pub(super) requests: Option<Requests>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Limits {
    pub(super) cpu: Option<Value>,
    pub(super) memory: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Requests {
    pub(super) cpu: Option<Value>,
    pub(super) memory: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SecurityContext {
    pub(super) run_as_user: Option<Value>,
    pub(super) run_as_group: Option<Value>,
    pub(super) capabilities: Option<Capabilities>,
    pub(super) allow_privilege_escalation: Option<bool>,
    pub(super) read_only_root_filesystem: Option<bool>,
    pub(super) seccomp_profile: Option<SeccompProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Capabilities {
    #[serde(default)]
    pub(super) add: Vec<String>,
    #[serde(default)]
    pub(super) drop: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeccompProfile {
    #[serde(rename = "type")]
    pub(super) kind: SeccompType,
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
