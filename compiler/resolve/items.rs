//! Config items and secrets: their names and sources, and how apps take them (a mount of a
//! file, an environment variable, every key as variables). No rule here reads a file: a
//! config item's or secret's file or directory is the launcher's to read.

use std::collections::BTreeMap;

use super::checker::*;
use crate::diag::codes;
use crate::manifest::{self, config, quantity, EnvValue, HostResource, ItemKind, Manifest};
use crate::parse::source::{join_index, join_key};
use crate::pod::{EnvAll, EnvRef, Item, ItemRef, Pod, Source};
use crate::systemd::escape;
use crate::systemd::target::{Feature, Target};

/// The most bytes systemd passes to one unit as credentials (systemd.exec(5): "an accumulated
/// credential size limit of 1 MB per unit"); a config item's text is one of them.
pub(super) const MAX_CREDENTIAL_BYTES: usize = 1 << 20;

/// The pod's config items and secrets, and each name with its kind. Names are one namespace
/// with the volumes' (`volume_names`): on Kubernetes all three are volumes of the pod.
pub(super) fn resolve_items(
    c: &mut Checker,
    m: &Manifest,
    volume_names: &BTreeMap<String, Declared>,
) -> (Vec<Item>, BTreeMap<String, ItemKind>) {
    let mut items = Vec::new();
    let mut names = BTreeMap::new();
    let mut named = |c: &mut Checker, path: &str, kind: ItemKind, name: &str| {
        let ok = c.name(&join_key(path, "name"), kind.name(), name);
        let taken = if volume_names.contains_key(name) {
            Some("a volume".to_string())
        } else {
            names
                .get(name)
                .map(|k: &ItemKind| format!("a {}", k.noun()))
        };
        if let Some(what) = taken {
            c.value(
                codes::ITEM_NAME_TWICE,
                &join_key(path, "name"),
                format!("{kind} {} has the name of {what} of this pod", show(name)),
            )
            .help = Some("volumes, config items and secrets share one namespace".into());
        } else {
            names.insert(name.to_string(), kind);
        }
        ok
    };
    for (i, item) in m.config.iter().enumerate() {
        let path = join_index("config", i);
        let ok = named(c, &path, ItemKind::Config, &item.name);
        if let (true, Some(source)) = (ok, config_source(c, &path, item)) {
            items.push(Item {
                kind: ItemKind::Config,
                name: item.name.clone(),
                source,
            });
        }
    }
    for (i, item) in m.secrets.iter().enumerate() {
        let path = join_index("secrets", i);
        let ok = named(c, &path, ItemKind::Secret, &item.name);
        if let (true, Some(source)) = (ok, secret_source(c, &path, item)) {
            items.push(Item {
                kind: ItemKind::Secret,
                name: item.name.clone(),
                source,
            });
        }
    }
    (items, names)
}

/// A host directory whose files are an item's keys: an absolute path in normal form.
fn dir_source(c: &mut Checker, path: &str, kind: ItemKind, dir: &str) -> Option<Source> {
    let what = format!("{kind} directory");
    c.abs_path(&join_key(path, "dir"), &what, dir)
        .then(|| Source::Dir(dir.to_string()))
}

/// `dir` given with another source.
fn dir_and_more(c: &mut Checker, path: &str, kind: ItemKind, name: &str, other: &str) {
    c.key(
        codes::DIR_SOURCE,
        &join_key(path, "dir"),
        format!(
            "{kind} {} has both `{other}` and `dir`; give one",
            show(name)
        ),
    )
    .help = Some("`dir` names a directory whose files are the keys; `file` one file".into());
}

/// A secret's file or directory: exactly one of them.
fn secret_source(c: &mut Checker, path: &str, item: &manifest::SecretItem) -> Option<Source> {
    match (&item.file, &item.dir) {
        (Some(file), None) => c
            .abs_path(&join_key(path, "file"), "secret file", file)
            .then(|| Source::File(file.clone())),
        (None, Some(dir)) => dir_source(c, path, ItemKind::Secret, dir),
        (Some(_), Some(_)) => {
            dir_and_more(c, path, ItemKind::Secret, &item.name, "file");
            None
        }
        (None, None) => {
            c.key(
                codes::DIR_SOURCE,
                path,
                format!(
                    "secret {} needs `file` (a host file) or `dir` (a host directory whose files are its keys), read at launch",
                    show(&item.name)
                ),
            );
            None
        }
    }
}

