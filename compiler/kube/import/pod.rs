//! The pod: its name, annotations, network, volumes and the containers in the order
//! Kubernetes runs them (init containers first, each after the ones before it).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{EmptyDir, KubeVolume, PodSpec, RestartPolicy};
use crate::diag::Diagnostic;
use crate::kube::out::claim_name;
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

        let volumes = self.volumes(&name, &spec.volumes)?;
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
            // An init container runs to completion before the apps after it: an init app.
            // Retried or not, as the pod's restartPolicy says on Kubernetes, it restarts `no`
            // here unless podc/apps says otherwise.
            let restart = if init { "no" } else { restart };
            let mut app = self.app(&app_path, &path, c, restart, after)?;
            if init {
                app.insert("init".into(), json!(true));
            }
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

    fn volumes(&mut self, pod: &str, volumes: &[KubeVolume]) -> Result<Vec<Value>, Diagnostic> {
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
            match (&v.host_path, &v.empty_dir, &v.persistent_volume_claim) {
                (Some(h), None, None) => {
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
                (None, Some(e), None) => out.push(self.empty_dir(&path, &podc, &v.name, e)?),
                (None, None, Some(c)) => {
                    let want = claim_name(pod, &v.name);
                    if c.claim_name != want {
                        let at = join_key(&path, "persistentVolumeClaim.claimName");
                        return Err(problem(
                            self.doc,
                            &at,
                            format!(
                                "claim `{}` is not the one podc keeps for volume `{}` of pod `{pod}`",
                                c.claim_name, v.name
                            ),
                        )
                        .help(format!(
                            "podc keeps a persistent volume's data on the host by pod and volume name; name the claim `{want}`"
                        )));
                    }
                    self.rename(
                        join_key(&podc, "kind"),
                        join_key(&path, "persistentVolumeClaim"),
                    );
                    let mut volume = json!({"name": v.name, "kind": "persistent"});
                    if let Some(ro) = c.read_only {
                        self.rename(
                            join_key(&podc, "readOnly"),
                            join_key(&path, "persistentVolumeClaim.readOnly"),
                        );
                        volume["readOnly"] = json!(ro);
                    }
                    out.push(volume);
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &path,
                        format!(
                            "volume `{}` needs exactly one of `hostPath`, `emptyDir`, `persistentVolumeClaim`, `configMap` and `secret`",
                            v.name
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// An emptyDir: on disk, an empty volume; in memory, a memory volume of `sizeLimit`.
    fn empty_dir(
        &mut self,
        path: &str,
        podc: &str,
        name: &str,
        e: &EmptyDir,
    ) -> Result<Value, Diagnostic> {
        let kind = match e.medium.as_deref() {
            None | Some("") => "empty",
            Some("Memory") => "memory",
            Some(other) => {
                let at = join_key(path, "emptyDir.medium");
                return Err(problem(
                    self.doc,
                    &at,
                    format!("an emptyDir of medium `{other}` has no podc equivalent"),
                )
                .help("podc has emptyDirs on disk (no medium) and in memory (`medium: Memory`)"));
            }
        };
        let medium = if kind == "memory" {
            "emptyDir.medium"
        } else {
            "emptyDir"
        };
        self.rename(join_key(podc, "kind"), join_key(path, medium));
        let mut volume = json!({"name": name, "kind": kind});
        // A disk emptyDir's size limit is left to resolve, which refuses `size` there.
        if let Some(size) = &e.size_limit {
            self.rename(join_key(podc, "size"), join_key(path, "emptyDir.sizeLimit"));
            volume["size"] = size.clone();
        }
        Ok(volume)
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
        if v.host_path.is_some() || v.empty_dir.is_some() || v.persistent_volume_claim.is_some() {
            return Err(problem(
                self.doc,
                path,
                format!("volume `{}` needs exactly one of `hostPath`, `emptyDir`, `persistentVolumeClaim`, `configMap` and `secret`", v.name),
            ));
        }
        Ok(Some(item))
    }
}
