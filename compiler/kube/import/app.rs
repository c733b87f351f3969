//! One container as an app.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, KeyRef, Lifecycle,
    LifecycleHandler, PortProtocol, RecursiveReadOnly, Resources, SeccompProfile, SecurityContext,
    VolumeMount,
};
use super::downward::Resource;
use crate::diag::codes;
use crate::diag::{nearest, Diagnostic};
use crate::kube::dollar::{expand, Var};
use crate::kube::out::capabilities_back;
use crate::manifest::ItemKind;
use crate::parse::source::{join_index, join_key};
use crate::pod::Filter;

/// A variable of the container for `$(NAME)`: its value when known at build.
fn var<'a>(env: &'a Map<String, Value>, name: &str) -> Var<'a> {
    match env.get(name) {
        Some(Value::String(s)) => Var::Known(s),
        Some(_) => Var::AtLaunch,
        None => Var::Undefined,
    }
}

/// The config item of a pod's variable from `spec.nodeName`: the host's name.
const NODE_NAME: &str = "node-name";

/// A container's securityContext with the pod's as its default: each field with whether it
/// is the container's own (`true`) or the pod's.
struct Security {
    run_as_user: Option<(Value, bool)>,
    run_as_group: Option<(Value, bool)>,
    run_as_non_root: Option<(bool, bool)>,
    seccomp_profile: Option<(SeccompProfile, bool)>,
    capabilities: Option<Capabilities>,
    allow_privilege_escalation: Option<bool>,
    read_only_root_filesystem: Option<bool>,
    cgroup_mount_mode: Option<String>,
}

/// Where a container is: its manifest path (`apps[1]`) and its document path.
struct Here<'a> {
    app_path: &'a str,
    path: &'a str,
}

