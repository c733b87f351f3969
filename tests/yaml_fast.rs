//! The fast YAML reader (`compiler/parse/yaml_fast.rs`) against serde-saphyr: wherever the fast
//! reader takes a document, serde-saphyr must read it to the very same value. Checked over
//! every YAML file the tests and the fuzzer keep, over the benchmark's manifests, and over
//! 100 000 generated documents full of scalars whose type is easy to get wrong.

#[path = "../benches/workload.rs"]
mod workload;

use std::path::Path;

use podc::parse::{fast_value, slow_value};

/// Checks one document with the fast reader; whether it was taken.
fn agree(source: &str, name: &str) -> bool {
    let Some(fast) = fast_value(source) else {
        return false;
    };
    match slow_value(source) {
        Ok(slow) => assert_eq!(
            fast, slow,
            "{name}: the fast reader's value differs from serde-saphyr's\n{source}"
        ),
        Err(e) => panic!("{name}: the fast reader took what serde-saphyr refuses ({e})\n{source}"),
    }
    true
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_kept_manifest_reads_the_same() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["tests", "examples", "fuzz/seeds", "fuzz/regressions"] {
        files(&root.join(dir), &mut paths);
    }
    let (mut total, mut fast) = (0, 0);
    for p in paths {
        let is_yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let in_fuzz = p.components().any(|c| c.as_os_str() == "fuzz");
        if !(is_yaml || in_fuzz) {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(&p) else {
            continue;
        };
        total += 1;
        if agree(&source, &p.display().to_string()) {
            fast += 1;
        }
    }
    for apps in [1, 10, 100] {
        let source = workload::pod("bench", apps);
        assert!(
            agree(&source, "workload"),
            "the benchmark's manifest must take the fast reader"
        );
    }
    eprintln!("{fast} of {total} kept documents took the fast reader");
    assert!(total > 100, "the corpus is missing ({total} documents)");
    assert!(
        fast * 3 > total,
        "the fast reader took only {fast} of {total} documents"
    );
}

/// Scalars whose YAML type is easy to get wrong, as they may be written plain.
const TRICKY: &[&str] = &[
    "0",
    "00",
    "01",
    "7",
    "08",
    "1000",
    "-1",
    "+1",
    "-0",
    "+0",
    "1.5",
    ".5",
    "5.",
    "1e3",
    "1E3",
    "-1e-3",
    "0x1f",
    "0X1F",
    "0o17",
    "0O17",
    "0b11",
    "1_000",
    "123456789012345678",
    "1234567890123456789",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "inf",
    ".inf",
    ".Inf",
    ".INF",
    "-.inf",
    "+.inf",
    ".nan",
    ".NaN",
    "-.nan",
    "nan",
    "NaN",
    "infinity",
    "true",
    "True",
    "TRUE",
    "tRUE",
    "false",
    "False",
    "FALSE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "NULL",
    "nULL",
    "~",
    "<<",
    "-",
    "--port",
    "-c",
    "a",
    "web",
    "250m",
    "64Mi",
    "1Gi",
    "0.5",
    "100%",
    "/bin/sh",
    "a b",
    "x:y",
    "é",
    "1:2",
    "12:30:00",
    "2001-12-14",
    "0777",
    "=",
    "!",
    "&",
    "*",
    "@",
    "`",
    "8Gi",
    "0.5Gi",
    ".5m",
    "1e",
    "e1",
    "0x",
    "0xg",
    "1.2.3",
    "+.5",
    "1__0",
    "0b102",
    ".",
    "..",
    "1-2",
    "-.5e-3",
    "+.INF",
    "0o8",
    "1f",
    "ff",
    "0xff",
    "1d",
    "1.0e+3",
    ".infinity",
    "1E",
    "1e+",
    "0e0",
    "0.",
    "-.",
    "+",
    "1ki",
];

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A scalar in one of YAML's styles (plain where it may be, else quoted).
fn scalar(r: &mut Rng) -> String {
    let t = TRICKY[r.below(TRICKY.len())];
    match r.below(4) {
        0 => format!("'{}'", t.replace('\'', "''")),
        1 => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
        // Plain where that is what the text would be; a few are syntax errors, which both
        // readers must refuse.
        _ => t.to_string(),
    }
}

/// A block node at `indent`, as the text after `key:` or `- ` (with its line break).
fn node(r: &mut Rng, indent: usize, depth: usize) -> String {
    let pad = " ".repeat(indent);
    match if depth > 3 { 0 } else { r.below(5) } {
        0 | 1 => format!(" {}\n", scalar(r)),
        2 => {
            // A block mapping.
            let mut s = "\n".to_string();
            for _ in 0..1 + r.below(3) {
                s += &format!("{pad}{}:{}", scalar(r), node(r, indent + 2, depth + 1));
            }
            s
        }
        3 => {
            // A block sequence.
            let mut s = "\n".to_string();
            for _ in 0..1 + r.below(3) {
                s += &format!("{pad}-{}", node(r, indent + 2, depth + 1));
            }
            s
        }
        _ => {
            // A flow sequence or mapping.
            let items: Vec<String> = (0..r.below(4)).map(|_| scalar(r)).collect();
            if r.below(2) == 0 {
                format!(" [{}]\n", items.join(", "))
            } else {
                let pairs: Vec<String> = items
                    .iter()
                    .map(|k| format!("{k}: {}", scalar(r)))
                    .collect();
                format!(" {{{}}}\n", pairs.join(", "))
            }
        }
    }
}

#[test]
fn generated_documents_read_the_same() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut fast, mut n) = (0, 100_000);
    while n > 0 {
        n -= 1;
        let mut doc = String::new();
        for _ in 0..1 + r.below(4) {
            doc += &format!("{}:{}", scalar(&mut r), node(&mut r, 2, 0));
        }
        if agree(&doc, "generated") {
            fast += 1;
        }
    }
    eprintln!("{fast} of 100000 generated documents took the fast reader");
    assert!(
        fast > 10_000,
        "the generator hardly reaches the fast reader"
    );
}

