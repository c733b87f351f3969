//! POD.md: the pod at a glance, for the reviewer of a pull request.
//!
//! Code hosts render Markdown and Mermaid, so a reviewer sees what changed in the pod (an app's
//! user, limits, capabilities, sandbox, mounts) before reading units. The file is written with
//! every tree like any other, so `--check` and the fixtures' snapshots cover it, and it must be
//! as byte-stable as the units: everything comes from the resolved [`Pod`] in manifest order.
//!
//! Architecture invariant: every text that came from the manifest goes through
//! [`escape::markdown_cell`] or [`escape::mermaid_label`]; only podc's own words and names
//! (`[a-z0-9-]`, checked by resolution) are written as they are. The text is built with
//! `push_str` rather than a template: it is one file per pod, and a template loop per cell
//! would cost more than the rest of an app's files.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::manifest::ItemKind;
use crate::manifest::{Activation, Egress, HostType, IdOrName, Network, Restart, Start};
use crate::pod::DEFAULT_CAPABILITIES;
use crate::pod::{App, Arg, Command, CpuWeight, Filter, Image, Limits, Pod, Source, VolumeKind};
use crate::systemd::escape;
use crate::systemd::resources::{cpu_percent, Limit};
use crate::tree::layout::{persistent_volume, PERSISTENT_VOLUMES};

/// The body of POD.md (everything after its header line).
pub fn pod_md(pod: &Pod) -> String {
    let mut out = String::with_capacity(1024 + 1536 * pod.apps.len());
    let o = &mut out;
    pod_table(o, pod);
    o.push_str("\n## Apps, volumes and ports\n\n");
    diagram(o, pod);
    for a in &pod.apps {
        o.push_str("\n## App ");
        o.push_str(&a.name);
        o.push_str("\n\n| Setting | Value |\n|---|---|\n");
        app_run(o, a);
        app_confinement(o, a);
        app_wiring(o, a);
    }
    out
}

/// The pod's own table: network, start, target, limits, annotations.
fn pod_table(o: &mut String, pod: &Pod) {
    o.push_str("# Pod ");
    o.push_str(&pod.name);
    o.push_str("\n\n| Pod | |\n|---|---|\n");
    match (pod.network, pod.egress) {
        (Network::Host, _) => row(o, "Network", "host"),
        (Network::Private, Egress::None) => row(o, "Network", "private"),
        (Network::Private, Egress::Nat) => row(
            o,
            "Network",
            "private, out through the host (NAT; an address on the host's podc0 bridge)",
        ),
    }
    if !pod.networks.is_empty() {
        row(
            o,
            "Networks",
            &format!(
                "{} (the pods there reach each other by name)",
                pod.networks.join(", ")
            ),
        );
    }
    if !pod.allow_host.is_empty() {
        let ports: Vec<String> = pod.allow_host.iter().map(|h| h.to_string()).collect();
        row(
            o,
            "Host ports it reaches",
            &format!(
                "{} (at {}; no other service of the host)",
                ports.join(", "),
                crate::tree::layout::HOST_NAME
            ),
        );
    }
    row(
        o,
        "Users",
        match pod.user_namespace {
            crate::manifest::UserNamespace::Private => "a user namespace of its own: root in the pod is an unprivileged id of the host, from a range of 65536 podc gives the pod at its first launch (podc status shows it)",
            crate::manifest::UserNamespace::Host => "the host's ids (`userNamespace: host`, warned): root in the pod is root on the host, held back only by the sandbox",
        },
    );
    row(
        o,
        "Start",
        match pod.start {
            Start::Boot => "boot (the host unit is wanted by machines.target)",
            Start::Connection => "on the first connection to a published port",
        },
    );
    row(
        o,
        "Restart",
        if pod.restarts() {
            "on-failure (every app restarts: the host unit starts the pod again when it fails as a whole)"
        } else {
            "no (an app that does not restart may end the pod)"
        },
    );
    key(o, "Target");
    let _ = write!(
        o,
        "cgroup {}, systemd {}",
        pod.target.cgroup, pod.target.systemd
    );
    end(o);
    key(o, "Limits");
    limits(o, &pod.limits);
    end(o);
    items(o, pod);
    pairs(o, "Annotations", &pod.annotations);
    if let Some(ns) = &pod.namespace {
        row(o, "Namespace", ns);
    }
    pairs(o, "Labels", &pod.labels);
}

