//! Configuration and secrets as written: the pod's named `config` items and `secrets`, and how
//! an app takes one (a file at a path, through [`super::Mount`], an environment variable,
//! through [`EnvValue`], or every key as variables, through [`EnvFromItem`]).
//!
//! Like the rest of the manifest these types decide nothing. A secret is only ever named here
//! by the host file that holds it: no secret value is part of a manifest, and so none can
//! reach the tree, the units, POD.md or a Kubernetes object.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Whether an item is configuration (not secret: it may be written into the tree) or a secret
/// (read from its host file at launch only).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Config,
    Secret,
}

impl ItemKind {
    /// The word a manifest and a mount plan use (`config`, `secret`).
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Config => "config",
            ItemKind::Secret => "secret",
        }
    }
}

impl ItemKind {
    /// The noun for one item in messages (`config item`, `secret`).
    pub fn noun(self) -> &'static str {
        match self {
            ItemKind::Config => "config item",
            ItemKind::Secret => "secret",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What of the host a `host` config item counts when the pod launches: what Kubernetes gives
/// a container whose limit of that resource is unset (the node's allocatable).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum HostResource {
    /// The host's online CPUs, in cores.
    Cpu,
    /// The host's memory (`MemTotal`), in bytes.
    Memory,
    /// The size of the file system of the pod's installed tree, in bytes.
    EphemeralStorage,
}

impl HostResource {
    /// The word a manifest and a mount plan use.
    pub fn name(self) -> &'static str {
        match self {
            HostResource::Cpu => "cpu",
            HostResource::Memory => "memory",
            HostResource::EphemeralStorage => "ephemeral-storage",
        }
    }
}

/// A named piece of configuration: inline text, a file of the host, a directory of the host
/// whose files are its keys, or a number the launcher counts on the host.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigItem {
    /// Name (same rule as volume names), unique among the pod's volumes, config and secrets.
    #[schemars(
        regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// The configuration itself, written into the built tree. Not with `file` or `dir`.
    pub text: Option<String>,
    /// An absolute path of a file on the host, read when the pod is launched (the build never
    /// reads it). Not with `text` or `dir`.
    pub file: Option<String>,
    /// An absolute path of a directory on the host whose regular files are the item's keys
    /// (file name = key, content = value), read when the pod is launched; apps take it with
    /// `environmentFrom` only. Not with `text` or `file`.
    pub dir: Option<String>,
    /// A number `podc launch` counts on the host when the pod starts, as Kubernetes gives a
    /// container whose limit of this resource is unset (`resourceFieldRef`): `cpu` the host's
    /// online CPUs, `memory` its memory in bytes (`MemTotal`), `ephemeral-storage` the size of
    /// the file system of the pod's tree in bytes. Written as decimal digits, without a line
    /// break. Not with `text`, `file` or `dir`.
    pub host: Option<HostResource>,
    /// With `host`: the number is the resource divided by this quantity of it, rounded up
    /// (Kubernetes' `divisor`: `1m` gives millicores, `1Mi` mebibytes). Default 1.
    pub divisor: Option<super::quantity::Quantity>,
}

/// A named secret: a file on the host, or a directory of the host whose files are its keys,
/// read only when the pod is launched.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretItem {
    /// Name (same rule as volume names), unique among the pod's volumes, config and secrets.
    #[schemars(
        regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// An absolute path of a file on the host, readable by root. `podc build` never reads it;
    /// `podc launch` does, and refuses to start the pod when it cannot. Not with `dir`.
    pub file: Option<String>,
    /// An absolute path of a directory on the host, readable by root, whose regular files are
    /// the secret's keys (file name = key, content = value), as Kubernetes mounts a Secret.
    /// Read by `podc launch` only; apps take it with `environmentFrom` only. Not with `file`.
    pub dir: Option<String>,
}

/// Every key of a config item or secret as environment variables, read at launch (Kubernetes'
/// `envFrom`): each file of a `dir` item, or each `KEY=VALUE` line of a `file` or `text` item,
/// whose name with the prefix is a variable name (others are skipped, by name in the
/// launcher's log). Variables of `environment` win; a later entry wins over an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvFromItem {
    /// A config item of the pod. Not with `secret`.
    pub config: Option<String>,
    /// A secret of the pod. Not with `config`.
    pub secret: Option<String>,
    /// Put before each key to make the variable's name (`DB_` + `password` = `DB_password`).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub prefix: Option<String>,
}

/// An environment variable's value: a string, or taken from a config item or secret at launch.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    Text(String),
    From(EnvFrom),
}

/// The value of an environment variable from a config item or a secret, read at launch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvFrom {
    /// A config item of the pod. Not with `secret`.
    pub config: Option<String>,
    /// A secret of the pod. Not with `config`.
    pub secret: Option<String>,
    /// The `KEY=VALUE` line of the file whose value to take (a variable name). Without it the
    /// whole file is the value, without one final line break.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub key: Option<String>,
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or {config: NAME} or {secret: NAME} with an optional key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvValue, A::Error> {
                EnvFrom::deserialize(de::value::MapAccessDeserializer::new(map)).map(EnvValue::From)
            }
        }
        d.deserialize_any(V)
    }
}

/// The `KEY=VALUE` lines of an item's text, as `key` and `environmentFrom` read a `file` or
/// `text` item (the format of `kubectl create secret generic --from-env-file`): lines split
/// at `\n`, each with its 1-based number, KEY with the blanks around it removed, VALUE
/// everything after the first `=`, verbatim. Lines without `=` (sections, blank lines) and
/// comments (`#` first, after blanks) are not lines of a key. One rule for `resolve` (a config
/// item's text) and the launcher (a host file).
pub fn env_lines(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.split('\n').enumerate().filter_map(|(i, line)| {
        let (k, v) = line.split_once('=')?;
        let k = k.trim_matches([' ', '\t']);
        (!k.starts_with('#')).then_some((i + 1, k, v))
    })
}
