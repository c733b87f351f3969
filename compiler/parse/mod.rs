//! Parse: manifest text to a typed [`Manifest`] and a [`SourceMap`].
//!
//! YAML goes through serde-saphyr (duplicate keys are errors, alias expansion is budgeted),
//! TOML through the toml crate; both through serde_path_to_error so that a type error names
//! its document path. A document that does not fit the types gives exactly one diagnostic
//! (serde stops at the first); the semantic rules in [`crate::resolve`] report all of theirs.

// A parse error is a `Diagnostic` by value (128 bytes with its code): it happens once per run
// at most, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod brackets;
pub mod source;
mod yaml_fast;

use serde::Deserialize;
use serde_json::Value;

use crate::diag::codes::{self, Code};
use crate::diag::{nearest, Diagnostic};
use crate::manifest::Manifest;
pub use source::{Format, SourceMap};

/// A manifest and where its nodes are.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub manifest: Manifest,
    pub map: SourceMap,
    /// Warnings of the reading itself (a Kubernetes field ignored), located in the source.
    pub warnings: Vec<Diagnostic>,
}

/// A podc manifest in TOML, or in YAML already read as `value` by [`yaml_document`].
pub fn manifest(source: &str, format: Format, value: Option<Value>) -> Result<Parsed, Diagnostic> {
    let result = match (format, value) {
        (Format::Yaml, Some(value)) => parse_yaml(source, value),
        (Format::Yaml, None) => yaml_document(source).and_then(|v| parse_yaml(source, v)),
        (Format::Toml, _) => parse_toml(source),
    };
    finish(source, format, result.map(|m| (m, None)))
}

/// A manifest as read (by [`manifest`] or from a Kubernetes object, with that object's source
/// map), its quantities exact and a missing key's diagnostic placed at its mapping.
pub fn finish(
    source: &str,
    format: Format,
    result: Result<(Manifest, Option<SourceMap>), Diagnostic>,
) -> Result<Parsed, Diagnostic> {
    // Read again for positions only if something asks where a node is.
    let map = || SourceMap::lazy(source, format);
    match result {
        Ok((mut manifest, other_map)) => {
            let map = other_map.unwrap_or_else(map);
            exact_quantities(&mut manifest, &map, source);
            Ok(Parsed {
                manifest,
                map,
                warnings: Vec::new(),
            })
        }
        // A missing key is best shown at the mapping that lacks it.
        Err(mut d) if d.message.starts_with("missing field") => {
            if let Some(path) = &d.path {
                d.span = map().key(path).or(d.span);
            }
            Err(d)
        }
        Err(d) => Err(d),
    }
}

/// A manifest read from a Kubernetes object: its own source map (which renames manifest paths
/// to the object's) and the reading's warnings; quantities made exact like a manifest's.
pub fn imported(
    source: &str,
    mut manifest: Manifest,
    map: SourceMap,
    warnings: Vec<Diagnostic>,
) -> Parsed {
    exact_quantities(&mut manifest, &map, source);
    Parsed {
        manifest,
        map,
        warnings,
    }
}

