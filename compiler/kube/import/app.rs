//! One container as an app.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, Limits, PortProtocol, Resources,
    SeccompType, SecurityContext, VolumeMount,
};
use crate::diag::codes;
use crate::diag::{nearest, Diagnostic};
use crate::kube::out::capabilities_back;
use crate::parse::source::{join_index, join_key};
use crate::pod::Filter;

/// Where a container is: its manifest path (`apps[1]`) and its document path.
struct Here<'a> {
    app_path: &'a str,
    path: &'a str,
}

impl Convert<'_> {
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
        self.environment(&here, c.env, &mut app)?;
        if let Some(dir) = c.working_dir {
            self.rename(podc("workingDirectory"), at("workingDir"));
            app.insert("workingDirectory".into(), json!(dir));
        }
        let mut isolators = Map::new();
        if let Some(r) = c.resources {
            self.resources(&here, r, &mut isolators)?;
        }
        if let Some(s) = c.security_context {
            self.security(&here, s, &mut app, &mut isolators)?;
        }
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
        self.ports(&here, c.ports, &mut app);
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

    /// `env` as `environment`; a name given twice is refused.
    fn environment(
        &mut self,
        here: &Here,
        env_vars: Vec<EnvVar>,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if !env_vars.is_empty() {
            let mut env = Map::new();
            self.rename(podc("environment"), at("env"));
            for (i, e) in env_vars.into_iter().enumerate() {
                let here = join_index(&at("env"), i);
                if env.contains_key(&e.name) {
                    return Err(problem(
                        self.doc,
                        &join_key(&here, "name"),
                        format!("environment variable `{}` is given twice", e.name),
                    ));
                }
                let mine = join_key(&podc("environment"), &e.name);
                self.rename(&mine, &here);
                let value = match (e.value, e.value_from) {
                    (value, None) => json!(value.unwrap_or_default()),
                    (None, Some(from)) => self.env_from(&mine, &here, from)?,
                    (Some(_), Some(_)) => {
                        return Err(problem(
                            self.doc,
                            &join_key(&here, "valueFrom"),
                            format!("`{}` has both `value` and `valueFrom`", e.name),
                        ))
                    }
                };
                env.insert(e.name, value);
            }
            app.insert("environment".into(), Value::Object(env));
        }
        Ok(())
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
        let l = r.limits.unwrap_or(Limits {
            cpu: None,
            memory: None,
        });
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
        s: SecurityContext,
        app: &mut Map<String, Value>,
        isolators: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if let Some(user) = s.run_as_user {
            self.rename(podc("user"), at("securityContext.runAsUser"));
            app.insert("user".into(), user);
        }
        if let Some(group) = s.run_as_group {
            self.rename(podc("group"), at("securityContext.runAsGroup"));
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
        if let Some(profile) = s.seccomp_profile {
            let here = at("securityContext.seccompProfile");
            self.rename(podc("isolators.seccomp"), &here);
            match profile.kind {
                SeccompType::Unconfined => {}
                // The exact filter must come from `podc/apps`; checked after the merge.
                SeccompType::RuntimeDefault => {
                    isolators.insert("seccomp".into(), json!("RuntimeDefault"));
                }
                SeccompType::Localhost => {
                    return Err(problem(
                        self.doc,
                        &join_key(&here, "type"),
                        "a `Localhost` seccomp profile has no podc equivalent",
                    )
                    .help("podc's filters are lists of system calls in `podc/apps`"));
                }
            }
        }
        Ok(())
    }

    /// A `configMapKeyRef` or `secretKeyRef`: the key named like the item is its whole file.
    fn env_from(
        &mut self,
        mine: &str,
        here: &str,
        from: EnvVarSource,
    ) -> Result<Value, Diagnostic> {
        let (kind, field, r) = match (from.config_map_key_ref, from.secret_key_ref) {
            (Some(r), None) => ("config", "configMapKeyRef", r),
            (None, Some(r)) => ("secret", "secretKeyRef", r),
            _ => {
                return Err(problem(
                    self.doc,
                    &join_key(here, "valueFrom"),
                    "`valueFrom` needs exactly one of `configMapKeyRef` and `secretKeyRef`",
                ))
            }
        };
        let at = join_key(&join_key(here, "valueFrom"), field);
        self.rename(join_key(mine, kind), join_key(&at, "name"));
        self.rename(join_key(mine, "key"), join_key(&at, "key"));
        let mut value = json!({ kind: r.name });
        if r.key != r.name {
            value["key"] = json!(r.key);
        }
        Ok(value)
    }

    /// `volumeMounts` as `mounts`: of a volume, or (with `subPath`, the whole-file key) of a
    /// config item or secret.
    fn mounts(
        &mut self,
        here: &Here,
        volume_mounts: Vec<VolumeMount>,
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let at = |rest: &str| join_key(here.path, rest);
        let podc = |rest: &str| join_key(here.app_path, rest);
        if !volume_mounts.is_empty() {
            self.rename(podc("mounts"), at("volumeMounts"));
            let mut mounts = Vec::new();
            for (i, m) in volume_mounts.into_iter().enumerate() {
                let here = join_index(&at("volumeMounts"), i);
                let mine = join_index(&podc("mounts"), i);
                self.rename(&mine, &here);
                self.rename(join_key(&mine, "path"), join_key(&here, "mountPath"));
                let item = self.item_volumes.get(&m.name).cloned();
                let mut mount = match (item, m.sub_path) {
                    (None, None) => {
                        self.rename(join_key(&mine, "volume"), join_key(&here, "name"));
                        json!({"volume": m.name, "path": m.mount_path})
                    }
                    (Some((kind, name)), Some(sub)) if sub == name && m.read_only != Some(false) => {
                        self.rename(join_key(&mine, kind.name()), join_key(&here, "name"));
                        json!({kind.name(): name, "path": m.mount_path})
                    }
                    (Some((kind, name)), _) => {
                        return Err(problem(
                            self.doc,
                            &here,
                            format!("podc mounts a {kind} as one read-only file: this mount needs `subPath: {name}` (the key of the whole file) and no `readOnly: false`"),
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(problem(
                            self.doc,
                            &join_key(&here, "subPath"),
                            "`subPath` of a hostPath or emptyDir volume has no podc equivalent",
                        ))
                    }
                };
                if let Some(ro) = m.read_only.filter(|_| mount.get("volume").is_some()) {
                    mount["readOnly"] = json!(ro);
                }
                mounts.push(mount);
            }
            app.insert("mounts".into(), Value::Array(mounts));
        }
        Ok(())
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
        let name = |list: &str, i: usize, c: &str| -> Result<String, Diagnostic> {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
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
        let drop_all = caps.drop.iter().any(|c| c == "ALL");
        if drop_all {
            if caps.drop.len() > 1 {
                let at = join_key(path, "drop");
                return Err(problem(
                    self.doc,
                    &at,
                    "`drop` names `ALL` and more: podc reads `drop: [ALL]` with what `add` keeps",
                ));
            }
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
