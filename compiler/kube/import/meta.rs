//! A Pod's or a Deployment's metadata as the pod's name and annotations, and the one
//! Deployment podc runs (one replica, labels only as its selector).

use std::collections::BTreeMap;

use super::doc::{DeploymentDoc, Meta, PodSpec};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, NAME_LABEL, POD_ANNOTATION};
use crate::parse::source::{join_key, SourceMap};

/// The pod-level parts of a Pod or of a Deployment's template, and where they are.
pub(super) struct PodParts {
    pub(super) name: String,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) namespace: Option<String>,
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
            labels: self.labels,
            namespace: self.namespace,
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

/// The one pod of a Deployment: its template, named after the Deployment. Its labels are the
/// template's (what the selector must select); the Deployment's own labels add to them only
/// where they agree.
pub(super) fn deployment(
    d: DeploymentDoc,
    doc: &SourceMap,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(PodParts, PodSpec), Diagnostic> {
    let template = d.spec.template;
    let mut labels = template.metadata.labels;
    if let Some((k, v)) = d
        .spec
        .selector
        .match_labels
        .iter()
        .find(|(k, v)| labels.get(*k) != Some(*v))
    {
        return Err(Diagnostic::new(
            codes::KUBE_UNSUPPORTED,
            format!("the selector's `{k}: {v}` is not a label of the pod template, so the Deployment would select none of its pods"),
        )
        .at(
            "spec.selector.matchLabels",
            doc.value("spec.selector.matchLabels"),
        )
        .help("give the pod template (spec.template.metadata.labels) every label of `matchLabels`; Kubernetes refuses this Deployment too"));
    }
    let mut others = Vec::new();
    for (k, v) in d.metadata.labels {
        match labels.get(&k) {
            Some(mine) if *mine == v => {}
            Some(_) => others.push(k),
            None => {
                labels.insert(k, v);
            }
        }
    }
    if !others.is_empty() {
        warnings.push(
            Diagnostic::new(
                codes::KUBE_IGNORED,
                format!(
                    "the Deployment's label{} `{}` ignored: the pod template gives {} another value, which podc keeps",
                    if others.len() > 1 { "s" } else { "" },
                    others.join("`, `"),
                    if others.len() > 1 { "them" } else { "it" },
                ),
            )
            .at("metadata.labels", doc.key("metadata.labels")),
        );
    }
    // The one label `podc kube` gives a pod without labels is no label of the pod's own.
    let name = d.metadata.name.clone().unwrap_or_default();
    if labels.len() == 1 && labels.get(NAME_LABEL) == Some(&name) {
        labels.clear();
    }
    let meta = Meta {
        name: d.metadata.name,
        namespace: d.metadata.namespace,
        labels,
        annotations: template.metadata.annotations,
    };
    let parts = meta.into_parts(Some(("metadata", d.metadata.annotations)), doc, "metadata")?;
    Ok((parts, template.spec))
}
