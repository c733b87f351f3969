//! Operator commands on a systemd host: `podc install`, `uninstall`, `status` and `logs`.
//!
//! Everything these commands learn about a pod comes from what `podc build` wrote: the pod's
//! name and apps from the tree's `mounts.toml`, its install directory from the host unit's
//! `ExecStart=<podc> launch <dir>` (the unit is what systemd runs, so it is the truth), whether
//! it has published ports from the presence of `podc-<pod>.socket`. Nothing is guessed.
//!
//! systemd is driven through `systemctl` behind the [`Systemd`] trait, so the file work (the
//! atomic copy and swap, the units) is tested on this machine against a temporary root with a
//! recording stand-in, and the parsing and formatting of `systemctl show` and cgroup files are
//! pure functions tested with fixtures of real file contents. The VM hosts (tests/vm/guest.sh)
//! prove the real thing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::manifest::CgroupVersion;
use crate::tree::layout::{GENERATED, POD_OWNED};

/// Where systemd reads the units an administrator installed.
pub const UNIT_DIR: &str = "/etc/systemd/system";

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Tree(#[from] crate::launch::LaunchError),
    #[error("{0}: no ExecStart=<podc> launch <dir> line; this is not a host unit podc wrote")]
    NoExecStart(PathBuf),
    #[error("{0}: exists and is not an installed podc tree (no podc mounts.toml in it); refusing to replace it")]
    Foreign(PathBuf),
    #[error(
        "pod {0} is running; stop it first, or give --restart to restart it with the new tree"
    )]
    Running(String),
    #[error("pod {pod} is not installed (no {unit})")]
    NotInstalled { pod: String, unit: PathBuf },
    #[error("`{command}` failed: {message}")]
    Systemctl { command: String, message: String },
    #[error("this command changes the host's systemd units and needs root")]
    NotRoot,
    #[error("systemd is not running as PID 1 here (no /run/systemd/system), so there is no systemd to install a pod into; `podc launch TREE` runs a tree directly")]
    NoSystemd,
    #[error("{0:?} is not a pod name")]
    BadName(String),
    #[error("pod {pod} has no app {app:?}; its apps: {apps}")]
    UnknownApp {
        pod: String,
        app: String,
        apps: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpError + '_ {
    move |source| OpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The host's systemd, as these commands use it.
pub trait Systemd {
    /// Runs `systemctl ARGS`, returning its standard output, or why it failed.
    fn systemctl(&mut self, args: &[&str]) -> Result<String, OpError>;
    /// `systemctl is-active UNIT`: `active`, `inactive`, `failed`, ... (never an error).
    fn is_active(&mut self, unit: &str) -> String;
}

/// The real one.
pub struct Systemctl;

impl Systemd for Systemctl {
    fn systemctl(&mut self, args: &[&str]) -> Result<String, OpError> {
        let out =
            Command::new("systemctl")
                .args(args)
                .output()
                .map_err(|e| OpError::Systemctl {
                    command: format!("systemctl {}", args.join(" ")),
                    message: e.to_string(),
                })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(OpError::Systemctl {
                command: format!("systemctl {}", args.join(" ")),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn is_active(&mut self, unit: &str) -> String {
        Command::new("systemctl")
            .args(["is-active", unit])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// Refuses, with the reason, where these commands cannot work: not root, or no systemd as
/// PID 1 (`/run/systemd/system` is how sd_booted(3) tells).
pub fn require_systemd_host() -> Result<(), OpError> {
    if crate::sys::effective_uid() != 0 {
        return Err(OpError::NotRoot);
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(OpError::NoSystemd);
    }
    Ok(())
}

/// A built tree, as far as installing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub pod: String,
    /// The install directory, from the host unit's `ExecStart=`.
    pub install_dir: String,
    /// The host unit files in the tree: `podc-<pod>.service`, and `podc-<pod>.socket` for a
    /// pod with published ports.
    pub units: Vec<String>,
    /// The unit `--now` enables and starts: the socket where there is one (`start:
    /// connection`), else the service.
    pub start_unit: String,
}

impl Tree {
    pub fn service(&self) -> String {
        format!("podc-{}.service", self.pod)
    }
}

/// Reads what `install` needs from a tree `podc build` wrote, holding it to the launcher's
/// rules (a tree can be edited after review).
pub fn read_tree(tree: &Path) -> Result<Tree, OpError> {
    let plan = crate::launch::read_plan(tree)?;
    let service = format!("podc-{}.service", plan.pod);
    let path = tree.join(&service);
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    let install_dir = install_dir_of(&text).ok_or_else(|| OpError::NoExecStart(path.clone()))?;
    let socket = format!("podc-{}.socket", plan.pod);
    let mut units = vec![service.clone()];
    let start_unit = if tree.join(&socket).is_file() {
        units.push(socket.clone());
        socket
    } else {
        service
    };
    Ok(Tree {
        pod: plan.pod,
        install_dir,
        units,
        start_unit,
    })
}

/// The install directory named by a host unit: the third word of `ExecStart=<podc> launch
/// <dir>`, decoded as systemd reads it. Only a normal absolute path is accepted (podc build
/// writes nothing else there).
pub fn install_dir_of(unit: &str) -> Option<String> {
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let words = crate::systemd::escape::decode_words(line, true)?;
    match words.as_slice() {
        [_, launch, dir]
            if launch == "launch" && crate::systemd::escape::is_normal_abs_path(dir) =>
        {
            Some(dir.clone())
        }
        _ => None,
    }
}

/// Where files go: below `root`, `/` on a real host, a temporary directory in tests.
#[derive(Debug, Clone)]
pub struct Root(pub PathBuf);

impl Root {
    /// The host path `abs` (absolute) below this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    /// Enable and start the pod (its socket for `start: connection`).
    pub now: bool,
    /// Replace a running pod: stop it, swap the tree, start it again.
    pub restart: bool,
}

/// What `install` did, for the operator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Installed {
    pub dir: PathBuf,
    pub units: Vec<PathBuf>,
    pub kept: Vec<String>,
    pub replaced: bool,
    pub restarted: bool,
}

/// Whether systemd counts a unit as running (anything but stopped or failed).
fn running(state: &str) -> bool {
    matches!(
        state,
        "active" | "activating" | "reloading" | "deactivating"
    )
}

/// Installs a built tree: copies it beside its install directory, carries the pod-owned parts
/// of an earlier install across ([`POD_OWNED`]), swaps it in with one
/// `renameat2(RENAME_EXCHANGE)`, writes the host unit(s) atomically, reloads systemd, and with
/// `--now` enables and starts the pod. A running pod is replaced only with `--restart`.
///
/// A crash leaves the complete old tree or the complete new one at the install directory (and
/// at worst a `.podc-install-*` directory beside it); the pod is stopped only once the new tree
/// is fully copied, so a restart is as short as a rename and a unit reload.
pub fn install(
    tree: &Path,
    root: &Root,
    sd: &mut dyn Systemd,
    opts: InstallOptions,
) -> Result<Installed, OpError> {
    let t = read_tree(tree)?;
    let dest = root.path(&t.install_dir);
    let parent = dest.parent().expect("an absolute normal path has a parent");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .map_err(io_err(parent))?;
    let exists = match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {
            let plan = fs::read_to_string(dest.join("mounts.toml")).unwrap_or_default();
            if !plan.starts_with(GENERATED) {
                return Err(OpError::Foreign(dest));
            }
            true
        }
        Ok(_) => return Err(OpError::Foreign(dest)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(&dest)(e)),
    };
    // Which of the pod's units are running now: these are stopped for the swap and started
    // again after it.
    let active: Vec<String> = t
        .units
        .iter()
        .filter(|u| running(&sd.is_active(u)))
        .cloned()
        .collect();
    if active.contains(&t.service()) && !opts.restart {
        return Err(OpError::Running(t.pod));
    }

    let staging = tempfile::Builder::new()
        .prefix(".podc-install-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_err(staging.path()))?;
    copy_tree(tree, staging.path(), Path::new(""))?;
    let file = fs::File::open(staging.path()).map_err(io_err(staging.path()))?;
    rustix::fs::syncfs(&file).map_err(|e| io_err(parent)(e.into()))?;

    if !active.is_empty() {
        let mut args = vec!["stop"];
        args.extend(active.iter().map(String::as_str));
        sd.systemctl(&args)?;
    }
    let mut kept = Vec::new();
    if exists {
        for rel in POD_OWNED {
            let old = dest.join(rel);
            if fs::symlink_metadata(&old).is_err() {
                continue;
            }
            let new = staging.path().join(rel);
            let new_parent = new.parent().expect("below the staging directory");
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(new_parent)
                .map_err(io_err(new_parent))?;
            fs::rename(&old, &new).map_err(io_err(&old))?;
            kept.push(rel.to_string());
        }
        crate::sys::exchange(staging.path(), &dest).map_err(io_err(&dest))?;
        // The staging directory holds the old tree now and is removed with it.
        staging.close().map_err(io_err(parent))?;
    } else {
        let tmp = staging.keep();
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    }

    let unit_dir = root.path(UNIT_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&unit_dir)
        .map_err(io_err(&unit_dir))?;
    let mut units = Vec::new();
    for unit in &t.units {
        let text = fs::read(tree.join(unit)).map_err(io_err(&tree.join(unit)))?;
        let to = unit_dir.join(unit);
        write_atomic(&to, &text)?;
        units.push(to);
    }
    // A socket unit the new tree no longer has (the pod stopped publishing ports) goes.
    let stale = unit_dir.join(format!("podc-{}.socket", t.pod));
    if !t.units.iter().any(|u| u.ends_with(".socket")) && stale.exists() {
        let name = format!("podc-{}.socket", t.pod);
        let _ = sd.systemctl(&["disable", "--now", &name]);
        fs::remove_file(&stale).map_err(io_err(&stale))?;
    }
    sd.systemctl(&["daemon-reload"])?;
    if opts.now {
        sd.systemctl(&["enable", "--now", &t.start_unit])?;
    }
    if !active.is_empty() {
        let mut args = vec!["start"];
        args.extend(active.iter().map(String::as_str));
        sd.systemctl(&args)?;
    }
    Ok(Installed {
        dir: dest,
        units,
        kept,
        replaced: exists,
        restarted: !active.is_empty(),
    })
}

/// Copies the tree `from` into the existing directory `to`: directories, regular files with
/// their modes, and symbolic links as links. What the launcher left in a tree that was run in
/// place ([`POD_OWNED`], `volumes/`) is not the build's and is not copied.
fn copy_tree(from: &Path, to: &Path, rel: &Path) -> Result<(), OpError> {
    let dir = from.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let rel_str = rel.to_string_lossy();
        if POD_OWNED.contains(&rel_str.as_ref()) || rel_str == "volumes" {
            continue;
        }
        let src = from.join(&rel);
        let dst = to.join(&rel);
        let meta = fs::symlink_metadata(&src).map_err(io_err(&src))?;
        if meta.is_dir() {
            fs::create_dir(&dst).map_err(io_err(&dst))?;
            fs::set_permissions(&dst, meta.permissions()).map_err(io_err(&dst))?;
            copy_tree(from, to, &rel)?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&src).map_err(io_err(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io_err(&dst))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

/// Writes a file by writing a temporary file beside it, flushing it and renaming it over.
fn write_atomic(to: &Path, bytes: &[u8]) -> Result<(), OpError> {
    use std::io::Write;
    let dir = to.parent().expect("a unit file has a directory");
    let mut tmp = tempfile::Builder::new()
        .prefix(".podc-unit-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(to))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err(to))?;
    tmp.as_file().sync_all().map_err(io_err(to))?;
    tmp.persist(to).map_err(|e| io_err(to)(e.error))?;
    Ok(())
}

/// A pod name given on the command line, held to the manifest's name rule's essentials: it
/// names files in /etc/systemd/system, so no `/`, no leading `.`, nothing empty.
fn check_pod_name(pod: &str) -> Result<(), OpError> {
    let ok = !pod.is_empty()
        && !pod.starts_with('.')
        && pod
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(OpError::BadName(pod.into()))
    }
}

/// An installed pod: its host unit and install directory.
#[derive(Debug, Clone)]
pub struct InstalledPod {
    pub pod: String,
    pub service_file: PathBuf,
    pub dir: PathBuf,
}

/// Finds an installed pod through its host unit in /etc/systemd/system.
pub fn find_installed(pod: &str, root: &Root) -> Result<InstalledPod, OpError> {
    check_pod_name(pod)?;
    let service_file = root.path(UNIT_DIR).join(format!("podc-{pod}.service"));
    let text = match fs::read_to_string(&service_file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OpError::NotInstalled {
                pod: pod.into(),
                unit: service_file,
            })
        }
        Err(e) => return Err(io_err(&service_file)(e)),
    };
    let dir = install_dir_of(&text).ok_or_else(|| OpError::NoExecStart(service_file.clone()))?;
    Ok(InstalledPod {
        pod: pod.into(),
        service_file,
        dir: root.path(&dir),
    })
}

/// Stops and disables a pod, removes its units and (unless `keep_data`) its install
/// directory, and reloads systemd. Returns what was removed.
pub fn uninstall(
    pod: &str,
    root: &Root,
    sd: &mut dyn Systemd,
    keep_data: bool,
) -> Result<Vec<PathBuf>, OpError> {
    let p = find_installed(pod, root)?;
    let unit_dir = root.path(UNIT_DIR);
    let units: Vec<String> = [".socket", ".service"]
        .iter()
        .map(|s| format!("podc-{pod}{s}"))
        .filter(|u| unit_dir.join(u).exists())
        .collect();
    let mut args = vec!["disable", "--now"];
    args.extend(units.iter().map(String::as_str));
    sd.systemctl(&args)?;
    let mut removed = Vec::new();
    for u in &units {
        let path = unit_dir.join(u);
        fs::remove_file(&path).map_err(io_err(&path))?;
        removed.push(path);
    }
    sd.systemctl(&["daemon-reload"])?;
    // A failed pod stays listed as failed until reset; it is gone now.
    let _ = sd.systemctl(&["reset-failed", &format!("podc-{pod}.service")]);
    if !keep_data && p.dir.exists() {
        let plan = fs::read_to_string(p.dir.join("mounts.toml")).unwrap_or_default();
        if !plan.starts_with(GENERATED) {
            return Err(OpError::Foreign(p.dir));
        }
        fs::remove_dir_all(&p.dir).map_err(io_err(&p.dir))?;
        removed.push(p.dir);
    }
    Ok(removed)
}

// --- status -------------------------------------------------------------------------------

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

/// A limit: a number, or none (`max` on v2, the huge "unlimited" values on v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    Max(#[serde(serialize_with = "ser_max")] ()),
    Value(u64),
}

fn ser_max<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("max")
}

/// An app's live limits and usage, read from its cgroup's files. `None`: not readable (the
/// controller is not there, or the app is not running).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub memory_max: Option<Limit>,
    pub memory_current: Option<u64>,
    /// The CPU quota as (quota, period) in microseconds; quota `Max` is no limit.
    pub cpu_max: Option<(Limit, u64)>,
    pub cpu_usage_usec: Option<u64>,
    pub pids_max: Option<Limit>,
    pub pids_current: Option<u64>,
}

/// v1 reports "no memory limit" as the largest page-aligned signed 64-bit value (or close).
const V1_UNLIMITED: u64 = 1 << 62;

fn num(s: Option<&str>) -> Option<u64> {
    s?.trim().parse().ok()
}

fn limit(s: Option<&str>) -> Option<Limit> {
    match s?.trim() {
        "max" => Some(Limit::Max(())),
        v => v.parse().ok().map(Limit::Value),
    }
}

impl Usage {
    /// From a cgroup v2 directory's files, given as name → contents.
    pub fn from_v2(files: &BTreeMap<&str, String>) -> Usage {
        let f = |k: &str| files.get(k).map(String::as_str);
        let cpu_max = f("cpu.max").and_then(|s| {
            let (q, p) = s.trim().split_once(' ')?;
            Some((limit(Some(q))?, p.parse().ok()?))
        });
        let cpu_usage_usec = f("cpu.stat").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
        });
        Usage {
            memory_max: limit(f("memory.max")),
            memory_current: num(f("memory.current")),
            cpu_max,
            cpu_usage_usec,
            pids_max: limit(f("pids.max")),
            pids_current: num(f("pids.current")),
        }
    }

    /// From the cgroup v1 controllers' files of an app, given as `controller file` → contents
    /// (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, `cpuacct.usage`, `pids.max`, ...).
    pub fn from_v1(files: &BTreeMap<&str, String>) -> Usage {
        let f = |k: &str| files.get(k).map(String::as_str);
        let memory_max = num(f("memory.limit_in_bytes")).map(|v| {
            if v >= V1_UNLIMITED {
                Limit::Max(())
            } else {
                Limit::Value(v)
            }
        });
        let cpu_max = match (f("cpu.cfs_quota_us"), num(f("cpu.cfs_period_us"))) {
            (Some(q), Some(p)) => match q.trim() {
                "-1" => Some((Limit::Max(()), p)),
                q => q.parse().ok().map(|q| (Limit::Value(q), p)),
            },
            _ => None,
        };
        Usage {
            memory_max,
            memory_current: num(f("memory.usage_in_bytes")),
            cpu_max,
            // cpuacct.usage is in nanoseconds.
            cpu_usage_usec: num(f("cpuacct.usage")).map(|ns| ns / 1000),
            pids_max: limit(f("pids.max")),
            pids_current: num(f("pids.current")),
        }
    }
}

