//! The JSON Schema of the manifest (draft-07, as yaml-language-server reads it), generated
//! from [`crate::manifest::Manifest`]. `schemas/pod.schema.json` is this text; a test keeps
//! the two in sync.
//!
//! [`sections`] reads the same schema as the manifest's mappings and their keys: the man page
//! of the format (`podc.5`) is written from it, and a key written in the wrong mapping is told
//! where it belongs, so neither can drift from the types.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::manifest::Manifest;

pub fn schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// The schema as a JSON value, read from the text `podc schema` prints.
fn schema_value() -> Value {
    serde_json::from_str(&schema_json()).expect("the schema is JSON")
}

/// One mapping of the manifest: where it is written, what it is, and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Where: `` for the top level, `apps[]` for each app, `apps[].isolators`, and
    /// `apps[].environment.<name>` below a map's entries.
    pub path: String,
    /// What the schema says of the mapping (may be empty).
    pub description: String,
    pub keys: Vec<Key>,
}

/// One key of a mapping, as the schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub required: bool,
    /// Its doc comment, as written (lines broken where the source breaks them).
    pub description: String,
    /// What is written: `string`, `list of strings`, `integer 1..65535`, `mapping`, ...
    pub kind: String,
    /// The schema's default, as JSON, where it names one (not null, an empty list or map).
    pub default: Option<String>,
    /// The words it may be, each with what it means (`restart`: `no`, `on-failure`, `always`).
    pub values: Vec<(String, String)>,
    /// Constraints the kind does not show: a pattern, a length.
    pub rules: Vec<String>,
    /// The section of the mapping(s) written at this key, if it has keys of its own.
    pub below: Vec<String>,
}

/// A kind of value several keys share, named in [`Key::kind`] (`quantity`, `id or name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub description: String,
}

/// Every mapping of the manifest, the top level first and then in the order the keys lead to
/// them, and the named kinds of value.
pub fn sections() -> (Vec<Section>, Vec<Named>) {
    let root = schema_value();
    let mut walk = Walk {
        defs: root["definitions"].as_object().cloned().unwrap_or_default(),
        sections: Vec::new(),
        named: Vec::new(),
    };
    walk.descend(&root, "");
    (walk.sections, walk.named)
}

/// The sections (paths) other than `here` in which `key` is a key: where a key that is
/// unknown at `here` belongs.
pub fn places_of(key: &str, here: &str) -> Vec<String> {
    sections()
        .0
        .into_iter()
        .filter(|s| s.path != here && s.keys.iter().any(|k| k.name == key))
        .map(|s| s.path)
        .collect()
}

/// A section's path with a key (or `[]`, or `.<name>`) after it.
fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.starts_with('[')) {
        (_, true) => format!("{path}{key}"),
        (true, false) => key.to_string(),
        (false, false) => format!("{path}.{key}"),
    }
}

struct Walk {
    defs: Map<String, Value>,
    sections: Vec<Section>,
    named: Vec<Named>,
}

