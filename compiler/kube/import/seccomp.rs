//! `seccompProfile`: Unconfined, RuntimeDefault, or `{type: Localhost, localhostProfile: P}`,
//! the seccomp profile P below the kubelet's seccomp root (an OCI/Docker seccomp JSON
//! profile). podc reads P when it builds, from its own seccomp directory (`--seccomp-dir`,
//! through the function the command line gives: the compiler itself touches no file), and
//! writes it as podc's isolators, so that the unit shows the system calls: the filter
//! (`seccomp`, an exact allow list or a deny list), the calls the kernel logs (`syscallLog`)
//! and the ABIs (`syscallArchitectures`).
//!
//! What systemd cannot carry is refused, naming the part of the profile: conditions on
//! arguments or capabilities, the actions TRACE, NOTIFY, TRAP, KILL and KILL_THREAD, a denying
//! rule whose errno differs from the default's or the other denying rules', flags other than
//! TSYNC, `archMap` and other hosts' architectures, names that are no x86-64 system call.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::convert::{problem, Convert};
use super::doc::{SeccompProfile, SeccompType};
use super::stream::SeccompDir;
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::manifest::linux;
use crate::parse::source::join_key;

/// The seccomp filter podc gives for Kubernetes' `RuntimeDefault` profile.
const RUNTIME_DEFAULT: &str = "@system-service";

/// Why a profile is refused: the message and, where it helps, what to do.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The profile could not be read at all (P0025), rather than not carried (P0026).
    pub(super) unreadable: bool,
    pub(super) message: String,
    pub(super) help: Option<String>,
}

fn refuse(message: String, help: Option<&str>) -> Refusal {
    Refusal {
        unreadable: false,
        message,
        help: help.map(str::to_string),
    }
}

/// A profile as runc and containerd read it (the Docker format: `names` or one `name` a rule).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<Value>>,
    syscalls: Option<Vec<Rule>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rule {
    names: Option<Vec<String>>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Value>>,
    includes: Option<Map<String, Value>>,
    excludes: Option<Map<String, Value>>,
    /// Read and left alone.
    #[serde(rename = "comment")]
    _comment: Option<Value>,
}

/// What a rule or the default does with a call, as systemd can do it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Allow,
    /// Allowed, and logged by the kernel.
    Log,
    /// Refused with this errno (a name), or the process killed (`None`).
    Deny(Option<&'static str>),
}

impl Action {
    fn shown(&self) -> String {
        match self {
            Action::Allow => "SCMP_ACT_ALLOW".into(),
            Action::Log => "SCMP_ACT_LOG".into(),
            Action::Deny(Some(e)) => format!("SCMP_ACT_ERRNO ({e})"),
            Action::Deny(None) => "SCMP_ACT_KILL_PROCESS".into(),
        }
    }
}

/// The isolators a profile is: each a value of the manifest's `isolators`.
#[derive(Debug, Default)]
pub(super) struct Isolators {
    pub(super) seccomp: Option<Value>,
    pub(super) syscall_log: Option<Value>,
    pub(super) syscall_architectures: Option<Value>,
}

