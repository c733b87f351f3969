//! A private pod's way out (`egress: nat`): what the launcher sets up on the host and in the
//! pod's network namespace before it starts nspawn, and takes down after.
//!
//! The host side is shared by every such pod and exists only while one runs:
//! - the bridge `podc0`, holding the gateway address of the host's pod subnet (default
//!   10.89.0.0/24; `/etc/podc/network.conf` may name another, `subnet = 10.77.0.0/24`);
//! - the nftables table `inet podc`: pods may open connections out (masqueraded as the host's
//!   address on the way out), nothing may open one into them, and they may not reach the host
//!   itself (its own services, on any of its addresses);
//! - IPv4 forwarding, turned on if it was off (and off again when the last pod leaves).
//!
//! Each pod gets a veth pair: one end, `pv<hash>`, a port of `podc0` isolated from the other
//! pods' ports (pods do not see each other); the other, `eth0` in a network namespace the
//! launcher makes and nspawn then runs in, with the pod's address and a default route via the
//! gateway. Its lease (`/run/podc/net/leases/<address>`: the pod and its veth) is taken under a
//! lock. The veth goes with the pod's network namespace, so a pod that ended any way at all
//! leaves only a lease whose veth is gone: the next launch, `podc status` or the pod's own end
//! sweeps such leases, and with the last one the bridge, the table and the forwarding.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the pod's way out could not be set up or taken down (the launcher reports it as a
/// launch error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NetError {
    pub message: String,
}

/// The host's bridge for pods with a way out.
pub const BRIDGE: &str = "podc0";
/// The nftables table (family `inet`) of podc's rules.
pub const TABLE: &str = "podc";
/// The subnet when the host's configuration names none.
pub const DEFAULT_SUBNET: &str = "10.89.0.0/24";
/// The host's configuration of pod networking (`subnet = A.B.C.D/N`).
pub const CONFIG: &str = "/etc/podc/network.conf";
/// Leases, the lock and the pods' resolv.conf; on the host's /run, so gone at reboot.
pub const STATE_DIR: &str = "/run/podc/net";
/// The pods' `/etc/resolv.conf`: the host's DNS servers.
pub const RESOLV: &str = "/run/podc/net/resolv.conf";
/// The interface name prefix of podc's veth ends on the host (`pv` + 8 hex digits).
pub const VETH_PREFIX: &str = "pv";

/// A pod subnet: its network address and prefix length (16 to 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not an IPv4 subnet like 10.89.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (16..=28).contains(p))
            .ok_or_else(|| format!("prefix /{prefix} is not one of /16 to /28"))?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(addr) & !mask != 0 {
            return Err(format!(
                "{text} has host bits set (the subnet's first address, please)"
            ));
        }
        if !addr.is_private() {
            return Err(format!("{text} is not a private range (RFC 1918)"));
        }
        Ok(Subnet {
            network: addr,
            prefix,
        })
    }

    /// The host's side of the subnet: its first address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The addresses pods get, in order: after the gateway, before the broadcast address.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let last = u32::from(self.network) + (1u32 << (32 - self.prefix)) - 2;
        (first..=last).map(Ipv4Addr::from)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(a) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The host's pod subnet: from [`CONFIG`] if it names one, else [`DEFAULT_SUBNET`].
pub fn host_subnet() -> Result<Subnet, String> {
    let text = match fs::read_to_string(CONFIG) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{CONFIG}: {e}")),
    };
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.split_once('=') {
            Some((k, v)) if k.trim() == "subnet" => {
                return Subnet::parse(v.trim().trim_matches('"'))
                    .map_err(|e| format!("{CONFIG}:{}: {e}", i + 1));
            }
            _ => {
                return Err(format!(
                    "{CONFIG}:{}: podc reads only `subnet = A.B.C.D/N` here",
                    i + 1
                ))
            }
        }
    }
    Ok(Subnet::parse(DEFAULT_SUBNET).expect("the default subnet is valid"))
}

