//! The fuzz target's checks over its committed inputs, in every `cargo test`: each file of
//! `fuzz/seeds` (a minimized corpus) and `fuzz/regressions` (inputs that once failed) is
//! compiled as YAML and as TOML, exactly as `fuzz/fuzz_targets/compile.rs` does. Nothing may
//! panic, and every diagnostic must point at a position (`--> file:line:col`).

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use podc::lower::Install;
use podc::parse::Format;
use podc::resolve::Overrides;
use podc::Input;

/// The fuzz target ignores longer inputs.
const MAX_LEN: usize = 64 * 1024;

/// Regressions whose bug is still open: each must still fail, so that fixing the bug makes
/// this test say to take its name off the list (and the file becomes a plain regression).
/// Fixed: yaml-bare-cr-* (a lone CR is a YAML line break; syntax errors after one had no
/// position).
const OPEN: &[&str] = &[];

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// The fuzz target's checks on one input, as one format: the first failure, if any.
fn check(source: &str, format: Format, name: &str) -> Result<(), String> {
    let input = Input {
        display: name,
        file_name: name,
        source,
        format,
        workload: 0,
        side: podc::kube::import::Objects::none(),
    };
    let (pod, report) = podc::check_all(&input, Overrides::default());
    // Warnings point at a position too, and come only with a pod.
    if let Some(d) = report.diagnostics.iter().find(|d| d.span.is_none()) {
        return Err(format!(
            "{name}: a diagnostic without a position: {d:?}\n{report}"
        ));
    }
    match pod.ok_or(report) {
        Ok(pod) => {
            let install = Install {
                dir: format!("/var/lib/podc/{}", pod.name),
                podc: "/usr/bin/podc".into(),
            };
            if podc::generate(&pod, &install).is_empty() {
                return Err(format!("{name}: compiled to no files"));
            }
        }
        Err(report) => {
            let text = report.to_string();
            if report.diagnostics.is_empty() {
                return Err(format!("{name}: an error report without a diagnostic"));
            }
            if let Some(d) = report.diagnostics.iter().find(|d| d.span.is_none()) {
                return Err(format!(
                    "{name}: a diagnostic without a position: {d:?}\n{text}"
                ));
            }
            if !text.contains("-->") {
                return Err(format!("{name}: a report without `-->`:\n{text}"));
            }
        }
    }
    Ok(())
}

/// Runs one input through both formats; a panic counts as a failure.
fn run(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).unwrap();
    if bytes.len() > MAX_LEN {
        return Ok(());
    }
    let Ok(source) = std::str::from_utf8(&bytes) else {
        return Ok(());
    };
    for (format, name) in [(Format::Yaml, "pod.yaml"), (Format::Toml, "pod.toml")] {
        match panic::catch_unwind(AssertUnwindSafe(|| check(source, format, name))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                return Err(format!("{name}: panicked: {msg}"));
            }
        }
    }
    Ok(())
}

fn run_dir(dir: &str) {
    let mut failures = Vec::new();
    for path in files(dir) {
        let stem = path.file_name().unwrap().to_string_lossy().into_owned();
        let open = dir == "regressions" && OPEN.contains(&stem.as_str());
        match (run(&path), open) {
            (Ok(()), false) | (Err(_), true) => {}
            (Err(e), false) => failures.push(format!("fuzz/{dir}/{stem}: {e}")),
            (Ok(()), true) => failures.push(format!(
                "fuzz/{dir}/{stem} passes now: take it off OPEN in tests/fuzz_corpus.rs"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn seeds() {
    run_dir("seeds");
}

#[test]
fn regressions() {
    for name in OPEN {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(name);
        assert!(path.is_file(), "OPEN names a missing file: {name}");
    }
    run_dir("regressions");
}
