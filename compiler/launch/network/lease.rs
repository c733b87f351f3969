//! Leases of pod addresses, the lock they are taken under, the pods' host names, and the
//! sweep of what ended pods left.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::manifest::Protocol;
use crate::tree::plan::HostPort;

use super::common::{
    io_net, network_bridge, run, succeeds, NetError, BRIDGE, NETWORK_PREFIX, STATE_DIR, TABLE,
};
use super::host::Subnet;

/// The lock every change of podc's host networking is made under; held until dropped.
pub(super) struct Lock {
    _held: fs::File,
}

impl Lock {
    pub(super) fn take() -> Result<Lock, NetError> {
        let dir = Path::new(STATE_DIR);
        for d in ["leases", "networks", "hosts"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| io_net("mkdir", dir, e))?;
        }
        let path = dir.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_net("open", &path, e))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_net("lock", &path, e.into()))?;
        Ok(Lock { _held: f })
    }
}

/// A lease: the address it is for, the pod, its veth, the bridge that veth is a port of, and
/// the ports of the host the address may reach (elements of the table's set `hostports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub pod: String,
    pub veth: String,
    pub bridge: String,
    pub allowed: Vec<HostPort>,
}

impl Lease {
    /// The elements of the set `hostports` the lease's host ports are: `{ A . tcp . 5432, ... }`;
    /// `None` without any.
    pub(super) fn host_port_elements(&self) -> Option<String> {
        if self.allowed.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .allowed
            .iter()
            .map(|h| format!("{} . {} . {}", self.address, h.protocol.name(), h.port))
            .collect();
        Some(format!("{{ {} }}", items.join(", ")))
    }
}

/// A lease's line of host ports back: `5432/tcp 53/udp`.
fn parse_host_ports(line: &str) -> Vec<HostPort> {
    line.split_whitespace()
        .filter_map(|w| {
            let (port, protocol) = w.split_once('/')?;
            let protocol = match protocol {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => return None,
            };
            Some(HostPort {
                protocol,
                port: port.parse().ok().filter(|p| *p > 0)?,
            })
        })
        .collect()
}

pub(super) fn lease_dir() -> PathBuf {
    Path::new(STATE_DIR).join("leases")
}

/// Every lease on the host, live or not.
pub fn leases() -> Vec<Lease> {
    let Ok(entries) = fs::read_dir(lease_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<Lease> = entries
        .flatten()
        .filter_map(|e| {
            let address = e.file_name().to_str()?.parse().ok()?;
            let text = fs::read_to_string(e.path()).ok()?;
            let mut lines = text.lines();
            Some(Lease {
                address,
                pod: lines.next()?.to_string(),
                veth: lines.next()?.to_string(),
                bridge: lines.next().unwrap_or(BRIDGE).to_string(),
                allowed: parse_host_ports(lines.next().unwrap_or_default()),
            })
        })
        .collect();
    out.sort_by_key(|l| l.address);
    out
}

pub(super) fn write_lease(l: &Lease) -> Result<(), NetError> {
    let path = lease_dir().join(l.address.to_string());
    let ports: Vec<String> = l.allowed.iter().map(HostPort::to_string).collect();
    let text = format!("{}\n{}\n{}\n{}\n", l.pod, l.veth, l.bridge, ports.join(" "));
    fs::write(&path, text).map_err(|e| io_net("write", &path, e))
}

pub(super) fn remove_lease(l: &Lease) {
    let _ = fs::remove_file(lease_dir().join(l.address.to_string()));
}

pub(super) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The /24 a network's bridge has, recorded when it was made: `networks/<name>`.
pub(super) fn network_subnet(name: &str) -> Option<Subnet> {
    let text = fs::read_to_string(Path::new(STATE_DIR).join("networks").join(name)).ok()?;
    Subnet::parse(text.trim()).ok()
}

/// The pods' host names file of `pod` (bound at its /etc/hosts).
pub fn hosts_file(pod: &str) -> PathBuf {
    Path::new(STATE_DIR).join("hosts").join(pod)
}

pub use crate::tree::layout::HOST_NAME;

/// The text of a pod's /etc/hosts: localhost, the host as [`HOST_NAME`] at `host` (its
/// address on the pod's first bridge), then every live lease on the pod's networks by pod
/// name (its own too), in address order.
pub fn hosts_text(pod: &str, live: &[Lease], host: Option<Ipv4Addr>) -> String {
    let mut out = String::from(
        "# Written by podc launch: the host and the pods of this pod's networks, by name.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    if let Some(host) = host {
        out.push_str(&format!("{host}\t{HOST_NAME}\n"));
    }
    let bridges: Vec<&str> = live
        .iter()
        .filter(|l| l.pod == pod && l.bridge != BRIDGE)
        .map(|l| l.bridge.as_str())
        .collect();
    for l in live
        .iter()
        .filter(|l| l.bridge != BRIDGE && bridges.contains(&l.bridge.as_str()))
    {
        out.push_str(&format!("{}\t{}\n", l.address, l.pod));
    }
    out
}

/// The host's address on the bridge of lease `l`: its subnet's gateway.
pub(super) fn gateway(l: &Lease) -> Option<Ipv4Addr> {
    let subnet = match l.bridge.strip_prefix(NETWORK_PREFIX) {
        Some(name) => network_subnet(name)?,
        None => super::host::host_subnet().ok()?,
    };
    Some(subnet.gateway())
}

/// Writes `pod`'s hosts file from `live`, in place (the file is bound into the running pod).
pub(super) fn write_hosts(pod: &str, live: &[Lease]) -> Result<(), NetError> {
    let host = live.iter().find(|l| l.pod == pod).and_then(gateway);
    let path = hosts_file(pod);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io_net("open", &path, e))?;
    f.write_all(hosts_text(pod, live, host).as_bytes())
        .map_err(|e| io_net("write", &path, e))
}

