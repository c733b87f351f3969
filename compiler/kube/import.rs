//! Kubernetes in: a `v1` Pod, or an `apps/v1` Deployment's pod template, read as a podc
//! [`Manifest`] with a [`SourceMap`] that points into the Kubernetes text.
//!
//! The Kubernetes document is first read into structs of our own that hold exactly the subset
//! podc maps back (`deny_unknown_fields` everywhere), so every other field is a located error;
//! a field Kubernetes has but podc cannot do is named as such. The subset is then written as
//! the JSON of a podc manifest, the annotations `podc/pod` and `podc/apps` are merged over it
//! (they are fragments of a podc manifest, in podc's own keys), and that JSON is read into
//! [`Manifest`] like any manifest. From there the normal pipeline runs; its diagnostics name
//! manifest paths (`apps[0].exec`), which the source map renames to the Kubernetes paths they
//! came from (`spec.containers[0].command`) before locating them.

// An import error is one `Diagnostic` by value, like a parse error.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::diag::codes;
use crate::diag::{nearest, Diagnostic};
use crate::manifest::Manifest;
use crate::parse::source::{join_index, join_key, SourceMap};
use crate::parse::{clean_path, serde_diagnostic, tidy, Format};
use crate::pod::Filter;

use super::{APPS_ANNOTATION, POD_ANNOTATION};

/// Whether a YAML document is a Kubernetes object rather than a podc manifest: a mapping with
/// `apiVersion` or `kind` and without `podc`.
pub fn is_kube(value: &Value) -> bool {
    value.as_object().is_some_and(|o| {
        !o.contains_key("podc") && (o.contains_key("apiVersion") || o.contains_key("kind"))
    })
}

/// Reads a Kubernetes Pod or Deployment (already read as `value` from `source`) as a manifest.
pub fn import(source: &str, value: Value) -> Result<(Manifest, SourceMap), Diagnostic> {
    let doc = SourceMap::lazy(source, Format::Yaml);
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let (pod, base) = match (api_version.as_deref(), kind.as_deref()) {
        (Some("v1"), Some("Pod")) => {
            let d: PodDoc = typed(value, &doc)?;
            (d.metadata.into_parts(None, &doc, "metadata")?, d.spec)
        }
        (Some("apps/v1"), Some("Deployment")) => {
            let d: DeploymentDoc = typed(value, &doc)?;
            deployment(d, &doc)?
        }
        _ => {
            let shown = |v: Option<String>| v.map_or("none".to_string(), |v| format!("`{v}`"));
            let at = if kind.is_some() { "kind" } else { "apiVersion" };
            return Err(Diagnostic::new(
                codes::KUBE_KIND,
                format!(
                    "podc reads a Kubernetes `v1` Pod or an `apps/v1` Deployment, not apiVersion {} kind {}",
                    shown(api_version),
                    shown(kind)
                ),
            )
            .at(at, doc.value(at)));
        }
    };
    let spec_path = pod.spec_path;
    let mut out = Convert {
        source,
        doc: &doc,
        spec: spec_path,
        meta: pod.meta_path,
        renames: Vec::new(),
    };
    let manifest = out.manifest(pod.name, pod.annotations, base)?;
    let opaque = [POD_ANNOTATION, APPS_ANNOTATION]
        .iter()
        .map(|a| join_key(&join_key(out.meta, "annotations"), a))
        .collect();
    let map = doc.clone().renamed(out.renames, opaque);
    let manifest = serde_path_to_error::deserialize::<_, Manifest>(manifest).map_err(|e| {
        let path = clean_path(&e.path().to_string()).to_string();
        let message = tidy(&e.inner().to_string());
        let span = if message.starts_with("unknown field") || message.starts_with("missing field") {
            map.key(&path)
        } else {
            map.value(&path)
        };
        serde_diagnostic(message).at(map.document_path(&path), span)
    })?;
    Ok((manifest, map))
}

/// A Kubernetes document into our structs; an error names the Kubernetes path.
fn typed<T: serde::de::DeserializeOwned>(value: Value, doc: &SourceMap) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = clean_path(&e.path().to_string()).to_string();
        let message = tidy(&e.inner().to_string());
        let key = message.starts_with("unknown field") || message.starts_with("missing field");
        let span = if key {
            doc.key(&path)
        } else {
            doc.value(&path)
        };
        let field = message.split('`').nth(1).unwrap_or("");
        if message.starts_with("unknown field") && KUBERNETES_FIELDS.contains(&field) {
            let expected = message
                .split_once(", expected ")
                .map(|(_, rest)| rest.trim_start_matches("one of "));
            let d = Diagnostic::new(
                codes::KUBE_UNSUPPORTED,
                format!("`{field}` has no podc equivalent"),
            )
            .at(path, span);
            return match expected {
                Some(list) => d.help(format!("podc reads here only {list}")),
                None => d.help("podc reads nothing here"),
            };
        }
        serde_diagnostic(message).at(path, span)
    })
}

