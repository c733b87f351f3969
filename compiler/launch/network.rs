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
/// The way out's subnet when the host's configuration names none.
pub const DEFAULT_SUBNET: &str = "10.89.0.0/24";
/// The range the networks' /24 subnets are taken from when the configuration names none.
pub const DEFAULT_NETWORKS: &str = "10.90.0.0/16";
/// The prefix of a network's bridge (`podc-<name>`).
pub const NETWORK_PREFIX: &str = "podc-";
/// The host's configuration of pod networking (`subnet = A.B.C.D/N`, `networks = A.B.0.0/N`).
pub const CONFIG: &str = "/etc/podc/network.conf";
/// Leases, the lock and the pods' resolv.conf; on the host's /run, so gone at reboot.
pub const STATE_DIR: &str = "/run/podc/net";
/// The pods' `/etc/resolv.conf`: the host's DNS servers.
pub const RESOLV: &str = "/run/podc/net/resolv.conf";
/// The interface name prefix of podc's veth ends on the host (`pv`, 8 hex digits, an index).
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

/// The host's configuration: the way out's subnet and the networks' range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConfig {
    pub subnet: Subnet,
    pub networks: Subnet,
}

/// The host's configuration from [`CONFIG`], with the defaults for what it does not name.
pub fn host_config() -> Result<HostConfig, String> {
    let text = match fs::read_to_string(CONFIG) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{CONFIG}: {e}")),
    };
    let mut c = HostConfig {
        subnet: Subnet::parse(DEFAULT_SUBNET).expect("the default subnet is valid"),
        networks: Subnet::parse(DEFAULT_NETWORKS).expect("the default range is valid"),
    };
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("{CONFIG}:{}: {e}", i + 1);
        match l
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        {
            Some(("subnet", v)) => c.subnet = Subnet::parse(v).map_err(at)?,
            Some(("networks", v)) => {
                c.networks = Subnet::parse(v).map_err(at)?;
                if c.networks.prefix > 23 {
                    return Err(at(format!(
                        "{v}: the networks' range holds /24s: /16 to /23"
                    )));
                }
            }
            _ => {
                return Err(at(
                    "podc reads only `subnet = A.B.C.D/N` and `networks = A.B.0.0/N` here".into(),
                ))
            }
        }
    }
    let overlap = c.subnet.contains(c.networks.network) || c.networks.contains(c.subnet.network);
    if overlap {
        return Err(format!(
            "{CONFIG}: the subnet {} and the networks' range {} overlap",
            c.subnet, c.networks
        ));
    }
    Ok(c)
}

/// The way out's subnet (see [`host_config`]).
pub fn host_subnet() -> Result<Subnet, String> {
    host_config().map(|c| c.subnet)
}

/// The host's veth end of `pod`'s pair number `n`: `pv`, 8 hex digits of the pod name's
/// SHA-256 and `n` (an interface name holds at most 15 bytes; pod names are unique on a host).
pub fn veth_name(pod: &str, n: usize) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(pod.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{VETH_PREFIX}{hex}{n}")
}

/// The bridge of network `name`.
pub fn network_bridge(name: &str) -> String {
    [NETWORK_PREFIX, name].concat()
}

/// The table's rules for the way out's `subnet`. Forwarded traffic from `podc0` goes out (and
/// is masqueraded where it leaves); between the ports of one network's bridge (where the host
/// filters bridged traffic too: br_netfilter) it passes (set `intra`); into a podc bridge only
/// answers come; from a podc bridge to the host itself only answers to the host's own
/// connections (published ports reach a pod through its systemd-socket-proxyd, not this way).
pub fn ruleset(subnet: &Subnet) -> String {
    format!(
        r#"table inet {TABLE} {{
	set intra {{
		type ifname . ifname
	}}
	chain input {{
		type filter hook input priority filter - 10; policy accept;
		iifname "podc*" ct state established,related accept
		iifname "podc*" drop
	}}
	chain forward {{
		type filter hook forward priority filter - 10; policy accept;
		iifname "{BRIDGE}" oifname != "podc*" ip saddr {subnet} accept
		iifname . oifname @intra accept
		oifname "podc*" ct state established,related accept
		oifname "podc*" drop
		iifname "podc*" drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat - 10; policy accept;
		ip saddr {subnet} oifname != "podc*" masquerade
	}}
}}
"#
    )
}

