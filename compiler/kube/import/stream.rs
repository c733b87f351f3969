//! A file of several Kubernetes objects, as `kubectl apply -f` takes it: the one Pod or
//! Deployment podc runs, the ConfigMaps and Secrets it may take, and whatever else (Services,
//! RBAC, claims) is ignored with a warning that says why.
//!
//! Each document is read alone, as a slice of the file, with a source map whose spans are
//! shifted to the slice's place in the file ([`SourceMap::lazy_at`]); reading costs one pass
//! over the file however many documents it holds.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::parse::source::SourceMap;
use crate::parse::{yaml_document, Format};

/// The ConfigMaps and Secrets a pod may take, by name: from its own file, or given on the
/// command line (`--configmap`, `--secret`); and where its `Localhost` seccomp profiles are
/// (`--seccomp-dir`).
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    /// None: no directory was given, and a `Localhost` profile is refused.
    pub seccomp: Option<SeccompDir>,
}

impl Objects {
    /// No objects besides the file.
    pub fn none() -> &'static Objects {
        static NONE: Objects = Objects {
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            seccomp: None,
        };
        &NONE
    }
}

/// Whether a YAML document is a Kubernetes object rather than a podc manifest: a mapping with
/// `apiVersion` or `kind` and without `podc`.
pub fn is_kube(value: &Value) -> bool {
    value.as_object().is_some_and(|o| {
        !o.contains_key("podc") && (o.contains_key("apiVersion") || o.contains_key("kind"))
    })
}

/// How many Pods and Deployments a stream of documents holds (read cheaply: a document that
/// does not read counts as none; reading it for real says what is wrong).
pub fn workloads(source: &str, ranges: &[std::ops::Range<usize>]) -> usize {
    if ranges.len() < 2 || ranges.len() > crate::limits::MAX_DOCUMENTS {
        // Read once, for the error it gives.
        return 1;
    }
    ranges
        .iter()
        .filter(|r| {
            let value = document(source, r);
            value.is_ok_and(|v| WORKLOADS.contains(&kind_of(&v)))
        })
        .count()
}

fn kind_of(value: &Value) -> (&str, &str) {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
    (text("apiVersion"), text("kind"))
}

/// A ConfigMap's data: not secret, so it may be written into the tree.
#[derive(Debug, Clone, Default)]
pub struct ConfigMap {
    pub data: BTreeMap<String, String>,
}

/// A Secret: its keys only. Its values never enter podc's build; at launch each key is read
/// from a file of `dir` on the host.
#[derive(Debug, Clone)]
pub struct Secret {
    pub keys: BTreeSet<String>,
    pub dir: String,
}

/// Where `Localhost` seccomp profiles are read when the command line names no directory.
pub const SECCOMP_DIR: &str = "/etc/podc/seccomp";

/// Where a pod's `Localhost` seccomp profiles are: the directory (the kubelet's seccomp root),
/// and the function that reads a file of it (the command line's: the compiler touches no file).
#[derive(Debug, Clone)]
pub struct SeccompDir {
    pub dir: std::path::PathBuf,
    pub read: fn(&std::path::Path) -> std::io::Result<String>,
}

/// Where a Secret's keys are read at launch when the command line names no directory.
pub const SECRETS_DIR: &str = "/etc/podc/secrets";

/// The default directory of the Secret `name`.
pub fn secret_dir(name: &str) -> String {
    format!("{SECRETS_DIR}/{name}")
}

/// Where the keys of a ConfigMap that is neither in the file nor given are read at launch.
pub const CONFIG_MAPS_DIR: &str = "/etc/podc/configmaps";

/// The directory of the ConfigMap `name` that podc was not given.
pub fn config_map_dir(name: &str) -> String {
    format!("{CONFIG_MAPS_DIR}/{name}")
}

/// One document of the file, read: a problem is located in the file.
#[allow(clippy::result_large_err)]
fn document(source: &str, range: &std::ops::Range<usize>) -> Result<Value, Diagnostic> {
    yaml_document(&source[range.clone()]).map_err(|mut d| {
        d.span = d.span.map(|s| s.start + range.start..s.end + range.start);
        d
    })
}

