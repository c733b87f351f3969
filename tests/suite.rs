//! The test suite keeps its own promises (issue 28): a test that cannot run here is reported,
//! not silently counted as passed; every program the tests run is installed by `.ci/install`
//! (or is part of every Debian system) and named in the README; and the slow checks the
//! README's `cargo test` leaves out are run by `.ci/run`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const FROB: &str = "frobnicate is missing (package frob)";

/// Whether this process is the child `children` runs: the `child_*` tests skip only there, so
/// that `cargo test -- --include-ignored` does not report their made-up skips (or fail on them
/// in CI).
fn child() -> bool {
    std::env::var_os("PODC_SUITE_CHILD").is_some()
}

/// Run by `skips_are_summed_up_after_the_result_line` in a child of this binary.
#[test]
#[ignore = "a part of skips_are_summed_up_after_the_result_line, which runs it in a child"]
fn child_a_skips_twice_for_one_reason() {
    if !child() {
        return;
    }
    common::skip(FROB);
    common::skip(FROB);
}

/// Run by `skips_are_summed_up_after_the_result_line` in a child of this binary.
#[test]
#[ignore = "a part of skips_are_summed_up_after_the_result_line, which runs it in a child"]
fn child_b_skips_for_another_reason() {
    if !child() {
        return;
    }
    common::skip("not root");
}

/// Run by `skips_are_summed_up_after_the_result_line` in a child of this binary.
#[test]
#[ignore = "a part of skips_are_summed_up_after_the_result_line, which runs it in a child"]
fn child_c_skips_for_the_first_reason() {
    if !child() {
        return;
    }
    assert!(!common::program("frobnicate", "frob"));
}

/// The three `child_*` tests, in a child of this binary, one at a time (so in name order).
fn children(ci: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "--test-threads=1",
        "child_a_skips_twice_for_one_reason",
        "child_b_skips_for_another_reason",
        "child_c_skips_for_the_first_reason",
    ]);
    cmd.env("PODC_SUITE_CHILD", "1").env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    cmd.output().unwrap()
}

/// A skipped test passes, but the binary's output ends, after its `test result:` line, with one
/// line per reason naming the tests it skipped (one test skipping twice for one reason counts
/// once); in CI the same tests fail, naming what is missing, and nothing is summed up.
#[test]
fn skips_are_summed_up_after_the_result_line() {
    let o = children(false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let tail = out
        .split_once("test result: ok. 3 passed; 0 failed;")
        .unwrap_or_else(|| panic!("{out}"))
        .1;
    let lines: Vec<&str> = tail.lines().filter(|l| l.starts_with("SKIPPED")).collect();
    assert_eq!(
        lines,
        [
            format!(
                "SKIPPED in tests/suite.rs (counted as passed): {FROB}: 2 tests: \
                 child_a_skips_twice_for_one_reason, child_c_skips_for_the_first_reason"
            ),
            "SKIPPED in tests/suite.rs (counted as passed): not root: 1 test: \
             child_b_skips_for_another_reason"
                .to_string(),
        ],
        "{out}"
    );

    let o = children(true);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(101), "{out}");
    assert!(
        out.contains("test result: FAILED. 0 passed; 3 failed;"),
        "{out}"
    );
    for test in [
        "child_a_skips_twice_for_one_reason",
        "child_c_skips_for_the_first_reason",
    ] {
        assert!(
            out.contains(&format!("{test}: {FROB}; in CI every test must run")),
            "{out}"
        );
    }
    assert!(!out.contains("SKIPPED"), "{out}");
}

/// Many tests skipped for one reason: the first ten are named, then how many more.
#[test]
fn a_long_summary_names_ten_tests_and_counts_the_rest() {
    let skips: Vec<(String, String)> = (0..13)
        .map(|i| ("not root".to_string(), format!("t{i:02}")))
        .collect();
    assert_eq!(
        common::skip::summary("tests/x.rs", &skips),
        "SKIPPED in tests/x.rs (counted as passed): not root: 13 tests: \
         t00, t01, t02, t03, t04, t05, t06, t07, t08, t09 and 3 more\n"
    );
    assert_eq!(common::skip::summary("tests/x.rs", &[]), "");
}