/// The files `status` reads in an app's cgroup directory, per hierarchy.
pub const V2_FILES: &[&str] = &[
    "memory.max",
    "memory.current",
    "cpu.max",
    "cpu.stat",
    "pids.max",
    "pids.current",
];
/// v1: (controller hierarchy, file); the cpu files are in the cpu controller's hierarchy,
/// `cpuacct.usage` in cpuacct's (one directory where they are co-mounted).
pub const V1_FILES: &[(&str, &str)] = &[
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.usage_in_bytes"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpuacct", "cpuacct.usage"),
    ("pids", "pids.max"),
    ("pids", "pids.current"),
];

/// One app of a pod, in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppStatus {
    pub name: String,
    pub state: UnitState,
    /// The app's cgroup directory (in the memory hierarchy on v1), where found.
    pub cgroup: Option<PathBuf>,
    pub usage: Usage,
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
}

fn bytes(v: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v} B")
    } else if x.fract() == 0.0 {
        format!("{x:.0} {}", UNITS[i])
    } else {
        format!("{x:.1} {}", UNITS[i])
    }
}

fn or_dash<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn limit_str(l: Limit, f: impl Fn(u64) -> String) -> String {
    match l {
        Limit::Max(()) => "max".into(),
        Limit::Value(v) => f(v),
    }
}

