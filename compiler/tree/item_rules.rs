//! The rules of a plan's config items and secrets (`credential`, `env`, `env-all` and
//! `project` steps): where an item may be read from, and what a number counted on the host
//! goes with. A leaf of [`super::plan`].

use crate::manifest::{HostResource, ItemKind};
use crate::systemd::escape;

/// A config item or secret's name and source: a secret is always a host file, named by an
/// absolute path in normal form; a config item without one is text in the tree.
pub(super) fn item_source(kind: ItemKind, name: &str, source: Option<&str>) -> Result<(), String> {
    if !escape::is_name(name) {
        return Err(format!("{kind} {name:?} is not a name"));
    }
    match source {
        None if kind == ItemKind::Secret => Err(format!(
            "secret {name:?} has no source: a secret is never in the tree"
        )),
        Some(s) if !escape::is_normal_abs_path(s) || s == "/" => Err(format!(
            "source {s:?} is not an absolute path in normal form"
        )),
        _ => Ok(()),
    }
}

/// A `host` and `divisor` of a `credential` or `env` step (the launcher counts the resource
/// and divides it): both or neither, a divisor above 0, for a config item without a source
/// (or key).
pub(super) fn host_count(
    kind: ItemKind,
    source: Option<&str>,
    host: HostCount,
) -> Result<(), String> {
    match host {
        (None, None) => Ok(()),
        (Some(_), Some(d)) if d > 0 && kind == ItemKind::Config && source.is_none() => Ok(()),
        (Some(_), Some(_)) => Err("a host count is a config item's, with a divisor".into()),
        _ => Err("host and divisor go together".into()),
    }
}

pub(super) type HostCount = (Option<HostResource>, Option<u64>);
