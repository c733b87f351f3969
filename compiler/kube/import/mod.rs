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

mod annotations;
mod app;
mod convert;
mod doc;
mod health;
mod meta;
mod pod;

use serde_json::Value;

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::manifest::Manifest;
use crate::parse::source::{join_key, SourceMap};
use crate::parse::{clean_path, serde_diagnostic, tidy, Format};
use convert::Convert;
use doc::{DeploymentDoc, PodDoc, KUBERNETES_FIELDS};
use meta::deployment;

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
        doc: &doc,
        spec: spec_path,
        meta: pod.meta_path,
        renames: Vec::new(),
        item_volumes: Default::default(),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::annotations::merge;
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
