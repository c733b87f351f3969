//! `podc exec POD APP -- COMMAND`: a command in a running app's own world, as `podman exec`
//! and `kubectl exec` give one.
//!
//! `machinectl shell` and `systemd-run -M` ask the host's systemd (PID 1) and machined, which
//! a host without systemd lacks, and they start a unit of the pod's systemd rather than join
//! the app. So podc does what `nsenter` does, itself: it finds the pod's init (see
//! [`super::running`]), then the app's oldest process in the pod (the unit's main process:
//! every process of `system.slice/<app>.service` below the pod's cgroup shares the app's mount
//! namespace and root), and enters that process's namespaces (user where it is another,
//! cgroup, IPC, UTS, network, PID and mount: one `setns` through a pidfd), its root and its
//! working directory. The command then runs as the app runs: in the app's cgroups (so within
//! its limits, and ended with it), with its user, groups and environment, within its
//! capability bounding set and with `no_new_privs` where the app has it. Not applied: the
//! app's seccomp filter and its other sandbox settings (systemd's, which no other process
//! can take on).

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{Mode, OFlags};
use rustix::thread::{Gid, Uid};

use super::running::{find_running, ids, namespace, pids, Running};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("podc exec enters a pod's namespaces and needs root")]
    NotRoot,
    #[error("pod {0} is not running here (no systemd-nspawn of root's runs it)")]
    NotRunning(String),
    #[error("{which} names {count} running pods ({trees}); name one by its tree")]
    Ambiguous {
        which: String,
        count: usize,
        trees: String,
    },
    #[error("pod {0} is starting: nspawn has not started its systemd yet")]
    Starting(String),
    #[error("pod {pod} has no app {app:?}; its apps: {apps}")]
    UnknownApp {
        pod: String,
        app: String,
        apps: String,
    },
    #[error("app {app} of pod {pod} is not running (no process in its unit's cgroup)")]
    AppNotRunning { pod: String, app: String },
    #[error("app {app} of pod {pod}: {what}: {source}")]
    Enter {
        pod: String,
        app: String,
        what: String,
        source: io::Error,
    },
    #[error("{0}")]
    Tree(#[from] crate::launch::LaunchError),
}

