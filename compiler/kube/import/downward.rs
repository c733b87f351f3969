//! The pod's own fields and its containers' resources, as the downward API gives them to a
//! variable (`fieldRef`, `resourceFieldRef`) or a file (a `downwardAPI` volume's items): what
//! is known when the pod is built is written as it is; the node's allocatable, which a
//! container without a limit gets, is a `host` config item podc counts when the pod launches.

use serde_json::{json, Value};

use super::convert::{problem, Convert};
use super::doc::ResourceFieldRef;
use crate::diag::Diagnostic;
use crate::manifest::HostResource;
use crate::parse::source::join_key;

impl Convert<'_> {
    /// A container's limit or request as a variable's value or a file's (`resourceFieldRef`),
    /// as the kubelet gives it: the container's own, rounded up by `divisor` (CPU in cores by
    /// default, the rest in bytes). An unset limit is the pod's limit of cpu or memory, else the
    /// node's allocatable, which podc counts on the host at launch (a `host` config item); an
    /// unset request is the limit (the API server's default), else 0.
    pub(super) fn resource_value(
        &self,
        at: &str,
        r: &ResourceFieldRef,
        container: &str,
    ) -> Result<Resource, Diagnostic> {
        let container = r.container_name.as_deref().unwrap_or(container);
        let own = |key: &str| {
            self.container_resources
                .get(container)
                .and_then(|l| l.iter().find(|(k, _)| *k == key))
                .and_then(|(_, v)| v.clone())
        };
        let pod = |key: &str| {
            self.pod_limits
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone())
        };
        let (part, resource) = r.resource.split_once('.').unwrap_or(("", ""));
        let host = match resource {
            "cpu" => HostResource::Cpu,
            "memory" => HostResource::Memory,
            "ephemeral-storage" => HostResource::EphemeralStorage,
            _ => return Err(problem(
                self.doc,
                &join_key(at, "resource"),
                format!("the resource `{}` is not supported by podc", r.resource),
            )
            .help(
                "podc gives `limits.` and `requests.` of `cpu`, `memory` and `ephemeral-storage`",
            )),
        };
        let limit = format!("limits.{resource}");
        let value = match part {
            "limits" => own(&limit).or_else(|| pod(&limit)),
            "requests" => own(&r.resource)
                .or_else(|| own(&limit))
                .or(Some(json!("0"))),
            _ => {
                return Err(problem(
                    self.doc,
                    &join_key(at, "resource"),
                    format!("`{}` is neither a limit nor a request", r.resource),
                ))
            }
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        use crate::manifest::quantity::{bytes, millicores};
        let read = |t: &str| {
            if host == HostResource::Cpu {
                millicores(t).ok()
            } else {
                bytes(t).ok()
            }
        };
        let divisor_text = r.divisor.as_ref().map(text);
        let divisor = divisor_text
            .as_deref()
            .map_or(Some(if host == HostResource::Cpu { 1000 } else { 1 }), read);
        let unreadable = || {
            problem(
                self.doc,
                at,
                "a `resourceFieldRef` whose quantity or divisor podc cannot read",
            )
        };
        let divisor = divisor.filter(|d| *d > 0).ok_or_else(unreadable)?;
        let Some(value) = value else {
            return Ok(Resource::Host {
                resource: host,
                divisor: divisor_text,
            });
        };
        let zero = text(&value) == "0";
        match (read(&text(&value)), zero) {
            (Some(v), _) => Ok(Resource::Text(v.div_ceil(divisor).to_string())),
            (None, true) => Ok(Resource::Text("0".into())),
            (None, false) => Err(unreadable()),
        }
    }

    /// A `host` config item for the node's allocatable `resource` (divided by `divisor`), made
    /// once: its name.
    pub(super) fn host_item(&mut self, resource: HostResource, divisor: &Option<String>) -> String {
        let per = divisor
            .as_ref()
            .map(|d| format!("-per-{d}"))
            .unwrap_or_default();
        let name = super::objects::item_name("host", &format!("{}{per}", resource.name()));
        let mut item = json!({"name": name, "host": resource.name()});
        if let Some(d) = divisor {
            item["divisor"] = json!(d);
        }
        self.config_items.entry(name.clone()).or_insert(item);
        name
    }
}

/// What a `resourceFieldRef` gives: a number known when the pod is built, or the node's
/// allocatable, which podc counts on the host when the pod launches.
pub(super) enum Resource {
    Text(String),
    Host {
        resource: HostResource,
        /// As written, when it was.
        divisor: Option<String>,
    },
}

/// Why a field of the pod is not a variable's value in podc.
fn field_help(path: &str) -> &'static str {
    match path {
        "spec.nodeName" | "status.hostIP" | "status.hostIPs" => {
            "podc builds a pod without knowing the host it will run on"
        }
        "status.podIP" | "status.podIPs" => {
            "a host-network pod has the host's addresses, which podc does not know when it builds"
        }
        "metadata.uid" => "a pod has no API object, so no uid, on one host",
        _ => "podc gives `metadata.name`, `metadata.namespace`, `metadata.labels['…']`, `metadata.annotations['…']` and a private pod's `status.podIP`",
    }
}

impl Convert<'_> {
    /// A field of the pod as text (`fieldRef`); labels and annotations whole as Kubernetes
    /// writes them into a file: one `key="value"` line each.
    pub(super) fn field_value(&self, path: &str, at: &str) -> Result<Value, Diagnostic> {
        if let Some(v) = self.fields.get(path) {
            return Ok(json!(v));
        }
        let prefix = match path {
            "metadata.labels" => "metadata.labels['",
            "metadata.annotations" => "metadata.annotations['",
            _ => {
                return Err(problem(
                    self.doc,
                    at,
                    format!("the field `{path}` is not supported by podc"),
                )
                .help(field_help(path)))
            }
        };
        let mut text = String::new();
        for (k, v) in &self.fields {
            if let Some(key) = k.strip_prefix(prefix).and_then(|k| k.strip_suffix("']")) {
                text.push_str(&format!(
                    "{key}={}\n",
                    serde_json::to_string(v).unwrap_or_default()
                ));
            }
        }
        Ok(json!(text))
    }
}
