//! `podc.5`: the manifest format, written from the schema of the manifest's types
//! ([`crate::manifest::schema::sections`]): every mapping, every key with its kind, its words,
//! its default and its doc comment, and the example manifests of the package. What the types
//! say is what the page says; only the paragraphs around them are written here.

use roff::{bold, italic, roman, Inline, Roff};

use crate::manifest::schema::{sections, Key, Section};

const HELLO: &str = include_str!("../../../examples/hello.yaml");
const WEB: &str = include_str!("../../../examples/web.yaml");

/// The page, as roff.
pub fn page() -> String {
    let (sections, named) = sections();
    let mut r = Roff::default();
    // Every argument of `.TH` given: an empty one would be lost, and the next take its place.
    let version = format!("podc {}", env!("CARGO_PKG_VERSION"));
    r.control("TH", ["podc", "5", &version, "podc", "podc manual"]);
    r.control("SH", ["NAME"]);
    r.text([roman("podc - the pod manifest of podc (YAML or TOML)")]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        italic("pod"),
        bold(".yaml"),
        roman(", "),
        italic("pod"),
        bold(".toml"),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    for paragraph in DESCRIPTION {
        r.control("PP", []).text(code(paragraph));
    }
    r.control("SH", ["KEYS"]);
    r.text(code(
        "Each mapping of the manifest, where it is written (`apps[]`: each item of `apps`; \
         `<name>`: each entry of a map), and its keys. A key not marked required may be left out.",
    ));
    for s in &sections {
        section(&mut r, s);
    }
    if !named.is_empty() {
        r.control("SH", ["VALUES"]);
        for n in &named {
            r.control("TP", []).text([bold(n.name.as_str())]);
            r.text(code(&flow(&n.description)));
        }
    }
    r.control("SH", ["EXAMPLES"]);
    r.text(code("The quick start's pod, a web server on 127.0.0.1:8080 (`/usr/share/doc/podc/examples/hello.yaml`):"));
    example(&mut r, HELLO);
    r.control("PP", []).text(code("The same pod in TOML:"));
    example(&mut r, &as_toml(HELLO));
    r.control("PP", []).text(code(
        "Two apps sharing a host directory, with limits, a restart policy and a cgroup v1 target \
         (`/usr/share/doc/podc/examples/web.yaml`):",
    ));
    example(&mut r, WEB);
    r.control("SH", ["FILES"]);
    r.control("TP", [])
        .text([bold("/usr/share/podc/pod.schema.json")]);
    r.text(code("The JSON Schema of the manifest (`podc schema` prints it), for editors: a first line `# yaml-language-server: $schema=/usr/share/podc/pod.schema.json` lets yaml-language-server check and complete a manifest."));
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("podc"),
        roman("(1), "),
        bold("podc-check"),
        roman("(1), "),
        bold("podc-build"),
        roman("(1), systemd.resource-control(5), systemd.exec(5); /usr/share/doc/podc/README.md"),
    ]);
    r.render()
}

/// What the manifest is, around the keys.
const DESCRIPTION: &[&str] = &[
    "A manifest describes one pod: a set of apps that run together in one systemd-nspawn container, each as its own service, chrooted into its image, with its own limits. `podc check` validates it, `podc build` compiles it into systemd units and a mount plan; a Kubernetes Pod or Deployment is read as a manifest too.",
    "A manifest is YAML (`.yaml`, `.yml`) or TOML (`.toml`) with the same keys. Keys are camelCase, and an unknown key is an error. YAML is read with the YAML 1.2 core types: `\"1\"` is a string, `yes`, `no`, `on` and `off` are strings, booleans are `true` and `false`.",
    "Quantities follow Kubernetes: `500m`, `2`, `1.5`, `1G` (10^9), `1Gi` (2^30). Memory is a whole number of bytes; CPU a whole number of millicores. Zero, negative and fractional bytes are errors: podc never rounds.",
];

/// One mapping: its path as a subsection, what it is, and its keys.
fn section(r: &mut Roff, s: &Section) {
    let title = match s.path.as_str() {
        "" => "The pod (the top level)".to_string(),
        p => p.to_string(),
    };
    r.control("SS", [title.as_str()]);
    if !s.path.is_empty() && !s.description.is_empty() {
        r.text(code(&flow(&s.description)));
    }
    for k in &s.keys {
        key(r, k);
    }
}

/// One key: its name and kind as the tag, then its doc comment, words, rules and default.
fn key(r: &mut Roff, k: &Key) {
    let mut tag = vec![bold(k.name.as_str()), roman(" ("), italic(k.kind.as_str())];
    if k.required {
        tag.push(roman(", required"));
    }
    tag.push(roman(")"));
    r.control("TP", []).text(tag);
    if !k.description.is_empty() {
        r.text(code(&flow(&k.description)));
    }
    let described = k.values.iter().any(|(_, what)| !what.is_empty());
    if described {
        r.control("RS", []);
        for (word, what) in &k.values {
            r.control("TP", [])
                .text([bold(word.as_str())])
                .text(code(&flow(what)));
        }
        r.control("RE", []);
    } else if !k.values.is_empty() {
        let words: Vec<String> = k.values.iter().map(|(w, _)| format!("`{w}`")).collect();
        r.control("br", [])
            .text(code(&format!("One of {}.", words.join(", "))));
    }
    let mut notes: Vec<String> = k
        .rules
        .iter()
        .map(|rule| format!("{}.", capital(rule)))
        .collect();
    if let Some(d) = &k.default {
        notes.push(format!("Default `{d}`."));
    }
    for below in &k.below {
        notes.push(format!("Its keys: `{below}` below."));
    }
    if !notes.is_empty() {
        if described {
            r.control("IP", []);
        } else {
            r.control("br", []);
        }
        r.text(code(&notes.join(" ")));
    }
}

/// An example manifest, as it is, in no-fill mode.
fn example(r: &mut Roff, text: &str) {
    r.control("PP", []).control("RS", ["4"]).control("nf", []);
    for line in text.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []).control("RE", []);
}

/// A YAML manifest as TOML (the toml crate's layout: scalars first, then tables).
fn as_toml(yaml: &str) -> String {
    let body: String = yaml
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    crate::parse::slow_value(&body)
        .ok()
        .and_then(|v| toml::to_string(&v).ok())
        .unwrap_or_default()
}

/// A doc comment's lines as one paragraph.
fn flow(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Text with `code` spans in bold, as man pages show literal words.
fn code(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, piece)| !piece.is_empty())
        .map(|(i, piece)| {
            if i % 2 == 1 {
                bold(piece)
            } else {
                roman(piece)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TOML example is the quick start's manifest, key for key.
    #[test]
    fn the_toml_example_is_the_yaml_one() {
        let toml_text = as_toml(HELLO);
        let read: serde_json::Value = toml::from_str(&toml_text).unwrap();
        assert_eq!(
            read,
            crate::parse::slow_value(HELLO).unwrap(),
            "{toml_text}"
        );
        let parsed = crate::parse::manifest(&toml_text, crate::parse::Format::Toml, None);
        assert!(parsed.is_ok(), "{toml_text}");
    }

    #[test]
    fn code_spans_are_bold() {
        assert_eq!(code("a `b` c"), vec![roman("a "), bold("b"), roman(" c")]);
    }
}
