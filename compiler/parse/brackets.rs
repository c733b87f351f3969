//! The bracket a syntax error comes from: a `[` or `{` that is never closed.
//!
//! A YAML or TOML reader that meets an unclosed list notices only lines later, where the next
//! key no longer fits (`illegal placement of ':' indicator`, `missing comma between array
//! elements`), and points there (#28). After such an error, [`unclosed`] reads the text once
//! more, as a rough scanner that knows quotes, comments, block scalars and where a node
//! starts, and finds the bracket. It only ever adds where to look; where it is unsure (an
//! anchor or a tag before the bracket, say) it finds nothing, and the reader's error stands.

use crate::parse::Format;

/// The outermost `[` or `{` of `source` that is never closed, as its byte offset and the
/// bracket, if there is one.
pub(super) fn unclosed(source: &str, format: Format) -> Option<(usize, char)> {
    let open = match format {
        Format::Yaml => yaml(source),
        Format::Toml => toml(source),
    };
    open.first().copied()
}

/// Whether `close` closes `open`.
fn closes(open: char, close: char) -> bool {
    matches!((open, close), ('[', ']') | ('{', '}'))
}

/// The brackets of a YAML text still open at its end, outermost first.
fn yaml(source: &str) -> Vec<(usize, char)> {
    let mut stack: Vec<(usize, char)> = Vec::new();
    // A block scalar's content: lines indented deeper than this (the indicator's line).
    let mut block_indent: Option<usize> = None;
    // Inside a quoted scalar (which may span lines): its quote.
    let mut quote: Option<char> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(deeper) = block_indent {
            if line.trim().is_empty() || indent > deeper {
                continue;
            }
            block_indent = None;
        }
        // Whether the next character begins a node (where a quote or a bracket means one).
        let mut node_start = quote.is_none();
        let mut chars = line.char_indices().peekable();
        let mut previous = ' ';
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map_or('\n', |&(_, n)| n);
            if let Some(q) = quote {
                match c {
                    '\\' if q == '"' => {
                        chars.next();
                    }
                    '\'' if q == '\'' && next == '\'' => {
                        chars.next();
                    }
                    c if c == q => quote = None,
                    _ => {}
                }
                previous = c;
                continue;
            }
            match c {
                '#' if previous.is_whitespace() => break,
                ' ' | '\t' | '\r' | '\n' => {}
                '"' | '\'' if node_start => {
                    quote = Some(c);
                    node_start = false;
                }
                '[' | '{' if node_start => {
                    stack.push((start + i, c));
                }
                ']' | '}' if !stack.is_empty() => {
                    if closes(stack[stack.len() - 1].1, c) {
                        stack.pop();
                    }
                    node_start = false;
                }
                ',' if !stack.is_empty() => node_start = true,
                ':' | '?' | '-' if next.is_whitespace() => node_start = true,
                '|' | '>' if node_start && stack.is_empty() => {
                    block_indent = Some(indent);
                    break;
                }
                _ => {
                    // A plain scalar; in a flow collection it ends at the next indicator.
                    if !node_start {
                        previous = c;
                        continue;
                    }
                    node_start = false;
                    if stack.is_empty() {
                        // In block context it runs to `: `, ` #` or the end of the line.
                        while let Some(&(_, n)) = chars.peek() {
                            let after = chars.clone().nth(1).map_or('\n', |(_, a)| a);
                            if (n == ':' && after.is_whitespace()) || n == '#' && previous == ' ' {
                                break;
                            }
                            previous = n;
                            chars.next();
                        }
                        continue;
                    }
                }
            }
            previous = c;
        }
    }
    stack
}

/// The brackets of a TOML text still open at its end, outermost first.
fn toml(source: &str) -> Vec<(usize, char)> {
    let mut stack: Vec<(usize, char)> = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &source[i..];
        match c {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i += rest.find('\n').unwrap_or(rest.len());
                continue;
            }
            // A table header (`[a]`, `[[a]]`) fills its line.
            b'[' if line_start && stack.is_empty() => {
                i += rest.find('\n').unwrap_or(rest.len());
                continue;
            }
            b'"' | b'\'' => {
                let q = c as char;
                let triple: String = [q; 3].iter().collect();
                let end = if rest.starts_with(&triple) {
                    rest[3..].find(&triple).map(|e| e + 6)
                } else {
                    let mut escaped = false;
                    rest.char_indices().skip(1).find_map(|(j, x)| {
                        let hit = x == q && !escaped;
                        escaped = q == '"' && x == '\\' && !escaped;
                        (hit || x == '\n').then_some(j + 1)
                    })
                };
                i += end.unwrap_or(rest.len());
            }
            b'[' | b'{' => {
                stack.push((i, c as char));
                i += 1;
            }
            b']' | b'}' => {
                if stack
                    .last()
                    .is_some_and(|&(_, open)| closes(open, c as char))
                {
                    stack.pop();
                }
                i += 1;
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
        line_start = false;
    }
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_at(text: &str) -> Option<(usize, usize, char)> {
        unclosed(text, Format::Yaml).map(|(o, c)| {
            let (l, col) = crate::diag::line_col(text, o);
            (l, col, c)
        })
    }

    #[test]
    fn an_unclosed_flow_list_is_found_in_yaml() {
        let text = "a:\n  - b: [\"x\", 'it''s', y\n    c: d\n";
        assert_eq!(yaml_at(text), Some((2, 8, '[')));
        assert_eq!(yaml_at("a: {b: [1, 2], c: 3\nd: 4\n"), Some((1, 4, '{')));
    }

    #[test]
    fn brackets_that_are_not_flow_collections_are_not_found() {
        for text in [
            "a: [1,\n  2]\nb: x\n",
            "a: it's [not a list\nb: \"[quoted\"\n",
            "a: x # [comment\n",
            "a: |\n  [block\n  text\nb: 1\n",
            "a: 'one [' \n",
            "a: [\"]\", '[', \"\\\"[\"]\n",
            "a: b:c[d\n",
        ] {
            assert_eq!(yaml_at(text), None, "{text}");
        }
    }

    #[test]
    fn an_unclosed_array_is_found_in_toml() {
        let text = "a = 1\n[[apps]]\nexec = [\"x\", \"]\"\nname = 'y'\n";
        assert_eq!(unclosed(text, Format::Toml), Some((22, '[')));
        for closed in [
            "a = [1,\n 2]\n[t]\nb = \"[\"\n",
            "a = '''\n[\n'''\n# [\nb = { c = [1] }\n",
        ] {
            assert_eq!(unclosed(closed, Format::Toml), None, "{closed}");
        }
    }
}
