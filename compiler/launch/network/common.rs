//! What every part of pod networking shares: the names podc gives things on the host, its
//! error, and running `ip` and `nft`.

use std::io::{self, Write};
use std::path::Path;
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

/// Runs `program` with `args`: its failure as an error that shows its stderr.
pub(super) fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), NetError> {
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

pub(super) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(super) fn io_net(what: &str, path: &Path, e: io::Error) -> NetError {
    NetError {
        message: format!("{what} {}: {e}", path.display()),
    }
}
