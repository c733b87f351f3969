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

/// The document as a JSON value (the parser's events into a value), or `None` where
/// serde-saphyr must read it.
pub fn read(source: &str) -> Option<Value> {
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
