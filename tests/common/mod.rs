//! Helpers shared by the integration tests: compile a fixture file the way `podc build` does.

#![allow(dead_code)]

pub mod authproxy;
pub mod h2c;
pub mod images;
pub mod podmd;
pub mod registry;
pub mod skip;

pub use skip::skip;

use std::path::{Path, PathBuf};

use podc::lower::Install;
use podc::parse::Format;
use podc::render::Files;
use podc::resolve::Overrides;
use podc::Input;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The name a fixture is shown under: its path below `tests/fixtures` (`bad/x.yaml`).
pub fn display_name(path: &Path) -> String {
    path.strip_prefix(root().join("tests/fixtures"))
        .or_else(|_| path.strip_prefix(root()))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fixture file read as the command line would read it, handed to `f` as an `Input`.
fn with_input<T>(path: &Path, f: impl FnOnce(&Input) -> T) -> T {
    let source = std::fs::read_to_string(path).expect("fixtures are UTF-8");
    let display = display_name(path);
    let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
    let format = Format::of(path).expect("fixtures are .yaml or .toml");
    f(&Input {
        display: &display,
        file_name: &file_name,
        source: &source,
        format,
        workload: 0,
        side: objects(),
    })
}

/// What the command line gives a Kubernetes fixture: no ConfigMaps or Secrets, and
/// `tests/fixtures/kube/seccomp` as the directory of `Localhost` seccomp profiles (relative,
/// as messages show it).
pub fn objects() -> &'static podc::kube::import::Objects {
    static OBJECTS: std::sync::OnceLock<podc::kube::import::Objects> = std::sync::OnceLock::new();
    OBJECTS.get_or_init(|| podc::kube::import::Objects {
        seccomp: Some(podc::kube::import::SeccompDir {
            dir: PathBuf::from("tests/fixtures/kube/seccomp"),
            read: |p| std::fs::read_to_string(p),
        }),
        ..Default::default()
    })
}

/// Reads and resolves a manifest file, or gives its rendered diagnostics.
pub fn pod(path: &Path) -> Result<podc::pod::Pod, String> {
    with_input(path, |input| {
        podc::check(input, Overrides::default()).map_err(|r| r.to_string())
    })
}

/// Reads and resolves a manifest file keeping warnings: the pod when nothing is an error, and
/// the report with every diagnostic.
pub fn check_all(path: &Path) -> (Option<podc::pod::Pod>, podc::diag::Report) {
    with_input(path, |input| podc::check_all(input, Overrides::default()))
}

/// Compiles a manifest file to its tree, or to its rendered diagnostics.
pub fn compile(path: &Path, install: Option<&Install>) -> Result<Files, String> {
    let pod = pod(path)?;
    let default = Install {
        dir: format!("/var/lib/podc/{}", pod.name),
        podc: "/usr/bin/podc".into(),
    };
    Ok(podc::generate(&pod, install.unwrap_or(&default)))
}

/// The rendered report of a manifest `podc` must refuse (`path`), after checking that it has
/// at least one diagnostic and that every one points at file:line:column: one `-->` line per
/// `error[..]:` or `warning[..]:` line.
pub fn refused_and_located(path: &Path) -> String {
    let report = match compile(path, None) {
        Ok(_) => panic!("{} should be refused", path.display()),
        Err(r) => r,
    };
    let name = display_name(path);
    let errors = report
        .lines()
        .filter(|l| l.starts_with("error[") || l.starts_with("warning["))
        .count();
    let located = report
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("--> {name}:")))
        .count();
    assert!(errors >= 1, "{name}: no diagnostic");
    assert_eq!(
        errors, located,
        "{name}: a diagnostic without a position:\n{report}"
    );
    report
}

/// A tree as one text: each file under a `=== path (N bytes)` line, in path order. The byte
/// count pins what insta's whitespace-insensitive comparison would miss.
pub fn tree_text(files: &Files) -> String {
    let mut out = String::new();
    for (path, content) in files {
        out.push_str(&format!("=== {path} ({} bytes)\n", content.len()));
        out.push_str(content);
        if !content.ends_with('\n') {
            out.push_str("\n(no newline at end of file)\n");
        }
    }
    out
}

pub fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| Format::of(p).is_some())
        .collect();
    v.sort();
    v
}

/// Whether `tool --version` runs here. Where it does not, the test is recorded as skipped
/// ([`skip`]), and in CI it fails instead (`.ci/install` installs `package`).
#[track_caller]
pub fn tool(tool: &str, package: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!("{tool} is missing (package {package})"));
    }
    ok
}

/// Whether `name` is a program on the PATH (for programs without a `--version`); where it is
/// not, the test is recorded as skipped, and in CI it fails (see [`tool`]).
#[track_caller]
pub fn program(name: &str, package: &str) -> bool {
    let ok = on_path(name);
    if !ok {
        skip(&format!("{name} is missing (package {package})"));
    }
    ok
}

