//! The host commands on the command line: `podc install`, `uninstall`, `status`, `logs`
//! (their work is [`crate::host`]'s), and the command line's own `completions`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::Cli;
use super::exit::Exit;
use crate::host::{
    install, logs_anywhere, require_systemd_host, status, uninstall_with, InstallOptions, Printed,
    Root, Systemctl, UninstallOptions,
};

/// `podc install`.
pub fn install_command(
    tree: &Path,
    now: bool,
    restart: bool,
    root: Option<PathBuf>,
    out: &mut impl io::Write,
) -> Result<Exit, String> {
    let opts = InstallOptions { now, restart };
    let done = match root {
        Some(root) => install(tree, &Root(root), &mut Printed(&mut *out), opts),
        None => {
            require_systemd_host().map_err(|e| e.to_string())?;
            hold_to_this_host(tree)?;
            install(tree, &Root("/".into()), &mut Systemctl, opts)
        }
    }
    .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "installed {} ({}), units {}",
        done.dir.display(),
        if done.replaced {
            format!("replaced; kept {}", done.kept.join(", "))
        } else {
            "new".into()
        },
        done.units
            .iter()
            .map(|u| u.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (reference, recorded) in &done.images {
        let _ = match recorded {
            Ok(d) => writeln!(out, "image {reference}: runs {d}"),
            Err(why) => writeln!(
                out,
                "image {reference}: nothing recorded ({why}); the first launch records what it names then"
            ),
        };
    }
    if done.restarted {
        let _ = writeln!(out, "restarted the pod with the new tree");
    }
    Ok(Exit::Ok)
}

/// The tree's target against this host, as `podc launch` holds it: a pod installed here would
/// be launched here. Warnings go to standard error; a refusal installs nothing. (With `--root`
/// the tree goes to another system, whose host this is not.)
fn hold_to_this_host(tree: &Path) -> Result<(), String> {
    use crate::launch::target_check::{check_target, HostTarget};
    let plan = crate::launch::read_plan(tree).map_err(|e| e.to_string())?;
    let checked = check_target(tree, &plan, &HostTarget::detect());
    for w in &checked.warnings {
        eprintln!("warning: {}: {w}", tree.display());
    }
    match checked.refusals.first() {
        Some(r) => Err(format!("{}: {r}; nothing was installed", tree.display())),
        None => Ok(()),
    }
}

/// `podc uninstall`.
pub fn uninstall_command(
    pod: &str,
    opts: UninstallOptions,
    root: Option<PathBuf>,
    out: &mut impl io::Write,
) -> Result<Exit, String> {
    let removed = match root {
        Some(root) => uninstall_with(pod, &Root(root), &mut Printed(&mut *out), opts),
        None => require_systemd_host()
            .and_then(|()| uninstall_with(pod, &Root("/".into()), &mut Systemctl, opts)),
    }
    .map_err(|e| e.to_string())?;
    for r in removed {
        let _ = writeln!(out, "removed {}", r.display());
    }
    Ok(Exit::Ok)
}

/// Where no systemd runs as PID 1: what `status` needs, and what there is instead (#28: it
/// said there was "no systemd to install a pod into").
fn without_systemd(pod: &str) -> Option<String> {
    if Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    Some(format!(
        "systemd is not running as PID 1 here (no /run/systemd/system): `podc status` shows a \
         pod installed on a systemd host, asking systemd for podc-{pod}.service and its apps \
         and reading their cgroups; a pod run by hand with `podc launch TREE` has no unit to \
         show (its launcher prints the pod's output and exits with the pod's status, and \
         `podc logs TREE` shows its journal)"
    ))
}

/// `podc status`: reading needs no root, but systemd must be there to ask.
pub fn status_command(pod: &str, json: bool, out: &mut impl io::Write) -> Result<Exit, String> {
    if let Some(message) = without_systemd(pod) {
        return Err(message);
    }
    let s = status(pod, &mut Systemctl).map_err(|e| e.to_string())?;
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&s).expect("plain data")
        );
    } else {
        let _ = write!(out, "{s}");
    }
    Ok(Exit::Ok)
}

/// `podc logs`: execs journalctl (only returns on failure). Without systemd there is no
/// installed pod, but a pod launched by hand has its journal in its tree.
pub fn logs_command(pod: &str, app: Option<&str>, follow: bool) -> Result<Exit, String> {
    use std::os::unix::process::CommandExt;
    let mut systemctl = Systemctl;
    let sd: Option<&mut dyn crate::host::Systemd> = match Path::new("/run/systemd/system").is_dir()
    {
        true => Some(&mut systemctl),
        false => None,
    };
    let argv = logs_anywhere(pod, app, follow, sd).map_err(|e| e.to_string())?;
    let e = Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(format!("{}: {e}", argv.join(" ")))
}

/// `podc completions SHELL`.
pub fn completions(shell: clap_complete::Shell, out: &mut impl io::Write) {
    let full = <Cli as clap::CommandFactory>::command();
    // The same command line without its hidden commands (`man`, for packaging): clap_complete
    // would offer them, and clap has no way to remove a subcommand, so it is built again.
    let mut cmd = clap::Command::new("podc")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    // Into memory first: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "podc", &mut script);
    let _ = out.write_all(&script);
}