impl Convert<'_> {
    /// `seccompProfile` (at `here`) as the isolators under `iso` (`apps[0].isolators`).
    pub(super) fn seccomp_profile(
        &mut self,
        here: &str,
        iso: &str,
        profile: SeccompProfile,
        isolators: &mut Map<String, Value>,
    ) -> Result<(), Diagnostic> {
        let file_at = join_key(here, "localhostProfile");
        if profile.kind != SeccompType::Localhost && profile.localhost_profile.is_some() {
            return Err(problem(
                self.doc,
                &file_at,
                "`localhostProfile` is only for `type: Localhost`",
            )
            .help("Kubernetes refuses it with any other type"));
        }
        match profile.kind {
            SeccompType::Unconfined => {}
            // A pod by `podc kube` gives the exact filter in `podc/apps` (checked after the
            // merge); otherwise the runtime's default profile is systemd's set for
            // services, which denies what containerd's default denies (and returns EPERM,
            // as it does).
            SeccompType::RuntimeDefault if self.legacy => {
                self.rename(join_key(iso, "seccomp"), here);
                isolators.insert("seccomp".into(), json!("RuntimeDefault"));
            }
            SeccompType::RuntimeDefault => {
                self.rename(join_key(iso, "seccomp"), here);
                isolators.insert(
                    "seccomp".into(),
                    json!({"retain": [RUNTIME_DEFAULT], "errno": "EPERM"}),
                );
            }
            SeccompType::Localhost => {
                let Some(file) = profile.localhost_profile else {
                    return Err(problem(
                        self.doc,
                        &join_key(here, "type"),
                        "`type: Localhost` without `localhostProfile`",
                    )
                    .help("name the profile's path below the seccomp directory, as Kubernetes requires"));
                };
                let parts = localhost(self.objects.seccomp.as_ref(), &file).map_err(|r| {
                    let code = if r.unreadable {
                        codes::KUBE_SECCOMP_PROFILE
                    } else {
                        codes::KUBE_SECCOMP_RULE
                    };
                    let mut d = Diagnostic::new(code, r.message)
                        .at(file_at.clone(), self.doc.key(&file_at));
                    d.help = r.help;
                    d
                })?;
                for (key, value) in [
                    ("seccomp", parts.seccomp),
                    ("syscallLog", parts.syscall_log),
                    ("syscallArchitectures", parts.syscall_architectures),
                ] {
                    if let Some(v) = value {
                        self.rename(join_key(iso, key), &file_at);
                        isolators.insert(key.into(), v);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads the profile `file` (a `localhostProfile`) from the seccomp directory of `dir` and
/// translates it.
pub(super) fn localhost(dir: Option<&SeccompDir>, file: &str) -> Result<Isolators, Refusal> {
    let unreadable = |message: String, help: String| Refusal {
        unreadable: true,
        message,
        help: Some(help),
    };
    let Some(dir) = dir else {
        return Err(unreadable(
            format!("a `Localhost` seccomp profile ({file}), but podc was given no directory of profiles"),
            "give the directory that holds it (the kubelet's seccomp root) with --seccomp-dir DIR".into(),
        ));
    };
    // As the API server checks it: a path below the seccomp root.
    let relative = Path::new(file);
    let below = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || !below {
        return Err(unreadable(
            format!("`localhostProfile` {file:?} is not a path below the seccomp directory"),
            "Kubernetes takes a relative path without `..`, such as `profiles/audit.json`".into(),
        ));
    }
    // Cleaned, as the kubelet's filepath.Join cleans it (`./a//b` is `a/b`).
    let path = relative.components().fold(dir.dir.clone(), |p, c| match c {
        Component::Normal(n) => p.join(n),
        _ => p,
    });
    let shown = path.display().to_string();
    let text = (dir.read)(&path).map_err(|e| {
        unreadable(
            format!("cannot read the seccomp profile {shown}: {e}"),
            format!(
                "podc reads `Localhost` profiles from {} when it builds (as the kubelet does from its seccomp root); put the profile there, or give its directory with --seccomp-dir DIR",
                dir.dir.display()
            ),
        )
    })?;
    let profile: Profile = serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let at = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&at).unwrap_or(&message);
        Refusal {
            unreadable: true,
            message: format!(
                "the seccomp profile {shown}:{}:{}: {message}",
                e.line(),
                e.column()
            ),
            help: Some("a profile is the JSON that runc reads: `defaultAction`, `defaultErrnoRet`, `architectures`, `syscalls` (`names`, `action`, `errnoRet`), `flags`".into()),
        }
    })?;
    translate(&profile, &shown)
}

/// The profile read from `shown`, as isolators.
fn translate(p: &Profile, shown: &str) -> Result<Isolators, Refusal> {
    unsupported_parts(p, shown)?;
    let default = action(
        &p.default_action,
        p.default_errno_ret,
        shown,
        "`defaultAction`",
    )?;
    let calls = calls(p, &default, shown)?;
    let named = |keep: &dyn Fn(&Action) -> bool| -> Vec<String> {
        calls
            .iter()
            .filter(|c| keep(&c.action))
            .map(|c| c.name.clone())
            .collect()
    };
    // systemd gives every call a filter denies one errno (or kills): the default's, in an
    // allow list; in a deny list, its first rule's.
    let denying: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c.action, Action::Deny(_)))
        .collect();
    let deny = match &default {
        Action::Deny(_) => Some((&default, "the default action")),
        _ => denying.first().map(|c| (&c.action, c.rule.as_str())),
    };
    if let Some(((deny, by), other)) = deny.and_then(|(d, by)| {
        denying
            .iter()
            .find(|c| c.action != *d)
            .map(|other| ((d, by), other))
    }) {
        return Err(refuse(
            format!(
                "{} of the seccomp profile {shown} denies {} with {}, where {by} denies with {}: systemd gives every call it denies one errno (or kills)",
                other.rule,
                other.name,
                other.action.shown(),
                deny.shown()
            ),
            Some("give every denying rule one action and errnoRet (the default's, when it denies)"),
        ));
    }
    let mut seccomp = Map::new();
    match (&default, deny) {
        // An exact allow list: what a rule allows (logged or not).
        (Action::Deny(errno), _) => {
            seccomp.insert(
                "retain".into(),
                json!(named(&|a| matches!(a, Action::Allow | Action::Log))),
            );
            seccomp.insert("exact".into(), json!(true));
            if let Some(e) = errno {
                seccomp.insert("errno".into(), json!(e));
            }
        }
        (_, Some((Action::Deny(errno), _))) => {
            seccomp.insert(
                "remove".into(),
                json!(named(&|a| matches!(a, Action::Deny(_)))),
            );
            if let Some(e) = errno {
                seccomp.insert("errno".into(), json!(e));
            }
        }
        _ => {}
    }
    let syscall_log = if default == Action::Log {
        // Every call but those a rule allows (a denied one is not logged either). An empty
        // deny list is no logging at all to systemd: every call it knows, then.
        let quiet = named(&|a| *a != Action::Log);
        if quiet.is_empty() {
            Some(json!({"retain": ["@known"]}))
        } else {
            Some(json!({ "remove": quiet }))
        }
    } else {
        let logged = named(&|a| *a == Action::Log);
        (!logged.is_empty()).then(|| json!({ "retain": logged }))
    };
    Ok(Isolators {
        seccomp: (!seccomp.is_empty()).then_some(Value::Object(seccomp)),
        syscall_log,
        syscall_architectures: architectures(p, shown)?,
    })
}