/// Keys, including some a careless reader would take as names.
const KEYS: &[&str] = &[
    "name", "image", "a", "x_y", "a.b", "a-b", "A1", "/p", "1", "true", "null", "-k", "k k",
    "\"q\"", "'s'", "<<", "k:", "_",
];

/// Values written in the ways people write them: spacing, comments, quotes, flow sequences.
fn layout_value(r: &mut Rng) -> String {
    let t = if r.below(3) == 0 {
        TRICKY[r.below(TRICKY.len())]
    } else {
        [
            "web",
            "/usr/bin/x",
            "64Mi",
            "a b",
            "x:y",
            "it's",
            "a#b",
            "--port",
        ][r.below(8)]
    };
    match r.below(12) {
        0 => format!("{t} # a comment"),
        1 => format!("{t}#not-a-comment"),
        2 => format!("{t}   "),
        3 => format!("'{}' # c", t.replace('\'', "''")),
        4 => format!("\"{t}\"x"),
        5 => {
            let items: Vec<String> = (0..r.below(4)).map(|_| scalar(r)).collect();
            let sep = [", ", ",", " , "][r.below(3)];
            let pad = [" ", ""][r.below(2)];
            format!(
                "[{pad}{}{pad}]{}",
                items.join(sep),
                [",", ""][r.below(4).min(1)]
            )
        }
        6 => format!("{t}: {t}"),
        7 => format!("{t} #"),
        _ => scalar(r),
    }
}

/// A block mapping at `indent`, one entry a line, in one of the layouts YAML allows (and a few
/// it does not).
fn layout_mapping(r: &mut Rng, indent: usize, step: usize, depth: usize, out: &mut String) {
    for _ in 0..1 + r.below(3) {
        let pad = " ".repeat(indent);
        if r.below(8) == 0 {
            out.push_str(&format!("{}# a comment\n", " ".repeat(r.below(6))));
        }
        if r.below(10) == 0 {
            out.push_str(&" ".repeat(r.below(3)));
            out.push('\n');
        }
        // Mostly names; now and then one that is not.
        let choices = if r.below(6) == 0 { KEYS.len() } else { 8 };
        let key = KEYS[r.below(choices)];
        let colon = [":", " :", ":"][r.below(3)];
        out.push_str(&format!("{pad}{key}{colon}"));
        match if depth > 3 { 0 } else { r.below(4) } {
            0 | 1 => out.push_str(&format!(" {}\n", layout_value(r))),
            2 => {
                out.push_str([" # c\n", "\n"][r.below(2)]);
                layout_mapping(r, indent + step, step, depth + 1, out);
            }
            _ => {
                out.push('\n');
                // Compact (dashes under the key) or indented.
                let at = if r.below(2) == 0 {
                    indent
                } else {
                    indent + step
                };
                layout_sequence(r, at, step, depth + 1, out);
            }
        }
    }
}

fn layout_sequence(r: &mut Rng, indent: usize, step: usize, depth: usize, out: &mut String) {
    for _ in 0..1 + r.below(3) {
        let pad = " ".repeat(indent);
        let dash = ["- ", "-  ", "- ", "- ", "- ", "-"][r.below(6)];
        out.push_str(&format!("{pad}{dash}"));
        match if depth > 3 { 0 } else { r.below(3) } {
            0 => out.push_str(&format!("{}\n", layout_value(r))),
            1 => {
                // `- key: value`, the mapping's keys at the first key's column.
                let mut inner = String::new();
                layout_mapping(r, indent + dash.len(), step, depth + 1, &mut inner);
                out.push_str(inner.trim_start_matches(' '));
            }
            _ => {
                out.push('\n');
                layout_mapping(r, indent + step, step, depth + 1, out);
            }
        }
    }
}

#[test]
fn generated_layouts_read_the_same() {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let (mut taken, n) = (0, 200_000);
    for _ in 0..n {
        let mut doc = String::new();
        let step = 1 + r.below(4);
        layout_mapping(&mut r, 0, step, 0, &mut doc);
        // Now and then a character that changes the structure.
        if r.below(6) == 0 && !doc.is_empty() {
            let at = r.below(doc.len());
            let end = (at + r.below(2)).min(doc.len());
            if doc.is_char_boundary(at) && doc.is_char_boundary(end) {
                let c = [" ", "\n", ":", "-", "#", "'", "\"", "[", "\t", ""][r.below(10)];
                doc.replace_range(at..end, c);
            }
        }
        if agree(&doc, "generated layout") {
            taken += 1;
        }
    }
    eprintln!("of {n} generated layouts {taken} took the fast reader");
    assert!(
        taken > 20_000,
        "the generator hardly reaches the fast reader ({taken})"
    );
}