impl Walk {
    /// The definition a `$ref` names, if `node` is one.
    fn target<'a>(&'a self, node: &'a Value) -> Option<(&'a str, &'a Value)> {
        let name = node.get("$ref")?.as_str()?.strip_prefix("#/definitions/")?;
        Some((name, self.defs.get(name)?))
    }

    /// The alternatives of `anyOf`, `oneOf` or `allOf`, without `null` (which only makes a
    /// key optional).
    fn alternatives(node: &Value) -> Vec<&Value> {
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| node.get(*k)?.as_array())
            .flatten()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect()
    }

    /// Adds the section of every mapping that can be written at `path`, and of those below.
    fn descend(&mut self, node: &Value, path: &str) {
        if let Some((_, def)) = self.target(node) {
            return self.descend(&def.clone(), path);
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            if self.sections.iter().any(|s| s.path == path) {
                return;
            }
            let required: Vec<&str> = node["required"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let at = self.sections.len();
            self.sections.push(Section {
                path: path.to_string(),
                description: text(node),
                keys: Vec::new(),
            });
            for (name, prop) in props {
                let key = self.key(name, prop, required.contains(&name.as_str()), path);
                self.sections[at].keys.push(key);
                self.descend(prop, &join(path, name));
            }
            return;
        }
        for alt in Self::alternatives(node) {
            self.descend(alt, path);
        }
        if let Some(items) = node.get("items") {
            self.descend(items, &join(path, "[]"));
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            self.descend(values, &join(path, "<name>"));
        }
    }

    fn key(&mut self, name: &str, prop: &Value, required: bool, path: &str) -> Key {
        let mut probe = Walk {
            defs: self.defs.clone(),
            sections: Vec::new(),
            named: Vec::new(),
        };
        let here = join(path, name);
        probe.descend(prop, &here);
        let mut rules = Vec::new();
        self.rules(prop, &mut rules);
        Key {
            name: name.to_string(),
            required,
            description: text(prop),
            kind: self.kind(prop),
            default: prop
                .get("default")
                .filter(|d| match d {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    _ => true,
                })
                .map(Value::to_string),
            values: self.values(prop),
            rules,
            // The mappings written right at this key (as itself, each item, each entry), not
            // those further down.
            below: probe
                .sections
                .into_iter()
                .map(|s| s.path)
                .filter(|p| {
                    p.strip_prefix(&here).is_some_and(|rest| {
                        rest.replace("[]", "").replace(".<name>", "").is_empty()
                    })
                })
                .collect(),
        }
    }

    /// What is written, in words.
    fn kind(&mut self, node: &Value) -> String {
        if let Some((name, def)) = self.target(node) {
            let (name, def) = (name.to_string(), def.clone());
            let alts = Self::alternatives(&def);
            // A scalar of its own name (a quantity, an id or a name): named, and described once.
            let scalar = !alts.is_empty()
                && alts.iter().all(|a| {
                    a.get("const").is_none()
                        && self.target(a).is_none()
                        && a.get("allOf").is_none()
                        && a.get("properties").is_none()
                });
            if scalar && def.get("description").is_some() {
                let named = words(&name);
                if !self.named.iter().any(|n| n.name == named) {
                    self.named.push(Named {
                        name: named.clone(),
                        description: text(&def),
                    });
                }
                return named;
            }
            return self.kind(&def);
        }
        if node.get("properties").is_some() {
            return "mapping".into();
        }
        if let Some(c) = node.get("const") {
            return c.to_string();
        }
        let alts = Self::alternatives(node);
        if !alts.is_empty() {
            if alts.iter().all(|a| a.get("const").is_some()) {
                return "string".into();
            }
            let mut kinds: Vec<String> = Vec::new();
            for a in alts {
                let k = self.kind(a);
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            return kinds.join(" or ");
        }
        let types: Vec<&str> = match &node["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let kind = types.into_iter().find(|t| *t != "null").unwrap_or("value");
        let range = |node: &Value| match (node.get("minimum"), node.get("maximum")) {
            (Some(a), Some(b)) if a == b => format!(" {a}"),
            (Some(a), Some(b)) => format!(" {a}..{b}"),
            (Some(a), None) if a != 0 => format!(" from {a}"),
            (None, Some(b)) => format!(" up to {b}"),
            _ => String::new(),
        };
        match kind {
            "array" => {
                let items = node.get("items").map_or("value".into(), |i| self.kind(i));
                let list = if node.get("minItems").and_then(Value::as_u64) >= Some(1) {
                    "non-empty list"
                } else {
                    "list"
                };
                format!("{list} of {}", plural(&items))
            }
            "object" => match node.get("additionalProperties").filter(|v| v.is_object()) {
                Some(v) => format!("mapping of names to {}", plural(&self.kind(v))),
                None => "mapping".into(),
            },
            "integer" => format!("integer{}", range(node)),
            "number" => format!("number{}", range(node)),
            other => other.to_string(),
        }
    }

    /// The words a key may be: `enum` values, or `const` alternatives with their meaning.
    fn values(&self, node: &Value) -> Vec<(String, String)> {
        if let Some((_, def)) = self.target(node) {
            return self.values(def);
        }
        if let Some(list) = node.get("enum").and_then(Value::as_array) {
            return list
                .iter()
                .filter_map(Value::as_str)
                .map(|v| (v.to_string(), String::new()))
                .collect();
        }
        if let Some(c) = node.get("const").and_then(Value::as_str) {
            return vec![(c.to_string(), text(node))];
        }
        if node.get("properties").is_some() {
            return Vec::new();
        }
        Self::alternatives(node)
            .into_iter()
            .flat_map(|a| self.values(a))
            .collect()
    }

    /// Patterns and lengths, which the kind does not say.
    fn rules(&self, node: &Value, out: &mut Vec<String>) {
        if let Some((_, def)) = self.target(node) {
            if def.get("properties").is_none() && def.get("description").is_none() {
                self.rules(def, out);
            }
            return;
        }
        match (node.get("minLength"), node.get("maxLength")) {
            (Some(a), Some(b)) => out.push(format!("{a} to {b} characters")),
            (None, Some(b)) => out.push(format!("at most {b} characters")),
            _ => {}
        }
        if let Some(p) = node.get("pattern").and_then(Value::as_str) {
            out.push(format!("matches {p}"));
        }
        if let Some(items) = node.get("items") {
            let mut inner = Vec::new();
            self.rules(items, &mut inner);
            out.extend(inner.into_iter().map(|r| format!("each {r}")));
        }
    }
}

/// A node's description, or nothing.
fn text(node: &Value) -> String {
    node.get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// `IdOrName` as `id or name`.
fn words(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `string` as `strings`, `integer 1..9` as `integers 1..9`; anything longer as it is, after
/// a colon.
fn plural(kind: &str) -> String {
    let (head, rest) = kind.split_once(' ').unwrap_or((kind, ""));
    if kind.contains(" or ") {
        return format!("({kind})");
    }
    match head {
        "string" | "mapping" | "integer" | "number" | "boolean" | "quantity" | "word" => {
            format!("{head}s{}{rest}", if rest.is_empty() { "" } else { " " })
        }
        _ => format!("({kind})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_and_each_app_are_sections_with_their_keys() {
        let (sections, named) = sections();
        assert_eq!(sections[0].path, "");
        let top: Vec<&str> = sections[0].keys.iter().map(|k| k.name.as_str()).collect();
        assert!(top.contains(&"podc") && top.contains(&"apps"), "{top:?}");
        let app = sections.iter().find(|s| s.path == "apps[]").unwrap();
        let restart = app.keys.iter().find(|k| k.name == "restart").unwrap();
        let words: Vec<&str> = restart.values.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(words, ["no", "on-failure", "always"]);
        let apps = sections[0].keys.iter().find(|k| k.name == "apps").unwrap();
        assert!(
            apps.required && apps.kind == "non-empty list of mappings",
            "{apps:?}"
        );
        assert!(apps.below.contains(&"apps[]".to_string()), "{apps:?}");
        assert!(sections.iter().any(|s| s.path == "apps[].isolators"));
        assert!(sections
            .iter()
            .any(|s| s.path == "apps[].environment.<name>"));
        assert!(named.iter().any(|n| n.name == "quantity"), "{named:?}");
    }

    #[test]
    fn a_key_is_found_where_it_belongs() {
        assert_eq!(places_of("restart", ""), ["apps[]"]);
        assert_eq!(places_of("restart", "apps[]"), Vec::<String>::new());
        let memory = places_of("memory", "");
        assert!(memory.contains(&"isolators".to_string()), "{memory:?}");
        assert!(
            memory.contains(&"apps[].isolators".to_string()),
            "{memory:?}"
        );
    }
}
