//! The host's side of pod networking: its configuration, DNS servers, routes and podc's
//! nftables rules.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::common::{NetError, BRIDGE, CONFIG, DEFAULT_NETWORKS, DEFAULT_SUBNET, TABLE};

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

/// The table's rules for the way out's `subnet`. Forwarded traffic from `podc0` goes out (and
/// is masqueraded where it leaves); between the ports of one network's bridge (where the host
/// filters bridged traffic too: br_netfilter) it passes (set `intra`); into a podc bridge only
/// answers come; from a podc bridge to the host itself only answers to the host's own
/// connections and what set `hostports` lets in (a pod address, a protocol and a port of the
/// host: the pod's `allowHost`). Published ports reach a pod through its
/// systemd-socket-proxyd, not this way.
pub fn ruleset(subnet: &Subnet) -> String {
    format!(
        r#"table inet {TABLE} {{
	set intra {{
		type ifname . ifname
	}}
	set hostports {{
		type ipv4_addr . inet_proto . inet_service
	}}
	chain input {{
		type filter hook input priority filter - 10; policy accept;
		iifname "podc*" ct state established,related accept
		iifname "podc*" ip saddr . meta l4proto . th dport @hostports accept
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
}
