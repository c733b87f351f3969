//! What lowering makes: directives (with their comments) and the units of a pod's tree, as
//! plain data the templates lay out.

use std::borrow::Cow;

use serde::Serialize;

use crate::tree::plan::MountPlan;

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
pub(super) fn lines<S: serde::Serializer>(list: &[Directive], s: S) -> Result<S::Ok, S::Error> {
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

pub(super) fn d(key: &'static str, value: impl Into<Cow<'static, str>>) -> Directive {
    Directive {
        key,
        value: value.into(),
        comment: None,
    }
}

/// `d` with a comment line above it.
pub(super) fn commented(
    key: &'static str,
    value: impl Into<Cow<'static, str>>,
    comment: String,
) -> Directive {
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
    /// The timer and service that probe each running app that has a health probe.
    pub health: Vec<HealthUnits>,
    #[serde(skip)]
    pub plan: MountPlan,
    /// The text of each config item given inline, by its file in the tree (relative to the
    /// pod directory): written as it is, without a header.
    #[serde(skip)]
    pub config_texts: std::collections::BTreeMap<String, String>,
}

/// The health units of app `app`: `ready` (its first passing probe), and `<name>.timer` and
/// `<name>.service` (its periodic probe).
#[derive(Debug, Clone, Serialize)]
pub struct HealthUnits {
    pub name: String,
    pub app: String,
    pub ready: String,
    pub ready_description: String,
    #[serde(serialize_with = "lines")]
    pub ready_service: Vec<Directive>,
    pub description: String,
    #[serde(serialize_with = "lines")]
    pub unit: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub timer: Vec<Directive>,
    #[serde(serialize_with = "lines")]
    pub service: Vec<Directive>,
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