/// Whether `name` is a program on the PATH, as the shell finds it.
pub fn on_path(name: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether this process runs as root; where not, the test is recorded as skipped, and in CI,
/// which runs as root, it fails.
#[track_caller]
pub fn as_root() -> bool {
    let ok = rustix::process::geteuid().is_root();
    if !ok {
        skip("not root");
    }
    ok
}

/// Whether systemd-analyze can run here; in CI it must (`.ci/install` installs systemd).
#[track_caller]
pub fn systemd_analyze() -> bool {
    tool("systemd-analyze", "systemd")
}

/// `systemd-analyze verify` of every unit of the pod's tree, with the launcher's drop-in for
/// each app whose image is a reference: the output, if it printed anything (any warning is a
/// failure: it exits 0 on unknown keys and bad values).
#[allow(dead_code)]
pub fn verify_tree(pod: &podc::pod::Pod) -> Result<(), String> {
    // ExecStart= of the host unit must name a real binary: use the podc under test.
    let install = Install {
        dir: format!("/var/lib/podc/{}", pod.name),
        podc: env!("CARGO_BIN_EXE_podc").to_string(),
    };
    let files = podc::generate(pod, &install);
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for (rel, content) in &files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        if [".service", ".target", ".socket", ".timer"]
            .iter()
            .any(|s| rel.ends_with(s))
        {
            units.push(p);
        }
    }
    // An app whose image is a reference gets its defaults (the command, at least) from a
    // drop-in the launcher writes; verify its unit with a sample of that drop-in, made by
    // the launcher's own function, beside it (systemd-analyze reads `<unit>.d/` there).
    let plan = podc::tree::plan::MountPlan::from_toml(&files["mounts.toml"]).unwrap();
    for step in &plan.steps {
        if let podc::tree::plan::Step::Image {
            app,
            reference,
            given,
            environment,
            exec,
            args,
            expand,
            ..
        } = step
        {
            use podc::image::defaults::Command;
            let has = |k: &str| given.iter().any(|g| g == k);
            let words = |w: &[String]| podc::systemd::argv::words_args(w, expand);
            let (exec_args, args) = (words(exec), words(args));
            let drop = podc::image::defaults::drop_in(
                app,
                reference,
                "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
                &sample_defaults(exec.first().map(String::as_str)),
                podc::image::defaults::Given {
                    command: match (has("exec"), exec.is_empty(), args.is_empty()) {
                        (true, _, _) => Command::InUnit,
                        (false, false, _) => Command::LookUp(&exec_args),
                        (false, true, false) => Command::Args(&args),
                        (false, true, true) => Command::Image,
                    },
                    working_directory: has("workingDirectory"),
                    user: has("user"),
                    environment,
                },
            )
            .unwrap();
            let d = dir
                .path()
                .join(format!("rootfs/etc/systemd/system/{app}.service.d"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(podc::tree::layout::IMAGE_DROP_IN), drop.text).unwrap();
        }
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The host's systemd deprecates MemoryLimit= and CPUShares=, which units for an older
    // target systemd on cgroup v1 must use; only those two warnings are expected, and only
    // for such targets.
    let older = pod.target.systemd < podc::systemd::target::V1_DIRECTIVES_DEPRECATED;
    let text: String = text
        .lines()
        .filter(|l| {
            !(older
                && (l.contains(": Unit uses MemoryLimit=; please use MemoryMax= instead.")
                    || l.contains(": Unit uses CPUShares=; please use CPUWeight= instead.")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if !out.status.success() || !text.trim().is_empty() {
        return Err(text);
    }
    Ok(())
}

/// Image defaults as a hostile but usable image config gives them: every kind of value, with
/// the characters systemd treats specially; `program`, a bare name an app's exec names, found
/// in its PATH.
pub fn sample_defaults(program: Option<&str>) -> podc::image::defaults::Defaults {
    use podc::manifest::IdOrName;
    podc::image::defaults::Defaults {
        command: Ok(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo \"$HOME\" 100% \\ ${X}\n;".into(),
        ]),
        entrypoint: Ok(vec!["/bin/busybox".into(), "sh".into()]),
        path: "/usr/bin:/bin".into(),
        programs: program
            .map(|p| (p.to_string(), Some(format!("/usr/bin/{p}"))))
            .into_iter()
            .collect(),
        environment: [
            ("PATH", "/usr/bin:/bin"),
            ("QUOTED", "a \"b\" %n $x \\"),
            ("LINES", "one\ntwo"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Ok(v.to_string())))
        .collect(),
        working_directory: Ok("/srv/app 1".into()),
        user: Ok(Some(podc::image::defaults::User {
            user: IdOrName::Id(1000),
            group: Some(IdOrName::Id(1000)),
        })),
    }
}
