//! A fast reading of the plain YAML most manifests are: the same YAML parser serde-saphyr uses
//! (granit-parser, with the options serde-saphyr gives it), straight into a JSON value.
//!
//! serde-saphyr spends as much again as the parser itself on what podc's manifests rarely use
//! (anchors, aliases, merge keys, tags, budgets over expansions). This reader takes only the
//! documents where none of that can matter and gives up, returning `None`, on anything else:
//! a syntax error, a tag, an anchor or alias, a merge key, a duplicate key, a second document,
//! a scalar whose type needs more than the rules below, a document near serde-saphyr's budgets.
//! The caller then reads the text with serde-saphyr, which also writes every diagnostic. So a
//! document read here gives exactly the value serde-saphyr gives it (tests/yaml_fast.rs checks
//! that over every manifest the tests have), and every error is serde-saphyr's.
//!
//! Plain scalars take YAML 1.2 core types as serde-saphyr resolves them with strict booleans:
//! `null`, `Null`, `NULL`, `~` and the empty scalar are null; `true`/`True`/`TRUE` and
//! `false`/`False`/`FALSE` are booleans; decimal digits without a leading zero (at most 18) are
//! whole numbers; any other scalar that may be a number (see `numeric_like`) is left to
//! serde-saphyr; everything else is a string. Quoted and block scalars are
//! strings.

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Far below serde-saphyr's budgets (64 levels, 250 000 nodes, 1 000 000 events), so that a
/// document read here could never have breached one.
const MAX_DEPTH: usize = 48;
const MAX_EVENTS: usize = 200_000;

/// serde-saphyr's parser options (`Budget::parser_options` with the default budget and no
/// comments), so that both readers see the same events.
fn options() -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.simple_key_max_lookahead = 1024;
    options.flow_nesting_limit = 255;
    options.block_nesting_limit = options.block_nesting_limit.max(65);
    options.emit_comments = false;
    options
}

/// A collection being filled.
enum Open {
    Seq(Vec<Value>),
    /// A mapping and the key whose value comes next.
    Map(Map<String, Value>, Option<String>),
}

/// The document as a JSON value, or `None` where serde-saphyr must read it.
pub fn read(source: &str) -> Option<Value> {
    read_lines(source).or_else(|| read_events(source))
}

/// The second stage: the parser's events into a value.
pub fn read_events(source: &str) -> Option<Value> {
    if source.starts_with('\u{feff}') {
        return None;
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    let mut documents = 0;
    for (n, item) in Parser::new_from_str_with_options(source, options()).enumerate() {
        if n > MAX_EVENTS {
            return None;
        }
        let (event, _span) = item.ok()?;
        let value = match event {
            Event::StreamStart | Event::DocumentEnd => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_, version) => {
                documents += 1;
                if documents > 1 || version.is_some() {
                    return None;
                }
                continue;
            }
            Event::SequenceStart(_, 0, None) | Event::MappingStart(_, 0, None) => {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Open::Seq(Vec::new()),
                    _ => Open::Map(Map::new(), None),
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Open::Seq(items) => Value::Array(items),
                Open::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Open::Map(map, None) => Value::Object(map),
                _ => return None,
            },
            Event::Scalar(text, style, 0, None) => {
                // A key: kept as text, as serde_json's map keys are.
                if let Some(Open::Map(map, key @ None)) = stack.last_mut() {
                    // serde-saphyr compares keys by their typed values (`1_000` repeats `1000`),
                    // so a plain key must be a plain string here.
                    let plain = matches!(style, ScalarStyle::Plain);
                    let string = !plain || matches!(scalar(&text, style), Some(Value::String(_)));
                    if !string || text == "<<" || map.contains_key(text.as_ref()) {
                        return None;
                    }
                    *key = Some(text.into_owned());
                    continue;
                }
                scalar(&text, style)?
            }
            // Anchors, aliases, tags, and events this reader does not know.
            _ => return None,
        };
        match stack.last_mut() {
            None => root = Some(value),
            Some(Open::Seq(items)) => items.push(value),
            Some(Open::Map(map, key)) => {
                // A collection as a key leaves no key here.
                let key = key.take()?;
                map.insert(key, value);
            }
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root.filter(Value::is_object)
}

fn null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar is a string (not null, a boolean or possibly a number).
fn plain_string(text: &str) -> bool {
    !(null(text)
        || matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
        || numeric_like(text))
}

/// The value of a scalar that is not a key, or `None` where serde-saphyr must decide.
fn scalar(text: &str, style: ScalarStyle) -> Option<Value> {
    if !matches!(style, ScalarStyle::Plain) {
        return Some(Value::String(text.to_string()));
    }
    if null(text) {
        return Some(Value::Null);
    }
    match text {
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if numeric_like(text) {
        let decimal = text.len() <= 18
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        if !decimal {
            return None;
        }
        return text.parse::<u64>().ok().map(Value::from);
    }
    Some(Value::String(text.to_string()))
}

/// Whether serde-saphyr might read a plain scalar as a number: after an optional sign, it
/// starts with a digit or `.` and has only what integers (any radix, `_`) and floats are made
/// of, or it is an infinity or NaN. Quantities such as `250m` and `64Mi` are not.
fn numeric_like(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return false;
    }
    let special = unsigned.eq_ignore_ascii_case(".inf") || unsigned.eq_ignore_ascii_case(".nan");
    special
        || unsigned
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b"xXoO._+-".contains(&b))
}

/// The first, cheaper stage: block YAML written one entry a line, read without a tokenizer.
///
/// It takes only documents made of block mappings and block sequences whose lines are
/// `key: value`, `key:` (a nested collection follows, or null), `- value` and `- key: value`,
/// where a value is a plain scalar, a single- or double-quoted scalar without escapes, or a
/// flow sequence of such scalars on one line; full-line and trailing comments, and blank lines.
/// Keys are plain names (`[A-Za-z0-9_][A-Za-z0-9_./-]*`). The text must be printable ASCII
/// with line feeds. Anything else (tabs, multi-line scalars, flow mappings, anchors, tags,
/// block scalars, document markers, a key repeated, indentation it is not sure of) gives
/// `None`, and the parser's events are read instead.
pub fn read_lines(source: &str) -> Option<Value> {
    let mut lines = Vec::with_capacity(source.len() / 24);
    let bytes = source.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            significant(source, start, i, &mut lines);
            start = i + 1;
        } else if !(b' '..=b'~').contains(&b) {
            return None;
        }
    }
    significant(source, start, bytes.len(), &mut lines);
    let mut reader = Lines {
        lines,
        at: 0,
        nodes: 0,
    };
    match reader.lines.first() {
        Some(&(0, _)) => {}
        _ => return None,
    }
    let root = reader.mapping(0, 0)?;
    (reader.at == reader.lines.len()).then_some(root)
}

