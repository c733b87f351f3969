//! The words of `exec` and `args` as arguments: a word is text, or `{expand: TEXT}` whose
//! `$(NAME)` references are the app's variables, as Kubernetes expands a container's command.
//! A variable the manifest writes is put in when the pod is built; one read at launch (from a
//! config item or secret) becomes a variable systemd puts in when it starts the app
//! (`${NAME}`), which it always has then (a missing file or key stops the launch); a name the
//! app has no variable of stays as written. What podc cannot tell when it builds (a name that
//! `environmentFrom` of keys read at launch may or may not give) is refused.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::*;
use crate::diag::codes;
use crate::manifest::expand::{pieces, Piece};
use crate::manifest::{self, config, EnvValue, ItemKind, Word};
use crate::pod::{Arg, Item, Part, Source};
use crate::systemd::escape;

/// The app's variables, as `$(NAME)` sees them.
pub(super) struct Vars<'a> {
    /// Values the manifest writes.
    text: BTreeMap<&'a str, &'a str>,
    /// Variables read at launch that the app always has: from a config item or secret of
    /// `environment`, or a key of a config item's text that `environmentFrom` takes.
    at_launch: BTreeSet<String>,
    /// `environmentFrom` items whose keys are read at launch: they may give any name.
    unknown: Vec<(ItemKind, &'a str)>,
}

impl<'a> Vars<'a> {
    pub(super) fn of(a: &'a manifest::App, items: &'a [Item]) -> Vars<'a> {
        let mut v = Vars {
            text: BTreeMap::new(),
            at_launch: BTreeSet::new(),
            unknown: Vec::new(),
        };
        // Only an `{expand}` word asks for them.
        let words = a.exec.iter().chain(&a.args).flatten();
        if !words.into_iter().any(|w| matches!(w, Word::Expand(_))) {
            return v;
        }
        for (k, value) in &a.environment {
            match value {
                EnvValue::Text(t) => {
                    v.text.insert(k, t);
                }
                EnvValue::From(_) => {
                    v.at_launch.insert(k.clone());
                }
            }
        }
        for e in &a.environment_from {
            let (kind, name) = match (&e.config, &e.secret) {
                (Some(n), None) => (ItemKind::Config, n),
                (None, Some(n)) => (ItemKind::Secret, n),
                // Its own error.
                _ => continue,
            };
            let prefix = e.prefix.as_deref().unwrap_or("");
            match items.iter().find(|i| i.kind == kind && &i.name == name) {
                Some(Item {
                    source: Source::Text(text),
                    ..
                }) => {
                    for (_, key, _) in config::env_lines(text) {
                        let var = format!("{prefix}{key}");
                        if escape::is_env_name(&var) && !v.text.contains_key(var.as_str()) {
                            v.at_launch.insert(var);
                        }
                    }
                }
                Some(_) => v.unknown.push((kind, name)),
                None => {}
            }
        }
        v
    }

    /// Whether the app names any variable (else no word can refer to one).
    fn any(&self) -> bool {
        !self.text.is_empty() || !self.at_launch.is_empty() || !self.unknown.is_empty()
    }
}

/// `words` (at `path`) as arguments; a reference podc cannot tell is reported.
pub(super) fn word_args(c: &mut Checker, path: &str, words: &[Word], vars: &Vars) -> Vec<Arg> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| word_arg(c, &crate::parse::source::join_index(path, i), w, vars))
        .collect()
}

fn word_arg(c: &mut Checker, path: &str, word: &Word, vars: &Vars) -> Arg {
    let text = match word {
        Word::Text(t) => return Arg::text(t.as_str()),
        Word::Expand(e) => &e.expand,
    };
    if !vars.any() {
        return Arg::text(expand_none(text));
    }
    let mut parts = Vec::new();
    for piece in pieces(text) {
        let name = match piece {
            Piece::Text(t) => {
                parts.push(Part::Text(t.to_string()));
                continue;
            }
            Piece::Ref(name) => name,
        };
        if let Some(value) = vars.text.get(name) {
            parts.push(Part::Text(value.to_string()));
        } else if vars.at_launch.contains(name) {
            parts.push(Part::Var(name.to_string()));
        } else if let (Some((kind, item)), true) = (vars.unknown.first(), escape::is_env_name(name))
        {
            c.value(
                codes::EXPAND_UNKNOWN,
                path,
                format!("`$({name})` may or may not be a variable of the app: its {kind} {} gives the variables of its keys, read at launch", show(item)),
            )
            .help = Some(format!(
                "give `{name}` a variable of its own (`environment` in podc, `env` on Kubernetes), or write `$$({name})` for the text itself"
            ));
        } else {
            // Kubernetes leaves a reference to a variable the container lacks as it is.
            parts.push(Part::Text(format!("$({name})")));
        }
    }
    Arg::from_parts(parts)
}

/// The text of an `{expand}` word of an app without variables: every reference as written.
fn expand_none(text: &str) -> String {
    pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_string(),
            Piece::Ref(n) => format!("$({n})"),
        })
        .collect()
}