/// The host's veth end of `pod`'s pair: `pv` and 8 hex digits of the pod name's SHA-256 (an
/// interface name holds at most 15 bytes; pod names are unique on a host).
pub fn veth_name(pod: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(pod.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    [VETH_PREFIX, &hex].concat()
}

/// The table's rules for `subnet`. Forwarded traffic from the pods' bridge goes out (and is
/// masqueraded where it leaves); into the bridge only answers come; from the bridge to the
/// host itself only answers to the host's own connections (the published ports reach the pod
/// through its systemd-socket-proxyd, not this way).
pub fn ruleset(subnet: &Subnet) -> String {
    format!(
        r#"table inet {TABLE} {{
	chain input {{
		type filter hook input priority filter - 10; policy accept;
		iifname "{BRIDGE}" ct state established,related accept
		iifname "{BRIDGE}" drop
	}}
	chain forward {{
		type filter hook forward priority filter - 10; policy accept;
		iifname "{BRIDGE}" oifname != "{BRIDGE}" ip saddr {subnet} accept
		oifname "{BRIDGE}" ct state established,related accept
		oifname "{BRIDGE}" drop
		iifname "{BRIDGE}" drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat - 10; policy accept;
		ip saddr {subnet} oifname != "{BRIDGE}" masquerade
	}}
}}
"#
    )
}

/// What a launch with a way out set up: undone by [`Joined::leave`].
#[derive(Debug)]
pub struct Joined {
    pub pod: String,
    pub veth: String,
    pub address: Ipv4Addr,
    /// The host's network namespace, to go back to before leaving.
    host_ns: OwnedFd,
}

/// Runs `program` with `args`: its failure as a launch error that shows its stderr.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), NetError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let fail = |message: String| NetError {
        message: format!("{program} {}: {message}", args.join(" ")),
    };
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(
            String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        ))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn io_net(what: &str, path: &Path, e: io::Error) -> NetError {
    NetError {
        message: format!("{what} {}: {e}", path.display()),
    }
}

/// The lock every change of podc's host networking is made under; held until dropped.
struct Lock {
    _held: fs::File,
}

impl Lock {
    fn take() -> Result<Lock, NetError> {
        let dir = Path::new(STATE_DIR);
        fs::create_dir_all(dir.join("leases")).map_err(|e| io_net("mkdir", dir, e))?;
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

/// A lease: the address it is for, the pod and its veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub pod: String,
    pub veth: String,
}

fn lease_dir() -> PathBuf {
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
            })
        })
        .collect();
    out.sort_by_key(|l| l.address);
    out
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Removes the leases whose veth is gone (their pods ended), and with the last lease the
/// bridge, the table and the forwarding podc turned on. Under the lock.
fn sweep(_lock: &Lock) -> Vec<Lease> {
    let mut live = Vec::new();
    for l in leases() {
        if link_exists(&l.veth) {
            live.push(l);
        } else {
            let _ = fs::remove_file(lease_dir().join(l.address.to_string()));
        }
    }
    if live.is_empty() {
        if link_exists(BRIDGE) {
            let _ = run("ip", &["link", "del", BRIDGE], None);
        }
        if succeeds("nft", &["list", "table", "inet", TABLE]) {
            let _ = run("nft", &["delete", "table", "inet", TABLE], None);
        }
        let marker = Path::new(STATE_DIR).join("forwarding-was-off");
        if marker.exists() {
            let _ = fs::write(FORWARDING, "0\n");
            let _ = fs::remove_file(marker);
        }
    }
    live
}

/// Sweeps what ended pods left (see [`sweep`]): for `podc status` and the like. Nothing to do
/// (and no lock taken) on a host where podc never gave a pod a way out.
pub fn tidy() -> Result<Vec<Lease>, NetError> {
    if !Path::new(STATE_DIR).exists() {
        return Ok(Vec::new());
    }
    let lock = Lock::take()?;
    Ok(sweep(&lock))
}

const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

/// The host's nameservers a pod can use: those of /etc/resolv.conf, or where that names only
/// a local stub (systemd-resolved's 127.0.0.53), systemd-resolved's upstream servers.
pub fn dns_servers() -> Vec<String> {
    let read = |p: &str| -> Vec<String> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("nameserver")).then(|| w.next().map(str::to_string))?
            })
            .collect()
    };
    let usable = |servers: Vec<String>| -> Vec<String> {
        servers
            .into_iter()
            .filter(|s| {
                s.parse::<std::net::IpAddr>()
                    .is_ok_and(|a| !a.is_loopback() && a.is_ipv4())
            })
            .collect()
    };
    let own = usable(read("/etc/resolv.conf"));
    if !own.is_empty() {
        return own;
    }
    usable(read("/run/systemd/resolve/resolv.conf"))
}