/// Rewrites the hosts file of every pod with a live lease that has one (a pod on a network,
/// or one allowed to reach ports of the host).
pub(super) fn rewrite_hosts(live: &[Lease]) {
    let mut pods: Vec<&str> = live.iter().map(|l| l.pod.as_str()).collect();
    pods.sort();
    pods.dedup();
    for pod in pods {
        if hosts_file(pod).exists() {
            let _ = write_hosts(pod, live);
        }
    }
}

/// Takes the host ports of `l` out of the table (nothing where it has none, or where the
/// table is gone already).
pub(super) fn forget_host_ports(l: &Lease) {
    if let Some(elements) = l.host_port_elements() {
        let _ = run(
            "nft",
            &["delete", "element", "inet", TABLE, "hostports", &elements],
            None,
        );
    }
}

/// Removes the leases whose veth is gone (their pods ended), the bridge of a network without
/// a live lease, and with the last lease `podc0`, the table and the forwarding podc turned on.
/// Under the lock.
pub(super) fn sweep(_lock: &Lock) -> Vec<Lease> {
    let mut live = Vec::new();
    for l in leases() {
        if link_exists(&l.veth) {
            live.push(l);
        } else {
            forget_host_ports(&l);
            remove_lease(&l);
            let _ = fs::remove_file(hosts_file(&l.pod));
        }
    }
    let state = Path::new(STATE_DIR);
    if let Ok(entries) = fs::read_dir(state.join("networks")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let bridge = network_bridge(&name);
            if !live.iter().any(|l| l.bridge == bridge) {
                if link_exists(&bridge) {
                    let _ = run("ip", &["link", "del", &bridge], None);
                }
                let element = format!("{{ \"{bridge}\" . \"{bridge}\" }}");
                let _ = run(
                    "nft",
                    &["delete", "element", "inet", TABLE, "intra", &element],
                    None,
                );
                let _ = fs::remove_file(e.path());
            }
        }
    }
    if live.is_empty() {
        if link_exists(BRIDGE) {
            let _ = run("ip", &["link", "del", BRIDGE], None);
        }
        if succeeds("nft", &["list", "table", "inet", TABLE]) {
            let _ = run("nft", &["delete", "table", "inet", TABLE], None);
        }
        let marker = state.join("forwarding-was-off");
        if marker.exists() {
            let _ = fs::write(FORWARDING, "0\n");
            let _ = fs::remove_file(marker);
        }
    }
    rewrite_hosts(&live);
    live
}

/// Sweeps what ended pods left (see [`sweep`]): for `podc status` and the like. Nothing to do
/// (and no lock taken) on a host where podc never networked a pod.
pub fn tidy() -> Result<Vec<Lease>, NetError> {
    if !Path::new(STATE_DIR).exists() {
        return Ok(Vec::new());
    }
    let lock = Lock::take()?;
    Ok(sweep(&lock))
}

pub(super) const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

#[cfg(test)]
mod tests {
    use super::super::common::veth_name;
    use super::*;

    #[test]
    fn host_ports_are_set_elements_and_read_back() {
        let allowed = parse_host_ports("5432/tcp 53/udp 0/tcp 70000/tcp 80/sctp");
        assert_eq!(
            allowed,
            [
                HostPort {
                    protocol: Protocol::Tcp,
                    port: 5432
                },
                HostPort {
                    protocol: Protocol::Udp,
                    port: 53
                }
            ]
        );
        let l = Lease {
            address: Ipv4Addr::new(10, 89, 0, 2),
            pod: "web".into(),
            veth: veth_name("web", 0),
            bridge: BRIDGE.into(),
            allowed,
        };
        assert_eq!(
            l.host_port_elements().as_deref(),
            Some("{ 10.89.0.2 . tcp . 5432, 10.89.0.2 . udp . 53 }")
        );
        let written: Vec<String> = l.allowed.iter().map(HostPort::to_string).collect();
        assert_eq!(parse_host_ports(&written.join(" ")), l.allowed);
        let none = Lease {
            allowed: Vec::new(),
            ..l
        };
        assert_eq!(none.host_port_elements(), None);
    }

    #[test]
    fn hosts_name_the_pods_of_the_pods_networks_only() {
        let lease = |a: [u8; 4], pod: &str, bridge: &str| Lease {
            address: Ipv4Addr::from(a),
            pod: pod.into(),
            veth: veth_name(pod, 0),
            bridge: bridge.into(),
            allowed: Vec::new(),
        };
        let live = [
            lease([10, 89, 0, 2], "web", BRIDGE),
            lease([10, 90, 0, 2], "web", "podc-backend"),
            lease([10, 90, 0, 3], "db", "podc-backend"),
            lease([10, 90, 1, 2], "other", "podc-front"),
        ];
        let text = hosts_text("db", &live, Some(Ipv4Addr::new(10, 90, 0, 1)));
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.90.0.2\tweb\n10.90.0.3\tdb\n"), "{text}");
        assert!(
            !text.contains("other") && !text.contains("10.89.0.2"),
            "{text}"
        );
        assert!(text.contains("10.90.0.1\thost.podc.internal\n"), "{text}");
        assert!(!hosts_text("lonely", &live, None).contains("10."));
    }
}
