//! The pod: its name, annotations, network, volumes and the containers in the order
//! Kubernetes runs them (init containers first, each after the ones before it).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{KubeVolume, PodSpec, RestartPolicy};
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::manifest::ItemKind;
use crate::parse::source::{join_index, join_key};

impl Convert<'_> {
    pub(super) fn manifest(
        &mut self,
        name: String,
        mut annotations: BTreeMap<String, String>,
        spec: PodSpec,
    ) -> Result<Value, Diagnostic> {
        let meta = self.meta;
        let annotation_path = |key: &str| join_key(&join_key(meta, "annotations"), key);
        let pod_extra = annotations
            .remove(POD_ANNOTATION)
            .map(|text| self.annotation(&annotation_path(POD_ANNOTATION), &text))
            .transpose()?;
        let apps_extra = annotations
            .remove(APPS_ANNOTATION)
            .map(|text| self.annotation(&annotation_path(APPS_ANNOTATION), &text))
            .transpose()?;
        self.rename("", "");
        self.rename("podc", "apiVersion");
        self.rename("name", "metadata.name");
        self.rename("annotations", join_key(meta, "annotations"));
        self.rename("network", self.spec("hostNetwork"));
        self.rename("apps", self.spec("containers"));
        self.rename("volumes", self.spec("volumes"));

        let mut pod = Map::new();
        pod.insert("podc".into(), json!(1));
        pod.insert("name".into(), json!(name));
        if !annotations.is_empty() {
            pod.insert("annotations".into(), json!(annotations));
        }
        let network = if spec.host_network == Some(true) {
            "host"
        } else {
            "private"
        };
        pod.insert("network".into(), json!(network));

        let volumes = self.volumes(&spec.volumes)?;
        self.unmounted_item_volume(&spec)?;
        let groups = spec
            .security_context
            .and_then(|s| s.supplemental_groups)
            .filter(|g| !g.is_empty());
        let restart = match spec.restart_policy {
            Some(RestartPolicy::Never) => "no",
            Some(RestartPolicy::OnFailure) => "on-failure",
            // Kubernetes restarts a pod's containers unless told otherwise.
            Some(RestartPolicy::Always) | None => "always",
        };
        let mut apps = Vec::new();
        let init_names: Vec<String> = spec
            .init_containers
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let (init_path, containers_path) = (self.spec("initContainers"), self.spec("containers"));
        let all: Vec<_> = spec
            .init_containers
            .into_iter()
            .enumerate()
            .map(|(i, c)| (join_index(&init_path, i), c, true))
            .chain(
                spec.containers
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (join_index(&containers_path, i), c, false)),
            )
            .collect();
        for (n, (path, c, init)) in all.into_iter().enumerate() {
            // An init container starts after every one before it has finished, and the pod's
            // containers after all of them: Kubernetes runs init containers in order.
            let after = if init {
                init_names[..n].to_vec()
            } else {
                init_names.clone()
            };
            let app_path = join_index("apps", n);
            self.rename(&app_path, &path);
            let restart = if init { "no" } else { restart };
            let mut app = self.app(&app_path, &path, c, restart, after)?;
            if let Some(groups) = &groups {
                app.insert("supplementaryGroups".into(), json!(groups));
                self.rename(
                    join_key(&app_path, "supplementaryGroups"),
                    self.spec("securityContext.supplementalGroups"),
                );
            }
            apps.push(Value::Object(app));
        }
        pod.insert("volumes".into(), Value::Array(volumes));
        pod.insert("apps".into(), Value::Array(apps));
        let mut pod = Value::Object(pod);
        if let Some((at, extra)) = pod_extra {
            self.merge_pod(&mut pod, &at, extra)?;
        }
        if let Some((at, extra)) = apps_extra {
            self.merge_apps(&mut pod, &at, extra)?;
        }
        // A RuntimeDefault profile the annotation did not replace by the exact filter.
        let apps = pod["apps"].as_array().expect("apps is a list");
        if let Some(i) = apps
            .iter()
            .position(|app| app["isolators"]["seccomp"] == json!("RuntimeDefault"))
        {
            return Err(self.runtime_default(i));
        }
        Ok(pod)
    }

    fn volumes(&mut self, volumes: &[KubeVolume]) -> Result<Vec<Value>, Diagnostic> {
        let mut out = Vec::new();
        for (i, v) in volumes.iter().enumerate() {
            let path = join_index(&self.spec("volumes"), i);
            // A ConfigMap or Secret is a config item or secret of the pod, not a volume.
            if let Some(item) = self.item_volume(v, &path)? {
                self.item_volumes.insert(v.name.clone(), item);
                continue;
            }
            let podc = join_index("volumes", out.len());
            self.rename(&podc, &path);
            match (&v.host_path, &v.empty_dir) {
                (Some(h), None) => {
                    if let Some(kind) = h.kind.as_deref().filter(|k| !k.is_empty()) {
                        if kind != "Directory" {
                            let at = join_key(&path, "hostPath.type");
                            return Err(problem(
                                self.doc,
                                &at,
                                format!("a hostPath of type `{kind}` has no podc equivalent"),
                            )
                            .help("podc mounts host directories that exist: `type: Directory`"));
                        }
                    }
                    self.rename(join_key(&podc, "source"), join_key(&path, "hostPath.path"));
                    self.rename(join_key(&podc, "kind"), join_key(&path, "hostPath"));
                    out.push(json!({"name": v.name, "kind": "host", "source": h.path}));
                }
                (None, Some(_)) => {
                    self.rename(join_key(&podc, "kind"), join_key(&path, "emptyDir"));
                    out.push(json!({"name": v.name, "kind": "empty"}));
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &path,
                        format!(
                            "volume `{}` needs exactly one of `hostPath`, `emptyDir`, `configMap` and `secret`",
                            v.name
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// A ConfigMap or Secret volume no container mounts would be dropped: podc takes a config
    /// item or secret as a file only where an app mounts it.
    fn unmounted_item_volume(&self, spec: &PodSpec) -> Result<(), Diagnostic> {
        let mounted = |name: &str| {
            spec.containers
                .iter()
                .chain(&spec.init_containers)
                .any(|c| c.volume_mounts.iter().any(|m| m.name == name))
        };
        for (i, v) in spec.volumes.iter().enumerate() {
            if self.item_volumes.contains_key(&v.name) && !mounted(&v.name) {
                let path = join_index(&self.spec("volumes"), i);
                return Err(problem(
                    self.doc,
                    &path,
                    format!("volume `{}` (a ConfigMap or Secret) is mounted by no container: podc has no such volume of its own", v.name),
                )
                .help("mount it with `subPath` set to its name, or declare the item in podc/pod only"));
            }
        }
        Ok(())
    }

    /// A volume that is a ConfigMap or a Secret alone: the config item or secret it names.
    fn item_volume(
        &self,
        v: &KubeVolume,
        path: &str,
    ) -> Result<Option<(ItemKind, String)>, Diagnostic> {
        let item = match (&v.config_map, &v.secret) {
            (None, None) => return Ok(None),
            (Some(c), None) => (ItemKind::Config, c.name.clone()),
            (None, Some(s)) => (ItemKind::Secret, s.secret_name.clone()),
            (Some(_), Some(_)) => {
                return Err(problem(
                    self.doc,
                    path,
                    format!("volume `{}` has both `configMap` and `secret`", v.name),
                ))
            }
        };
        if v.host_path.is_some() || v.empty_dir.is_some() {
            return Err(problem(
                self.doc,
                path,
                format!("volume `{}` needs exactly one of `hostPath`, `emptyDir`, `configMap` and `secret`", v.name),
            ));
        }
        Ok(Some(item))
    }
}