/// The pods' resolv.conf text for `servers`.
pub fn resolv_conf(servers: &[String]) -> String {
    let mut out = String::from(
        "# Written by podc launch: the host's DNS servers, reached through the pod's way out.\n",
    );
    for s in servers {
        out.push_str("nameserver ");
        out.push_str(s);
        out.push('\n');
    }
    out
}

/// What a pod's way out needs of the host: `ip` (iproute2), `nft` (nftables), a kernel with
/// nftables' NAT, and a pod subnet that no route of the host's own already covers.
pub fn check_host() -> Result<(), NetError> {
    let fail = |message: String| NetError { message };
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(fail(format!(
                "`{tool}` is not installed; install the {package} package"
            )));
        }
    }
    let subnet = host_subnet().map_err(fail)?;
    // A route of the host's (not podc0's) into the subnet would take the pods' traffic.
    let routes = Command::new("ip")
        .args(["-4", "-o", "route", "show", "table", "all"])
        .output()
        .map_err(|e| fail(format!("ip route: {e}")))?;
    for l in String::from_utf8_lossy(&routes.stdout).lines() {
        let mut w = l.split_whitespace();
        let dest = match w.next() {
            Some("local" | "broadcast" | "unicast") => w.next(),
            other => other,
        };
        let Some(net) = dest.and_then(|d| {
            let (a, p) = d.split_once('/').unwrap_or((d, "32"));
            Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok()?))
        }) else {
            continue;
        };
        if l.contains(&format!("dev {BRIDGE} ")) || l.ends_with(&format!("dev {BRIDGE}")) {
            continue;
        }
        let (a, p) = net;
        let overlaps = if p <= subnet.prefix {
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(subnet.network) & mask == u32::from(a) & mask
        } else {
            subnet.contains(a)
        };
        if overlaps && p > 0 {
            return Err(fail(format!(
                "the pod subnet {subnet} overlaps the host's route `{l}`; name another in {CONFIG} (`subnet = 10.77.0.0/24`)"
            )));
        }
    }
    Ok(())
}

/// Gives `pod` its way out: the host's side (bridge, table, forwarding), a lease, the veth
/// pair, and a network namespace with the pod's end in it, which this process enters (nspawn,
/// started next, runs the pod in it).
pub fn join(pod: &str) -> Result<Joined, NetError> {
    let subnet = host_subnet().map_err(|message| NetError { message })?;
    let lock = Lock::take()?;
    let live = sweep(&lock);
    let veth = veth_name(pod);
    if let Some(l) = live.iter().find(|l| l.pod == pod || l.veth == veth) {
        return Err(NetError {
            message: format!(
                "pod {} already has {} on {BRIDGE} (is it running?)",
                l.pod, l.address
            ),
        });
    }
    let address = subnet
        .hosts()
        .find(|a| !live.iter().any(|l| l.address == *a))
        .ok_or_else(|| NetError {
            message: format!("every address of the pod subnet {subnet} is taken"),
        })?;
    // The host's side.
    let forwarding =
        fs::read_to_string(FORWARDING).map_err(|e| io_net("read", Path::new(FORWARDING), e))?;
    if forwarding.trim() == "0" {
        let marker = Path::new(STATE_DIR).join("forwarding-was-off");
        fs::write(&marker, "").map_err(|e| io_net("write", &marker, e))?;
        fs::write(FORWARDING, "1\n").map_err(|e| io_net("write", Path::new(FORWARDING), e))?;
    }
    if !succeeds("nft", &["list", "table", "inet", TABLE]) {
        run("nft", &["-f", "-"], Some(&ruleset(&subnet)))?;
    }
    if !link_exists(BRIDGE) {
        let gw = format!("{}/{}", subnet.gateway(), subnet.prefix);
        run("ip", &["link", "add", BRIDGE, "type", "bridge"], None)?;
        run("ip", &["addr", "add", &gw, "dev", BRIDGE], None)?;
        run("ip", &["link", "set", BRIDGE, "up"], None)?;
    }
    let servers = dns_servers();
    fs::write(RESOLV, resolv_conf(&servers)).map_err(|e| io_net("write", Path::new(RESOLV), e))?;
    // The lease first: whatever happens next, the sweep finds it (its veth missing) and
    // removes it.
    let lease = lease_dir().join(address.to_string());
    fs::write(&lease, format!("{pod}\n{veth}\n")).map_err(|e| io_net("write", &lease, e))?;
    let inner = [veth.as_str(), "c"].concat();
    let made = pair(pod, &veth, &inner, address, &subnet);
    if made.is_err() {
        if link_exists(&veth) {
            let _ = run("ip", &["link", "del", &veth], None);
        }
        let _ = fs::remove_file(&lease);
    }
    drop(lock);
    let host_ns = made?;
    Ok(Joined {
        pod: pod.to_string(),
        veth,
        address,
        host_ns,
    })
}