/// Quantities written as unquoted decimals were read through an f64, which rounds: replace each
/// with the scalar's own text, so that `memory: 9007199254740993.0` means what it says (or is
/// refused as written). podc never rounds.
pub(crate) fn exact_quantities(m: &mut crate::manifest::Manifest, map: &SourceMap, source: &str) {
    use crate::manifest::Quantity;
    use crate::parse::source::{join_index, join_key};
    // Paths are made only for the rare quantity that was read through a float.
    let fix = |q: &mut Option<Quantity>, path: &dyn Fn() -> String| {
        let Some(q) = q.as_mut().filter(|q| q.via_float) else {
            return;
        };
        if let Some(text) = map.value(&path()).and_then(|span| source.get(span)) {
            q.text = text.trim().to_string();
            q.via_float = false;
        }
    };
    if let Some(i) = m.isolators.as_mut() {
        fix(&mut i.cpu, &|| "isolators.cpu".into());
        fix(&mut i.memory, &|| "isolators.memory".into());
    }
    for (n, app) in m.apps.iter_mut().enumerate() {
        if let Some(i) = app.isolators.as_mut() {
            let base = || join_key(&join_index("apps", n), "isolators");
            fix(&mut i.cpu, &|| join_key(&base(), "cpu"));
            fix(&mut i.memory, &|| join_key(&base(), "memory"));
            fix(&mut i.cpu_request, &|| join_key(&base(), "cpuRequest"));
            fix(&mut i.memory_request, &|| {
                join_key(&base(), "memoryRequest")
            });
        }
    }
    for (n, c) in m.config.iter_mut().enumerate() {
        fix(&mut c.divisor, &|| {
            join_key(&join_index("config", n), "divisor")
        });
    }
    for (n, v) in m.volumes.iter_mut().enumerate() {
        fix(&mut v.size, &|| join_key(&join_index("volumes", n), "size"));
    }
}

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    options
}

/// The documents of a YAML stream, as byte ranges of `source`: it is split at the lines that
/// start with `---` or `...` in column 0, which YAML forbids inside a document's content (a
/// block scalar ends there too). Documents of blanks and comments only are left out.
pub fn yaml_documents(source: &str) -> Vec<std::ops::Range<usize>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    let mut push = |range: std::ops::Range<usize>| {
        let blank = source[range.clone()]
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if !blank {
            documents.push(range);
        }
    };
    for line in source.split_inclusive('\n') {
        let marker = ["---", "..."].iter().any(|m| {
            line.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        });
        if marker {
            push(start..offset);
            // What follows the marker on its line belongs to the next document.
            start = offset + 3;
        }
        offset += line.len();
    }
    push(start..source.len());
    documents
}

/// The text of `source` up to the end of `range`, with every byte before it a space (line
/// breaks kept): one document of a stream, read alone, at the positions it has in the whole
/// text. (Nothing follows it: blank lines of spaces after a block scalar would be its content.)
pub fn masked(source: &str, range: std::ops::Range<usize>) -> String {
    let bytes: Vec<u8> = source.as_bytes()[..range.end]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if i >= range.start || b == b'\n' {
                b
            } else {
                b' '
            }
        })
        .collect();
    String::from_utf8(bytes).expect("only ASCII spaces replace whole characters")
}

/// A YAML document as a JSON value: refused located when it is empty, not YAML, or not a
/// mapping. Whether a podc manifest or a Kubernetes object, the caller decides.
pub fn yaml_document(source: &str) -> Result<Value, Diagnostic> {
    let blank = source
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Err(Diagnostic::new(codes::EMPTY, "the manifest is empty")
            .at("", Some(0..0))
            .help("a manifest needs at least `podc`, `name` and `apps`"));
    }
    // First the YAML itself, into a JSON value: syntax, duplicate keys and alias budgets are
    // checked here, and scalars get their YAML 1.2 core types (`"1"` stays a string, `no` is
    // not a boolean), the same reading yaml-language-server gives the schema.
    // Most manifests are plain YAML that a leaner reader takes at half the cost; it gives up on
    // anything else, and serde-saphyr reads it (and reports every error).
    let value = match yaml_value(source) {
        Ok(v) => v,
        Err(err) => {
            let span = err.location().and_then(|loc| yaml_location(source, &loc));
            let (code, message) = yaml_message(&err);
            let d = Diagnostic::new(code, message).at("", span);
            return Err(at_the_bracket(source, Format::Yaml, d));
        }
    };
    // serde would read a top-level list as a struct's fields in order; say what is wrong instead.
    if !value.is_object() {
        let what = match value {
            serde_json::Value::Array(_) => "a list",
            serde_json::Value::Null => "empty",
            _ => "a single value",
        };
        let start = first_content(source).unwrap_or(0);
        return Err(Diagnostic::new(
            codes::NOT_A_MAPPING,
            format!("the manifest is {what}, not a mapping of keys to values"),
        )
        .at("", Some(start..start + 1))
        .help("a manifest needs at least `podc`, `name` and `apps`"));
    }
    Ok(value)
}

