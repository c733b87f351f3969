//! One app's unit: its command, identity, environment, sandbox and limits; and the users
//! the pod's systemd makes for names.

use super::limits::*;
use super::units::*;
use crate::manifest::reference::Reference;
use crate::manifest::{Egress, IdOrName, Relax, Restart};
use crate::pod::{App, Command, Filter, Image, Pod, DEFAULT_CAPABILITIES};
use crate::systemd::escape;
use crate::systemd::target::{Feature, Target};
use crate::tree::layout::{
    api_bind_source, app_root, ready_unit, result_unit, under_api_mount, unit_name, EXIT_UNIT,
    HOSTS, HOST_NAME, RESOLV_CONF,
};

pub(super) fn lower_app(pod: &Pod, a: &App, cgroup: &str) -> AppUnit {
    let t = pod.target;
    let unit = unit_section(pod, a);
    let run = run_section(pod, a);

    let mut root = vec![match &a.image {
        Image::Path(_) => d("RootDirectory", app_root(&a.name)),
        Image::Reference(r) => {
            commented("RootDirectory", app_root(&a.name), image_comment(pod, a, r))
        }
    }];
    root.push(d("MountAPIVFS", "yes"));
    if a.given.working_directory {
        root.push(d(
            "WorkingDirectory",
            escape::verbatim(&a.working_directory),
        ));
    }
    // systemd mounts a fresh /run (MountAPIVFS=) and /dev (MountAPIVFS=, PrivateDevices=) over
    // the app's root, which would hide volumes bound there; so the launcher binds such a volume
    // beside the app's root, and BindPaths= (applied after those mounts) puts it in place.
    for m in a.mounts.iter().filter(|m| under_api_mount(&m.path)) {
        let source = api_bind_source(&a.name, &m.path);
        root.push(d(
            if m.read_only {
                "BindReadOnlyPaths"
            } else {
                "BindPaths"
            },
            escape::bind_spec(&source, &m.path),
        ));
    }

    root.extend(network_files(pod, a));

    let mut identity = Vec::new();
    if a.given.user {
        identity.extend([d("User", id(&a.user)), d("Group", id(&a.group))]);
    }
    if !a.supplementary_groups.is_empty() {
        let groups: Vec<String> = a.supplementary_groups.iter().map(id).collect();
        identity.push(d("SupplementaryGroups", groups.join(" ")));
    }

    let mut environment = a
        .environment
        .iter()
        .map(|(k, v)| d("Environment", escape::env_assignment(k, v)))
        .collect();
    super::items::item_directives(a, &mut root, &mut environment);

    let mut security = Vec::new();
    if let Some(v) = a.oom_score_adj {
        let v = v.to_string();
        let comment = limit_comment("oomScoreAdj", &v, &limits_source(Some(&a.name)));
        security.push(commented("OOMScoreAdjust", v, comment));
    }
    if let Some(v) = a.no_new_privileges {
        security.push(d("NoNewPrivileges", yes_no(v)));
    }
    // One capability and one system call a line. Repeating either directive is exactly one
    // line with all the values: for CapabilityBoundingSet= systemd ORs allow lines and ANDs the
    // complements of `~` lines (an empty list, which would reset the set, stays one line); for
    // SystemCallFilter= the first line decides allow or deny, and each word of every line is
    // then added to or taken from the set in order, the same whether the words share a line.
    match &a.capabilities {
        Some(f) => security.extend(split_filter("CapabilityBoundingSet", f)),
        None => security.extend(
            DEFAULT_CAPABILITIES
                .iter()
                .map(|c| d("CapabilityBoundingSet", *c)),
        ),
    }
    security.extend(syscall_directives(a));

    let sandbox = sandbox(a, t);

    AppUnit {
        name: a.name.clone(),
        description: escape::verbatim(&["podc app ", &a.name, " of pod ", &pod.name].concat()),
        unit,
        run,
        root,
        identity,
        environment,
        limits: limit_directives(&a.limits, t, &limits_source(Some(&a.name))),
        security,
        sandbox,
        cgroup: cgroup.to_string(),
    }
}