impl Convert<'_> {
    fn with_pod_security(&self, c: Option<SecurityContext>) -> Security {
        let c = c.unwrap_or_default();
        let p = self.pod_security.as_ref();
        fn pick<T: Clone>(mine: Option<T>, pod: Option<&Option<T>>) -> Option<(T, bool)> {
            match mine {
                Some(v) => Some((v, true)),
                None => pod.and_then(|p| p.clone()).map(|v| (v, false)),
            }
        }
        Security {
            run_as_user: pick(c.run_as_user, p.map(|p| &p.run_as_user)),
            run_as_group: pick(c.run_as_group, p.map(|p| &p.run_as_group)),
            run_as_non_root: pick(c.run_as_non_root, p.map(|p| &p.run_as_non_root)),
            seccomp_profile: pick(c.seccomp_profile, p.map(|p| &p.seccomp_profile)),
            capabilities: c.capabilities,
            allow_privilege_escalation: c.allow_privilege_escalation,
            read_only_root_filesystem: c.read_only_root_filesystem,
            cgroup_mount_mode: c.cgroup_options.and_then(|o| o.mount_mode),
        }
    }

    pub(super) fn app(
        &mut self,
        app_path: &str,
        path: &str,
        c: Container,
        restart: &str,
        after: Vec<String>,
    ) -> Result<Map<String, Value>, Diagnostic> {
        let mut app = Map::new();
        let at = |rest: &str| join_key(path, rest);
        let podc = |rest: &str| join_key(app_path, rest);
        let here = Here { app_path, path };
        app.insert("name".into(), json!(c.name));

        app.insert("image".into(), json!(c.image));
        self.command(&here, c.command, c.args, &mut app)?;
        self.environment(&here, &c.name, c.env, c.env_from, &mut app)?;
        self.expand_command(&mut app);
        if let Some(dir) = c.working_dir {
            self.rename(podc("workingDirectory"), at("workingDir"));
            app.insert("workingDirectory".into(), json!(dir));
        }
        let mut isolators = Map::new();
        if let Some(r) = c.resources {
            self.resources(&here, r, &mut isolators)?;
        }
        let s = self.with_pod_security(c.security_context);
        self.security(&here, s, &mut app, &mut isolators)?;
        if !isolators.is_empty() {
            app.insert("isolators".into(), Value::Object(isolators));
        }
        self.mounts(&here, c.volume_mounts, &mut app)?;
        let probes = [
            ("livenessProbe", c.liveness_probe),
            ("startupProbe", c.startup_probe),
            ("readinessProbe", c.readiness_probe),
        ];
        self.health(path, app_path, probes, &c.ports, &mut app)?;
        if let Some(l) = c.lifecycle {
            self.lifecycle(&here, l, &mut app)?;
        }
        // On the host's network a container's ports are the host's: nothing to publish
        // (but for what `podc kube` wrote of a socket-activated one).
        if !self.host_network || self.legacy {
            self.ports(&here, c.ports, &mut app);
        }
        self.rename(podc("restart"), self.spec("restartPolicy"));
        app.insert("restart".into(), json!(restart));
        if !after.is_empty() {
            self.rename(podc("after"), path);
            app.insert("after".into(), json!(after));
        }
        Ok(app)
    }

    /// `command` and `args` as `exec`: the whole command line; `args` alone as `args`, the
    /// image's Entrypoint with them in place of its Cmd (an empty `args` is none, as
    /// Kubernetes reads it).
    fn command(
        &mut self,
        here: &Here,
        command: Option<Vec<String>>,
        args: Option<Vec<String>>,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        match (command, args) {
            (None, Some(args)) if args.is_empty() => {}
            (None, Some(args)) => {
                self.rename(podc("args"), at("args"));
                for i in 0..args.len() {
                    self.rename(join_index(&podc("args"), i), join_index(&at("args"), i));
                }
                app.insert("args".into(), json!(args));
            }
            (Some(command), args) => {
                let args = args.unwrap_or_default();
                self.rename(podc("exec"), at("command"));
                for i in 0..command.len() {
                    self.rename(join_index(&podc("exec"), i), join_index(&at("command"), i));
                }
                for i in 0..args.len() {
                    self.rename(
                        join_index(&podc("exec"), command.len() + i),
                        join_index(&at("args"), i),
                    );
                }
                let exec: Vec<String> = command.into_iter().chain(args).collect();
                app.insert("exec".into(), json!(exec));
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The kubelet's `$(NAME)` expansion of the command line, with the container's variables:
    /// podc runs the program with the arguments it would. An argument that refers to a
    /// variable read at launch stays as written, an `{expand: ...}` word: resolve puts in what
    /// is known and leaves the rest to systemd when the app starts.
    fn expand_command(&self, app: &mut Map<String, Value>) {
        let env = app
            .get("environment")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // Variables read at launch from a directory may have any name.
        let dirs = app.contains_key("environmentFrom");
        let lookup = |n: &str| match var(&env, n) {
            Var::Undefined if dirs && crate::systemd::escape::is_env_name(n) => Var::AtLaunch,
            v => v,
        };
        for key in ["exec", "args"] {
            let Some(Value::Array(list)) = app.get_mut(key) else {
                continue;
            };
            for item in list.iter_mut() {
                let Value::String(text) = item else { continue };
                match expand(text, lookup) {
                    Ok(v) => *text = v,
                    Err(_) => *item = json!({ "expand": text }),
                }
            }
        }
    }

    /// A variable's value that refers to a variable read at launch.
    fn at_launch(&self, at: &str, name: &str) -> Diagnostic {
        problem(
            self.doc,
            at,
            format!("`$({name})` refers to a variable podc reads when the pod launches: it cannot be written into this variable's value when the pod is built"),
        )
        .help(format!("let a shell read it: `sh -c '... \"${name}\"'`"))
    }

    /// `lifecycle` as `hooks`: exec handlers only (podc runs a hook in the app's unit).
    fn lifecycle(
        &mut self,
        here: &Here,
        l: Lifecycle,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let mut hooks = Map::new();
        for (key, handler) in [("postStart", l.post_start), ("preStop", l.pre_stop)] {
            let Some(h) = handler else { continue };
            let at = join_key(here.path, &join_key("lifecycle", key));
            match h {
                LifecycleHandler {
                    exec: Some(e),
                    http_get: None,
                    tcp_socket: None,
                    sleep: None,
                } => {
                    let mine = join_key(&join_key(here.app_path, "hooks"), key);
                    self.rename(&mine, join_key(&at, "exec.command"));
                    hooks.insert(key.into(), json!(e.command));
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &at,
                        "a lifecycle hook podc runs is an `exec` command (it runs in the app's unit); `httpGet`, `tcpSocket` and `sleep` handlers are not supported by podc",
                    ))
                }
            }
        }
        if !hooks.is_empty() {
            self.rename(
                join_key(here.app_path, "hooks"),
                join_key(here.path, "lifecycle"),
            );
            app.insert("hooks".into(), Value::Object(hooks));
        }
        Ok(())
    }

    /// `env` and `envFrom` as `environment` (`envFrom` first, `env` over it, as in
    /// Kubernetes); a name given twice in `env` is refused.
    fn environment(
        &mut self,
        here: &Here,
        container: &str,
        env_vars: Vec<EnvVar>,
        env_from: Vec<EnvFromSource>,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if env_vars.is_empty() && env_from.is_empty() {
            return Ok(());
        }
        let mut env = Map::new();
        self.rename(podc("environment"), at("env"));
        for (i, from) in env_from.iter().enumerate() {
            let here = join_index(&at("envFrom"), i);
            for (name, value) in self.env_from_all(from, &here)? {
                self.rename(join_key(&podc("environment"), &name), &here);
                env.insert(name, value);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in env_vars.into_iter().enumerate() {
            let here = join_index(&at("env"), i);
            if !seen.insert(e.name.clone()) {
                return Err(problem(
                    self.doc,
                    &join_key(&here, "name"),
                    format!("environment variable `{}` is given twice", e.name),
                ));
            }
            let mine = join_key(&podc("environment"), &e.name);
            self.rename(&mine, &here);
            let value = match (e.value, e.value_from) {
                // `$(NAME)` of a variable defined before it is its value, as the kubelet has it.
                (value, None) => {
                    let text = value.unwrap_or_default();
                    let expanded = expand(&text, |n| var(&env, n))
                        .map_err(|name| self.at_launch(&join_key(&here, "value"), &name))?;
                    Some(json!(expanded))
                }
                (None, Some(from)) => self.value_from(&mine, &here, from, container)?,
                (Some(_), Some(_)) => {
                    return Err(problem(
                        self.doc,
                        &join_key(&here, "valueFrom"),
                        format!("`{}` has both `value` and `valueFrom`", e.name),
                    ))
                }
            };
            match value {
                Some(v) => {
                    env.insert(e.name, v);
                }
                // An optional key that is missing leaves the variable unset.
                None => {
                    env.remove(&e.name);
                }
            }
        }
        if !env.is_empty() {
            app.insert("environment".into(), Value::Object(env));
        }
        let dirs = std::mem::take(&mut self.env_dirs);
        if !dirs.is_empty() {
            self.rename(podc("environmentFrom"), at("envFrom"));
            app.insert("environmentFrom".into(), Value::Array(dirs));
        }
        Ok(())
    }

    /// A variable's `valueFrom`: a key of a ConfigMap or Secret, a field of the pod, or a
    /// limit of the container; `None` for an optional key that is missing.
    fn value_from(
        &mut self,
        mine: &str,
        here: &str,
        from: EnvVarSource,
        container: &str,
    ) -> Result<Option<Value>, Diagnostic> {
        let at = join_key(here, "valueFrom");
        match from {
            EnvVarSource {
                config_map_key_ref: Some(r),
                secret_key_ref: None,
                field_ref: None,
                resource_field_ref: None,
            } => self.key_ref(mine, &at, ItemKind::Config, r),
            EnvVarSource {
                config_map_key_ref: None,
                secret_key_ref: Some(r),
                field_ref: None,
                resource_field_ref: None,
            } => self.key_ref(mine, &at, ItemKind::Secret, r),
            EnvVarSource {
                config_map_key_ref: None,
                secret_key_ref: None,
                field_ref: Some(f),
                resource_field_ref: None,
            } => {
                let at = join_key(&at, "fieldRef.fieldPath");
                if f.field_path == "spec.nodeName" {
                    // The host's name, read at launch.
                    let item = json!({"name": NODE_NAME, "file": "/etc/hostname"});
                    self.config_items.insert(NODE_NAME.into(), item);
                    return Ok(Some(json!({ "config": NODE_NAME })));
                }
                self.field_value(&f.field_path, &at).map(Some)
            }
            EnvVarSource {
                config_map_key_ref: None,
                secret_key_ref: None,
                field_ref: None,
                resource_field_ref: Some(r),
            } => {
                let at = join_key(&at, "resourceFieldRef");
                Ok(Some(match self.resource_value(&at, &r, container)? {
                    Resource::Text(t) => json!(t),
                    Resource::Host { resource, divisor } => {
                        json!({ "config": self.host_item(resource, &divisor) })
                    }
                }))
            }
            _ => Err(problem(
                self.doc,
                &at,
                "`valueFrom` needs exactly one of `configMapKeyRef`, `secretKeyRef`, `fieldRef` and `resourceFieldRef`",
            )),
        }
    }

    /// A `configMapKeyRef` or `secretKeyRef`.
    fn key_ref(
        &mut self,
        mine: &str,
        at: &str,
        kind: ItemKind,
        r: KeyRef,
    ) -> Result<Option<Value>, Diagnostic> {
        let field = match kind {
            ItemKind::Config => "configMapKeyRef",
            ItemKind::Secret => "secretKeyRef",
        };
        let at = join_key(at, field);
        if !self.legacy {
            return self.key_value(kind, &r, &at);
        }
        // A pod by `podc kube`: the key named like the item is its whole file.
        self.rename(join_key(mine, kind.name()), join_key(&at, "name"));
        self.rename(join_key(mine, "key"), join_key(&at, "key"));
        let mut value = json!({ kind.name(): r.name });
        if r.key != r.name {
            value["key"] = json!(r.key);
        }
        Ok(Some(value))
    }

    /// `resources`: the limits as podc's cpu and memory, the requests as its requests.
    fn resources(
        &mut self,
        here: &Here,
        r: Resources,
        isolators: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        for (part, l) in [("limits", &r.limits), ("requests", &r.requests)] {
            if let Some((key, _)) = l.as_ref().and_then(|l| l.other.iter().next()) {
                let path = join_key(&at(&format!("resources.{part}")), key);
                let why = if key.starts_with("hugepages-") {
                    "podc does not reserve huge pages for an app"
                } else if key.contains('/') {
                    "an extended resource (a device plugin's, such as a GPU) needs a cluster's device plugin; podc passes no devices into a pod"
                } else {
                    "podc limits cpu and memory"
                };
                return Err(Diagnostic::new(
                    codes::KUBE_UNSUPPORTED,
                    format!("the resource `{key}` is not supported by podc"),
                )
                .at(&path, self.doc.key(&path))
                .help(why));
            }
        }
        let l = r.limits.unwrap_or_default();
        if let Some(cpu) = l.cpu {
            self.rename(podc("isolators.cpu"), at("resources.limits.cpu"));
            isolators.insert("cpu".into(), cpu);
        }
        if let Some(memory) = l.memory {
            self.rename(podc("isolators.memory"), at("resources.limits.memory"));
            isolators.insert("memory".into(), memory);
        }
        let requests = r.requests.map(|r| (r.cpu, r.memory));
        let (cpu, memory) = requests.unwrap_or((None, None));
        // A request means what it means to the kubelet: podc's cpuRequest and memoryRequest.
        if let Some(cpu) = cpu {
            self.rename(podc("isolators.cpuRequest"), at("resources.requests.cpu"));
            isolators.insert("cpuRequest".into(), cpu);
        }
        if let Some(memory) = memory {
            self.rename(
                podc("isolators.memoryRequest"),
                at("resources.requests.memory"),
            );
            isolators.insert("memoryRequest".into(), memory);
        }
        Ok(())
    }

    /// `securityContext`: user, group, a read-only root, privilege escalation, capabilities and
    /// the seccomp profile.
    fn security(
        &mut self,
        here: &Here,
        s: Security,
        app: &mut Map<String, Value>,
        isolators: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        // A field the container leaves out, the pod's securityContext gives.
        let pod_security = self.spec("securityContext");
        let from = |mine: bool, rest: &str| {
            if mine {
                at(&join_key("securityContext", rest))
            } else {
                join_key(&pod_security, rest)
            }
        };
        if let Some((user, mine)) = s.run_as_user {
            self.rename(podc("user"), from(mine, "runAsUser"));
            if s.run_as_non_root.is_some_and(|(n, _)| n) && user.as_u64() == Some(0) {
                return Err(problem(
                    self.doc,
                    &from(mine, "runAsUser"),
                    "`runAsUser: 0` with `runAsNonRoot: true`: Kubernetes refuses to start this container",
                ));
            }
            app.insert("user".into(), user);
        } else if let Some((true, mine)) = s.run_as_non_root {
            let at = from(mine, "runAsNonRoot");
            return Err(problem(
                self.doc,
                &at,
                "`runAsNonRoot: true` without `runAsUser`: podc cannot check the image's user when it builds",
            )
            .help("give `runAsUser` (a uid other than 0), as the image's user would be"));
        }
        if let Some((group, mine)) = s.run_as_group {
            self.rename(podc("group"), from(mine, "runAsGroup"));
            app.insert("group".into(), group);
        }
        if let Some(ro) = s.read_only_root_filesystem {
            self.rename(
                podc("readOnlyRootfs"),
                at("securityContext.readOnlyRootFilesystem"),
            );
            app.insert("readOnlyRootfs".into(), json!(ro));
        }
        if let Some(escalate) = s.allow_privilege_escalation {
            self.rename(
                podc("isolators.noNewPrivileges"),
                at("securityContext.allowPrivilegeEscalation"),
            );
            isolators.insert("noNewPrivileges".into(), json!(!escalate));
        }
        if let Some(caps) = s.capabilities {
            let here = at("securityContext.capabilities");
            self.rename(podc("isolators.capabilities"), &here);
            self.rename(
                podc("isolators.capabilities.retain"),
                join_key(&here, "add"),
            );
            self.rename(
                podc("isolators.capabilities.remove"),
                join_key(&here, "drop"),
            );
            isolators.insert("capabilities".into(), self.capabilities(&here, &caps)?);
        }
        if let Some(mode) = s.cgroup_mount_mode {
            let here = at("securityContext.cgroupOptions.mountMode");
            self.rename(podc("isolators.cgroupMount"), &here);
            match mode.as_str() {
                // podc's default: the pod's cgroups, read-only.
                "ReadOnly" => {}
                "ReadWrite" => {
                    isolators.insert("cgroupMount".into(), json!("read-write"));
                }
                _ => {
                    return Err(problem(
                        self.doc,
                        &here,
                        "a cgroup mount mode is ReadOnly or ReadWrite",
                    ))
                }
            }
        }
        if let Some((profile, mine)) = s.seccomp_profile {
            let here = from(mine, "seccompProfile");
            self.seccomp_profile(&here, &podc("isolators"), profile, isolators)?;
        }
        Ok(())
    }

    /// `volumeMounts` as `mounts`: of a volume, or of a ConfigMap's or Secret's keys (each
    /// a file; with `subPath`, the one key).
    fn mounts(
        &mut self,
        here: &Here,
        volume_mounts: Vec<VolumeMount>,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if volume_mounts.is_empty() {
            return Ok(());
        }
        self.rename(podc("mounts"), at("volumeMounts"));
        let mut mounts: Vec<Value> = Vec::new();
        for (i, m) in volume_mounts.into_iter().enumerate() {
            let here = join_index(&at("volumeMounts"), i);
            let item = self.item_volumes.get(&m.name).cloned();
            let first = mounts.len();
            let mine = |n: usize| join_index(&podc("mounts"), n);
            // An empty subPath is Kubernetes' default: the whole volume (so is `.`).
            let sub_path = m
                .sub_path
                .clone()
                .filter(|s| s.split('/').any(|p| !p.is_empty() && p != "."));
            match (item, sub_path) {
                // A pod by `podc kube`: the item named like the key of its whole file.
                (Some(v), Some(sub))
                    if self.legacy && sub == v[0].object && m.read_only != Some(false) =>
                {
                    let v = &v[0];
                    self.rename(
                        join_key(&mine(first), v.kind.name()),
                        join_key(&here, "name"),
                    );
                    mounts.push(json!({v.kind.name(): v.object, "path": m.mount_path}));
                }
                (Some(v), _) if self.legacy => {
                    let v = &v[0];
                    return Err(problem(
                        self.doc,
                        &here,
                        format!("podc mounts a {} as one read-only file: this mount needs `subPath: {}` (the key of the whole file) and no `readOnly: false`", v.kind, v.object),
                    ));
                }
                (Some(v), sub) => {
                    if m.read_only == Some(false) {
                        let at = join_key(&here, "readOnly");
                        self.warnings.push(
                            Diagnostic::new(
                                codes::KUBE_IGNORED,
                                "`readOnly: false` ignored: podc mounts the files of a ConfigMap or Secret read-only, as Kubernetes does",
                            )
                            .at(&at, self.doc.key(&at)),
                        );
                    }
                    let shared = v.len() > 1;
                    for v in &v {
                        let files =
                            self.item_mounts(v, &m.mount_path, sub.as_deref(), &here, shared)?;
                        let first = mounts.len();
                        for n in first..first + files.len() {
                            self.rename(mine(n), &here);
                            self.rename(join_key(&mine(n), "path"), join_key(&here, "mountPath"));
                            self.rename(join_key(&mine(n), v.kind.name()), join_key(&here, "name"));
                        }
                        mounts.extend(files);
                    }
                    continue;
                }
                (None, sub) => {
                    let volume = self.volume_names.get(&m.name).cloned();
                    self.rename(join_key(&mine(first), "volume"), join_key(&here, "name"));
                    let mut mount =
                        json!({"volume": volume.unwrap_or(m.name), "path": m.mount_path});
                    if let Some(ro) = m.read_only {
                        mount["readOnly"] = json!(ro);
                    }
                    if let Some(sub) = sub {
                        let sub_at = join_key(&here, "subPath");
                        mount["subPath"] = json!(self.sub_path(&sub_at, &sub)?);
                        self.rename(join_key(&mine(first), "subPath"), sub_at);
                    }
                    // podc's read-only mounts are read-only all the way down: what Kubernetes
                    // calls recursive (`Enabled`, `IfPossible`); `Disabled` is not kept.
                    let disabled = m.recursive_read_only == Some(RecursiveReadOnly::Disabled);
                    if disabled && m.read_only == Some(true) {
                        let at = join_key(&here, "recursiveReadOnly");
                        self.warnings.push(
                            Diagnostic::new(
                                codes::KUBE_IGNORED,
                                "`recursiveReadOnly: Disabled` ignored: podc makes a read-only mount read-only all the way down",
                            )
                            .at(&at, self.doc.value(&at)),
                        );
                    }
                    mounts.push(mount);
                }
            }
            self.rename(mine(first), &here);
            self.rename(join_key(&mine(first), "path"), join_key(&here, "mountPath"));
        }
        app.insert("mounts".into(), Value::Array(mounts));
        Ok(())
    }

    /// A volume's `subPath` as podc writes it: a relative path without `..`, its empty and `.`
    /// parts dropped (Kubernetes joins it to the volume's path, which drops them too).
    fn sub_path(&self, at: &str, sub: &str) -> Result<String, Diagnostic> {
        let parts: Vec<&str> = sub
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if sub.starts_with('/') || parts.contains(&"..") {
            return Err(problem(
                self.doc,
                at,
                "a `subPath` is a relative path inside the volume, without `..`",
            ));
        }
        Ok(parts.join("/"))
    }

    /// `ports`.
    fn ports(
        &mut self,
        here: &Here,
        container_ports: Vec<ContainerPort>,
        app: &mut Map<String, Value>,
    ) {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if !container_ports.is_empty() {
            self.rename(podc("ports"), at("ports"));
            let mut ports = Vec::new();
            for (i, p) in container_ports.into_iter().enumerate() {
                let here = join_index(&at("ports"), i);
                let mine = join_index(&podc("ports"), i);
                self.rename(&mine, &here);
                self.rename(join_key(&mine, "port"), join_key(&here, "containerPort"));
                let mut port = json!({"port": p.container_port});
                if let Some(name) = p.name {
                    port["name"] = json!(name);
                }
                if let Some(host_port) = p.host_port {
                    port["hostPort"] = host_port;
                }
                if let Some(ip) = p.host_ip {
                    port["hostIP"] = json!(ip);
                }
                if let Some(protocol) = p.protocol {
                    port["protocol"] = json!(match protocol {
                        PortProtocol::TCP => "tcp",
                        PortProtocol::UDP => "udp",
                    });
                }
                ports.push(port);
            }
            app.insert("ports".into(), Value::Array(ports));
        }
    }

    /// `add` and `drop` against the runtime's default set, as podc's `retain` or `remove`.
    fn capabilities(&self, path: &str, caps: &Capabilities) -> Result<Value, Diagnostic> {
        let known: BTreeSet<&str> = crate::manifest::linux::CAPABILITIES
            .iter()
            .map(|c| c.trim_start_matches("CAP_"))
            .collect();
        // Runtimes take a name in any case, with or without `CAP_` (containerd upper-cases it).
        let name = |list: &str, i: usize, c: &str| -> Result<String, Diagnostic> {
            let upper = c.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            if known.contains(bare) {
                return Ok(format!("CAP_{bare}"));
            }
            let at = join_index(&join_key(path, list), i);
            let names: Vec<&str> = known.iter().copied().collect();
            let help = match nearest(bare, &names) {
                Some(near) => format!("did you mean `{near}`?"),
                None => {
                    "Kubernetes names capabilities without `CAP_`, like NET_BIND_SERVICE".into()
                }
            };
            Err(Diagnostic::new(
                codes::UNKNOWN_CAPABILITY,
                format!("unknown capability {c:?}"),
            )
            .at(&at, self.doc.value(&at))
            .help(help))
        };
        // `ALL` drops every capability; what else `drop` names changes nothing.
        let drop_all = caps.drop.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
        if drop_all {
            let retain = caps
                .add
                .iter()
                .enumerate()
                .map(|(i, c)| name("add", i, c))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(json!({ "retain": retain }));
        }
        let add = caps
            .add
            .iter()
            .enumerate()
            .map(|(i, c)| name("add", i, c))
            .collect::<Result<Vec<_>, _>>()?;
        let drop = caps
            .drop
            .iter()
            .enumerate()
            .map(|(i, c)| name("drop", i, c))
            .collect::<Result<Vec<_>, _>>()?;
        // Exactly the inverse `podc kube` writes against: the runtime's defaults, with `add`,
        // without `drop`, as the list of what is removed.
        Ok(match capabilities_back(&add, &drop) {
            Filter::Retain(list) => json!({ "retain": list }),
            Filter::Remove(list) => json!({ "remove": list }),
        })
    }
}