/// A row of `key = value` pairs, if there are any.
fn pairs(o: &mut String, title: &str, map: &std::collections::BTreeMap<String, String>) {
    if map.is_empty() {
        return;
    }
    key(o, title);
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            o.push_str("<br>");
        }
        escape::push_markdown_cell(o, k);
        o.push_str(" = ");
        escape::push_markdown_cell(o, v);
    }
    end(o);
}

/// Each word as a JSON-style quoted string, so that spaces and empty words show.
fn words(o: &mut String, words: &[String]) {
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            o.push(' ');
        }
        if w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" /.,:;=+@%'()-".contains(&b))
        {
            // Nothing to escape for either.
            o.push('"');
            o.push_str(w);
            o.push('"');
        } else {
            escape::push_markdown_cell(o, &escape::comment_text(w));
        }
    }
}

/// Each argument as [`words`] shows it; one with variables read at launch as Kubernetes
/// writes it (`$(NAME)`, and `$$` for a `$` of its text), with a note saying so.
fn args(o: &mut String, argv: &[Arg]) {
    let (shown, vars) = crate::systemd::argv::args_words(argv);
    words(o, &shown);
    if !vars.is_empty() {
        escape::push_markdown_cell(
            o,
            " ($(NAME): the app's variable NAME, read at launch and put in when it starts; $$: a $)",
        );
    }
}

/// How an app runs: image, command, working directory, user and group.
fn app_run(o: &mut String, a: &App) {
    key(o, "Image");
    match &a.image {
        Image::Path(p) => escape::push_markdown_cell(o, p),
        Image::Reference(r) => {
            escape::push_markdown_cell(o, &r.to_string());
            o.push_str(if r.digest.is_some() {
                " (pinned)"
            } else {
                " (tag, resolved at launch)"
            });
        }
    }
    end(o);
    key(o, "Command");
    match &a.command {
        Command::Exec(exec) => args(o, exec),
        Command::LookUp(exec) => {
            args(o, exec);
            o.push_str(" (");
            escape::push_markdown_cell(o, exec[0].as_text().unwrap_or_default());
            o.push_str(" looked up in the image's PATH at launch)");
        }
        Command::Args(list) => {
            o.push_str("the image's Entrypoint, then args ");
            args(o, list);
            o.push_str(" (in place of its Cmd)");
        }
        Command::Image => o.push_str("the image's Entrypoint and Cmd"),
    }
    end(o);
    if let Some(argv) = &a.hooks.post_start {
        key(o, "After start (postStart)");
        words(o, argv);
        o.push_str(" (the start fails if it fails)");
        end(o);
    }
    if let Some(argv) = &a.hooks.pre_stop {
        key(o, "Before stop (preStop)");
        words(o, argv);
        o.push_str(" (then SIGTERM)");
        end(o);
    }
    key(o, "Working directory");
    if a.given.working_directory {
        escape::push_markdown_cell(o, &a.working_directory);
    } else {
        o.push_str("the image's WorkingDir, else /");
    }
    end(o);
    key(o, "User");
    if a.given.user {
        id(o, &a.user);
    } else {
        o.push_str("the image's User, else 0");
    }
    end(o);
    key(o, "Group");
    if a.given.user {
        id(o, &a.group);
    } else {
        o.push_str("the image's User, else 0");
    }
    if !a.supplementary_groups.is_empty() {
        o.push_str(" (supplementary: ");
        for (i, g) in a.supplementary_groups.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            id(o, g);
        }
        o.push(')');
    }
    end(o);
}