/// The test sources: `tests/*.rs`, `tests/common/*.rs` and what perf.rs includes.
fn sources() -> Vec<(PathBuf, String)> {
    let root = common::root();
    let mut paths = vec![root.join("benches/workload.rs")];
    for dir in ["tests", "tests/common"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

fn short(path: &Path) -> String {
    path.strip_prefix(common::root())
        .unwrap()
        .display()
        .to_string()
}

/// Every skip goes through `common::skip` (directly or through `common::tool`, `program`,
/// `as_root`): no test decides on its own to print "skipping" and pass, or reads `CI` itself.
#[test]
fn every_skip_goes_through_the_common_helper() {
    let mut bad = Vec::new();
    for (path, text) in sources() {
        if path.ends_with("common/skip.rs") || path.ends_with("suite.rs") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let l = line.to_lowercase();
            let prints_skip = l.contains("eprintln!(\"skip") || l.contains("println!(\"skip");
            let reads_ci = line.contains("var_os(\"CI\")") || line.contains("var(\"CI\")");
            if prints_skip || reads_ci {
                bad.push(format!("{}:{}: {}", short(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "skips that bypass tests/common/skip.rs:\n{}",
        bad.join("\n")
    );
}

/// The string literals of `text` that follow `before` directly (`Command::new("` …), up to
/// their closing quote.
fn literals_after<'a>(text: &'a str, before: &str) -> Vec<&'a str> {
    text.match_indices(before)
        .filter_map(|(i, _)| {
            let rest = &text[i + before.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The programs a test source runs or looks for: `Command::new("…")`, `tool("…"`,
/// `program("…"`, `on_path("…")`, and the first names of `("program", "package")` pairs in a
/// `for (tool, package) in [...]` list. A path counts by its file name (`/bin/sh` is `sh`).
fn programs(text: &str) -> BTreeSet<String> {
    let mut found: Vec<&str> = Vec::new();
    for before in ["Command::new(\"", "tool(\"", "program(\"", "on_path(\""] {
        found.extend(literals_after(text, before));
    }
    for (i, _) in text.match_indices("for (tool, package) in [") {
        let list = &text[i..];
        let list = &list[..list.find("] {").unwrap_or(list.len())];
        found.extend(literals_after(list, "(\""));
    }
    found
        .into_iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect()
}

/// What `.ci/install` knows: the programs of its `need` lines and of its `if ! …; then` checks
/// (installed from elsewhere), and those on its `# essential:` line.
fn installed() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(common::root().join(".ci/install")).unwrap();
    let mut need = BTreeSet::new();
    let mut essential = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["need", program, _package] => {
                need.insert(program.to_string());
            }
            ["#", "essential:", programs @ ..] => {
                essential.extend(programs.iter().map(|p| p.to_string()));
            }
            _ => {}
        }
        // `if ! PROGRAM --version …; then` or `if ! type -P PROGRAM …; then`: installed
        // otherwise than from Debian.
        match words.as_slice() {
            ["if", "!", "type", "-P", program, ..] | ["if", "!", program, "--version", ..] => {
                need.insert(program.to_string());
            }
            _ => {}
        }
    }
    (need, essential)
}

/// The README's part for developers.
fn developing() -> String {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let from = readme
        .find("\n## Developing podc\n")
        .expect("the README has a Developing podc section");
    let rest = &readme[from + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

/// Every program a test runs is installed by `.ci/install` or is part of every Debian system,
/// and the README's part for developers names it (in backquotes) beside `.ci/install`.
#[test]
fn every_program_the_tests_run_is_installed_and_named_in_the_readme() {
    let (need, essential) = installed();
    assert!(
        need.contains("systemd-analyze") && need.contains("kubernetes-validate"),
        "{need:?}"
    );
    let readme = developing();
    assert!(readme.contains("`.ci/install`"), "{readme}");
    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for (path, text) in sources() {
        if path.ends_with("suite.rs") {
            continue;
        }
        for p in programs(&text) {
            if !need.contains(&p) && !essential.contains(&p) {
                missing.push(format!("{}: {p} is not in .ci/install", short(&path)));
            }
            used.insert(p);
        }
    }
    assert!(used.len() > 20, "the scan found only {used:?}");
    for p in used.iter().chain(&need) {
        if !readme.contains(&format!("`{p}`")) {
            missing.push(format!("README.md, Developing podc: `{p}` is not named"));
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The reasons of the `#[ignore = "…"]` attributes of a source, with their line numbers; a
/// bare `#[ignore]` has the reason "".
fn ignores(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(n, l)| {
            let l = l.trim();
            let reason = l.strip_prefix("#[ignore")?;
            let reason = reason.trim_start_matches(" = \"").trim_end_matches("\"]");
            Some((n + 1, reason.trim_end_matches(']').to_string()))
        })
        .collect()
}

/// The slow, machine-level checks are `#[ignore]`d with a reason that starts "slow:", so the
/// README's `cargo test` lists them as ignored and says why; `.ci/run` runs exactly their files
/// with `--ignored` after the README's command, and the README names each. Every ignore says
/// why.
#[test]
fn slow_checks_are_ignored_by_cargo_test_and_run_by_ci() {
    let mut slow = BTreeSet::new();
    let mut bare = Vec::new();
    for (path, text) in sources() {
        for (n, reason) in ignores(&text) {
            if reason.is_empty() {
                bare.push(format!("{}:{n}", short(&path)));
            }
            if reason.starts_with("slow:") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                slow.insert(name);
            }
        }
    }
    assert!(bare.is_empty(), "#[ignore] without a reason: {bare:?}");
    assert!(!slow.is_empty(), "no slow check is left out of cargo test");

    let run = std::fs::read_to_string(common::root().join(".ci/run")).unwrap();
    let lines: Vec<&str> = run.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(lines.contains(&".ci/install"), "{run}");
    let readme_step = lines
        .iter()
        .position(|l| *l == "cargo test --locked")
        .expect(".ci/run runs the README's cargo test");
    let slow_step = lines
        .iter()
        .position(|l| {
            l.starts_with("cargo test") && l.contains(" -- ") && l.ends_with(" --ignored")
        })
        .expect(".ci/run has a step for the ignored slow checks");
    assert!(readme_step < slow_step, "{run}");
    let step = lines[slow_step];
    let ran: BTreeSet<String> = step
        .split(" --test ")
        .skip(1)
        .map(|w| w.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(ran, slow, ".ci/run's slow step: {step}");

    let readme = developing();
    for name in &slow {
        assert!(
            readme.contains(&format!("`tests/{name}.rs`")),
            "the README does not say that cargo test leaves tests/{name}.rs out"
        );
    }
    let command = step.replace(" --locked", "");
    assert!(
        readme.contains(&format!("`{command}`")),
        "the README does not say how to run the slow checks: `{command}`"
    );
}
