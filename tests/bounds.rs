//! Resource bounds: hostile sizes and shapes are built or refused with a clear, located error,
//! within a bounded time and under a bounded address space (1 GiB, set with prlimit).
//! The bounds themselves are in compiler/limits.rs and in serde-saphyr's default budget.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `podc check FILE` with at most 1 GiB of address space; returns (exit code, stderr, time).
fn check(path: &Path) -> (i32, String, Duration) {
    let start = Instant::now();
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("prlimit");
        c.arg("--as=1073741824").arg(env!("CARGO_BIN_EXE_podc"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_podc"))
    };
    let o = cmd.arg("check").arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code().unwrap_or(-1), stderr, start.elapsed())
}

struct Case {
    name: &'static str,
    text: String,
    /// Expected exit status and a piece of the first error (empty: none expected).
    code: i32,
    error: &'static str,
    within: Duration,
}

/// One app whose command has `n` arguments of `len` bytes after the program.
fn many_args(n: usize, len: usize) -> String {
    let arg = format!("\"{}\"", "y".repeat(len));
    format!(
        "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/true, {}]\n",
        vec![arg; n].join(", ")
    )
}

fn apps(n: usize, chain: bool) -> String {
    let mut s = String::from("podc: 1\nname: big\napps:\n");
    for i in 0..n {
        let _ = write!(s, "  - name: a{i}\n    image: /i\n    exec: [/bin/true]\n");
        if chain && i > 0 {
            let _ = writeln!(s, "    after: [a{}]", i - 1);
        }
    }
    s
}

#[test]
fn hostile_sizes_are_bounded() {
    let long = |n: usize| {
        format!(
            "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/true, \"{}\"]\n",
            "y".repeat(n)
        )
    };
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        let _ = writeln!(bomb, "a{i}: &a{i} [{refs}]");
    }
    let mut deep = String::new();
    for i in 0..3000 {
        let _ = writeln!(deep, "{}a:", " ".repeat(i));
    }
    let cases = vec![
        Case {
            name: "100MB.yaml",
            text: format!("podc: 1\nname: p\n# {}\napps: []\n", "x".repeat(100 << 20)),
            code: 1,
            error: "larger than 16 MiB",
            within: Duration::from_secs(5),
        },
        Case {
            name: "line-1MiB.yaml",
            text: long(1 << 20),
            code: 1,
            error: "too long for a unit file",
            within: Duration::from_secs(10),
        },
        // The kernel's MAX_ARG_STRLEN: 128 KiB per string, its NUL included.
        Case {
            name: "arg-128KiB.yaml",
            text: long(128 << 10),
            code: 1,
            error: "at most 131071 bytes per argument (MAX_ARG_STRLEN)",
            within: Duration::from_secs(10),
        },
        Case {
            name: "arg-128KiB-less-1.yaml",
            text: long((128 << 10) - 1),
            code: 0,
            error: "",
            within: Duration::from_secs(10),
        },
        Case {
            name: "env-128KiB.yaml",
            text: format!(
                "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/true]\n    environment: {{V: \"{}\"}}\n",
                "y".repeat((128 << 10) - 2)
            ),
            code: 1,
            error: "per environment entry (MAX_ARG_STRLEN)",
            within: Duration::from_secs(10),
        },
        // All arguments and the environment together: at most 1 MiB.
        Case {
            name: "args-9x120KiB.yaml",
            text: many_args(9, 120 << 10),
            code: 1,
            error: "arguments and environment take",
            within: Duration::from_secs(10),
        },
        Case {
            name: "args-8x120KiB.yaml",
            text: many_args(8, 120 << 10),
            code: 0,
            error: "",
            within: Duration::from_secs(10),
        },
        Case {
            name: "apps-100000.yaml",
            text: apps(100_000, false),
            code: 1,
            error: "limit of podc's YAML reader (nodes",
            within: Duration::from_secs(60),
        },
        // A Kubernetes file of many documents: refused past 100, and one of 100 pods of
        // 80 KB each (8 MiB) is read in a pass per pod, within bounds.
        Case {
            name: "documents-101.yaml",
            text: (0..101)
                .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"))
                .collect::<Vec<_>>()
                .join("---\n"),
            code: 1,
            error: "this file has 101 documents; podc reads at most 100",
            within: Duration::from_secs(10),
        },
        Case {
            name: "pods-100x80KB.yaml",
            text: (0..100)
                .map(|i| format!(
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  annotations: {{pad: {}}}\nspec:\n  containers:\n  - name: a\n    image: registry.example/a@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945\n",
                    "x".repeat(80_000)
                ))
                .collect::<Vec<_>>()
                .join("---\n"),
            code: 0,
            error: "",
            within: Duration::from_secs(60),
        },
        Case {
            name: "apps-1001.yaml",
            text: apps(1001, false),
            code: 1,
            error: "at most 1000 apps",
            within: Duration::from_secs(20),
        },
        Case {
            name: "apps-1000-chained.yaml",
            text: apps(1000, true),
            code: 0,
            error: "",
            within: Duration::from_secs(20),
        },
        Case {
            name: "alias-bomb.yaml",
            text: bomb,
            code: 1,
            error: "limit of podc's YAML reader",
            within: Duration::from_secs(20),
        },
        Case {
            name: "deep-block.yaml",
            text: deep,
            code: 1,
            error: "limit of podc's YAML reader (depth",
            within: Duration::from_secs(5),
        },
        Case {
            name: "deep-flow.yaml",
            text: format!(
                "podc: 1\nname: x\napps: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            code: 1,
            error: "",
            within: Duration::from_secs(5),
        },
        Case {
            name: "deep-array.toml",
            text: format!(
                "podc = 1\nannotations = {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            code: 1,
            error: "recurse",
            within: Duration::from_secs(5),
        },
        Case {
            name: "deep-table.toml",
            text: format!("x = {}1{}\n", "{a=".repeat(50_000), "}".repeat(50_000)),
            code: 1,
            error: "recurse",
            within: Duration::from_secs(5),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    for case in cases {
        let path = dir.path().join(case.name);
        fs::write(&path, &case.text).unwrap();
        let (code, stderr, took) = check(&path);
        eprintln!("{}: exit {code} in {took:?}", case.name);
        assert_eq!(code, case.code, "{}: {stderr}", case.name);
        assert!(took < case.within, "{} took {took:?}", case.name);
        if case.code == 1 {
            assert!(stderr.contains(case.error), "{}: {stderr}", case.name);
            assert!(
                stderr.contains(&format!("--> {}", path.display())),
                "{}: no position: {stderr}",
                case.name
            );
        }
        assert!(!stderr.contains("panicked"), "{}: {stderr}", case.name);
    }
}