/// A config item's text, file, directory or host resource: exactly one of them.
fn config_source(c: &mut Checker, path: &str, item: &manifest::ConfigItem) -> Option<Source> {
    if let Some(resource) = item.host {
        let others: Vec<&str> = [
            ("text", item.text.is_some()),
            ("file", item.file.is_some()),
            ("dir", item.dir.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(key, _)| *key)
        .collect();
        if let Some(other) = others.first() {
            c.key(
                codes::CONFIG_SOURCE,
                &join_key(path, other),
                format!(
                    "config {} has both `{other}` and `host`; give one",
                    show(&item.name)
                ),
            );
            return None;
        }
        return host_source(c, path, resource, item.divisor.as_ref());
    }
    if item.divisor.is_some() {
        c.key(
            codes::HOST_ITEM,
            &join_key(path, "divisor"),
            format!(
                "config {} has a `divisor` but no `host` resource to divide",
                show(&item.name)
            ),
        )
        .help = Some("`divisor` goes with `host: cpu|memory|ephemeral-storage`".into());
    }
    if let Some(dir) = &item.dir {
        return match (&item.text, &item.file) {
            (None, None) => dir_source(c, path, ItemKind::Config, dir),
            (Some(_), _) => {
                dir_and_more(c, path, ItemKind::Config, &item.name, "text");
                None
            }
            (None, Some(_)) => {
                dir_and_more(c, path, ItemKind::Config, &item.name, "file");
                None
            }
        };
    }
    match (&item.text, &item.file) {
        (Some(text), None) => {
            if text.len() > MAX_CREDENTIAL_BYTES {
                c.value(
                    codes::CONFIG_TOO_LARGE,
                    &join_key(path, "text"),
                    format!(
                        "config {} has {} bytes of text; systemd passes at most {MAX_CREDENTIAL_BYTES} bytes of credentials to an app",
                        show(&item.name),
                        text.len()
                    ),
                );
                return None;
            }
            Some(Source::Text(text.clone()))
        }
        (None, Some(file)) => c
            .abs_path(&join_key(path, "file"), "config file", file)
            .then(|| Source::File(file.clone())),
        (Some(_), Some(_)) => {
            c.key(
                codes::CONFIG_SOURCE,
                &join_key(path, "file"),
                format!(
                    "config {} has both `text` and `file`; give one",
                    show(&item.name)
                ),
            );
            None
        }
        (None, None) => {
            c.key(
                codes::CONFIG_SOURCE,
                path,
                format!(
                    "config {} needs `text` (written into the tree), `file` (a host file read at launch) or `dir` (a host directory whose files are its keys)",
                    show(&item.name)
                ),
            );
            None
        }
    }
}

/// A `host` config item's divisor: a positive quantity of its resource (millicores of CPU,
/// bytes of memory or storage), 1 by default.
fn host_source(
    c: &mut Checker,
    path: &str,
    resource: HostResource,
    divisor: Option<&manifest::Quantity>,
) -> Option<Source> {
    let Some(q) = divisor else {
        let one = if resource == HostResource::Cpu {
            1000
        } else {
            1
        };
        return Some(Source::Host {
            resource,
            divisor: one,
            written: None,
        });
    };
    let read = if resource == HostResource::Cpu {
        quantity::millicores(&q.text)
    } else {
        quantity::bytes(&q.text)
    };
    match read {
        Ok(divisor) if divisor > 0 => Some(Source::Host {
            resource,
            divisor,
            written: Some(q.text.trim().to_string()),
        }),
        Ok(_) => {
            c.value(
                codes::QUANTITY,
                &join_key(path, "divisor"),
                "a divisor of 0 divides nothing",
            );
            None
        }
        Err(e) => {
            c.value(
                codes::QUANTITY,
                &join_key(path, "divisor"),
                format!("divisor {} {e}", show(&q.text)),
            );
            None
        }
    }
}

/// What a mount names: `Some(None)` a volume, `Some(Some(item))` a config item or secret,
/// `None` when it names not exactly one known thing (reported here).
pub(super) fn mount_item(
    c: &mut Checker,
    path: &str,
    m: &manifest::Mount,
    items: &BTreeMap<String, ItemKind>,
) -> Option<Option<ItemRef>> {
    let named: Vec<(ItemKind, &String)> = [
        (ItemKind::Config, m.config.as_ref()),
        (ItemKind::Secret, m.secret.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, n)| n.map(|n| (k, n)))
    .collect();
    match (&m.volume, named.as_slice()) {
        (Some(_), []) => Some(None),
        (None, [(kind, name)]) => {
            let r = known_item(c, &join_key(path, kind.name()), *kind, name, items)?;
            if m.read_only == Some(false) {
                c.value(
                    codes::ITEM_WRITABLE,
                    &join_key(path, "readOnly"),
                    format!(
                        "{kind} {} is always mounted read-only; `readOnly: false` cannot be",
                        show(name)
                    ),
                );
            }
            Some(Some(r))
        }
        _ => {
            c.key(
                codes::MOUNT_SOURCE,
                path,
                "a mount names exactly one of `volume`, `config` and `secret`",
            );
            None
        }
    }
}

/// An item the app names, if the pod has it.
fn known_item(
    c: &mut Checker,
    path: &str,
    kind: ItemKind,
    name: &str,
    items: &BTreeMap<String, ItemKind>,
) -> Option<ItemRef> {
    if items.get(name) == Some(&kind) {
        return Some(ItemRef {
            kind,
            name: name.to_string(),
        });
    }
    let known: Vec<&str> = items
        .iter()
        .filter(|(_, k)| **k == kind)
        .map(|(n, _)| n.as_str())
        .collect();
    let plural = match kind {
        ItemKind::Config => "config items",
        ItemKind::Secret => "secrets",
    };
    let list = match kind {
        ItemKind::Config => "config",
        ItemKind::Secret => "secrets",
    };
    let help = match items.get(name) {
        Some(other) => format!(
            "{} is a {} of this pod, not a {}",
            show(name),
            other.noun(),
            kind.noun()
        ),
        None if known.is_empty() => format!(
            "this pod has no {plural}; declare it under `{list}:` (a Kubernetes object's in its podc/pod annotation)"
        ),
        None => known_help(name, &known, plural),
    };
    c.value(
        codes::UNKNOWN_ITEM,
        path,
        format!("no {kind} named {} in this pod", show(name)),
    )
    .help = Some(help);
    None
}

/// The app's environment: the values written in the manifest, and the variables taken from
/// config items and secrets at launch.
pub(super) fn resolve_env(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    items: &BTreeMap<String, ItemKind>,
) -> (BTreeMap<String, String>, BTreeMap<String, EnvRef>) {
    let mut text = BTreeMap::new();
    let mut from = BTreeMap::new();
    for (k, v) in &a.environment {
        let p = join_key(&join_key(path, "environment"), k);
        match v {
            EnvValue::Text(t) => {
                text.insert(k.clone(), t.clone());
            }
            EnvValue::From(f) => {
                let item = match (&f.config, &f.secret) {
                    (Some(n), None) => {
                        known_item(c, &join_key(&p, "config"), ItemKind::Config, n, items)
                    }
                    (None, Some(n)) => {
                        known_item(c, &join_key(&p, "secret"), ItemKind::Secret, n, items)
                    }
                    _ => {
                        c.value(
                            codes::ENV_FROM_SOURCE,
                            &p,
                            format!(
                                "`{k}` takes its value from exactly one of `config` and `secret`"
                            ),
                        );
                        None
                    }
                };
                let key_ok = f.key.as_deref().is_none_or(|key| {
                    let ok = escape::is_env_name(key);
                    if !ok {
                        c.value(
                            codes::ENV_KEY,
                            &join_key(&p, "key"),
                            format!("key {} is not a variable name", show(key)),
                        )
                        .help = Some(
                            "a key names a `KEY=VALUE` line of the file: ^[A-Za-z_][A-Za-z0-9_]*$"
                                .into(),
                        );
                    }
                    ok
                });
                if let (Some(item), true) = (item, key_ok) {
                    from.insert(
                        k.clone(),
                        EnvRef {
                            item,
                            key: f.key.clone(),
                        },
                    );
                }
            }
        }
    }
    (text, from)
}

/// The app's `environmentFrom`: each entry names one known item, with a prefix that can start
/// a variable name.
pub(super) fn resolve_env_all(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    items: &BTreeMap<String, ItemKind>,
) -> Vec<EnvAll> {
    let mut all = Vec::new();
    for (i, e) in a.environment_from.iter().enumerate() {
        let p = join_index(&join_key(path, "environmentFrom"), i);
        let item = match (&e.config, &e.secret) {
            (Some(n), None) => known_item(c, &join_key(&p, "config"), ItemKind::Config, n, items),
            (None, Some(n)) => known_item(c, &join_key(&p, "secret"), ItemKind::Secret, n, items),
            (both, _) => {
                let what = if both.is_some() { "both" } else { "neither" };
                c.value(
                    codes::ENV_ALL_SOURCE,
                    &p,
                    format!("an `environmentFrom` entry takes the keys of one `config` item or `secret`; this one names {what}"),
                );
                None
            }
        };
        let prefix = e.prefix.clone().unwrap_or_default();
        let prefix_ok = e.prefix.is_none() || escape::is_env_name(&prefix);
        if !prefix_ok {
            c.value(
                codes::ENV_PREFIX,
                &join_key(&p, "prefix"),
                format!("prefix {} cannot start a variable name", show(&prefix)),
            )
            .help = Some(
                "a prefix matches ^[A-Za-z_][A-Za-z0-9_]*$; for none, leave `prefix` out".into(),
            );
        }
        if let (Some(item), true) = (item, prefix_ok) {
            all.push(EnvAll { item, prefix });
        }
    }
    all
}

/// What each kind of item can be taken as: a `dir` item only with `environmentFrom` (systemd
/// credentials are single files: `LoadCredential=` of a directory, on every systemd podc
/// targets, loads each file as a credential of its own, `ID_FILE`, not a directory; and it has
/// no single value); a config item's text taken as variables is checked here, being known.
pub(super) fn check_item_uses(c: &mut Checker, m: &Manifest, items: &[Item]) {
    let source = |kind: ItemKind, name: &str| {
        items
            .iter()
            .find(|i| i.kind == kind && i.name == name)
            .map(|i| &i.source)
    };
    for (i, a) in m.apps.iter().enumerate() {
        let app = join_index("apps", i);
        for (j, mount) in a.mounts.iter().enumerate() {
            for (kind, name) in [
                (ItemKind::Config, &mount.config),
                (ItemKind::Secret, &mount.secret),
            ] {
                let Some(name) = name else { continue };
                if let Some(Source::Dir(dir)) = source(kind, name) {
                    c.value(
                        codes::DIR_MOUNTED,
                        &join_key(&join_index(&join_key(&app, "mounts"), j), kind.name()),
                        format!(
                            "{kind} {} is a directory, which cannot be mounted: systemd passes an app its config and secrets as single files",
                            show(name)
                        ),
                    )
                    .help = Some(format!(
                        "take its keys as variables (`environmentFrom: [{{{kind}: {name}}}]`), or mount {dir} as a `host` volume with `readOnly: true` (the files then need the app user's permissions)"
                    ));
                }
            }
        }
        for (var, v) in &a.environment {
            let EnvValue::From(f) = v else { continue };
            for (kind, name) in [(ItemKind::Config, &f.config), (ItemKind::Secret, &f.secret)] {
                let Some(name) = name else { continue };
                let p = join_key(&join_key(&app, "environment"), var);
                match source(kind, name) {
                    Some(Source::Dir(dir)) => {
                        c.value(
                            codes::DIR_VARIABLE,
                            &join_key(&p, kind.name()),
                            format!(
                                "{kind} {} is a directory of keys, not one value for `{var}`",
                                show(name)
                            ),
                        )
                        .help = Some(format!(
                            "take every key with `environmentFrom: [{{{kind}: {name}}}]`, or declare the one file {dir}/<key> as a {} with `file`",
                            kind.noun()
                        ));
                    }
                    Some(Source::Text(text)) => {
                        let value = match &f.key {
                            Some(k) => config::env_lines(text)
                                .filter(|(_, key, _)| key == k)
                                .last()
                                .map(|(n, _, v)| (n, v)),
                            None => Some((1, text.strip_suffix('\n').unwrap_or(text))),
                        };
                        if let Some((line, value)) = value {
                            text_value(c, &p, name, line, var, value);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (j, e) in a.environment_from.iter().enumerate() {
            let Some(Source::Text(text)) =
                e.config.as_ref().and_then(|n| source(ItemKind::Config, n))
            else {
                continue;
            };
            let p = join_index(&join_key(&app, "environmentFrom"), j);
            let prefix = e.prefix.as_deref().unwrap_or("");
            for (line, key, value) in config::env_lines(text) {
                let var = format!("{prefix}{key}");
                if escape::is_env_name(&var) {
                    let name = e.config.as_deref().unwrap_or_default();
                    text_value(c, &p, name, line, &var, value);
                }
            }
        }
    }
}

/// A `host` config item is one number: taken whole as a variable or a file, never by `key`
/// or `environmentFrom`, which read `KEY=VALUE` lines.
pub(super) fn check_host_uses(c: &mut Checker, m: &Manifest, items: &[Item]) {
    let host = |name: &Option<String>| {
        name.as_ref().is_some_and(|n| {
            items.iter().any(|i| {
                i.kind == ItemKind::Config
                    && &i.name == n
                    && matches!(i.source, Source::Host { .. })
            })
        })
    };
    for (i, a) in m.apps.iter().enumerate() {
        let app = join_index("apps", i);
        for (var, v) in &a.environment {
            let EnvValue::From(f) = v else { continue };
            if f.key.is_some() && host(&f.config) {
                let p = join_key(&join_key(&join_key(&app, "environment"), var), "key");
                c.key(
                    codes::HOST_ITEM,
                    &p,
                    format!(
                        "config {} is one number, counted on the host: it has no `key` lines",
                        show(f.config.as_deref().unwrap_or_default())
                    ),
                )
                .help = Some("leave `key` out: the variable is the number".into());
            }
        }
        for (j, e) in a.environment_from.iter().enumerate() {
            if host(&e.config) {
                let p = join_key(&join_index(&join_key(&app, "environmentFrom"), j), "config");
                c.value(
                    codes::HOST_ITEM,
                    &p,
                    format!("config {} is one number, counted on the host: it has no keys to take as variables", show(e.config.as_deref().unwrap_or_default())),
                )
                .help = Some("take it as one variable: `environment: {NAME: {config: ITEM}}`".into());
            }
        }
    }
}

/// A variable's value from a config item's text, which an environment file must carry.
fn text_value(c: &mut Checker, path: &str, name: &str, line: usize, var: &str, value: &str) {
    let problem = escape::env_file_problem(value)
        .map(str::to_string)
        .or_else(|| {
            (var.len() + 1 + value.len() >= escape::MAX_ARG_STRLEN).then(|| {
                format!(
                    "{} bytes; the kernel passes at most {} bytes per environment entry",
                    value.len(),
                    escape::MAX_ARG_STRLEN - 1
                )
            })
        });
    if let Some(problem) = problem {
        c.value(
            codes::ENV_TEXT_VALUE,
            path,
            format!(
                "the value for `{var}` (line {line} of config {}) holds {problem}",
                show(name)
            ),
        );
    }
}

/// Each config item or secret mounted as a file needs the target's credentials.
pub(super) fn check_files_target(c: &mut Checker, path: &str, a: &manifest::App, t: Target) {
    for (i, m) in a.mounts.iter().enumerate() {
        for (kind, name) in [(ItemKind::Config, &m.config), (ItemKind::Secret, &m.secret)] {
            if name.is_some() {
                let p = join_key(&join_index(&join_key(path, "mounts"), i), kind.name());
                let why = format!("a {} as a file", kind.noun());
                if !require(c, &p, t, Feature::CredentialFile, &why) {
                    return;
                }
            }
        }
    }
}

/// A config item or secret no app takes is most likely a mistake (a misspelt reference is an
/// error of its own).
pub(super) fn unused_items(c: &mut Checker, m: &Manifest, pod: &Pod) {
    let projected = |kind: ItemKind, name: &str| {
        pod.volumes.iter().any(|v| match &v.kind {
            crate::pod::VolumeKind::Projected { sources, .. } => sources
                .iter()
                .any(|s| s.item.kind == kind && s.item.name == name),
            _ => false,
        })
    };
    let used = |kind: ItemKind, name: &str| {
        projected(kind, name)
            || pod.apps.iter().any(|a| {
                a.files
                    .iter()
                    .map(|f| &f.item)
                    .chain(a.env_from.values().map(|e| &e.item))
                    .chain(a.environment_from.iter().map(|e| &e.item))
                    .any(|r| r.kind == kind && r.name == name)
            })
    };
    let dirs: Vec<(ItemKind, &str)> = pod
        .items
        .iter()
        .filter(|i| matches!(i.source, Source::Dir(_)))
        .map(|i| (i.kind, i.name.as_str()))
        .collect();
    let names = m
        .config
        .iter()
        .enumerate()
        .map(|(i, x)| (join_index("config", i), ItemKind::Config, &x.name))
        .chain(
            m.secrets
                .iter()
                .enumerate()
                .map(|(i, x)| (join_index("secrets", i), ItemKind::Secret, &x.name)),
        );
    for (path, kind, name) in names {
        if !used(kind, name) {
            c.value(
                codes::ITEM_UNUSED,
                &join_key(&path, "name"),
                format!("{kind} {} is taken by no app", show(name)),
            )
            .help = Some(if dirs.contains(&(kind, name.as_str())) {
                format!(
                    "an app takes its keys as variables (`environmentFrom: [{{{kind}: {name}}}]`)"
                )
            } else {
                format!(
                    "an app takes it as a file (`mounts: [{{{kind}: {name}, path: ...}}]`) or a variable (`environment: {{NAME: {{{kind}: {name}}}}}`)"
                )
            });
        }
    }
}