/// "used / limit" for a resource.
fn pair(current: Option<u64>, max: Option<Limit>, f: impl Fn(u64) -> String + Copy) -> String {
    format!(
        "{} / {}",
        or_dash(current, f),
        or_dash(max, |l| limit_str(l, f))
    )
}

impl Usage {
    fn cells(&self) -> [String; 4] {
        let cpu = or_dash(self.cpu_max, |(q, p)| match q {
            Limit::Max(()) => "max".into(),
            Limit::Value(q) if p > 0 => format!("{:.2}", q as f64 / p as f64),
            Limit::Value(q) => q.to_string(),
        });
        [
            pair(self.memory_current, self.memory_max, bytes),
            cpu,
            or_dash(self.cpu_usage_usec, |u| format!("{:.2}s", u as f64 / 1e6)),
            pair(self.pids_current, self.pids_max, |v| v.to_string()),
        ]
    }
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
        let mut rows = vec![
            ["APP", "STATE", "EXIT", "MEMORY", "CPU", "CPU TIME", "TASKS"]
                .map(String::from)
                .to_vec(),
        ];
        for a in &self.apps {
            let state = if a.state.sub.is_empty() {
                a.state.active.clone()
            } else {
                format!("{} ({})", a.state.active, a.state.sub)
            };
            let mut row = vec![
                a.name.clone(),
                state,
                or_dash(a.state.exit_status, |s| s.to_string()),
            ];
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
        Ok(())
    }
}

