//! Resolve: a [`Manifest`] and its [`SourceMap`] to a [`Pod`], or every problem found.
//!
//! This is where the rules of the format live. Each check reports through [`Checker`], which
//! turns a document path into a source span, and resolution goes on after a problem so that
//! one run shows them all, in document order. Defaults are applied here and nowhere else.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::codes::{self, Code};
use crate::diag::{nearest, Diagnostic};
use crate::limits;
use crate::manifest::linux;
use crate::manifest::quantity;
use crate::manifest::reference::Reference;
use crate::manifest::{self, CgroupVersion, IdOrName, Manifest};
use crate::parse::source::{join_index, join_key, SourceMap};
use crate::parse::Parsed;
use crate::pod::{self, App, AppMount, CpuWeight, Filter, Limits, Pod, Seccomp, Volume};
use crate::systemd::escape;
use crate::systemd::target::{self, Feature, Target};
use crate::tree::layout::MAX_POD_NAME;

/// Target settings from the command line; they win over the manifest's `target`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub cgroup: Option<CgroupVersion>,
    pub systemd: Option<u32>,
}

/// Unit names systemd inside the pod uses itself, which an app must not shadow.
const RESERVED_APP_NAMES: &[&str] = &[
    "dbus",
    "dbus-broker",
    "emergency",
    "rescue",
    "console-getty",
    "container-getty",
    "init",
];
const RESERVED_APP_PREFIXES: &[&str] = &["podc-", "systemd-"];

/// Collects diagnostics, pointing each at its document path.
struct Checker<'a> {
    map: &'a SourceMap,
    errors: Vec<Diagnostic>,
    /// The command line's target flags, so that a problem they cause names them.
    flags: Overrides,
}

impl Checker<'_> {
    /// A problem with the value at `path`.
    fn value(
        &mut self,
        code: &'static Code,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(code, message).at(path, self.map.value(path));
        self.errors.push(d);
        self.errors.last_mut().unwrap()
    }

    /// A problem with the key at `path` (its presence, or its pairing with another key).
    fn key(
        &mut self,
        code: &'static Code,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(code, message).at(path, self.map.key(path));
        self.errors.push(d);
        self.errors.last_mut().unwrap()
    }

    /// A problem with no place in the manifest: it comes from the command line's flags.
    fn flag(&mut self, code: &'static Code, message: impl Into<String>) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(code, message));
        self.errors.last_mut().unwrap()
    }

    /// `systemd N`, and `(--systemd N)` after it when the flag chose the version.
    fn systemd(&self, t: Target) -> String {
        match self.flags.systemd {
            Some(v) => format!("systemd {v} (--systemd {v})"),
            None => format!("systemd {}", t.systemd),
        }
    }

    fn name(&mut self, path: &str, what: &str, name: &str) -> bool {
        let ok = escape::is_name(name);
        if !ok {
            let why = if name.is_empty() {
                "is empty".to_string()
            } else if name.len() > escape::MAX_NAME {
                format!(
                    "is {} characters long; at most {} are allowed",
                    name.len(),
                    escape::MAX_NAME
                )
            } else {
                "may hold only lowercase letters, digits and single dashes between them".to_string()
            };
            self.value(
                codes::BAD_NAME,
                path,
                format!("{what} name {} {why}", show(name)),
            )
            .help = Some("names match ^[a-z0-9]+(-[a-z0-9]+)*$".into());
        }
        ok
    }

    /// An absolute, normalized path without control characters. `what` names it in messages.
    fn abs_path(&mut self, path: &str, what: &str, value: &str) -> bool {
        if escape::plain_abs_path(value) {
            return true;
        }
        if !value.starts_with('/') {
            self.value(
                codes::PATH_RELATIVE,
                path,
                format!("{what} {} is not an absolute path", show(value)),
            );
            return false;
        }
        if escape::has_control(value) {
            self.value(
                codes::PATH_CONTROL,
                path,
                format!("{what} {} contains a control character", show(value)),
            );
            return false;
        }
        if value.split('/').any(|c| c == "..") {
            self.value(
                codes::PATH_DOTDOT,
                path,
                format!("{what} {} contains `..`", show(value)),
            );
            return false;
        }
        if let Some(long) = escape::long_component(value) {
            self.value(
                codes::PATH_COMPONENT_LONG,
                path,
                format!(
                    "{what} has a component of {} bytes; Linux file names hold at most {}",
                    long.len(),
                    escape::NAME_MAX
                ),
            );
            return false;
        }
        if !escape::is_normalized(value) {
            let normal = escape::normalize(value);
            self.value(
                codes::PATH_NOT_NORMAL,
                path,
                format!("{what} {} is not in normal form", show(value)),
            )
            .help = Some(format!("write it as {}", show(&normal)));
            return false;
        }
        true
    }
}

/// "did you mean" for a misspelt name of this pod's, else the list of its names.
fn known_help(name: &str, known: &[&str], what: &str) -> String {
    match nearest(name, known) {
        Some(near) => format!("did you mean `{near}`?"),
        None if known.is_empty() => format!("this pod has no {what}"),
        None => format!("this pod's {what}: {}", known.join(", ")),
    }
}

/// The help for an unknown capability: the nearest name (a missing `CAP_` prefix and
/// lowercase count as near), else how capabilities are named.
fn capability_help(name: &str) -> String {
    let prefixed = format!("CAP_{}", name.to_ascii_uppercase());
    let near = nearest(name, linux::CAPABILITIES).or_else(|| {
        linux::CAPABILITIES
            .iter()
            .find(|c| **c == prefixed)
            .copied()
    });
    match near {
        Some(near) => format!("did you mean `{near}`?"),
        None => "capabilities are named like CAP_NET_BIND_SERVICE (see capabilities(7))".into(),
    }
}

/// A value quoted for a message, with control characters visible.
fn show(s: &str) -> String {
    format!("{s:?}").replace('`', "'")
}

/// Resolves a manifest: the pod, or every diagnostic when any is an error (warnings included).
pub fn resolve(
    parsed: &Parsed,
    manifest_file: &str,
    overrides: Overrides,
) -> Result<Pod, Vec<Diagnostic>> {
    match resolve_all(parsed, manifest_file, overrides) {
        (Some(pod), _) => Ok(pod),
        (None, diagnostics) => Err(diagnostics),
    }
}

/// Resolves a manifest and gives every diagnostic, in document order; the pod is `None` when
/// any diagnostic is an error. Warnings never change the pod.
pub fn resolve_all(
    parsed: &Parsed,
    manifest_file: &str,
    overrides: Overrides,
) -> (Option<Pod>, Vec<Diagnostic>) {
    let mut c = Checker {
        map: &parsed.map,
        errors: Vec::new(),
        flags: overrides,
    };
    let pod = resolve_pod(&mut c, &parsed.manifest, manifest_file, overrides);
    if !c.errors.iter().any(Diagnostic::is_error) {
        check_warnings(&mut c, &parsed.manifest, &pod);
    }
    let mut diagnostics = c.errors;
    // A manifest read from a Kubernetes object names the Kubernetes paths.
    for d in &mut diagnostics {
        if let Some(p) = &d.path {
            d.path = Some(parsed.map.document_path(p));
        }
    }
    // Diagnostics caused by a flag have no span and come first, like the flag on the line.
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (ok.then_some(pod), diagnostics)
}

