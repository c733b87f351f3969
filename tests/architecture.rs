//! The folders of `compiler/` are the architecture (ARCHITECTURE.md, "The house"): this test
//! reads every file's `use crate::…`, `use super::…` and inline `crate::…` paths (outside
//! comments and test modules), turns them into edges between files and holds them to the rules:
//! no import circle between files, no import that runs up the pipeline, nothing imports `cli/`,
//! `tree/` imports only `manifest/`, `systemd/` and `limits`, the launcher and the host commands
//! never import the compiler's stages, `parse/` never imports `kube/`. It also keeps functions
//! under 120 lines and files under 900.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each wing's rank along the pipeline: a file may import only wings of a lower rank, or files
/// of its own wing (without a circle).
const RANKS: &[(&str, u32)] = &[
    ("limits", 0),
    ("sys", 0),
    ("diag", 0),
    ("manifest", 1),
    ("systemd", 2),
    ("tree", 3),
    ("pod", 4),
    ("parse", 4),
    ("image", 4),
    ("resolve", 5),
    ("lower", 6),
    ("render", 7),
    ("emit", 8),
    ("kube", 8),
    ("launch", 8),
    ("host", 9),
    ("", 10), // lib.rs: the pipeline
    ("cli", 11),
    ("main", 12),
];

const MAX_FUNCTION_LINES: usize = 120;
const MAX_FILE_LINES: usize = 900;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler")
}

/// `compiler/a/b.rs` → `["a", "b"]`; `a/mod.rs` → `["a"]`; `lib.rs` → `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn files() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                // `x/tests.rs` is a test module (`#[cfg(test)] mod tests;`), not the code.
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(&root(), &mut all);
    all.into_iter()
        .map(|p| (module_of(p.strip_prefix(root()).unwrap()), p))
        .collect()
}

/// The code of a file without comments, string literals' contents and its test modules.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // The item that follows (a test module or function) is not the file's code.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if opened && depth <= 0 || !opened && l.trim_end().ends_with(';') {
                    break;
                }
            }
            continue;
        }
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = path.find('{') else {
        return vec![path];
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// A `use` declaration without its renames (`a::b as c` is an import of `a::b`).
fn without_renames(decl: &str) -> String {
    let mut out = String::new();
    let mut rest = decl;
    while let Some(i) = rest.find(" as ") {
        out.push_str(&rest[..i]);
        let after = rest[i + 4..].trim_start();
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every path a file names: its `use` declarations (expanded) and inline `crate::`/`super::`
/// paths.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some(rest) = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| t.strip_prefix(p))
        else {
            continue;
        };
        let mut decl = rest.to_string();
        while !decl.contains(';') {
            match lines.next() {
                Some(l) => decl.push_str(l),
                None => break,
            }
        }
        out.extend(expand(&without_renames(decl.split(';').next().unwrap())));
    }
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                out.push(tail[..end].trim_end_matches(':').to_string());
            }
            rest = &tail[start.len()..];
        }
    }
    out
}