/// The app's `[Service]` lines on how it runs: its type, command and restarts (an init app:
/// run to completion, held while apps after it need it).
fn run_section(pod: &Pod, a: &App) -> Vec<Directive> {
    let mut run = vec![if a.init {
        // Started means completed: the apps after it (After=, Requires=) wait until it has
        // exited, and start only if it exited 0.
        commented(
            "Type",
            "oneshot",
            "init: runs to completion before the apps after it start, which start only if it exits 0".into(),
        )
    } else if pod.target.has(Feature::TypeExec) {
        d("Type", "exec")
    } else {
        d("Type", "simple")
    }];
    if held(pod, a) {
        // Done, it stays active, so that an app after it that restarts does not run it again;
        // StopWhenUnneeded= stops it (and so records it) once no app after it needs it.
        run.push(d("RemainAfterExit", "yes"));
    }
    // Otherwise the command depends on the image (its Entrypoint and Cmd, its Entrypoint with
    // args, or the path of exec's bare program in its PATH): `podc launch` writes ExecStart=
    // into the app's drop-in.
    if let Command::Exec(exec) = &a.command {
        let line = escape::exec_args_line(exec);
        run.push(if exec.iter().any(|a| a.vars().next().is_some()) {
            commented(
                "ExecStart",
                line,
                "${NAME}: the app's variable NAME, read at launch: systemd puts its value in when it starts the app, as one argument".into(),
            )
        } else {
            d("ExecStart", line)
        });
    }
    run.extend(hooks(a));
    run.extend([d(
        "Restart",
        match a.restart {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        },
    )]);
    if a.init {
        if a.restart == Restart::OnFailure {
            // Straight back to activating between tries: the apps after it keep waiting
            // rather than fail with its first failure (resolve holds the target to 254).
            run.push(d("RestartMode", "direct"));
        }
        // As long as it takes: Kubernetes gives an init container no deadline either.
        run.push(d("TimeoutStartSec", "infinity"));
    }
    run
}

/// The app's lifecycle hooks, in its own unit, so they run as its main process does: in its
/// root, as its user, with its environment, sandbox and limits. `postStart` is
/// `ExecStartPost=`: systemd runs it once the program is executed (`Type=exec`; with
/// `Type=simple`, once it is forked) and counts the app as started when it exits 0; otherwise
/// the start fails, the app is stopped and its `Restart=` applies, as Kubernetes kills a
/// container whose postStart hook fails. `preStop` is `ExecStop=`: when the running app is
/// stopped, systemd runs it first and then sends SIGTERM to what is left (a stop while the app
/// is still starting skips it); `-` ignores its exit status, as Kubernetes does. This holds
/// because an app with hooks is never `Type=oneshot` (an init app has none: resolve refuses
/// them): a oneshot unit is starting for as long as its command runs, so stopping it would
/// skip `ExecStop=`.
fn hooks(a: &App) -> Vec<Directive> {
    let mut lines = Vec::new();
    if let Some(argv) = &a.hooks.post_start {
        lines.push(commented(
            "ExecStartPost",
            escape::exec_line(argv),
            "hooks.postStart: once the app has started; the start fails if it fails".into(),
        ));
    }
    if let Some(argv) = &a.hooks.pre_stop {
        lines.push(commented(
            "ExecStop",
            ["-", &escape::exec_line(argv)].concat(),
            "hooks.preStop: when the app is stopped, before SIGTERM; its exit status is ignored"
                .into(),
        ));
    }
    lines
}

/// The app's `[Unit]` lines after its description: what it wants, and what starts first.
fn unit_section(pod: &Pod, a: &App) -> Vec<Directive> {
    let mut unit = vec![d("Wants", [EXIT_UNIT, " ", &result_unit(&a.name)].concat())];
    unit.extend(super::health::wants_ready(a));
    // An app it starts after counts as started once its health probe (if it has one) passed.
    let mut firsts = Vec::new();
    for n in &a.after {
        firsts.push(unit_name(n));
        if pod.apps.iter().any(|b| &b.name == n && b.health.is_some()) {
            firsts.push(ready_unit(n));
        }
    }
    let mut after = vec![EXIT_UNIT.to_string(), result_unit(&a.name)];
    after.extend(firsts.iter().cloned());
    unit.push(d("After", after.join(" ")));
    if !firsts.is_empty() {
        unit.push(d("Requires", firsts.join(" ")));
    }
    if held(pod, a) {
        unit.push(d("StopWhenUnneeded", "yes"));
    }
    unit
}

/// Whether `a` is an init app that other apps start after. Its unit stays active once it has
/// completed (`RemainAfterExit=`) while an app after it runs or is about to, and is stopped
/// when none is (`StopWhenUnneeded=`): only then is its end recorded and does it let the pod
/// end. So the apps after it pull it in (`Requires=`), and the pod's target does not, which
/// would keep it up for good. An init app no app starts after ends as a job does.
pub(super) fn held(pod: &Pod, a: &App) -> bool {
    a.init && pod.apps.iter().any(|b| b.after.contains(&a.name))
}

