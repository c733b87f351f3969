//! `podc kube`, driven as a user would: a snapshot of the Kubernetes YAML and the warnings for
//! every good fixture and every `tests/fixtures/kube-out` case, each document read back (the
//! commands and environments byte-exact) and validated against the strict schemas of
//! Kubernetes 1.30 and 1.37 with `kubernetes-validate`; then the command line's errors.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1 as core;
use podc::pod::{Image, Pod};

fn podc(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podc"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("podc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// `--image APP=REF` for every app whose image is a path (Kubernetes needs a reference).
fn image_flags(pod: &Pod) -> Vec<String> {
    pod.apps
        .iter()
        .filter(|a| matches!(a.image, Image::Path(_)))
        .flat_map(|a| {
            [
                "--image".to_string(),
                format!("{}=registry.example/{}/{}:1", a.name, pod.name, a.name),
            ]
        })
        .collect()
}

/// The containers of a document read back, init containers first.
fn containers(spec: &core::PodSpec) -> Vec<&core::Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect()
}

/// What must survive the trip through YAML byte for byte: each app's command, environment
/// and working directory, read back by a YAML parser into Kubernetes' types.
fn check_read_back(pod: &Pod, spec: &core::PodSpec) {
    let containers = containers(spec);
    assert_eq!(containers.len(), pod.apps.len());
    for a in &pod.apps {
        let c = containers
            .iter()
            .find(|c| c.name == a.name)
            .unwrap_or_else(|| panic!("no container {}", a.name));
        // `exec` is `command` (no args), `args` is `args` (no command).
        let (command, args) = match &a.command {
            podc::pod::Command::Exec(e) | podc::pod::Command::LookUp(e) => (Some(e), None),
            podc::pod::Command::Args(args) => (None, Some(args)),
            podc::pod::Command::Image => (None, None),
        };
        // What the kubelet runs: its `$(NAME)` expansion of what podc wrote (every `$(` of
        // podc's is written escaped, so no variable is needed to expand it).
        let kubelet = |s: &String| {
            podc::kube::dollar::expand(s, |_| podc::kube::dollar::Var::Undefined).unwrap()
        };
        let run = |l: &Option<Vec<String>>| {
            l.as_ref()
                .map(|l| l.iter().map(kubelet).collect::<Vec<_>>())
        };
        // Expanded without variables, a variable read at launch is its reference `$(NAME)`
        // (with them, the kubelet puts in its value, as systemd does under podc).
        let texts = |l: Option<&Vec<podc::pod::Arg>>| {
            l.map(|l| {
                l.iter()
                    .map(|a| {
                        a.parts()
                            .iter()
                            .map(|p| match p {
                                podc::pod::Part::Text(t) => t.clone(),
                                podc::pod::Part::Var(n) => format!("$({n})"),
                            })
                            .collect::<String>()
                    })
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run(&c.command), texts(command), "{}: command", a.name);
        assert_eq!(run(&c.args), texts(args), "{}: args", a.name);
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .flatten()
            .filter(|e| e.value_from.is_none())
            .map(|e| {
                (
                    e.name.clone(),
                    kubelet(&e.value.clone().unwrap_or_default()),
                )
            })
            .collect();
        let want: Vec<(String, String)> = a
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(env, want, "{}: env", a.name);
        // Variables from config items and secrets: a reference to the key, never a value.
        let refs: Vec<(String, String, String, String)> = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                let from = e.value_from.as_ref()?;
                assert!(e.value.is_none(), "{}: a value beside valueFrom", e.name);
                Some(match (&from.config_map_key_ref, &from.secret_key_ref) {
                    (Some(r), None) => (
                        e.name.clone(),
                        "config".into(),
                        r.name.clone(),
                        r.key.clone(),
                    ),
                    (None, Some(r)) => (
                        e.name.clone(),
                        "secret".into(),
                        r.name.clone(),
                        r.key.clone(),
                    ),
                    _ => panic!("{}: not one reference", e.name),
                })
            })
            .collect();
        let want: Vec<(String, String, String, String)> = a
            .env_from
            .iter()
            .map(|(k, e)| {
                let key = e.key.clone().unwrap_or_else(|| e.item.name.clone());
                (
                    k.clone(),
                    e.item.kind.name().into(),
                    e.item.name.clone(),
                    key,
                )
            })
            .collect();
        assert_eq!(refs, want, "{}: env from config and secrets", a.name);
        if a.given.working_directory {
            assert_eq!(c.working_dir.as_deref(), Some(a.working_directory.as_str()));
        }
        let mounts: Vec<_> = c.volume_mounts.iter().flatten().collect();
        assert_eq!(
            mounts.len(),
            a.mounts.len() + a.files.len(),
            "{}: mounts",
            a.name
        );
        // Each config item or secret as a file: its whole-file key, read-only.
        for f in &a.files {
            let m = mounts
                .iter()
                .find(|m| m.mount_path == f.path)
                .unwrap_or_else(|| panic!("{}: no mount at {}", a.name, f.path));
            assert_eq!(m.name, f.item.name);
            assert_eq!(m.sub_path.as_deref(), Some(f.item.name.as_str()));
            assert_eq!(m.read_only, Some(true));
            let v = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == f.item.name)
                .unwrap_or_else(|| panic!("no volume {}", f.item.name));
            match f.item.kind.name() {
                "config" => assert_eq!(v.config_map.as_ref().unwrap().name, f.item.name),
                _ => assert_eq!(
                    v.secret.as_ref().unwrap().secret_name.as_deref(),
                    Some(f.item.name.as_str())
                ),
            }
        }
    }
}

