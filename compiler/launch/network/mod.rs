//! A private pod's way out (`egress: nat`) and the host networks pods share (`networks`): what
//! the launcher sets up on the host and in the pod's network namespace before it starts nspawn,
//! and takes down after.
//!
//! The host side is shared by the pods and exists only while one runs:
//! - the bridge `podc0` for the way out, holding the gateway address of the host's pod subnet
//!   (default 10.89.0.0/24; `/etc/podc/network.conf` may say `subnet = 10.77.0.0/24`); its
//!   ports are isolated from one another, so pods do not see each other there;
//! - a bridge `podc-<name>` per network pods share, on a /24 of its own from the networks'
//!   range (default 10.90.0.0/16; `networks = 10.78.0.0/16`), where they do see each other;
//! - the nftables table `inet podc`: pods on `podc0` may open connections out (masqueraded as
//!   the host's address on the way out), nothing may open one into a pod from elsewhere, a
//!   network's pods reach only each other, and no pod reaches the host itself (its services,
//!   on any of its addresses);
//! - IPv4 forwarding, turned on if it was off (and off again when the last pod leaves).
//!
//! Each pod gets a veth pair per bridge: the host's end `pv<hash><n>` a port of the bridge, the
//! other `eth<n>` in a network namespace the launcher makes and nspawn then runs in, with the
//! pod's address there (and, on `podc0`, a default route via the gateway). Each address is a
//! lease (`/run/podc/net/leases/<address>`: the pod, its veth, the bridge) taken under a lock.
//! The veths go with the pod's network namespace, so a pod that ended any way at all leaves
//! only leases whose veth is gone: the next launch, `podc status` or the pod's own end sweeps
//! them, and with a network's last pod its bridge, with the last pod of all the rest. Each
//! pod on a network has `/etc/hosts` naming every pod on its networks (rewritten in place, as
//! pods come and go, under the lock).

mod common;
mod host;
mod lease;

pub use common::*;
use common::{io_net, run, succeeds};
pub use host::*;
pub use lease::*;
use lease::{
    forget_host_ports, link_exists, network_subnet, remove_lease, rewrite_hosts, sweep,
    write_hosts, write_lease, Lock, FORWARDING,
};

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use crate::tree::plan::HostPort;

/// What a launch set up for a pod's network: undone by [`Joined::leave`].
#[derive(Debug)]
pub struct Joined {
    pub pod: String,
    pub leases: Vec<Lease>,
    /// The host's network namespace, to go back to before leaving.
    host_ns: OwnedFd,
}

/// One bridge a pod is to be a port of.
struct Attach {
    bridge: String,
    subnet: Subnet,
    /// `podc0`: isolated port, default route.
    way_out: bool,
}

/// Makes `bridge` with the gateway of `subnet` if it is missing.
fn ensure_bridge(bridge: &str, subnet: &Subnet) -> Result<(), NetError> {
    if !link_exists(bridge) {
        let gw = format!("{}/{}", subnet.gateway(), subnet.prefix);
        run("ip", &["link", "add", bridge, "type", "bridge"], None)?;
        run("ip", &["addr", "add", &gw, "dev", bridge], None)?;
        run("ip", &["link", "set", bridge, "up"], None)?;
    }
    Ok(())
}

