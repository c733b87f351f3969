//! The container's security context: the user and group, privilege escalation, a read-only
//! root, the capabilities against the runtime's default set, the system call filter.

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Map, Value};

use super::common::{app_path, Out, MAX_ID};
use crate::diag::codes;
use crate::kube::{APPS_ANNOTATION, RUNTIME_CAPABILITIES};
use crate::manifest::IdOrName;
use crate::pod::{App, Filter};

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

/// The security context of app `i` (empty where the app sets nothing Kubernetes has).
pub(super) fn security_context(a: &App, i: usize, out: &mut Out) -> core::SecurityContext {
    let path = app_path(i);
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
        if s.exact {
            v.insert("exact".into(), json!(true));
        }
        out.app(&a.name, "seccomp", Value::Object(v));
        sc.seccomp_profile = Some(core::SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        });
    }
    sc
}
