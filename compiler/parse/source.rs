//! Source maps: where each node of a manifest sits in its file.
//!
//! The typed [`crate::manifest::Manifest`] says nothing about positions, so that it stays a plain
//! mirror of the document for both YAML and TOML. Instead, each format is read a second time into
//! a [`SourceMap`] from document paths (`apps[1].isolators.memory`, the same spelling
//! serde_path_to_error uses) to byte spans. Resolution then points at source by path alone.
//! Building a map never fails: a document the map cannot follow simply has fewer entries, and
//! diagnostics fall back to the nearest ancestor that has one.
//!
//! The second reading costs about as much as the first, and only a diagnostic needs it: a
//! [`SourceMap::lazy`] map keeps the text and reads it on the first look-up, so a manifest
//! without problems is read once.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The text a manifest is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// The format a manifest's file name says it is in.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Spans of one node: its key (for map entries) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    /// The text and format to read on first use, for a lazy map.
    pending: Option<(String, Format)>,
    built: OnceCell<HashMap<String, Entry>>,
    /// For a manifest read from another document (a Kubernetes Pod): pairs of a manifest path
    /// prefix and the document path it came from. Empty for podc's own manifests.
    renames: Vec<(String, String)>,
    /// Document paths of single values that hold manifest parts as text (the JSON of an
    /// annotation): a manifest path renamed into one stops there.
    opaque: Vec<String>,
    /// Where the text read starts in the whole file (a document of several): every span is
    /// shifted by it, so that it points into the file.
    offset: usize,
}

/// `parent.key`, or `key` at the root.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        [parent, ".", key].concat()
    }
}

/// `parent[index]`.
pub fn join_index(parent: &str, index: usize) -> String {
    [parent, "[", &index.to_string(), "]"].concat()
}

/// The parent of a document path, or `None` at the root.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

impl SourceMap {
    /// The span of the value at `path`, or of its nearest ancestor that has one.
    pub fn value(&self, path: &str) -> Option<Range<usize>> {
        self.find(path).map(|e| self.shift(e.value.clone()))
    }

    fn shift(&self, r: Range<usize>) -> Range<usize> {
        r.start + self.offset..r.end + self.offset
    }

    /// The text of `span` in the source this map reads (when it was made with it: [`lazy`]).
    ///
    /// [`lazy`]: SourceMap::lazy
    pub fn text(&self, span: Range<usize>) -> Option<&str> {
        let span = span.start.checked_sub(self.offset)?..span.end.checked_sub(self.offset)?;
        self.pending.as_ref().and_then(|(s, _)| s.get(span))
    }

    /// The span of the key at `path` (for map entries), else of the value.
    pub fn key(&self, path: &str) -> Option<Range<usize>> {
        self.find(path)
            .map(|e| self.shift(e.key.clone().unwrap_or(e.value.clone())))
    }

    fn entries(&self) -> &HashMap<String, Entry> {
        self.built.get_or_init(|| match &self.pending {
            Some((source, Format::Yaml)) => yaml_entries(source),
            Some((source, Format::Toml)) => toml_entries(source),
            None => HashMap::new(),
        })
    }

    fn find(&self, path: &str) -> Option<&Entry> {
        if self.renames.is_empty() {
            return self.find_in_document(path);
        }
        let renamed = self.rename(path);
        self.find_in_document(&renamed)
    }

    /// The document path a manifest path came from: the longest renamed prefix replaced.
    fn rename(&self, path: &str) -> String {
        let at_boundary = |prefix: &str| {
            path.strip_prefix(prefix).is_some_and(|rest| {
                rest.is_empty() || prefix.is_empty() || rest.starts_with(['.', '['])
            })
        };
        match self
            .renames
            .iter()
            .filter(|(from, _)| at_boundary(from))
            .max_by_key(|(from, _)| from.len())
        {
            Some((from, to)) => {
                let rest = &path[from.len()..];
                if self.opaque.contains(to) {
                    to.clone()
                } else if to.is_empty() {
                    rest.trim_start_matches('.').to_string()
                } else if from.is_empty() && !rest.is_empty() {
                    [to.as_str(), ".", rest].concat()
                } else {
                    [to.as_str(), rest].concat()
                }
            }
            None => path.to_string(),
        }
    }