/// Finds the one running pod `which` names (a pod name or a tree path).
pub fn running_pod(which: &str) -> Result<Running, ExecError> {
    let mut found = find_running(which);
    match found.len() {
        0 => Err(ExecError::NotRunning(which.to_string())),
        1 => Ok(found.remove(0)),
        count => Err(ExecError::Ambiguous {
            which: which.to_string(),
            count,
            trees: found
                .iter()
                .map(|r| r.tree.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether a `/proc/PID/cgroup` text puts the process in the unit of app `app` (its
/// `system.slice/<app>.service`, or a cgroup the app made below it), in any hierarchy.
pub fn in_app_cgroup(cgroup: &str, app: &str) -> bool {
    let unit = format!("/system.slice/{app}.service");
    cgroup.lines().any(|l| {
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        path.match_indices(&unit).any(|(i, m)| {
            let rest = &path[i + m.len()..];
            rest.is_empty() || rest.starts_with('/')
        })
    })
}

/// The start time of a process (field 22 of `/proc/PID/stat`, clock ticks after boot).
pub fn start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold anything: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The id inside a user namespace of host id `id`, by the namespace's `uid_map` or `gid_map`
/// as the host reads it (`inside outside count` lines).
pub fn map_id(id: u32, map: &str) -> Option<u32> {
    map.lines().find_map(|l| {
        let n: Vec<u64> = l
            .split_whitespace()
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        let [inside, outside, count] = n[..] else {
            return None;
        };
        let id = u64::from(id);
        (outside <= id && id < outside + count)
            .then(|| u32::try_from(inside + id - outside).ok())
            .flatten()
    })
}

/// The hexadecimal `CapBnd:` of `/proc/PID/status`.
pub fn bounding_set(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Whether `/proc/PID/status` says `NoNewPrivs: 1`.
pub fn no_new_privs(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .is_some_and(|v| v.trim() == "1")
}

/// The directory of the cgroup a `/proc/PID/cgroup` line names, on this host's mounts.
fn cgroup_dir(line: &str) -> Option<PathBuf> {
    let mut parts = line.splitn(3, ':');
    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
    let root = Path::new("/sys/fs/cgroup");
    let mount = match controllers {
        "" if root.join("cgroup.controllers").is_file() => root.to_path_buf(),
        "" => root.join("unified"),
        c => root.join(c.strip_prefix("name=").unwrap_or(c)),
    };
    Some(mount.join(path.trim_start_matches('/')))
}

/// The app's oldest process in the pod whose init is `leader`: its unit's main process.
pub fn app_process(leader: u32, app: &str) -> Option<u32> {
    let ns = namespace(leader, "pid")?;
    pids()
        .into_iter()
        .filter(|&p| p != leader && namespace(p, "pid").as_ref() == Some(&ns))
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|c| in_app_cgroup(&c, app))
        })
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            Some((start_time(&stat)?, p))
        })
        .min()
        .map(|(_, p)| p)
}

/// Everything taken from the app's process before entering: its namespaces (as one pidfd),
/// root, working directory, cgroups, identity and environment.
struct Entry {
    pidfd: OwnedFd,
    spaces: rustix::thread::ThreadNameSpaceType,
    cgroup_ns: Option<OwnedFd>,
    root: OwnedFd,
    cwd: Option<OwnedFd>,
    procs: Vec<OwnedFd>,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    bounding: u64,
    no_new_privs: bool,
    env: Vec<(String, String)>,
}

fn open_path(path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn read_entry(pid: u32) -> io::Result<Entry> {
    use rustix::thread::ThreadNameSpaceType as T;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32).ok_or(io::ErrorKind::InvalidInput)?,
        rustix::process::PidfdFlags::empty(),
    )?;
    let proc = format!("/proc/{pid}");
    let status = fs::read_to_string(format!("{proc}/status"))?;
    let me = std::process::id();
    let other = |kind: &str| namespace(pid, kind) != namespace(me, kind);
    let mut spaces = T::empty();
    for (kind, flag) in [
        ("user", T::USER),
        ("ipc", T::INTER_PROCESS_COMMUNICATION),
        ("uts", T::HOST_NAME_AND_NIS_DOMAIN_NAME),
        ("net", T::NETWORK),
        ("pid", T::PROCESS_ID),
        ("mnt", T::MOUNT),
    ] {
        if other(kind) {
            spaces |= flag;
        }
    }
    // The cgroup namespace is entered by the command itself, once it is in the app's cgroups:
    // from inside the namespace the cgroup podc starts in is out of reach.
    let cgroup_ns = match other("cgroup") {
        true => Some(open_path(&format!("{proc}/ns/cgroup"), OFlags::RDONLY)?),
        false => None,
    };
    // The ids as the host sees them, as the pod's user namespace has them.
    let (uid_map, gid_map) = match spaces.contains(T::USER) {
        true => (
            Some(fs::read_to_string(format!("{proc}/uid_map"))?),
            Some(fs::read_to_string(format!("{proc}/gid_map"))?),
        ),
        false => (None, None),
    };
    let inside = |id: u32, map: &Option<String>| -> io::Result<u32> {
        match map {
            Some(m) => map_id(id, m).ok_or_else(|| io::ErrorKind::InvalidData.into()),
            None => Ok(id),
        }
    };
    let first = |key| -> io::Result<u32> {
        ids(&status, key)
            .and_then(|v| v.first().copied())
            .ok_or_else(|| io::ErrorKind::InvalidData.into())
    };
    let groups = ids(&status, "Groups:")
        .ok_or(io::ErrorKind::InvalidData)?
        .into_iter()
        .map(|g| inside(g, &gid_map).map(Gid::from_raw))
        .collect::<io::Result<Vec<_>>>()?;
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let procs = fs::read_to_string(format!("{proc}/cgroup"))?
        .lines()
        .filter(|l| !own.lines().any(|o| o == *l))
        .filter_map(cgroup_dir)
        .map(|d| {
            let path = d.join("cgroup.procs");
            open_path(&path.display().to_string(), OFlags::WRONLY)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let env = fs::read(format!("{proc}/environ"))?
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    Ok(Entry {
        spaces,
        cgroup_ns,
        root: open_path(&format!("{proc}/root"), OFlags::PATH | OFlags::DIRECTORY)?,
        cwd: open_path(&format!("{proc}/cwd"), OFlags::PATH | OFlags::DIRECTORY).ok(),
        procs,
        uid: Uid::from_raw(inside(first("Uid:")?, &uid_map)?),
        gid: Gid::from_raw(inside(first("Gid:")?, &gid_map)?),
        groups,
        bounding: bounding_set(&status).ok_or(io::ErrorKind::InvalidData)?,
        no_new_privs: no_new_privs(&status),
        env,
        pidfd,
    })
}

/// Enters the app's namespaces (but its cgroup namespace), root and working directory: this
/// process now sees what the app sees, and its children are in the pod's PID namespace.
fn enter(e: &Entry) -> io::Result<()> {
    // Still the process whose files were read (its pid is not yet another's).
    let mut poll = [rustix::event::PollFd::new(
        &e.pidfd,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut poll, Some(&zero))? > 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the app's process ended",
        ));
    }
    rustix::thread::move_into_thread_name_spaces(e.pidfd.as_fd(), e.spaces)?;
    rustix::process::fchdir(&e.root)?;
    rustix::process::chroot(".")?;
    match &e.cwd {
        Some(cwd) => rustix::process::fchdir(cwd)?,
        None => rustix::process::chdir("/")?,
    }
    Ok(())
}

/// What the command's process does between fork and exec, with system calls alone: joins the
/// app's cgroups and cgroup namespace, keeps the app's bounding set, takes its groups, group
/// and user, and `no_new_privs`.
fn become_app(e: &Entry) -> io::Result<()> {
    use rustix::thread::{self as t, CapabilitySet};
    for procs in &e.procs {
        rustix::io::write(procs, b"0")?;
    }
    if let Some(ns) = &e.cgroup_ns {
        t::move_into_link_name_space(ns.as_fd(), Some(t::LinkNameSpaceType::ControlGroup))?;
    }
    for cap in 0..64u32 {
        let c = CapabilitySet::from_bits_retain(1 << cap);
        // Past the kernel's last capability the question is refused: nothing to drop.
        if e.bounding & (1 << cap) == 0 && t::capability_is_in_bounding_set(c).unwrap_or(false) {
            t::remove_capability_from_bounding_set(c)?;
        }
    }
    t::set_thread_groups(&e.groups)?;
    t::set_thread_res_gid(e.gid, e.gid, e.gid)?;
    t::set_thread_res_uid(e.uid, e.uid, e.uid)?;
    if e.no_new_privs {
        t::set_no_new_privs(true)?;
    }
    Ok(())
}

/// `podc exec`: runs `command` in app `app` of the running pod `which` (a name or a tree) and
/// returns its exit code (128 + a signal that ended it). A command that is not there is 127,
/// one that cannot be run 126, as a shell says.
pub fn exec(which: &str, app: &str, command: &[String]) -> Result<i32, ExecError> {
    if !rustix::process::geteuid().is_root() {
        return Err(ExecError::NotRoot);
    }
    let running = running_pod(which)?;
    let pod = running.pod.clone();
    let plan = crate::launch::read_plan(&running.tree)?;
    if !plan.apps.iter().any(|a| a == app) {
        return Err(ExecError::UnknownApp {
            pod,
            app: app.into(),
            apps: plan.apps.join(", "),
        });
    }
    let leader = running.leader.ok_or(ExecError::Starting(pod.clone()))?;
    let pid = app_process(leader, app).ok_or_else(|| ExecError::AppNotRunning {
        pod: pod.clone(),
        app: app.into(),
    })?;
    let failed = |what: &str| {
        let (pod, app, what) = (pod.clone(), app.to_string(), what.to_string());
        move |source| ExecError::Enter {
            pod,
            app,
            what,
            source,
        }
    };
    let entry = read_entry(pid).map_err(failed(&format!("read process {pid}")))?;
    enter(&entry).map_err(failed(&format!("enter process {pid}")))?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).env_clear().envs(entry.env.clone());
    if let Some(term) =
        std::env::var_os("TERM").filter(|_| !entry.env.iter().any(|(k, _)| k == "TERM"))
    {
        cmd.env("TERM", term);
    }
    // SAFETY: become_app makes system calls only (no allocation, no lock), on data prepared
    // before the fork.
    unsafe {
        cmd.pre_exec(move || become_app(&entry));
    }
    // The terminal's ^C and ^\ are the command's; podc waits for it to end.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::default());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            eprintln!("podc exec: app {app} of pod {pod}: {}: {e}", command[0]);
            return Ok(code);
        }
    };
    let status = child.wait().map_err(failed("wait for the command"))?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_cgroup_is_its_unit_or_below_in_any_hierarchy() {
        let v1 = "9:name=systemd:/podc-e2e/system.slice/web.service\n4:memory:/podc-e2e/system.slice/web.service\n3:cpuset:/\n0::/podc-e2e/system.slice/web.service\n";
        assert!(in_app_cgroup(v1, "web"));
        assert!(!in_app_cgroup(v1, "we"));
        assert!(!in_app_cgroup(v1, "eb"));
        assert!(in_app_cgroup(
            "0::/machine.slice/podc-x.service/payload/system.slice/web.service/work\n",
            "web"
        ));
        assert!(!in_app_cgroup(
            "0::/machine.slice/podc-x.service/payload/system.slice/web.service-other\n",
            "web"
        ));
        assert!(!in_app_cgroup(
            "0::/machine.slice/podc-x.service/payload/init.scope\n",
            "web"
        ));
    }

    #[test]
    fn start_time_counts_after_the_command_name() {
        let stat = "1234 (we ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(start_time(stat), Some(987654));
        assert_eq!(start_time("1 (x) S"), None);
        // This process's own.
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(start_time(&own).is_some());
    }

    #[test]
    fn ids_map_into_the_pods_user_namespace() {
        let map = "         0     524288      65536\n";
        assert_eq!(map_id(524288, map), Some(0));
        assert_eq!(map_id(525288, map), Some(1000));
        assert_eq!(map_id(524287, map), None);
        assert_eq!(map_id(524288 + 65536, map), None);
        assert_eq!(map_id(5, "0 0 4294967295\n"), Some(5));
        assert_eq!(map_id(5, "junk\n"), None);
    }

    #[test]
    fn capabilities_and_no_new_privs_are_read() {
        let s = "CapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n";
        assert_eq!(bounding_set(s), Some(0xa80425fb));
        assert!(no_new_privs(s));
        assert!(!no_new_privs("NoNewPrivs:\t0\n"));
        assert_eq!(bounding_set("CapBnd:\tzz\n"), None);
    }
}