/// How an app is confined: limits, OOM score, capabilities, system calls, privileges, the
/// sandbox, the root filesystem.
fn app_confinement(o: &mut String, a: &App) {
    key(o, "Limits");
    limits(o, &a.limits);
    end(o);
    if let Some(v) = a.oom_score_adj {
        key(o, "OOM score adjustment");
        let _ = write!(o, "{v}");
        end(o);
    }
    key(o, "Capabilities");
    match &a.capabilities {
        None => o.push_str(default_capabilities()),
        Some(f) => filter(o, f),
    }
    end(o);
    key(o, "System calls");
    match &a.seccomp {
        None => o.push_str("not filtered"),
        Some(s) => {
            match (&s.filter, s.exact) {
                (Filter::Retain(v), true) if v.is_empty() => o.push_str("none"),
                (Filter::Retain(v), true) => {
                    o.push_str("exactly ");
                    names(o, v);
                }
                (f, _) => filter(o, f),
            }
            match &s.errno {
                Some(e) => {
                    o.push_str("; refused with ");
                    escape::push_markdown_cell(o, e);
                }
                // systemd's default action for a filtered call.
                None => o.push_str("; a refused call kills the process (SIGSYS)"),
            }
        }
    }
    end(o);
    if let Some(f) = &a.syscall_log {
        key(o, "System calls logged");
        filter(o, f);
        end(o);
    }
    if !a.syscall_architectures.is_empty() {
        key(o, "System call ABIs");
        let archs: Vec<&str> = a.syscall_architectures.iter().map(|a| a.name()).collect();
        o.push_str(&archs.join(", "));
        o.push_str("; a call of another kills the process");
        end(o);
    }
    row(
        o,
        "No new privileges",
        match a.no_new_privileges {
            None => "not set",
            Some(true) => "yes",
            Some(false) => "no",
        },
    );
    key(o, "Sandbox relaxed");
    if a.relax.is_empty() {
        o.push_str("nothing: podc's whole default sandbox");
    }
    for (i, r) in a.relax.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        o.push_str(r.name());
    }
    end(o);
    if a.cgroup_writable {
        row(
            o,
            "Cgroups",
            "its own cgroup at /sys/fs/cgroup, writable (sub-cgroups; its own limits stay out of reach)",
        );
    }
    row(
        o,
        "Root filesystem",
        if a.read_only_rootfs {
            "the image, read-only"
        } else {
            "the image under a writable overlay"
        },
    );
}

/// How an app is wired to the rest: mounts, published ports, order, restarts.
fn app_wiring(o: &mut String, a: &App) {
    if !a.mounts.is_empty() {
        key(o, "Mounts");
        for (i, m) in a.mounts.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            o.push_str(&m.volume);
            if let Some(sub) = &m.sub_path {
                o.push('/');
                escape::push_markdown_cell(o, sub);
            }
            o.push_str(" at ");
            escape::push_markdown_cell(o, &m.path);
            o.push_str(if m.read_only {
                " (read-only)"
            } else {
                " (read-write)"
            });
        }
        end(o);
    }
    app_items(o, a);
    if !a.ports.is_empty() {
        key(o, "Published ports");
        for (i, p) in a.ports.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            port(o, p);
        }
        end(o);
    }
    if !a.after.is_empty() {
        key(o, "Starts after");
        o.push_str(&a.after.join(", "));
        end(o);
    }
    if a.init {
        row(
            o,
            "Init",
            "yes: runs to completion before the apps after it start, which start only if it exits 0",
        );
    }
    if let Some(h) = &a.health {
        // The manifest's words (an exec probe's arguments) go through the cell escaper.
        key(o, "Health");
        escape::push_markdown_cell(o, &crate::lower::health_summary(h));
        o.push_str(" (apps after it start once it passes)");
        end(o);
    }
    row(
        o,
        "Restart",
        match a.restart {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        },
    );
}

/// The start of a table row, up to its value.
fn key(o: &mut String, key: &str) {
    o.push_str("| ");
    o.push_str(key);
    o.push_str(" | ");
}

/// The end of a table row.
fn end(o: &mut String) {
    o.push_str(" |\n");
}

/// A table row of podc's own words.
fn row(o: &mut String, k: &str, value: &str) {
    key(o, k);
    o.push_str(value);
    end(o);
}

/// podc's default capability bounding set, as a cell; the same for every app, so made once.
fn default_capabilities() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| ["podc's default: ", &DEFAULT_CAPABILITIES.join(", ")].concat())
}