/// The directory of `app`'s unit below `pod_cg`, found rather than assumed (nspawn puts the
/// container below `payload/` on v2; the pod's systemd adds `system.slice/`).
pub fn find_app_cgroup(pod_cg: &Path, app: &str) -> Option<PathBuf> {
    let want = format!("{app}.service");
    let mut queue = vec![(pod_cg.to_path_buf(), 0)];
    while let Some((dir, depth)) = queue.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subdirs.sort();
        for d in subdirs {
            if d.file_name().is_some_and(|n| n.to_string_lossy() == want) {
                return Some(d);
            }
            if depth < 3 {
                queue.push((d, depth + 1));
            }
        }
    }
    None
}

/// The cgroup v1 hierarchy directory of a controller (`cpu` may be `cpu,cpuacct`).
fn v1_hierarchy(cgroup_root: &Path, controller: &str) -> PathBuf {
    for name in [
        controller.to_string(),
        "cpu,cpuacct".into(),
        "cpuacct,cpu".into(),
    ] {
        let p = cgroup_root.join(&name);
        if name.split(',').any(|c| c == controller) && p.is_dir() {
            return p;
        }
    }
    cgroup_root.join(controller)
}

/// Reads an app's usage from the host's cgroup files below `cgroup_root` (/sys/fs/cgroup).
pub fn read_usage(
    cgroup_root: &Path,
    version: CgroupVersion,
    pod: &str,
    app: &str,
) -> (Option<PathBuf>, Usage) {
    let pod_rel = format!("machine.slice/podc-{pod}.service");
    match version {
        CgroupVersion::V2 => {
            let Some(dir) = find_app_cgroup(&cgroup_root.join(&pod_rel), app) else {
                return (None, Usage::default());
            };
            let files = V2_FILES
                .iter()
                .filter_map(|&f| Some((f, fs::read_to_string(dir.join(f)).ok()?)))
                .collect();
            (Some(dir), Usage::from_v2(&files))
        }
        CgroupVersion::V1 => {
            let mut files = BTreeMap::new();
            let mut memory_dir = None;
            for &(controller, file) in V1_FILES {
                let pod_cg = v1_hierarchy(cgroup_root, controller).join(&pod_rel);
                if let Some(dir) = find_app_cgroup(&pod_cg, app) {
                    if let Ok(text) = fs::read_to_string(dir.join(file)) {
                        files.insert(file, text);
                    }
                    if controller == "memory" {
                        memory_dir = Some(dir);
                    }
                }
            }
            (memory_dir, Usage::from_v1(&files))
        }
    }
}

