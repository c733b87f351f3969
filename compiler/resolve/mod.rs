//! Resolve: a [`Manifest`] and its [`SourceMap`] to a [`Pod`], or every problem found.
//!
//! This is where the rules of the format live. Each check reports through [`Checker`], which
//! turns a document path into a source span, and resolution goes on after a problem so that
//! one run shows them all, in document order. Defaults are applied here and nowhere else.

mod apps;
mod checker;
mod health;
mod isolators;
mod items;
mod order;
mod ports;
mod requests;
mod security;
mod systemd_target;
mod volumes;
mod warnings;
mod words;

use std::collections::{BTreeMap, BTreeSet};

pub use checker::Overrides;

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::limits;
use crate::manifest::{self, Manifest};
use crate::parse::source::{join_index, join_key};
use crate::parse::Parsed;
use crate::pod::{Limits, Pod};
use crate::systemd::escape;
use crate::systemd::target::Target;
use crate::tree::layout::MAX_POD_NAME;

use apps::*;
use checker::*;
use isolators::*;
use items::*;
use order::*;
use ports::*;
use systemd_target::*;
use volumes::*;
use warnings::*;

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
    // The reading's own warnings (a Kubernetes field ignored) are already located.
    diagnostics.extend(parsed.warnings.iter().cloned());
    // Diagnostics caused by a flag have no span and come first, like the flag on the line.
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (ok.then_some(pod), diagnostics)
}

fn resolve_pod(c: &mut Checker, m: &Manifest, manifest_file: &str, overrides: Overrides) -> Pod {
    check_pod_name(c, m);
    let target = resolve_target(c, m, overrides);

    let limits = pod_limits(c, m, target);
    let (volumes, volume_names) = resolve_volumes(c, m);
    let (items, item_names) = resolve_items(c, m, &volume_names);
    for (key, count) in [
        ("apps", m.apps.len()),
        ("volumes", m.volumes.len()),
        ("config", m.config.len()),
        ("secrets", m.secrets.len()),
    ] {
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
                items: Vec::new(),
                apps: Vec::new(),
                annotations: BTreeMap::new(),
                labels: BTreeMap::new(),
                namespace: None,
                network: manifest::Network::Host,
                egress: manifest::Egress::None,
                networks: Vec::new(),
                allow_host: Vec::new(),
                start: manifest::Start::Boot,
                user_namespace: manifest::UserNamespace::Private,
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
        apps.push(resolve_app(
            c,
            &path,
            a,
            &volume_names,
            (&items, &item_names),
            target,
        ));
    }
    check_item_uses(c, m, &items);
    check_host_uses(c, m, &items);
    check_projected(c, m, &items);
    check_after(c, &m.apps);
    check_init(c, &m.apps, target);
    let network = m.network.unwrap_or(manifest::Network::Host);
    let start = m.start.unwrap_or(manifest::Start::Boot);
    let own_users = m.user_namespace != Some(manifest::UserNamespace::Host);
    check_ports(c, &m.apps, &apps, network, start, own_users);
    let egress = m.egress.unwrap_or(manifest::Egress::None);
    if m.egress.is_some() && network == manifest::Network::Host {
        c.value(
            codes::EGRESS_ON_HOST_NETWORK,
            "egress",
            "`egress` is a private network's way out; a pod on the host's network already uses \
             the host's (give the pod `network: private`, or remove `egress`)",
        );
    }
    let networks = check_networks(c, m, network);
    let allow_host = ports::check_allow_host(c, m, egress, &networks);

    check_annotations(c, m);
    check_labels(c, m);

    Pod {
        name: m.name.clone(),
        manifest_file: manifest_file.to_string(),
        target,
        limits,
        volumes,
        items,
        apps,
        annotations: m.annotations.clone(),
        labels: m.labels.clone(),
        namespace: m.namespace.clone(),
        network,
        egress,
        networks,
        allow_host,
        start,
        user_namespace: m.user_namespace.unwrap_or(manifest::UserNamespace::Private),
    }
}

/// The host networks a private pod joins: valid names, each once.
fn check_networks(c: &mut Checker, m: &Manifest, network: manifest::Network) -> Vec<String> {
    if !m.networks.is_empty() && network == manifest::Network::Host {
        c.value(
            codes::NETWORKS_ON_HOST_NETWORK,
            "networks",
            "`networks` are joined by a private pod's own network; a pod on the host's network \
             is already on the host's (give the pod `network: private`, or remove `networks`)",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, n) in m.networks.iter().enumerate() {
        let name = &n.0;
        if !crate::tree::layout::is_network_name(name) {
            c.value(
                codes::NETWORK_NAME,
                &join_index("networks", i),
                format!(
                    "network name {} is not 1 to 10 lowercase letters, digits and inner dashes \
                     (its bridge `podc-<name>` is an interface name, at most 15 bytes)",
                    show(name)
                ),
            );
        } else if !seen.insert(name.clone()) {
            c.value(
                codes::NETWORK_NAME,
                &join_index("networks", i),
                format!("network {} is named twice", show(name)),
            );
        }
    }
    m.networks.iter().map(|n| n.0.clone()).collect()
}

/// The format version and the pod's name.
fn check_pod_name(c: &mut Checker, m: &Manifest) {
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
}

/// The pod's own limits (cpu, weight, memory, tasks), held to the rules of an app's.
fn pod_limits(c: &mut Checker, m: &Manifest, target: Target) -> Limits {
    m.isolators
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
        .unwrap_or_default()
}

/// Labels and the namespace as Kubernetes takes them: `podc kube` writes them back.
fn check_labels(c: &mut Checker, m: &Manifest) {
    use crate::manifest::kube_names;
    for (key, value) in &m.labels {
        if !kube_names::qualified_name(key) {
            c.key(
                codes::LABEL_KUBERNETES,
                &join_key("labels", key),
                format!("Kubernetes does not take the label key {}", show(key)),
            )
            .help = Some("a key is a name of up to 63 letters, digits, `-`, `_` and `.` (beginning and ending with a letter or digit), optionally after a lowercase DNS prefix and `/`, such as `app.kubernetes.io/name`".into());
        } else if !kube_names::label_value(value) {
            c.value(
                codes::LABEL_KUBERNETES,
                &join_key("labels", key),
                format!("Kubernetes does not take the label value {}", show(value)),
            )
            .help = Some("a value is empty or up to 63 letters, digits, `-`, `_` and `.`, beginning and ending with a letter or digit".into());
        }
    }
    if let Some(ns) = &m.namespace {
        if !kube_names::is_dns_label(ns) {
            c.value(
                codes::LABEL_KUBERNETES,
                "namespace",
                format!("namespace {} is not a DNS label (lowercase letters, digits and `-`, at most 63)", show(ns)),
            );
        }
    }
}

/// Annotation keys: non-empty, without control characters.
fn check_annotations(c: &mut Checker, m: &Manifest) {
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
}