/// A podc manifest read as `value` from `source`, into the manifest types.
fn parse_yaml(source: &str, value: Value) -> Result<Manifest, Diagnostic> {
    // The value into the manifest types. Tracking the path costs a tenth of a build, so a
    // value is first read without; one that does not fit is read again with it, for the error.
    if let Ok(manifest) = Manifest::deserialize(value) {
        return Ok(manifest);
    }
    let value = yaml_value(source).expect("the text was read once already");
    // Positions come from the source map by path.
    serde_path_to_error::deserialize::<_, Manifest>(value).map_err(|e| {
        let path = clean_path(&e.path().to_string()).to_string();
        let message = tidy(&e.inner().to_string());
        let map = SourceMap::lazy(source, Format::Yaml);
        let span = if message.starts_with("unknown field") || message.starts_with("missing field") {
            map.key(&path)
        } else {
            map.value(&path)
        };
        let bool_help = message
            .ends_with("expected a boolean")
            .then_some("booleans are true and false; yes, no, on and off are strings in YAML 1.2");
        let d = port_written(
            placed(serde_diagnostic(message).at(path, span)),
            Format::Yaml,
        );
        match bool_help {
            Some(h) => d.help(h),
            None => d,
        }
    })
}

/// The document as a JSON value: by the fast reader where it can, else by serde-saphyr.
pub(crate) fn yaml_value(source: &str) -> Result<serde_json::Value, serde_saphyr::Error> {
    match crate::parse::yaml_fast::read(source) {
        Some(value) => Ok(value),
        None => slow_value(source),
    }
}

/// The document as the fast reader alone reads it (`None` where it leaves the document to
/// serde-saphyr): for tests/yaml_fast.rs, which holds it to serde-saphyr's reading.
#[doc(hidden)]
pub fn fast_value(source: &str) -> Option<serde_json::Value> {
    yaml_fast::read(source)
}

/// The document as serde-saphyr reads it into a JSON value.
pub fn slow_value(source: &str) -> Result<serde_json::Value, serde_saphyr::Error> {
    serde_saphyr::with_deserializer_from_str_with_options(source, yaml_options(), |de| {
        serde_json::Value::deserialize(de)
    })
}

/// The byte offset of the first line that is neither blank nor a comment.
fn first_content(source: &str) -> Option<usize> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') && t != "---\n" && t != "---" {
            return Some(offset + line.len() - t.len());
        }
        offset += line.len();
    }
    None
}

/// The byte span of a serde-saphyr location: its byte offsets where it has them, else its
/// line and column (syntax errors carry only those).
///
/// A position past the end of the text (a line count the text does not have) gives the end.
fn yaml_location(source: &str, loc: &serde_saphyr::Location) -> Option<std::ops::Range<usize>> {
    let span = loc.span();
    if let Some(start) = span.byte_offset() {
        let start = usize::try_from(start).ok()?;
        let len = usize::try_from(span.byte_len().unwrap_or(0)).ok()?;
        return Some(start..start + len);
    }
    let (line, column) = (loc.line() as usize, loc.column() as usize);
    if line == 0 {
        return None;
    }
    // YAML breaks lines at LF, CR LF and a lone CR (found by the fuzzer: counting LF alone
    // lost the position of errors after a lone CR).
    let mut line_start = 0;
    for _ in 1..line {
        let rest = &source[line_start..];
        let at = rest.find(['\n', '\r'])?;
        let width = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        line_start += at + width;
    }
    let text = &source[line_start..];
    let offset = text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i);
    let start = line_start + offset;
    let len = source[start..].chars().next().map_or(0, char::len_utf8);
    Some(start..start + len)
}

