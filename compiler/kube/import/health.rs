//! A container's probes as the app's `health`: the handler (exec, httpGet, tcpSocket or grpc)
//! of its liveness probe (else its startup, else its readiness probe), its period, timeout and
//! failure threshold, and a start period from the startup probe (or the liveness probe's
//! initial delay).

use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{ContainerPort, KubeProbe};
use crate::diag::Diagnostic;
use crate::parse::source::{join_index, join_key};

impl Convert<'_> {
    pub(super) fn health(
        &mut self,
        path: &str,
        app_path: &str,
        probes: [(&str, Option<KubeProbe>); 3],
        ports: &[ContainerPort],
        app: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let [(_, liveness), (_, startup), (_, readiness)] = &probes;
        let Some((key, main)) = probes.iter().find_map(|(k, p)| p.as_ref().map(|p| (*k, p))) else {
            return Ok(());
        };
        let at = join_key(path, key);
        let mine = join_key(app_path, "health");
        self.rename(&mine, &at);
        for (k, p) in &probes {
            if p.as_ref()
                .is_some_and(|p| p.termination_grace_period_seconds.is_some())
            {
                let field = join_key(&join_key(path, k), "terminationGracePeriodSeconds");
                return Err(problem(
                    self.doc,
                    &field,
                    "a probe's own terminationGracePeriodSeconds has no podc equivalent",
                ));
            }
        }
        let mut health = self.handler(&at, main, ports)?;
        let timing = liveness
            .as_ref()
            .or(startup.as_ref())
            .or(readiness.as_ref());
        let timing = timing.expect("one probe is given");
        let period = timing.period_seconds.unwrap_or(10).max(1);
        health.insert("interval".into(), json!(format!("{period}s")));
        let timeout = timing.timeout_seconds.unwrap_or(1).max(1);
        health.insert("timeout".into(), json!(format!("{timeout}s")));
        if let Some(l) = liveness {
            health.insert("failures".into(), json!(l.failure_threshold.unwrap_or(3)));
        }
        // How long the first pass may take: the startup probe's whole budget, else the
        // liveness probe's initial delay and threshold; else podc's default.
        let start = match (startup, liveness) {
            (Some(s), _) => Some(
                s.initial_delay_seconds.unwrap_or(0)
                    + s.period_seconds.unwrap_or(10) * s.failure_threshold.unwrap_or(3),
            ),
            (None, Some(l)) if l.initial_delay_seconds.is_some_and(|d| d > 0) => Some(
                l.initial_delay_seconds.unwrap_or(0) + period * l.failure_threshold.unwrap_or(3),
            ),
            _ => None,
        };
        if let Some(s) = start {
            health.insert("startPeriod".into(), json!(format!("{}s", s.max(1))));
        }
        app.insert("health".into(), Value::Object(health));
        Ok(())
    }

    fn handler(
        &self,
        at: &str,
        p: &KubeProbe,
        ports: &[ContainerPort],
    ) -> Result<Map<String, Value>, Diagnostic> {
        let mut h = Map::new();
        if let Some(e) = &p.exec {
            h.insert("exec".into(), json!(e.command));
        } else if let Some(g) = &p.http_get {
            let here = join_key(at, "httpGet");
            let mut http = json!({ "port": self.port(&here, &g.port, ports)? });
            match g.scheme.as_deref() {
                None | Some("HTTP") => {}
                // podc's own client, as the kubelet's: any certificate, same-host redirects.
                Some("HTTPS") => http["scheme"] = json!("https"),
                Some(_) => {
                    return Err(problem(
                        self.doc,
                        &join_key(&here, "scheme"),
                        "a probe's scheme is HTTP or HTTPS",
                    ))
                }
            }
            if let Some(path) = &g.path {
                http["path"] = json!(path);
            }
            if let Some(host) = &g.host {
                http["host"] = json!(host);
            }
            if let Some(headers) = g.http_headers.as_ref().filter(|h| !h.is_empty()) {
                let mut map = Map::new();
                for (i, hd) in headers.iter().enumerate() {
                    if map.insert(hd.name.clone(), json!(hd.value)).is_some() {
                        let at = join_index(&join_key(&here, "httpHeaders"), i);
                        return Err(problem(
                            self.doc,
                            &at,
                            format!(
                                "the header `{}` is given twice: podc sends each header once",
                                hd.name
                            ),
                        ));
                    }
                }
                http["headers"] = Value::Object(map);
            }
            h.insert("http".into(), http);
        } else if let Some(t) = &p.tcp_socket {
            let here = join_key(at, "tcpSocket");
            let mut tcp = json!({ "port": self.port(&here, &t.port, ports)? });
            if let Some(host) = &t.host {
                tcp["host"] = json!(host);
            }
            h.insert("tcp".into(), tcp);
        } else if let Some(g) = &p.grpc {
            let here = join_key(&join_key(at, "grpc"), "port");
            if !g.port.is_number() {
                return Err(problem(
                    self.doc,
                    &here,
                    "a gRPC probe's port is a number (Kubernetes takes no port name there)",
                ));
            }
            let mut grpc = json!({ "port": g.port });
            if let Some(service) = &g.service {
                grpc["service"] = json!(service);
            }
            h.insert("grpc".into(), grpc);
        } else {
            return Err(problem(
                self.doc,
                at,
                "a probe podc runs is exec, httpGet, tcpSocket or grpc",
            ));
        }
        Ok(h)
    }

    /// A probe's port: a number, or the name of one of the container's ports.
    fn port(&self, at: &str, port: &Value, ports: &[ContainerPort]) -> Result<Value, Diagnostic> {
        let here = join_key(at, "port");
        match port {
            Value::Number(_) => Ok(port.clone()),
            Value::String(name) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port.clone())
                .ok_or_else(|| {
                    problem(
                        self.doc,
                        &here,
                        format!("the probe's port {name:?} names none of the container's ports"),
                    )
                }),
            _ => Err(problem(
                self.doc,
                &here,
                "a probe's port is a number or a port's name",
            )),
        }
    }
}
