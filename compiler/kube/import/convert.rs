//! The conversion's state: the manifest being written as JSON, and where each of its paths
//! came from in the Kubernetes document (for diagnostics located in the Kubernetes text).

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::parse::source::{join_key, SourceMap};
use serde_json::Value;

/// Writes the podc manifest as JSON and records where each part came from.
pub(super) struct Convert<'a> {
    pub(super) doc: &'a SourceMap,
    pub(super) spec: &'static str,
    pub(super) meta: &'static str,
    /// Manifest path prefix → document path.
    pub(super) renames: Vec<(String, String)>,
    /// The pod's ConfigMap and Secret volumes: volume name → the config item or secret.
    pub(super) item_volumes:
        std::collections::BTreeMap<String, (crate::manifest::ItemKind, String)>,
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