/// The file a path names, as the longest module prefix that is a file of `compiler/`.
fn target(
    path: &str,
    from: &[String],
    is_dir_module: bool,
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split("::").map(|s| s.trim()).collect();
    let mut module: Vec<String> = match segments[0] {
        "crate" => Vec::new(),
        "super" | "self" => {
            let mut m = from.to_vec();
            // In `a/b.rs` (module a::b), `super` is `a`; in `a/mod.rs` (module a), it is the
            // crate root.
            let _ = is_dir_module;
            if segments[0] == "super" {
                m.pop();
            }
            m
        }
        first => {
            // A child module named without `self::` (`use source::Format` in parse/mod.rs).
            let mut m = from.to_vec();
            m.push(first.to_string());
            if modules.contains_key(&m) {
                m.pop();
                m
            } else {
                return None;
            }
        }
    };
    let mut segs = &segments[1..];
    if !matches!(segments[0], "crate" | "super" | "self") {
        segs = &segments[..];
    }
    while segs.first() == Some(&"super") {
        module.pop();
        segs = &segs[1..];
    }
    let mut best = module.clone();
    for s in segs {
        module.push(s.to_string());
        if modules.contains_key(&module) {
            best = module.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = files();
    let mut edges = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        let is_dir = path.ends_with("mod.rs") || path.ends_with("lib.rs");
        let mut to = BTreeSet::new();
        for p in paths(&code(&text)) {
            if let Some(t) = target(&p, module, is_dir, &modules) {
                if &t != module && !t.is_empty() || (t.is_empty() && !module.is_empty()) {
                    to.insert(t);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

fn rank(m: &[String]) -> u32 {
    let wing = m.first().map(String::as_str).unwrap_or("");
    RANKS
        .iter()
        .find(|(w, _)| *w == wing)
        .unwrap_or_else(|| panic!("compiler/{wing} has no rank in tests/architecture.rs"))
        .1
}

#[test]
fn imports_follow_the_pipeline() {
    let edges = graph();
    assert!(edges.len() > 40, "read only {} files", edges.len());
    let mut problems = Vec::new();
    for (from, tos) in &edges {
        let wing = from.first().map(String::as_str).unwrap_or("");
        for to in tos {
            let to_wing = to.first().map(String::as_str).unwrap_or("");
            let (f, t) = (name(from), name(to));
            if to_wing == "cli" && wing != "cli" && wing != "main" {
                problems.push(format!("{f} imports {t}: nothing imports cli/"));
            }
            if wing == "tree" && !["tree", "manifest", "systemd", "limits"].contains(&to_wing) {
                problems.push(format!(
                    "{f} imports {t}: tree/ imports only manifest, systemd and limits"
                ));
            }
            if ["launch", "host"].contains(&wing)
                && ["parse", "resolve", "lower", "render"].contains(&to_wing)
            {
                problems.push(format!("{f} imports {t}: the launcher and host commands never import the compiler's stages"));
            }
            if wing == "parse" && to_wing == "kube" {
                problems.push(format!("{f} imports {t}: parse/ never imports kube/"));
            }
            if wing != to_wing && rank(to) >= rank(from) {
                problems.push(format!("{f} imports {t}: an import up the pipeline"));
            }
        }
    }
    // Circles between files: a depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        circles: &mut Vec<String>,
    ) {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for to in edges.get(m).into_iter().flatten() {
            match state.get(to).copied().unwrap_or(0) {
                0 => visit(to, edges, state, stack, circles),
                1 => {
                    let at = stack.iter().position(|s| s == to).unwrap();
                    let names: Vec<String> = stack[at..].iter().map(|s| name(s)).collect();
                    circles.push(format!("circle: {} -> {}", names.join(" -> "), name(to)));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            visit(m, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    problems.extend(circles);
    let count: usize = edges.values().map(BTreeSet::len).sum();
    println!("{} files, {count} imports between them", edges.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rule test itself must see what it is meant to see.
#[test]
fn the_rule_reader_finds_imports() {
    assert_eq!(without_renames("crate::limits as l"), "crate::limits");
    assert_eq!(
        without_renames("std::fmt::{self, Write as _}"),
        "std::fmt::{self, Write}"
    );
    let text = "use crate::a::{b, c::{d, e}};\n// use crate::z;\nfn f() { crate::x::y(); }\n#[cfg(test)]\nmod tests {\n    use crate::t;\n}\n";
    let p = paths(&code(text));
    assert!(p.contains(&"crate::a::b".to_string()), "{p:?}");
    assert!(p.contains(&"crate::a::c::e".to_string()), "{p:?}");
    assert!(p.contains(&"crate::x::y".to_string()), "{p:?}");
    assert!(
        !p.iter().any(|p| p.contains('z') || p.contains("::t")),
        "{p:?}"
    );
    let edges = graph();
    let lower = edges
        .get(&vec!["lower".to_string()])
        .expect("compiler/lower");
    assert!(
        lower.contains(&vec!["pod".to_string()]),
        "lower imports pod: {lower:?}"
    );
}

/// Lines of every `fn` in `compiler/` (outside test modules), from its signature to its closing
/// brace at the same indentation.
fn functions() -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (module, path) in files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut in_tests = None;
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let indent = line.len() - t.len();
            if t.starts_with("mod tests") || t.starts_with("pub(crate) mod tests") {
                in_tests = Some(indent);
            }
            if let Some(ind) = in_tests {
                if t == "}" && indent == ind {
                    in_tests = None;
                }
                continue;
            }
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "const fn ",
                "pub const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn || t.ends_with(';') {
                continue;
            }
            let close = " ".repeat(indent) + "}";
            if let Some(len) = lines[i..].iter().position(|l| *l == close) {
                let sig = t.split_once("fn ").map_or(t, |(_, rest)| rest);
                let name = sig.split(['(', '<']).next().unwrap().to_string();
                out.push((format!("{}::{name}", name_of(&module)), len + 1));
            }
        }
    }
    out
}

fn name_of(m: &[String]) -> String {
    name(m)
}

#[test]
fn functions_and_files_stay_small() {
    let mut long: Vec<String> = functions()
        .into_iter()
        .filter(|(_, n)| *n > MAX_FUNCTION_LINES)
        .map(|(f, n)| format!("{f}: {n} lines (at most {MAX_FUNCTION_LINES})"))
        .collect();
    for (module, path) in files() {
        let n = std::fs::read_to_string(&path).unwrap().lines().count();
        if n > MAX_FILE_LINES {
            long.push(format!(
                "compiler/{}: {n} lines (at most {MAX_FILE_LINES})",
                name(&module)
            ));
        }
    }
    let mut all = functions();
    all.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!("longest functions:");
    for (f, n) in all.iter().take(8) {
        println!("  {n:4} {f}");
    }
    assert!(all.len() > 300, "found only {} functions", all.len());
    assert!(long.is_empty(), "{}", long.join("\n"));
}
