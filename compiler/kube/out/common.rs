//! What every part of `podc kube` shares: the collected errors, warnings and annotations
//! ([`Out`]), and the words for restarts, ids and app paths.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::manifest::{IdOrName, Restart};

#[derive(Default)]
pub(super) struct Out {
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
    /// `podc/pod`.
    pub(super) pod: Map<String, Value>,
    /// `podc/apps`: app name → its settings.
    pub(super) apps: BTreeMap<String, Map<String, Value>>,
}

impl Out {
    pub(super) fn warn(&mut self, code: &'static codes::Code, path: String, message: String) {
        self.warnings
            .push(Diagnostic::new(code, message).at(path, None));
    }

    pub(super) fn app(&mut self, app: &str, key: &str, value: Value) {
        self.apps
            .entry(app.to_string())
            .or_default()
            .insert(key.to_string(), value);
    }
}

/// The largest user or group id Kubernetes accepts (its API checks ids as int32).
pub(super) const MAX_ID: u32 = i32::MAX as u32;

pub(super) fn app_path(i: usize) -> String {
    format!("apps[{i}]")
}

pub(super) fn restart_rank(r: Restart) -> u8 {
    match r {
        Restart::No => 0,
        Restart::OnFailure => 1,
        Restart::Always => 2,
    }
}

pub(super) fn restart_policy(r: Restart) -> &'static str {
    match r {
        Restart::No => "Never",
        Restart::OnFailure => "OnFailure",
        Restart::Always => "Always",
    }
}

pub(super) fn restart_word(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::OnFailure => "on-failure",
        Restart::Always => "always",
    }
}

pub(super) fn id_or_name(v: &IdOrName) -> Value {
    match v {
        IdOrName::Id(id) => json!(id),
        IdOrName::Name(n) => json!(n),
    }
}

/// Compact JSON with its keys sorted (serde_json's map is ordered by key here).
pub(super) fn json_text(v: &Value) -> String {
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