/// Names of Kubernetes fields (Pod, PodSpec, Container, their parts, Deployment) that podc
/// does not read: an unknown key with one of these names is a field podc cannot do, not a typo.
const KUBERNETES_FIELDS: &[&str] = &[
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
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "resizePolicy",
    "restartPolicy",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "valueFrom",
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
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
    "medium",
    "sizeLimit",
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

// The Kubernetes subset podc reads. Field names follow the Kubernetes API; every struct denies
// unknown fields, so the subset is exactly what is listed here.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodDoc {
    // Checked before these structs read the document.
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: Meta,
    spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeploymentDoc {
    // Checked before these structs read the document.
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: DeploymentMeta,
    spec: DeploymentSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeploymentMeta {
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeploymentSpec {
    replicas: Option<u64>,
    selector: Selector,
    template: Template,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Template {
    metadata: TemplateMeta,
    spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TemplateMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodSpec {
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<KubeVolume>,
    restart_policy: Option<RestartPolicy>,
    host_network: Option<bool>,
    security_context: Option<PodSecurityContext>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodSecurityContext {
    supplemental_groups: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KubeVolume {
    name: String,
    host_path: Option<HostPath>,
    empty_dir: Option<EmptyDir>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HostPath {
    path: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyDir {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Container {
    name: String,
    image: String,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<EnvVar>,
    working_dir: Option<String>,
    resources: Option<Resources>,
    security_context: Option<SecurityContext>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    ports: Vec<ContainerPort>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvVar {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resources {
    limits: Option<Limits>,
    requests: Option<Requests>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    cpu: Option<Value>,
    memory: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Requests {
    cpu: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SecurityContext {
    run_as_user: Option<Value>,
    run_as_group: Option<Value>,
    capabilities: Option<Capabilities>,
    allow_privilege_escalation: Option<bool>,
    read_only_root_filesystem: Option<bool>,
    seccomp_profile: Option<SeccompProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Capabilities {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeccompProfile {
    #[serde(rename = "type")]
    kind: SeccompType,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum SeccompType {
    RuntimeDefault,
    Unconfined,
    Localhost,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContainerPort {
    name: Option<String>,
    container_port: Value,
    host_port: Option<Value>,
    #[serde(rename = "hostIP")]
    host_ip: Option<String>,
    protocol: Option<PortProtocol>,
}

#[derive(Deserialize, Clone, Copy)]
#[allow(clippy::upper_case_acronyms)]
enum PortProtocol {
    TCP,
    UDP,
}

/// The pod-level parts of a Pod or of a Deployment's template, and where they are.
struct PodParts {
    name: String,
    annotations: BTreeMap<String, String>,
    /// The document path of the pod's spec (`spec`, or `spec.template.spec`).
    spec_path: &'static str,
    /// The document path of the metadata holding the annotations.
    meta_path: &'static str,
}

impl Meta {
    fn into_parts(
        self,
        extra: Option<(&'static str, BTreeMap<String, String>)>,
        doc: &SourceMap,
        path: &str,
    ) -> Result<PodParts, Diagnostic> {
        let Some(name) = self.name else {
            let at = join_key(path, "name");
            return Err(
                Diagnostic::new(codes::MISSING_KEY, "missing field `name`").at(at, doc.key(path))
            );
        };
        let mut parts = PodParts {
            name,
            annotations: self.annotations,
            spec_path: "spec",
            meta_path: if extra.is_some() {
                "spec.template.metadata"
            } else {
                "metadata"
            },
        };
        // A Deployment's template annotations are the pod's; its own annotations add to them.
        if let Some((meta_path, extra)) = extra {
            parts.spec_path = "spec.template.spec";
            for (k, v) in extra {
                if parts.annotations.get(&k).is_some_and(|mine| *mine != v) {
                    let at = join_key(&join_key(meta_path, "annotations"), &k);
                    return Err(Diagnostic::new(
                        codes::KUBE_UNSUPPORTED,
                        format!(
                            "annotation `{k}` differs between the Deployment and its pod template"
                        ),
                    )
                    .at(&at, doc.value(&at))
                    .help("podc makes one pod: give the annotation once, or the same in both"));
                }
                if k == POD_ANNOTATION || k == APPS_ANNOTATION {
                    parts.meta_path = meta_path;
                }
                parts.annotations.insert(k, v);
            }
        }
        Ok(parts)
    }
}

fn deployment(d: DeploymentDoc, doc: &SourceMap) -> Result<(PodParts, PodSpec), Diagnostic> {
    if let Some(n) = d.spec.replicas.filter(|&n| n != 1) {
        return Err(Diagnostic::new(
            codes::KUBE_UNSUPPORTED,
            format!("a Deployment of {n} replicas: podc runs a pod once, on one host"),
        )
        .at("spec.replicas", doc.value("spec.replicas"))
        .help("podc reads a Deployment of `replicas: 1` (or none given)"));
    }
    let template = d.spec.template;
    if !d.metadata.labels.is_empty() && d.metadata.labels != d.spec.selector.match_labels {
        return Err(Diagnostic::new(
            codes::KUBE_UNSUPPORTED,
            "the Deployment's `labels` must be its selector's `matchLabels`",
        )
        .at("metadata.labels", doc.value("metadata.labels"))
        .help("podc reads labels only as the one selector Kubernetes requires of a Deployment; they mean nothing on one host"));
    }
    if d.spec.selector.match_labels != template.metadata.labels
        || template.metadata.labels.is_empty()
    {
        return Err(Diagnostic::new(
            codes::KUBE_UNSUPPORTED,
            "the selector's `matchLabels` must be exactly the pod template's `labels`",
        )
        .at(
            "spec.selector.matchLabels",
            doc.value("spec.selector.matchLabels"),
        )
        .help("podc reads labels only as the one selector Kubernetes requires of a Deployment; they mean nothing on one host"));
    }
    let meta = Meta {
        name: d.metadata.name,
        annotations: template.metadata.annotations,
    };
    let parts = meta.into_parts(Some(("metadata", d.metadata.annotations)), doc, "metadata")?;
    Ok((parts, template.spec))
}

/// Writes the podc manifest as JSON and records where each part came from.
struct Convert<'a> {
    source: &'a str,
    doc: &'a SourceMap,
    spec: &'static str,
    meta: &'static str,
    /// Manifest path prefix → document path.
    renames: Vec<(String, String)>,
}

/// A problem with the Kubernetes value at `path`.
fn problem(doc: &SourceMap, path: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(codes::KUBE_UNSUPPORTED, message).at(path, doc.value(path))
}

impl Convert<'_> {
    fn rename(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.renames.push((from.into(), to.into()));
    }

    fn spec(&self, rest: &str) -> String {
        join_key(self.spec, rest)
    }

    fn manifest(
        &mut self,
        name: String,
        mut annotations: BTreeMap<String, String>,
        spec: PodSpec,
    ) -> Result<Value, Diagnostic> {
        let meta = self.meta;
        let annotation_path = |key: &str| join_key(&join_key(meta, "annotations"), key);
        let pod_extra = annotations
            .remove(POD_ANNOTATION)
            .map(|text| self.annotation(&annotation_path(POD_ANNOTATION), &text))
            .transpose()?;
        let apps_extra = annotations
            .remove(APPS_ANNOTATION)
            .map(|text| self.annotation(&annotation_path(APPS_ANNOTATION), &text))
            .transpose()?;
        self.rename("", "");
        self.rename("podc", "apiVersion");
        self.rename("name", "metadata.name");
        self.rename("annotations", join_key(meta, "annotations"));
        self.rename("network", self.spec("hostNetwork"));
        self.rename("apps", self.spec("containers"));
        self.rename("volumes", self.spec("volumes"));

        let mut pod = Map::new();
        pod.insert("podc".into(), json!(1));
        pod.insert("name".into(), json!(name));
        if !annotations.is_empty() {
            pod.insert("annotations".into(), json!(annotations));
        }
        let network = if spec.host_network == Some(true) {
            "host"
        } else {
            "private"
        };
        pod.insert("network".into(), json!(network));

        let volumes = self.volumes(&spec.volumes)?;
        let groups = spec
            .security_context
            .and_then(|s| s.supplemental_groups)
            .filter(|g| !g.is_empty());
        let restart = match spec.restart_policy {
            Some(RestartPolicy::Never) => "no",
            Some(RestartPolicy::OnFailure) => "on-failure",
            // Kubernetes restarts a pod's containers unless told otherwise.
            Some(RestartPolicy::Always) | None => "always",
        };
        let mut apps = Vec::new();
        let init_names: Vec<String> = spec
            .init_containers
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let (init_path, containers_path) = (self.spec("initContainers"), self.spec("containers"));
        let all: Vec<_> = spec
            .init_containers
            .into_iter()
            .enumerate()
            .map(|(i, c)| (join_index(&init_path, i), c, true))
            .chain(
                spec.containers
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (join_index(&containers_path, i), c, false)),
            )
            .collect();
        for (n, (path, c, init)) in all.into_iter().enumerate() {
            // An init container starts after every one before it has finished, and the pod's
            // containers after all of them: Kubernetes runs init containers in order.
            let after = if init {
                init_names[..n].to_vec()
            } else {
                init_names.clone()
            };
            let app_path = join_index("apps", n);
            self.rename(&app_path, &path);
            let restart = if init { "no" } else { restart };
            let mut app = self.app(&app_path, &path, c, restart, after)?;
            if let Some(groups) = &groups {
                app.insert("supplementaryGroups".into(), json!(groups));
                self.rename(
                    join_key(&app_path, "supplementaryGroups"),
                    self.spec("securityContext.supplementalGroups"),
                );
            }
            apps.push(Value::Object(app));
        }
        pod.insert("volumes".into(), Value::Array(volumes));
        pod.insert("apps".into(), Value::Array(apps));
        let mut pod = Value::Object(pod);
        if let Some((at, extra)) = pod_extra {
            self.merge_pod(&mut pod, &at, extra)?;
        }
        if let Some((at, extra)) = apps_extra {
            self.merge_apps(&mut pod, &at, extra)?;
        }
        // A RuntimeDefault profile the annotation did not replace by the exact filter.
        let apps = pod["apps"].as_array().expect("apps is a list");
        if let Some(i) = apps
            .iter()
            .position(|app| app["isolators"]["seccomp"] == json!("RuntimeDefault"))
        {
            return Err(self.runtime_default(i));
        }
        Ok(pod)
    }

    /// A podc annotation's JSON object, and its document path.
    fn annotation(
        &self,
        path: &str,
        text: &str,
    ) -> Result<(String, Map<String, Value>), Diagnostic> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => Ok((path.to_string(), o)),
            Ok(_) => Err(Diagnostic::new(
                codes::KUBE_PODC_ANNOTATION,
                format!("the annotation `{}` is not a JSON object", last(path)),
            )
            .at(path, self.doc.value(path))),
            Err(e) => Err(Diagnostic::new(
                codes::KUBE_PODC_ANNOTATION,
                format!(
                    "the annotation `{}` is not valid JSON: {}",
                    last(path),
                    tidy(&e.to_string())
                ),
            )
            .at(path, self.doc.value(path))),
        }
    }

    fn volumes(&mut self, volumes: &[KubeVolume]) -> Result<Vec<Value>, Diagnostic> {
        let mut out = Vec::new();
        for (i, v) in volumes.iter().enumerate() {
            let path = join_index(&self.spec("volumes"), i);
            let podc = join_index("volumes", i);
            self.rename(&podc, &path);
            match (&v.host_path, &v.empty_dir) {
                (Some(h), None) => {
                    if let Some(kind) = h.kind.as_deref().filter(|k| !k.is_empty()) {
                        if kind != "Directory" {
                            let at = join_key(&path, "hostPath.type");
                            return Err(problem(
                                self.doc,
                                &at,
                                format!("a hostPath of type `{kind}` has no podc equivalent"),
                            )
                            .help("podc mounts host directories that exist: `type: Directory`"));
                        }
                    }
                    self.rename(join_key(&podc, "source"), join_key(&path, "hostPath.path"));
                    self.rename(join_key(&podc, "kind"), join_key(&path, "hostPath"));
                    out.push(json!({"name": v.name, "kind": "host", "source": h.path}));
                }
                (None, Some(_)) => {
                    self.rename(join_key(&podc, "kind"), join_key(&path, "emptyDir"));
                    out.push(json!({"name": v.name, "kind": "empty"}));
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &path,
                        format!(
                            "volume `{}` needs exactly one of `hostPath` and `emptyDir`",
                            v.name
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn app(
        &mut self,
        app_path: &str,
        path: &str,
        c: Container,
        restart: &str,
        after: Vec<String>,
    ) -> Result<Map<String, Value>, Diagnostic> {
        let mut app = Map::new();
        let at = |rest: &str| join_key(path, rest);
        let podc = |rest: &str| join_key(app_path, rest);
        app.insert("name".into(), json!(c.name));
        app.insert("image".into(), json!(c.image));
        match (c.command, c.args) {
            (None, Some(_)) => {
                return Err(problem(
                    self.doc,
                    &at("args"),
                    "`args` without `command`: podc cannot run the image's entrypoint with other arguments",
                )
                .help("write the whole command line in `command`"));
            }
            (Some(command), args) => {
                let args = args.unwrap_or_default();
                self.rename(podc("exec"), at("command"));
                for i in 0..command.len() {
                    self.rename(join_index(&podc("exec"), i), join_index(&at("command"), i));
                }
                for i in 0..args.len() {
                    self.rename(
                        join_index(&podc("exec"), command.len() + i),
                        join_index(&at("args"), i),
                    );
                }
                let exec: Vec<String> = command.into_iter().chain(args).collect();
                app.insert("exec".into(), json!(exec));
            }
            (None, None) => {}
        }
        if !c.env.is_empty() {
            let mut env = Map::new();
            self.rename(podc("environment"), at("env"));
            for (i, e) in c.env.into_iter().enumerate() {
                let here = join_index(&at("env"), i);
                if env.contains_key(&e.name) {
                    return Err(problem(
                        self.doc,
                        &join_key(&here, "name"),
                        format!("environment variable `{}` is given twice", e.name),
                    ));
                }
                self.rename(join_key(&podc("environment"), &e.name), here);
                env.insert(e.name, json!(e.value.unwrap_or_default()));
            }
            app.insert("environment".into(), Value::Object(env));
        }
        if let Some(dir) = c.working_dir {
            self.rename(podc("workingDirectory"), at("workingDir"));
            app.insert("workingDirectory".into(), json!(dir));
        }
        let mut isolators = Map::new();
        if let Some(r) = c.resources {
            let l = r.limits.unwrap_or(Limits {
                cpu: None,
                memory: None,
            });
            if let Some(cpu) = l.cpu {
                self.rename(podc("isolators.cpu"), at("resources.limits.cpu"));
                isolators.insert("cpu".into(), cpu);
            }
            if let Some(memory) = l.memory {
                self.rename(podc("isolators.memory"), at("resources.limits.memory"));
                isolators.insert("memory".into(), memory);
            }
            if let Some(cpu) = r.requests.and_then(|r| r.cpu) {
                let here = at("resources.requests.cpu");
                self.rename(podc("isolators.cpuShares"), &here);
                self.rename(podc("isolators.cpuWeight"), &here);
                isolators.insert("cpuShares".into(), json!(self.shares(&here, &cpu)?));
            }
        }
        if let Some(s) = c.security_context {
            if let Some(user) = s.run_as_user {
                self.rename(podc("user"), at("securityContext.runAsUser"));
                app.insert("user".into(), user);
            }
            if let Some(group) = s.run_as_group {
                self.rename(podc("group"), at("securityContext.runAsGroup"));
                app.insert("group".into(), group);
            }
            if let Some(ro) = s.read_only_root_filesystem {
                self.rename(
                    podc("readOnlyRootfs"),
                    at("securityContext.readOnlyRootFilesystem"),
                );
                app.insert("readOnlyRootfs".into(), json!(ro));
            }
            if let Some(escalate) = s.allow_privilege_escalation {
                self.rename(
                    podc("isolators.noNewPrivileges"),
                    at("securityContext.allowPrivilegeEscalation"),
                );
                isolators.insert("noNewPrivileges".into(), json!(!escalate));
            }
            if let Some(caps) = s.capabilities {
                let here = at("securityContext.capabilities");
                self.rename(podc("isolators.capabilities"), &here);
                self.rename(
                    podc("isolators.capabilities.retain"),
                    join_key(&here, "add"),
                );
                self.rename(
                    podc("isolators.capabilities.remove"),
                    join_key(&here, "drop"),
                );
                isolators.insert("capabilities".into(), self.capabilities(&here, &caps)?);
            }
            if let Some(profile) = s.seccomp_profile {
                let here = at("securityContext.seccompProfile");
                self.rename(podc("isolators.seccomp"), &here);
                match profile.kind {
                    SeccompType::Unconfined => {}
                    // The exact filter must come from `podc/apps`; checked after the merge.
                    SeccompType::RuntimeDefault => {
                        isolators.insert("seccomp".into(), json!("RuntimeDefault"));
                    }
                    SeccompType::Localhost => {
                        return Err(problem(
                            self.doc,
                            &join_key(&here, "type"),
                            "a `Localhost` seccomp profile has no podc equivalent",
                        )
                        .help("podc's filters are lists of system calls in `podc/apps`"));
                    }
                }
            }
        }
        if !isolators.is_empty() {
            app.insert("isolators".into(), Value::Object(isolators));
        }
        if !c.volume_mounts.is_empty() {
            self.rename(podc("mounts"), at("volumeMounts"));
            let mut mounts = Vec::new();
            for (i, m) in c.volume_mounts.into_iter().enumerate() {
                let here = join_index(&at("volumeMounts"), i);
                let mine = join_index(&podc("mounts"), i);
                self.rename(&mine, &here);
                self.rename(join_key(&mine, "volume"), join_key(&here, "name"));
                self.rename(join_key(&mine, "path"), join_key(&here, "mountPath"));
                let mut mount = json!({"volume": m.name, "path": m.mount_path});
                if let Some(ro) = m.read_only {
                    mount["readOnly"] = json!(ro);
                }
                mounts.push(mount);
            }
            app.insert("mounts".into(), Value::Array(mounts));
        }
        if !c.ports.is_empty() {
            self.rename(podc("ports"), at("ports"));
            let mut ports = Vec::new();
            for (i, p) in c.ports.into_iter().enumerate() {
                let here = join_index(&at("ports"), i);
                let mine = join_index(&podc("ports"), i);
                self.rename(&mine, &here);
                self.rename(join_key(&mine, "port"), join_key(&here, "containerPort"));
                let mut port = json!({"port": p.container_port});
                if let Some(name) = p.name {
                    port["name"] = json!(name);
                }
                if let Some(host_port) = p.host_port {
                    port["hostPort"] = host_port;
                }
                if let Some(ip) = p.host_ip {
                    port["hostIP"] = json!(ip);
                }
                if let Some(protocol) = p.protocol {
                    port["protocol"] = json!(match protocol {
                        PortProtocol::TCP => "tcp",
                        PortProtocol::UDP => "udp",
                    });
                }
                ports.push(port);
            }
            app.insert("ports".into(), Value::Array(ports));
        }
        self.rename(podc("restart"), self.spec("restartPolicy"));
        app.insert("restart".into(), json!(restart));
        if !after.is_empty() {
            self.rename(podc("after"), path);
            app.insert("after".into(), json!(after));
        }
        Ok(app)
    }

    /// `requests.cpu` as cgroup v1 shares: 1 CPU is 1024 shares, rounded to the nearest.
    fn shares(&self, path: &str, cpu: &Value) -> Result<u64, Diagnostic> {
        let text = match cpu {
            Value::String(s) => s.clone(),
            Value::Number(n) => self
                .doc
                .value(path)
                .and_then(|span| self.source_text(span))
                .unwrap_or_else(|| n.to_string()),
            _ => String::new(),
        };
        match crate::manifest::quantity::millicores(&text) {
            // The largest weight podc takes is 262144 shares: a bigger request is refused by
            // resolve, and saturating keeps it refused rather than wrapped.
            Ok(millis) => Ok(super::millis_to_shares(millis.min(u64::MAX / 1024))),
            Err(e) => Err(Diagnostic::new(
                codes::QUANTITY,
                format!("`requests.cpu` {text:?} is not a cpu quantity podc can use: {e}"),
            )
            .at(path, self.doc.value(path))),
        }
    }

    fn source_text(&self, span: std::ops::Range<usize>) -> Option<String> {
        self.source.get(span).map(|t| t.trim().to_string())
    }

    /// `add` and `drop` against the runtime's default set, as podc's `retain` or `remove`.
    fn capabilities(&self, path: &str, caps: &Capabilities) -> Result<Value, Diagnostic> {
        let known: BTreeSet<&str> = crate::manifest::linux::CAPABILITIES
            .iter()
            .map(|c| c.trim_start_matches("CAP_"))
            .collect();
        let name = |list: &str, i: usize, c: &str| -> Result<String, Diagnostic> {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
            if known.contains(bare) {
                return Ok(format!("CAP_{bare}"));
            }
            let at = join_index(&join_key(path, list), i);
            let names: Vec<&str> = known.iter().copied().collect();
            let help = match nearest(bare, &names) {
                Some(near) => format!("did you mean `{near}`?"),
                None => {
                    "Kubernetes names capabilities without `CAP_`, like NET_BIND_SERVICE".into()
                }
            };
            Err(Diagnostic::new(
                codes::UNKNOWN_CAPABILITY,
                format!("unknown capability {c:?}"),
            )
            .at(&at, self.doc.value(&at))
            .help(help))
        };
        let drop_all = caps.drop.iter().any(|c| c == "ALL");
        if drop_all {
            if caps.drop.len() > 1 {
                let at = join_key(path, "drop");
                return Err(problem(
                    self.doc,
                    &at,
                    "`drop` names `ALL` and more: podc reads `drop: [ALL]` with what `add` keeps",
                ));
            }
            let retain = caps
                .add
                .iter()
                .enumerate()
                .map(|(i, c)| name("add", i, c))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(json!({ "retain": retain }));
        }
        let add = caps
            .add
            .iter()
            .enumerate()
            .map(|(i, c)| name("add", i, c))
            .collect::<Result<Vec<_>, _>>()?;
        let drop = caps
            .drop
            .iter()
            .enumerate()
            .map(|(i, c)| name("drop", i, c))
            .collect::<Result<Vec<_>, _>>()?;
        // Exactly the inverse `podc kube` writes against: the runtime's defaults, with `add`,
        // without `drop`, as the list of what is removed.
        Ok(match super::out::capabilities_back(&add, &drop) {
            Filter::Retain(list) => json!({ "retain": list }),
            Filter::Remove(list) => json!({ "remove": list }),
        })
    }

    /// Merges `podc/pod` over the pod: its keys are the manifest's, except `volumes`, which is
    /// an object keyed by volume name.
    fn merge_pod(
        &mut self,
        pod: &mut Value,
        at: &str,
        mut extra: Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        const POD_KEYS: &[&str] = &["appOrder", "isolators", "start", "target", "volumes"];
        if let Some(k) = extra.keys().find(|k| !POD_KEYS.contains(&k.as_str())) {
            let help = match nearest(k, POD_KEYS) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => format!(" (it holds {})", POD_KEYS.join(", ")),
            };
            return Err(annotation_error(
                self.doc,
                at,
                &format!("it has an unknown key `{k}`{help}"),
            ));
        }
        if let Some(volumes) = extra.remove("volumes") {
            let Value::Object(volumes) = volumes else {
                return Err(annotation_error(
                    self.doc,
                    at,
                    "`volumes` is not an object keyed by volume name",
                ));
            };
            for (name, v) in volumes {
                let list = pod["volumes"].as_array_mut().expect("volumes is a list");
                let Some(i) = list.iter().position(|x| x["name"] == json!(name)) else {
                    return Err(annotation_error(
                        self.doc,
                        at,
                        &format!("`volumes` names `{name}`, which is not a volume of the pod"),
                    ));
                };
                self.rename_all(&join_index("volumes", i), &v, at);
                merge(&mut list[i], v);
            }
        }
        if let Some(order) = extra.remove("appOrder") {
            self.reorder(pod, at, &order)?;
        }
        let extra = Value::Object(extra);
        self.rename_all("", &extra, at);
        merge(pod, extra);
        Ok(())
    }

    /// Puts the apps in the manifest's order (`appOrder` of `podc/pod`): Kubernetes lists init
    /// containers first.
    fn reorder(&mut self, pod: &mut Value, at: &str, order: &Value) -> Result<(), Diagnostic> {
        let apps = pod["apps"].as_array_mut().expect("apps is a list");
        let names: Option<Vec<&str>> = order
            .as_array()
            .map(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .unwrap_or(None);
        // `from[new]` is the index the app had.
        let from: Option<Vec<usize>> = names.as_ref().and_then(|names| {
            let from: Option<Vec<usize>> = names
                .iter()
                .map(|n| apps.iter().position(|a| a["name"] == json!(n)))
                .collect();
            from.filter(|f| {
                f.len() == apps.len() && f.iter().collect::<BTreeSet<_>>().len() == f.len()
            })
        });
        let Some(from) = from else {
            return Err(annotation_error(
                self.doc,
                at,
                "`appOrder` is not a list of the pod's container names, each once",
            ));
        };
        let old = std::mem::take(apps);
        *apps = from.iter().map(|&i| old[i].clone()).collect();
        let to_new = |old_index: usize| from.iter().position(|&i| i == old_index);
        for (podc, _) in &mut self.renames {
            let Some(rest) = podc.strip_prefix("apps[") else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(new) = index.parse().ok().and_then(to_new) {
                *podc = format!("apps[{new}]{tail}");
            }
        }
        Ok(())
    }

    /// Merges `podc/apps` (keyed by app name) over each app.
    fn merge_apps(
        &mut self,
        pod: &mut Value,
        at: &str,
        extra: Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        for (name, v) in extra {
            let apps = pod["apps"].as_array_mut().expect("apps is a list");
            let Some(i) = apps.iter().position(|x| x["name"] == json!(name)) else {
                return Err(annotation_error(
                    self.doc,
                    at,
                    &format!("it names `{name}`, which is not a container of the pod"),
                ));
            };
            if !v.is_object() {
                return Err(annotation_error(
                    self.doc,
                    at,
                    &format!("the entry of `{name}` is not an object"),
                ));
            }
            let app_path = join_index("apps", i);
            let v = self.shape(&name, &app_path, &mut apps[i], v, at)?;
            let app = &mut apps[i];
            // Settings that exclude each other: the annotation's replaces the mapped one.
            if let (Some(mine), Some(theirs)) = (
                app.get_mut("isolators").and_then(Value::as_object_mut),
                v.get("isolators").and_then(Value::as_object),
            ) {
                if theirs.contains_key("cpuWeight") || theirs.contains_key("cpuShares") {
                    mine.remove("cpuShares");
                }
                for whole in ["capabilities", "seccomp"] {
                    if theirs.contains_key(whole) {
                        mine.remove(whole);
                    }
                }
            }
            self.rename_all(&app_path, &v, at);
            merge(app, v);
        }
        Ok(())
    }

    /// One app's entry of `podc/apps` in the manifest's shape: its keys are the app's own
    /// (`after`, `user`, ...) and its isolators' (`tasks`, `seccomp`, ...) side by side, and
    /// `activation` lists each port's. The ports' activations are set on `app` here.
    fn shape(
        &mut self,
        name: &str,
        app_path: &str,
        app: &mut Value,
        entry: Value,
        at: &str,
    ) -> Result<Value, Diagnostic> {
        const APP_KEYS: &[&str] = &["after", "group", "restart", "supplementaryGroups", "user"];
        const ISOLATOR_KEYS: &[&str] = &[
            "capabilities",
            "cpu",
            "cpuShares",
            "cpuWeight",
            "memory",
            "oomScoreAdj",
            "relax",
            "seccomp",
            "tasks",
        ];
        let Value::Object(entry) = entry else {
            return Err(annotation_error(
                self.doc,
                at,
                &format!("the entry of `{name}` is not an object"),
            ));
        };
        let mut shaped = Map::new();
        let mut isolators = Map::new();
        for (k, v) in entry {
            if APP_KEYS.contains(&k.as_str()) {
                shaped.insert(k, v);
            } else if ISOLATOR_KEYS.contains(&k.as_str()) {
                isolators.insert(k, v);
            } else if k == "activation" {
                let ports = app.get_mut("ports").and_then(Value::as_array_mut);
                let fits = matches!((&v, &ports), (Value::Array(a), Some(p)) if a.len() == p.len());
                let (Value::Array(list), Some(ports), true) = (v, ports, fits) else {
                    return Err(annotation_error(
                        self.doc,
                        at,
                        &format!(
                            "the `activation` of `{name}` is not a list with one entry per port"
                        ),
                    ));
                };
                for (p, (port, activation)) in ports.iter_mut().zip(list).enumerate() {
                    port["activation"] = activation;
                    self.rename(
                        join_key(&join_index(&join_key(app_path, "ports"), p), "activation"),
                        at,
                    );
                }
            } else {
                let known: Vec<&str> = APP_KEYS
                    .iter()
                    .chain(ISOLATOR_KEYS)
                    .chain(&["activation"])
                    .copied()
                    .collect();
                let help = match nearest(&k, &known) {
                    Some(near) => format!(" (did you mean `{near}`?)"),
                    None => String::new(),
                };
                return Err(annotation_error(
                    self.doc,
                    at,
                    &format!("the entry of `{name}` has an unknown key `{k}`{help}"),
                ));
            }
        }
        if !isolators.is_empty() {
            shaped.insert("isolators".into(), Value::Object(isolators));
        }
        Ok(Value::Object(shaped))
    }

    fn runtime_default(&self, app: usize) -> Diagnostic {
        let path = self
            .renames
            .iter()
            .find(|(from, _)| *from == format!("apps[{app}].isolators.seccomp"))
            .map(|(_, to)| to.clone())
            .unwrap_or_default();
        problem(
            self.doc,
            &path,
            "a `RuntimeDefault` seccomp profile without podc's filter in `podc/apps`: podc has no runtime default filter",
        )
        .help("give the filter as `isolators.seccomp` of this app in the `podc/apps` annotation, or use `type: Unconfined`")
    }

    /// Every manifest path under `prefix` that `value` sets comes from the annotation at `at`.
    fn rename_all(&mut self, prefix: &str, value: &Value, at: &str) {
        if let Value::Object(o) = value {
            for (k, v) in o {
                let path = join_key(prefix, k);
                self.rename(&path, at);
                self.rename_all(&path, v, at);
            }
        }
    }
}

fn annotation_error(doc: &SourceMap, at: &str, what: &str) -> Diagnostic {
    Diagnostic::new(
        codes::KUBE_PODC_ANNOTATION,
        format!("the annotation `{}` does not fit the pod: {what}", last(at)),
    )
    .at(at, doc.value(at))
}

/// The last part of a document path.
fn last(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// `over` merged into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_objects_are_told_from_manifests_by_their_top_keys() {
        assert!(is_kube(&json!({"apiVersion": "v1", "kind": "Pod"})));
        assert!(is_kube(&json!({"kind": "Pod"})));
        assert!(!is_kube(&json!({"podc": 1, "kind": "Pod"})));
        assert!(!is_kube(&json!({"podc": 1, "name": "web"})));
        assert!(!is_kube(&json!(["apiVersion"])));
    }

    #[test]
    fn annotations_merge_key_by_key_and_replace_the_rest() {
        let mut base = json!({"a": 1, "i": {"cpu": "1", "memory": "1Gi"}, "l": [1, 2]});
        merge(
            &mut base,
            json!({"i": {"memory": "2Gi", "tasks": 5}, "l": [3], "n": null}),
        );
        assert_eq!(
            base,
            json!({"a": 1, "i": {"cpu": "1", "memory": "2Gi", "tasks": 5}, "l": [3], "n": null})
        );
    }

    #[test]
    fn paths_inside_an_annotation_show_both_documents() {
        let source = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    podc/apps: '{\"web\":{\"tasks\":\"x\"}}'\nspec:\n  containers:\n    - name: web\n      image: registry.example/web:1\n";
        let value = crate::parse::slow_value(source).unwrap();
        let err = import(source, value).expect_err("tasks is not a number");
        assert_eq!(
            err.path.as_deref(),
            Some("metadata.annotations.podc/apps (apps[0].isolators.tasks)")
        );
        let span = err.span.expect("located");
        assert!(source[span].starts_with("'{\"web\""));
    }
}