/// The parts of a profile that systemd has nothing for, whatever their rules.
fn unsupported_parts(p: &Profile, shown: &str) -> Result<(), Refusal> {
    if p.listener_path.as_deref().is_some_and(|l| !l.is_empty())
        || p.listener_metadata
            .as_deref()
            .is_some_and(|l| !l.is_empty())
    {
        return Err(refuse(
            format!("the seccomp profile {shown} hands calls to a listener (`listenerPath`): systemd has no seccomp agent"),
            None,
        ));
    }
    if p.arch_map.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(refuse(
            format!("the seccomp profile {shown} gives `archMap`, which podc does not read"),
            Some("list the x86 ABIs the filter applies to in `architectures`"),
        ));
    }
    for flag in p.flags.iter().flatten() {
        // systemd loads the filter in the service's process before it runs the program, with
        // one thread: every thread has it, as TSYNC makes sure.
        if flag != "SECCOMP_FILTER_FLAG_TSYNC" {
            return Err(refuse(
                format!(
                    "the seccomp profile {shown} sets the flag {flag}, which systemd does not set"
                ),
                Some("SECCOMP_FILTER_FLAG_TSYNC is the one flag podc takes"),
            ));
        }
    }
    Ok(())
}

/// An action (of the default, or of a rule) as systemd can do it.
fn action(name: &str, errno: Option<u32>, shown: &str, what: &str) -> Result<Action, Refusal> {
    if errno.is_some() && name != "SCMP_ACT_ERRNO" {
        return Err(refuse(
            format!("{what} of the seccomp profile {shown} gives an errno to {name}, which returns none"),
            None,
        ));
    }
    let cannot = |why: &str| {
        Err(refuse(
            format!("{what} of the seccomp profile {shown} is {name}: {why}"),
            None,
        ))
    };
    match name {
        "SCMP_ACT_ALLOW" => Ok(Action::Allow),
        "SCMP_ACT_LOG" => Ok(Action::Log),
        "SCMP_ACT_KILL_PROCESS" => Ok(Action::Deny(None)),
        "SCMP_ACT_ERRNO" => match errno.map_or(Some("EPERM"), linux::errno_name) {
            Some(e) => Ok(Action::Deny(Some(e))),
            None => Err(refuse(
                format!(
                    "{what} of the seccomp profile {shown} returns errno {}, which systemd cannot name",
                    errno.unwrap_or_default()
                ),
                Some("give an errno of Linux other than 0, such as 1 (EPERM) or 38 (ENOSYS)"),
            )),
        },
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => cannot("it kills the calling thread, where systemd kills the whole process (SCMP_ACT_KILL_PROCESS)"),
        "SCMP_ACT_TRAP" => cannot("systemd cannot send SIGSYS for the program to handle"),
        "SCMP_ACT_TRACE" => cannot("systemd has no tracer to hand the call to"),
        "SCMP_ACT_NOTIFY" => cannot("systemd has no seccomp agent to notify"),
        _ => cannot("not an action runc knows"),
    }
}