/// Keeps the line `source[start..end]` unless it is blank or a comment.
fn significant<'a>(source: &'a str, start: usize, end: usize, lines: &mut Vec<(usize, &'a str)>) {
    let line = &source.as_bytes()[start..end];
    let indent = line.iter().take_while(|&&b| b == b' ').count();
    if indent < line.len() && line[indent] != b'#' {
        lines.push((indent, &source[start + indent..end]));
    }
}

/// The significant lines (indentation, text after it) and the next one to read.
struct Lines<'a> {
    lines: Vec<(usize, &'a str)>,
    at: usize,
    nodes: usize,
}

impl<'a> Lines<'a> {
    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_EVENTS / 2).then_some(())
    }

    /// A block mapping whose keys are at `indent`, from the current line.
    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.count()?;
        let mut map = Map::new();
        while let Some(&(n, text)) = self.lines.get(self.at) {
            if n < indent {
                break;
            }
            if n > indent {
                return None;
            }
            let (key, rest) = key(text)?;
            if map.contains_key(key) {
                return None;
            }
            self.at += 1;
            let value = self.value(indent, rest, depth, true)?;
            map.insert(key.to_string(), value);
        }
        Some(Value::Object(map))
    }

    /// A block sequence whose dashes are at `indent`, from the current line.
    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.count()?;
        let mut items = Vec::new();
        while let Some(&(n, text)) = self.lines.get(self.at) {
            if n < indent {
                break;
            }
            if n > indent {
                return None;
            }
            // A line at this indentation that is not an entry ends the sequence (it may be the
            // next key of the mapping the sequence is the value of).
            let Some(after) = text.strip_prefix("- ") else {
                if text == "-" {
                    return None;
                }
                break;
            };
            let body = after.trim_start_matches(' ');
            let column = n + text.len() - body.len();
            if body.is_empty() || body.starts_with(['#', '-', '?', ':']) {
                return None;
            }
            if key(body).is_some() {
                // `- key: value`: a mapping whose keys are at the body's column.
                self.lines[self.at] = (column, body);
                items.push(self.mapping(column, depth + 1)?);
            } else {
                self.at += 1;
                items.push(self.value(n, body, depth, false)?);
            }
        }
        Some(Value::Array(items))
    }

    /// The value after `key:` (`rest`, with its leading spaces) or after `- `, on a line at
    /// `indent`; a nested collection on the following lines when `rest` is empty.
    fn value(&mut self, indent: usize, rest: &str, depth: usize, in_map: bool) -> Option<Value> {
        let body = rest.trim_start_matches(' ');
        if body.is_empty() || (body.starts_with('#') && body.len() < rest.len()) {
            return match self.lines.get(self.at) {
                Some(&(n, text)) if n > indent => {
                    if text.starts_with("- ") || text == "-" {
                        self.sequence(n, depth + 1)
                    } else {
                        self.mapping(n, depth + 1)
                    }
                }
                Some(&(n, text)) if in_map && n == indent && text.starts_with("- ") => {
                    self.sequence(n, depth + 1)
                }
                _ => {
                    self.count()?;
                    Some(Value::Null)
                }
            };
        }
        // A scalar that a more indented line would continue.
        if self.lines.get(self.at).is_some_and(|&(n, _)| n > indent) {
            return None;
        }
        self.count()?;
        let (value, after) = match body.as_bytes()[0] {
            b'[' => self.flow_sequence(&body[1..])?,
            b'"' | b'\'' => quoted(body)?,
            _ => return plain(uncommented(body)?, false),
        };
        end_of_line(after).then_some(value)
    }

    /// The items of a flow sequence after its `[`, and the text after its `]`.
    fn flow_sequence<'t>(&mut self, mut text: &'t str) -> Option<(Value, &'t str)> {
        let mut items = Vec::new();
        loop {
            text = text.trim_start_matches(' ');
            if items.is_empty() {
                if let Some(after) = text.strip_prefix(']') {
                    return Some((Value::Array(items), after));
                }
            }
            self.count()?;
            let (item, after) = match text.as_bytes().first()? {
                b'"' | b'\'' => quoted(text)?,
                _ => {
                    let end = text.find([',', ']'])?;
                    (
                        plain(text[..end].trim_end_matches(' '), true)?,
                        &text[end..],
                    )
                }
            };
            items.push(item);
            let after = after.trim_start_matches(' ');
            if let Some(after) = after.strip_prefix(']') {
                return Some((Value::Array(items), after));
            }
            text = after.strip_prefix(',')?;
            if text.trim_start_matches(' ').starts_with(']') {
                // A trailing comma: left to the parser.
                return None;
            }
        }
    }
}