/// The comment above an app's `RootDirectory=` when its image is a reference: what runs, and
/// what the image's config supplies (the launcher's drop-in `50-image.conf`).
pub(super) fn image_comment(pod: &Pod, a: &App, r: &Reference) -> String {
    let mut from_image = Vec::new();
    match &a.command {
        Command::Exec(_) => {}
        // The name went through resolve: no control character.
        Command::LookUp(exec) => from_image.push(format!(
            "the path of exec's program \"{}\" (looked up in its PATH; ExecStart= is exec with that path)",
            exec[0].as_text().unwrap_or_default()
        )),
        Command::Args(_) => from_image.push("command: its Entrypoint, with args in place of its Cmd".into()),
        Command::Image => from_image.push("command".into()),
    }
    if !a.given.working_directory {
        from_image.push("working directory".into());
    }
    if !a.given.user {
        from_image.push("user".into());
    }
    from_image.push(
        if a.environment.is_empty() && a.env_from.is_empty() {
            "environment"
        } else {
            "environment not set here"
        }
        .into(),
    );
    format!(
        "image: {r} ({}, resolved by podc launch from the image store; its config gives: {}, in the drop-in {}/{})",
        if r.digest.is_some() {
            "pinned"
        } else {
            "tag, resolved at launch"
        },
        from_image.join(", "),
        crate::tree::layout::image_drop_in_dir(
            &a.name,
            pod.user_namespace == crate::manifest::UserNamespace::Private
        ),
        crate::tree::layout::IMAGE_DROP_IN,
    )
}

/// Entries of the app's /proc and /sys no app needs, made inaccessible. systemd reads these
/// paths outside the root directory, so they carry the app's root as a prefix; `-` because a
/// kernel may not have them.
pub(super) const MASKED: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/timer_stats",
    "/proc/latency_stats",
    "/proc/asound",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The default sandbox, with the systemd release that has each part: what a container runtime
/// applies and an app does not need (measured under nspawn with systemd 252). Parts the target
/// systemd lacks, and parts the app relaxes, are left out.
pub(super) const SANDBOX: &[(Relax, &str, &str)] = &[
    (Relax::Tmp, "PrivateTmp", "yes"),
    (Relax::Devices, "PrivateDevices", "yes"),
    (Relax::KernelTunables, "ProtectKernelTunables", "yes"),
    (Relax::KernelModules, "ProtectKernelModules", "yes"),
    (Relax::KernelLogs, "ProtectKernelLogs", "yes"),
    (Relax::ControlGroups, "ProtectControlGroups", "yes"),
    (Relax::Clock, "ProtectClock", "yes"),
    (Relax::Hostname, "ProtectHostname", "yes"),
    (Relax::Proc, "ProtectProc", "invisible"),
    (Relax::ProcMasks, "InaccessiblePaths", ""),
    (Relax::Namespaces, "RestrictNamespaces", "yes"),
    (Relax::Realtime, "RestrictRealtime", "yes"),
    (Relax::Personality, "LockPersonality", "yes"),
];

pub(super) fn sandbox(a: &App, t: Target) -> Vec<Directive> {
    // A volume at /tmp or /var/tmp would be hidden under a private /tmp.
    let tmp_mounted = a.mounts.iter().any(|m| {
        ["/tmp", "/var/tmp"]
            .iter()
            .any(|p| m.path == *p || m.path.strip_prefix(*p).is_some_and(|r| r.starts_with('/')))
    });
    let root = app_root(&a.name);
    SANDBOX
        .iter()
        .filter(|(relax, _, _)| {
            t.has(Feature::Sandbox(*relax))
                && !a.relax.contains(relax)
                && !(*relax == Relax::Tmp && tmp_mounted)
        })
        .flat_map(|(relax, key, value)| match relax {
            // One path a line: systemd adds each InaccessiblePaths= line to the list (only an
            // empty one resets it).
            Relax::ProcMasks => MASKED
                .iter()
                .map(|p| d(key, ["-", &root, p].concat()))
                .collect(),
            // Its own cgroup, writable, as the root of a cgroup namespace of its own: the
            // kernel (nsdelegate) keeps the limits of that root out of its reach. Delegated, so
            // systemd leaves what the app makes below it alone, and its user may make it.
            Relax::ControlGroups if a.cgroup_writable => vec![
                commented(
                    key,
                    "private",
                    "cgroupMount: read-write: the app's own cgroup at /sys/fs/cgroup, writable, in its own cgroup namespace".into(),
                ),
                d("Delegate", "yes"),
            ],
            _ => vec![d(key, *value)],
        })
        .collect()
}

