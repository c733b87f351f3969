//! podc's own annotations on a Kubernetes object, `podc/pod` and `podc/apps`: read as JSON
//! and merged over what the Kubernetes fields gave, each path located inside the annotation.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use crate::diag::codes;
use crate::diag::{nearest, Diagnostic};
use crate::parse::source::{join_index, join_key, SourceMap};
use crate::parse::tidy;

impl Convert<'_> {
    /// A podc annotation's JSON object, and its document path.
    pub(super) fn annotation(
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

    /// Merges `podc/pod` over the pod: its keys are the manifest's, except `volumes`, which is
    /// an object keyed by volume name.
    pub(super) fn merge_pod(
        &mut self,
        pod: &mut Value,
        at: &str,
        mut extra: Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        const POD_KEYS: &[&str] = &[
            "allowHost",
            "appOrder",
            "config",
            "egress",
            "isolators",
            "networks",
            "secrets",
            "start",
            "target",
            "userNamespace",
            "volumes",
        ];
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
    pub(super) fn reorder(
        &mut self,
        pod: &mut Value,
        at: &str,
        order: &Value,
    ) -> Result<(), Diagnostic> {
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
    pub(super) fn merge_apps(
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
                // A weight given as such replaces the request read from `requests.cpu`.
                if theirs.contains_key("cpuWeight") || theirs.contains_key("cpuShares") {
                    mine.remove("cpuRequest");
                }
                for whole in ["capabilities", "seccomp", "syscallLog"] {
                    if theirs.contains_key(whole) {
                        mine.remove(whole);
                    }
                }
            }
            // The exact probe replaces the one read from the rounded probes.
            if v.get("health").is_some() {
                if let Some(a) = app.as_object_mut() {
                    a.remove("health");
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
    pub(super) fn shape(
        &mut self,
        name: &str,
        app_path: &str,
        app: &mut Value,
        entry: Value,
        at: &str,
    ) -> Result<Value, Diagnostic> {
        const APP_KEYS: &[&str] = &[
            "after",
            "group",
            "health",
            "restart",
            "supplementaryGroups",
            "user",
        ];
        const ISOLATOR_KEYS: &[&str] = &[
            "capabilities",
            "cgroupMount",
            "cpu",
            "cpuRequest",
            "cpuShares",
            "cpuWeight",
            "memory",
            "memoryRequest",
            "oomScoreAdj",
            "relax",
            "seccomp",
            "syscallArchitectures",
            "syscallLog",
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

    pub(super) fn runtime_default(&self, app: usize) -> Diagnostic {
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
pub(super) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}