/// A block plain scalar's text without a trailing comment and spaces, or `None` where `: ` or
/// a trailing `:` would make it a key.
fn uncommented(body: &str) -> Option<&str> {
    let bytes = body.as_bytes();
    let mut end = bytes.len();
    for i in 1..bytes.len() {
        match (bytes[i - 1], bytes[i]) {
            (b' ', b'#') => {
                end = i - 1;
                break;
            }
            (b':', b' ') => return None,
            _ => {}
        }
    }
    let text = body[..end].trim_end_matches(' ');
    (!text.ends_with(':')).then_some(text)
}

/// `key: rest` or `key:` (`rest` empty): a plain key that is a name, and the text after its `:`.
fn key(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if !bytes.first()?.is_ascii_alphanumeric() && bytes[0] != b'_' {
        return None;
    }
    let len = bytes
        .iter()
        .position(
            |&b| !matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b'-'),
        )
        .unwrap_or(bytes.len());
    let (key, after) = text.split_at(len);
    let rest = after.trim_start_matches(' ').strip_prefix(':')?;
    // The parser looks at most 1024 characters ahead for the `:` of a key (spaces included).
    if !(rest.is_empty() || rest.starts_with(' ')) || text.len() - rest.len() > 1000 {
        return None;
    }
    // A key serde-saphyr would type (`1000`, `true`, `null`) is compared by its value.
    plain_string(key).then_some((key, rest))
}

/// A quoted scalar at the start of `text` (no escapes, on this line), and the text after it.
fn quoted(text: &str) -> Option<(Value, &str)> {
    let quote = text.as_bytes()[0];
    let inner = &text[1..];
    if quote == b'"' {
        let end = inner.find(['"', '\\'])?;
        if inner.as_bytes()[end] != b'"' {
            return None;
        }
        return Some((Value::String(inner[..end].to_string()), &inner[end + 1..]));
    }
    // Single quotes: `''` is one quote.
    let mut value = String::new();
    let mut rest = inner;
    loop {
        let end = rest.find('\'')?;
        value.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix('\'') {
            Some(after) => {
                value.push('\'');
                rest = after;
            }
            None => return Some((Value::String(value), rest)),
        }
    }
}

/// Nothing but spaces and perhaps a comment after a value.
fn end_of_line(after: &str) -> bool {
    let trimmed = after.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < after.len())
}

/// A plain scalar's value, or `None` where it starts with an indicator, holds (in a flow
/// sequence) any of `:#[]{}'"`, or serde-saphyr must type it. A block scalar's text comes
/// through `uncommented`.
fn plain(text: &str, flow: bool) -> Option<Value> {
    let first = *text.as_bytes().first()?;
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) {
        let next = text.as_bytes().get(1).copied().unwrap_or(b' ');
        if first != b'-' || next == b' ' || (flow && b",[]{}".contains(&next)) {
            return None;
        }
    }
    if flow
        && text
            .bytes()
            .any(|b| matches!(b, b':' | b'#' | b'[' | b']' | b'{' | b'}' | b'\'' | b'"'))
    {
        return None;
    }
    scalar(text, ScalarStyle::Plain)
}
