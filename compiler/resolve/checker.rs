//! The checker every rule reports through: diagnostics with codes, located by document
//! path, and the helpers for names, paths and "did you mean".

use crate::diag::codes::{self, Code};
use crate::diag::{nearest, Diagnostic};
use crate::manifest::linux;
use crate::manifest::{CgroupVersion, IdOrName};
use crate::parse::source::{join_key, SourceMap};
use crate::pod::Filter;
use crate::systemd::escape;
use crate::systemd::target::{self, Feature, Target};

/// Target settings from the command line; they win over the manifest's `target`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub cgroup: Option<CgroupVersion>,
    pub systemd: Option<u32>,
}

/// Collects diagnostics, pointing each at its document path.
pub(super) struct Checker<'a> {
    pub(super) map: &'a SourceMap,
    pub(super) errors: Vec<Diagnostic>,
    /// The command line's target flags, so that a problem they cause names them.
    pub(super) flags: Overrides,
}

impl Checker<'_> {
    /// A problem with the value at `path`.
    pub(super) fn value(
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
    pub(super) fn key(
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
    pub(super) fn flag(
        &mut self,
        code: &'static Code,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(code, message));
        self.errors.last_mut().unwrap()
    }

    /// `systemd N`, and `(--systemd N)` after it when the flag chose the version.
    pub(super) fn systemd(&self, t: Target) -> String {
        match self.flags.systemd {
            Some(v) => format!("systemd {v} (--systemd {v})"),
            None => format!("systemd {}", t.systemd),
        }
    }

    pub(super) fn name(&mut self, path: &str, what: &str, name: &str) -> bool {
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
    pub(super) fn abs_path(&mut self, path: &str, what: &str, value: &str) -> bool {
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
pub(super) fn known_help(name: &str, known: &[&str], what: &str) -> String {
    match nearest(name, known) {
        Some(near) => format!("did you mean `{near}`?"),
        None if known.is_empty() => format!("this pod has no {what}"),
        None => format!("this pod's {what}: {}", known.join(", ")),
    }
}

/// The help for an unknown capability: the nearest name (a missing `CAP_` prefix and
/// lowercase count as near), else how capabilities are named.
pub(super) fn capability_help(name: &str) -> String {
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
pub(super) fn show(s: &str) -> String {
    format!("{s:?}").replace('`', "'")
}

/// Exactly one of `retain` and `remove`, non-empty.
/// `retain` or `remove`. An empty `retain` is allowed where it means something (`empty_retain`:
/// an empty capability bounding set); an empty `remove` never changes anything.
pub(super) fn one_of(
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
pub(super) fn check_id(c: &mut Checker, path: &str, what: &str, id: &IdOrName) {
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

/// Reports a feature the target lacks, at `path`.
pub(super) fn require(
    c: &mut Checker,
    path: &str,
    target: Target,
    feature: Feature,
    why: &str,
) -> bool {
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

pub(super) fn filter_parts(f: &Filter) -> (&'static str, &Vec<String>) {
    match f {
        Filter::Retain(v) => ("retain", v),
        Filter::Remove(v) => ("remove", v),
    }
}

/// What the apps' mounts need to know of a volume the manifest declares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Declared {
    pub(super) read_only: bool,
    /// A host volume whose path is a file or socket: it has no `subPath`.
    pub(super) file: bool,
}
