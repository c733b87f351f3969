//! The conversion's state: the manifest being written as JSON, and where each of its paths
//! came from in the Kubernetes document (for diagnostics located in the Kubernetes text).

use std::collections::{BTreeMap, BTreeSet};

use super::doc::{KeyToPath, ResourceList};
use super::stream::{ConfigMap, Objects};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::manifest::ItemKind;
use crate::parse::source::{join_key, SourceMap};
use serde_json::Value;

/// Writes the podc manifest as JSON and records where each part came from.
pub(super) struct Convert<'a> {
    pub(super) doc: &'a SourceMap,
    pub(super) spec: &'static str,
    pub(super) meta: &'static str,
    /// Manifest path prefix → document path.
    pub(super) renames: Vec<(String, String)>,
    /// The pod's ConfigMap and Secret volumes, by volume name.
    pub(super) item_volumes: BTreeMap<String, Vec<ItemVolume>>,
    /// Kubernetes volume name → the podc volume it is (a claim's volume is named after it).
    pub(super) volume_names: BTreeMap<String, String>,
    /// The pod was written by `podc kube`: its config items and secrets are in `podc/pod`.
    pub(super) legacy: bool,
    /// Config items and secrets made of ConfigMaps' and Secrets' keys, by name.
    pub(super) config_items: BTreeMap<String, Value>,
    pub(super) secret_items: BTreeMap<String, Value>,
    /// ConfigMaps and Secrets not in the file, each warned of once.
    pub(super) warned: BTreeSet<(crate::manifest::ItemKind, String)>,
    /// Host directories of ConfigMaps and Secrets mounted whole, as volumes by name.
    pub(super) dir_volumes: BTreeMap<String, Value>,
    /// The current container's `environmentFrom` entries: objects whose keys are read at
    /// launch from their directory.
    pub(super) env_dirs: Vec<Value>,
    /// `hostNetwork: true`: a container's ports are the host's, nothing to publish.
    pub(super) host_network: bool,
    /// The pod's own fields a variable may take (`fieldRef`): `metadata.name`, ….
    pub(super) fields: BTreeMap<String, String>,
    /// Each container's limits and requests, by name (for `resourceFieldRef`).
    pub(super) container_resources: BTreeMap<String, ResourceList>,
    /// The pod-level limits of cpu and memory, which stand in for a container's unset ones.
    pub(super) pod_limits: ResourceList,
    /// Keys of the pod's fields as files (`local_maps`) that are numbers counted on the host
    /// at launch: each one's config item without its name (`{host, divisor}`).
    pub(super) host_keys: BTreeMap<(String, String), Value>,
    /// The pod's fields as files (`downwardAPI`), as ConfigMaps by a name of their own.
    pub(super) local_maps: BTreeMap<String, ConfigMap>,
    /// The pod's securityContext, the default of each container's.
    pub(super) pod_security: Option<super::doc::PodSecurityContext>,
    /// The ConfigMaps and Secrets the pod may take (from its file or the command line).
    pub(super) objects: &'a Objects,
    /// What the reading ignored, and why.
    pub(super) warnings: Vec<Diagnostic>,
}

/// A problem with the Kubernetes value at `path`.
pub(super) fn problem(doc: &SourceMap, path: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(codes::KUBE_UNSUPPORTED, message).at(path, doc.value(path))
}

impl Convert<'_> {
    pub(super) fn rename(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.renames.push((from.into(), to.into()));
    }

    pub(super) fn spec(&self, rest: &str) -> String {
        join_key(self.spec, rest)
    }

    /// Every manifest path under `prefix` that `value` sets comes from the annotation at `at`.
    pub(super) fn rename_all(&mut self, prefix: &str, value: &Value, at: &str) {
        if let Value::Object(o) = value {
            for (k, v) in o {
                let path = join_key(prefix, k);
                self.rename(&path, at);
                self.rename_all(&path, v, at);
            }
        }
    }
}

/// A ConfigMap or Secret volume of the pod.
#[derive(Clone)]
pub(super) struct ItemVolume {
    pub(super) kind: ItemKind,
    /// The ConfigMap's or Secret's name.
    pub(super) object: String,
    /// The keys chosen, each with its file's path under the mount; all of them when `None`.
    pub(super) items: Option<Vec<(String, String)>>,
    pub(super) optional: bool,
}

impl ItemVolume {
    pub(super) fn new(
        kind: ItemKind,
        object: &str,
        items: &Option<Vec<KeyToPath>>,
        optional: Option<bool>,
    ) -> ItemVolume {
        ItemVolume {
            kind,
            object: object.to_string(),
            items: items
                .as_ref()
                .map(|l| l.iter().map(|i| (i.key.clone(), i.path.clone())).collect()),
            optional: optional == Some(true),
        }
    }
}
