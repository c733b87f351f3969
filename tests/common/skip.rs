//! Skips that show. A test that cannot run here (a program is missing, it needs root, the host
//! is of another kind) says so through [`skip`] and returns; cargo still counts it as passed,
//! so every skip is recorded, and when the test binary exits one line per reason follows
//! cargo's `test result:` line, naming the tests that reason skipped. Without it a skip was
//! visible only with `--nocapture` (issue 28: 7 of 245 passing tests had not run).
//!
//! In CI (`CI` set) nothing may skip: there [`skip`] fails the test instead, naming what is
//! missing; `.ci/install` installs every program the tests run.
//!
//! The line is printed from an `atexit` handler: libtest has no hook after its summary, and it
//! ends the process with `exit` (on failure) or by returning from `main`, both of which run it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, Once};

/// What has been skipped in this test binary: (reason, test) pairs in the order they came.
static SKIPS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Whether this is CI, where every test must run (`.ci/run` sets nothing; CI sets `CI=true`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Records that the calling test (or the part of it named in `why`) does not run here, and
/// why: `why` names what is missing and where it comes from (`nft is missing (package
/// nftables)`). In CI it panics instead. The caller returns (or leaves the part out) after.
#[track_caller]
pub fn skip(why: &str) {
    let test = test_name();
    assert!(
        !in_ci(),
        "{test}: {why}; in CI every test must run (.ci/install installs what the tests use)"
    );
    eprintln!("skipping {test}: {why}");
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        extern "C" {
            fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: `report` is a plain function that lives as long as the process; atexit
        // only stores the pointer.
        let registered = unsafe { atexit(report) } == 0;
        assert!(registered, "atexit refused the skip summary");
    });
    let mut skips = SKIPS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = (why.to_string(), test);
    if !skips.contains(&entry) {
        skips.push(entry);
    }
}

/// The running test's name: libtest names the thread it runs a test on after the test; from
/// another thread, the place `skip` was called from.
#[track_caller]
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => std::panic::Location::caller().to_string(),
    }
}

/// The summary lines for `skips` ((reason, test) pairs) of the tests of `file`: one line per
/// reason, in the order the reasons first came, each naming its tests (the first ten, then how
/// many more). Empty when nothing was skipped.
pub fn summary(file: &str, skips: &[(String, String)]) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut tests: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (why, test) in skips {
        if !tests.contains_key(why.as_str()) {
            order.push(why);
        }
        tests.entry(why).or_default().push(test);
    }
    let mut out = String::new();
    for why in order {
        let names = &tests[why];
        let shown = names
            .iter()
            .take(10)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = match names.len() {
            n if n > 10 => format!(" and {} more", n - 10),
            _ => String::new(),
        };
        let count = match names.len() {
            1 => "1 test".to_string(),
            n => format!("{n} tests"),
        };
        out.push_str(&format!(
            "SKIPPED in {file} (counted as passed): {why}: {count}: {shown}{more}\n"
        ));
    }
    out
}

/// The test file this binary was built from, as cargo names it (`tests/kube.rs` for
/// `kube-0123abcd`).
fn this_file() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = stem.rsplit_once('-').map_or(stem.as_str(), |(n, _)| n);
    format!("tests/{name}.rs")
}

/// Prints the summary after libtest's own: at exit, so after its `test result:` line.
extern "C" fn report() {
    let skips = SKIPS.lock().unwrap_or_else(|e| e.into_inner());
    let text = summary(&this_file(), &skips);
    if !text.is_empty() {
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
