//! How the pod ends: the result unit that records each app's end, and the exit unit that
//! stops the pod with the apps' status.

use std::sync::OnceLock;

use super::units::*;
use crate::pod::Pod;
use crate::systemd::escape;
use crate::tree::layout::{EXIT_SCRIPT, EXIT_UNIT, RESULT_SCRIPT};

/// The shell that runs them: the pod's /usr is the host's. The scripts are plain files of the
/// tree (mode 0644), so they are run by the shell rather than executed.
pub(super) const SH: &str = "/usr/bin/sh";

pub(super) fn lower_exit(pod: &Pod) -> ExitUnit {
    // Apps pull this unit in and order themselves after it, so it is up before any app runs.
    // Once no app needs it any more (all stopped, none about to restart), systemd stops it, and
    // its ExecStop= makes the pod's systemd exit with the status of the first app, in manifest
    // order, that did not succeed (0 when all did), as the apps' result units recorded it. They
    // are ordered after this unit, so when they stop together (the last app has stopped, or the
    // pod stops) they write first. The logic is in EXIT_SCRIPT; the apps are its arguments.
    let mut argv = Vec::with_capacity(pod.apps.len() + 2);
    argv.push(SH.to_string());
    argv.push(EXIT_SCRIPT.to_string());
    argv.extend(pod.apps.iter().map(|a| a.name.clone()));
    ExitUnit {
        description: escape::verbatim(&format!(
            "podc pod {}: exit when every app has stopped",
            pod.name
        )),
        service: vec![
            d("Type", "oneshot"),
            d("RemainAfterExit", "yes"),
            d("ExecStart", "/usr/bin/true"),
            d("ExecStop", escape::exec_line(&argv)),
        ],
    }
}

pub(super) fn lower_result(pod: &Pod) -> ResultUnit {
    // One instance per app, which the app pulls in and starts after. When the app has stopped
    // (by itself, or because the pod stops: the app then stops first), systemd stops the
    // instance and its ExecStop= records the app's status while the app's unit is certainly
    // loaded: this unit refers to it (Before=), so systemd cannot have unloaded it yet.
    // Recording it as the app ends, not when the pod exits, keeps it right however the pod
    // ends. RESULT_SCRIPT says which status each way of ending gets.
    // The same for every pod: quoted once per process.
    static STOP: OnceLock<String> = OnceLock::new();
    let stop = STOP.get_or_init(|| {
        let mut stop = escape::exec_line(&[SH.into(), RESULT_SCRIPT.into()]);
        stop.push(' ');
        stop.push_str(&escape::specifier("%i"));
        stop
    });
    ResultUnit {
        description: escape::verbatim(&format!("podc pod {}: record how app ", pod.name))
            + "%i ended",
        unit: vec![
            d("StopWhenUnneeded", "yes"),
            d("After", EXIT_UNIT),
            d("Before", "%i.service"),
        ],
        service: vec![
            d("Type", "oneshot"),
            d("RemainAfterExit", "yes"),
            d("ExecStart", "/usr/bin/true"),
            d("ExecStop", stop.as_str()),
        ],
    }
}