/// The workload of a stream of documents, where it starts in the file, and the objects
/// beside it; warnings for what is ignored.
pub(super) struct Stream {
    pub(super) text: String,
    pub(super) offset: usize,
    pub(super) value: Value,
    pub(super) objects: Objects,
    pub(super) warnings: Vec<Diagnostic>,
}

const WORKLOADS: &[(&str, &str)] = &[("v1", "Pod"), ("apps/v1", "Deployment")];

/// Why an object kind beside the pod is ignored.
fn ignored_kind(kind: &str) -> &'static str {
    match kind {
        "Service" => "podc publishes the ports a container declares with `hostPort`; a Service's cluster address and load balancing have no meaning on one host",
        "Ingress" | "IngressClass" | "Gateway" | "HTTPRoute" => "there is no ingress controller on one host; publish a port with `hostPort`",
        "PersistentVolumeClaim" | "PersistentVolume" | "StorageClass" => "podc keeps a claim's data in a directory of the host (see the persistentVolumeClaim volume)",
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => "there is no Kubernetes API on one host to grant access to",
        "Namespace" => "podc keeps the namespace as written, as the pod's `namespace`",
        "NetworkPolicy" => "podc's network is set in the pod (`network`), not by policy objects",
        "HorizontalPodAutoscaler" | "PodDisruptionBudget" | "VerticalPodAutoscaler" => "podc runs one pod on one host",
        _ => "podc runs one Pod or Deployment and takes the ConfigMaps and Secrets beside it",
    }
}

/// Reads every document of `source` (split at `ranges`), keeps the one Pod or Deployment, the
/// ConfigMaps and the Secrets' key names, and warns of the rest.
// One diagnostic by value, like a parse error.
#[allow(clippy::result_large_err)]
pub(super) fn split(
    source: &str,
    ranges: &[std::ops::Range<usize>],
    which: usize,
) -> Result<Stream, Diagnostic> {
    if ranges.len() > crate::limits::MAX_DOCUMENTS {
        let at = ranges[crate::limits::MAX_DOCUMENTS].clone();
        return Err(Diagnostic::new(
            codes::KUBE_STREAM,
            format!(
                "this file has {} documents; podc reads at most {}",
                ranges.len(),
                crate::limits::MAX_DOCUMENTS
            ),
        )
        .at("", Some(start(source, &at)))
        .help("split the file"));
    }
    let mut workload: Option<(String, usize, Value)> = None;
    let mut seen = 0;
    let mut objects = Objects::default();
    let mut warnings = Vec::new();
    for range in ranges {
        let text = &source[range.clone()];
        let value = document(source, range)?;
        let map = SourceMap::lazy_at(text, Format::Yaml, range.start);
        if !is_kube(&value) {
            return Err(Diagnostic::new(
                codes::KUBE_STREAM,
                "a podc manifest is one document; this file has several",
            )
            .at("", Some(start(source, range)))
            .help("keep a podc manifest alone in its file; several documents are read as Kubernetes objects"));
        }
        let (api, kind) = kind_of(&value);
        if WORKLOADS.contains(&(api, kind)) {
            // Each Pod or Deployment of the file is a pod of its own, read on its own turn.
            if seen == which {
                workload = Some((text.to_string(), range.start, value));
            }
            seen += 1;
            continue;
        }
        match (api, kind) {
            ("v1", "ConfigMap") => {
                let (name, data) = config_map(&value, &map)?;
                objects.config_maps.insert(name, data);
            }
            ("v1", "Secret") => {
                let (name, secret) = secret(&value, &map)?;
                let field = ["data", "stringData"]
                    .into_iter()
                    .find(|f| value.get(f).is_some())
                    .unwrap_or("kind");
                let warning =
                    Diagnostic::new(
                        codes::KUBE_SECRET_VALUES,
                        format!(
                            "the values of Secret `{name}` stay out of the build: podc reads each key from a file in {} at launch",
                            secret.dir
                        ),
                    )
                    .at(field, map.key(field))
                    .help(format!(
                        "write each key's value to {}/<key> on the host (mode 0600), or name another directory with `--secret {name}=DIR`",
                        secret.dir
                    ));
                if which == 0 {
                    warnings.push(warning);
                }
                objects.secrets.insert(name, secret);
            }
            // The objects beside the pods are told of once, with the file's first pod.
            _ if which > 0 => {}
            _ => {
                let shown = if kind.is_empty() {
                    "an object without `kind`"
                } else {
                    kind
                };
                warnings.push(
                    Diagnostic::new(
                        codes::KUBE_OBJECT_IGNORED,
                        format!("{shown} ignored: {}", ignored_kind(kind)),
                    )
                    .at(
                        "kind",
                        map.value("kind").or(Some(range.start..range.start + 1)),
                    ),
                );
            }
        }
    }
    let Some((text, offset, value)) = workload else {
        return Err(Diagnostic::new(
            codes::KUBE_STREAM,
            "no Pod or Deployment in this file: podc runs a `v1` Pod or an `apps/v1` Deployment",
        )
        .at("", ranges.first().map(|r| start(source, r))));
    };
    Ok(Stream {
        text,
        offset,
        value,
        objects,
        warnings,
    })
}

