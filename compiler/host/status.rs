//! `podc status`: the host unit's state, each app's state from the pod's own systemd, and
//! their usage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::data::{persistent_volumes, VolumeStatus, MAX_COUNTED};
use super::systemd::*;
use super::tree::*;
use super::usage::*;

/// `systemctl show` output (`Key=Value` lines) as a map.
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The properties `status` shows of the host unit and of each app's unit.
pub const UNIT_PROPERTIES: &str =
    "LoadState,ActiveState,SubState,Result,ExecMainStatus,MainPID,ActiveEnterTimestamp,InactiveEnterTimestamp";

/// A unit's state, as `systemctl show` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub active: String,
    pub sub: String,
    pub result: String,
    /// The main process's exit status (the pod's, for the host unit).
    pub exit_status: Option<i64>,
    pub main_pid: Option<u64>,
    /// When it entered its current state (active or inactive).
    pub since: String,
}

impl UnitState {
    pub fn from_show(show: &BTreeMap<String, String>) -> UnitState {
        let get = |k: &str| show.get(k).cloned().unwrap_or_default();
        let active = get("ActiveState");
        let since = if running(&active) {
            get("ActiveEnterTimestamp")
        } else {
            get("InactiveEnterTimestamp")
        };
        let main_pid = get("MainPID").parse().ok().filter(|&p| p != 0);
        UnitState {
            active,
            sub: get("SubState"),
            result: get("Result"),
            exit_status: get("ExecMainStatus").parse().ok(),
            main_pid,
            since,
        }
    }
}

/// One app of a pod, in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppStatus {
    pub name: String,
    pub state: UnitState,
    /// The app's cgroup directory (in the memory hierarchy on v1), where found.
    pub cgroup: Option<PathBuf>,
    pub usage: Usage,
    /// What its health probe last said (`healthy`, `unhealthy (2 failed)`, `starting`, …);
    /// `None` for an app without a probe or a pod that is not running.
    pub health: Option<String>,
    /// Its image by reference, with the digest the tree recorded (what it runs); `None` for
    /// an app whose image is a directory.
    pub image: Option<AppImage>,
}

/// An app's image by reference, in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppImage {
    /// The reference as the manifest gives it.
    pub reference: String,
    /// The manifest digest the pod runs (`TREE/state/images.toml`); `None` until `podc
    /// install` or the first launch has found the image.
    pub digest: Option<String>,
}

/// `podc status POD`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodStatus {
    pub pod: String,
    pub unit: String,
    pub dir: PathBuf,
    pub cgroup: String,
    pub host: UnitState,
    pub apps: Vec<AppStatus>,
    /// Its persistent volumes, in the plan's order.
    pub volumes: Vec<VolumeStatus>,
    /// A private pod's network: `private (loopback only)`, or with `egress: nat` its address
    /// (`private, 10.89.0.2 on podc0, out through NAT`); `None` on the host's network.
    pub network: Option<String>,
    /// The range of host ids of the pod's own user namespace (`userNamespace: private`).
    pub users: Option<String>,
}

