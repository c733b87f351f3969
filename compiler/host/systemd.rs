//! The host's systemd as the host commands use it: `systemctl` behind the [`Systemd`] trait
//! (and a printing stand-in for `--root`), the errors, and where files go ([`Root`]).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    #[error("{path}: {reason}: not an install directory podc made for this pod; refusing to replace or remove it{hint}")]
    Foreign {
        path: PathBuf,
        reason: String,
        /// What the operator can do, where there is something (begins with a space).
        hint: String,
    },
    #[error("{path}: {reason}: another user could change what is below it; refusing to install to or remove {install_dir} (podc installs only below directories root owns that no one else can write, or sticky ones)")]
    UnsafeDir {
        path: PathBuf,
        install_dir: PathBuf,
        reason: String,
    },
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
    #[error("{path}: {reason}; this is not a tree `podc build` wrote (edited after review?); refusing to install it")]
    EditedTree { path: PathBuf, reason: String },
    #[error("{0:?} is not a pod name")]
    BadName(String),
    #[error("{path}: {reason}: not the persistent volumes directory podc made for this pod; refusing to remove it")]
    NotVolumes { path: PathBuf, reason: String },
    #[error("pod {0} is neither installed here nor running (alone) under that name; for a pod launched by hand, give its tree: podc logs TREE [APP]")]
    NoPod(String),
    #[error("pod {pod} has no app {app:?}; its apps: {apps}")]
    UnknownApp {
        pod: String,
        app: String,
        apps: String,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpError + '_ {
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

/// Where files go: below `root`, `/` on a real host, a temporary directory in tests.
#[derive(Debug, Clone)]
pub struct Root(pub PathBuf);

impl Root {
    /// The host path `abs` (absolute) below this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }
}

/// Whether systemd counts a unit as running (anything but stopped or failed).
pub(super) fn running(state: &str) -> bool {
    matches!(
        state,
        "active" | "activating" | "reloading" | "deactivating"
    )
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
