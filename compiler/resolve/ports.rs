//! Published ports: each port, and the ports of the pod together (network, activation,
//! clashes).

use std::collections::BTreeMap;

use super::checker::*;
use crate::diag::codes;
use crate::limits;
use crate::manifest::{self, IdOrName};
use crate::parse::source::{join_index, join_key};
use crate::pod::{self, App};
use crate::systemd::escape;

/// A port's own rules; `None` where one is broken (the pod-wide checks then skip it).
pub(super) fn resolve_port(c: &mut Checker, path: &str, p: &manifest::Port) -> Option<pod::Port> {
    use manifest::{Activation, Protocol};
    let mut ok = true;
    let mut number = |c: &mut Checker, key: &str, v: u64| match u16::try_from(v) {
        Ok(n) if n > 0 => n,
        _ => {
            c.value(
                codes::PORT_RANGE,
                &join_key(path, key),
                format!("{key} {v} is out of range 1..65535"),
            );
            ok = false;
            0
        }
    };
    let port = number(c, "port", p.port);
    let host_port = p.host_port.map_or(port, |h| number(c, "hostPort", h));
    let host_ip = match &p.host_ip {
        None => None,
        Some(text) => match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                c.value(
                    codes::HOST_IP,
                    &join_key(path, "hostIP"),
                    format!("hostIP {} is not an IPv4 or IPv6 address", show(text)),
                )
                .help = Some("leave it out to publish on every address of the host".into());
                ok = false;
                None
            }
        },
    };
    if let Some(name) = &p.name {
        if !is_port_name(name) {
            c.value(
                codes::PORT_NAME,
                &join_key(path, "name"),
                format!("port name {} is not a valid port name", show(name)),
            )
            .help = Some(
                "up to 15 lowercase letters, digits and single dashes between them, with at \
                 least one letter (a Kubernetes containerPort name)"
                    .into(),
            );
            ok = false;
        }
    }
    let protocol = p.protocol.unwrap_or(Protocol::Tcp);
    let activation = p.activation.unwrap_or(Activation::Proxy);
    let activation_path = join_key(path, "activation");
    match activation {
        Activation::Proxy if protocol == Protocol::Udp => {
            c.value(
                codes::UDP_PROXY,
                &activation_path,
                "a udp port cannot be proxied: systemd-socket-proxyd forwards tcp only",
            )
            .help = Some("write `activation: socket`: the app is handed the udp socket".into());
            ok = false;
        }
        Activation::Proxy => {}
        Activation::Socket => {
            if p.host_port.is_some() && host_port != port {
                c.value(
                    codes::SOCKET_HOST_PORT,
                    &join_key(path, "hostPort"),
                    format!(
                        "hostPort {host_port} differs from port {port}, but a socket-activated \
                         app is handed the host's socket itself"
                    ),
                )
                .help = Some("leave hostPort out, or make it equal to port".into());
                ok = false;
            }
        }
    }
    ok.then(|| pod::Port {
        name: p.name.clone(),
        port,
        host_port,
        host_ip,
        protocol,
        activation,
    })
}

/// A Kubernetes port name (IANA_SVC_NAME): 1 to 15 lowercase letters, digits and single
/// dashes between them, at least one letter.
pub(super) fn is_port_name(name: &str) -> bool {
    name.len() <= 15 && escape::is_name(name) && name.bytes().any(|b| b.is_ascii_lowercase())
}

/// The rules between ports and with the pod: no host address and port published twice, no
/// port proxied twice inside the pod, names unique, proxies only on a private network, a pod
/// started by connections has a port to be connected to.
/// A proxied port below 1024 of an app that is not root, in a pod with the host's ids: the
/// pod's network namespace is the host's user namespace's, where only root (or
/// CAP_NET_BIND_SERVICE) binds such a port. In a pod of its own user namespace the launcher
/// lets every id of the pod bind any port of the pod's network namespace (Docker does the same).
fn low_port_check(c: &mut Checker, path: &str, app: &App, p: &pod::Port) {
    let IdOrName::Id(uid) = app.user else {
        return;
    };
    if p.activation != manifest::Activation::Proxy || uid == 0 || p.port >= 1024 {
        return;
    }
    c.value(
        codes::PRIVILEGED_PORT,
        &join_key(path, "port"),
        format!(
            "the app runs as uid {uid}, which may not listen on port {} (below 1024) with the \
             host's ids",
            p.port
        ),
    )
    .help = Some(
        "let the app listen on a port from 1024 and publish it as any hostPort, hand it the \
         socket with `activation: socket`, or drop `userNamespace: host`"
            .into(),
    );
}