/// The /24 of network `name`: the one recorded, else the first of the range no other network
/// has (recorded, its bridge made and its ports let through the table).
fn network(name: &str, c: &HostConfig, _lock: &Lock) -> Result<Subnet, NetError> {
    let bridge = network_bridge(name);
    let subnet = match network_subnet(name) {
        Some(s) => s,
        None => {
            let taken: Vec<Subnet> = fs::read_dir(Path::new(STATE_DIR).join("networks"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| network_subnet(&e.file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default();
            let count = 1u32 << (24 - c.networks.prefix);
            let s = (0..count)
                .map(|i| Subnet {
                    network: Ipv4Addr::from(u32::from(c.networks.network) + (i << 8)),
                    prefix: 24,
                })
                .find(|s| !taken.contains(s))
                .ok_or_else(|| NetError {
                    message: format!("every /24 of the networks' range {} is taken", c.networks),
                })?;
            let path = Path::new(STATE_DIR).join("networks").join(name);
            fs::write(&path, format!("{s}\n")).map_err(|e| io_net("write", &path, e))?;
            s
        }
    };
    ensure_bridge(&bridge, &subnet)?;
    let element = format!("{{ \"{bridge}\" . \"{bridge}\" }}");
    run(
        "nft",
        &["add", "element", "inet", TABLE, "intra", &element],
        None,
    )?;
    Ok(subnet)
}

/// Gives `pod` its network: with `way_out`, an address on `podc0`; one on each of `networks`;
/// the host's side of each; and a network namespace with the pod's ends in it, which this
/// process enters (nspawn, started next, runs the pod in it), where with `low_ports` every id
/// may bind a port below 1024.
pub fn join(
    pod: &str,
    way_out: bool,
    networks: &[String],
    allowed: &[HostPort],
    low_ports: bool,
) -> Result<Joined, NetError> {
    let c = host_config().map_err(|message| NetError { message })?;
    let lock = Lock::take()?;
    let live = sweep(&lock);
    if let Some(l) = live.iter().find(|l| l.pod == pod) {
        return Err(NetError {
            message: format!(
                "pod {} already has {} on {} (is it running?)",
                l.pod, l.address, l.bridge
            ),
        });
    }
    // The host's side.
    let forwarding =
        fs::read_to_string(FORWARDING).map_err(|e| io_net("read", Path::new(FORWARDING), e))?;
    if way_out && forwarding.trim() == "0" {
        let marker = Path::new(STATE_DIR).join("forwarding-was-off");
        fs::write(&marker, "").map_err(|e| io_net("write", &marker, e))?;
        fs::write(FORWARDING, "1\n").map_err(|e| io_net("write", Path::new(FORWARDING), e))?;
    }
    if !succeeds("nft", &["list", "table", "inet", TABLE]) {
        run("nft", &["-f", "-"], Some(&ruleset(&c.subnet)))?;
    }
    let mut attach = Vec::new();
    if way_out {
        ensure_bridge(BRIDGE, &c.subnet)?;
        attach.push(Attach {
            bridge: BRIDGE.into(),
            subnet: c.subnet,
            way_out: true,
        });
        fs::write(RESOLV, resolv_conf(&dns_servers()))
            .map_err(|e| io_net("write", Path::new(RESOLV), e))?;
    }
    for n in networks {
        attach.push(Attach {
            bridge: network_bridge(n),
            subnet: network(n, &c, &lock)?,
            way_out: false,
        });
    }
    // The leases first: whatever happens next, the sweep finds them (their veths missing).
    let mut leases: Vec<Lease> = Vec::new();
    for (i, a) in attach.iter().enumerate() {
        let address = a
            .subnet
            .hosts()
            .find(|h| !live.iter().chain(&leases).any(|l| l.address == *h))
            .ok_or_else(|| NetError {
                message: format!("every address of {} ({}) is taken", a.bridge, a.subnet),
            })?;
        let l = Lease {
            address,
            pod: pod.into(),
            veth: veth_name(pod, i),
            bridge: a.bridge.clone(),
            allowed: allowed.to_vec(),
        };
        write_lease(&l)?;
        leases.push(l);
    }
    // The host ports next, in the host's network namespace (`pairs` leaves this process in
    // the pod's).
    let allow = || -> Result<(), NetError> {
        for l in &leases {
            if let Some(elements) = l.host_port_elements() {
                run(
                    "nft",
                    &["add", "element", "inet", TABLE, "hostports", &elements],
                    None,
                )?;
            }
        }
        Ok(())
    };
    let made = allow()
        .and_then(|()| pairs(&attach, &leases))
        .and_then(|host_ns| {
            if low_ports {
                // In the pod's namespace now: the sysctl is the namespace's own.
                fs::write(UNPRIVILEGED_PORTS, "0\n")
                    .map_err(|e| io_net("write", Path::new(UNPRIVILEGED_PORTS), e))?;
            }
            Ok(host_ns)
        });
    match made {
        Ok(host_ns) => {
            let all: Vec<Lease> = live.iter().chain(&leases).cloned().collect();
            if !networks.is_empty() || !allowed.is_empty() {
                // Its own file first (nspawn binds it), then everyone's.
                write_hosts(pod, &all)?;
            }
            rewrite_hosts(&all);
            drop(lock);
            Ok(Joined {
                pod: pod.into(),
                leases,
                host_ns,
            })
        }
        Err(e) => {
            for l in &leases {
                forget_host_ports(l);
                if link_exists(&l.veth) {
                    let _ = run("ip", &["link", "del", &l.veth], None);
                }
                remove_lease(l);
            }
            sweep(&lock);
            Err(e)
        }
    }
}

/// The first port a process without CAP_NET_BIND_SERVICE may bind, in the network namespace
/// of the process that reads or writes it.
/// Gives a pod of its own user namespace on a private network without a way out or networks
/// its network namespace, with loopback only, which this process enters (nspawn, started next,
/// runs the pod in it): made here, as the host's root, so that every id of the pod may bind a
/// port below 1024 there (`net.ipv4.ip_unprivileged_port_start=0`), as on a network with a
/// way out. nspawn's `--private-network` would make it in the pod's user namespace, where only
/// the pod's root (and an app keeping CAP_NET_BIND_SERVICE as root) could. Nothing on the
/// host: the namespace ends with the pod's last process.
pub fn loopback_only() -> Result<(), NetError> {
    use rustix::thread::{unshare_unsafe, UnshareFlags};
    // SAFETY: as in `pairs`: podc launch has one thread when it calls this.
    unsafe { unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| NetError {
        message: format!("unshare the network namespace: {e}"),
    })?;
    run("ip", &["link", "set", "lo", "up"], None)?;
    fs::write(UNPRIVILEGED_PORTS, "0\n")
        .map_err(|e| io_net("write", Path::new(UNPRIVILEGED_PORTS), e))
}

const UNPRIVILEGED_PORTS: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";

/// The veth pairs, the pod's network namespace and its addresses and route; this process is
/// left in the pod's namespace. The host's namespace, to return to.
fn pairs(attach: &[Attach], leases: &[Lease]) -> Result<OwnedFd, NetError> {
    use rustix::thread::{
        move_into_link_name_space, unshare_unsafe, LinkNameSpaceType, UnshareFlags,
    };
    let ns_err = |what: &str, e: rustix::io::Errno| NetError {
        message: format!("{what}: {e}"),
    };
    for (a, l) in attach.iter().zip(leases) {
        let inner = [l.veth.as_str(), "c"].concat();
        run(
            "ip",
            &[
                "link", "add", &l.veth, "type", "veth", "peer", "name", &inner,
            ],
            None,
        )?;
        run("ip", &["link", "set", &l.veth, "master", &a.bridge], None)?;
        if a.way_out {
            // Pods on the way out's bridge do not reach each other: only the gateway.
            run(
                "ip",
                &[
                    "link",
                    "set",
                    &l.veth,
                    "type",
                    "bridge_slave",
                    "isolated",
                    "on",
                ],
                None,
            )?;
        }
        run("ip", &["link", "set", &l.veth, "up"], None)?;
    }
    let host_ns: OwnedFd = fs::File::open("/proc/self/ns/net")
        .map_err(|e| io_net("open", Path::new("/proc/self/ns/net"), e))?
        .into();
    // SAFETY: podc launch has one thread when it calls this (as for the mount namespace), so
    // no other thread is left in the host's network namespace relying on it; nspawn, started
    // from this thread, inherits the new one.
    unsafe { unshare_unsafe(UnshareFlags::NEWNET) }
        .map_err(|e| ns_err("unshare the network namespace", e))?;
    let pod_ns: OwnedFd = fs::File::open("/proc/self/ns/net")
        .map_err(|e| io_net("open", Path::new("/proc/self/ns/net"), e))?
        .into();
    move_into_link_name_space(host_ns.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| ns_err("enter the host's network namespace", e))?;
    let target = format!("/proc/{}/fd/{}", std::process::id(), pod_ns.as_raw_fd());
    for l in leases {
        let inner = [l.veth.as_str(), "c"].concat();
        run("ip", &["link", "set", &inner, "netns", &target], None)?;
    }
    move_into_link_name_space(pod_ns.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| ns_err("enter the pod's network namespace", e))?;
    run("ip", &["link", "set", "lo", "up"], None)?;
    for (i, (a, l)) in attach.iter().zip(leases).enumerate() {
        let inner = [l.veth.as_str(), "c"].concat();
        let eth = format!("eth{i}");
        let cidr = format!("{}/{}", l.address, a.subnet.prefix);
        run("ip", &["link", "set", &inner, "name", &eth], None)?;
        run("ip", &["addr", "add", &cidr, "dev", &eth], None)?;
        run("ip", &["link", "set", &eth, "up"], None)?;
        if a.way_out {
            let gw = a.subnet.gateway().to_string();
            run("ip", &["route", "add", "default", "via", &gw], None)?;
        }
    }
    Ok(host_ns)
}

impl Joined {
    /// Undoes [`join`] once the pod has ended: back to the host's network namespace, the veths
    /// removed (with their pod ends), the leases released, and what no pod uses any more swept.
    pub fn leave(self) -> Result<(), NetError> {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        move_into_link_name_space(self.host_ns.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
            |e| NetError {
                message: format!("enter the host's network namespace: {e}"),
            },
        )?;
        let lock = Lock::take()?;
        for l in &self.leases {
            forget_host_ports(l);
            if link_exists(&l.veth) {
                run("ip", &["link", "del", &l.veth], None)?;
            }
            remove_lease(l);
        }
        let _ = fs::remove_file(hosts_file(&self.pod));
        sweep(&lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_an_interface_name_and_differ_by_pod() {
        let a = veth_name("web", 0);
        let b = veth_name("db", 0);
        assert_eq!(a.len(), 11);
        assert_ne!(a, veth_name("web", 1));
        assert!(a.starts_with(VETH_PREFIX));
        assert_ne!(a, b);
        // The pod's end, before it is renamed eth0 in the pod, fits too.
        assert!([a.as_str(), "c"].concat().len() <= 15);
    }
}
