//! A checked pod as a Kubernetes object: `podc kube`.
//!
//! [`to_kube`] maps each setting to its Kubernetes field where one says the same thing, and
//! writes everything else into two JSON annotations, `podc/pod` and `podc/apps`, with a
//! warning each (codes P11xx). The objects are k8s-openapi's types, serialized to YAML: the
//! bytes depend on the pod alone (every map is ordered, every list in the pod's order).
//!
//! Architecture invariant: for each lossy or order-sensitive setting, out computes what import
//! would read back from the Kubernetes fields alone (the rules in ARCHITECTURE.md, "Kubernetes")
//! and writes the setting into the annotation exactly when that differs. So podc → kube → podc
//! gives the same pod, and a Kubernetes object without the annotations reads as the fields say.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{json, Map, Value};

use super::{
    millis_to_shares, shares_to_millis, Kind, KubeOptions, APPS_ANNOTATION, NAME_LABEL,
    POD_ANNOTATION, RUNTIME_CAPABILITIES,
};
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::manifest::{Activation, IdOrName, Network, Protocol, Restart, Start};
use crate::pod::{App, CpuWeight, Filter, Image, Limits, Pod, VolumeKind};
use crate::systemd::target::Target;

/// A pod as a Kubernetes document, and what did not map exactly.
#[derive(Debug, Clone)]
pub struct Kube {
    /// One YAML document, ending in a newline, without a `---` line.
    pub yaml: String,
    /// Warnings, each with the document path of the setting (`apps[1].isolators.tasks`).
    pub warnings: Vec<Diagnostic>,
}

/// The pod as a Kubernetes Pod or Deployment. Errors (an image by path without `--image`, an
/// annotation podc writes itself) come with the document path of what is wrong.
pub fn to_kube(pod: &Pod, opts: &KubeOptions) -> Result<Kube, Vec<Diagnostic>> {
    let mut out = Out::default();
    let (meta, spec) = pod_spec(pod, opts, &mut out);
    if !out.errors.is_empty() {
        return Err(out.errors);
    }
    let yaml = match opts.kind {
        Kind::Pod => to_yaml(&core::Pod {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                ..meta
            },
            spec: Some(spec),
            status: None,
        }),
        Kind::Deployment => {
            let labels = BTreeMap::from([(NAME_LABEL.to_string(), pod.name.clone())]);
            to_yaml(&Deployment {
                metadata: ObjectMeta {
                    name: Some(pod.name.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                spec: Some(DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector {
                        match_labels: Some(labels.clone()),
                        ..Default::default()
                    },
                    template: core::PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            ..meta
                        }),
                        spec: Some(spec),
                    },
                    ..Default::default()
                }),
                status: None,
            })
        }
    };
    Ok(Kube {
        yaml,
        warnings: out.warnings,
    })
}

fn to_yaml<T: serde::Serialize>(object: &T) -> String {
    // Every string on one line, quoted where YAML 1.1 readers (Kubernetes' own) would take it
    // for something else: a reviewer compares a command or an image with the manifest's.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    // Serializing plain structs, maps, strings and numbers cannot fail.
    serde_saphyr::to_string_with_options(object, options)
        .expect("a Kubernetes object serializes to YAML")
}

#[derive(Default)]
struct Out {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// `podc/pod`.
    pod: Map<String, Value>,
    /// `podc/apps`: app name → its settings.
    apps: BTreeMap<String, Map<String, Value>>,
}

impl Out {
    fn warn(&mut self, code: &'static codes::Code, path: String, message: String) {
        self.warnings
            .push(Diagnostic::new(code, message).at(path, None));
    }

    fn app(&mut self, app: &str, key: &str, value: Value) {
        self.apps
            .entry(app.to_string())
            .or_default()
            .insert(key.to_string(), value);
    }
}

/// The most bytes of annotation keys and values Kubernetes takes on one object.
const MAX_ANNOTATIONS: usize = 256 * 1024;

/// Whether Kubernetes takes `key` as an annotation key: a qualified name, `[prefix/]name`,
/// the name up to 63 characters of `[A-Za-z0-9_.-]` beginning and ending with a letter or
/// digit, the prefix a DNS subdomain (lowercase, up to 253 characters).
pub fn qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let name_ok = (1..=63).contains(&name.len())
        && name.bytes().all(|c| alnum(c) || b"-_.".contains(&c))
        && alnum(name.as_bytes()[0])
        && alnum(name.as_bytes()[name.len() - 1]);
    let prefix_ok = prefix.is_none_or(|p| {
        (1..=253).contains(&p.len())
            && p.split('.').all(|label| {
                let b = label.as_bytes();
                (1..=63).contains(&b.len())
                    && b.iter()
                        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            })
    });
    name_ok && prefix_ok
}

