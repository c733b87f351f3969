//! `podc logs`: the journalctl command line for a pod or one of its apps: an installed pod's
//! through machined while its host unit runs it, else the journal files in its tree, where the
//! pod's systemd keeps them (`rootfs/var/log/journal`) however the pod was started. So a pod
//! launched by hand, with or without systemd on the host, is read by its tree, or by its name
//! while it runs ([`super::running`] finds its tree).

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

/// `podc logs TREE [APP]`: the journal files in a tree (a pod launched by hand, running or
/// not, or any tree a pod ran from).
pub fn tree_logs(tree: &Path, app: Option<&str>, follow: bool) -> Result<Vec<String>, OpError> {
    let plan = crate::launch::read_plan(tree)?;
    if let Some(app) = app {
        if !plan.apps.iter().any(|a| a == app) {
            return Err(OpError::UnknownApp {
                pod: plan.pod,
                app: app.into(),
                apps: plan.apps.join(", "),
            });
        }
    }
    Ok(logs_command(&plan.pod, tree, false, app, follow))
}

/// Resolves `podc logs WHICH [APP]` on any host: `WHICH` with a `/` is a tree; a name is an
/// installed pod where systemd (`sd`) is there to have installed it, else a pod running by
/// hand under that name.
pub fn logs_anywhere(
    which: &str,
    app: Option<&str>,
    follow: bool,
    sd: Option<&mut dyn Systemd>,
) -> Result<Vec<String>, OpError> {
    if which.contains('/') {
        return tree_logs(Path::new(which), app, follow);
    }
    if let Some(sd) = sd {
        match logs(which, app, follow, sd) {
            Err(OpError::NotInstalled { .. }) => {}
            other => return other,
        }
    }
    check_pod_name(which)?;
    let running = super::running::find_running(which);
    match running.as_slice() {
        [one] => tree_logs(&one.tree, app, follow),
        _ => Err(OpError::NoPod(which.into())),
    }
}
