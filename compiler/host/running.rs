//! A pod running on this host, found from its processes: the pod `podc exec` enters, and the
//! tree `podc logs` reads for a pod launched by hand.
//!
//! Every pod runs as `systemd-nspawn --directory=TREE/rootfs --machine=podc-<pod>` (the
//! launcher's command line, whether it execs nspawn or stays its parent), as root, and the
//! pod's init (systemd, the container's PID 1) is nspawn's child in a PID namespace of its own.
//! That holds with and without systemd as the host's PID 1, so nothing here asks machined
//! (which a host without systemd lacks). A process of another user that calls itself nspawn
//! is never taken for a pod.

use std::fs;
use std::path::{Path, PathBuf};

use crate::tree::layout::ROOTFS;

/// A running pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The pod's name (its machine is `podc-<pod>`).
    pub pod: String,
    /// The tree nspawn boots (the directory above its `--directory=TREE/rootfs`).
    pub tree: PathBuf,
    /// nspawn's pid.
    pub nspawn: u32,
    /// The pod's init, the container's PID 1 as the host sees it; `None` while nspawn is
    /// still starting it.
    pub leader: Option<u32>,
}

/// What a process's command line says of the pod it runs, if it is nspawn as the launcher
/// runs it: the pod's name and its tree.
pub fn nspawn_pod(argv: &[String]) -> Option<(String, PathBuf)> {
    let program = Path::new(argv.first()?).file_name()?;
    if program != "systemd-nspawn" {
        return None;
    }
    let mut machine = None;
    let mut dir = None;
    for a in &argv[1..] {
        if let Some(m) = a.strip_prefix("--machine=") {
            machine = m.strip_prefix("podc-");
        } else if let Some(d) = a.strip_prefix("--directory=") {
            dir = Path::new(d)
                .strip_prefix("/")
                .ok()
                .map(|_| PathBuf::from(d));
        }
    }
    let dir = dir?;
    (dir.file_name()? == ROOTFS).then_some(())?;
    Some((machine?.to_string(), dir.parent()?.to_path_buf()))
}

/// The `Uid:` line's real id of `/proc/PID/status` (its text).
pub fn status_uid(status: &str) -> Option<u32> {
    ids(status, "Uid:").and_then(|v| v.first().copied())
}

/// The numbers of a `/proc/PID/status` line (`Uid:`, `Gid:`, `Groups:`).
pub fn ids(status: &str, key: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    line.split_whitespace().map(|w| w.parse().ok()).collect()
}

/// A process's command line, word by word.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(
        text.split_terminator('\0')
            .map(str::to_string)
            .collect::<Vec<_>>(),
    )
}

/// Every process of this host (the pids in `/proc`).
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// The namespace `/proc/PID/ns/KIND` names (`pid:[4026531836]`).
pub fn namespace(pid: u32, kind: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.display().to_string())
}

/// The pod's init: the child of nspawn in another PID namespace than nspawn's.
fn leader_of(nspawn: u32) -> Option<u32> {
    let own = namespace(nspawn, "pid")?;
    let tasks = fs::read_dir(format!("/proc/{nspawn}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .find(|&child| namespace(child, "pid").is_some_and(|ns| ns != own))
}

/// The running pods that `which` names: a pod name, or a tree (a path: anything with a `/`),
/// compared as real paths.
pub fn find_running(which: &str) -> Vec<Running> {
    let tree = which
        .contains('/')
        .then(|| fs::canonicalize(which).unwrap_or_else(|_| PathBuf::from(which)));
    let mut found = Vec::new();
    for pid in pids() {
        let Some(argv) = cmdline(pid) else { continue };
        let Some((pod, pod_tree)) = nspawn_pod(&argv) else {
            continue;
        };
        // nspawn runs as root; another user's process of that name is not a pod.
        let uid = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| status_uid(&s));
        if uid != Some(0) {
            continue;
        }
        let matches = match &tree {
            Some(t) => fs::canonicalize(&pod_tree).unwrap_or_else(|_| pod_tree.clone()) == *t,
            None => pod == which,
        };
        if matches {
            found.push(Running {
                pod,
                tree: pod_tree,
                nspawn: pid,
                leader: leader_of(pid),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn nspawn_as_the_launcher_runs_it_names_its_pod_and_tree() {
        let a = argv(&[
            "systemd-nspawn",
            "--quiet",
            "--directory=/var/lib/podc/web/rootfs",
            "--machine=podc-web",
            "--boot",
        ]);
        assert_eq!(
            nspawn_pod(&a),
            Some(("web".into(), PathBuf::from("/var/lib/podc/web")))
        );
        let mut b = a.clone();
        b[0] = "/usr/bin/systemd-nspawn".into();
        assert_eq!(nspawn_pod(&b), nspawn_pod(&a));
        for other in [
            argv(&["sh", "--directory=/x/rootfs", "--machine=podc-web"]),
            argv(&["systemd-nspawn", "--directory=/x/rootfs", "--machine=web"]),
            argv(&[
                "systemd-nspawn",
                "--directory=/x/root",
                "--machine=podc-web",
            ]),
            argv(&[
                "systemd-nspawn",
                "--directory=x/rootfs",
                "--machine=podc-web",
            ]),
            argv(&["systemd-nspawn", "--machine=podc-web"]),
            argv(&[]),
        ] {
            assert_eq!(nspawn_pod(&other), None, "{other:?}");
        }
    }

    #[test]
    fn status_lines_are_read() {
        let status = "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t4 27 \n";
        assert_eq!(status_uid(status), Some(1000));
        assert_eq!(ids(status, "Gid:"), Some(vec![100, 100, 100, 100]));
        assert_eq!(ids(status, "Groups:"), Some(vec![4, 27]));
        assert_eq!(ids("Groups:\t\n", "Groups:"), Some(vec![]));
        assert_eq!(status_uid("Uid:\tx\n"), None);
    }

    #[test]
    fn this_process_is_no_pod_and_its_namespace_is_read() {
        assert!(namespace(std::process::id(), "pid").is_some_and(|n| n.starts_with("pid:[")));
        assert!(find_running("no-such-pod-here").is_empty());
    }
}
