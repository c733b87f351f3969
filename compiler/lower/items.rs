//! Config items and secrets in the output: the directives of an app that takes them (systemd
//! credentials for files, an environment file for variables and every key of an item), the
//! mount plan's steps that tell the launcher where each is read from, and the tree's files of
//! inline config text.
//!
//! Architecture invariant: nothing here knows a secret's value; the unit files and the plan
//! name secrets and their host files only.

use std::collections::BTreeMap;

use super::units::*;
use crate::manifest::{HostResource, ItemKind};
use crate::pod::{App, Item, ItemRef, Pod, Source};
use crate::systemd::escape;
use crate::tree::layout::{config_text_file, credential_id, env_file};
use crate::tree::plan::Step;

/// The app's directives for its config items and secrets: `LoadCredential=` and
/// `BindReadOnlyPaths=` for each file (after its root's), and `EnvironmentFile=` for the
/// variables (after its environment).
pub(super) fn item_directives(
    a: &App,
    root: &mut Vec<Directive>,
    environment: &mut Vec<Directive>,
) {
    let mut loaded: Vec<&ItemRef> = Vec::new();
    for f in &a.files {
        if !loaded.contains(&&f.item) {
            loaded.push(&f.item);
            let id = credential_id(f.item.kind.name(), &f.item.name);
            root.push(commented(
                "LoadCredential",
                escape::verbatim(&[&f.item.name, ":", &id].concat()),
                format!(
                    "{} {}: passed into the pod by podc launch, readable by the app's user only",
                    f.item.kind, f.item.name
                ),
            ));
        }
    }
    for f in &a.files {
        root.push(d(
            "BindReadOnlyPaths",
            escape::credential_bind(&f.item.name, &f.path),
        ));
    }
    if !a.env_from.is_empty() || !a.environment_from.is_empty() {
        environment.push(commented(
            "EnvironmentFile",
            escape::verbatim(&env_file(&a.name)),
            format!(
                "{}: written by podc launch to a tmpfs, never to disk",
                env_file_origin(a)
            ),
        ));
    }
}

/// Where the variables of an app's environment file come from, by name: `DB TOKEN from
/// config and secrets; the keys of secret db (as DB_<key>), then of config app-env`.
fn env_file_origin(a: &App) -> String {
    let mut parts = Vec::new();
    if !a.env_from.is_empty() {
        let names: Vec<&str> = a.env_from.keys().map(String::as_str).collect();
        parts.push(format!("{} from config and secrets", names.join(" ")));
    }
    if !a.environment_from.is_empty() {
        let items: Vec<String> = a
            .environment_from
            .iter()
            .map(|e| match e.prefix.as_str() {
                "" => format!("{} {}", e.item.kind, e.item.name),
                p => format!("{} {} (as {p}<key>)", e.item.kind, e.item.name),
            })
            .collect();
        let own = if a.environment.is_empty() && a.env_from.is_empty() {
            ""
        } else {
            ", the app's own variables winning"
        };
        parts.push(format!("the keys of {}{own}", items.join(", then ")));
    }
    parts.join("; ")
}

/// Where the launcher reads an item: its host file, or nothing for text in the tree or a
/// number it counts on the host.
fn source(item: Option<&Item>) -> Option<String> {
    match item.map(|i| &i.source) {
        // A directory only ever reaches an `env-all` step (resolve refuses it elsewhere).
        Some(Source::File(f) | Source::Dir(f)) => Some(f.clone()),
        Some(Source::Text(_) | Source::Host { .. }) | None => None,
    }
}

/// What the launcher counts on the host for a `host` item, and by what it divides.
fn host_count(item: Option<&Item>) -> (Option<HostResource>, Option<u64>) {
    match item.map(|i| &i.source) {
        Some(Source::Host {
            resource, divisor, ..
        }) => (Some(*resource), Some(*divisor)),
        _ => (None, None),
    }
}

/// The plan's steps: a credential for each item some app takes as a file (with those apps),
/// then each app's variables from items, then each of its `environmentFrom` in order.
pub(super) fn item_steps(pod: &Pod) -> Vec<Step> {
    let mut steps = Vec::new();
    for item in &pod.items {
        let apps: Vec<String> = pod
            .apps
            .iter()
            .filter(|a| {
                a.files
                    .iter()
                    .any(|f| f.item.kind == item.kind && f.item.name == item.name)
            })
            .map(|a| a.name.clone())
            .collect();
        if !apps.is_empty() {
            let (host, divisor) = host_count(Some(item));
            steps.push(Step::Credential {
                kind: item.kind,
                name: item.name.clone(),
                source: source(Some(item)),
                host,
                divisor,
                apps,
            });
        }
    }
    for a in &pod.apps {
        for (variable, e) in &a.env_from {
            let (host, divisor) = host_count(pod.item(&e.item));
            steps.push(Step::Env {
                app: a.name.clone(),
                variable: variable.clone(),
                kind: e.item.kind,
                name: e.item.name.clone(),
                source: source(pod.item(&e.item)),
                host,
                divisor,
                key: e.key.clone(),
            });
        }
        if a.environment_from.is_empty() {
            continue;
        }
        let given: std::collections::BTreeSet<&String> =
            a.environment.keys().chain(a.env_from.keys()).collect();
        for e in &a.environment_from {
            let item = pod.item(&e.item);
            let dir = matches!(item.map(|i| &i.source), Some(Source::Dir(_)));
            let from = source(item);
            steps.push(Step::EnvAll {
                app: a.name.clone(),
                kind: e.item.kind,
                name: e.item.name.clone(),
                source: from.clone().filter(|_| !dir),
                dir: from.filter(|_| dir),
                prefix: e.prefix.clone(),
                given: given.iter().map(|g| g.to_string()).collect(),
            });
        }
    }
    steps
}

/// The tree's files of inline config text: path relative to the pod directory → text.
pub(super) fn config_texts(pod: &Pod) -> BTreeMap<String, String> {
    pod.items
        .iter()
        .filter_map(|i| match (&i.kind, &i.source) {
            (ItemKind::Config, Source::Text(t)) => Some((config_text_file(&i.name), t.clone())),
            _ => None,
        })
        .collect()
}
