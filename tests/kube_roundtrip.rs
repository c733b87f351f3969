//! The round trip: every good podc fixture (and every `podc kube` fixture) → `podc kube` (as a
//! Pod and as a Deployment) → imported back → built gives byte-identical units, the whole tree.
//! And the other way: every Kubernetes import fixture → podc → `podc kube` → podc builds the
//! same tree again.
//!
//! An image given by path has no meaning on a cluster (`podc kube` refuses it without
//! `--image`), so each path image is first replaced by an image reference in the manifest
//! itself; the tree compared is that manifest's. Both sides are built under one file name, so
//! the "generated from" headers agree too.

mod common;

use std::collections::BTreeMap;

use podc::kube::{Kind, KubeOptions};
use podc::lower::Install;
use podc::parse::Format;
use podc::render::Files;
use podc::resolve::Overrides;

const REFERENCE: &str =
    "registry.example/podc/app@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

/// The fixture's pod with every path image replaced by [`REFERENCE`].
fn by_reference(source: &str, format: Format) -> podc::pod::Pod {
    let mut parsed = podc::read(source, format).expect("a good fixture parses");
    for app in &mut parsed.manifest.apps {
        if app.image.starts_with('/') {
            app.image = REFERENCE.to_string();
        }
    }
    podc::resolve::resolve(&parsed, "pod.yaml", Overrides::default())
        .unwrap_or_else(|d| panic!("resolves with image references: {d:?}"))
}

fn tree(pod: &podc::pod::Pod) -> Files {
    let install = Install {
        dir: format!("/var/lib/podc/{}", pod.name),
        podc: "/usr/bin/podc".into(),
    };
    podc::generate(pod, &install)
}

/// Kubernetes YAML read back as a manifest and built, or its report.
fn import(yaml: &str) -> Result<Files, String> {
    let input = podc::Input {
        display: "pod.yaml",
        file_name: "pod.yaml",
        source: yaml,
        format: Format::Yaml,
        workload: 0,
        side: common::objects(),
    };
    let (pod, report) = podc::check_all(&input, Overrides::default());
    match pod {
        Some(pod) if report.diagnostics.is_empty() => Ok(tree(&pod)),
        _ => Err(report.to_string()),
    }
}

/// The files of two trees that differ, with the first differing line of each.
fn differences(want: &Files, got: &Files) -> Vec<String> {
    let mut out = Vec::new();
    for (name, w) in want {
        match got.get(name) {
            None => out.push(format!("{name}: missing after the round trip")),
            Some(g) if g != w => {
                let line = w
                    .lines()
                    .zip(g.lines())
                    .find(|(a, b)| a != b)
                    .map_or("(lengths differ)".to_string(), |(a, b)| {
                        format!("\n    want: {a}\n    got:  {b}")
                    });
                out.push(format!("{name}: {line}"));
            }
            Some(_) => {}
        }
    }
    for name in got.keys().filter(|n| !want.contains_key(*n)) {
        out.push(format!("{name}: only after the round trip"));
    }
    out
}

/// Good fixtures whose Kubernetes form import cannot read yet: `httpHeaders` and `lifecycle`
/// are written by `podc kube`, and reading them back belongs to `compiler/kube/import`, under
/// way apart. Their round trip must fail on exactly those fields; once import reads them it
/// passes, and this test asks for the entry to go.
const PENDING_IMPORT: &[(&str, &str)] = &[];