pub(super) fn check_ports(
    c: &mut Checker,
    written: &[manifest::App],
    apps: &[App],
    network: manifest::Network,
    start: manifest::Start,
    own_users: bool,
) {
    use manifest::Activation;
    let mut published: Vec<(&pod::Port, String)> = Vec::new();
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let mut total = 0;
    for (i, app) in apps.iter().enumerate() {
        let base = join_key(&join_index("apps", i), "ports");
        total += written.get(i).map_or(0, |a| a.ports.len());
        // An app some of whose ports have problems of their own is left out here (its kept
        // ports no longer line up with the manifest's).
        if written
            .get(i)
            .is_none_or(|a| a.ports.len() != app.ports.len())
        {
            continue;
        }
        for (j, p) in app.ports.iter().enumerate() {
            let path = join_index(&base, j);
            if p.activation == Activation::Proxy && network == manifest::Network::Host {
                let written = written[i].ports[j].activation.is_some();
                c.value(
                    codes::PROXY_ON_HOST_NETWORK,
                    &join_key(&path, "activation"),
                    if written {
                        "a proxied port needs the pod's own network (`network: private`)"
                    } else {
                        "this port is proxied (the default activation), which needs the pod's \
                         own network (`network: private`)"
                    },
                )
                .help = Some(
                    "on the host's network the app already listens on the host; publish it \
                     with `activation: socket`, or give the pod `network: private`"
                        .into(),
                );
            }
            if !own_users {
                low_port_check(c, &path, app, p);
            }
            let clash = published.iter().find(|(q, _)| {
                q.protocol == p.protocol
                    && q.host_port == p.host_port
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((q, other)) = clash {
                c.value(
                    codes::HOST_PORT_TWICE,
                    &join_key(
                        &path,
                        if p.host_port == p.port {
                            "port"
                        } else {
                            "hostPort"
                        },
                    ),
                    format!(
                        "host port {}/{} is already published by {other}",
                        p.host_port,
                        q.protocol.name()
                    ),
                );
            }
            let proxied_twice = p.activation == Activation::Proxy
                && published
                    .iter()
                    .any(|(q, _)| q.activation == Activation::Proxy && q.port == p.port);
            if proxied_twice {
                c.value(
                    codes::PROXIED_TWICE,
                    &join_key(&path, "port"),
                    format!(
                        "port {} is already proxied to in this pod; its apps share one network",
                        p.port
                    ),
                );
            }
            if let Some(name) = &p.name {
                if let Some(other) = names.insert(name, path.clone()) {
                    c.value(
                        codes::PORT_NAME_TWICE,
                        &join_key(&path, "name"),
                        format!("port name {} is already used by {other}", show(name)),
                    );
                }
            }
            published.push((p, path));
        }
    }
    if total > limits::MAX_ITEMS {
        c.key(
            codes::TOO_MANY,
            "apps",
            format!(
                "a pod may publish at most {} ports; this one has {total}",
                limits::MAX_ITEMS
            ),
        );
    }
    if start == manifest::Start::Connection && total == 0 {
        c.value(
            codes::START_WITHOUT_PORTS,
            "start",
            "`start: connection` starts the pod on a connection to a published port, and the pod \
             publishes none",
        )
        .help = Some("give an app `ports:`, or start the pod at boot (`start: boot`)".into());
    }
}

/// The ports of the host a private pod may connect to (`allowHost`): each in range and named
/// once, and only where the pod has a bridge to the host (`egress: nat` or `networks`), the
/// only way its packets reach the host at all.
pub(super) fn check_allow_host(
    c: &mut Checker,
    m: &manifest::Manifest,
    egress: manifest::Egress,
    networks: &[String],
) -> Vec<pod::HostPort> {
    if !m.allow_host.is_empty() && egress == manifest::Egress::None && networks.is_empty() {
        c.value(
            codes::ALLOW_HOST_WITHOUT_BRIDGE,
            "allowHost",
            "`allowHost` lets a private pod reach ports of the host over its bridge to the host, \
             and this pod has none (give it `egress: nat` or `networks`; a pod on the host's \
             network reaches the host already)",
        );
    }
    let mut out: Vec<pod::HostPort> = Vec::new();
    for (i, h) in m.allow_host.iter().enumerate() {
        let path = join_index("allowHost", i);
        let protocol = h.protocol.unwrap_or(manifest::Protocol::Tcp);
        let Some(port) = u16::try_from(h.port).ok().filter(|p| *p > 0) else {
            c.value(
                codes::ALLOW_HOST_PORT,
                &join_key(&path, "port"),
                format!("port {} is out of range 1..65535", h.port),
            );
            continue;
        };
        let hp = pod::HostPort { protocol, port };
        if out.contains(&hp) {
            c.value(
                codes::ALLOW_HOST_PORT,
                &path,
                format!("host port {hp} is allowed twice"),
            );
            continue;
        }
        out.push(hp);
    }
    out
}