impl std::fmt::Display for PodStatus {
    /// A header with the host unit's state, then one aligned row per app.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.host;
        writeln!(
            f,
            "pod {}: {} ({}){}",
            self.pod,
            h.active,
            h.sub,
            if h.since.is_empty() {
                String::new()
            } else {
                format!(" since {}", h.since)
            }
        )?;
        writeln!(
            f,
            "  unit {}, main PID {}, exit status {}, result {}",
            self.unit,
            or_dash(h.main_pid, |p| p.to_string()),
            or_dash(h.exit_status, |s| s.to_string()),
            if h.result.is_empty() { "-" } else { &h.result }
        )?;
        writeln!(f, "  tree {}, cgroup {}", self.dir.display(), self.cgroup)?;
        if let Some(n) = &self.network {
            writeln!(f, "  network {n}")?;
        }
        if let Some(u) = &self.users {
            writeln!(f, "  ids: {u}")?;
        }
        // A HEALTH column only where an app has a probe.
        let health = self.apps.iter().any(|a| a.health.is_some());
        let mut header = vec!["APP", "STATE"];
        if health {
            header.push("HEALTH");
        }
        header.extend(["EXIT", "MEMORY", "CPU", "CPU TIME", "TASKS"]);
        let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
        for a in &self.apps {
            let state = if a.state.sub.is_empty() {
                a.state.active.clone()
            } else {
                format!("{} ({})", a.state.active, a.state.sub)
            };
            let mut row = vec![a.name.clone(), state];
            if health {
                row.push(a.health.clone().unwrap_or_else(|| "-".into()));
            }
            row.push(or_dash(a.state.exit_status, |s| s.to_string()));
            row.extend(a.usage.cells());
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in rows {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        // The image each app runs by reference, digest in full (to pull or compare).
        for a in &self.apps {
            if let Some(i) = &a.image {
                let runs = i
                    .digest
                    .as_deref()
                    .unwrap_or("not recorded yet (the first launch records it)");
                writeln!(f, "app {}: image {}, {runs}", a.name, i.reference)?;
            }
        }
        for v in &self.volumes {
            let size = match v.bytes {
                None => "not made yet (at the first launch)".to_string(),
                Some(b) if v.complete => format!("{} on disk", bytes(b)),
                Some(b) => format!(
                    "more than {} on disk (counted {MAX_COUNTED} entries)",
                    bytes(b)
                ),
            };
            writeln!(
                f,
                "volume {} (persistent): {}, {size}",
                v.name,
                v.path.display()
            )?;
        }
        Ok(())
    }
}

/// The pod's PID 1 (its systemd): below the host unit's main process, which is `podc launch`
/// (nspawn's parent) or systemd-nspawn itself (when podc execs it), the first process named
/// `systemd`.
pub(super) fn pod_leader(main_pid: u64) -> Option<u64> {
    let mut pid = main_pid;
    for _ in 0..3 {
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        pid = children.split_whitespace().next()?.parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "systemd" {
            return Some(pid);
        }
    }
    None
}

/// The state of each app's unit inside a running pod, asked of the pod's systemd through its
/// private socket from inside the pod's mount and PID namespaces (`nsenter -m -p`; only the
/// mount namespace gives "Transport endpoint is not connected"), and in a pod of its own user
/// namespace from inside that too (`-U`, as its root): the host's root is no id of the pod's,
/// and the pod's systemd answers only its own root on that socket. `systemctl -M` is no use
/// here: it needs D-Bus running in the pod, and a pod runs only its apps.
pub(super) fn app_states(
    leader: Option<u64>,
    own_users: bool,
    apps: &[String],
) -> Vec<Option<UnitState>> {
    let units: Vec<String> = apps.iter().map(|a| format!("{a}.service")).collect();
    let text = leader.and_then(|l| {
        let l = l.to_string();
        let mut args = vec!["-t", &l];
        if own_users {
            args.push("-U");
        }
        args.extend(["-m", "-p", "systemctl", "show", "-p", UNIT_PROPERTIES]);
        args.extend(units.iter().map(String::as_str));
        let o = Command::new("nsenter").args(&args).output().ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    let Some(text) = text else {
        return vec![None; apps.len()];
    };
    parse_show_blocks(&text, apps.len())
}

/// What each app's health probe last recorded in the running pod (`HEALTH_DIR`), read from
/// inside its mount namespace: app → `healthy`, `unhealthy (N failed)`, ….
pub(super) fn app_health(leader: Option<u64>) -> BTreeMap<String, String> {
    let Some(l) = leader else {
        return BTreeMap::new();
    };
    let dir = crate::tree::layout::HEALTH_DIR;
    let out = Command::new("nsenter")
        .args(["-t", &l.to_string(), "-m", "grep", "-r", "", dir])
        .output();
    out.map(|o| parse_health(&String::from_utf8_lossy(&o.stdout), dir))
        .unwrap_or_default()
}

/// `grep -r '' HEALTH_DIR` output (`DIR/APP:STATE FAILED` lines) as app → words.
pub fn parse_health(text: &str, dir: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (app, record) = l.strip_prefix(dir)?.strip_prefix('/')?.split_once(':')?;
            let mut words = record.split_whitespace();
            let state = words.next()?;
            let failed: u32 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let shown = if state == "unhealthy" {
                format!("unhealthy ({failed} failed)")
            } else {
                state.to_string()
            };
            Some((app.to_string(), shown))
        })
        .collect()
}

/// `systemctl show` of several units: one block per unit, in the order asked, separated by
/// blank lines.
pub fn parse_show_blocks(text: &str, n: usize) -> Vec<Option<UnitState>> {
    let blocks: Vec<&str> = text.split("\n\n").collect();
    (0..n)
        .map(|i| {
            blocks
                .get(i)
                .filter(|b| !b.trim().is_empty())
                .map(|b| UnitState::from_show(&parse_show(b)))
        })
        .collect()
}

/// The last exit status of an app's main process in the pod's journal, for a pod that is not
/// running: systemd logs `EXIT_STATUS=` with "Main process exited" only when the exit was not
/// clean (a clean exit or a stop is logged at debug level), so a healthy app shows none. The
/// pod's own per-app records (`/run/podc/result/<app>`) are gone with its `/run`.
pub(super) fn journal_exit(dir: &Path, app: &str) -> Option<i64> {
    let out = Command::new("journalctl")
        .arg("-D")
        .arg(dir.join("rootfs/var/log/journal"))
        .args(["-u", &format!("{app}.service"), "-o", "json", "--no-pager"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("EXIT_STATUS")?.as_str()?.parse().ok())
        .next_back()
}

/// Each app whose image is a reference, with the digest `record` (the tree's) has for it.
pub fn app_images(
    plan: &crate::tree::plan::MountPlan,
    record: &crate::tree::images::ImageRecord,
) -> BTreeMap<String, AppImage> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            crate::tree::plan::Step::Image { app, reference, .. } => Some((
                app.clone(),
                AppImage {
                    reference: reference.clone(),
                    digest: record.images.get(reference).map(|d| d.to_string()),
                },
            )),
            _ => None,
        })
        .collect()
}