fn object_name(value: &Value, map: &SourceMap) -> Result<String, Diagnostic> {
    match value.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) => Ok(n.to_string()),
        None => Err(Diagnostic::new(codes::MISSING_KEY, "missing field `name`")
            .at("metadata.name", map.key("metadata").or(map.key("kind")))),
    }
}

/// A ConfigMap's name and `data` (`binaryData` is refused: podc's config items are text).
#[allow(clippy::result_large_err)]
fn config_map(value: &Value, map: &SourceMap) -> Result<(String, ConfigMap), Diagnostic> {
    let name = object_name(value, map)?;
    if value.get("binaryData").is_some() {
        return Err(Diagnostic::new(
            codes::KUBE_UNSUPPORTED,
            format!("ConfigMap `{name}` has `binaryData`, which podc does not support: its config items are text"),
        )
        .at("binaryData", map.key("binaryData")));
    }
    let mut data = BTreeMap::new();
    if let Some(d) = value.get("data").and_then(Value::as_object) {
        for (k, v) in d {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                // Kubernetes refuses a number here; so does podc, located.
                _ => {
                    let at = format!("data.{k}");
                    return Err(Diagnostic::new(
                        codes::WRONG_TYPE,
                        format!("the value of key `{k}` of ConfigMap `{name}` is not a string"),
                    )
                    .at(&at, map.value(&at))
                    .help("quote it: ConfigMap values are strings"));
                }
            };
            data.insert(k.clone(), text);
        }
    }
    Ok((name, ConfigMap { data }))
}

/// A Secret's name and its keys (`data` and `stringData`); the values are not kept.
#[allow(clippy::result_large_err)]
fn secret(value: &Value, map: &SourceMap) -> Result<(String, Secret), Diagnostic> {
    let name = object_name(value, map)?;
    let mut keys = BTreeSet::new();
    for field in ["data", "stringData"] {
        if let Some(d) = value.get(field).and_then(Value::as_object) {
            keys.extend(d.keys().cloned());
        }
    }
    let dir = secret_dir(&name);
    Ok((name, Secret { keys, dir }))
}

/// The ConfigMaps of a YAML file given with `--configmap` (other objects in it are refused: the
/// flag names configuration), or the problem, located in the file.
#[allow(clippy::result_large_err)]
pub fn config_maps_file(source: &str) -> Result<Vec<(String, ConfigMap)>, Diagnostic> {
    let mut out = Vec::new();
    for range in crate::parse::yaml_documents(source) {
        let text = &source[range.clone()];
        let value = document(source, &range)?;
        let map = SourceMap::lazy_at(text, Format::Yaml, range.start);
        if kind_of(&value) != ("v1", "ConfigMap") {
            return Err(Diagnostic::new(
                codes::KUBE_STREAM,
                "a file given with --configmap holds `v1` ConfigMaps only",
            )
            .at(
                "kind",
                map.value("kind").or(Some(range.start..range.start + 1)),
            ));
        }
        out.push(config_map(&value, &map)?);
    }
    Ok(out)
}

/// The first character of a document's content (after blank and comment lines).
fn start(source: &str, range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    let mut at = range.start;
    for line in source[range.clone()].split_inclusive('\n') {
        let trimmed = line.trim_start();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            at += line.len() - trimmed.len();
            return at..at + 1;
        }
        at += line.len();
    }
    range.start..range.start + 1
}