fn id(o: &mut String, v: &IdOrName) {
    match v {
        IdOrName::Id(n) => {
            let _ = write!(o, "{n}");
        }
        IdOrName::Name(n) => escape::push_markdown_cell(o, n),
    }
}

/// Limits as the manifest wrote them, with what podc makes of a CPU quota and a memory size.
/// A limit's label (from the limits table) and the space before its value.
fn label(o: &mut String, limit: Limit) {
    o.push_str(limit.row().label);
    o.push(' ');
}

fn limits(o: &mut String, l: &Limits) {
    let start = o.len();
    let sep = |o: &mut String| {
        if o.len() > start {
            o.push_str(", ");
        }
    };
    if let Some(m) = l.cpu_millis {
        sep(o);
        label(o, Limit::Cpu);
        match &l.written.cpu {
            Some(w) => escape::push_markdown_cell(o, w),
            None => {
                let _ = write!(o, "{m}m");
            }
        }
        o.push_str(" (");
        o.push_str(&cpu_percent(m));
        o.push_str(" of one CPU)");
    }
    match l.cpu_weight {
        Some(CpuWeight::Shares(n)) => {
            sep(o);
            label(o, Limit::CpuShares);
            let _ = write!(o, "{n}");
        }
        Some(CpuWeight::Weight(n)) => {
            sep(o);
            label(o, Limit::CpuWeight);
            let _ = write!(o, "{n}");
        }
        Some(w @ CpuWeight::Request(m)) => {
            sep(o);
            label(o, Limit::CpuRequest);
            match &l.written.cpu_request {
                Some(t) => escape::push_markdown_cell(o, t),
                None => {
                    let _ = write!(o, "{m}m");
                }
            }
            let _ = write!(
                o,
                " (as Kubernetes weighs it: {} shares on cgroup v1, weight {} on v2)",
                w.shares(),
                w.weight()
            );
        }
        None => {}
    }
    if let Some(b) = l.memory_bytes {
        sep(o);
        label(o, Limit::Memory);
        if let Some(w) = &l.written.memory {
            escape::push_markdown_cell(o, w);
            o.push_str(" (");
        }
        let _ = write!(o, "{b} bytes");
        if l.written.memory.is_some() {
            o.push(')');
        }
    }
    if let Some(b) = l.memory_low_bytes {
        sep(o);
        label(o, Limit::MemoryRequest);
        if let Some(w) = &l.written.memory_request {
            escape::push_markdown_cell(o, w);
            o.push_str(" (");
        }
        let _ = write!(o, "{b} bytes kept from reclaim");
        if l.written.memory_request.is_some() {
            o.push(')');
        }
    }
    if let Some(n) = l.tasks {
        sep(o);
        label(o, Limit::Tasks);
        let _ = write!(o, "{n}");
    }
    if o.len() == start {
        o.push_str("none");
    }
}

/// An allow or deny list: `only A, B`, `all but A, B`, `none`, `all`.
fn filter(o: &mut String, f: &Filter) {
    let (how, names, empty) = match f {
        Filter::Retain(v) => ("only ", v, "none"),
        Filter::Remove(v) => ("all but ", v, "all"),
    };
    if names.is_empty() {
        o.push_str(empty);
        return;
    }
    o.push_str(how);
    self::names(o, names);
}

/// Names, comma-separated, each escaped for a table cell.
fn names(o: &mut String, names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        escape::push_markdown_cell(o, n);
    }
}

fn port(o: &mut String, p: &crate::pod::Port) {
    if let Some(n) = &p.name {
        o.push_str(n);
        o.push_str(": ");
    }
    o.push_str(p.protocol.name());
    o.push(' ');
    escape::push_markdown_cell(o, &p.listen());
    let _ = write!(o, " on the host to port {} (", p.port);
    o.push_str(match p.activation {
        Activation::Proxy => "forwarded by a proxy)",
        Activation::Socket => "the socket is handed to the app)",
    });
}

