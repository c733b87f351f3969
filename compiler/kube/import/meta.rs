//! A Pod's or a Deployment's metadata as the pod's name and annotations, and the one
//! Deployment podc runs (one replica, labels only as its selector).

use std::collections::BTreeMap;

use super::doc::{DeploymentDoc, Meta, PodSpec};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::parse::source::{join_key, SourceMap};

/// The pod-level parts of a Pod or of a Deployment's template, and where they are.
pub(super) struct PodParts {
    pub(super) name: String,
    pub(super) annotations: BTreeMap<String, String>,
    /// The document path of the pod's spec (`spec`, or `spec.template.spec`).
    pub(super) spec_path: &'static str,
    /// The document path of the metadata holding the annotations.
    pub(super) meta_path: &'static str,
}

impl Meta {
    pub(super) fn into_parts(
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

pub(super) fn deployment(
    d: DeploymentDoc,
    doc: &SourceMap,
) -> Result<(PodParts, PodSpec), Diagnostic> {
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
