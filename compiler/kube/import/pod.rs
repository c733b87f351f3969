//! The pod: its name, annotations, network, volumes and the containers in the order
//! Kubernetes runs them (init containers first, each after the ones before it).

use serde_json::{json, Map, Value};

use super::convert::ItemVolume;
use super::convert::{problem, Convert};
use super::doc::{
    DownwardApi, EmptyDir, HostAlias, ImageVolume, KubeVolume, PodSpec, Resources, RestartPolicy,
};
use super::meta::PodParts;
use super::stream::ConfigMap;
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::out::claim_name;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::manifest::{HostType, ItemKind};
use crate::parse::source::{join_index, join_key};
use std::collections::BTreeMap;

/// The config item of a pod's /etc/hosts when it has `hostAliases`.
const HOSTS: &str = "etc-hosts";

impl Convert<'_> {
    pub(super) fn manifest(&mut self, parts: PodParts, spec: PodSpec) -> Result<Value, Diagnostic> {
        let (mut name, mut annotations) = (parts.name, parts.annotations);
        // A Kubernetes name may have dots (a DNS subdomain); podc's name is a DNS label.
        if name.contains('.') {
            let dashed = name.replace('.', "-");
            self.warnings.push(
                Diagnostic::new(
                    codes::KUBE_NAME_CHANGED,
                    format!("pod `{name}` is named `{dashed}` on this host: podc's names (of its units, its tree) have no dots"),
                )
                .at("metadata.name", self.doc.value("metadata.name")),
            );
            name = dashed;
        }
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
        self.legacy = pod_extra.is_some() || apps_extra.is_some();
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
        if !parts.labels.is_empty() {
            self.rename("labels", join_key(meta, "labels"));
            pod.insert("labels".into(), json!(parts.labels));
        }
        self.host_network = spec.host_network == Some(true);
        self.pod_fields(&name, &parts.namespace, &parts.labels, &annotations);
        if let Some(ns) = parts.namespace {
            self.rename("namespace", "metadata.namespace");
            pod.insert("namespace".into(), json!(ns));
        }
        self.network_and_users(spec.host_users, &mut pod);

        let mut spec = spec;
        let security = spec.security_context.take();
        // `fsGroup`: every app is in the group, and the volumes the pod writes belong to it.
        let fs_group = security.as_ref().and_then(|s| s.fs_group.clone());
        let mut groups = security
            .as_ref()
            .and_then(|s| s.supplemental_groups.clone())
            .unwrap_or_default();
        groups.extend(fs_group.clone());
        let groups = Some(groups).filter(|g| !g.is_empty());
        self.pod_security = security;
        self.record_resources(&spec);
        let mut volumes = self.volumes(&name, &spec.volumes)?;
        if let Some(gid) = &fs_group {
            self.fs_group(&mut volumes, gid);
        }
        if self.legacy {
            self.unmounted_item_volume(&spec)?;
        }
        let resources = spec.resources.take();
        let aliases = std::mem::take(&mut spec.host_aliases);
        let mut apps = self.apps(spec, groups)?;
        if let Some(r) = resources {
            let isolators = self.pod_resources(r)?;
            pod.insert("isolators".into(), Value::Object(isolators));
        }
        if !aliases.is_empty() {
            self.host_aliases(&name, &aliases, &mut apps)?;
        }
        volumes.extend(std::mem::take(&mut self.dir_volumes).into_values());
        pod.insert("volumes".into(), Value::Array(volumes));
        pod.insert("apps".into(), Value::Array(apps));
        let items = std::mem::take(&mut self.config_items);
        if !items.is_empty() {
            pod.insert("config".into(), Value::Array(items.into_values().collect()));
        }
        let items = std::mem::take(&mut self.secret_items);
        if !items.is_empty() {
            pod.insert(
                "secrets".into(),
                Value::Array(items.into_values().collect()),
            );
        }
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

    /// The pod's network, its way out, and whose ids it runs with. Without `hostUsers`,
    /// podc's default (a user namespace of the pod's own), but for a pod on its node's
    /// network: Kubernetes refuses `hostUsers: false` there, so such a pod always had its
    /// node's ids (and may bind its node's ports below 1024).
    fn network_and_users(&mut self, host_users: Option<bool>, pod: &mut Map<String, Value>) {
        let network = if self.host_network { "host" } else { "private" };
        pod.insert("network".into(), json!(network));
        if !self.host_network {
            // Every Kubernetes pod can open connections out: a private pod with a way out.
            pod.insert("egress".into(), json!("nat"));
        }
        if let Some(users) = host_users.map(|h| ["private", "host"][usize::from(h)]) {
            self.rename("userNamespace", self.spec("hostUsers"));
            pod.insert("userNamespace".into(), json!(users));
        } else if self.host_network {
            self.rename("userNamespace", self.spec("hostNetwork"));
            pod.insert("userNamespace".into(), json!("host"));
        }
    }

    /// Each container's limits and requests, and the pod's limits, for `resourceFieldRef`.
    fn record_resources(&mut self, spec: &PodSpec) {
        let paths = (self.spec("containers"), self.spec("initContainers"));
        let containers = (spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (join_index(&paths.0, i), c)))
        .chain(
            spec.init_containers
                .iter()
                .enumerate()
                .map(|(i, c)| (join_index(&paths.1, i), c)),
        );
        for (path, c) in containers {
            let mut list = c.resource_list();
            // Ignored as a limit (podc does not cap disk use), but a `resourceFieldRef` gives it.
            for key in ["limits.ephemeral-storage", "requests.ephemeral-storage"] {
                let at = join_key(&join_key(&path, "resources"), key);
                // The map's look-up falls back to the nearest ancestor: only this key's own.
                let unquote = |t: &str| t.trim().trim_matches(['"', '\'']).to_string();
                let key_text = self.doc.key(&at).and_then(|s| self.doc.text(s));
                let own = key_text.is_some_and(|k| unquote(k) == "ephemeral-storage");
                let text = self.doc.value(&at).and_then(|s| self.doc.text(s));
                let text = text.filter(|_| own).map(unquote);
                list.push((key, text.map(Value::String)));
            }
            self.container_resources.insert(c.name.clone(), list);
        }
        let pod_limits = spec.resources.as_ref().and_then(|r| r.limits.as_ref());
        self.pod_limits = vec![
            ("limits.cpu", pod_limits.and_then(|l| l.cpu.clone())),
            ("limits.memory", pod_limits.and_then(|l| l.memory.clone())),
        ];
    }

    /// The init containers, then the containers, as apps in that order.
    fn apps(
        &mut self,
        spec: PodSpec,
        groups: Option<Vec<Value>>,
    ) -> Result<Vec<Value>, Diagnostic> {
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
            // A sidecar (an init container that restarts always) runs beside the containers,
            // which start once it has started.
            let sidecar = init && c.restart_policy == Some(RestartPolicy::Always);
            if c.restart_policy.is_some() && !sidecar {
                let at = join_key(&path, "restartPolicy");
                return Err(problem(
                    self.doc,
                    &at,
                    "a container's own `restartPolicy` is not supported by podc but for `Always` on an init container (a sidecar)",
                )
                .help("give the pod's `restartPolicy` instead"));
            }
            let restart = if sidecar {
                "always"
            } else if init {
                "no"
            } else {
                restart
            };
            let mut app = self.app(&app_path, &path, c, restart, after)?;
            // An init container runs to completion before the apps after it: an init app.
            if init && !sidecar {
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
        Ok(apps)
    }

    fn volumes(&mut self, pod: &str, volumes: &[KubeVolume]) -> Result<Vec<Value>, Diagnostic> {
        let mut out: Vec<Value> = Vec::new();
        for (i, v) in volumes.iter().enumerate() {
            let path = join_index(&self.spec("volumes"), i);
            // Whole ConfigMaps and Secrets read at launch, projected together: a volume.
            if let Some(volume) = self.projected_dirs(v, &path) {
                let podc = join_index("volumes", out.len());
                self.rename(&podc, &path);
                self.rename(
                    join_key(&podc, "sources"),
                    join_key(&path, "projected.sources"),
                );
                self.volume_names.insert(v.name.clone(), v.name.clone());
                out.push(volume);
                continue;
            }
            // A ConfigMap or Secret is config items or secrets of the pod, not a volume.
            if let Some(items) = self.item_volume(v, &path)? {
                self.item_volumes.insert(v.name.clone(), items);
                continue;
            }
            let podc = join_index("volumes", out.len());
            self.rename(&podc, &path);
            self.volume_names.insert(v.name.clone(), v.name.clone());
            if let Some(image) = &v.image {
                out.push(self.image_volume(&path, &podc, &v.name, image)?);
                continue;
            }
            match (&v.host_path, &v.empty_dir, &v.persistent_volume_claim) {
                (Some(h), None, None) => {
                    let host_type = self.host_type(&path, h.kind.as_deref())?;
                    self.rename(join_key(&podc, "source"), join_key(&path, "hostPath.path"));
                    self.rename(join_key(&podc, "kind"), join_key(&path, "hostPath"));
                    self.rename(join_key(&podc, "type"), join_key(&path, "hostPath.type"));
                    out.push(json!({"name": v.name, "kind": "host", "source": h.path, "type": host_type.name()}));
                }
                (None, Some(e), None) => out.push(self.empty_dir(&path, &podc, &v.name, e)?),
                (None, None, Some(c)) => {
                    // podc keeps a claim's data by pod and volume name: a claim named as
                    // `podc kube` names it is that volume's; any other claim is a volume named
                    // after the claim, so that every volume of the claim shares its data.
                    let name = if c.claim_name == claim_name(pod, &v.name) {
                        v.name.clone()
                    } else {
                        super::objects::item_name(&c.claim_name, "")
                    };
                    self.volume_names.insert(v.name.clone(), name.clone());
                    if out.iter().any(|o| o["name"] == json!(name)) {
                        // Another volume of the same claim: one podc volume.
                        self.renames.pop();
                        continue;
                    }
                    self.rename(
                        join_key(&podc, "kind"),
                        join_key(&path, "persistentVolumeClaim"),
                    );
                    self.rename(
                        join_key(&podc, "name"),
                        join_key(&path, "persistentVolumeClaim.claimName"),
                    );
                    let mut volume = json!({"name": name, "kind": "persistent"});
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
                            "volume `{}` needs exactly one of `hostPath`, `emptyDir`, `persistentVolumeClaim`, `image`, `configMap` and `secret`",
                            v.name
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// An image volume: podc's own, of the same reference (read as an app's image is).
    fn image_volume(
        &mut self,
        path: &str,
        podc: &str,
        name: &str,
        image: &ImageVolume,
    ) -> Result<Value, Diagnostic> {
        let Some(reference) = image.reference.as_ref().filter(|r| !r.is_empty()) else {
            return Err(problem(
                self.doc,
                &join_key(path, "image"),
                format!("image volume `{name}` needs a `reference`: podc has no default image"),
            ));
        };
        self.rename(join_key(podc, "kind"), join_key(path, "image"));
        self.rename(join_key(podc, "image"), join_key(path, "image.reference"));
        Ok(json!({"name": name, "kind": "image", "image": reference}))
    }

    /// A hostPath's `type` as podc's: unset (or empty) is `any`, as Kubernetes checks nothing
    /// then; a device is refused.
    fn host_type(&self, path: &str, kind: Option<&str>) -> Result<HostType, Diagnostic> {
        Ok(match kind.unwrap_or_default() {
            "" => HostType::Any,
            "Directory" => HostType::Directory,
            "DirectoryOrCreate" => HostType::DirectoryOrCreate,
            "File" => HostType::File,
            "FileOrCreate" => HostType::FileOrCreate,
            "Socket" => HostType::Socket,
            kind => {
                let at = join_key(path, "hostPath.type");
                let device = kind == "CharDevice" || kind == "BlockDevice";
                let d = problem(
                    self.doc,
                    &at,
                    format!("a hostPath of type `{kind}` is not supported by podc"),
                );
                return Err(if device {
                    d.help("podc passes no devices into a pod: an app could not open one")
                } else {
                    d.help("the types are Directory, DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice and BlockDevice")
                });
            }
        })
    }

    /// `fsGroup`: the volumes the pod writes belong to the group, group-writable and with
    /// the set-group-ID bit, as the kubelet makes them.
    fn fs_group(&mut self, volumes: &mut [Value], gid: &Value) {
        for v in volumes.iter_mut() {
            let default = match v["kind"].as_str() {
                Some("empty" | "memory") => "0777",
                Some("persistent") => "0755",
                _ => continue,
            };
            let mode = v["mode"].as_str().unwrap_or(default);
            let mode = u32::from_str_radix(mode, 8).unwrap_or(0o755) | 0o2070;
            v["gid"] = gid.clone();
            v["mode"] = json!(format!("{mode:04o}"));
        }
        for i in 0..volumes.len() {
            self.rename(
                join_key(&join_index("volumes", i), "gid"),
                self.spec("securityContext.fsGroup"),
            );
        }
    }

    /// Pod-level `resources`: the limits of the pod's own cgroup (cpu, memory, pids), and its
    /// CPU request as the weight the kubelet gives the pod's cgroup (shares of 1024 per CPU).
    fn pod_resources(&mut self, r: Resources) -> Result<Map<String, Value>, Diagnostic> {
        let base = self.spec("resources");
        let at = |rest: &str| join_key(&base, rest);
        self.rename("isolators", &base);
        let mut isolators = Map::new();
        let limits = r.limits.unwrap_or_default();
        for (key, value) in [("cpu", limits.cpu), ("memory", limits.memory)] {
            if let Some(v) = value {
                self.rename(join_key("isolators", key), at(&join_key("limits", key)));
                isolators.insert(key.into(), v);
            }
        }
        for (key, v) in limits.other {
            let here = at(&join_key("limits", &key));
            if key != "pids" {
                return Err(problem(
                    self.doc,
                    &here,
                    format!("the pod-level resource `{key}` is not supported by podc"),
                )
                .help("a pod's limits are `cpu`, `memory` and `pids`"));
            }
            self.rename("isolators.tasks", &here);
            let tasks = match &v {
                Value::String(s) => s.parse::<u64>().ok(),
                other => other.as_u64(),
            };
            let Some(tasks) = tasks else {
                return Err(problem(
                    self.doc,
                    &here,
                    "`pids` is a whole number of tasks",
                ));
            };
            isolators.insert("tasks".into(), json!(tasks));
        }
        let requests = r.requests.unwrap_or_default();
        if let Some(cpu) = requests.cpu {
            let here = at("requests.cpu");
            let text = match &cpu {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let millis = crate::manifest::quantity::millicores(&text).map_err(|e| {
                problem(
                    self.doc,
                    &here,
                    format!("a CPU request podc cannot read: {e}"),
                )
            })?;
            // The kubelet's MilliCPUToShares.
            let shares = (millis * 1024 / 1000).max(2);
            self.rename("isolators.cpuShares", &here);
            isolators.insert("cpuShares".into(), json!(shares));
        }
        if requests.memory.is_some() {
            let here = at("requests.memory");
            self.warnings.push(
                Diagnostic::new(
                    codes::KUBE_IGNORED,
                    "a pod-level memory request ignored: it reserves memory on a cluster's node; podc protects memory per app (`memoryRequest` of a container)",
                )
                .at(&here, self.doc.key(&here)),
            );
        }
        if let Some((key, _)) = requests.other.iter().next() {
            let here = at(&join_key("requests", key));
            return Err(problem(
                self.doc,
                &here,
                format!("the pod-level request `{key}` is not supported by podc"),
            ));
        }
        Ok(isolators)
    }

    /// `hostAliases`: every app's /etc/hosts is the one the kubelet writes, with the lines
    /// asked for (a config item of the pod mounted at /etc/hosts).
    fn host_aliases(
        &mut self,
        pod: &str,
        aliases: &[HostAlias],
        apps: &mut [Value],
    ) -> Result<(), Diagnostic> {
        let at = self.spec("hostAliases");
        let mut text = String::from(
            "# Kubernetes-managed hosts file (podc).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        if !self.host_network {
            text.push_str(&format!("127.0.0.1\t{pod}\n"));
        }
        text.push_str("\n# Entries added by HostAliases.\n");
        for (i, a) in aliases.iter().enumerate() {
            let here = join_index(&at, i);
            if a.ip.parse::<std::net::IpAddr>().is_err() {
                return Err(problem(
                    self.doc,
                    &join_key(&here, "ip"),
                    format!("`{}` is not an IP address", a.ip),
                ));
            }
            for (j, h) in a.hostnames.iter().enumerate() {
                let ok = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
                if !ok {
                    let at = join_index(&join_key(&here, "hostnames"), j);
                    return Err(problem(self.doc, &at, format!("`{h}` is not a host name")));
                }
            }
            text.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.join("\t")));
        }
        self.config_items
            .insert(HOSTS.into(), json!({"name": HOSTS, "text": text}));
        for (n, app) in apps.iter_mut().enumerate() {
            let mounts = app
                .as_object_mut()
                .expect("an app is an object")
                .entry("mounts")
                .or_insert_with(|| json!([]));
            let list = mounts.as_array_mut().expect("mounts is a list");
            if list.iter().any(|m| m["path"] == json!("/etc/hosts")) {
                continue;
            }
            let mine = join_index(&join_key(&join_index("apps", n), "mounts"), list.len());
            list.push(json!({"config": HOSTS, "path": "/etc/hosts"}));
            self.rename(mine, &at);
        }
        Ok(())
    }

    /// A file mode as Kubernetes reads it: a number, octal when written with a leading 0 (YAML
    /// 1.1, as Kubernetes' reader has it).
    fn octal(&self, at: &str, v: &Value) -> Result<u32, Diagnostic> {
        let text = self
            .doc
            .value(at)
            .and_then(|s| self.doc.text(s))
            .unwrap_or_default();
        // A YAML 1.2 reader takes `01777` for decimal (or text); Kubernetes for octal.
        let digits = match v {
            Value::Number(_) => text.trim(),
            _ => "",
        };
        let mode = match (digits.strip_prefix("0o"), digits.strip_prefix('0')) {
            (Some(octal), _) => u32::from_str_radix(octal, 8).ok(),
            (None, Some(octal)) if !octal.is_empty() => u32::from_str_radix(octal, 8).ok(),
            _ => v.as_u64().and_then(|n| u32::try_from(n).ok()),
        };
        mode.filter(|m| *m <= 0o7777).ok_or_else(|| {
            problem(
                self.doc,
                at,
                "a mode is a number of at most 0o7777 (07777 in YAML)",
            )
        })
    }

    /// The pod's own fields a variable may take by `fieldRef`.
    fn pod_fields(
        &mut self,
        name: &str,
        namespace: &Option<String>,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) {
        let f = &mut self.fields;
        f.insert("metadata.name".into(), name.into());
        let ns = namespace.clone().unwrap_or_else(|| "default".into());
        f.insert("metadata.namespace".into(), ns);
        for (k, v) in labels {
            f.insert(format!("metadata.labels['{k}']"), v.clone());
        }
        for (k, v) in annotations {
            f.insert(format!("metadata.annotations['{k}']"), v.clone());
        }
        if !self.host_network {
            // A private pod's network has loopback only: its one address.
            f.insert("status.podIP".into(), "127.0.0.1".into());
            f.insert("status.podIPs".into(), "127.0.0.1".into());
        }
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
        // Kubernetes makes an emptyDir writable by every user of the pod, unless told a mode.
        let mode = match &e.mode {
            Some(m) => self.octal(&join_key(path, "emptyDir.mode"), m)?,
            None => 0o777,
        };
        let mut volume = json!({"name": name, "kind": kind, "mode": format!("{mode:04o}")});
        let at = if e.mode.is_some() {
            "emptyDir.mode"
        } else {
            "emptyDir"
        };
        self.rename(join_key(podc, "mode"), join_key(path, at));
        match &e.size_limit {
            Some(size) if kind == "memory" => {
                self.rename(join_key(podc, "size"), join_key(path, "emptyDir.sizeLimit"));
                volume["size"] = size.clone();
            }
            // On disk the kubelet evicts a pod that writes more; podc does not cap it.
            Some(_) => {
                let at = join_key(path, "emptyDir.sizeLimit");
                self.warnings.push(
                    Diagnostic::new(
                        codes::KUBE_IGNORED,
                        "`sizeLimit` of an emptyDir on disk ignored: podc does not cap an app's disk use",
                    )
                    .at(&at, self.doc.key(&at)),
                );
            }
            None => {}
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

    /// A projected volume of whole ConfigMaps and Secrets (no `items`), each a directory
    /// read at launch (podc does not know its keys; two or more of them: one alone is its
    /// directory bound as it is), as a podc projected volume of `dir` items; of a pod by
    /// `podc kube`, of the items its podc/pod declares. `None` for any other volume.
    fn projected_dirs(&mut self, v: &KubeVolume, path: &str) -> Option<Value> {
        let mut whole = Vec::new();
        for s in &v.projected.as_ref()?.sources {
            match (&s.config_map, &s.secret, &s.downward_api) {
                (Some(c), None, None) if c.items.is_none() => {
                    whole.push((ItemKind::Config, c.name.clone(), c.optional, "configMap"))
                }
                (None, Some(c), None) if c.items.is_none() => {
                    whole.push((ItemKind::Secret, c.name.clone(), c.optional, "secret"))
                }
                _ => return None,
            }
        }
        let unknown = whole
            .iter()
            .all(|(kind, name, ..)| self.keys_unknown(*kind, name));
        if !self.legacy && (whole.len() < 2 || !unknown) {
            return None;
        }
        let mut sources = Vec::new();
        for (j, (kind, name, optional, field)) in whole.into_iter().enumerate() {
            let at = join_index(&join_key(path, "projected.sources"), j);
            let at = join_key(&join_key(&at, field), "name");
            let item = if self.legacy {
                name
            } else {
                self.dir_item(kind, &name, &at)
            };
            let mut source = json!({ kind.name(): item });
            if optional == Some(true) {
                source["optional"] = json!(true);
            }
            sources.push(source);
        }
        Some(json!({"name": v.name, "kind": "projected", "sources": sources}))
    }

    /// A volume of ConfigMaps', Secrets' or the pod's own fields as files: what of each the
    /// pod takes.
    fn item_volume(
        &mut self,
        v: &KubeVolume,
        path: &str,
    ) -> Result<Option<Vec<ItemVolume>>, Diagnostic> {
        let sources = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.persistent_volume_claim.is_some(),
            v.image.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.downward_api.is_some(),
            v.projected.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(problem(
                self.doc,
                path,
                format!("volume `{}` has more than one source", v.name),
            )
            .help("give one of `hostPath`, `emptyDir`, `persistentVolumeClaim`, `image`, `configMap`, `secret`, `downwardAPI` and `projected`"));
        }
        let mode = match (&v.config_map, &v.secret) {
            (Some(c), _) => c.default_mode.as_ref().map(|_| "configMap.defaultMode"),
            (_, Some(s)) => s.default_mode.as_ref().map(|_| "secret.defaultMode"),
            _ => None,
        };
        if let Some(field) = mode {
            let at = join_key(path, field);
            self.warnings.push(
                Diagnostic::new(
                    codes::KUBE_IGNORED,
                    "`defaultMode` ignored: podc's files of a ConfigMap or Secret are the app's own, readable by its user only",
                )
                .at(&at, self.doc.key(&at)),
            );
        }
        let items = if let Some(c) = &v.config_map {
            vec![ItemVolume::new(
                ItemKind::Config,
                &c.name,
                &c.items,
                c.optional,
            )]
        } else if let Some(s) = &v.secret {
            vec![ItemVolume::new(
                ItemKind::Secret,
                &s.secret_name,
                &s.items,
                s.optional,
            )]
        } else if let Some(d) = &v.downward_api {
            let at = join_key(path, "downwardAPI");
            vec![self.downward(&v.name, d, &at)?]
        } else if let Some(p) = &v.projected {
            let mut items = Vec::new();
            for (i, s) in p.sources.iter().enumerate() {
                let at = join_index(&join_key(path, "projected.sources"), i);
                if let Some(c) = &s.config_map {
                    items.push(ItemVolume::new(
                        ItemKind::Config,
                        &c.name,
                        &c.items,
                        c.optional,
                    ));
                } else if let Some(c) = &s.secret {
                    items.push(ItemVolume::new(
                        ItemKind::Secret,
                        &c.name,
                        &c.items,
                        c.optional,
                    ));
                } else if let Some(d) = &s.downward_api {
                    let name = format!("{}-{i}", v.name);
                    items.push(self.downward(&name, d, &join_key(&at, "downwardAPI"))?);
                } else {
                    return Err(
                        problem(self.doc, &at, "a projected source podc does not take")
                            .help("podc projects `configMap`, `secret` and `downwardAPI`"),
                    );
                }
            }
            items
        } else {
            return Ok(None);
        };
        Ok(Some(items))
    }

    /// A `downwardAPI` volume: its files' texts, as a ConfigMap of podc's own.
    fn downward(
        &mut self,
        volume: &str,
        d: &DownwardApi,
        at: &str,
    ) -> Result<ItemVolume, Diagnostic> {
        let mut data = BTreeMap::new();
        for (i, item) in d.items.iter().enumerate() {
            let at = join_index(&join_key(at, "items"), i);
            let text = match (&item.field_ref, &item.resource_field_ref) {
                (Some(f), None) => {
                    self.field_value(&f.field_path, &join_key(&at, "fieldRef.fieldPath"))?
                }
                (None, Some(r)) => {
                    let here = join_key(&at, "resourceFieldRef");
                    if r.container_name.is_none() {
                        return Err(problem(
                            self.doc,
                            &here,
                            "a `resourceFieldRef` in a volume needs `containerName`",
                        ));
                    }
                    match self.resource_value(&here, r, "")? {
                        super::downward::Resource::Text(t) => json!(t),
                        // Counted on the host at launch: a file of a config item of its own.
                        super::downward::Resource::Host { resource, divisor } => {
                            let mut host = json!({"host": resource.name()});
                            if let Some(d) = divisor {
                                host["divisor"] = json!(d);
                            }
                            let object = format!("{volume}-fields");
                            self.host_keys.insert((object, item.path.clone()), host);
                            json!("")
                        }
                    }
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &at,
                        "an item needs exactly one of `fieldRef` and `resourceFieldRef`",
                    ))
                }
            };
            data.insert(
                item.path.clone(),
                text.as_str().unwrap_or_default().to_string(),
            );
        }
        let object = format!("{volume}-fields");
        self.local_maps.insert(object.clone(), ConfigMap { data });
        Ok(ItemVolume::new(ItemKind::Config, &object, &None, None))
    }
}