/// A Mermaid flowchart: each app (an init app as such), an arrow to each app it starts after
/// (`after completion` for an init app), each volume with an
/// arrow from every app that mounts it (labelled with the path and read-only or read-write),
/// and each published port with an arrow to its app. Node ids are positions (`app0`, `vol1`,
/// `port2`), never manifest text.
fn diagram(o: &mut String, pod: &Pod) {
    o.push_str("```mermaid\nflowchart LR\n");
    let app_id = |name: &str| pod.apps.iter().position(|a| a.name == name);
    for (i, a) in pod.apps.iter().enumerate() {
        let kind = if a.init { "init app" } else { "app" };
        let _ = writeln!(o, "    app{i}[\"{kind} {}\"]", a.name);
    }
    for (i, a) in pod.apps.iter().enumerate() {
        for dep in &a.after {
            if let Some(j) = app_id(dep) {
                let how = if pod.apps[j].init {
                    "after completion"
                } else {
                    "after"
                };
                let _ = writeln!(o, "    app{i} -->|{how}| app{j}");
            }
        }
    }
    for (i, v) in pod.volumes.iter().enumerate() {
        let what = match &v.kind {
            VolumeKind::Host { source, host_type } => format!(
                "host {} {}{}",
                match host_type {
                    HostType::Directory => "directory",
                    HostType::DirectoryOrCreate => "directory (made if missing)",
                    HostType::File => "file",
                    HostType::FileOrCreate => "file (made empty if missing)",
                    HostType::Socket => "socket",
                    HostType::Any => "path (a directory made if nothing is there)",
                },
                source,
                if v.read_only { ", read-only" } else { "" }
            ),
            VolumeKind::Empty { mode, uid, gid } => {
                format!("empty, mode {mode:04o}, uid {uid}, gid {gid}")
            }
            VolumeKind::Image { reference } => format!(
                "image {reference} ({}), read-only, noexec",
                if reference.digest.is_some() {
                    "pinned"
                } else {
                    "tag, resolved at launch"
                }
            ),
            VolumeKind::Persistent { mode, uid, gid } => format!(
                "persistent, kept in {} (made mode {mode:04o}, uid {uid}, gid {gid})",
                persistent_volume(PERSISTENT_VOLUMES, &pod.name, &v.name)
            ),
            VolumeKind::Memory {
                size,
                written,
                mode,
                uid,
                gid,
            } => format!(
                "memory (tmpfs), size {written} ({size} bytes), mode {mode:04o}, uid {uid}, gid {gid}"
            ),
            VolumeKind::Projected {
                sources,
                mode,
                uid,
                gid,
            } => {
                let from: Vec<String> = sources
                    .iter()
                    .map(|s| {
                        let optional = if s.optional { " (optional)" } else { "" };
                        format!("{} {}{optional}", s.item.kind, s.item.name)
                    })
                    .collect();
                format!(
                    "projected, read-only: the files of {} (a later one wins), copied at launch, files mode {:04o}, uid {uid}, gid {gid}",
                    from.join(", then "),
                    mode & 0o7666
                )
            }
        };
        let _ = writeln!(
            o,
            "    vol{i}[(\"volume {}: {}\")]",
            v.name,
            escape::mermaid_label(&what)
        );
    }
    for (i, a) in pod.apps.iter().enumerate() {
        for m in &a.mounts {
            if let Some(j) = pod.volumes.iter().position(|v| v.name == m.volume) {
                let path = match &m.sub_path {
                    Some(sub) => format!("{} (subPath {sub})", m.path),
                    None => m.path.clone(),
                };
                let _ = writeln!(
                    o,
                    "    app{i} -.->|\"{} {}\"| vol{j}",
                    if m.read_only { "ro" } else { "rw" },
                    escape::mermaid_label(&path)
                );
            }
        }
    }
    item_diagram(o, pod);
    for (k, (a, p)) in pod.ports().enumerate() {
        let i = app_id(&a.name).unwrap_or_default();
        let _ = writeln!(
            o,
            "    port{k}([\"{} {}\"]) -->|\"port {}\"| app{i}",
            p.protocol.name(),
            escape::mermaid_label(&p.listen()),
            p.port
        );
    }
    o.push_str("```\n");
}