fn resolve_pod(c: &mut Checker, m: &Manifest, manifest_file: &str, overrides: Overrides) -> Pod {
    if m.podc != 1 {
        c.value(
            codes::FORMAT_VERSION,
            "podc",
            format!(
                "unsupported format version {}; this podc reads format 1",
                m.podc
            ),
        );
    }
    if c.name("name", "pod", &m.name) && m.name.len() > MAX_POD_NAME {
        c.value(
            codes::POD_NAME_LONG,
            "name",
            format!(
                "pod name {} is {} characters long; at most {MAX_POD_NAME} are allowed for a pod",
                show(&m.name),
                m.name.len()
            ),
        )
        .help = Some(
            "the pod runs as machine podc-<name>, and machine names hold at most 64 characters"
                .into(),
        );
    }
    let target = resolve_target(c, m, overrides);

    let limits = m
        .isolators
        .as_ref()
        .map(|i| {
            let wanted = manifest::AppIsolators {
                cpu: i.cpu.clone(),
                cpu_shares: i.cpu_shares,
                cpu_weight: i.cpu_weight,
                memory: i.memory.clone(),
                tasks: i.tasks,
                ..Default::default()
            };
            resolve_limits(c, "isolators", &wanted, target)
        })
        .unwrap_or_default();

    let mut volumes = Vec::new();
    let mut volume_names = BTreeMap::new();
    for (i, v) in m.volumes.iter().enumerate() {
        let path = join_index("volumes", i);
        // A volume with problems still exists for its mounts, so they get no errors of their own.
        if volume_names
            .insert(v.name.clone(), v.read_only.unwrap_or(false))
            .is_some()
        {
            c.value(
                codes::VOLUME_DUPLICATE,
                &join_key(&path, "name"),
                format!("volume {} is defined twice", show(&v.name)),
            );
        }
        if let Some(v) = resolve_volume(c, &path, v) {
            volumes.push(v);
        }
    }

    for (key, count) in [("apps", m.apps.len()), ("volumes", m.volumes.len())] {
        if count > limits::MAX_ITEMS {
            c.key(
                codes::TOO_MANY,
                key,
                format!(
                    "a pod may have at most {} {key}; this one has {count}",
                    limits::MAX_ITEMS
                ),
            );
            return Pod {
                name: m.name.clone(),
                manifest_file: manifest_file.to_string(),
                target,
                limits: Limits::default(),
                volumes: Vec::new(),
                apps: Vec::new(),
                annotations: BTreeMap::new(),
                network: manifest::Network::Host,
                start: manifest::Start::Boot,
            };
        }
    }
    if m.apps.is_empty() {
        c.value(codes::NO_APPS, "apps", "a pod needs at least one app");
    }
    let mut apps = Vec::new();
    let mut app_names = BTreeSet::new();
    for (i, a) in m.apps.iter().enumerate() {
        let path = join_index("apps", i);
        if !app_names.insert(a.name.clone()) {
            c.value(
                codes::APP_DUPLICATE,
                &join_key(&path, "name"),
                format!("app {} is defined twice", show(&a.name)),
            );
        }
        apps.push(resolve_app(c, &path, a, &volume_names, target));
    }
    check_after(c, &m.apps);
    let network = m.network.unwrap_or(manifest::Network::Host);
    let start = m.start.unwrap_or(manifest::Start::Boot);
    check_ports(c, &m.apps, &apps, network, start);

    for key in m.annotations.keys() {
        if key.is_empty() || escape::has_control(key) {
            c.key(
                codes::ANNOTATION_KEY,
                &join_key("annotations", key),
                format!(
                    "annotation key {} must be non-empty and without control characters",
                    show(key)
                ),
            );
        }
    }

    Pod {
        name: m.name.clone(),
        manifest_file: manifest_file.to_string(),
        target,
        limits,
        volumes,
        apps,
        annotations: m.annotations.clone(),
        network,
        start,
    }
}

