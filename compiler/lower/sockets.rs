//! Published ports: the host's socket unit, the pod's sockets and the socket-proxyd services
//! that carry connections into a private network.

use super::units::*;
use crate::manifest::{Activation, Protocol};
use crate::pod::{Pod, Port};
use crate::systemd::escape;
use crate::tree::layout::unit_name;

/// Where systemd-socket-proxyd is in the pod (the host's /usr).
pub const SOCKET_PROXYD: &str = "/usr/lib/systemd/systemd-socket-proxyd";

pub(super) fn listen_directive(p: &Port) -> Directive {
    let key = match p.protocol {
        Protocol::Tcp => "ListenStream",
        Protocol::Udp => "ListenDatagram",
    };
    d(key, p.listen())
}

pub(super) fn host_socket(pod: &Pod) -> Option<HostSocket> {
    let socket: Vec<Directive> = pod.ports().map(|(_, p)| listen_directive(p)).collect();
    (!socket.is_empty()).then(|| HostSocket {
        file: format!("podc-{}.socket", pod.name),
        description: escape::verbatim(&format!("podc pod {}: published ports", pod.name)),
        socket,
    })
}

/// The name of the unit pair that proxies `port` to app `app`.
pub fn proxy_name(app: &str, port: u16) -> String {
    format!("podc-proxy-{app}-{port}")
}

/// Each app handed sockets gets `<app>.socket` (systemd gives its sockets to `<app>.service`),
/// each proxied port a socket of its own; every one has the very address of a host listener,
/// so that systemd in the pod adopts the descriptor it was handed rather than binding anew.
pub(super) fn pod_sockets(pod: &Pod) -> Vec<PodSocket> {
    let mut sockets = Vec::new();
    for a in &pod.apps {
        let own: Vec<Directive> = a
            .ports
            .iter()
            .filter(|p| p.activation == Activation::Socket)
            .map(listen_directive)
            .collect();
        if !own.is_empty() {
            sockets.push(PodSocket {
                name: [&a.name, ".socket"].concat(),
                description: escape::verbatim(&format!(
                    "podc pod {}: sockets of app {}",
                    pod.name, a.name
                )),
                socket: own,
            });
        }
        for p in a.ports.iter().filter(|p| p.activation == Activation::Proxy) {
            sockets.push(PodSocket {
                name: proxy_name(&a.name, p.port) + ".socket",
                description: escape::verbatim(&format!(
                    "podc pod {}: published port {} of app {}",
                    pod.name,
                    p.listen(),
                    a.name
                )),
                socket: vec![listen_directive(p)],
            });
        }
    }
    sockets
}

pub(super) fn proxies(pod: &Pod) -> Vec<ProxyService> {
    let mut out = Vec::new();
    for a in &pod.apps {
        for p in a.ports.iter().filter(|p| p.activation == Activation::Proxy) {
            // Started by the first connection, possibly while the app is still starting: wait
            // until something listens on the port in the pod's network (the kernel's socket
            // table; no tool beyond sh and grep), then forward.
            let wait = format!(
                "until grep -Eqs ':{:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6; do sleep 0.1; done",
                p.port
            );
            let app_unit = unit_name(&a.name);
            out.push(ProxyService {
                name: proxy_name(&a.name, p.port) + ".service",
                description: escape::verbatim(&format!(
                    "podc pod {}: forward published port {} to port {} of app {}",
                    pod.name,
                    p.listen(),
                    p.port,
                    a.name
                )),
                unit: vec![d("Requires", app_unit.clone()), d("After", app_unit)],
                service: vec![
                    d(
                        "ExecStartPre",
                        escape::exec_line(&["/usr/bin/sh".into(), "-c".into(), wait]),
                    ),
                    d(
                        "ExecStart",
                        escape::exec_line(&[SOCKET_PROXYD.into(), format!("127.0.0.1:{}", p.port)]),
                    ),
                    d("CapabilityBoundingSet", ""),
                    d("NoNewPrivileges", "yes"),
                    d("PrivateTmp", "yes"),
                ],
            });
        }
    }
    out
}