/// The pod's config items and secrets: names and where each is read, never a value.
fn items(o: &mut String, pod: &Pod) {
    for (kind, label) in [(ItemKind::Config, "Config"), (ItemKind::Secret, "Secrets")] {
        let list: Vec<_> = pod.items.iter().filter(|i| i.kind == kind).collect();
        if list.is_empty() {
            continue;
        }
        key(o, label);
        for (n, i) in list.iter().enumerate() {
            if n > 0 {
                o.push_str("<br>");
            }
            o.push_str(&i.name);
            match &i.source {
                Source::Text(t) => {
                    let _ = write!(o, ": text in the tree ({} bytes)", t.len());
                }
                Source::File(f) => {
                    o.push_str(": host file ");
                    escape::push_markdown_cell(o, f);
                    o.push_str(" (read at launch)");
                }
                Source::Dir(d) => {
                    o.push_str(": host directory ");
                    escape::push_markdown_cell(o, d);
                    o.push_str(" (its files are the keys, read at launch)");
                }
                Source::Host {
                    resource, written, ..
                } => {
                    let _ = write!(o, ": the host's {}", resource.name());
                    if let Some(w) = written {
                        o.push_str(" / ");
                        escape::push_markdown_cell(o, w);
                    }
                    o.push_str(" (counted at launch, rounded up)");
                }
            }
        }
        end(o);
    }
}

/// What an app takes of the config items and secrets: files and variables, by name.
fn app_items(o: &mut String, a: &App) {
    if !a.files.is_empty() {
        key(o, "Config and secret files");
        for (i, f) in a.files.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            let _ = write!(o, "{} {} at ", f.item.kind, f.item.name);
            escape::push_markdown_cell(o, &f.path);
            o.push_str(" (read-only, the app's user only)");
        }
        end(o);
    }
    if !a.env_from.is_empty() {
        key(o, "Variables from config and secrets");
        for (i, (var, e)) in a.env_from.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            let _ = write!(o, "{var}: {} {}", e.item.kind, e.item.name);
            match &e.key {
                Some(k) => {
                    let _ = write!(o, ", key {k}");
                }
                None => o.push_str(", the whole file"),
            }
        }
        end(o);
    }
    if !a.environment_from.is_empty() {
        key(o, "Variables from every key (environmentFrom)");
        for (i, e) in a.environment_from.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            let _ = write!(o, "{} {}", e.item.kind, e.item.name);
            if !e.prefix.is_empty() {
                let _ = write!(o, ", names prefixed {}", e.prefix);
            }
        }
        let own = !a.environment.is_empty() || !a.env_from.is_empty();
        match (a.environment_from.len() > 1, own) {
            (true, true) => {
                o.push_str("<br>(a later one wins; the app's own variables win over all)")
            }
            (true, false) => o.push_str("<br>(a later one wins)"),
            (false, true) => o.push_str("<br>(the app's own variables win)"),
            (false, false) => {}
        }
        end(o);
    }
}

/// Each config item and secret an app takes, with an arrow from each app that takes it
/// (labelled with the path, or the variable).
fn item_diagram(o: &mut String, pod: &Pod) {
    for (j, item) in pod.items.iter().enumerate() {
        let _ = writeln!(o, "    item{j}[/\"{} {}\"/]", item.kind, item.name);
    }
    let index = |r: &crate::pod::ItemRef| {
        pod.items
            .iter()
            .position(|i| i.kind == r.kind && i.name == r.name)
    };
    for (i, a) in pod.apps.iter().enumerate() {
        for f in &a.files {
            if let Some(j) = index(&f.item) {
                let _ = writeln!(
                    o,
                    "    app{i} -.->|\"file {}\"| item{j}",
                    escape::mermaid_label(&f.path)
                );
            }
        }
        for (var, e) in &a.env_from {
            if let Some(j) = index(&e.item) {
                let _ = writeln!(o, "    app{i} -.->|\"env {var}\"| item{j}");
            }
        }
        for e in &a.environment_from {
            if let Some(j) = index(&e.item) {
                let label = match e.prefix.as_str() {
                    "" => "env every key".to_string(),
                    p => format!("env every key, prefix {p}"),
                };
                let _ = writeln!(o, "    app{i} -.->|\"{label}\"| item{j}");
            }
        }
    }
}