fn resolve_target(c: &mut Checker, m: &Manifest, overrides: Overrides) -> Target {
    let spec = m.target.as_ref();
    let mut t = Target::default();
    if let Some(v) = spec.and_then(|s| s.cgroup) {
        t.cgroup = v;
    }
    if let Some(v) = spec.and_then(|s| s.systemd) {
        if v < u64::from(target::MIN_SYSTEMD) || v > 9999 {
            c.value(
                codes::SYSTEMD_VERSION,
                "target.systemd",
                format!(
                    "systemd {v} is not a version podc can target; use {} or newer",
                    target::MIN_SYSTEMD
                ),
            );
        } else {
            t.systemd = v as u32;
        }
    }
    if let Some(v) = overrides.cgroup {
        t.cgroup = v;
    }
    if let Some(v) = overrides.systemd {
        t.systemd = v;
    }
    if t.cgroup == CgroupVersion::V1 && t.systemd >= target::CGROUP_V1_REMOVED {
        // Name each side where it was set: a flag, or the manifest's key.
        let flags: Vec<String> = [
            overrides.cgroup.map(|_| "--cgroup v1".to_string()),
            overrides.systemd.map(|v| format!("--systemd {v}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let message = format!(
            "systemd {} cannot run on cgroup v1: support for it was removed in systemd {}",
            t.systemd,
            target::CGROUP_V1_REMOVED
        );
        let manifest_side = if overrides.cgroup.is_none() && spec.and_then(|s| s.cgroup).is_some() {
            Some("target.cgroup")
        } else if overrides.systemd.is_none() {
            Some("target.systemd")
        } else {
            None
        };
        match (flags.is_empty(), manifest_side) {
            (true, _) => {
                let path = if spec.and_then(|s| s.cgroup).is_some() {
                    "target.cgroup"
                } else {
                    "target.systemd"
                };
                c.value(codes::CGROUP_V1_REMOVED, path, message);
            }
            (false, Some(path)) => {
                c.value(
                    codes::CGROUP_V1_REMOVED,
                    path,
                    format!("{message} (the command line says {})", flags.join(" ")),
                );
            }
            (false, None) => {
                c.flag(
                    codes::CGROUP_V1_REMOVED,
                    format!("{}: {message}", flags.join(" ")),
                );
            }
        }
    }
    // Every app needs MountAPIVFS= to run in its own root directory.
    if !t.has(Feature::MountApiVfs) && !m.apps.is_empty() {
        let (since, _) = target::availability(Feature::MountApiVfs);
        let message = format!(
            "{} cannot run apps in their own root filesystem: podc needs MountAPIVFS= (systemd {since} or newer)",
            c.systemd(t)
        );
        if overrides.systemd.is_some() {
            c.flag(codes::NO_MOUNT_API_VFS, message);
        } else {
            c.value(codes::NO_MOUNT_API_VFS, "target.systemd", message);
        }
    }
    t
}

/// Reports a feature the target lacks, at `path`.
fn require(c: &mut Checker, path: &str, target: Target, feature: Feature, why: &str) -> bool {
    if target.has(feature) {
        return true;
    }
    let (since, until) = target::availability(feature);
    let msg = match until {
        Some(u) if target.systemd >= u => format!(
            "{why} needs {}, which systemd {u} and newer no longer have (target: {})",
            feature.spelling(),
            c.systemd(target)
        ),
        _ => format!(
            "{why} needs {}, which {} lacks (added in {since})",
            feature.spelling(),
            c.systemd(target)
        ),
    };
    c.value(codes::FEATURE_MISSING, path, msg);
    false
}

fn resolve_limits(c: &mut Checker, base: &str, i: &manifest::AppIsolators, t: Target) -> Limits {
    let mut l = Limits::default();
    if let Some(q) = &i.cpu {
        let path = join_key(base, "cpu");
        match quantity::millicores(&q.0) {
            Ok(m) if m > 214_748_364 => {
                c.value(
                    codes::CPU_TOO_LARGE,
                    &path,
                    format!(
                        "cpu {} is larger than systemd's CPUQuota= can express",
                        show(&q.0)
                    ),
                );
            }
            Ok(m) => {
                // One requirement at a time: the stricter first.
                let needs = if m < 10 {
                    Some(Feature::CpuQuotaBelowOnePercent)
                } else if m % 10 != 0 {
                    Some(Feature::CpuQuotaFraction)
                } else {
                    None
                };
                if let Some(feature) = needs.filter(|f| !t.has(*f)) {
                    require(c, &path, t, feature, &format!("cpu {}", show(&q.0)));
                }
                l.cpu_millis = Some(m);
                l.written.cpu = Some(q.0.trim().to_string());
            }
            Err(e) => {
                let d = c.value(codes::QUANTITY, &path, format!("cpu {} {e}", show(&q.0)));
                d.help = quantity::suggest_cpu(&q.0);
            }
        }
    }
    match (i.cpu_shares, i.cpu_weight) {
        (Some(_), Some(_)) => {
            c.key(
                codes::CPU_WEIGHT_TWICE,
                &join_key(base, "cpuWeight"),
                "cpuShares and cpuWeight are two spellings of one setting; give only one",
            );
        }
        (Some(s), None) => {
            let path = join_key(base, "cpuShares");
            if !(2..=262_144).contains(&s) {
                c.value(
                    codes::OUT_OF_RANGE,
                    &path,
                    format!("cpuShares {s} is out of range 2..262144"),
                );
            } else {
                l.cpu_weight = Some(CpuWeight::Shares(s));
            }
        }
        (None, Some(w)) => {
            let path = join_key(base, "cpuWeight");
            if !(1..=10_000).contains(&w) {
                c.value(
                    codes::OUT_OF_RANGE,
                    &path,
                    format!("cpuWeight {w} is out of range 1..10000"),
                );
            } else {
                l.cpu_weight = Some(CpuWeight::Weight(w));
            }
        }
        (None, None) => {}
    }
    if let Some(q) = &i.memory {
        let path = join_key(base, "memory");
        match quantity::bytes(&q.0) {
            Ok(b) => {
                l.memory_bytes = Some(b);
                l.written.memory = Some(q.0.trim().to_string());
            }
            Err(e) => {
                let d = c.value(codes::QUANTITY, &path, format!("memory {} {e}", show(&q.0)));
                d.help = quantity::suggest_memory(&q.0);
            }
        }
    }
    if let Some(n) = i.tasks {
        let path = join_key(base, "tasks");
        if n == 0 {
            c.value(codes::TASKS, &path, "tasks must be at least 1");
        } else if n == u64::MAX {
            c.value(codes::TASKS, &path, "tasks is too large");
        } else {
            l.tasks = Some(n);
        }
    }
    // Directives the target must have for these limits.
    let (mem, weight) = if t.unified_directives() {
        (Feature::MemoryMax, Feature::CpuWeight)
    } else {
        (Feature::MemoryLimit, Feature::CpuShares)
    };
    if l.memory_bytes.is_some() {
        require(c, &join_key(base, "memory"), t, mem, "a memory limit");
    }
    if let Some(w) = l.cpu_weight {
        let key = if matches!(w, CpuWeight::Shares(_)) {
            "cpuShares"
        } else {
            "cpuWeight"
        };
        require(c, &join_key(base, key), t, weight, "a CPU weight");
        if let (CpuWeight::Shares(s), CgroupVersion::V1, true) =
            (w, t.cgroup, t.unified_directives())
        {
            if CpuWeight::exact_weight_for_shares(s).is_none() {
                let lo = (s * 100 / 1024).max(1);
                let systemd = c.systemd(t);
                c.value(codes::CPU_SHARES_INEXACT, &join_key(base, key), format!(
                    "cpuShares {s} cannot be set exactly with {systemd}: it deprecates CPUShares= and turns CPUWeight=W into W*1024/100 shares on cgroup v1"
                ))
                .help = Some(format!(
                    "the nearest exact values are cpuShares {} (cpuWeight {lo}) and cpuShares {} (cpuWeight {})",
                    lo * 1024 / 100,
                    (lo + 1) * 1024 / 100,
                    lo + 1
                ));
            }
        }
    }
    l
}

fn resolve_volume(c: &mut Checker, path: &str, v: &manifest::Volume) -> Option<Volume> {
    let named = c.name(&join_key(path, "name"), "volume", &v.name);
    let read_only = v.read_only.unwrap_or(false);
    let kind = match v.kind {
        manifest::VolumeKind::Host => {
            for (key, present) in [
                ("mode", v.mode.is_some()),
                ("uid", v.uid.is_some()),
                ("gid", v.gid.is_some()),
            ] {
                if present {
                    c.key(codes::HOST_VOLUME_OWNERSHIP, &join_key(path, key), format!("`{key}` applies only to empty volumes; a host volume keeps its directory's own"));
                }
            }
            match &v.source {
                None => {
                    c.key(
                        codes::HOST_VOLUME_SOURCE,
                        &join_key(path, "kind"),
                        format!("host volume {} needs a `source` directory", show(&v.name)),
                    );
                    None
                }
                Some(s) => c
                    .abs_path(&join_key(path, "source"), "volume source", s)
                    .then(|| pod::VolumeKind::Host { source: s.clone() }),
            }
        }
        manifest::VolumeKind::Empty => {
            if v.source.is_some() {
                c.key(
                    codes::EMPTY_VOLUME_SOURCE,
                    &join_key(path, "source"),
                    "an empty volume has no `source`: podc makes a fresh directory for each run",
                );
            }
            let mode = match &v.mode {
                None => Some(0o755),
                Some(m) => {
                    let ok =
                        (3..=5).contains(&m.len()) && m.bytes().all(|b| (b'0'..=b'7').contains(&b));
                    let parsed = if ok {
                        u32::from_str_radix(m, 8).ok().filter(|v| *v <= 0o7777)
                    } else {
                        None
                    };
                    if parsed.is_none() {
                        c.value(
                            codes::VOLUME_MODE,
                            &join_key(path, "mode"),
                            format!(
                                "mode {} is not an octal permission such as \"0750\"",
                                show(m)
                            ),
                        );
                    }
                    parsed
                }
            };
            mode.map(|mode| pod::VolumeKind::Empty {
                mode,
                uid: v.uid.unwrap_or(0),
                gid: v.gid.unwrap_or(0),
            })
        }
    };
    match (named, kind) {
        (true, Some(kind)) => Some(Volume {
            name: v.name.clone(),
            kind,
            read_only,
        }),
        _ => None,
    }
}

fn resolve_app(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    volumes: &BTreeMap<String, bool>,
    t: Target,
) -> App {
    let (image, image_valid) = check_name_and_image(c, path, a);
    // An image that is neither a path nor a reference has its error; no second one for exec.
    check_command(
        c,
        path,
        a,
        !image_valid || matches!(image, pod::Image::Reference(_)),
    );
    let (user, group, supplementary_groups, working_directory) = resolve_identity(c, path, a);
    let iso = a.isolators.clone().unwrap_or_default();
    let iso_path = join_key(path, "isolators");
    let limits = resolve_limits(c, &iso_path, &iso, t);
    if let Some(v) = iso.oom_score_adj {
        if !(-1000..=1000).contains(&v) {
            c.value(
                codes::OUT_OF_RANGE,
                &join_key(&iso_path, "oomScoreAdj"),
                format!("oomScoreAdj {v} is out of range -1000..1000"),
            );
        }
    }
    let capabilities = resolve_capabilities(c, &iso_path, &iso);
    let seccomp = resolve_seccomp(c, &iso_path, &iso, t);
    let mounts = resolve_mounts(c, path, a, volumes);
    let ports = a
        .ports
        .iter()
        .enumerate()
        .filter_map(|(j, p)| resolve_port(c, &join_index(&join_key(path, "ports"), j), p, &user))
        .collect();

    App {
        name: a.name.clone(),
        given: pod::Given {
            exec: a.exec.is_some() || !matches!(image, pod::Image::Reference(_)),
            working_directory: a.working_directory.is_some()
                || !matches!(image, pod::Image::Reference(_)),
            user: a.user.is_some()
                || a.group.is_some()
                || !matches!(image, pod::Image::Reference(_)),
        },
        image,
        exec: a.exec.clone().unwrap_or_default(),
        user,
        group,
        supplementary_groups,
        working_directory,
        environment: a.environment.clone(),
        limits,
        oom_score_adj: iso.oom_score_adj,
        no_new_privileges: iso.no_new_privileges,
        capabilities,
        seccomp,
        relax: {
            let mut r = iso.relax.clone();
            r.sort();
            r.dedup();
            r
        },
        mounts,
        read_only_rootfs: a.read_only_rootfs.unwrap_or(false),
        after: a.after.clone(),
        restart: a.restart.unwrap_or(manifest::Restart::No),
        ports,
    }
}

/// A port's own rules; `None` where one is broken (the pod-wide checks then skip it).
fn resolve_port(
    c: &mut Checker,
    path: &str,
    p: &manifest::Port,
    user: &IdOrName,
) -> Option<pod::Port> {
    use manifest::{Activation, Protocol};
    let mut ok = true;
    let mut number = |c: &mut Checker, key: &str, v: u64| match u16::try_from(v) {
        Ok(n) if n > 0 => n,
        _ => {
            c.value(
                codes::PORT_RANGE,
                &join_key(path, key),
                format!("{key} {v} is out of range 1..65535"),
            );
            ok = false;
            0
        }
    };
    let port = number(c, "port", p.port);
    let host_port = p.host_port.map_or(port, |h| number(c, "hostPort", h));
    let host_ip = match &p.host_ip {
        None => None,
        Some(text) => match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                c.value(
                    codes::HOST_IP,
                    &join_key(path, "hostIP"),
                    format!("hostIP {} is not an IPv4 or IPv6 address", show(text)),
                )
                .help = Some("leave it out to publish on every address of the host".into());
                ok = false;
                None
            }
        },
    };
    if let Some(name) = &p.name {
        if !is_port_name(name) {
            c.value(
                codes::PORT_NAME,
                &join_key(path, "name"),
                format!("port name {} is not a valid port name", show(name)),
            )
            .help = Some(
                "up to 15 lowercase letters, digits and single dashes between them, with at \
                 least one letter (a Kubernetes containerPort name)"
                    .into(),
            );
            ok = false;
        }
    }
    let protocol = p.protocol.unwrap_or(Protocol::Tcp);
    let activation = p.activation.unwrap_or(Activation::Proxy);
    let activation_path = join_key(path, "activation");
    match activation {
        Activation::Proxy if protocol == Protocol::Udp => {
            c.value(
                codes::UDP_PROXY,
                &activation_path,
                "a udp port cannot be proxied: systemd-socket-proxyd forwards tcp only",
            )
            .help = Some("write `activation: socket`: the app is handed the udp socket".into());
            ok = false;
        }
        Activation::Proxy => {
            if let (IdOrName::Id(uid), true) = (user, (1..1024).contains(&port)) {
                if *uid != 0 {
                    c.value(
                        codes::PRIVILEGED_PORT,
                        &join_key(path, "port"),
                        format!(
                            "the app runs as uid {uid}, which may not listen on port {port} \
                             (below 1024)"
                        ),
                    )
                    .help = Some(
                        "let the app listen on a port from 1024 and publish it as any \
                         hostPort, or hand it the socket with `activation: socket`"
                            .into(),
                    );
                    ok = false;
                }
            }
        }
        Activation::Socket => {
            if p.host_port.is_some() && host_port != port {
                c.value(
                    codes::SOCKET_HOST_PORT,
                    &join_key(path, "hostPort"),
                    format!(
                        "hostPort {host_port} differs from port {port}, but a socket-activated \
                         app is handed the host's socket itself"
                    ),
                )
                .help = Some("leave hostPort out, or make it equal to port".into());
                ok = false;
            }
        }
    }
    ok.then(|| pod::Port {
        name: p.name.clone(),
        port,
        host_port,
        host_ip,
        protocol,
        activation,
    })
}

