//! Config items and secrets on Kubernetes: a config item is a ConfigMap, a secret a Secret,
//! both named like the item and created by the user (podc writes references only, never a
//! value). The key of the whole file is the item's name; an environment variable's `key` is a
//! key of its own (`kubectl create secret generic db --from-env-file=...` makes one key per
//! `KEY=VALUE` line); `environmentFrom` is `envFrom`, every key of the object (a `dir` item's
//! files, a `file` item's lines). Where each item comes from on the host goes into `podc/pod`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::common::{app_path, Out};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::POD_ANNOTATION;
use crate::manifest::ItemKind;
use crate::pod::{App, Item, Pod, Source};

/// The pod's volumes for the items some app takes as a file, after its own volumes.
pub(super) fn volumes(pod: &Pod) -> Vec<core::Volume> {
    pod.items
        .iter()
        .filter(|item| {
            pod.apps.iter().any(|a| {
                a.files
                    .iter()
                    .any(|f| f.item.kind == item.kind && f.item.name == item.name)
            })
        })
        .map(|item| core::Volume {
            name: item.name.clone(),
            config_map: (item.kind == ItemKind::Config).then(|| core::ConfigMapVolumeSource {
                name: item.name.clone(),
                ..Default::default()
            }),
            secret: (item.kind == ItemKind::Secret).then(|| core::SecretVolumeSource {
                secret_name: Some(item.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The app's files: the whole-file key of each item's volume at the path, read-only.
pub(super) fn mounts(a: &App) -> Vec<core::VolumeMount> {
    a.files
        .iter()
        .map(|f| core::VolumeMount {
            name: f.item.name.clone(),
            mount_path: f.path.clone(),
            sub_path: Some(f.item.name.clone()),
            read_only: Some(true),
            ..Default::default()
        })
        .collect()
}

/// The app's variables from items, as references to their keys. A `key` named like its item
/// would read the whole file on Kubernetes: an error.
pub(super) fn env(a: &App, i: usize, out: &mut Out) -> Vec<core::EnvVar> {
    let mut vars = Vec::new();
    for (name, e) in &a.env_from {
        let key = match &e.key {
            Some(k) if *k == e.item.name => {
                out.errors.push(
                    Diagnostic::new(
                        codes::KUBE_KEY_IS_NAME,
                        format!(
                            "`{name}` takes the key {k:?} of {} {:?}; on Kubernetes that key is the whole file",
                            e.item.kind, e.item.name
                        ),
                    )
                    .at(format!("{}.environment.{name}.key", app_path(i)), None)
                    .help("rename the line's key in the file, or take the whole file (no `key`)"),
                );
                continue;
            }
            Some(k) => k.clone(),
            None => e.item.name.clone(),
        };
        let source = match e.item.kind {
            ItemKind::Config => core::EnvVarSource {
                config_map_key_ref: Some(core::ConfigMapKeySelector {
                    name: e.item.name.clone(),
                    key,
                    optional: None,
                }),
                ..Default::default()
            },
            ItemKind::Secret => core::EnvVarSource {
                secret_key_ref: Some(core::SecretKeySelector {
                    name: e.item.name.clone(),
                    key,
                    optional: None,
                }),
                ..Default::default()
            },
        };
        vars.push(core::EnvVar {
            name: name.clone(),
            value: None,
            value_from: Some(source),
        });
    }
    vars
}

/// The items as the manifest declares them, in `podc/pod` (Kubernetes has no field for where
/// a ConfigMap's or Secret's data comes from), and a warning for each item an app takes: the
/// ConfigMap or Secret, with its keys, that must be created on the cluster.
pub(super) fn extras(pod: &Pod, out: &mut Out) {
    let mut config = Vec::new();
    let mut secrets = Vec::new();
    let (mut c, mut s) = (0, 0);
    for item in &pod.items {
        let mut decl = json!({ "name": item.name });
        match &item.source {
            Source::Text(t) => decl["text"] = json!(t),
            Source::File(f) => decl["file"] = json!(f),
            Source::Dir(d) => decl["dir"] = json!(d),
            Source::Host {
                resource, written, ..
            } => {
                decl["host"] = json!(resource.name());
                if let Some(w) = written {
                    decl["divisor"] = json!(w);
                }
            }
        }
        let path = match item.kind {
            ItemKind::Config => {
                config.push(decl);
                c += 1;
                format!("config[{}]", c - 1)
            }
            ItemKind::Secret => {
                secrets.push(decl);
                s += 1;
                format!("secrets[{}]", s - 1)
            }
        };
        note(pod, item, path, out);
    }
    // Config texts travel in an annotation, and Kubernetes takes 256 KiB of annotations.
    let texts: usize = pod
        .items
        .iter()
        .map(|i| match &i.source {
            Source::Text(t) => t.len(),
            Source::File(_) | Source::Dir(_) | Source::Host { .. } => 0,
        })
        .sum();
    let own: usize = pod.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if texts > 0 && texts + own > super::meta::MAX_ANNOTATIONS {
        out.errors.push(
            Diagnostic::new(
                codes::ANNOTATION_KUBERNETES,
                format!(
                    "the config items' texts take {texts} bytes, which {POD_ANNOTATION} must hold; Kubernetes takes at most {} bytes of annotations",
                    super::meta::MAX_ANNOTATIONS
                ),
            )
            .at("config", None)
            .help("give the larger config items as a `file`"),
        );
    }
    if !config.is_empty() {
        out.pod.insert("config".into(), Value::Array(config));
    }
    if !secrets.is_empty() {
        out.pod.insert("secrets".into(), Value::Array(secrets));
    }
}

/// What the cluster must hold for an item the apps take: its ConfigMap or Secret and keys.
fn note(pod: &Pod, item: &Item, path: String, out: &mut Out) {
    let mut keys = BTreeSet::new();
    let mut every = false;
    for a in &pod.apps {
        let mine = |kind: ItemKind, name: &str| kind == item.kind && name == item.name;
        if a.files.iter().any(|f| mine(f.item.kind, &f.item.name)) {
            keys.insert(item.name.clone());
        }
        for e in a
            .env_from
            .values()
            .filter(|e| mine(e.item.kind, &e.item.name))
        {
            keys.insert(e.key.clone().unwrap_or_else(|| item.name.clone()));
        }
        every |= a
            .environment_from
            .iter()
            .any(|e| mine(e.item.kind, &e.item.name));
    }
    // A projected volume takes every file of a `dir` item (resolve takes no other).
    let projected = pod.volumes.iter().any(|v| match &v.kind {
        crate::pod::VolumeKind::Projected { sources, .. } => sources
            .iter()
            .any(|s| s.item.kind == item.kind && s.item.name == item.name),
        _ => false,
    });
    let takes = if every {
        "`envFrom`"
    } else {
        "a projected volume"
    };
    every |= projected;
    if keys.is_empty() && !every {
        return;
    }
    let (object, code, create) = match item.kind {
        ItemKind::Config => ("ConfigMap", codes::KUBE_CONFIG_MAP, "configmap"),
        ItemKind::Secret => ("Secret", codes::KUBE_SECRET, "secret generic"),
    };
    let mut listed: Vec<String> = keys
        .iter()
        .map(|k| {
            if *k == item.name {
                format!("{k:?} (the whole file)")
            } else {
                format!("{k:?} (its `{k}=` line)")
            }
        })
        .collect();
    let from = match &item.source {
        Source::Text(_) => format!("the text in {POD_ANNOTATION}"),
        Source::File(f) => format!("{f} on the podc host"),
        Source::Dir(d) => format!("the files of {d} on the podc host"),
        Source::Host { resource, .. } => format!(
            "the podc host's {} as podc launch counts it (on Kubernetes, a `resourceFieldRef` of a limit the container does not set gives the node's)",
            resource.name()
        ),
    };
    if every {
        // The lines' keys are among every line's.
        listed.retain(|k| k.ends_with("(the whole file)"));
        listed.push(match &item.source {
            Source::Dir(d) => format!(
                "one key per file of {d} (`kubectl create {create} {} --from-file={d}`), which {takes} takes",
                item.name
            ),
            Source::File(f) => format!(
                "one key per `KEY=VALUE` line of {f} (`kubectl create {create} {} --from-env-file={f}`), which `envFrom` takes",
                item.name
            ),
            Source::Text(_) | Source::Host { .. } => "one key per `KEY=VALUE` line of its text (`--from-env-file`), which `envFrom` takes".into(),
        });
    }
    out.warnings.push(
        Diagnostic::new(
            code,
            format!(
                "{} {:?} is the {object} {:?} on Kubernetes, which podc refers to but does not write; create it with {}",
                item.kind,
                item.name,
                item.name,
                if listed.len() == 1 && every {
                    listed.join(", ")
                } else {
                    format!("the keys {}", listed.join(", "))
                }
            ),
        )
        .at(path, None)
        .help(match item.kind {
            ItemKind::Config => format!("its data is {from}"),
            ItemKind::Secret => format!("its data is {from}; podc never writes a secret's value"),
        }),
    );
}

/// The app's `environmentFrom` as `envFrom`, in order (a later one wins on Kubernetes too,
/// and `env` wins over all). A `file` or `text` item the pod also takes whole would bring its
/// whole-file key, named like the item, in as one more variable: an error.
pub(super) fn env_from(pod: &Pod, a: &App, i: usize, out: &mut Out) -> Vec<core::EnvFromSource> {
    let mut all = Vec::new();
    for (j, e) in a.environment_from.iter().enumerate() {
        let whole = pod.apps.iter().any(|b| {
            b.files.iter().any(|f| f.item == e.item)
                || b.env_from
                    .values()
                    .any(|v| v.item == e.item && v.key.is_none())
        });
        let dir = matches!(pod.item(&e.item).map(|i| &i.source), Some(Source::Dir(_)));
        let var = format!("{}{}", e.prefix, e.item.name);
        if whole && !dir && crate::systemd::escape::is_env_name(&var) {
            out.errors.push(
                Diagnostic::new(
                    codes::KUBE_KEY_IS_NAME,
                    format!(
                        "on Kubernetes {} {:?} holds the whole file under the key {:?}, which `envFrom` would take as the variable {var}",
                        e.item.kind, e.item.name, e.item.name
                    ),
                )
                .at(format!("{}.environmentFrom[{j}]", app_path(i)), None)
                .help("give the `KEY=VALUE` file and the whole file as two items"),
            );
            continue;
        }
        let name = e.item.name.clone();
        let config = e.item.kind == ItemKind::Config;
        all.push(core::EnvFromSource {
            config_map_ref: config.then(|| core::ConfigMapEnvSource {
                name: name.clone(),
                optional: None,
            }),
            secret_ref: (!config).then_some(core::SecretEnvSource {
                name,
                optional: None,
            }),
            prefix: (!e.prefix.is_empty()).then(|| e.prefix.clone()),
        });
    }
    all
}