/// A call a rule names, with the rule's action and the rule (for messages).
struct Call {
    name: String,
    action: Action,
    rule: String,
}

/// Each call the rules name, in the profile's order, with its action; a rule whose action is
/// the default's changes nothing (runc skips it).
fn calls(p: &Profile, default: &Action, shown: &str) -> Result<Vec<Call>, Refusal> {
    let mut calls: Vec<Call> = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, r) in p.syscalls.iter().flatten().enumerate() {
        let names: Vec<&String> = r.names.iter().flatten().chain(&r.name).collect();
        let rule = match names.as_slice() {
            [] => format!("rule syscalls[{i}]"),
            [one] => format!("rule syscalls[{i}] ({one})"),
            [one, rest @ ..] => format!("rule syscalls[{i}] ({one} and {} more)", rest.len()),
        };
        let problem = |what: &str, help: Option<&str>| {
            Err(refuse(
                format!("{rule} of the seccomp profile {shown} {what}"),
                help,
            ))
        };
        if names.is_empty() || (r.name.is_some() && r.names.is_some()) {
            return problem("needs `names` (or one `name`)", None);
        }
        if r.args.as_ref().is_some_and(|a| !a.is_empty()) {
            return problem(
                "has conditions on arguments (`args`): systemd filters system calls by name only",
                Some("allow or deny the whole call"),
            );
        }
        if [&r.includes, &r.excludes]
            .iter()
            .any(|m| m.as_ref().is_some_and(|m| !m.is_empty()))
        {
            return problem(
                "applies only with some capabilities, architectures or kernels (`includes`, `excludes`), which podc does not read",
                None,
            );
        }
        let act = action(&r.action, r.errno_ret, shown, &rule)?;
        for n in names {
            if linux::SYSCALLS.binary_search(&n.as_str()).is_err() {
                return problem(
                    &format!("names {n:?}, which is no system call of the x86-64 target"),
                    Some("podc knows the x86-64, i386 and x32 calls up to Linux 6.15; runtimes skip a name their seccomp library does not know, so leave it out"),
                );
            }
            if act == *default {
                continue;
            }
            match seen.get(n.as_str()) {
                Some(&earlier) => {
                    let earlier: &Call = &calls[earlier];
                    if earlier.action != act {
                        return problem(
                            &format!(
                                "gives {n} the action {}, {} {}",
                                act.shown(),
                                earlier.rule,
                                earlier.action.shown()
                            ),
                            Some("runc refuses such a profile too: give each call one action"),
                        );
                    }
                }
                None => {
                    seen.insert(n.as_str(), calls.len());
                    calls.push(Call {
                        name: n.clone(),
                        action: act.clone(),
                        rule: rule.clone(),
                    });
                }
            }
        }
    }
    Ok(calls)
}

