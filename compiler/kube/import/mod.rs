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
mod fields;
mod health;
mod meta;
mod objects;
mod pod;
mod seccomp;
mod stream;

pub use stream::{
    config_map_dir, config_maps_file, is_kube, secret_dir, workloads, ConfigMap, Objects,
    SeccompDir, Secret, CONFIG_MAPS_DIR, SECCOMP_DIR, SECRETS_DIR,
};

use serde_json::Value;

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::manifest::Manifest;
use crate::parse::source::{join_key, SourceMap};
use crate::parse::{clean_path, serde_diagnostic, tidy, Format};
use convert::Convert;
use doc::{not_supported, DeploymentDoc, PodDoc};
use meta::deployment;

/// A manifest read from Kubernetes, where its paths came from, and the reading's warnings.
pub type Imported = (Manifest, SourceMap, Vec<Diagnostic>);

/// Reads a file of several Kubernetes documents (split at `ranges`): its one Pod or Deployment,
/// taking the ConfigMaps and Secrets beside it and those of `side`.
pub fn import_stream(
    source: &str,
    ranges: &[std::ops::Range<usize>],
    workload: usize,
    side: &Objects,
) -> Result<Imported, Diagnostic> {
    let stream = stream::split(source, ranges, workload)?;
    let mut objects = side.clone();
    for (name, c) in stream.objects.config_maps {
        objects.config_maps.entry(name).or_insert(c);
    }
    for (name, s) in stream.objects.secrets {
        objects.secrets.entry(name).or_insert(s);
    }
    let (manifest, map, mut warnings) =
        import_at(&stream.text, stream.offset, stream.value, &objects)?;
    warnings.extend(stream.warnings);
    Ok((manifest, map, warnings))
}

/// Reads a Kubernetes Pod or Deployment (already read as `value` from `source`) as a manifest,
/// with the ConfigMaps and Secrets in `objects` for it to take.
pub fn import(source: &str, value: Value, objects: &Objects) -> Result<Imported, Diagnostic> {
    import_at(source, 0, value, objects)
}

/// [`import`] of a document that starts at byte `offset` of its file.
fn import_at(
    source: &str,
    offset: usize,
    value: Value,
    objects: &Objects,
) -> Result<Imported, Diagnostic> {
    let doc = SourceMap::lazy_at(source, Format::Yaml, offset);
    let mut value = value;
    let mut warnings = Vec::new();
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    // Ignored as a setting, but a variable may take it (`fieldRef`): as written, or the
    // default Kubernetes gives.
    let spec = if kind.as_deref() == Some("Deployment") {
        "/spec/template/spec"
    } else {
        "/spec"
    };
    let account = value
        .pointer(&format!("{spec}/serviceAccountName"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let (pod, base) = match (api_version.as_deref(), kind.as_deref()) {
        (Some("v1"), Some("Pod")) => {
            fields::prune(&mut value, false, &doc, &mut warnings)?;
            let d: PodDoc = typed(value, &doc)?;
            (d.metadata.into_parts(None, &doc, "metadata")?, d.spec)
        }
        (Some("apps/v1"), Some("Deployment")) => {
            fields::prune(&mut value, true, &doc, &mut warnings)?;
            let d: DeploymentDoc = typed(value, &doc)?;
            deployment(d, &doc, &mut warnings)?
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
        volume_names: Default::default(),
        legacy: false,
        config_items: Default::default(),
        secret_items: Default::default(),
        warned: Default::default(),
        dir_volumes: Default::default(),
        host_paths: Default::default(),
        env_dirs: Vec::new(),
        host_network: false,
        fields: Default::default(),
        pod_security: None,
        container_resources: Default::default(),
        local_maps: Default::default(),
        objects,
        warnings,
    };
    out.fields.insert("spec.serviceAccountName".into(), account);
    let manifest = out.manifest(pod, base)?;
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
    Ok((manifest, map, out.warnings))
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
        if let Some(why) = message
            .starts_with("unknown field")
            .then(|| not_supported(field))
            .flatten()
        {
            return Diagnostic::new(
                codes::KUBE_UNSUPPORTED,
                format!("`{field}` is not supported by podc"),
            )
            .at(path, span)
            .help(why);
        }
        // A key podc does not read here is a field it does not support (a newer Kubernetes
        // field), or a typo: said so, with the nearest name or what podc reads here.
        if message.starts_with("unknown field") {
            let near = serde_diagnostic(message.clone()).help;
            let expected = message.split_once(", expected ").map(|(_, list)| {
                format!(
                    "podc reads here only {}",
                    list.trim_start_matches("one of ")
                )
            });
            let mut d = Diagnostic::new(
                codes::UNKNOWN_KEY,
                format!("`{field}` is not a field podc supports here"),
            )
            .at(path, span);
            d.help = near.or(expected);
            return d;
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
        let err = import(source, value, &Objects::default()).expect_err("tasks is not a number");
        assert_eq!(
            err.path.as_deref(),
            Some("metadata.annotations.podc/apps (apps[0].isolators.tasks)")
        );
        let span = err.span.expect("located");
        assert!(source[span].starts_with("'{\"web\""));
    }
}