/// serde-saphyr's message without the position it appends (we show our own), and its code.
fn yaml_message(err: &serde_saphyr::Error) -> (&'static Code, String) {
    let text = err.without_snippet().to_string();
    let text = match text.find(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    if let Some(breach) = text.strip_prefix("budget breached: ") {
        // `Nodes { nodes: 250001 }` → `nodes 250001`
        let detail = breach
            .split_once('{')
            .map_or(breach, |(_, rest)| rest.trim_end_matches('}'))
            .replace(':', "");
        return (codes::READER_LIMIT, format!(
            "the manifest reaches a limit of podc's YAML reader ({}): it is too large, too deeply nested or expands too many aliases",
            detail.trim()
        ));
    }
    if let Some(key) = text.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return (codes::DUPLICATE_KEY, format!("duplicate key `{key}`"));
    }
    (codes::SYNTAX, tidy(text))
}

/// A serde message about a document that does not fit the manifest types, with its code and,
/// for an unknown key or word, the nearest valid one as help. serde lists every valid name
/// (`unknown field `memroy`, expected one of `cpu`, `memory`, ...`); the list stays in the
/// message only when no name is near.
pub(crate) fn serde_diagnostic(message: String) -> Diagnostic {
    let code = if message.starts_with("unknown field") {
        codes::UNKNOWN_KEY
    } else if message.starts_with("missing field") {
        codes::MISSING_KEY
    } else if message.starts_with("unknown variant") {
        codes::UNKNOWN_VARIANT
    } else {
        codes::WRONG_TYPE
    };
    if code == codes::UNKNOWN_KEY || code == codes::UNKNOWN_VARIANT {
        if let Some((head, near)) = did_you_mean(&message) {
            return Diagnostic::new(code, head).help(format!("did you mean `{near}`?"));
        }
    }
    Diagnostic::new(code, message)
}

/// Splits `unknown field `x`, expected one of `a`, `b`` into its head and the expected name
/// nearest to `x`, if one is near.
fn did_you_mean(message: &str) -> Option<(String, &str)> {
    let (head, expected) = message.split_once(", expected ")?;
    let given = head.split('`').nth(1)?;
    // The expected names are the odd pieces between backticks.
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let near = nearest(given, &names)?;
    Some((head.to_string(), near))
}

/// An unknown key that is a key of another mapping (`restart` at the top level, an app's
/// key): says where it belongs, which helps more than the nearest name here (`start`).
fn placed(d: Diagnostic) -> Diagnostic {
    if d.code != codes::UNKNOWN_KEY {
        return d;
    }
    let Some(key) = d.message.split('`').nth(1) else {
        return d;
    };
    let path = d.path.as_deref().unwrap_or("");
    let Some(parent) = path.strip_suffix(key) else {
        return d;
    };
    let here = section_of(parent.trim_end_matches('.'));
    let places = crate::manifest::schema::places_of(key, &here);
    if places.is_empty() {
        return d;
    }
    let name = |p: &str| match p {
        "" => "the pod (the top level)".to_string(),
        "apps[]" => "an app".to_string(),
        p => format!("`{p}`"),
    };
    let help = if places == ["apps[]"] {
        format!("`{key}` is an app key: write it in the app it is for, under `apps:`")
    } else {
        let there: Vec<String> = places.iter().map(|p| name(p)).collect();
        format!(
            "`{key}` is a key of {}, not of {}",
            there.join(" and "),
            name(&here)
        )
    };
    d.help(help)
}

