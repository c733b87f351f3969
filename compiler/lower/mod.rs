//! Lower: a resolved [`Pod`] and install settings to a [`UnitTree`]. Cannot fail.
//!
//! Every decision about the generated files is made here: which directive spells a limit on
//! the target, how each value is escaped, which units exist and how they depend on each other,
//! and what the launcher must mount. The templates only lay the result out.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Serialize;

use crate::manifest::reference::Reference;
use crate::manifest::{Activation, CgroupVersion, IdOrName, Protocol, Relax, Restart, Start};
use crate::pod::{
    App, CpuWeight, Filter, Image, Limits, Pod, Port, VolumeKind, DEFAULT_CAPABILITIES,
};
use crate::systemd::escape;
use crate::systemd::resources::cpu_percent;
use crate::systemd::target::{Feature, Target};
use crate::tree::layout::{
    api_bind_source, app_root, result_unit, under_api_mount, unit_name, EXIT_SCRIPT, EXIT_UNIT,
    RESULT_SCRIPT,
};
use crate::tree::plan::{self, Controller, MountPlan, Step};

/// Where the tree is installed on the host, and where podc is; both absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub dir: String,
    pub podc: String,
}

/// The targets that halt or power off the pod's systemd (nspawn starts halt.target when it is
/// stopped, `machinectl poweroff` poweroff.target); in a pod each leads to exit.target instead.
pub const HALT_TARGETS: [&str; 2] = ["halt.target", "poweroff.target"];
/// How long systemd inside the pod waits for a unit to stop before it kills it.
pub const STOP_TIMEOUT: &str = "10s";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    pub key: &'static str,
    /// Borrowed when podc's own text (`yes`, a capability name): most values are, and not
    /// copying them is a good part of lowering's cost.
    pub value: Cow<'static, str>,
    /// A comment line written just above the directive (without the `# `): for a limit, the
    /// value as the manifest wrote it and where. Never holds a line break.
    pub comment: Option<String>,
}

/// Directives as the text of a unit file section: `Key=value` lines, in order. The templates
/// place these blocks; building the text here costs a fraction of a template loop.
fn lines<S: serde::Serializer>(list: &[Directive], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(list))
}

/// `Key=value` lines of `list`, in order.
pub fn text(list: &[Directive]) -> String {
    let mut text = String::with_capacity(
        list.iter()
            .map(|d| {
                d.key.len() + d.value.len() + 2 + d.comment.as_ref().map_or(0, |c| c.len() + 3)
            })
            .sum(),
    );
    for d in list {
        if let Some(c) = &d.comment {
            text.push_str("# ");
            text.push_str(c);
            text.push('\n');
        }
        text.push_str(d.key);
        text.push('=');
        text.push_str(&d.value);
        text.push('\n');
    }
    text
}

fn d(key: &'static str, value: impl Into<Cow<'static, str>>) -> Directive {
    Directive {
        key,
        value: value.into(),
        comment: None,
    }
}

/// `d` with a comment line above it.
fn commented(key: &'static str, value: impl Into<Cow<'static, str>>, comment: String) -> Directive {
    debug_assert!(!comment.contains(['\n', '\r']));
    Directive {
        comment: Some(comment),
        ..d(key, value)
    }
}

