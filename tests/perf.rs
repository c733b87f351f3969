//! A guard on the work `podc build` does per app: instructions counted by callgrind on a
//! release build (they hold under load, where wall time does not), against the figures in
//! `benches/instructions.txt`. More than 20% over a figure fails: find what grew, or, if the
//! growth is wanted, measure again and update the file in the same commit, saying why.
//!
//! It takes about 13 minutes on two cores (most of it the release build), so it is ignored by
//! the README's `cargo test` and run by `.ci/run`'s slow step (`cargo test --test perf --
//! --ignored`). Where valgrind is missing it is recorded as skipped (`tests/common/skip.rs`),
//! except in CI (`CI` set), where it fails.

#[path = "../benches/workload.rs"]
mod workload;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use workload::Shape;

/// How far over its figure a measurement may go.
const TOLERANCE: f64 = 1.20;

/// The release build of podc, brought up to date by cargo (a no-op when it is).
fn release_podc() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "podc"])
        .current_dir(root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the release build failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/podc")
}

/// The committed figures: `name value` lines, `#` comments.
fn figures() -> Vec<(String, u64)> {
    let text = include_str!("../benches/instructions.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.split_once(char::is_whitespace).expect("name value");
            (name.to_string(), value.trim().parse().expect("a number"))
        })
        .collect()
}

fn count(podc: &Path, manifests: &[PathBuf], out: &Path) -> u64 {
    let _ = std::fs::remove_dir_all(out);
    let mut cmd = Command::new(podc);
    cmd.arg("build").args(manifests).arg("-o").arg(out);
    workload::instructions(&cmd).expect("callgrind counts a successful build")
}

#[test]
#[ignore = "slow: a release build and callgrind, about 13 min; .ci/run runs it (cargo test --test perf -- --ignored)"]
fn instructions_per_app_do_not_regress() {
    if !workload::have_valgrind() {
        common::skip("valgrind is missing (package valgrind)");
        return;
    }
    let podc = release_podc();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let one = |shape: Shape, apps: usize| {
        let path = dir.path().join(format!("{}{apps}.yaml", shape.name()));
        std::fs::write(&path, workload::pod_of(shape, "bench", apps)).unwrap();
        count(&podc, &[path], &out)
    };
    let (i1, i100, i1000) = (
        one(Shape::Full, 1),
        one(Shape::Full, 100),
        one(Shape::Full, 1000),
    );
    let (s100, s1000) = (one(Shape::Small, 100), one(Shape::Small, 1000));
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    let manifests = workload::write_pods(Shape::Full, &many, 1000, 5);
    let i_many = count(&podc, &manifests, &out);
    let measured = [
        ("one-pod-per-app", (i1000 - i100) / 900),
        ("one-pod-per-small-app", (s1000 - s100) / 900),
        ("many-pods-per-app", (i_many - i1) / 4999),
    ];
    let mut failures = Vec::new();
    for (name, figure) in figures() {
        let (_, now) = measured
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| {
                panic!("benches/instructions.txt names {name}, which is not measured")
            });
        let ratio = *now as f64 / figure as f64;
        eprintln!("{name}: {now} instructions (figure {figure}, {ratio:.2}×)");
        if ratio > TOLERANCE {
            failures.push(format!("{name}: {now} is {ratio:.2}× the figure {figure}"));
        }
    }
    assert!(
        failures.is_empty(),
        "instructions per app grew: {failures:?}"
    );
}