/// A syntax error after a `[` or `{` that is never closed: shown at that bracket, with where
/// the reader gave up and why as help (#28: it pointed at the next key, lines later).
fn at_the_bracket(source: &str, format: Format, d: Diagnostic) -> Diagnostic {
    let Some(error) = d.span.clone().filter(|_| d.code == codes::SYNTAX) else {
        return d;
    };
    let Some((at, bracket)) =
        brackets::unclosed(source, format).filter(|(at, _)| *at < error.start)
    else {
        return d;
    };
    let (line, column) = crate::diag::line_col(source, error.start);
    let (what, close) = match (bracket, format) {
        ('[', Format::Yaml) => ("list", ']'),
        ('[', Format::Toml) => ("array", ']'),
        (_, Format::Yaml) => ("mapping", '}'),
        (_, Format::Toml) => ("inline table", '}'),
    };
    Diagnostic::new(codes::SYNTAX, format!("unclosed bracket '{bracket}'"))
        .at("", Some(at..at + 1))
        .label("never closed")
        .help(format!(
            "close the {what} with `{close}`; the reader went on to line {line}, column {column}, where it gave up: {}",
            d.message
        ))
}

/// A port written as a string or a number, as Docker Compose writes them (`"8080:80"`): says
/// that a port is a mapping and how to write this one (#28: it said `expected struct Port`).
fn port_written(d: Diagnostic, format: Format) -> Diagnostic {
    let in_ports = d
        .path
        .as_deref()
        .is_some_and(|p| section_of(p) == "apps[].ports[]");
    let message = d.message.clone();
    let Some(given) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.strip_suffix(", expected a mapping"))
        .filter(|_| in_ports)
    else {
        return d;
    };
    // `string "8080:80"`, `integer `80``: the value as written.
    let written = given
        .split_once(' ')
        .map_or(given, |(_, v)| v)
        .trim_matches(['"', '`']);
    let fields = compose_port(written);
    let example = fields
        .clone()
        .unwrap_or_else(|| vec![("port", "80".to_string()), ("hostPort", "8080".to_string())]);
    let mapping = match format {
        Format::Yaml => {
            let pairs: Vec<String> = example.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Format::Toml => {
            let pairs: Vec<String> = example
                .iter()
                .map(|(k, v)| match *k {
                    "hostIP" | "protocol" => format!("{k} = \"{v}\""),
                    _ => format!("{k} = {v}"),
                })
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    };
    let help = match fields {
        Some(_) => format!(
            "write it as `{mapping}`: `port` is the app's port in the pod, `hostPort` the one published on the host"
        ),
        None => format!(
            "write each port as a mapping, such as `{mapping}`: `port` is the app's port in the pod, `hostPort` the one published on the host"
        ),
    };
    let mut d = d;
    let shown = match given.split_once(' ') {
        Some(("string", v)) => format!("the string {v}"),
        Some(("integer" | "floating point", v)) => format!("the number {}", v.trim_matches('`')),
        _ => given.to_string(),
    };
    d.message = format!("a port is a mapping (`port`, `hostPort`, ...), not {shown}");
    d.help(help)
}

/// The fields of a port written as Docker Compose writes it: `[[IP:]HOST:]PORT[/PROTOCOL]`
/// (an IPv6 address in brackets). `None` for anything else, a range among them.
fn compose_port(text: &str) -> Option<Vec<(&'static str, String)>> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((r, p @ ("tcp" | "udp"))) => (r, Some(p)),
        Some(_) => return None,
        None => (text, None),
    };
    let (ip, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, r) = r.split_once("]:")?;
            (Some(ip), r)
        }
        None => match rest.matches(':').count() {
            2 => {
                let (ip, r) = rest.split_once(':')?;
                (Some(ip), r)
            }
            _ => (None, rest),
        },
    };
    let number = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0);
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (Some(number(h)?), number(p)?),
        None => (None, number(rest)?),
    };
    let mut fields = vec![("port", port.to_string())];
    if let Some(h) = host.filter(|h| *h != port) {
        fields.push(("hostPort", h.to_string()));
    }
    if let Some(ip) = ip.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
        fields.push(("hostIP", ip.to_string()));
    } else if ip.is_some() {
        return None;
    }
    if let Some(p) = protocol {
        fields.push(("protocol", p.to_string()));
    }
    Some(fields)
}

