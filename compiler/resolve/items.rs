//! Config items and secrets: their names and sources, and how apps take them (a mount of a
//! file, an environment variable). No rule here reads a file: a config item's or secret's
//! file is the launcher's to read.

use std::collections::BTreeMap;

use super::checker::*;
use crate::diag::codes;
use crate::manifest::{self, EnvValue, ItemKind, Manifest};
use crate::parse::source::{join_index, join_key};
use crate::pod::{EnvRef, Item, ItemRef, Pod, Source};
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
    volume_names: &BTreeMap<String, bool>,
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
        let file_ok = c.abs_path(&join_key(&path, "file"), "secret file", &item.file);
        if ok && file_ok {
            items.push(Item {
                kind: ItemKind::Secret,
                name: item.name.clone(),
                source: Source::File(item.file.clone()),
            });
        }
    }
    (items, names)
}

/// A config item's text or file: exactly one of them.
fn config_source(c: &mut Checker, path: &str, item: &manifest::ConfigItem) -> Option<Source> {
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
                    "config {} needs `text` (written into the tree) or `file` (a host file read at launch)",
                    show(&item.name)
                ),
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
    let used = |kind: ItemKind, name: &str| {
        pod.apps.iter().any(|a| {
            a.files
                .iter()
                .map(|f| &f.item)
                .chain(a.env_from.values().map(|e| &e.item))
                .any(|r| r.kind == kind && r.name == name)
        })
    };
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
            .help = Some(format!(
                "an app takes it as a file (`mounts: [{{{kind}: {name}, path: ...}}]`) or a variable (`environment: {{NAME: {{{kind}: {name}}}}}`)"
            ));
        }
    }
}
