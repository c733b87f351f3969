//! `podc logs`: the journalctl command line for a pod or one of its apps.

use std::path::Path;

use super::systemd::*;
use super::tree::*;

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