/// The largest user or group id Kubernetes accepts (its API checks ids as int32).
const MAX_ID: u32 = i32::MAX as u32;

fn app_path(i: usize) -> String {
    format!("apps[{i}]")
}

fn restart_rank(r: Restart) -> u8 {
    match r {
        Restart::No => 0,
        Restart::OnFailure => 1,
        Restart::Always => 2,
    }
}

fn restart_policy(r: Restart) -> &'static str {
    match r {
        Restart::No => "Never",
        Restart::OnFailure => "OnFailure",
        Restart::Always => "Always",
    }
}

fn restart_word(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::OnFailure => "on-failure",
        Restart::Always => "always",
    }
}

/// Which apps run to completion before the others start, in the order Kubernetes runs them.
///
/// An app is an init container when (1) its `restart` is `no`, (2) some app names it in
/// `after`, (3) every app that names it either restarts (`on-failure` or `always`: a service
/// waiting for its set-up) or is an init container itself, and (4) every app it names is an
/// init container too. `restart: no` is podc's default, so (3) keeps a plain app that another
/// plain app starts after from becoming one. The order is the manifest's, except that an app
/// comes after every app it names (a stable topological sort).
pub fn init_apps(pod: &Pod) -> Vec<usize> {
    let n = pod.apps.len();
    let index = |name: &str| pod.apps.iter().position(|a| a.name == name);
    let named: BTreeSet<usize> = pod
        .apps
        .iter()
        .flat_map(|a| a.after.iter().filter_map(|d| index(d)))
        .collect();
    let mut init: Vec<bool> = (0..n)
        .map(|i| pod.apps[i].restart == Restart::No && named.contains(&i))
        .collect();
    // Take away apps that wait for an app that is not an init container, or that a plain
    // app waits for, until none is left.
    loop {
        let mut changed = false;
        for i in 0..n {
            let waits_for_other = pod.apps[i]
                .after
                .iter()
                .any(|d| index(d).is_none_or(|j| !init[j]));
            let plain_waiter = (0..n).any(|j| {
                !init[j]
                    && pod.apps[j].restart == Restart::No
                    && pod.apps[j].after.iter().any(|d| *d == pod.apps[i].name)
            });
            if init[i] && (waits_for_other || plain_waiter) {
                init[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut order = Vec::new();
    let mut placed = vec![false; n];
    // `after` has no cycles (resolve checks), so each round places at least one app.
    while order.len() < init.iter().filter(|&&x| x).count() {
        let next = (0..n).find(|&i| {
            init[i]
                && !placed[i]
                && pod.apps[i]
                    .after
                    .iter()
                    .all(|d| index(d).is_some_and(|j| placed[j]))
        });
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => break,
        }
    }
    order
}

/// The capabilities isolator as Kubernetes' `add` and `drop` against the runtime's default
/// set, in the form import reads back: `drop: [ALL]` with `add` for an allow list; for a deny
/// list X, `drop` = X ∩ default (in X's order) and `add` = every other capability not in the
/// default set and not in X (in the kernel's order).
pub fn capabilities(filter: &Filter) -> (Vec<String>, Vec<String>) {
    let bare = |c: &str| c.strip_prefix("CAP_").unwrap_or(c).to_string();
    match filter {
        Filter::Retain(keep) => (keep.iter().map(|c| bare(c)).collect(), vec!["ALL".into()]),
        Filter::Remove(gone) => {
            let add = crate::manifest::linux::CAPABILITIES
                .iter()
                .filter(|c| !RUNTIME_CAPABILITIES.contains(c) && !gone.iter().any(|g| g == *c))
                .map(|c| bare(c))
                .collect();
            let drop = gone
                .iter()
                .filter(|g| RUNTIME_CAPABILITIES.contains(&g.as_str()))
                .map(|c| bare(c))
                .collect();
            (add, drop)
        }
    }
}

/// What import makes of `add` and `drop` (the inverse of [`capabilities`]): `drop` holding
/// `ALL` is the allow list `add`; otherwise the deny list is `drop`, then every capability
/// outside the default set that `add` does not name, in the kernel's order.
pub fn capabilities_back(add: &[String], drop: &[String]) -> Filter {
    let full = |c: &str| {
        if c.starts_with("CAP_") {
            c.to_string()
        } else {
            ["CAP_", c].concat()
        }
    };
    if drop.iter().any(|d| d == "ALL") {
        return Filter::Retain(add.iter().map(|c| full(c)).collect());
    }
    let mut gone: Vec<String> = drop.iter().map(|c| full(c)).collect();
    gone.extend(
        crate::manifest::linux::CAPABILITIES
            .iter()
            .filter(|c| !RUNTIME_CAPABILITIES.contains(c) && !add.iter().any(|a| full(a) == **c))
            .map(|c| c.to_string()),
    );
    Filter::Remove(gone)
}

/// A quantity Kubernetes reads the same as podc: digits, an optional fraction and a suffix.
fn plain_quantity(text: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let Some(number) = SUFFIXES.iter().find_map(|s| text.strip_suffix(s)) else {
        return false;
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

fn millis_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The limit as Kubernetes reads it: the manifest's text where Kubernetes reads it the same,
/// else the exact value (and the text goes to the annotation, for the units' comments).
fn quantity(written: Option<&String>, exact: String) -> (Quantity, Option<String>) {
    match written {
        Some(w) if plain_quantity(w) => (Quantity(w.clone()), None),
        Some(w) => (Quantity(exact), Some(w.clone())),
        None => (Quantity(exact), None),
    }
}

/// The pod-level settings: all of them go to `podc/pod`.
fn pod_extras(pod: &Pod, out: &mut Out) {
    let l = &pod.limits;
    let mut iso = Map::new();
    if let (Some(_), Some(w)) = (l.cpu_millis, &l.written.cpu) {
        iso.insert("cpu".into(), json!(w));
    }
    if let (Some(_), Some(w)) = (l.memory_bytes, &l.written.memory) {
        iso.insert("memory".into(), json!(w));
    }
    match l.cpu_weight {
        Some(CpuWeight::Shares(s)) => {
            iso.insert("cpuShares".into(), json!(s));
        }
        Some(CpuWeight::Weight(w)) => {
            iso.insert("cpuWeight".into(), json!(w));
        }
        None => {}
    }
    if let Some(t) = l.tasks {
        iso.insert("tasks".into(), json!(t));
    }
    if !iso.is_empty() {
        let keys: Vec<&str> = iso.keys().map(String::as_str).collect();
        out.warn(
            codes::KUBE_POD_EXTRA,
            "isolators".into(),
            format!(
                "pod-level limits ({}) have no Kubernetes field (limits are per container); kept in {POD_ANNOTATION}",
                keys.join(", ")
            ),
        );
        out.pod.insert("isolators".into(), Value::Object(iso));
    }
    if pod.start == Start::Connection {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "start".into(),
            format!("`start: connection` has no Kubernetes field; kept in {POD_ANNOTATION}"),
        );
        out.pod.insert("start".into(), json!("connection"));
    }
    if pod.target != Target::default() {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "target".into(),
            format!("the target systemd and cgroup hierarchy have no Kubernetes field; kept in {POD_ANNOTATION}"),
        );
        out.pod.insert(
            "target".into(),
            json!({"cgroup": pod.target.cgroup.to_string(), "systemd": pod.target.systemd}),
        );
    }
    let mut volumes = Map::new();
    for (i, v) in pod.volumes.iter().enumerate() {
        let mut entry = Map::new();
        if v.read_only {
            // Every mount of it is read-only already; this is for POD.md's list of volumes.
            entry.insert("readOnly".into(), json!(true));
        }
        if let VolumeKind::Empty { mode, uid, gid } = v.kind {
            if (mode, uid, gid) != (0o755, 0, 0) {
                out.warn(
                    codes::KUBE_POD_EXTRA,
                    format!("volumes[{i}]"),
                    format!(
                        "volume {:?}: an emptyDir's mode, uid and gid have no Kubernetes field; kept in {POD_ANNOTATION}",
                        v.name
                    ),
                );
                entry.insert("gid".into(), json!(gid));
                entry.insert("mode".into(), json!(format!("{mode:04o}")));
                entry.insert("uid".into(), json!(uid));
            }
        }
        if !entry.is_empty() {
            volumes.insert(v.name.clone(), Value::Object(entry));
        }
    }
    if !volumes.is_empty() {
        out.pod.insert("volumes".into(), Value::Object(volumes));
    }
}

fn pod_spec(pod: &Pod, opts: &KubeOptions, out: &mut Out) -> (ObjectMeta, core::PodSpec) {
    for key in [POD_ANNOTATION, APPS_ANNOTATION] {
        if pod.annotations.contains_key(key) {
            out.errors.push(
                Diagnostic::new(
                    codes::ANNOTATION_RESERVED,
                    format!("annotation {key:?} is the one podc writes on Kubernetes objects"),
                )
                .at(format!("annotations.{key}"), None)
                .help("rename it; podc keeps what Kubernetes cannot say in podc/pod and podc/apps"),
            );
        }
    }
    for key in pod.annotations.keys() {
        if !qualified_name(key) {
            out.errors.push(
                Diagnostic::new(
                    codes::ANNOTATION_KUBERNETES,
                    format!("Kubernetes does not take the annotation key {key:?}"),
                )
                .at(format!("annotations.{key}"), None)
                .help("a key is a name of up to 63 letters, digits, `-`, `_` and `.` (beginning and ending with a letter or digit), optionally after a lowercase DNS prefix and `/`, such as `example.com/owner`"),
            );
        }
    }
    let size: usize = pod.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS {
        out.errors.push(
            Diagnostic::new(
                codes::ANNOTATION_KUBERNETES,
                format!("the annotations hold {size} bytes; Kubernetes takes at most {MAX_ANNOTATIONS} (with podc's own)"),
            )
            .at("annotations", None),
        );
    }
    pod_extras(pod, out);

    let init = init_apps(pod);
    let is_init = |i: usize| init.contains(&i);
    let regular: Vec<usize> = (0..pod.apps.len()).filter(|&i| !is_init(i)).collect();

    // The pod's restart policy: that of its long-running apps, the most restarting one if
    // they differ.
    // A Deployment's pods always restart (Kubernetes takes no other policy there).
    let policy = match opts.kind {
        Kind::Deployment => Restart::Always,
        Kind::Pod => regular
            .iter()
            .map(|&i| pod.apps[i].restart)
            .max_by_key(|&r| restart_rank(r))
            .unwrap_or(Restart::No),
    };
    for &i in &regular {
        let a = &pod.apps[i];
        if a.restart != policy {
            let why = match opts.kind {
                Kind::Deployment => "a Deployment's restartPolicy is Always",
                Kind::Pod => "the pod's restartPolicy is Always (from another app)",
            };
            let why = why.replace("Always", restart_policy(policy));
            out.warn(
                codes::KUBE_RESTART,
                format!("{}.restart", app_path(i)),
                format!(
                    "app {:?} restarts `{}`, but {why}; kept in {APPS_ANNOTATION}",
                    a.name,
                    restart_word(a.restart),
                ),
            );
            out.app(&a.name, "restart", json!(restart_word(a.restart)));
        }
    }

    // Supplementary groups: the numeric ids every app has, in the first app's order.
    let numeric = |a: &App| -> Vec<u32> {
        a.supplementary_groups
            .iter()
            .filter_map(|g| match g {
                IdOrName::Id(id) if *id <= MAX_ID => Some(*id),
                IdOrName::Id(_) => None,
                IdOrName::Name(_) => None,
            })
            .collect()
    };
    let groups: Vec<u32> = numeric(&pod.apps[0])
        .into_iter()
        .filter(|g| pod.apps.iter().all(|a| numeric(a).contains(g)))
        .collect();
    for (i, a) in pod.apps.iter().enumerate() {
        let own: Vec<IdOrName> = groups.iter().map(|&g| IdOrName::Id(g)).collect();
        if a.supplementary_groups != own {
            out.warn(
                codes::KUBE_GROUPS,
                format!("{}.supplementaryGroups", app_path(i)),
                format!(
                    "app {:?} has supplementary groups other than the one list Kubernetes keeps for the whole pod ({}); kept in {APPS_ANNOTATION}",
                    a.name,
                    if groups.is_empty() {
                        "here: none".to_string()
                    } else {
                        format!("supplementalGroups: {groups:?}")
                    }
                ),
            );
            let list: Vec<Value> = a.supplementary_groups.iter().map(id_or_name).collect();
            out.app(&a.name, "supplementaryGroups", Value::Array(list));
        }
    }

    // The apps each app names in `after` as import reads them back: an init container is
    // after the init containers before it, a long-running app after every init container.
    let names = |list: &[usize]| -> Vec<String> {
        list.iter().map(|&j| pod.apps[j].name.clone()).collect()
    };
    for (i, a) in pod.apps.iter().enumerate() {
        let implied = match init.iter().position(|&j| j == i) {
            Some(k) => names(&init[..k]),
            None => names(&init),
        };
        if a.after != implied {
            let long_running: Vec<&String> = a
                .after
                .iter()
                .filter(|d| !init.iter().any(|&j| pod.apps[j].name == **d))
                .collect();
            if !long_running.is_empty() {
                out.warn(
                    codes::KUBE_AFTER,
                    format!("{}.after", app_path(i)),
                    format!(
                        "app {:?} starts after the long-running {}; Kubernetes starts containers together; kept in {APPS_ANNOTATION}",
                        a.name,
                        long_running
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            out.app(&a.name, "after", json!(a.after));
        }
    }
    let order: Vec<usize> = init
        .iter()
        .copied()
        .chain(regular.iter().copied())
        .collect();
    if order != (0..pod.apps.len()).collect::<Vec<_>>() {
        let names: Vec<&str> = pod.apps.iter().map(|a| a.name.as_str()).collect();
        out.pod.insert("appOrder".into(), json!(names));
    }

    let containers = |list: &[usize], out: &mut Out| -> Vec<core::Container> {
        list.iter().map(|&i| container(pod, i, opts, out)).collect()
    };
    let init_containers = containers(&init, out);
    let regular_containers = containers(&regular, out);

    let volumes: Vec<core::Volume> = pod
        .volumes
        .iter()
        .map(|v| core::Volume {
            name: v.name.clone(),
            host_path: match &v.kind {
                VolumeKind::Host { source } => Some(core::HostPathVolumeSource {
                    path: source.clone(),
                    type_: Some("Directory".into()),
                }),
                VolumeKind::Empty { .. } => None,
            },
            empty_dir: match v.kind {
                VolumeKind::Host { .. } => None,
                VolumeKind::Empty { .. } => Some(core::EmptyDirVolumeSource::default()),
            },
            ..Default::default()
        })
        .collect();

    let mut annotations = pod.annotations.clone();
    if !out.pod.is_empty() {
        annotations.insert(
            POD_ANNOTATION.into(),
            json_text(&Value::Object(out.pod.clone())),
        );
    }
    if !out.apps.is_empty() {
        let apps: Map<String, Value> = out
            .apps
            .iter()
            .map(|(k, v)| (k.clone(), Value::Object(v.clone())))
            .collect();
        annotations.insert(APPS_ANNOTATION.into(), json_text(&Value::Object(apps)));
    }
    let meta = ObjectMeta {
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    };
    let spec = core::PodSpec {
        host_network: (pod.network == Network::Host).then_some(true),
        restart_policy: Some(restart_policy(policy).into()),
        security_context: (!groups.is_empty()).then(|| core::PodSecurityContext {
            supplemental_groups: Some(groups.iter().map(|&g| i64::from(g)).collect()),
            ..Default::default()
        }),
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        containers: regular_containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..Default::default()
    };
    (meta, spec)
}

fn id_or_name(v: &IdOrName) -> Value {
    match v {
        IdOrName::Id(id) => json!(id),
        IdOrName::Name(n) => json!(n),
    }
}

/// Compact JSON with its keys sorted (serde_json's map is ordered by key here).
fn json_text(v: &Value) -> String {
    sorted(v).to_string()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(b.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        v => v.clone(),
    }
}

fn container(pod: &Pod, i: usize, opts: &KubeOptions, out: &mut Out) -> core::Container {
    let a = &pod.apps[i];
    let path = app_path(i);
    let image = match (opts.images.get(&a.name), &a.image) {
        (Some(r), _) => r.clone(),
        (None, Image::Reference(r)) => r.to_string(),
        (None, Image::Path(p)) => {
            out.errors.push(
                Diagnostic::new(
                    codes::KUBE_IMAGE_PATH,
                    format!(
                        "app {:?} runs the root filesystem {p:?}, a path that has no meaning on a cluster",
                        a.name
                    ),
                )
                .at(format!("{path}.image"), None)
                .help(format!(
                    "push the image to a registry and give its reference: --image {}=REGISTRY/NAME:TAG",
                    a.name
                )),
            );
            String::new()
        }
    };

    let mut sc = core::SecurityContext::default();
    if a.given.user {
        for (key, value, field) in [
            ("user", &a.user, &mut sc.run_as_user),
            ("group", &a.group, &mut sc.run_as_group),
        ] {
            match value {
                IdOrName::Id(id) if *id <= MAX_ID => *field = Some(i64::from(*id)),
                IdOrName::Id(id) => {
                    out.warn(
                        codes::KUBE_APP_EXTRA,
                        format!("{path}.{key}"),
                        format!("app {:?} runs as {key} id {id}; Kubernetes takes ids up to {MAX_ID}; kept in {APPS_ANNOTATION}", a.name),
                    );
                    out.app(&a.name, key, json!(id));
                }
                IdOrName::Name(n) => {
                    out.warn(
                        codes::KUBE_APP_EXTRA,
                        format!("{path}.{key}"),
                        format!("app {:?} runs as {key} name {n:?}; Kubernetes takes only ids; kept in {APPS_ANNOTATION}", a.name),
                    );
                    out.app(&a.name, key, json!(n));
                }
            }
        }
    }
    sc.allow_privilege_escalation = a.no_new_privileges.map(|n| !n);
    sc.read_only_root_filesystem = a.read_only_rootfs.then_some(true);
    if let Some(f) = &a.capabilities {
        let (add, drop) = capabilities(f);
        if capabilities_back(&add, &drop) != *f {
            // Import would read the same set in another order (the units list it as given).
            let (key, list) = match f {
                Filter::Retain(l) => ("retain", l),
                Filter::Remove(l) => ("remove", l),
            };
            out.app(&a.name, "capabilities", json!({ key: list }));
        }
        sc.capabilities = Some(core::Capabilities {
            add: (!add.is_empty()).then_some(add),
            drop: (!drop.is_empty()).then_some(drop),
        });
    }
    if let Some(s) = &a.seccomp {
        out.warn(
            codes::KUBE_SECCOMP,
            format!("{path}.isolators.seccomp"),
            format!(
                "app {:?} has its own system call filter; Kubernetes has no inline filter, so it runs with the runtime's default profile (RuntimeDefault); the filter is kept in {APPS_ANNOTATION}",
                a.name
            ),
        );
        let mut v = Map::new();
        match &s.filter {
            Filter::Retain(l) => v.insert("retain".into(), json!(l)),
            Filter::Remove(l) => v.insert("remove".into(), json!(l)),
        };
        if let Some(e) = &s.errno {
            v.insert("errno".into(), json!(e));
        }
        out.app(&a.name, "seccomp", Value::Object(v));
        sc.seccomp_profile = Some(core::SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        });
    }

    let extra = |key: &str, value: Value, what: String, out: &mut Out| {
        out.warn(
            codes::KUBE_APP_EXTRA,
            format!("{path}.isolators.{key}"),
            format!(
                "app {:?}: {what} has no Kubernetes field; kept in {APPS_ANNOTATION}",
                a.name
            ),
        );
        out.app(&a.name, key, value);
    };
    if let Some(t) = a.limits.tasks {
        extra("tasks", json!(t), "the tasks limit".into(), out);
    }
    if let Some(o) = a.oom_score_adj {
        extra("oomScoreAdj", json!(o), "oomScoreAdj".into(), out);
    }
    if !a.relax.is_empty() {
        extra(
            "relax",
            json!(a.relax.iter().map(|r| r.name()).collect::<Vec<_>>()),
            "relaxing podc's sandbox".into(),
            out,
        );
    }

    let resources = resources(a, i, out);

    let ports: Vec<core::ContainerPort> = a
        .ports
        .iter()
        .map(|p| core::ContainerPort {
            name: p.name.clone(),
            container_port: i32::from(p.port),
            host_port: Some(i32::from(p.host_port)),
            host_ip: p.host_ip.map(|ip| ip.to_string()),
            protocol: Some(
                match p.protocol {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                }
                .into(),
            ),
        })
        .collect();
    if a.ports.iter().any(|p| p.activation == Activation::Socket) {
        // How the port reaches the app is podc's own; Kubernetes' default is a proxy.
        let list: Vec<Value> = a
            .ports
            .iter()
            .map(|p| {
                json!(match p.activation {
                    Activation::Proxy => "proxy",
                    Activation::Socket => "socket",
                })
            })
            .collect();
        out.app(&a.name, "activation", Value::Array(list));
    }

    let sc_empty = sc == core::SecurityContext::default();
    core::Container {
        name: a.name.clone(),
        image: Some(image),
        command: (!a.exec.is_empty()).then(|| a.exec.clone()),
        env: (!a.environment.is_empty()).then(|| {
            a.environment
                .iter()
                .map(|(k, v)| core::EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                })
                .collect()
        }),
        working_dir: a
            .given
            .working_directory
            .then(|| a.working_directory.clone()),
        security_context: (!sc_empty).then_some(sc),
        resources,
        volume_mounts: (!a.mounts.is_empty()).then(|| {
            a.mounts
                .iter()
                .map(|m| core::VolumeMount {
                    name: m.volume.clone(),
                    mount_path: m.path.clone(),
                    read_only: m.read_only.then_some(true),
                    ..Default::default()
                })
                .collect()
        }),
        ports: (!ports.is_empty()).then_some(ports),
        ..Default::default()
    }
}

/// `resources.limits` from the cpu and memory limits, `resources.requests.cpu` from the
/// relative weight; what import would not read back the same goes to `podc/apps`.
fn resources(a: &App, i: usize, out: &mut Out) -> Option<core::ResourceRequirements> {
    let l: &Limits = &a.limits;
    let mut limits = BTreeMap::new();
    let mut requests = BTreeMap::new();
    if let Some(m) = l.cpu_millis {
        let (q, text) = quantity(l.written.cpu.as_ref(), millis_quantity(m));
        limits.insert("cpu".to_string(), q);
        if let Some(t) = text {
            out.app(&a.name, "cpu", json!(t));
        }
    }
    if let Some(b) = l.memory_bytes {
        let (q, text) = quantity(l.written.memory.as_ref(), b.to_string());
        limits.insert("memory".to_string(), q);
        if let Some(t) = text {
            out.app(&a.name, "memory", json!(t));
        }
    }
    if let Some(w) = l.cpu_weight {
        let millis = shares_to_millis(w.shares());
        let back = CpuWeight::Shares(millis_to_shares(millis));
        if l.cpu_millis.is_some_and(|limit| millis > limit) {
            out.warn(
                codes::KUBE_CPU_REQUEST,
                format!("{}.isolators", app_path(i)),
                format!(
                    "app {:?}: its relative CPU weight ({}m as a request) is above its cpu limit, and Kubernetes refuses a request above the limit; no request written, the weight is kept in {APPS_ANNOTATION}",
                    a.name, millis
                ),
            );
        } else {
            requests.insert("cpu".to_string(), Quantity(millis_quantity(millis)));
        }
        if back != w || l.cpu_millis.is_some_and(|limit| millis > limit) {
            match w {
                CpuWeight::Shares(s) => out.app(&a.name, "cpuShares", json!(s)),
                CpuWeight::Weight(w) => out.app(&a.name, "cpuWeight", json!(w)),
            }
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    Some(core::ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    /// A pod of apps given as `name restart after...` lines.
    fn pod(apps: &[&str]) -> Pod {
        let mut yaml = String::from("podc: 1\nname: p\napps:\n");
        for a in apps {
            let mut words = a.split(' ');
            let (name, restart) = (words.next().unwrap(), words.next().unwrap());
            let after: Vec<&str> = words.collect();
            yaml += &format!(
                "  - {{name: {name}, image: r.example/x@sha256:{}, restart: \"{restart}\", after: [{}]}}\n",
                "0".repeat(64),
                after.join(", ")
            );
        }
        let input = crate::Input {
            display: "p.yaml",
            file_name: "p.yaml",
            source: &yaml,
            format: crate::parse::Format::Yaml,
        };
        crate::check(&input, crate::resolve::Overrides::default()).unwrap()
    }

    fn init_names(apps: &[&str]) -> Vec<String> {
        let p = pod(apps);
        init_apps(&p)
            .into_iter()
            .map(|i| p.apps[i].name.clone())
            .collect()
    }

    #[test]
    fn set_up_apps_services_wait_for_are_init_containers_in_dependency_order() {
        // seed is listed first but waits for migrate.
        assert_eq!(
            init_names(&["web always migrate seed", "seed no migrate", "migrate no"]),
            names(&["migrate", "seed"])
        );
        // Nothing waits for it: a plain container.
        assert!(init_names(&["job no", "web always"]).is_empty());
        // A plain app (restart no) waits for it: both stay containers.
        assert!(init_names(&["a no", "b no a"]).is_empty());
        // It waits for a service: it cannot run before the services start.
        assert!(init_names(&["db always", "migrate no db", "web always migrate"]).is_empty());
        // It restarts: a service, not set-up work.
        assert!(init_names(&["cache on-failure", "web always cache"]).is_empty());
        // A chain of set-up work under a plain app: none of it.
        assert!(init_names(&["a no", "b no a", "c no b"]).is_empty());
    }

    #[test]
    fn an_allow_list_drops_all_and_adds_it() {
        let f = Filter::Retain(names(&["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]));
        let (add, drop) = capabilities(&f);
        assert_eq!(add, names(&["NET_BIND_SERVICE", "CHOWN"]));
        assert_eq!(drop, names(&["ALL"]));
        assert_eq!(capabilities_back(&add, &drop), f);
    }

    #[test]
    fn a_deny_list_adds_what_is_not_default_and_drops_the_rest() {
        let f = Filter::Remove(names(&["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_MKNOD"]));
        let (add, drop) = capabilities(&f);
        assert_eq!(drop, names(&["NET_RAW", "MKNOD"]));
        assert!(add.contains(&"NET_ADMIN".to_string()));
        assert!(!add.contains(&"SYS_ADMIN".to_string()));
        assert!(!add
            .iter()
            .any(|c| RUNTIME_CAPABILITIES.contains(&["CAP_", c].concat().as_str())));
        assert_eq!(
            add.len() + RUNTIME_CAPABILITIES.len() + 1,
            crate::manifest::linux::CAPABILITIES.len()
        );
        // The same set comes back, the non-default names after the default ones.
        let Filter::Remove(back) = capabilities_back(&add, &drop) else {
            panic!("a deny list")
        };
        assert_eq!(back, names(&["CAP_NET_RAW", "CAP_MKNOD", "CAP_SYS_ADMIN"]));
    }

    #[test]
    fn weights_become_requests_through_systemds_mapping() {
        assert_eq!(shares_to_millis(CpuWeight::Weight(100).shares()), 1000);
        assert_eq!(shares_to_millis(CpuWeight::Weight(1).shares()), 10);
        assert_eq!(shares_to_millis(CpuWeight::Weight(3).shares()), 29); // 30 shares
        assert_eq!(
            shares_to_millis(CpuWeight::Weight(10_000).shares()),
            100_000
        );
    }

    #[test]
    fn relax_words_are_the_manifests() {
        // Every word the manifest reads back as the same part.
        for w in [
            "tmp",
            "devices",
            "kernel-tunables",
            "kernel-modules",
            "kernel-logs",
            "control-groups",
            "clock",
            "hostname",
            "proc",
            "proc-masks",
            "namespaces",
            "realtime",
            "personality",
        ] {
            let r: crate::manifest::Relax = serde_json::from_value(json!(w)).unwrap();
            assert_eq!(r.name(), w);
        }
    }

    #[test]
    fn annotation_keys_kubernetes_takes() {
        for k in [
            "owner",
            "example.com/owner",
            "a",
            "A_b.c-9",
            "podc/pod",
            "x.y-z.io/N.1",
        ] {
            assert!(qualified_name(k), "{k}");
        }
        for k in [
            "",
            "my key",
            "-a",
            "a-",
            "Example.com/x",
            "a/b/c",
            "/x",
            "x/",
            "ü",
        ] {
            assert!(!qualified_name(k), "{k}");
        }
        assert!(qualified_name(&"a".repeat(63)));
        assert!(!qualified_name(&"a".repeat(64)));
    }

    #[test]
    fn plain_quantities_are_kept() {
        for q in ["500m", "1", "1.5", "128Mi", "1G", "0.25"] {
            assert!(plain_quantity(q), "{q}");
        }
        for q in ["+1", ".5", "1.", "1e3", "1 Gi", "", "Mi"] {
            assert!(!plain_quantity(q), "{q}");
        }
        assert_eq!(millis_quantity(2000), "2");
        assert_eq!(millis_quantity(1500), "1500m");
    }
}