/// Runs `podc kube` on one fixture as Pod and as Deployment: checks determinism and the read
/// back, writes both documents into `out` for the schema check, and gives the snapshot text.
fn kube_fixture(path: &Path, out: &Path) -> String {
    let fixtures = common::root().join("tests/fixtures");
    let shown = path.strip_prefix(&fixtures).unwrap().display().to_string();
    let pod = common::pod(path).unwrap();
    let flags = image_flags(&pod);
    let mut args: Vec<&str> = vec!["kube", &shown];
    args.extend(flags.iter().map(String::as_str));
    let o = podc(&fixtures, &args);
    assert!(
        o.status.success(),
        "{shown}: podc kube failed:\n{}",
        text(&o.stderr)
    );
    let yaml = text(&o.stdout);
    assert_eq!(
        podc(&fixtures, &args).stdout,
        o.stdout,
        "{shown}: not byte-identical across runs"
    );
    assert!(yaml.ends_with('\n') && !yaml.ends_with("\n\n"));
    for (i, line) in yaml.lines().enumerate() {
        assert_eq!(
            line,
            line.trim_end(),
            "{shown}:{}: trailing whitespace",
            i + 1
        );
    }
    let read: core::Pod = serde_saphyr::from_str(&yaml).expect("the YAML reads back");
    assert_eq!(read.metadata.name.as_deref(), Some(pod.name.as_str()));
    check_read_back(&pod, read.spec.as_ref().unwrap());

    let mut deployment = args.clone();
    deployment.extend(["--kind", "Deployment"]);
    let d = podc(&fixtures, &deployment);
    assert!(d.status.success(), "{}", text(&d.stderr));
    let read: Deployment = serde_saphyr::from_str(&text(&d.stdout)).unwrap();
    let template = read.spec.unwrap().template;
    let template_spec = template.spec.as_ref().unwrap();
    check_read_back(&pod, template_spec);
    // Kubernetes takes only Always in a Deployment.
    assert_eq!(template_spec.restart_policy.as_deref(), Some("Always"));
    let pod_read: core::Pod = serde_saphyr::from_str(&yaml).unwrap();
    if pod_read.spec.as_ref().unwrap().restart_policy.as_deref() == Some("Always") {
        // Then the same pod: the template's annotations are the Pod's (import reads them
        // from there), and the same warnings (worded for a Deployment).
        let codes = |o: &Output| -> Vec<String> {
            text(&o.stderr)
                .lines()
                .filter(|l| l.starts_with("warning["))
                .map(|l| l[..14].to_string())
                .collect()
        };
        assert_eq!(codes(&d), codes(&o), "the same warnings for either kind");
        assert_eq!(
            template.metadata.unwrap().annotations,
            pod_read.metadata.annotations
        );
    } else {
        assert!(text(&d.stderr).contains("a Deployment's restartPolicy is Always"));
    }

    let stem = shown.replace('/', "_");
    fs::write(out.join(format!("{stem}.pod.yaml")), &o.stdout).unwrap();
    fs::write(out.join(format!("{stem}.deployment.yaml")), &d.stdout).unwrap();
    format!(
        "$ podc {}\n{yaml}--- stderr\n{}",
        args.join(" "),
        text(&o.stderr)
    )
}

/// Whether a document has an image volume, which Kubernetes has since 1.31.
fn has_image_volume(yaml: &str) -> bool {
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    lines
        .windows(2)
        .any(|w| w[0] == "- image:" && w[1].starts_with("reference:"))
}