/// What a launch set up for a pod's network: undone by [`Joined::leave`].
#[derive(Debug)]
pub struct Joined {
    pub pod: String,
    pub leases: Vec<Lease>,
    /// The host's network namespace, to go back to before leaving.
    host_ns: OwnedFd,
}

/// Runs `program` with `args`: its failure as an error that shows its stderr.
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
                bridge: lines.next().unwrap_or(BRIDGE).to_string(),
            })
        })
        .collect();
    out.sort_by_key(|l| l.address);
    out
}

fn write_lease(l: &Lease) -> Result<(), NetError> {
    let path = lease_dir().join(l.address.to_string());
    fs::write(&path, format!("{}\n{}\n{}\n", l.pod, l.veth, l.bridge))
        .map_err(|e| io_net("write", &path, e))
}

fn remove_lease(l: &Lease) {
    let _ = fs::remove_file(lease_dir().join(l.address.to_string()));
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The /24 a network's bridge has, recorded when it was made: `networks/<name>`.
fn network_subnet(name: &str) -> Option<Subnet> {
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
fn rewrite_hosts(live: &[Lease]) {
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
fn sweep(_lock: &Lock) -> Vec<Lease> {
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

/// Whether a route of the host's own (not one of a podc bridge) covers any of `subnet`.
fn routed(subnet: &Subnet) -> Result<Option<String>, String> {
    let routes = Command::new("ip")
        .args(["-4", "-o", "route", "show", "table", "all"])
        .output()
        .map_err(|e| format!("ip route: {e}"))?;
    for l in String::from_utf8_lossy(&routes.stdout).lines() {
        let mut w = l.split_whitespace();
        let dest = match w.next() {
            Some("local" | "broadcast" | "unicast") => w.next(),
            other => other,
        };
        let Some((a, p)) = dest.and_then(|d| {
            let (a, p) = d.split_once('/').unwrap_or((d, "32"));
            Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok()?))
        }) else {
            continue;
        };
        let dev = l.split_whitespace().skip_while(|w| *w != "dev").nth(1);
        if dev.is_some_and(|d| d.starts_with("podc")) || p == 0 {
            continue;
        }
        let overlaps = if p <= subnet.prefix {
            let mask = u32::MAX << (32 - p);
            u32::from(subnet.network) & mask == u32::from(a) & mask
        } else {
            subnet.contains(a)
        };
        if overlaps {
            return Ok(Some(l.to_string()));
        }
    }
    Ok(None)
}

/// What a pod's network needs of the host: `ip` (iproute2), `nft` (nftables), and subnets
/// that no route of the host's own already covers.
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
    let c = host_config().map_err(fail)?;
    for (what, s) in [("pod subnet", c.subnet), ("networks' range", c.networks)] {
        if let Some(route) = routed(&s).map_err(fail)? {
            return Err(fail(format!(
                "the {what} {s} overlaps the host's route `{route}`; name another in {CONFIG}"
            )));
        }
    }
    Ok(())
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
/// process enters (nspawn, started next, runs the pod in it).
pub fn join(pod: &str, way_out: bool, networks: &[String]) -> Result<Joined, NetError> {
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
        };
        write_lease(&l)?;
        leases.push(l);
    }
    let made = pairs(&attach, &leases);
    match made {
        Ok(host_ns) => {
            let all: Vec<Lease> = live.iter().chain(&leases).cloned().collect();
            if !networks.is_empty() {
                // Its own file first (nspawn binds it), then everyone's.
                let path = hosts_file(pod);
                fs::write(&path, hosts_text(pod, &all)).map_err(|e| io_net("write", &path, e))?;
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
        let a = veth_name("web", 0);
        let b = veth_name("db", 0);
        assert_eq!(a.len(), 11);
        assert_ne!(a, veth_name("web", 1));
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
        assert!(r.contains("ip saddr 10.89.0.0/24 oifname != \"podc*\" masquerade"));
        assert!(r.contains("iifname \"podc*\" drop"));
    }

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
