//! Kubernetes files as people write them: every file of `tests/fixtures/kube-corpus` (Pods and
//! Deployments from public documentation and example repositories, verbatim; SOURCES.md names
//! each one's origin and licence) is read as `podc build` reads it. At least 90% must build
//! (warnings allowed; 269 of 298, 90.3%, do, and REFUSED.txt shows what stands in the way of the
//! rest); the pods' `Localhost` seccomp profiles are read from its `seccomp/`, as
//! `--seccomp-dir` gives them; every refusal must point at file:line:column and give a reason; and the
//! list of refused files with their first error is `REFUSED.txt`, so that a file newly refused
//! or newly accepted shows up in review. Every pod that builds has units `systemd-analyze
//! verify` takes without a word, and `podc kube` of it is valid Kubernetes 1.30 (1.31 for a
//! pod with an image volume, which 1.30 lacks) and 1.37 that podc reads back as the same pod.

mod common;

use std::path::{Path, PathBuf};

const CORPUS: &str = "tests/fixtures/kube-corpus";

fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(CORPUS).unwrap() {
        let dir = dir.unwrap().path();
        // `seccomp/` holds the profiles the pods name (the kubelet's seccomp root), no pods.
        if !dir.is_dir() || dir.ends_with("seccomp") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yaml") {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.strip_prefix(CORPUS).unwrap().display().to_string()
}

#[test]
fn real_world_files_build_and_every_refusal_is_located() {
    let files = corpus();
    assert!(files.len() >= 80, "the corpus has {} files", files.len());
    let mut refused = String::new();
    let mut accepted = 0;
    let mut built = Vec::new();
    let side = podc::kube::import::Objects {
        seccomp: Some(podc::kube::import::SeccompDir {
            dir: Path::new(CORPUS).join("seccomp"),
            read: |p| std::fs::read_to_string(p),
        }),
        ..Default::default()
    };
    for path in &files {
        let source = std::fs::read_to_string(path).unwrap();
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let format = podc::parse::Format::Yaml;
        // A file builds when every pod in it does; the first error of a pod refused is shown.
        let mut first_refusal = None;
        for workload in 0..podc::workloads(&source, format) {
            let input = podc::Input {
                display: &file_name,
                file_name: &file_name,
                source: &source,
                format,
                workload,
                side: &side,
            };
            let (pod, report) = podc::check_all(&input, Default::default());
            match pod {
                Some(pod) => built.push((format!("{}#{workload}", name(path)), pod)),
                None if first_refusal.is_none() => first_refusal = Some(report),
                None => {}
            }
        }
        let Some(report) = first_refusal else {
            accepted += 1;
            continue;
        };
        let first = report
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .expect("a refusal has an error");
        let span = first
            .span
            .clone()
            .unwrap_or_else(|| panic!("{}: the error is not located:\n{report}", name(path)));
        let (line, col) = podc::diag::line_col(&report.source, span.start);
        refused.push_str(&format!(
            "{}:{line}:{col}: {} {}{}\n",
            name(path),
            first.code.code,
            first.message,
            first
                .help
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        ));
    }
    let score = accepted as f64 / files.len() as f64;
    eprintln!(
        "kube corpus: {accepted} of {} files build ({:.1}%)",
        files.len(),
        score * 100.0
    );
    let expected_path = Path::new(CORPUS).join("REFUSED.txt");
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != refused {
        std::fs::write(expected_path.with_extension("txt.new"), &refused).unwrap();
    }
    assert_eq!(
        expected, refused,
        "the refused files changed (REFUSED.txt.new has the new list: review it, then move it over)"
    );
    check_built(&built);
    assert!(
        score >= 0.90,
        "only {:.1}% of the corpus builds",
        score * 100.0
    );
}

/// Every pod that builds: its units verify, and `podc kube` of it is valid Kubernetes that
/// reads back as the same pod (the same tree).
fn check_built(built: &[(String, podc::pod::Pod)]) {
    let kube_dir = tempfile::tempdir().unwrap();
    let verify = common::systemd_analyze();
    let mut failures = Vec::new();
    for (i, (label, pod)) in built.iter().enumerate() {
        if verify {
            if let Err(text) = common::verify_tree(pod) {
                // systemd-analyze looks for the program on this host, not in the app's image.
                let text: String = text
                    .lines()
                    .filter(|l| {
                        !(l.contains(": Command /")
                            && l.ends_with("is not executable: No such file or directory"))
                    })
                    .collect();
                if !text.trim().is_empty() {
                    failures.push(format!("{label}: systemd-analyze verify:\n{text}"));
                }
            }
        }
        let kube = match podc::kube::out::to_kube(pod, &Default::default()) {
            Ok(k) => k,
            Err(e) => {
                failures.push(format!("{label}: podc kube refused it: {e:?}"));
                continue;
            }
        };
        // Kubernetes has image volumes since 1.31: such a pod is checked against 1.31, not 1.30.
        let image_volume = pod
            .volumes
            .iter()
            .any(|v| matches!(v.kind, podc::pod::VolumeKind::Image { .. }));
        let file = kube_dir.path().join(format!(
            "{i:03}{}.yaml",
            if image_volume { "-1.31" } else { "" }
        ));
        std::fs::write(&file, &kube.yaml).unwrap();
        let input = podc::Input {
            display: "pod.yaml",
            file_name: &pod.manifest_file,
            source: &kube.yaml,
            format: podc::parse::Format::Yaml,
            workload: 0,
            side: podc::kube::import::Objects::none(),
        };
        let install = podc::lower::Install {
            dir: format!("/var/lib/podc/{}", pod.name),
            podc: "/usr/bin/podc".into(),
        };
        match podc::check(&input, Default::default()) {
            Ok(back) if podc::generate(&back, &install) == podc::generate(pod, &install) => {}
            Ok(_) => failures.push(format!(
                "{label}: podc kube, read back, builds another tree"
            )),
            Err(r) => failures.push(format!("{label}: podc kube, read back, is refused:\n{r}")),
        }
    }
    if common::tool("kubernetes-validate", "kubernetes-validate, from PyPI") {
        let mut files: Vec<_> = std::fs::read_dir(kube_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let newer = |f: &&PathBuf| f.to_string_lossy().ends_with("-1.31.yaml");
        let (image, older): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(newer);
        for (version, files) in [
            ("1.30.0", older.clone()),
            ("1.31.0", image),
            ("1.37.0", files.iter().collect()),
        ] {
            if files.is_empty() {
                continue;
            }
            let o = std::process::Command::new("kubernetes-validate")
                .args(["--strict", "--quiet", "-k", version])
                .args(&files)
                .output()
                .unwrap();
            if !o.status.success() {
                failures.push(format!(
                    "Kubernetes {version} refuses a document of podc kube:\n{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