fn fixtures(dir: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(common::root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| Format::of(p).is_some())
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_kubernetes_fixture_comes_back_through_podc_kube() {
    let paths = fixtures("tests/fixtures/kube/good");
    assert!(paths.len() >= 4, "only {} fixtures", paths.len());
    for path in &paths {
        let name = common::display_name(path);
        let source = std::fs::read_to_string(path).unwrap();
        let input = podc::Input {
            display: &name,
            file_name: "pod.yaml",
            source: &source,
            format: Format::Yaml,
            workload: 0,
            side: common::objects(),
        };
        let pod = podc::check(&input, Overrides::default()).unwrap_or_else(|r| panic!("{r}"));
        let opts = KubeOptions::default();
        let kube = podc::kube::out::to_kube(&pod, &opts)
            .unwrap_or_else(|d| panic!("{name}: podc kube refused it: {d:?}"));
        let again = import(&kube.yaml).unwrap_or_else(|r| panic!("{name}: {r}\n{}", kube.yaml));
        let diff = differences(&tree(&pod), &again);
        assert!(
            diff.is_empty(),
            "{name}:\n{}\n{}",
            diff.join("\n"),
            kube.yaml
        );
        // `podc kube`'s output is a fixed point: read back and written again, the same bytes.
        let input = podc::Input {
            source: &kube.yaml,
            ..input
        };
        let pod = podc::check(&input, Overrides::default()).unwrap_or_else(|r| panic!("{r}"));
        let twice = podc::kube::out::to_kube(&pod, &opts).unwrap();
        assert_eq!(kube.yaml, twice.yaml, "{name}");
    }
}

/// Good fixtures whose `podc kube` form import does not read back yet: `envFrom` of a
/// ConfigMap or Secret named in `podc/pod` (an item's `dir`, or the `KEY=VALUE` lines of its
/// `file` or `text`) is for kube import to map to `environmentFrom`. Remove a name once it
/// comes back; the test fails while a listed fixture does.
const IMPORT_PENDING: &[&str] = &[];

#[test]
fn every_good_fixture_comes_back_with_identical_units() {
    let mut paths = fixtures("tests/fixtures/good");
    assert!(paths.len() >= 40, "only {} good fixtures", paths.len());
    paths.extend(fixtures("tests/fixtures/kube-out"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &paths {
        let file = path.file_name().unwrap().to_string_lossy();
        let pending = IMPORT_PENDING.contains(&file.as_ref());
        let source = std::fs::read_to_string(path).unwrap();
        let pod = by_reference(&source, Format::of(path).unwrap());
        let want = tree(&pod);
        if pending {
            let opts = KubeOptions::default();
            let kube = podc::kube::out::to_kube(&pod, &opts)
                .unwrap_or_else(|d| panic!("{file}: podc kube refused it: {d:?}"));
            assert!(
                import(&kube.yaml).is_err_and(|r| r.contains("envFrom")),
                "{file} comes back now: remove it from IMPORT_PENDING"
            );
            println!("{file}: not round-tripped yet (import of envFrom pending)");
            continue;
        }
        for kind in [Kind::Pod, Kind::Deployment] {
            let name = format!("{} as a {kind:?}", common::display_name(path));
            let opts = KubeOptions {
                kind,
                images: BTreeMap::new(),
            };
            let kube = match podc::kube::out::to_kube(&pod, &opts) {
                Ok(k) => k,
                Err(d) => {
                    failures.push(format!("{name}: podc kube refused it: {d:?}"));
                    continue;
                }
            };
            let file = path.file_name().unwrap().to_string_lossy();
            if let Some((_, refusal)) = PENDING_IMPORT.iter().find(|(f, _)| *f == file) {
                let only = |report: &str| {
                    let mut errors = report.lines().filter(|l| l.starts_with("error["));
                    errors.next() == Some(*refusal) && errors.all(|l| l == *refusal)
                };
                match import(&kube.yaml) {
                    Err(report) if only(&report) => {}
                    Err(report) => failures.push(format!(
                        "{name}: import refused it otherwise than by {refusal:?}:\n{report}"
                    )),
                    Ok(_) => failures.push(format!(
                        "{name}: import reads it now: remove it from PENDING_IMPORT"
                    )),
                }
                continue;
            }
            match import(&kube.yaml) {
                Ok(got) => {
                    let diff = differences(&want, &got);
                    if !diff.is_empty() {
                        failures.push(format!(
                            "{name}: units differ:\n  {}\n--- the Kubernetes form:\n{}",
                            diff.join("\n  "),
                            kube.yaml
                        ));
                    }
                }
                Err(report) => failures.push(format!(
                    "{name}: import refused it:\n{report}\n--- the Kubernetes form:\n{}",
                    kube.yaml
                )),
            }
            checked += 1;
        }
    }
    println!("{checked} round trips, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {checked} round trips failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