    /// This map with manifest paths renamed to the paths of the document they were read
    /// from: `renames` pairs a manifest path prefix (`apps[0].exec`) with its document path
    /// (`spec.containers[0].command`); the longest matching prefix wins.
    /// `opaque` lists document paths whose value holds manifest parts as text.
    pub fn renamed(mut self, renames: Vec<(String, String)>, opaque: Vec<String>) -> SourceMap {
        self.renames = renames;
        self.opaque = opaque;
        self
    }

    /// The path to show for a manifest path: the document path it came from, followed by the
    /// manifest path where that is a value holding manifest text (`metadata.annotations.podc/apps
    /// (apps[0].isolators.tasks)`). The path itself for podc's own manifests.
    pub fn document_path(&self, path: &str) -> String {
        if self.renames.is_empty() {
            return path.to_string();
        }
        let renamed = self.rename(path);
        if self.opaque.contains(&renamed) {
            format!("{renamed} ({path})")
        } else {
            renamed
        }
    }

    fn find_in_document(&self, mut path: &str) -> Option<&Entry> {
        let entries = self.entries();
        loop {
            if let Some(e) = entries.get(path) {
                return Some(e);
            }
            path = parent(path)?;
        }
    }

    /// A map of `source` that reads it when first asked.
    pub fn lazy(source: &str, format: Format) -> SourceMap {
        SourceMap {
            pending: Some((source.to_string(), format)),
            built: OnceCell::new(),
            renames: Vec::new(),
            opaque: Vec::new(),
            offset: 0,
        }
    }

    /// A map of `text`, a document that starts at byte `offset` of its file.
    pub fn lazy_at(text: &str, format: Format, offset: usize) -> SourceMap {
        SourceMap {
            offset,
            ..SourceMap::lazy(text, format)
        }
    }

    /// Reads a YAML document's node positions.
    pub fn yaml(source: &str) -> SourceMap {
        SourceMap {
            pending: None,
            built: OnceCell::from(yaml_entries(source)),
            renames: Vec::new(),
            opaque: Vec::new(),
            offset: 0,
        }
    }

    /// Reads a TOML document's node positions.
    pub fn toml(source: &str) -> SourceMap {
        SourceMap {
            pending: None,
            built: OnceCell::from(toml_entries(source)),
            renames: Vec::new(),
            opaque: Vec::new(),
            offset: 0,
        }
    }
}

type Entries = HashMap<String, Entry>;

fn insert(map: &mut Entries, path: String, key: Option<Range<usize>>, value: Range<usize>) {
    map.insert(path, Entry { key, value });
}

fn yaml_entries(source: &str) -> Entries {
    let mut map = Entries::new();
    let node: Result<Spanned<YamlNode>, _> = serde_saphyr::from_str(source);
    if let Ok(node) = node {
        walk_yaml(&node, String::new(), None, &mut map);
    }
    // Every path has at least the document as its ancestor, even where the walk could not
    // follow (a key the walk spells differently, found by the fuzzer: a huge number).
    map.entry(String::new()).or_insert(Entry {
        key: None,
        value: 0..0,
    });
    map
}

fn toml_entries(source: &str) -> Entries {
    let mut map = Entries::new();
    if let Ok(table) = toml::de::DeTable::parse(source) {
        let span = table.span();
        insert(&mut map, String::new(), None, span);
        walk_toml_table(table.get_ref(), "", &mut map);
    }
    map.entry(String::new()).or_insert(Entry {
        key: None,
        value: 0..0,
    });
    map
}

fn walk_toml_table(table: &toml::de::DeTable<'_>, path: &str, map: &mut Entries) {
    for (key, value) in table {
        let child = join_key(path, key.get_ref());
        walk_toml_value(value, child, Some(key.span()), map);
    }
}

fn walk_toml_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    path: String,
    key: Option<Range<usize>>,
    map: &mut Entries,
) {
    use toml::de::DeValue;
    match value.get_ref() {
        DeValue::Table(t) => walk_toml_table(t, &path, map),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                walk_toml_value(item, join_index(&path, i), None, map);
            }
        }
        _ => {}
    }
    // Tables declared with `[header]` have the header as their span; keep the first one seen.
    map.entry(path).or_insert(Entry {
        key,
        value: value.span(),
    });
}

type Spanned<T> = serde_saphyr::Spanned<T>;

/// A YAML node with the positions of everything inside it.
enum YamlNode {
    Map(Vec<(Spanned<YamlKey>, Spanned<YamlNode>)>),
    Seq(Vec<Spanned<YamlNode>>),
    Scalar,
}

/// A mapping key as text; non-scalar keys have no path and are skipped.
struct YamlKey(Option<String>);