/// A Kubernetes port name (IANA_SVC_NAME): 1 to 15 lowercase letters, digits and single
/// dashes between them, at least one letter.
fn is_port_name(name: &str) -> bool {
    name.len() <= 15 && escape::is_name(name) && name.bytes().any(|b| b.is_ascii_lowercase())
}

/// The rules between ports and with the pod: no host address and port published twice, no
/// port proxied twice inside the pod, names unique, proxies only on a private network, a pod
/// started by connections has a port to be connected to.
fn check_ports(
    c: &mut Checker,
    written: &[manifest::App],
    apps: &[App],
    network: manifest::Network,
    start: manifest::Start,
) {
    use manifest::Activation;
    let mut published: Vec<(&pod::Port, String)> = Vec::new();
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let mut total = 0;
    for (i, app) in apps.iter().enumerate() {
        let base = join_key(&join_index("apps", i), "ports");
        total += written.get(i).map_or(0, |a| a.ports.len());
        // An app some of whose ports have problems of their own is left out here (its kept
        // ports no longer line up with the manifest's).
        if written
            .get(i)
            .is_none_or(|a| a.ports.len() != app.ports.len())
        {
            continue;
        }
        for (j, p) in app.ports.iter().enumerate() {
            let path = join_index(&base, j);
            if p.activation == Activation::Proxy && network == manifest::Network::Host {
                let written = written[i].ports[j].activation.is_some();
                c.value(
                    codes::PROXY_ON_HOST_NETWORK,
                    &join_key(&path, "activation"),
                    if written {
                        "a proxied port needs the pod's own network (`network: private`)"
                    } else {
                        "this port is proxied (the default activation), which needs the pod's \
                         own network (`network: private`)"
                    },
                )
                .help = Some(
                    "on the host's network the app already listens on the host; publish it \
                     with `activation: socket`, or give the pod `network: private`"
                        .into(),
                );
            }
            let clash = published.iter().find(|(q, _)| {
                q.protocol == p.protocol
                    && q.host_port == p.host_port
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((q, other)) = clash {
                c.value(
                    codes::HOST_PORT_TWICE,
                    &join_key(
                        &path,
                        if p.host_port == p.port {
                            "port"
                        } else {
                            "hostPort"
                        },
                    ),
                    format!(
                        "host port {}/{} is already published by {other}",
                        p.host_port,
                        q.protocol.name()
                    ),
                );
            }
            let proxied_twice = p.activation == Activation::Proxy
                && published
                    .iter()
                    .any(|(q, _)| q.activation == Activation::Proxy && q.port == p.port);
            if proxied_twice {
                c.value(
                    codes::PROXIED_TWICE,
                    &join_key(&path, "port"),
                    format!(
                        "port {} is already proxied to in this pod; its apps share one network",
                        p.port
                    ),
                );
            }
            if let Some(name) = &p.name {
                if let Some(other) = names.insert(name, path.clone()) {
                    c.value(
                        codes::PORT_NAME_TWICE,
                        &join_key(&path, "name"),
                        format!("port name {} is already used by {other}", show(name)),
                    );
                }
            }
            published.push((p, path));
        }
    }
    if total > limits::MAX_ITEMS {
        c.key(
            codes::TOO_MANY,
            "apps",
            format!(
                "a pod may publish at most {} ports; this one has {total}",
                limits::MAX_ITEMS
            ),
        );
    }
    if start == manifest::Start::Connection && total == 0 {
        c.value(
            codes::START_WITHOUT_PORTS,
            "start",
            "`start: connection` starts the pod on a connection to a published port, and the pod \
             publishes none",
        )
        .help = Some("give an app `ports:`, or start the pod at boot (`start: boot`)".into());
    }
}

/// The app's name (the Name rule, not reserved) and its image: an absolute path, or else an
/// OCI reference (a path that breaks a rule is still reported as a path: it starts with `/`).
/// Whether the image is one of the two (an invalid path still counts: it is a path).
fn check_name_and_image(c: &mut Checker, path: &str, a: &manifest::App) -> (pod::Image, bool) {
    let name_path = join_key(path, "name");
    let reserved = RESERVED_APP_NAMES.contains(&a.name.as_str())
        || RESERVED_APP_PREFIXES.iter().any(|p| a.name.starts_with(p));
    if c.name(&name_path, "app", &a.name) && reserved {
        c.value(codes::APP_NAME_RESERVED, &name_path, format!("app name {} is reserved: its unit would shadow one that systemd or podc runs in the pod", show(&a.name)))
            .help = Some(format!(
                "reserved are the names {} and names starting with {}",
                RESERVED_APP_NAMES.join(", "),
                RESERVED_APP_PREFIXES.join(" or ")
            ));
    }
    let image_path = join_key(path, "image");
    if !a.image.starts_with('/') {
        return match Reference::parse(&a.image) {
            Ok(r) => (pod::Image::Reference(r), true),
            Err(why) => {
                c.value(
                    codes::IMAGE_REFERENCE,
                    &image_path,
                    format!(
                        "image {} is not an absolute path, nor an image reference: {why}",
                        show(&a.image)
                    ),
                )
                .help = Some(if a.image.contains('/') && !a.image.contains([':', '@']) {
                    format!(
                        "a root filesystem is named by its absolute path (`/{}`); an image by a \
                         reference with its registry (`registry.example/name:tag`, best pinned \
                         with `@sha256:<digest>`)",
                        a.image
                    )
                } else {
                    "give the root filesystem's absolute path, or a reference with its registry: \
                     `registry.example/name:tag`, best pinned with `@sha256:<digest>`"
                        .into()
                });
                (pod::Image::Path(a.image.clone()), false)
            }
        };
    }
    if c.abs_path(&image_path, "image", &a.image)
        && !a.read_only_rootfs.unwrap_or(false)
        && !escape::overlay_safe(&a.image)
    {
        c.value(codes::PATH_UNWRITABLE, &join_key(path, "image"), format!("image {} has a `,`, `:` or `\\`, which cannot be named as the lower layer of the overlay that keeps the image unchanged", show(&a.image)))
            .help = Some("move the image, or set readOnlyRootfs: true (then it is bound read-only, with no overlay)".into());
    }
    (pod::Image::Path(a.image.clone()), true)
}

/// The command line and environment: what systemd and the kernel can pass to the program.
/// `exec_optional`: the image is a reference (or not valid at all).
fn check_command(c: &mut Checker, path: &str, a: &manifest::App, exec_optional: bool) {
    let exec_path = join_key(path, "exec");
    let no_exec = Vec::new();
    let exec = match &a.exec {
        Some(e) => e,
        None if exec_optional => &no_exec,
        None => {
            c.key(
                codes::EXEC_MISSING,
                &join_key(path, "image"),
                format!(
                    "app {} gives no exec, and its image is a path: a root filesystem has no command of its own",
                    show(&a.name)
                ),
            )
            .help = Some(
                "add `exec: [/path/to/program, args...]`; only an image by reference (with its config's Entrypoint and Cmd) may leave it out"
                    .into(),
            );
            &no_exec
        }
    };
    if a.exec.as_ref().is_some_and(|e| e.is_empty()) {
        c.value(
            codes::EXEC_EMPTY,
            &exec_path,
            "exec needs at least the program to run",
        );
    }
    for (i, arg) in exec.iter().enumerate() {
        let p = || join_index(&exec_path, i);
        if escape::has_nul(arg) {
            c.value(
                codes::NUL,
                &p(),
                "a NUL character cannot be passed to a program",
            );
        } else if i == 0 {
            if let Some(problem) = escape::exec_path_problem(arg) {
                c.value(
                    codes::PROGRAM_PATH,
                    &p(),
                    format!("program path {} {problem}", show(arg)),
                );
            } else if arg.ends_with('/') && arg.len() > 1 {
                c.value(
                    codes::PROGRAM_PATH,
                    &p(),
                    format!("program path {} ends with `/`", show(arg)),
                );
            } else {
                c.abs_path(&p(), "program path", arg);
            }
        }
    }

    for (i, arg) in exec.iter().enumerate() {
        if escape::exec_string_bytes(arg) > escape::MAX_ARG_STRLEN {
            c.value(codes::ARG_TOO_LONG, &join_index(&exec_path, i), format!("argument of {} bytes: the kernel passes at most {} bytes per argument (MAX_ARG_STRLEN)", arg.len(), escape::MAX_ARG_STRLEN - 1));
        }
    }
    // Quoting at most quadruples a byte: only a line that might be too long is built to measure.
    let bound: usize = exec.iter().map(|s| 4 * s.len() + 3).sum();
    if bound + "ExecStart=".len() >= limits::MAX_UNIT_LINE
        && escape::exec_line(exec).len() + "ExecStart=".len() >= limits::MAX_UNIT_LINE
    {
        c.value(codes::LINE_TOO_LONG, &exec_path, format!("the command line is too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
    }
    let args_total: usize = exec
        .iter()
        .map(|s| escape::exec_string_bytes(s))
        .chain(
            a.environment
                .iter()
                .map(|(k, v)| escape::exec_string_bytes(k) + v.len() + 1),
        )
        .sum();
    if args_total > escape::MAX_ARGS_TOTAL {
        c.value(codes::ARGS_TOTAL, &exec_path, format!("arguments and environment take {args_total} bytes together; podc allows at most {} (the kernel's limit is a quarter of the stack limit, shared with what systemd adds)", escape::MAX_ARGS_TOTAL));
    }
    for (k, v) in &a.environment {
        let p = join_key(&join_key(path, "environment"), k);
        let valid = k
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            c.key(
                codes::ENV_NAME,
                &p,
                format!(
                    "environment variable name {} must match ^[A-Za-z_][A-Za-z0-9_]*$",
                    show(k)
                ),
            );
        }
        if escape::has_nul(v) {
            c.value(
                codes::NUL,
                &p,
                "a NUL character cannot be passed in the environment",
            );
        } else if k.len() + 1 + escape::exec_string_bytes(v) > escape::MAX_ARG_STRLEN {
            c.value(codes::ARG_TOO_LONG, &p, format!("`{k}=` and its value take {} bytes: the kernel passes at most {} bytes per environment entry (MAX_ARG_STRLEN)", k.len() + 1 + v.len(), escape::MAX_ARG_STRLEN - 1));
        } else if 4 * (k.len() + 1 + v.len()) + 2 + "Environment=".len() >= limits::MAX_UNIT_LINE
            && escape::env_assignment(k, v).len() + "Environment=".len() >= limits::MAX_UNIT_LINE
        {
            c.value(codes::LINE_TOO_LONG, &p, format!("the value is too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
        }
    }
}

/// User, group, supplementary groups and working directory, with their defaults.
fn resolve_identity(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
) -> (IdOrName, IdOrName, Vec<IdOrName>, String) {
    let user = a.user.clone().unwrap_or(IdOrName::Id(0));
    check_id(c, &join_key(path, "user"), "user", &user);
    let group = a.group.clone().unwrap_or(IdOrName::Id(0));
    check_id(c, &join_key(path, "group"), "group", &group);
    let supplementary_groups = a.supplementary_groups.clone().unwrap_or_default();
    for (i, g) in supplementary_groups.iter().enumerate() {
        check_id(
            c,
            &join_index(&join_key(path, "supplementaryGroups"), i),
            "group",
            g,
        );
    }

    let working_directory = a.working_directory.clone().unwrap_or_else(|| "/".into());
    let wd_path = join_key(path, "workingDirectory");
    if c.abs_path(&wd_path, "working directory", &working_directory) {
        if working_directory.contains('\\') {
            c.value(
                codes::PATH_UNWRITABLE,
                &wd_path,
                "a working directory with `\\` cannot be written to a unit file verbatim",
            );
        } else if escape::loses_trailing_space(&working_directory) {
            c.value(
                codes::PATH_UNWRITABLE,
                &wd_path,
                format!(
                    "working directory {} ends with white space, which systemd strips",
                    show(&working_directory)
                ),
            );
        }
    }
    (user, group, supplementary_groups, working_directory)
}

/// `isolators.capabilities`: known names, `retain` or `remove`.
fn resolve_capabilities(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
) -> Option<Filter> {
    iso.capabilities.as_ref().and_then(|s| {
        let p = join_key(iso_path, "capabilities");
        let f = one_of(
            c,
            &p,
            "capabilities",
            s.retain.as_ref(),
            s.remove.as_ref(),
            true,
        )?;
        let (key, names) = filter_parts(&f);
        let mut ok = true;
        for (i, n) in names.iter().enumerate() {
            if !linux::CAPABILITIES.contains(&n.as_str()) {
                ok = false;
                c.value(
                    codes::UNKNOWN_CAPABILITY,
                    &join_index(&join_key(&p, key), i),
                    format!("unknown capability {}", show(n)),
                )
                .help = Some(capability_help(n));
            }
        }
        ok.then_some(f)
    })
}

/// `isolators.seccomp`: known system calls and groups the target has, and the errno.
fn resolve_seccomp(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
    t: Target,
) -> Option<Seccomp> {
    iso.seccomp.as_ref().and_then(|s| {
        let p = join_key(iso_path, "seccomp");
        let f = one_of(
            c,
            &p,
            "seccomp",
            s.retain.as_ref(),
            s.remove.as_ref(),
            false,
        )?;
        let (key, names) = filter_parts(&f);
        let mut ok = true;
        for (i, n) in names.iter().enumerate() {
            let np = join_index(&join_key(&p, key), i);
            if n.starts_with('@') {
                match target::syscall_group_since(n) {
                    None => {
                        ok = false;
                        let groups: Vec<&str> = target::syscall_groups().collect();
                        c.value(codes::UNKNOWN_SYSCALL_GROUP, &np, format!("unknown system call group {}", show(n)))
                            .help = Some(match nearest(n, &groups) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => format!("known groups: {}", groups.join(" ")),
                        });
                    }
                    Some(_) => {
                        let g = target::syscall_groups().find(|g| g == n).unwrap();
                        ok &= require(c, &np, t, Feature::SyscallGroup(g), "seccomp");
                    }
                }
            } else if linux::SYSCALLS.binary_search(&n.as_str()).is_err() {
                // systemd would only warn and leave the call out of the filter.
                ok = false;
                let help = match nearest(n, linux::SYSCALLS) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "system calls are lowercase names such as `mount` (see syscalls(2)); groups start with `@`".into(),
                };
                c.value(codes::UNKNOWN_SYSCALL, &np, format!("unknown system call {}", show(n))).help = Some(help);
            }
        }
        let errno = s.errno.clone();
        if let Some(e) = &errno {
            if !linux::ERRNO.contains(&e.as_str()) {
                ok = false;
                c.value(codes::UNKNOWN_ERRNO,
                    &join_key(&p, "errno"),
                    format!("unknown errno name {}", show(e)),
                )
                .help = Some(match nearest(e, linux::ERRNO) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "errno names are uppercase, such as EPERM or EACCES (see errno(3))"
                        .into(),
                });
            }
        }
        ok.then_some(Seccomp { filter: f, errno })
    })
}

/// The app's mounts: known volumes, paths that can carry them, one mount per path.
fn resolve_mounts(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    volumes: &BTreeMap<String, bool>,
) -> Vec<AppMount> {
    let mut mounts = Vec::new();
    let mut mount_paths = BTreeSet::new();
    for (i, m) in a.mounts.iter().enumerate() {
        let p = join_index(&join_key(path, "mounts"), i);
        let volume_ro = match volumes.get(&m.volume) {
            Some(ro) => Some(*ro),
            None => {
                let names: Vec<&str> = volumes.keys().map(String::as_str).collect();
                c.value(
                    codes::UNKNOWN_VOLUME,
                    &join_key(&p, "volume"),
                    format!("no volume named {} in this pod", show(&m.volume)),
                )
                .help = Some(known_help(&m.volume, &names, "volumes"));
                None
            }
        };
        let mp = join_key(&p, "path");
        let path_ok = c.abs_path(&mp, "mount path", &m.path);
        let api = ["/proc", "/sys"]
            .into_iter()
            .find(|a| m.path == *a || m.path.strip_prefix(*a).is_some_and(|r| r.starts_with('/')));
        if path_ok && m.path == "/" {
            c.value(
                codes::MOUNT_PATH,
                &mp,
                "a volume cannot be mounted over the app's whole root filesystem",
            );
        } else if let (true, Some(api)) = (path_ok, api) {
            c.value(codes::MOUNT_PATH, &mp, format!("a volume at {} would be hidden by the {api} that systemd mounts over the app's root (MountAPIVFS=)", show(&m.path)))
                .help = Some("mount it somewhere else".into());
        } else if path_ok && m.path == "/dev" {
            c.value(
                codes::MOUNT_PATH,
                &mp,
                "a volume at \"/dev\" would replace the app's devices; mount it below /dev",
            )
            .help = Some(
                "volumes below /dev, such as /dev/shm, are bound again over the /dev systemd makes"
                    .into(),
            );
        } else if path_ok && crate::tree::layout::under_api_mount(&m.path) && m.path.contains(':') {
            c.value(codes::PATH_UNWRITABLE, &mp, format!("mount path {} has a `:`, which systemd's BindPaths= (used below /run and /dev) cannot carry", show(&m.path)));
        } else if path_ok && !mount_paths.insert(m.path.clone()) {
            c.value(
                codes::MOUNT_PATH_TWICE,
                &mp,
                format!("two mounts of this app use the path {}", show(&m.path)),
            );
        }
        if let Some(vro) = volume_ro {
            mounts.push(AppMount {
                volume: m.volume.clone(),
                path: m.path.clone(),
                read_only: vro || m.read_only.unwrap_or(false),
            });
        }
    }
    mounts
}

fn filter_parts(f: &Filter) -> (&'static str, &Vec<String>) {
    match f {
        Filter::Retain(v) => ("retain", v),
        Filter::Remove(v) => ("remove", v),
    }
}

/// Exactly one of `retain` and `remove`, non-empty.
/// `retain` or `remove`. An empty `retain` is allowed where it means something (`empty_retain`:
/// an empty capability bounding set); an empty `remove` never changes anything.
fn one_of(
    c: &mut Checker,
    path: &str,
    what: &str,
    retain: Option<&Vec<String>>,
    remove: Option<&Vec<String>>,
    empty_retain: bool,
) -> Option<Filter> {
    match (retain, remove) {
        (Some(_), Some(_)) => {
            c.key(
                codes::RETAIN_REMOVE,
                &join_key(path, "remove"),
                format!("{what} takes `retain` or `remove`, not both"),
            );
            None
        }
        (None, None) => {
            c.key(
                codes::RETAIN_REMOVE,
                path,
                format!("{what} needs `retain` or `remove`"),
            );
            None
        }
        (Some(v), None) | (None, Some(v)) => {
            let (key, f) = if retain.is_some() {
                ("retain", Filter::Retain(v.clone()))
            } else {
                ("remove", Filter::Remove(v.clone()))
            };
            if v.is_empty() && !(empty_retain && key == "retain") {
                c.value(
                    codes::RETAIN_REMOVE,
                    &join_key(path, key),
                    format!("{what} `{key}` must list at least one name"),
                );
                return None;
            }
            Some(f)
        }
    }
}

/// A user or group: numeric ids below 2^32-1, or a name systemd accepts.
fn check_id(c: &mut Checker, path: &str, what: &str, id: &IdOrName) {
    match id {
        IdOrName::Id(n) => {
            if let Some(problem) = escape::id_problem(*n) {
                c.value(codes::BAD_ID, path, format!("{what} id {n} {problem}"))
                    .help = Some("use another id; 65534 is the usual \"nobody\"".into());
            }
        }
        IdOrName::Name(n) => {
            if !escape::is_user_name(n) {
                c.value(codes::BAD_USER_NAME, path, format!("{what} name {} is not valid", show(n)))
                    .help = Some(format!("{what} names start with a letter or `_` and hold letters, digits, `_`, `-` and `.`, up to 31 characters; or give a numeric id"));
            }
        }
    }
}

/// Every `after` names another app of the pod, and the graph has no cycle.
fn check_after(c: &mut Checker, apps: &[manifest::App]) {
    let index: BTreeMap<&str, usize> = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); apps.len()];
    for (i, a) in apps.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for (j, dep) in a.after.iter().enumerate() {
            let p = join_index(&join_key(&join_index("apps", i), "after"), j);
            if !seen.insert(dep) {
                c.value(
                    codes::AFTER_TWICE,
                    &p,
                    format!("{} is listed twice", show(dep)),
                );
            } else if dep == &a.name {
                c.value(
                    codes::AFTER_SELF,
                    &p,
                    format!("app {} cannot start after itself", show(dep)),
                );
            } else if let Some(&k) = index.get(dep.as_str()) {
                edges[i].push((k, j));
            } else {
                let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
                c.value(
                    codes::AFTER_UNKNOWN,
                    &p,
                    format!("no app named {} in this pod", show(dep)),
                )
                .help = Some(known_help(dep, &names, "apps"));
            }
        }
    }
    // Depth-first search; report each cycle once, at the edge that closes it.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    let mut state = vec![State::New; apps.len()];
    fn visit(
        n: usize,
        edges: &[Vec<(usize, usize)>],
        state: &mut [State],
        stack: &mut Vec<usize>,
        c: &mut Checker,
        apps: &[manifest::App],
    ) {
        state[n] = State::Active;
        stack.push(n);
        for &(m, j) in &edges[n] {
            match state[m] {
                State::Active => {
                    let start = stack.iter().position(|&x| x == m).unwrap();
                    let mut names: Vec<&str> = stack[start..]
                        .iter()
                        .map(|&x| apps[x].name.as_str())
                        .collect();
                    names.push(&apps[m].name);
                    let p = join_index(&join_key(&join_index("apps", n), "after"), j);
                    c.value(
                        codes::AFTER_CYCLE,
                        &p,
                        format!(
                            "apps wait for each other in a cycle: {}",
                            names.join(" after ")
                        ),
                    );
                }
                State::New => visit(m, edges, state, stack, c, apps),
                State::Done => {}
            }
        }
        stack.pop();
        state[n] = State::Done;
    }
    for n in 0..apps.len() {
        if state[n] == State::New {
            visit(n, &edges, &mut state, &mut Vec::new(), c, apps);
        }
    }
}

