//! Leases of pod addresses, the lock they are taken under, the pods' host names, and the
//! sweep of what ended pods left.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{io_net, network_bridge, run, succeeds, NetError, Subnet, BRIDGE, STATE_DIR, TABLE};

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

/// A lease: the address it is for, the pod, its veth and the bridge that veth is a port of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub pod: String,
    pub veth: String,
    pub bridge: String,
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
            })
        })
        .collect();
    out.sort_by_key(|l| l.address);
    out
}

pub(super) fn write_lease(l: &Lease) -> Result<(), NetError> {
    let path = lease_dir().join(l.address.to_string());
    fs::write(&path, format!("{}\n{}\n{}\n", l.pod, l.veth, l.bridge))
        .map_err(|e| io_net("write", &path, e))
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

/// The text of a pod's /etc/hosts: localhost, then every live lease on the pod's networks by
/// pod name (its own too), in address order.
pub fn hosts_text(pod: &str, live: &[Lease]) -> String {
    let mut out = String::from(
        "# Written by podc launch: the pods of this pod's networks, by name.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
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

/// Rewrites, in place (the file is bound into running pods), the hosts file of every pod on a
/// network that has a live lease.
pub(super) fn rewrite_hosts(live: &[Lease]) {
    let mut pods: Vec<&str> = live
        .iter()
        .filter(|l| l.bridge != BRIDGE)
        .map(|l| l.pod.as_str())
        .collect();
    pods.sort();
    pods.dedup();
    for pod in pods {
        let path = hosts_file(pod);
        if let Ok(mut f) = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
        {
            let _ = f.write_all(hosts_text(pod, live).as_bytes());
        }
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
    use super::*;

    #[test]
    fn hosts_name_the_pods_of_the_pods_networks_only() {
        let lease = |a: [u8; 4], pod: &str, bridge: &str| Lease {
            address: Ipv4Addr::from(a),
            pod: pod.into(),
            veth: veth_name(pod, 0),
            bridge: bridge.into(),
        };
        let live = [
            lease([10, 89, 0, 2], "web", BRIDGE),
            lease([10, 90, 0, 2], "web", "podc-backend"),
            lease([10, 90, 0, 3], "db", "podc-backend"),
            lease([10, 90, 1, 2], "other", "podc-front"),
        ];
        let text = hosts_text("db", &live);
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.90.0.2\tweb\n10.90.0.3\tdb\n"), "{text}");
        assert!(
            !text.contains("other") && !text.contains("10.89.0.2"),
            "{text}"
        );
        assert!(!hosts_text("lonely", &live).contains("10."));
    }
}
