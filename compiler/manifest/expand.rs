//! `$(NAME)` references in an argument: the syntax of an `exec` or `args` word written
//! `{expand: TEXT}`, which is Kubernetes' syntax in a container's `command` and `args`.
//! `$(NAME)` refers to the app's variable NAME, `$$` is one `$`, and everything else (a lone
//! `$`, `$()`, an unclosed `$(`) is text as written.
//!
//! This is the syntax alone, one reader for the Kubernetes import, resolve and the launcher
//! (a plan's `image` step carries such words). What a reference becomes (the value, when it is
//! known at build; a variable systemd puts in when the app starts; the text itself, for a
//! variable the app does not have) is resolve's to decide.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// One word of `exec` or `args`.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum Word {
    /// Passed to the program as written.
    Text(String),
    /// Written with references to the app's variables, expanded as Kubernetes expands a
    /// container's command.
    Expand(Expand),
}

/// `{expand: TEXT}`: an argument with `$(NAME)` references.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expand {
    /// The argument, each `$(NAME)` of a variable of the app's `environment` replaced by its
    /// value (one read at launch, from a config item or secret, when the app starts); `$$` is
    /// `$`, and a `$(NAME)` the app does not define stays as written, as on Kubernetes. It
    /// stays one argument, whatever the values hold.
    pub expand: String,
}

impl Word {
    /// The word as written: its text, or the text to expand.
    pub fn text(&self) -> &str {
        match self {
            Word::Text(t) | Word::Expand(Expand { expand: t }) => t,
        }
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Word;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or {expand: TEXT} (TEXT with $(NAME) references)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Word, E> {
                Ok(Word::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Word, E> {
                Ok(Word::Text(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Word, A::Error> {
                Expand::deserialize(de::value::MapAccessDeserializer::new(map)).map(Word::Expand)
            }
        }
        d.deserialize_any(V)
    }
}

/// A piece of an argument written with references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// `$(NAME)`: its NAME (never empty, never with `)`).
    Ref(&'a str),
}

/// The pieces of `text`, in order.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let dollar = &rest[i..i + 1];
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Text(dollar));
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) if end > 0 => {
                    out.push(Piece::Ref(&inner[..end]));
                    rest = &inner[end + 1..];
                }
                // `$()` and an unclosed `$(` stay as written.
                _ => {
                    out.push(Piece::Text(&rest[i..i + 2]));
                    rest = inner;
                }
            }
        } else {
            out.push(Piece::Text(dollar));
            rest = after;
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// `text` written so that [`pieces`] gives it back as text alone: a `$` before `$` or `(` is
/// doubled.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '(')) {
            out.push('$');
        }
    }
    out
}

/// Text and references written back as [`pieces`] reads them: the text escaped (a `$` that
/// ends it before a reference too), each reference `$(NAME)`.
pub fn write<'a>(parts: impl IntoIterator<Item = Piece<'a>>) -> String {
    let mut out = String::new();
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut String, before_ref: bool| {
        out.push_str(&escape(text));
        if before_ref && text.ends_with('$') {
            out.push('$');
        }
        text.clear();
    };
    for p in parts {
        match p {
            Piece::Text(t) => text.push_str(t),
            Piece::Ref(name) => {
                flush(&mut text, &mut out, true);
                out.push_str("$(");
                out.push_str(name);
                out.push(')');
            }
        }
    }
    flush(&mut text, &mut out, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::{Ref, Text};

    fn text_of(p: &[Piece]) -> String {
        p.iter()
            .map(|p| match p {
                Text(t) => t.to_string(),
                Ref(n) => format!("<{n}>"),
            })
            .collect()
    }

    #[test]
    fn references_escapes_and_text_as_written() {
        let read = |s: &str| text_of(&pieces(s));
        assert_eq!(read("echo $(A) and $(B)x"), "echo <A> and <B>x");
        assert_eq!(read("$$(A) $$$$"), "$(A) $$");
        assert_eq!(read("$HOME ${X} $"), "$HOME ${X} $");
        assert_eq!(read("$( unclosed"), "$( unclosed");
        assert_eq!(read("$( a $(A)"), "< a $(A>");
        assert_eq!(read("$()"), "$()");
        assert_eq!(read("$(a b)"), "<a b>");
        assert_eq!(pieces(""), Vec::<Piece>::new());
        assert_eq!(pieces("$(A)$(B)"), [Ref("A"), Ref("B")]);
    }

    #[test]
    fn written_text_reads_back_as_itself() {
        for text in [
            "plain",
            "$(A)",
            "$$(A)",
            "$$",
            "$",
            "a $ b $$ c $( d $() e $(B)",
            "echo \"$HOME\" 100% ${X}",
            "$$$(",
        ] {
            let written = write([Text(text)]);
            assert_eq!(text_of(&pieces(&written)), text, "{written}");
        }
        let parts = [Text("$(x) "), Ref("A"), Text("$"), Ref("B")];
        assert_eq!(write(parts), "$$(x) $(A)$$$(B)");
        assert_eq!(text_of(&pieces(&write(parts))), "$(x) <A>$<B>");
        let parts = [Text("a$"), Text("("), Ref("A")];
        assert_eq!(text_of(&pieces(&write(parts))), "a$(<A>");
    }
}