fn pair(
    _pod: &str,
    veth: &str,
    inner: &str,
    address: Ipv4Addr,
    subnet: &Subnet,
) -> Result<OwnedFd, NetError> {
    use rustix::thread::{
        move_into_link_name_space, unshare_unsafe, LinkNameSpaceType, UnshareFlags,
    };
    let ns_err = |what: &str, e: rustix::io::Errno| NetError {
        message: format!("{what}: {e}"),
    };
    run(
        "ip",
        &["link", "add", veth, "type", "veth", "peer", "name", inner],
        None,
    )?;
    run("ip", &["link", "set", veth, "master", BRIDGE], None)?;
    // Pods on the bridge do not reach each other: only the gateway.
    run(
        "ip",
        &[
            "link",
            "set",
            veth,
            "type",
            "bridge_slave",
            "isolated",
            "on",
        ],
        None,
    )?;
    run("ip", &["link", "set", veth, "up"], None)?;
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
    run("ip", &["link", "set", inner, "netns", &target], None)?;
    move_into_link_name_space(pod_ns.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| ns_err("enter the pod's network namespace", e))?;
    let cidr = format!("{address}/{}", subnet.prefix);
    let gw = subnet.gateway().to_string();
    run("ip", &["link", "set", "lo", "up"], None)?;
    run("ip", &["link", "set", inner, "name", "eth0"], None)?;
    run("ip", &["addr", "add", &cidr, "dev", "eth0"], None)?;
    run("ip", &["link", "set", "eth0", "up"], None)?;
    run("ip", &["route", "add", "default", "via", &gw], None)?;
    Ok(host_ns)
}

impl Joined {
    /// Undoes [`join`] once the pod has ended: back to the host's network namespace, the veth
    /// removed (with its pod end), the lease released, and what no pod uses any more swept.
    pub fn leave(self) -> Result<(), NetError> {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        move_into_link_name_space(self.host_ns.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
            |e| NetError {
                message: format!("enter the host's network namespace: {e}"),
            },
        )?;
        let lock = Lock::take()?;
        if link_exists(&self.veth) {
            run("ip", &["link", "del", &self.veth], None)?;
        }
        let _ = fs::remove_file(lease_dir().join(self.address.to_string()));
        sweep(&lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_private_aligned_and_sized() {
        let s = Subnet::parse("10.89.0.0/24").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        let hosts: Vec<Ipv4Addr> = s.hosts().collect();
        assert_eq!(hosts.len(), 253);
        assert_eq!(hosts[0], Ipv4Addr::new(10, 89, 0, 2));
        assert_eq!(hosts[252], Ipv4Addr::new(10, 89, 0, 254));
        assert!(s.contains(Ipv4Addr::new(10, 89, 0, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 1, 2)));
        let small = Subnet::parse("192.168.7.16/28").unwrap();
        assert_eq!(small.hosts().count(), 13);
        for bad in [
            "10.89.0.1/24",
            "8.8.8.0/24",
            "10.89.0.0/8",
            "10.89.0.0/30",
            "10.89.0.0",
            "ten/24",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn veth_names_fit_an_interface_name_and_differ_by_pod() {
        let a = veth_name("web");
        let b = veth_name("db");
        assert_eq!(a.len(), 10);
        assert!(a.starts_with(VETH_PREFIX));
        assert_ne!(a, b);
        // The pod's end, before it is renamed eth0 in the pod, fits too.
        assert!([a.as_str(), "c"].concat().len() <= 15);
    }

    #[test]
    fn resolv_conf_lists_servers() {
        let text = resolv_conf(&["10.0.0.53".into(), "10.0.0.54".into()]);
        assert!(text.ends_with("nameserver 10.0.0.53\nnameserver 10.0.0.54\n"));
    }

    #[test]
    fn the_ruleset_names_the_subnet_and_bridge() {
        let r = ruleset(&Subnet::parse("10.89.0.0/24").unwrap());
        assert!(r.contains("ip saddr 10.89.0.0/24 oifname != \"podc0\" masquerade"));
        assert!(r.contains("iifname \"podc0\" drop"));
    }
}
