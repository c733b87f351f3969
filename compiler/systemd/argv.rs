//! One argument of a command line as systemd passes it to the program: text, and variables of
//! the unit's environment that systemd puts in when it starts the program. systemd.service(5),
//! "Command lines": `${NAME}`, alone or as part of a word, is replaced by the variable's value
//! as it is, "always resulting in exactly a single argument"; the value is not read again, so
//! `$`, `%`, blanks and quotes in it stay as they are. [`super::escape::exec_line`] writes
//! these, [`super::escape::decode_args`] reads them back.

use crate::manifest::expand::{pieces, write, Piece};

/// A piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A variable of the unit's environment (a name `is_env_name` takes), `${NAME}`.
    Var(String),
}

/// An argument: its parts, a text never beside another, never empty unless it is the only
/// part (the empty argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg(Vec<Part>);

impl Arg {
    /// An argument of text alone.
    pub fn text(text: impl Into<String>) -> Arg {
        Arg(vec![Part::Text(text.into())])
    }

    /// An argument of these parts (texts side by side joined, empty ones left out).
    pub fn from_parts(parts: impl IntoIterator<Item = Part>) -> Arg {
        let mut out: Vec<Part> = Vec::new();
        for p in parts {
            match (p, out.last_mut()) {
                (Part::Text(t), _) if t.is_empty() => {}
                (Part::Text(t), Some(Part::Text(last))) => last.push_str(&t),
                (p, _) => out.push(p),
            }
        }
        if out.is_empty() {
            out.push(Part::Text(String::new()));
        }
        Arg(out)
    }

    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    /// Its text, when it has no variable.
    pub fn as_text(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The variables it names, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Var(n) => Some(n.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The bytes of its text (without the variables' values, which are known at launch).
    pub fn text_len(&self) -> usize {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Var(_) => 0,
            })
            .sum()
    }

    /// Whether its text holds `c`.
    pub fn text_contains(&self, c: char) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.contains(c)))
    }
}

impl From<&str> for Arg {
    fn from(text: &str) -> Arg {
        Arg::text(text)
    }
}

/// Arguments of text alone.
pub fn texts<S: AsRef<str>>(words: &[S]) -> Vec<Arg> {
    words.iter().map(|w| Arg::text(w.as_ref())).collect()
}

/// Words of a mount plan's `image` step (`exec`, `args`) as arguments: as they are without
/// `expand`, else read as Kubernetes writes a command, `$(NAME)` of a name of `expand` the
/// variable.
pub fn words_args(words: &[String], expand: &[String]) -> Vec<Arg> {
    if expand.is_empty() {
        return texts(words);
    }
    words
        .iter()
        .map(|w| {
            Arg::from_parts(pieces(w).into_iter().map(|p| match p {
                Piece::Ref(n) if expand.iter().any(|e| e == n) => Part::Var(n.to_string()),
                Piece::Ref(n) => Part::Text(format!("$({n})")),
                Piece::Text(t) => Part::Text(t.to_string()),
            }))
        })
        .collect()
}

/// Arguments as a plan's words, and the variables they name (sorted): words as [`words_args`]
/// reads them back.
pub fn args_words(argv: &[Arg]) -> (Vec<String>, Vec<String>) {
    let mut expand: Vec<String> = argv.iter().flat_map(Arg::vars).map(String::from).collect();
    expand.sort();
    expand.dedup();
    let words = argv
        .iter()
        .map(|a| match a.as_text() {
            Some(t) if expand.is_empty() => t.to_string(),
            _ => write(a.parts().iter().map(|p| match p {
                Part::Text(t) => Piece::Text(t),
                Part::Var(n) => Piece::Ref(n),
            })),
        })
        .collect();
    (words, expand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_kept_in_one_form() {
        let a = Arg::from_parts([
            Part::Text("a".into()),
            Part::Text(String::new()),
            Part::Text("b".into()),
            Part::Var("X".into()),
            Part::Text(String::new()),
        ]);
        assert_eq!(a.parts(), [Part::Text("ab".into()), Part::Var("X".into())]);
        assert_eq!(a.as_text(), None);
        assert_eq!(a.vars().collect::<Vec<_>>(), ["X"]);
        assert_eq!(a.text_len(), 2);
        assert_eq!(Arg::from_parts([]).as_text(), Some(""));
        assert_eq!(Arg::text("x y").as_text(), Some("x y"));
    }
}