/// `u`/`g` lines for the numeric ids apps run as; ids systemd-sysusers already knows (root, the
/// standard users of the pod's /usr) are left alone by it, and names resolve as they are.
pub(super) fn sysusers(pod: &Pod) -> Vec<String> {
    let mut users = std::collections::BTreeSet::new();
    let mut groups = std::collections::BTreeSet::new();
    for a in &pod.apps {
        if let IdOrName::Id(n) = a.user {
            users.insert(n);
        }
        for g in std::iter::once(&a.group).chain(&a.supplementary_groups) {
            if let IdOrName::Id(n) = g {
                groups.insert(*n);
            }
        }
    }
    users.remove(&0);
    // Each user's primary group is the group of the same number, which must exist first.
    groups.extend(users.iter().copied());
    groups.remove(&0);
    let mut lines: Vec<String> = groups
        .iter()
        .map(|g| format!("g podc-gid-{g} {g}"))
        .collect();
    lines.extend(
        users
            .iter()
            .map(|u| format!("u podc-uid-{u} {u}:{u} \"podc app user\" / /usr/sbin/nologin")),
    );
    lines
}

pub(super) fn id(v: &IdOrName) -> String {
    match v {
        IdOrName::Id(n) => n.to_string(),
        IdOrName::Name(n) => escape::verbatim(n),
    }
}

pub(super) fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

/// The system call filter, what the kernel logs and the ABIs: `SystemCallFilter=` (an exact
/// allow list takes out the `@default` group systemd starts every allow list with, so that
/// an empty one denies every call), `SystemCallErrorNumber=`, `SystemCallLog=`,
/// `SystemCallArchitectures=`.
fn syscall_directives(a: &App) -> Vec<Directive> {
    let mut lines = Vec::new();
    if let Some(s) = &a.seccomp {
        match (&s.filter, s.exact) {
            (Filter::Retain(names), true) => {
                let then = if names.is_empty() {
                    "no call is allowed"
                } else {
                    "only the calls below are allowed"
                };
                lines.push(commented(
                    "SystemCallFilter",
                    "@default",
                    format!("exact: systemd starts every allow list with @default; taken out again, {then}"),
                ));
                lines.push(d("SystemCallFilter", "~@default"));
                lines.extend(names.iter().map(|n| d("SystemCallFilter", n.clone())));
            }
            (f, _) => lines.extend(split_filter("SystemCallFilter", f)),
        }
        if let Some(e) = &s.errno {
            lines.push(d("SystemCallErrorNumber", e.clone()));
        }
    }
    if let Some(f) = &a.syscall_log {
        lines.extend(split_filter("SystemCallLog", f));
    }
    lines.extend(
        a.syscall_architectures
            .iter()
            .map(|arch| d("SystemCallArchitectures", arch.name())),
    );
    lines
}

/// An allow or deny list as one directive per name (`~name` for a deny list); an empty list
/// as the one empty (or `~`) assignment it means, which systemd reads as a reset.
pub(super) fn split_filter(key: &'static str, f: &Filter) -> Vec<Directive> {
    let (prefix, names) = match f {
        Filter::Retain(v) => ("", v),
        Filter::Remove(v) => ("~", v),
    };
    if names.is_empty() {
        return vec![d(key, prefix)];
    }
    names.iter().map(|n| d(key, [prefix, n].concat())).collect()
}

/// The pod's network files an app's root gets (unless the app mounts its own there): with a
/// way out its /etc/resolv.conf, on host networks or with allowed host ports its /etc/hosts.
fn network_files(pod: &Pod, a: &App) -> Vec<Directive> {
    let mut files = Vec::new();
    // A pod with a way out resolves names through the host's DNS servers: the pod's
    // /etc/resolv.conf (the launcher writes it) in the app's root, unless the app brings one.
    if pod.egress == Egress::Nat
        && !a.mounts.iter().any(|m| m.path == RESOLV_CONF)
        && !a.files.iter().any(|f| f.path == RESOLV_CONF)
    {
        files.push(commented(
            "BindReadOnlyPaths",
            RESOLV_CONF,
            "the pod's DNS servers (the host's), written by podc launch".into(),
        ));
    }

    // A pod on host networks finds the other pods there by name: the pod's /etc/hosts (the
    // launcher keeps it up to date) in the app's root, unless the app brings one.
    if (!pod.networks.is_empty() || !pod.allow_host.is_empty())
        && !a.mounts.iter().any(|m| m.path == HOSTS)
        && !a.files.iter().any(|f| f.path == HOSTS)
    {
        let names = if pod.networks.is_empty() {
            format!("the host by name ({HOST_NAME}), written by podc launch")
        } else {
            format!(
                "the host and the pods of network {} by name, kept up to date by podc launch",
                pod.networks.join(", ")
            )
        };
        files.push(commented("BindReadOnlyPaths", HOSTS, names));
    }
    files
}