/// `architectures` as the ABIs the app may use: none for every x86 ABI (what systemd filters
/// without `SystemCallArchitectures=`); the native one always, as libseccomp adds it.
fn architectures(p: &Profile, shown: &str) -> Result<Option<Value>, Refusal> {
    let mut abis = vec!["x86-64"];
    for a in p.architectures.iter().flatten() {
        let abi = match a.as_str() {
            "SCMP_ARCH_X86_64" => "x86-64",
            "SCMP_ARCH_X86" => "x86",
            "SCMP_ARCH_X32" => "x32",
            _ => {
                return Err(refuse(
                    format!("the seccomp profile {shown} lists the architecture {a}: podc's pods run on x86-64, whose ABIs are SCMP_ARCH_X86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32"),
                    Some("list only the x86 ABIs in `architectures`"),
                ));
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }
    Ok((abis.len() < 3).then(|| {
        let order = ["x86-64", "x86", "x32"];
        json!(order
            .iter()
            .filter(|a| abis.contains(a))
            .collect::<Vec<_>>())
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn isolators(profile: Value) -> Result<Isolators, Refusal> {
        let p: Profile = serde_json::from_value(profile).expect("a profile");
        translate(&p, "p.json")
    }

    fn values(i: Isolators) -> Value {
        json!({"seccomp": i.seccomp, "syscallLog": i.syscall_log, "syscallArchitectures": i.syscall_architectures})
    }

    const X86: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

    #[test]
    fn each_action_becomes_the_isolators_systemd_carries() {
        let cases = [
            // ERRNO default: an exact allow list, EPERM unless defaultErrnoRet; a logged call
            // is allowed and logged; a rule with the default's action changes nothing.
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": X86, "syscalls": [
                    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"name": "openat", "action": "SCMP_ACT_LOG"},
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
                json!({"seccomp": {"retain": ["read", "write", "openat"], "exact": true, "errno": "EPERM"},
                       "syscallLog": {"retain": ["openat"]}, "syscallArchitectures": null}),
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
                json!({"seccomp": {"retain": [], "exact": true, "errno": "ENOSYS"},
                       "syscallLog": null, "syscallArchitectures": ["x86-64"]}),
            ),
            (
                json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86"],
                       "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}),
                json!({"seccomp": {"retain": ["exit_group"], "exact": true},
                       "syscallLog": null, "syscallArchitectures": ["x86-64", "x86"]}),
            ),
            // ALLOW default: a deny list with its rules' one errno, or killing.
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": X86, "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [], "includes": {}},
                    {"names": ["ptrace"], "action": "SCMP_ACT_LOG", "comment": "watched"}]}),
                json!({"seccomp": {"remove": ["mkdir", "mkdirat", "rmdir"], "errno": "EACCES"},
                       "syscallLog": {"retain": ["ptrace"]}, "syscallArchitectures": null}),
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": X86, "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
                       "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
                json!({"seccomp": {"remove": ["reboot"]}, "syscallLog": null, "syscallArchitectures": null}),
            ),
            // LOG default: every call logged (every call systemd knows), but those allowed.
            (
                json!({"defaultAction": "SCMP_ACT_LOG"}),
                json!({"seccomp": null, "syscallLog": {"retain": ["@known"]}, "syscallArchitectures": ["x86-64"]}),
            ),
            (
                json!({"defaultAction": "SCMP_ACT_LOG", "architectures": X86, "syscalls": [
                    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}),
                json!({"seccomp": {"remove": ["reboot"], "errno": "EPERM"},
                       "syscallLog": {"remove": ["read", "write", "reboot"]}, "syscallArchitectures": null}),
            ),
        ];
        for (profile, want) in cases {
            let got = isolators(profile.clone()).unwrap_or_else(|r| panic!("{profile}: {r:?}"));
            assert_eq!(values(got), want, "{profile}");
        }
    }

    #[test]
    fn what_systemd_cannot_carry_is_refused_naming_the_part() {
        let allow = |rule: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]});
        let cases = [
            (allow(json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]})),
                "rule syscalls[0] (personality) of the seccomp profile p.json has conditions on arguments"),
            (allow(json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}})),
                "rule syscalls[0] (clone) of the seccomp profile p.json applies only with some capabilities"),
            (allow(json!({"names": ["ptrace", "kill"], "action": "SCMP_ACT_TRACE"})),
                "rule syscalls[0] (ptrace and 1 more) of the seccomp profile p.json is SCMP_ACT_TRACE: systemd has no tracer"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_NOTIFY"})), "is SCMP_ACT_NOTIFY"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_TRAP"})), "is SCMP_ACT_TRAP"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_KILL"})), "is SCMP_ACT_KILL: it kills the calling thread"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_KILL_THREAD"})), "is SCMP_ACT_KILL_THREAD"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_DENY"})), "not an action runc knows"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1})), "gives an errno to SCMP_ACT_ALLOW"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0})), "returns errno 0"),
            (allow(json!({"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 41})), "returns errno 41, which systemd cannot name"),
            (allow(json!({"names": ["mount", "wrte"], "action": "SCMP_ACT_ERRNO"})), "names \"wrte\", which is no system call"),
            (allow(json!({"names": ["@mount"], "action": "SCMP_ACT_ERRNO"})), "names \"@mount\""),
            (allow(json!({"action": "SCMP_ACT_ERRNO"})), "rule syscalls[0] of the seccomp profile p.json needs `names`"),
            (allow(json!({"name": "mount", "names": ["umount2"], "action": "SCMP_ACT_ERRNO"})), "needs `names` (or one `name`)"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["umount2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
                "rule syscalls[1] (umount2) of the seccomp profile p.json denies umount2 with SCMP_ACT_ERRNO (ENOSYS), where rule syscalls[0] (mount) denies with SCMP_ACT_ERRNO (EPERM)"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["umount2"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
                "denies umount2 with SCMP_ACT_KILL_PROCESS"),
            (json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
                "denies clone3 with SCMP_ACT_ERRNO (ENOSYS), where the default action denies with SCMP_ACT_ERRNO (EPERM)"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["mount"], "action": "SCMP_ACT_LOG"}]}),
                "rule syscalls[1] (mount) of the seccomp profile p.json gives mount the action SCMP_ACT_LOG, rule syscalls[0] (mount) SCMP_ACT_ERRNO (EPERM)"),
            (json!({"defaultAction": "SCMP_ACT_TRACE"}), "`defaultAction` of the seccomp profile p.json is SCMP_ACT_TRACE"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}), "`defaultAction` of the seccomp profile p.json gives an errno to SCMP_ACT_ALLOW"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}), "lists the architecture SCMP_ARCH_AARCH64"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}), "gives `archMap`"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}), "sets the flag SECCOMP_FILTER_FLAG_LOG"),
            (json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}), "hands calls to a listener"),
        ];
        for (profile, want) in cases {
            let r = isolators(profile.clone()).expect_err(&profile.to_string());
            assert!(!r.unreadable, "{profile}");
            assert!(
                r.message.contains(want),
                "{profile}:\n{}\nwants: {want}",
                r.message
            );
        }
    }

    fn dir() -> SeccompDir {
        SeccompDir {
            dir: "/etc/podc/seccomp".into(),
            read: |p| match p.to_str() {
                Some("/etc/podc/seccomp/profiles/ok.json") => {
                    Ok(r#"{"defaultAction": "SCMP_ACT_LOG"}"#.into())
                }
                Some("/etc/podc/seccomp/bad.json") => {
                    Ok("{\n  \"defaultAction\": \"SCMP_ACT_LOG\",\n  \"syscall\": []\n}".into())
                }
                Some("/etc/podc/seccomp/cut.json") => Ok("{\n  \"defaultAction\": ".into()),
                _ => Err(std::io::ErrorKind::NotFound.into()),
            },
        }
    }

    #[test]
    fn a_profile_is_read_from_the_seccomp_directory_or_refused_with_where_podc_looked() {
        let d = dir();
        assert!(localhost(Some(&d), "profiles/ok.json").is_ok());
        assert!(localhost(Some(&d), "./profiles//ok.json").is_ok());
        let refused = |file: &str, dir: Option<&SeccompDir>| {
            let r = localhost(dir, file).expect_err(file);
            assert!(r.unreadable, "{file}");
            format!("{} ({})", r.message, r.help.unwrap_or_default())
        };
        let missing = refused("profiles/gone.json", Some(&d));
        assert!(
            missing.starts_with(
                "cannot read the seccomp profile /etc/podc/seccomp/profiles/gone.json: "
            ),
            "{missing}"
        );
        assert!(missing.contains("--seccomp-dir"), "{missing}");
        let unknown = refused("bad.json", Some(&d));
        assert!(
            unknown.starts_with(
                "the seccomp profile /etc/podc/seccomp/bad.json:3:11: unknown field `syscall`"
            ),
            "{unknown}"
        );
        let cut = refused("cut.json", Some(&d));
        assert!(
            cut.starts_with("the seccomp profile /etc/podc/seccomp/cut.json:2:"),
            "{cut}"
        );
        for outside in [
            "../etc/passwd",
            "/etc/podc/seccomp/profiles/ok.json",
            "profiles/../ok.json",
            "",
        ] {
            assert!(
                refused(outside, Some(&d)).contains("is not a path below the seccomp directory"),
                "{outside}"
            );
        }
        assert!(refused("profiles/ok.json", None).contains("no directory of profiles"));
    }
}