/// A document path as the section it is in: `apps[2].isolators` as `apps[].isolators`.
fn section_of(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

fn parse_toml(source: &str) -> Result<Manifest, Diagnostic> {
    let de = match toml::de::Deserializer::parse(source) {
        Ok(de) => de,
        Err(e) => {
            let message = tidy(e.message());
            let code = if message.starts_with("duplicate key") {
                codes::DUPLICATE_KEY
            } else {
                codes::SYNTAX
            };
            let d = Diagnostic::new(code, message).at("", e.span());
            return Err(at_the_bracket(source, Format::Toml, d));
        }
    };
    match serde_path_to_error::deserialize::<_, Manifest>(de) {
        Ok(m) => Ok(m),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let d = serde_diagnostic(tidy(inner.message())).at(clean_path(&path), inner.span());
            Err(port_written(placed(d), Format::Toml))
        }
    }
}

/// serde_path_to_error writes `.` for the root and `?` for a key it could not name.
pub(crate) fn clean_path(path: &str) -> &str {
    let path = path.trim_end_matches('?').trim_end_matches('.');
    if path == "." {
        ""
    } else {
        path
    }
}

/// One line, no trailing period, lower-case start like the rest of our messages.
pub(crate) fn tidy(message: &str) -> String {
    let line = message
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    let friendly = match line {
        "invalid u64" | "invalid u32" => "expected a whole number that is not negative",
        "invalid i64" => "expected a whole number",
        "expected mapping start" => "expected a mapping (`key: value` lines)",
        "expected sequence start" => "expected a list",
        "expected string scalar" => "expected a string",
        "unexpected end of input" => "unexpected end of the manifest",
        _ => line,
    };
    let text = friendly
        .replace(
            ", expected u64",
            ", expected a whole number that is not negative",
        )
        .replace(
            ", expected u32",
            ", expected a whole number that is not negative",
        )
        .replace(", expected i64", ", expected a whole number");
    // serde names the Rust type (`expected struct Port`), which no manifest shows.
    match text.split_once(", expected struct ") {
        Some((head, _)) => format!("{head}, expected a mapping"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_ports_read_as_the_mapping_they_mean() {
        let fields = |t| {
            compose_port(t).map(|f| {
                f.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        };
        assert_eq!(fields("8080:80").unwrap(), "port=80 hostPort=8080");
        assert_eq!(fields("80:80").unwrap(), "port=80");
        assert_eq!(fields("53/udp").unwrap(), "port=53 protocol=udp");
        assert_eq!(
            fields("[::1]:8080:80").unwrap(),
            "port=80 hostPort=8080 hostIP=::1"
        );
        for other in [
            "8000-8010:8000-8010",
            "0:80",
            "a:80",
            "x.y:1:2",
            "80/sctp",
            "",
        ] {
            assert_eq!(fields(other), None, "{other}");
        }
    }

    #[test]
    fn a_stream_splits_at_its_document_markers_only() {
        let text = "# head\n---\na: 1\nb: |\n  x\n---   # two\nc: 2\n...\n\n---\n#\n";
        let docs = yaml_documents(text);
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(&text[docs[0].clone()], "\na: 1\nb: |\n  x\n");
        assert_eq!(&text[docs[1].clone()], "   # two\nc: 2\n");
        // A marker inside a line, or indented, is content.
        assert_eq!(yaml_documents("a: ---\nb: |\n  ---\n").len(), 1);
    }

    #[test]
    fn a_document_read_alone_keeps_its_positions_and_its_block_scalars() {
        let text = "k: 1\n---\nb: |\n  x\n---\n";
        let docs = yaml_documents(text);
        let alone = masked(text, docs[1].clone());
        assert_eq!(alone.len(), docs[1].end);
        assert_eq!(&alone[docs[1].clone()], &text[docs[1].clone()]);
        let value = yaml_document(&alone).unwrap();
        assert_eq!(
            value["b"], "x\n",
            "no blank line of the masked text joins the scalar"
        );
    }
}