/// Memory limits below this are almost surely a number written without its suffix
/// (`memory: 128` is 128 bytes): no program runs in 1 MiB, and systemd itself needs more.
const MIN_SENSIBLE_MEMORY: u64 = 1 << 20;

/// CPU limits above this many CPUs are more than a host has: a two-socket server of 2026 has at
/// most 768 hardware threads (two 192-core CPUs, two threads a core); the rare larger
/// single-system machines are not where pods run, and a pod limit is meant to be below the
/// host's size.
const MAX_HOST_CPUS: u64 = 1024;

/// A bare cpu number of at least this many CPUs is more likely millicores without their `m`
/// (`cpu: 500` meant as `500m`) than a limit anyone needs.
const BARE_CPU_SUSPECT: u64 = 100;

/// Tasks a pod needs before its apps run: nspawn's own process, systemd as the pod's init,
/// systemd-journald and the stop command of podc-exit.service.
const POD_BASE_TASKS: u64 = 4;

/// Warnings: what is legal, but almost surely not what the author meant. They are looked for
/// only in a manifest without errors, so that they speak about a whole, resolved pod, and they
/// never change it.
fn check_warnings(c: &mut Checker, m: &Manifest, pod: &Pod) {
    let pod_written = m.isolators.as_ref();
    limit_warnings(
        c,
        "isolators",
        &pod.limits,
        pod_written.and_then(|i| i.cpu.as_ref()),
        pod_written.and_then(|i| i.memory.as_ref()),
    );
    for (i, (app, written)) in pod.apps.iter().zip(&m.apps).enumerate() {
        let path = join_index("apps", i);
        let iso = join_key(&path, "isolators");
        let written_iso = written.isolators.as_ref();
        limit_warnings(
            c,
            &iso,
            &app.limits,
            written_iso.and_then(|i| i.cpu.as_ref()),
            written_iso.and_then(|i| i.memory.as_ref()),
        );
        // An app's limit above the pod's is capped by the pod's: the number written is not
        // what the app gets.
        let above = |key: &str, app: Option<u64>, pod: Option<u64>| match (app, pod) {
            (Some(a), Some(p)) if a > p => Some(key.to_string()),
            _ => None,
        };
        let checks = [
            above("memory", app.limits.memory_bytes, pod.limits.memory_bytes),
            above("cpu", app.limits.cpu_millis, pod.limits.cpu_millis),
            above("tasks", app.limits.tasks, pod.limits.tasks),
        ];
        for key in checks.into_iter().flatten() {
            let text = |i: Option<&manifest::AppIsolators>, p: Option<&manifest::PodIsolators>| {
                match key.as_str() {
                    "memory" => i
                        .and_then(|i| i.memory.as_ref())
                        .or(p.and_then(|p| p.memory.as_ref()))
                        .map(|q| q.0.clone()),
                    "cpu" => i
                        .and_then(|i| i.cpu.as_ref())
                        .or(p.and_then(|p| p.cpu.as_ref()))
                        .map(|q| q.0.clone()),
                    _ => i
                        .and_then(|i| i.tasks)
                        .or(p.and_then(|p| p.tasks))
                        .map(|t| t.to_string()),
                }
                .unwrap_or_default()
            };
            let (app_text, pod_text) = (text(written_iso, None), text(None, pod_written));
            c.value(
                codes::APP_ABOVE_POD,
                &join_key(&iso, &key),
                format!(
                    "app {} has {key} {app_text}, above the pod's {key} {pod_text}, which caps it",
                    show(&app.name)
                ),
            )
            .help = Some(format!(
                "lower the app's {key} to at most the pod's, or raise the pod's"
            ));
        }
        if let pod::Image::Reference(r) = &app.image {
            if r.digest.is_none() {
                c.value(
                    codes::IMAGE_UNPINNED,
                    &join_key(&path, "image"),
                    format!(
                        "image {r} is not pinned by digest: what runs is whatever the image store \
                         holds for the tag when the pod is launched, not what was reviewed"
                    ),
                )
                .help = Some(format!(
                    "pin it: `{}@sha256:<digest>` (`podc image pull {r}` prints the digest)",
                    r.name()
                ));
            }
        }
        let root = matches!(&app.user, IdOrName::Id(0))
            || matches!(&app.user, IdOrName::Name(n) if n == "root");
        if root && !app.relax.is_empty() {
            let parts: Vec<String> = app.relax.iter().map(|r| kebab(&format!("{r:?}"))).collect();
            c.key(
                codes::ROOT_RELAXED,
                &join_key(&iso, "relax"),
                format!(
                    "app {} runs as root and relaxes its sandbox ({}): root without these \
                     protections reaches much more of the pod and the host",
                    show(&app.name),
                    parts.join(", ")
                ),
            )
            .help = Some(
                "give the app a `user` other than root, or keep the sandbox (drop `relax`)".into(),
            );
        }
    }
    if let Some(tasks) = pod.limits.tasks {
        let needed = POD_BASE_TASKS + pod.apps.len() as u64;
        if tasks < needed {
            c.value(
                codes::POD_TASKS_LOW,
                "isolators.tasks",
                format!(
                    "the pod's tasks limit {tasks} leaves no room to start it: nspawn, systemd, \
                     systemd-journald and podc's stop command take {POD_BASE_TASKS} tasks, and \
                     each of its {} apps at least one more",
                    pod.apps.len()
                ),
            )
            .help = Some(format!(
                "allow at least {needed} tasks, and more for apps that fork or use threads"
            ));
        }
    }
}