fn yaml_span(loc: &serde_saphyr::Location) -> Option<Range<usize>> {
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len().unwrap_or(0)).ok()?;
    Some(start..start + len)
}

fn walk_yaml(node: &Spanned<YamlNode>, path: String, key: Option<Range<usize>>, map: &mut Entries) {
    match &node.value {
        YamlNode::Map(entries) => {
            for (k, v) in entries {
                if let YamlKey(Some(name)) = &k.value {
                    walk_yaml(v, join_key(&path, name), yaml_span(&k.referenced), map);
                }
            }
        }
        YamlNode::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_yaml(item, join_index(&path, i), None, map);
            }
        }
        YamlNode::Scalar => {}
    }
    if let Some(value) = yaml_span(&node.referenced) {
        insert(map, path, key, value);
    }
}

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

macro_rules! scalar {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<YamlNode, E> { Ok(YamlNode::Scalar) })*
    };
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = YamlNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
            visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Scalar)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlNode, D::Error> {
        YamlNode::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(YamlNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<YamlNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = m.next_key()? {
            let value = m.next_value()?;
            entries.push((key, value));
        }
        Ok(YamlNode::Map(entries))
    }
}

impl<'de> Deserialize<'de> for YamlKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = YamlKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlKey, E> {
                Ok(YamlKey(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlKey, E> {
                Ok(YamlKey(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlKey, E> {
                Ok(YamlKey(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlKey, E> {
                Ok(YamlKey(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlKey, E> {
                Ok(YamlKey(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<YamlKey, E> {
                Ok(YamlKey(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlKey, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(YamlKey(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<YamlKey, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(YamlKey(None))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str =
        "podc: 1\nname: web\napps:\n  - name: a\n    isolators:\n      memory: 1Gi\n";
    const TOML: &str =
        "podc = 1\nname = \"web\"\n[[apps]]\nname = \"a\"\n[apps.isolators]\nmemory = \"1Gi\"\n";

    fn text(src: &str, r: Option<Range<usize>>) -> &str {
        &src[r.expect("span")]
    }

    #[test]
    fn yaml_paths_point_at_values_and_keys() {
        let map = SourceMap::yaml(YAML);
        assert_eq!(text(YAML, map.value("apps[0].isolators.memory")), "1Gi");
        assert_eq!(text(YAML, map.key("apps[0].isolators.memory")), "memory");
        assert_eq!(text(YAML, map.value("name")), "web");
        // A missing node falls back to its nearest ancestor.
        assert_eq!(text(YAML, map.key("apps[0].isolators.cpu")), "isolators");
    }

    #[test]
    fn toml_paths_point_at_values_and_keys() {
        let map = SourceMap::toml(TOML);
        assert_eq!(text(TOML, map.value("apps[0].isolators.memory")), "\"1Gi\"");
        assert_eq!(text(TOML, map.key("apps[0].isolators.memory")), "memory");
        assert_eq!(text(TOML, map.value("name")), "\"web\"");
    }

    #[test]
    fn renamed_paths_point_into_the_other_document() {
        let src = "spec:\n  containers:\n    - name: a\n      command: [x, y]\n";
        let map = SourceMap::yaml(src).renamed(
            vec![
                ("apps[0]".into(), "spec.containers[0]".into()),
                ("apps[0].exec".into(), "spec.containers[0].command".into()),
                (
                    "apps[0].user".into(),
                    "metadata.annotations.podc/apps".into(),
                ),
            ],
            vec!["metadata.annotations.podc/apps".into()],
        );
        assert_eq!(text(src, map.value("apps[0].exec[1]")), "y");
        assert_eq!(text(src, map.value("apps[0].name")), "a");
        assert_eq!(text(src, map.key("apps[0].name")), "name");
        // `apps[0].execute` is not under `apps[0].exec`: only whole path parts match.
        assert_eq!(map.rename("apps[0].execute"), "spec.containers[0].execute");
        assert_eq!(map.rename("name"), "name");
        assert_eq!(
            map.document_path("apps[0].exec[1]"),
            "spec.containers[0].command[1]"
        );
        assert_eq!(
            map.document_path("apps[0].user"),
            "metadata.annotations.podc/apps (apps[0].user)"
        );
    }

    #[test]
    fn broken_documents_still_have_the_document_itself() {
        assert_eq!(SourceMap::yaml("a: [").value("a"), Some(0..0));
        assert_eq!(SourceMap::toml("a = ").value("a"), Some(0..0));
    }
}