/// Everything `podc build` generates for one pod, before it is laid out as text.
#[derive(Debug, Clone, Serialize)]
pub struct UnitTree {
    pub pod: String,
    pub manifest_file: String,
    /// Annotations as `key = "value"` comment text, sorted by key.
    pub annotations: Vec<String>,
    pub host: HostUnit,
    pub target: PodTarget,
    pub apps: Vec<AppUnit>,
    pub exit: ExitUnit,
    pub result: ResultUnit,
    pub halt: HaltTarget,
    #[serde(serialize_with = "lines")]
    pub manager: Vec<Directive>,
    /// systemd-sysusers lines that give every numeric uid and gid of the apps an entry in the
    /// pod's user database: systemd refuses to run a unit as an id it cannot look up.
    pub sysusers: Vec<String>,
    /// The host socket unit that publishes the pod's ports; none without ports.
    pub socket: Option<HostSocket>,
    /// Socket units inside the pod that adopt the sockets the host hands over: an app's own
    /// (`<app>.socket`) and the proxies'.
    pub sockets: Vec<PodSocket>,
    /// systemd-socket-proxyd services that forward a published port to an app's port.
    pub proxies: Vec<ProxyService>,
    #[serde(skip)]
    pub plan: MountPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostSocket {
    pub file: String,
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub socket: Vec<Directive>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodSocket {
    /// The unit's file name.
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub socket: Vec<Directive>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProxyService {
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub service: Vec<Directive>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostUnit {
    pub file: String,
    pub description: String,
    /// `[Unit]` lines after the description (the socket unit, where there is one).
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub service: Vec<Directive>,
    /// `[Install]` lines.
    #[serde(serialize_with = "lines")]
    pub install: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub limits: Vec<Directive>,
    pub cgroup: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodTarget {
    pub description: String,
    pub wants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppUnit {
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub run: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub root: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub identity: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub environment: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub limits: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub security: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub sandbox: Vec<Directive>,
    pub cgroup: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExitUnit {
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub service: Vec<Directive>,
}

/// The pod's own halt.target and poweroff.target (one text for each name).
#[derive(Debug, Clone, Serialize)]
pub struct HaltTarget {
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultUnit {
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub service: Vec<Directive>,
}

pub fn lower(pod: &Pod, install: &Install) -> UnitTree {
    let t = pod.target;
    let cgroup = format!("cgroup {}", t.cgroup);
    let app_units: Vec<String> = pod.apps.iter().map(|a| unit_name(&a.name)).collect();
    let socket = host_socket(pod);
    UnitTree {
        pod: pod.name.clone(),
        manifest_file: pod.manifest_file.clone(),
        annotations: pod
            .annotations
            .iter()
            .map(|(k, v)| format!("{} = {}", escape::comment_text(k), escape::comment_text(v)))
            .collect(),
        host: HostUnit {
            file: format!("podc-{}.service", pod.name),
            description: escape::verbatim(&format!("podc pod {}", pod.name)),
            unit: match &socket {
                Some(s) => vec![d("Requires", s.file.clone()), d("After", s.file.clone())],
                None => Vec::new(),
            },
            install: {
                let mut lines = Vec::new();
                if pod.start == Start::Boot {
                    lines.push(d("WantedBy", "machines.target"));
                }
                if let Some(s) = &socket {
                    lines.push(d("Also", s.file.clone()));
                }
                lines
            },
            service: vec![
                d("Type", "notify"),
                d(
                    "ExecStart",
                    escape::exec_line(&[
                        install.podc.clone(),
                        "launch".into(),
                        install.dir.clone(),
                    ]),
                ),
                d("KillMode", "mixed"),
                d("Delegate", "yes"),
                d("Slice", "machine.slice"),
            ],
            limits: limit_directives(&pod.limits, t, &limits_source(None)),
            cgroup: cgroup.clone(),
        },
        target: PodTarget {
            description: escape::verbatim(&format!("podc pod {}", pod.name)),
            wants: app_units.clone(),
        },
        apps: pod
            .apps
            .iter()
            .map(|a| lower_app(pod, a, &cgroup))
            .collect(),
        exit: lower_exit(pod),
        result: lower_result(pod),
        halt: HaltTarget {
            // A halt inside a container loses the exit status systemd was given (it ends with a
            // reboot() call that only says "halted"); exit.target ends systemd with that status,
            // after the same orderly stop of every unit (shutdown.target). Measured on systemd
            // 257: a pod stopped after an OOM kill ended 0 through halt.target.
            description: escape::verbatim(&format!("podc pod {}: stop by exiting", pod.name)),
            unit: vec![
                d("DefaultDependencies", "no"),
                d("Requires", "exit.target"),
                d("After", "exit.target"),
                d("AllowIsolate", "yes"),
            ],
        },
        manager: vec![d("DefaultTimeoutStopSec", STOP_TIMEOUT)],
        sysusers: sysusers(pod),
        sockets: pod_sockets(pod),
        proxies: proxies(pod),
        socket,
        plan: plan(pod),
    }
}

/// Where systemd-socket-proxyd is in the pod (the host's /usr).
pub const SOCKET_PROXYD: &str = "/usr/lib/systemd/systemd-socket-proxyd";

fn listen_directive(p: &Port) -> Directive {
    let key = match p.protocol {
        Protocol::Tcp => "ListenStream",
        Protocol::Udp => "ListenDatagram",
    };
    d(key, p.listen())
}

fn host_socket(pod: &Pod) -> Option<HostSocket> {
    let socket: Vec<Directive> = pod.ports().map(|(_, p)| listen_directive(p)).collect();
    (!socket.is_empty()).then(|| HostSocket {
        file: format!("podc-{}.socket", pod.name),
        description: escape::verbatim(&format!("podc pod {}: published ports", pod.name)),
        socket,
    })
}

/// The name of the unit pair that proxies `port` to app `app`.
pub fn proxy_name(app: &str, port: u16) -> String {
    format!("podc-proxy-{app}-{port}")
}

/// Each app handed sockets gets `<app>.socket` (systemd gives its sockets to `<app>.service`),
/// each proxied port a socket of its own; every one has the very address of a host listener,
/// so that systemd in the pod adopts the descriptor it was handed rather than binding anew.
fn pod_sockets(pod: &Pod) -> Vec<PodSocket> {
    let mut sockets = Vec::new();
    for a in &pod.apps {
        let own: Vec<Directive> = a
            .ports
            .iter()
            .filter(|p| p.activation == Activation::Socket)
            .map(listen_directive)
            .collect();
        if !own.is_empty() {
            sockets.push(PodSocket {
                name: [&a.name, ".socket"].concat(),
                description: escape::verbatim(&format!(
                    "podc pod {}: sockets of app {}",
                    pod.name, a.name
                )),
                socket: own,
            });
        }
        for p in a.ports.iter().filter(|p| p.activation == Activation::Proxy) {
            sockets.push(PodSocket {
                name: proxy_name(&a.name, p.port) + ".socket",
                description: escape::verbatim(&format!(
                    "podc pod {}: published port {} of app {}",
                    pod.name,
                    p.listen(),
                    a.name
                )),
                socket: vec![listen_directive(p)],
            });
        }
    }
    sockets
}

fn proxies(pod: &Pod) -> Vec<ProxyService> {
    let mut out = Vec::new();
    for a in &pod.apps {
        for p in a.ports.iter().filter(|p| p.activation == Activation::Proxy) {
            // Started by the first connection, possibly while the app is still starting: wait
            // until something listens on the port in the pod's network (the kernel's socket
            // table; no tool beyond sh and grep), then forward.
            let wait = format!(
                "until grep -Eqs ':{:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6; do sleep 0.1; done",
                p.port
            );
            let app_unit = unit_name(&a.name);
            out.push(ProxyService {
                name: proxy_name(&a.name, p.port) + ".service",
                description: escape::verbatim(&format!(
                    "podc pod {}: forward published port {} to port {} of app {}",
                    pod.name,
                    p.listen(),
                    p.port,
                    a.name
                )),
                unit: vec![d("Requires", app_unit.clone()), d("After", app_unit)],
                service: vec![
                    d(
                        "ExecStartPre",
                        escape::exec_line(&["/usr/bin/sh".into(), "-c".into(), wait]),
                    ),
                    d(
                        "ExecStart",
                        escape::exec_line(&[SOCKET_PROXYD.into(), format!("127.0.0.1:{}", p.port)]),
                    ),
                    d("CapabilityBoundingSet", ""),
                    d("NoNewPrivileges", "yes"),
                    d("PrivateTmp", "yes"),
                ],
            });
        }
    }
    out
}

fn lower_app(pod: &Pod, a: &App, cgroup: &str) -> AppUnit {
    let t = pod.target;
    let mut unit = vec![d("Wants", [EXIT_UNIT, " ", &result_unit(&a.name)].concat())];
    let mut after = vec![EXIT_UNIT.to_string(), result_unit(&a.name)];
    after.extend(a.after.iter().map(|n| unit_name(n)));
    unit.push(d("After", after.join(" ")));
    if !a.after.is_empty() {
        let requires: Vec<String> = a.after.iter().map(|n| unit_name(n)).collect();
        unit.push(d("Requires", requires.join(" ")));
    }

    let mut run = vec![d(
        "Type",
        if t.has(Feature::TypeExec) {
            "exec"
        } else {
            "simple"
        },
    )];
    // Without exec the image's Entrypoint and Cmd are the command: `podc launch` writes
    // ExecStart= into the app's drop-in.
    if a.given.exec {
        run.push(d("ExecStart", escape::exec_line(&a.exec)));
    }
    run.extend([d(
        "Restart",
        match a.restart {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        },
    )]);

    let mut root = vec![match &a.image {
        Image::Path(_) => d("RootDirectory", app_root(&a.name)),
        Image::Reference(r) => commented("RootDirectory", app_root(&a.name), image_comment(a, r)),
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

    let mut identity = Vec::new();
    if a.given.user {
        identity.extend([d("User", id(&a.user)), d("Group", id(&a.group))]);
    }
    if !a.supplementary_groups.is_empty() {
        let groups: Vec<String> = a.supplementary_groups.iter().map(id).collect();
        identity.push(d("SupplementaryGroups", groups.join(" ")));
    }

    let environment = a
        .environment
        .iter()
        .map(|(k, v)| d("Environment", escape::env_assignment(k, v)))
        .collect();

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
    if let Some(s) = &a.seccomp {
        security.extend(split_filter("SystemCallFilter", &s.filter));
        if let Some(e) = &s.errno {
            security.push(d("SystemCallErrorNumber", e.clone()));
        }
    }

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

/// The comment above an app's `RootDirectory=` when its image is a reference: what runs, and
/// what the image's config supplies (the launcher's drop-in `50-image.conf`).
fn image_comment(a: &App, r: &Reference) -> String {
    let mut from_image = Vec::new();
    if !a.given.exec {
        from_image.push("command");
    }
    if !a.given.working_directory {
        from_image.push("working directory");
    }
    if !a.given.user {
        from_image.push("user");
    }
    from_image.push(if a.environment.is_empty() {
        "environment"
    } else {
        "environment not set here"
    });
    format!(
        "image: {r} ({}, resolved by podc launch from the image store; its config gives: {}, in the drop-in {}/{})",
        if r.digest.is_some() {
            "pinned"
        } else {
            "tag, resolved at launch"
        },
        from_image.join(", "),
        crate::tree::layout::image_drop_in_dir(&a.name),
        crate::tree::layout::IMAGE_DROP_IN,
    )
}

/// Entries of the app's /proc and /sys no app needs, made inaccessible. systemd reads these
/// paths outside the root directory, so they carry the app's root as a prefix; `-` because a
/// kernel may not have them.
const MASKED: &[&str] = &[
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
const SANDBOX: &[(Relax, &str, &str)] = &[
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
fn sandbox(a: &App, t: Target) -> Vec<Directive> {
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
            _ => vec![d(key, *value)],
        })
        .collect()
}

/// The shell that runs them: the pod's /usr is the host's. The scripts are plain files of the
/// tree (mode 0644), so they are run by the shell rather than executed.
const SH: &str = "/usr/bin/sh";

fn lower_exit(pod: &Pod) -> ExitUnit {
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

fn lower_result(pod: &Pod) -> ResultUnit {
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

/// `u`/`g` lines for the numeric ids apps run as; ids systemd-sysusers already knows (root, the
/// standard users of the pod's /usr) are left alone by it, and names resolve as they are.
fn sysusers(pod: &Pod) -> Vec<String> {
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

fn id(v: &IdOrName) -> String {
    match v {
        IdOrName::Id(n) => n.to_string(),
        IdOrName::Name(n) => escape::verbatim(n),
    }
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

/// An allow or deny list as one directive per name (`~name` for a deny list); an empty list
/// as the one empty (or `~`) assignment it means, which systemd reads as a reset.
fn split_filter(key: &'static str, f: &Filter) -> Vec<Directive> {
    let (prefix, names) = match f {
        Filter::Retain(v) => ("", v),
        Filter::Remove(v) => ("~", v),
    };
    if names.is_empty() {
        return vec![d(key, prefix)];
    }
    names.iter().map(|n| d(key, [prefix, n].concat())).collect()
}

/// Where a limit came from in the manifest, for its comment: `isolators` (the pod's) or
/// `apps[web].isolators`.
fn limits_source(app: Option<&str>) -> String {
    match app {
        None => "isolators".into(),
        Some(a) => ["apps[", a, "].isolators"].concat(),
    }
}

/// The comment above a limit: `memory: 128Mi (apps[web].isolators)`. `written` comes from the
/// manifest: resolution accepted it as a quantity, so it is plain ASCII, but anything else is
/// quoted and escaped rather than trusted to stay on the comment's line.
fn limit_comment(key: &str, written: &str, source: &str) -> String {
    let plain = !written.is_empty() && written.bytes().all(|b| b.is_ascii_graphic());
    let shown = if plain {
        written.to_string()
    } else {
        escape::comment_text(written)
    };
    [key, ": ", &shown, " (", source, ")"].concat()
}

fn limit_directives(l: &Limits, t: Target, source: &str) -> Vec<Directive> {
    let unified = t.unified_directives();
    let mut out = Vec::new();
    // Set together by resolution; a missing text would only lose the comment's detail.
    let written = |w: &Option<String>, v: String| w.clone().unwrap_or(v);
    if let Some(b) = l.memory_bytes {
        out.push(commented(
            if unified { "MemoryMax" } else { "MemoryLimit" },
            b.to_string(),
            limit_comment("memory", &written(&l.written.memory, b.to_string()), source),
        ));
    }
    if let Some(m) = l.cpu_millis {
        out.push(commented(
            "CPUQuota",
            cpu_percent(m),
            limit_comment("cpu", &written(&l.written.cpu, format!("{m}m")), source),
        ));
    }
    if let Some(w) = l.cpu_weight {
        let directive = match (t.cgroup, unified, w) {
            (CgroupVersion::V2, _, w) => d("CPUWeight", w.weight().to_string()),
            (CgroupVersion::V1, false, w) => d("CPUShares", w.shares().to_string()),
            // Resolution made sure these shares have an exact weight.
            (CgroupVersion::V1, true, CpuWeight::Shares(s)) => d(
                "CPUWeight",
                CpuWeight::exact_weight_for_shares(s)
                    .unwrap_or_else(|| w.weight())
                    .to_string(),
            ),
            (CgroupVersion::V1, true, CpuWeight::Weight(w)) => d("CPUWeight", w.to_string()),
        };
        let (key, n) = match w {
            CpuWeight::Shares(n) => ("cpuShares", n),
            CpuWeight::Weight(n) => ("cpuWeight", n),
        };
        out.push(Directive {
            comment: Some(limit_comment(key, &n.to_string(), source)),
            ..directive
        });
    }
    if let Some(n) = l.tasks {
        let n = n.to_string();
        out.push(commented(
            "TasksMax",
            n.clone(),
            limit_comment("tasks", &n, source),
        ));
    }
    out
}

/// Whether an app's limits use a cgroup v1 controller.
fn uses(l: &Limits, controller: Controller) -> bool {
    match controller {
        Controller::Memory => l.memory_bytes.is_some(),
        Controller::Cpu => l.cpu_millis.is_some() || l.cpu_weight.is_some(),
        Controller::Pids => l.tasks.is_some(),
    }
}

fn plan(pod: &Pod) -> MountPlan {
    let mut steps = vec![Step::BindHost {
        source: "/usr".into(),
        target: "/usr".into(),
        read_only: true,
    }];
    for v in &pod.volumes {
        if let VolumeKind::Empty { mode, uid, gid } = v.kind {
            steps.push(Step::MakeVolume {
                volume: v.name.clone(),
                mode: format!("{mode:04o}"),
                uid,
                gid,
            });
        }
    }
    for a in &pod.apps {
        let root = app_root(&a.name);
        // The image itself never changes: read-only as it is, or with an overlay of the pod's.
        steps.push(match &a.image {
            Image::Reference(r) => Step::Image {
                app: a.name.clone(),
                reference: r.to_string(),
                target: root.clone(),
                read_only: a.read_only_rootfs,
                given: [
                    (a.given.exec, "exec"),
                    (a.given.working_directory, "workingDirectory"),
                    (a.given.user, "user"),
                ]
                .into_iter()
                .filter(|(given, _)| *given)
                .map(|(_, key)| key.to_string())
                .collect(),
                environment: a.environment.keys().cloned().collect(),
            },
            Image::Path(source) if a.read_only_rootfs => Step::BindHost {
                source: source.clone(),
                target: root.clone(),
                read_only: true,
            },
            Image::Path(source) => Step::Overlay {
                app: a.name.clone(),
                source: source.clone(),
                target: root.clone(),
            },
        });
        let names = |ids: &mut dyn Iterator<Item = &IdOrName>| -> Vec<String> {
            let mut v: Vec<String> = ids
                .filter_map(|i| match i {
                    IdOrName::Name(n) => Some(n.clone()),
                    IdOrName::Id(_) => None,
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let users = names(&mut std::iter::once(&a.user));
        let groups = names(&mut std::iter::once(&a.group).chain(&a.supplementary_groups));
        if !users.is_empty() || !groups.is_empty() {
            steps.push(Step::Names {
                app: a.name.clone(),
                users,
                groups,
            });
        }
        // Parents before children, so that a nested mount is not hidden by its parent's.
        let mut mounts: Vec<_> = a.mounts.iter().collect();
        mounts.sort_by_key(|m| m.path.matches('/').count());
        for m in mounts {
            let target = if under_api_mount(&m.path) {
                api_bind_source(&a.name, &m.path)
            } else {
                [root.as_str(), &m.path].concat()
            };
            let volume = pod.volumes.iter().find(|v| v.name == m.volume);
            steps.push(match volume.map(|v| &v.kind) {
                Some(VolumeKind::Host { source }) => Step::BindHost {
                    source: source.clone(),
                    target,
                    read_only: m.read_only,
                },
                _ => Step::BindVolume {
                    volume: m.volume.clone(),
                    target,
                    read_only: m.read_only,
                },
            });
        }
    }
    if pod.target.cgroup == CgroupVersion::V1 {
        steps.push(Step::Tmpfs {
            target: "/sys/fs/cgroup".into(),
        });
        for controller in Controller::ALL {
            if !pod.apps.iter().any(|a| uses(&a.limits, controller)) {
                continue;
            }
            let base = format!("/sys/fs/cgroup/{controller}");
            let bind = |path: &str, read_only: bool| Step::CgroupBind {
                controller,
                path: path.to_string(),
                target: if path.is_empty() {
                    base.clone()
                } else {
                    [base.as_str(), "/", path].concat()
                },
                read_only,
            };
            steps.push(bind("", true));
            steps.push(bind("cgroup.procs", false));
            for a in &pod.apps {
                let dir = ["system.slice/", &a.name, ".service"].concat();
                steps.push(Step::CgroupDir {
                    controller,
                    path: dir.clone(),
                });
                steps.push(bind(&[&dir, "/cgroup.procs"].concat(), false));
                if uses(&a.limits, controller) {
                    for knob in controller.knobs() {
                        steps.push(bind(&[&dir, "/", knob].concat(), false));
                    }
                }
            }
        }
    }
    MountPlan {
        format: plan::FORMAT,
        pod: pod.name.clone(),
        cgroup: pod.target.cgroup,
        apps: pod.apps.iter().map(|a| a.name.clone()).collect(),
        network: pod.network,
        listen: pod
            .ports()
            .map(|(_, p)| plan::Listen {
                protocol: p.protocol,
                address: p.listen(),
            })
            .collect(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::Format;
    use crate::read as parse;
    use crate::resolve::{resolve, Overrides};
    use crate::systemd::escape::tests::{decode_words, HOSTILE};

    /// Every limit directive has the manifest's text above it; whitespace resolution accepts
    /// around a quantity (line breaks included) cannot end the comment early.
    #[test]
    fn limit_comments_quote_the_manifest_and_stay_on_one_line() {
        let yaml = "podc: 1\nname: p\nisolators:\n  cpu: \"\\n2\\n\"\n  tasks: 9\napps:\n  - name: a\n    image: /i\n    exec: [/bin/x]\n    isolators:\n      memory: \"\\n 128Mi\\r\\n\\u2028\"\n      cpu: 0.5\n      cpuWeight: 50\n      tasks: 7\n      oomScoreAdj: -5\n";
        let parsed = parse(yaml, Format::Yaml).unwrap();
        let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
        let install = super::Install {
            dir: "/d".into(),
            podc: "/p".into(),
        };
        let files = crate::generate(&pod, &install);
        let pairs = |text: &str| -> Vec<(String, String)> {
            let lines: Vec<&str> = text.lines().collect();
            lines
                .windows(2)
                .filter(|w| w[0].starts_with("# ") && w[0].ends_with("isolators)"))
                .map(|w| (w[0].to_string(), w[1].to_string()))
                .collect()
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pairs(&files["rootfs/etc/systemd/system/a.service"]),
            [
                s("# memory: 128Mi (apps[a].isolators)", "MemoryMax=134217728"),
                s("# cpu: 0.5 (apps[a].isolators)", "CPUQuota=50%"),
                s("# cpuWeight: 50 (apps[a].isolators)", "CPUWeight=50"),
                s("# tasks: 7 (apps[a].isolators)", "TasksMax=7"),
                s("# oomScoreAdj: -5 (apps[a].isolators)", "OOMScoreAdjust=-5"),
            ]
        );
        assert_eq!(
            pairs(&files["podc-p.service"]),
            [
                s("# cpu: 2 (isolators)", "CPUQuota=200%"),
                s("# tasks: 9 (isolators)", "TasksMax=9"),
            ]
        );
        // Text that is not a plain word is quoted, whatever it holds.
        assert_eq!(
            super::limit_comment("memory", "1\n[Service]\t", "isolators"),
            r#"memory: "1\n[Service]\t" (isolators)"#
        );
    }

    /// The rendered ExecStart= and Environment= lines decode back to the manifest's values.
    #[test]
    fn hostile_values_survive_the_whole_pipeline() {
        // JSON strings are YAML double-quoted scalars, once DEL and C1 controls are escaped too.
        let json = |s: &str| {
            serde_json::to_string(s)
                .unwrap()
                .chars()
                .map(|c| match c {
                    '\u{7f}'..='\u{9f}' => format!("\\u{:04x}", c as u32),
                    c => c.to_string(),
                })
                .collect::<String>()
        };
        let args: Vec<String> = HOSTILE.iter().map(|s| json(s)).collect();
        let env: Vec<String> = HOSTILE
            .iter()
            .enumerate()
            .map(|(i, s)| format!("      V{i}: {}", json(s)))
            .collect();
        // JSON string syntax is valid YAML double-quoted syntax for these values.
        let yaml = format!(
            "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [\"/bin/x\", {}]\n    environment:\n{}\n",
            args.join(", "),
            env.join("\n")
        );
        let parsed = parse(&yaml, Format::Yaml).unwrap();
        let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
        let install = super::Install {
            dir: "/d".into(),
            podc: "/p".into(),
        };
        let files = crate::generate(&pod, &install);
        let unit = &files["rootfs/etc/systemd/system/a.service"];
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let mut want = vec!["/bin/x".to_string()];
        want.extend(HOSTILE.iter().map(|s| s.to_string()));
        assert_eq!(decode_words(exec, true), want);
        let envs: Vec<Vec<String>> = unit
            .lines()
            .filter_map(|l| l.strip_prefix("Environment="))
            .map(|l| decode_words(l, false))
            .collect();
        assert_eq!(envs.len(), HOSTILE.len());
        for (i, s) in HOSTILE.iter().enumerate() {
            assert!(
                envs.contains(&vec![format!("V{i}={s}")]),
                "V{i}={s:?} missing"
            );
        }
    }
}