/// The warnings about one set of limits: a memory limit too small to be meant, a cpu limit
/// larger than any host or a bare number that reads like millicores without `m`.
fn limit_warnings(
    c: &mut Checker,
    base: &str,
    l: &Limits,
    cpu_text: Option<&manifest::Quantity>,
    memory_text: Option<&manifest::Quantity>,
) {
    if let Some(bytes) = l.memory_bytes.filter(|b| *b < MIN_SENSIBLE_MEMORY) {
        let bare = memory_text.is_some_and(|q| q.0.bytes().all(|b| b.is_ascii_digit()));
        c.value(
            codes::MEMORY_TINY,
            &join_key(base, "memory"),
            format!("memory limit of {bytes} bytes is less than 1 MiB; no program runs in that"),
        )
        .help = Some(if bare {
            format!("memory without a suffix is in bytes: did you mean `{bytes}Mi` or `{bytes}M`?")
        } else {
            "give the limit in Mi or Gi (powers of 1024) or M or G (powers of 1000)".into()
        });
    }
    if let (Some(millis), Some(q)) = (l.cpu_millis, cpu_text) {
        let bare = q.0.bytes().all(|b| b.is_ascii_digit());
        let help =
            || bare.then(|| format!("did you mean `{}m` ({} CPUs)?", q.0, cpu_fraction(millis)));
        if millis > MAX_HOST_CPUS * 1000 {
            c.value(
                codes::CPU_HUGE,
                &join_key(base, "cpu"),
                format!(
                    "cpu {} is {} CPUs, more than a host has (podc warns above {MAX_HOST_CPUS})",
                    show(&q.0),
                    millis / 1000
                ),
            )
            .help = help();
        } else if bare && millis >= BARE_CPU_SUSPECT * 1000 {
            c.value(
                codes::CPU_BARE_LARGE,
                &join_key(base, "cpu"),
                format!(
                    "cpu {} is {} whole CPUs; a cpu limit without a suffix counts CPUs, not millicores",
                    show(&q.0),
                    millis / 1000
                ),
            )
            .help = help();
        }
    }
}

/// What a bare cpu number meant as millicores is in CPUs: `500` read as `500m` is `0.5`.
fn cpu_fraction(millis: u64) -> String {
    let written = millis / 1000;
    let text = format!("{}.{:03}", written / 1000, written % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `KernelTunables` → `kernel-tunables`, the manifest's spelling of a sandbox part.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}