/// Every document in `dir` against the strict schemas of Kubernetes 1.30 (1.31 for one with
/// an image volume, which 1.30 lacks) and 1.37.
fn validate_all(dir: &Path) {
    if !common::tool("kubernetes-validate", "kubernetes-validate, from PyPI") {
        return;
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let newer = |f: &&PathBuf| has_image_volume(&fs::read_to_string(f).unwrap());
    let (image, older): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(newer);
    for (version, files) in [
        ("1.30.0", older.clone()),
        ("1.31.0", image),
        ("1.37.0", files.iter().collect()),
    ] {
        if files.is_empty() {
            continue;
        }
        let o = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "Kubernetes {version} refuses a document:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
}

#[test]
fn kube_good() {
    let out = tempfile::tempdir().unwrap();
    settings().bind(|| {
        insta::glob!("fixtures/good/*.{yaml,toml}", |path| {
            insta::assert_snapshot!(kube_fixture(path, out.path()));
        });
    });
    validate_all(out.path());
}

#[test]
fn kube_out() {
    let out = tempfile::tempdir().unwrap();
    settings().bind(|| {
        insta::glob!("fixtures/kube-out/*.yaml", |path| {
            insta::assert_snapshot!(kube_fixture(path, out.path()));
        });
    });
    validate_all(out.path());
}

#[test]
fn the_validator_can_fail() {
    // The schema check above means something only if a wrong document fails it.
    if !common::tool("kubernetes-validate", "kubernetes-validate, from PyPI") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    fs::write(
        &bad,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: x\n    image: r.example/x:1\n    commandd: [/x]\n",
    )
    .unwrap();
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", "1.30.0"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o.stdout));
}

const MINIMAL: &str = "good/minimal.yaml";

fn fixtures() -> PathBuf {
    common::root().join("tests/fixtures")
}

#[test]
fn an_image_by_path_needs_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yaml");
    let o = podc(
        &fixtures(),
        &["kube", MINIMAL, "-o", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("error[P0209]"), "{err}");
    assert!(err.contains("--> good/minimal.yaml:"), "{err}");
    assert!(err.contains("--image"), "{err}");
    assert!(o.stdout.is_empty());
    assert!(!file.exists(), "nothing is written on an error");
}

#[test]
fn image_flags_are_checked() {
    let pod = common::pod(&fixtures().join(MINIMAL)).unwrap();
    let app = &pod.apps[0].name;
    let good = format!("{app}=registry.example/a:1");
    let o = podc(
        &fixtures(),
        &[
            "kube",
            MINIMAL,
            "--image",
            &good,
            "--image",
            "nosuchapp=registry.example/a:1",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no app \"nosuchapp\""),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    for (flag, words) in [
        (format!("{app}=Not A Reference"), "--image"),
        (app.to_string(), "APP=REF"),
    ] {
        let o = podc(&fixtures(), &["kube", MINIMAL, "--image", &flag]);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        assert!(
            text(&o.stderr).contains(words),
            "{flag}: {}",
            text(&o.stderr)
        );
        assert!(o.stdout.is_empty());
    }
    let twice = format!("{app}=registry.example/a:1");
    let o = podc(
        &fixtures(),
        &["kube", MINIMAL, "--image", &twice, "--image", &twice],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn several_manifests_are_documents_in_their_order_and_o_writes_them() {
    let a = "kube-out/init-containers.yaml";
    let b = "kube-out/capabilities-deny-list.yaml";
    let o = podc(&fixtures(), &["kube", b, a]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let yaml = text(&o.stdout);
    let docs: Vec<&str> = yaml.split("---\n").collect();
    assert_eq!(docs.len(), 2);
    assert!(docs[0].contains("name: caps"));
    assert!(docs[1].contains("name: shop"));
    for d in &docs {
        let _: core::Pod = serde_saphyr::from_str(d).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.yaml");
    fs::write(&file, "old").unwrap();
    let w = podc(&fixtures(), &["kube", b, a, "-o", file.to_str().unwrap()]);
    assert!(w.status.success());
    assert!(w.stdout.is_empty());
    assert_eq!(fs::read(&file).unwrap(), o.stdout);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Only the file: no temporary left beside it.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // One bad manifest: nothing is written, the old file stays.
    let bad = podc(
        &fixtures(),
        &["kube", a, MINIMAL, "-o", file.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(fs::read(&file).unwrap(), o.stdout);
}

#[test]
fn a_deployment_selects_its_pod_by_name() {
    let o = podc(
        &fixtures(),
        &[
            "kube",
            "kube-out/init-containers.yaml",
            "--kind",
            "Deployment",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let d: Deployment = serde_saphyr::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(d.metadata.name.as_deref(), Some("shop"));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let labels = spec.selector.match_labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "shop");
    let template = spec.template.metadata.unwrap();
    assert_eq!(template.labels.unwrap(), labels);
    assert!(template.name.is_none());
    assert_eq!(
        spec.template.spec.unwrap().init_containers.unwrap().len(),
        2
    );
}

#[test]
fn warnings_are_diagnostics() {
    let case = "kube-out/after-long-running.yaml";
    // --deny-warnings: exit 1 and no YAML.
    let o = podc(&fixtures(), &["kube", case, "--deny-warnings"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(text(&o.stderr).contains("warning[P1106]"));
    // JSON lines need -o, since standard output carries them.
    let o = podc(&fixtures(), &["kube", case, "--message-format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.yaml");
    let o = podc(
        &fixtures(),
        &[
            "kube",
            case,
            "--message-format",
            "json",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success());
    let codes: Vec<String> = text(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["code"].as_str().map(str::to_string))
        .collect();
    assert!(codes.contains(&"P1103".to_string()), "{}", text(&o.stdout));
    assert!(codes.contains(&"P1106".to_string()));
    assert!(file.exists());
}

#[test]
fn annotations_podc_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = fs::read_to_string(fixtures().join("kube-out/init-containers.yaml")).unwrap();
    let file = dir.path().join("pod.yaml");
    fs::write(
        &file,
        format!("{source}annotations:\n  podc/apps: \"{{}}\"\n"),
    )
    .unwrap();
    let o = podc(dir.path(), &["kube", "pod.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("error[P0109]"), "{err}");
    assert!(err.contains("--> pod.yaml:"), "{err}");
    // podc check has no objection: only the Kubernetes object has these keys.
    assert!(podc(dir.path(), &["check", "pod.yaml"]).status.success());
}

/// Kubernetes allows no `lifecycle` on an init container, and an init app runs to completion
/// (systemd would skip its preStop): hooks on an init app are refused by `podc check` and so by
/// `podc kube`, at the app's `hooks`; the same hooks on a service are its container's
/// `lifecycle`.
#[test]
fn hooks_on_an_init_container_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = fs::read_to_string(fixtures().join("kube-out/init-containers.yaml")).unwrap();
    let hooked = source.replace(
        "    exec: [/bin/migrate, up]\n",
        "    exec: [/bin/migrate, up]\n    hooks: {preStop: [/bin/migrate, abort]}\n",
    );
    assert_ne!(hooked, source);
    fs::write(dir.path().join("pod.yaml"), &hooked).unwrap();
    for command in ["kube", "check"] {
        let o = podc(dir.path(), &[command, "pod.yaml"]);
        assert_eq!(o.status.code(), Some(1));
        let err = text(&o.stderr);
        assert!(
            err.contains("error[P0709]: init app \"migrate\" has lifecycle hooks"),
            "{err}"
        );
        assert!(err.contains("at `apps[2].hooks`"), "{err}");
        assert!(o.stdout.is_empty());
    }

    // On a service, the same hooks are its container's.
    let service = hooked.replace(
        "abort]}\n    init: true\n",
        "abort]}\n    restart: on-failure\n",
    );
    assert_ne!(service, hooked);
    fs::write(dir.path().join("pod.yaml"), &service).unwrap();
    let o = podc(dir.path(), &["kube", "pod.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let read: core::Pod = serde_saphyr::from_str(&text(&o.stdout)).unwrap();
    let migrate = read
        .spec
        .unwrap()
        .containers
        .into_iter()
        .find(|c| c.name == "migrate")
        .expect("migrate is a container");
    let command = migrate
        .lifecycle
        .unwrap()
        .pre_stop
        .unwrap()
        .exec
        .unwrap()
        .command;
    assert_eq!(command.unwrap(), ["/bin/migrate", "abort"]);
}

#[test]
fn annotations_kubernetes_refuses_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let source = fs::read_to_string(fixtures().join("kube-out/init-containers.yaml")).unwrap();
    let file = dir.path().join("pod.yaml");
    let big = "x".repeat(300 * 1024);
    fs::write(
        &file,
        format!("{source}annotations:\n  \"my key\": a\n  ok.example/fine: \"{big}\"\n"),
    )
    .unwrap();
    let o = podc(dir.path(), &["kube", "pod.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(err.matches("error[P0110]").count(), 2, "{err}");
    assert!(err.contains("\"my key\""), "{err}");
    assert!(err.contains("256 KiB") || err.contains("262144"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn a_bad_manifest_is_refused_as_check_refuses_it() {
    let bad = "bad/after-cycle.yaml";
    let k = podc(&fixtures(), &["kube", bad]);
    let c = podc(&fixtures(), &["check", bad]);
    assert_eq!(k.status.code(), Some(1));
    assert!(k.stdout.is_empty());
    assert_eq!(k.stderr, c.stderr);
}