/// The pod's PID 1 (its systemd): the child of the host unit's main process, which is
/// systemd-nspawn (`podc launch` execs it).
fn pod_leader(main_pid: u64) -> Option<u64> {
    let children = fs::read_to_string(format!("/proc/{main_pid}/task/{main_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The state of each app's unit inside a running pod, asked of the pod's systemd through its
/// private socket from inside the pod's mount and PID namespaces (`nsenter -m -p`; only the
/// mount namespace gives "Transport endpoint is not connected"). `systemctl -M` is no use
/// here: it needs D-Bus running in the pod, and a pod runs only its apps.
fn app_states(leader: Option<u64>, apps: &[String]) -> Vec<Option<UnitState>> {
    let units: Vec<String> = apps.iter().map(|a| format!("{a}.service")).collect();
    let text = leader.and_then(|l| {
        let l = l.to_string();
        let mut args = vec![
            "-t",
            &l,
            "-m",
            "-p",
            "systemctl",
            "show",
            "-p",
            UNIT_PROPERTIES,
        ];
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
fn journal_exit(dir: &Path, app: &str) -> Option<i64> {
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
    let states = if is_running {
        app_states(host.main_pid.and_then(pod_leader), &plan.apps)
    } else {
        vec![None; plan.apps.len()]
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
            }
        })
        .collect();
    Ok(PodStatus {
        pod: pod.into(),
        unit,
        dir: p.dir,
        cgroup: plan.cgroup.to_string(),
        host,
        apps,
    })
}

/// The `journalctl` command line of `podc logs`: the running pod's journal through machined,
/// else the journal files in its installed tree (readable at any time).
pub fn logs_command(
    pod: &str,
    dir: &Path,
    pod_running: bool,
    app: Option<&str>,
    follow: bool,
) -> Vec<String> {
    let mut args = vec!["journalctl".to_string()];
    if pod_running {
        args.extend(["-M".into(), format!("podc-{pod}")]);
    } else {
        args.extend([
            "-D".into(),
            dir.join("rootfs/var/log/journal").display().to_string(),
        ]);
    }
    if let Some(app) = app {
        args.extend(["-u".into(), format!("{app}.service")]);
    }
    if follow {
        args.push("-f".into());
    } else {
        args.push("--no-pager".into());
    }
    args
}

/// Resolves `podc logs POD [APP]` to its journalctl command line.
pub fn logs(
    pod: &str,
    app: Option<&str>,
    follow: bool,
    sd: &mut dyn Systemd,
) -> Result<Vec<String>, OpError> {
    let p = find_installed(pod, &Root("/".into()))?;
    if let Some(app) = app {
        let plan = crate::launch::read_plan(&p.dir)?;
        if !plan.apps.iter().any(|a| a == app) {
            return Err(OpError::UnknownApp {
                pod: pod.into(),
                app: app.into(),
                apps: plan.apps.join(", "),
            });
        }
    }
    let is_running = running(&sd.is_active(&format!("podc-{pod}.service")));
    Ok(logs_command(pod, &p.dir, is_running, app, follow))
}

/// A stand-in for systemd under `--root`: nothing is running, and every systemctl command is
/// printed instead of run, so a test sees what would happen.
pub struct Printed<'a, W: io::Write>(pub &'a mut W);

impl<W: io::Write> Systemd for Printed<'_, W> {
    fn systemctl(&mut self, args: &[&str]) -> Result<String, OpError> {
        let _ = writeln!(self.0, "would run: systemctl {}", args.join(" "));
        Ok(String::new())
    }
    fn is_active(&mut self, _unit: &str) -> String {
        "inactive".into()
    }
}
