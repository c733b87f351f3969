//! Diagnostics: what went wrong in a manifest, where, and how to show it.
//!
//! A [`Diagnostic`] carries its position as data (a byte span in the manifest and the document
//! path such as `apps[1].isolators.memory`); all wording about *where* lives in [`render`], all
//! wording about *what* in the message the producer chose. Rendering is rustc style through
//! annotate-snippets, without colour, so the same input always gives the same bytes.

pub mod codes;
pub mod output;

use std::fmt;
use std::ops::Range;

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

pub use crate::diag::codes::{Code, Severity};

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The registered code; its severity is the diagnostic's.
    pub code: &'static Code,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// The document path of the offending node (`apps[1].isolators.memory`), if known.
    pub path: Option<String>,
    /// Byte range of the offending text in the manifest, if known.
    pub span: Option<Range<usize>>,
    /// A short label under the caret (defaults to nothing).
    pub label: Option<String>,
    /// Extra lines (`= help: ...`).
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            path: None,
            span: None,
            label: None,
            help: None,
        }
    }

    pub fn at(mut self, path: impl fmt::Display, span: Option<Range<usize>>) -> Self {
        let path = path.to_string();
        self.path = if path.is_empty() { None } else { Some(path) };
        self.span = span;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity
    }

    pub fn is_error(&self) -> bool {
        self.code.severity == Severity::Error
    }
}

/// All problems found in one manifest, with what is needed to show them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The manifest's name as the user gave it (shown in `--> name:line:col`).
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The closing line: `error: pod.yaml: 2 errors, 1 warning found`, or `warning: ...` when
    /// there are only warnings.
    pub fn summary(&self) -> String {
        let (e, w) = (self.errors(), self.warnings());
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let counts = match (e, w) {
            (_, 0) => plural(e, "error"),
            (0, _) => plural(w, "warning"),
            _ => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
        };
        let level = if e > 0 { "error" } else { "warning" };
        format!("{level}: {}: {counts} found", self.file)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{}", render(&self.file, &self.source, d))?;
        }
        f.write_str(&self.summary())
    }
}

/// The known name closest to `name`, if one is close enough to be a likely misspelling or a
/// shortening: a name that differs only in case; else one at an edit distance (strsim's
/// Levenshtein) of 1; else one that `name` abbreviates (`db` for `database`, `mem` for
/// `memory`: see [`abbreviated`]); else the one at the smallest edit distance of at most 2, or
/// a quarter of its length for long names. An abbreviation comes before two slips: `db` is
/// two edits from `web` but plainly means `database`.
pub fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(k);
    }
    let within = |max: &dyn Fn(&str) -> usize| {
        known
            .iter()
            .map(|k| {
                (
                    strsim::levenshtein(name, k),
                    name.len().abs_diff(k.len()),
                    *k,
                )
            })
            .filter(|(d, _, k)| *d <= max(k))
            .min()
            .map(|(_, _, k)| k)
    };
    within(&|_| 1)
        .or_else(|| abbreviated(name, known))
        .or_else(|| within(&|k| 2.max(k.len() / 4)))
}

/// The known name `name` shortens, if it is plainly one: the shortest that starts with it, else
/// the only one that has its letters in order and begins with its first (`db` in `database`).
/// Ignores case; a single letter abbreviates nothing.
fn abbreviated<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    if name.chars().count() < 2 {
        return None;
    }
    let longer = || {
        known
            .iter()
            .copied()
            .filter(|k| k.chars().count() > name.chars().count())
    };
    let prefix = longer()
        .filter(|k| k.to_ascii_lowercase().starts_with(&name))
        .min_by_key(|k| (k.len(), *k));
    if prefix.is_some() {
        return prefix;
    }
    let in_order = |k: &str| {
        let k = k.to_ascii_lowercase();
        let mut rest = k.chars();
        k.chars().next() == name.chars().next() && name.chars().all(|c| rest.any(|x| x == c))
    };
    let mut hits = longer().filter(|k| in_order(k));
    match (hits.next(), hits.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders one diagnostic in rustc style. Only the lines the span touches are handed to the
/// renderer, so a huge manifest costs no more than a small one.
pub fn render(file: &str, source: &str, d: &Diagnostic) -> String {
    let mut elements = Vec::new();
    let mut located = String::new();
    if let Some(span) = &d.span {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        // Show at most the first line of a multi-line span.
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let end = end.min(line_end).max(start);
        let (line, _) = line_col(source, start);
        let text = &source[line_start..line_end];
        // An empty span (end of input) still gets one caret.
        let (s, e) = (start - line_start, end - line_start);
        let mut annotation = AnnotationKind::Primary.span(s..e.max(s));
        if let Some(label) = &d.label {
            annotation = annotation.label(label.as_str());
        }
        elements.push(
            Snippet::source(text)
                .line_start(line)
                .path(file)
                .annotation(annotation),
        );
    } else {
        located = format!(" (in {file})");
    }
    let title = format!("{}{}", d.message, located);
    let level = match d.severity() {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = level
        .primary_title(title.as_str())
        .id(d.code.code)
        .elements(elements);
    let path_note = d.path.as_ref().map(|p| format!("at `{p}`"));
    if let Some(p) = &path_note {
        group = group.element(Level::NOTE.message(p.as_str()));
    }
    if let Some(h) = &d.help {
        group = group.element(Level::HELP.message(h.as_str()));
    }
    Renderer::plain().render(&[group])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_case_but_not_strangers() {
        let known = ["memory", "cpu", "tasks", "cpuWeight"];
        assert_eq!(nearest("memroy", &known), Some("memory"));
        assert_eq!(nearest("cpuweight", &known), Some("cpuWeight"));
        assert_eq!(nearest("Memory", &known), Some("memory"));
        assert_eq!(nearest("network", &known), None);
    }

    /// #28: `after: [db]` in a pod of `database` and `web` suggested `web` (two edits away).
    #[test]
    fn nearest_takes_an_abbreviation_before_two_slips() {
        assert_eq!(nearest("db", &["web", "database"]), Some("database"));
        assert_eq!(
            nearest("mem", &["cpu", "memory", "memoryRequest"]),
            Some("memory")
        );
        // A slip of one letter still wins; an abbreviation must start like the name.
        assert_eq!(nearest("dbs", &["db", "database"]), Some("db"));
        assert_eq!(nearest("bd", &["database"]), None);
        // Two names it could shorten: neither.
        assert_eq!(nearest("dt", &["dictionary", "daemon-tasks"]), None);
        assert_eq!(nearest("d", &["database"]), None);
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = "a: é\nb: x\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, src.find('x').unwrap()), (2, 4));
        // After a two-byte character the column is in characters.
        assert_eq!(line_col(src, src.find('\n').unwrap()), (1, 5));
    }

    #[test]
    fn renders_file_line_column_caret_and_path() {
        let src = "podc: 1\nname: Web\n";
        let d = Diagnostic::new(crate::diag::codes::BAD_NAME, "bad name")
            .at("name", Some(14..17))
            .label("here");
        let out = render("pod.yaml", src, &d);
        assert!(out.starts_with("error[P0101]: bad name"), "{out}");
        assert!(out.contains("--> pod.yaml:2:7"), "{out}");
        assert!(out.contains("^^^ here"), "{out}");
        assert!(out.contains("at `name`"), "{out}");
    }
}