/// Gathers `podc status POD` on this host.
pub fn status(pod: &str, sd: &mut dyn Systemd) -> Result<PodStatus, OpError> {
    let root = Root("/".into());
    let p = find_installed(pod, &root)?;
    let plan = crate::launch::read_plan(&p.dir)?;
    let unit = format!("podc-{pod}.service");
    let host = UnitState::from_show(&parse_show(&sd.systemctl(&[
        "show",
        "-p",
        UNIT_PROPERTIES,
        &unit,
    ])?));
    let is_running = running(&host.active);
    let leader = host.main_pid.and_then(pod_leader);
    // An unreadable record shows no digests; the launch says what is wrong with it.
    let mut images = app_images(
        &plan,
        &crate::launch::read_record(&p.dir).unwrap_or_default(),
    );
    let (states, mut health) = if is_running {
        (
            app_states(
                leader,
                plan.user_namespace == crate::manifest::UserNamespace::Private,
                &plan.apps,
            ),
            app_health(leader),
        )
    } else {
        (vec![None; plan.apps.len()], BTreeMap::new())
    };
    let apps = plan
        .apps
        .iter()
        .zip(states)
        .map(|(app, state)| {
            let (cgroup, usage) = if is_running {
                read_usage(Path::new("/sys/fs/cgroup"), plan.cgroup, pod, app)
            } else {
                (None, Usage::default())
            };
            let state = state.unwrap_or_else(|| UnitState {
                active: if !is_running {
                    "inactive".into()
                } else if cgroup.is_some() {
                    "active".into()
                } else {
                    "unknown".into()
                },
                exit_status: if is_running {
                    None
                } else {
                    journal_exit(&p.dir, app)
                },
                ..UnitState::default()
            });
            AppStatus {
                name: app.clone(),
                state,
                cgroup,
                usage,
                health: health.remove(app),
                image: images.remove(app),
            }
        })
        .collect();
    let users = users_status(&p.dir, &plan);
    Ok(PodStatus {
        pod: pod.into(),
        unit,
        dir: p.dir,
        cgroup: plan.cgroup.to_string(),
        host,
        apps,
        volumes: persistent_volumes(&plan, &root),
        network: network_status(pod, &plan),
        users,
    })
}

/// The pod's ids for `status`: the range of its own user namespace, once a launch gave it
/// one.
pub fn users_status(tree: &std::path::Path, plan: &crate::tree::plan::MountPlan) -> Option<String> {
    use crate::launch::userns;
    if plan.user_namespace != crate::manifest::UserNamespace::Private {
        return None;
    }
    Some(
        match userns::recorded(&tree.join(crate::tree::layout::STATE)) {
            Some(r) => format!("user namespace, host ids {r}"),
            None => "user namespace (no range yet: never launched)".into(),
        },
    )
}

/// The pod's network for `status`: its addresses, from its leases (what killed pods left is
/// swept first, as root).
fn network_status(pod: &str, plan: &crate::tree::plan::MountPlan) -> Option<String> {
    use crate::launch::network;
    use crate::manifest::{Egress, Network};
    if plan.network == Network::Host {
        return None;
    }
    if plan.egress == Egress::None && plan.networks.is_empty() {
        return Some("private (loopback only)".into());
    }
    if crate::sys::effective_uid() == 0 {
        let _ = network::tidy();
    }
    let leases: Vec<network::Lease> = network::leases()
        .into_iter()
        .filter(|l| l.pod == pod)
        .collect();
    let mut parts = Vec::new();
    if plan.egress == Egress::Nat {
        parts.push(match leases.iter().find(|l| l.bridge == network::BRIDGE) {
            Some(l) => format!("{} on {}, out through NAT", l.address, l.bridge),
            None => "out through NAT".into(),
        });
    }
    for n in &plan.networks {
        let bridge = network::network_bridge(n);
        parts.push(match leases.iter().find(|l| l.bridge == bridge) {
            Some(l) => format!("{} on network {n}", l.address),
            None => format!("network {n}"),
        });
    }
    if !plan.allow_host.is_empty() {
        let ports: Vec<String> = plan.allow_host.iter().map(|h| h.to_string()).collect();
        parts.push(format!("reaches host ports {}", ports.join(" ")));
    }
    let running = if leases.is_empty() {
        " (no address: not running)"
    } else {
        ""
    };
    Some(format!("private, {}{running}", parts.join(", ")))
}
