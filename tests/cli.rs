//! The real binary, driven as a user would: exit statuses, `--check`, atomic replacement,
//! stale files, foreign directories, several manifests, determinism.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn podc(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podc"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("podc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file below `dir`, as relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A work directory holding a copy of a manifest under `name`.
fn workdir(fixture: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(common::root().join(fixture), dir.path().join(name)).unwrap();
    dir
}

const GOOD: &str = "tests/fixtures/good/volumes-shared.yaml";

fn pod_name(fixture: &str) -> String {
    common::pod(&common::root().join(fixture)).unwrap().name
}

#[test]
fn build_writes_the_tree_and_exits_0() {
    let w = workdir(GOOD, "pod.yaml");
    let o = podc(w.path(), &["build", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let tree = snapshot(&w.path().join("out").join(pod_name(GOOD)));
    let expected = common::compile(&common::root().join(GOOD), None).unwrap();
    let got: BTreeMap<String, String> = tree
        .into_iter()
        .map(|(k, v)| (k.display().to_string(), String::from_utf8(v).unwrap()))
        .collect();
    // Same files and bytes as the library produces (the manifest's file name differs).
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        assert_eq!(
            &got[k],
            &v.replace("from volumes-shared.yaml.", "from pod.yaml."),
            "{k}"
        );
    }
    // Nothing else in the output directory: no staging leftovers.
    let entries: Vec<_> = fs::read_dir(w.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

#[test]
fn bad_input_exits_1_writes_nothing_and_points_at_the_line() {
    let w = workdir("tests/fixtures/bad/memory-zero.yaml", "pod.yaml");
    let o = podc(w.path(), &["build", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--> pod.yaml:9:15"), "{}", stderr(&o));
    assert!(!w.path().join("out").exists());
    let o = podc(w.path(), &["check", "pod.yaml"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let w = workdir(GOOD, "pod.yaml");
    for args in [
        vec!["build"],
        vec!["build", "missing.yaml"],
        vec!["build", "pod.json"],
        vec!["build", "pod.yaml", "--cgroup", "v3"],
        vec!["build", "pod.yaml", "--install-dir", "relative/dir"],
        vec!["build", "pod.yaml", "--podc-path", "podc"],
        // The path flags follow the manifest's path rules (they once had a weaker copy).
        vec!["build", "pod.yaml", "--podc-path", "/usr/bin/it's"],
        vec!["build", "pod.yaml", "--podc-path", "/usr/bin/$podc"],
        vec!["build", "pod.yaml", "--podc-path", "/usr/../bin/podc"],
        vec!["build", "pod.yaml", "--install-dir", "/var/lib/podc/a,b"],
        vec!["build", "pod.yaml", "--install-dir", "/var/lib/podc/web "],
        vec!["build", "pod.yaml", "--systemd", "100"],
        vec!["frobnicate"],
    ] {
        let o = podc(w.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn check_is_clean_after_build_and_reports_drift_without_writing() {
    let w = workdir(GOOD, "pod.yaml");
    assert!(podc(w.path(), &["build", "pod.yaml", "-o", "out"])
        .status
        .success());
    let o = podc(w.path(), &["build", "--check", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).is_empty());

    // Change the manifest: --check shows a unified diff, exits 1, and writes nothing.
    let manifest = fs::read_to_string(w.path().join("pod.yaml")).unwrap();
    let changed = manifest.replacen(
        r#""/usr/bin/sleep", "infinity""#,
        r#""/usr/bin/sleep", "1000""#,
        1,
    );
    assert_ne!(manifest, changed, "the fixture has a sleep to change");
    fs::write(w.path().join("pod.yaml"), changed).unwrap();
    let dir = w.path().join("out").join(pod_name(GOOD));
    let before = snapshot(&dir);
    let o = podc(w.path(), &["build", "--check", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let diff = stdout(&o);
    assert!(
        diff.contains(
            "-ExecStart=\"/usr/bin/sleep\" \"infinity\"\n+ExecStart=\"/usr/bin/sleep\" \"1000\"\n"
        ),
        "{diff}"
    );
    assert!(
        diff.contains("--- a/") && diff.contains("+++ b/") && diff.contains("@@"),
        "{diff}"
    );
    assert_eq!(before, snapshot(&dir), "--check wrote to the tree");

    // A tree that does not exist yet is drift too.
    let o = podc(
        w.path(),
        &["build", "--check", "pod.yaml", "-o", "elsewhere"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!w.path().join("elsewhere").exists());
}

/// `--check` looks at the tree as `build` would: a symbolic link where the pod's directory should
/// be is an error for both (it once said "up to date" for the link's target), and permission
/// bits are part of the output (a unit made executable, or a umask that made files 0600, is
/// drift; `build` writes 0644 files and 0755 directories whatever the umask).
#[test]
fn check_refuses_what_build_refuses_and_compares_modes() {
    use std::os::unix::fs::PermissionsExt;
    let w = workdir(GOOD, "pod.yaml");
    let pod = pod_name(GOOD);
    // Built under a strict umask, the tree still has podc's modes.
    let o = Command::new("sh")
        .current_dir(w.path())
        .args(["-c", "umask 077 && exec \"$0\" build pod.yaml -o out"])
        .arg(env!("CARGO_BIN_EXE_podc"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = w.path().join("out").join(&pod);
    let unit = dir.join(format!("podc-{pod}.service"));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&unit), 0o644);
    assert_eq!(mode(&dir.join("rootfs/etc/systemd/system")), 0o755);
    let o = podc(w.path(), &["build", "--check", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // A changed mode is drift.
    fs::set_permissions(&unit, fs::Permissions::from_mode(0o755)).unwrap();
    let o = podc(w.path(), &["build", "--check", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(&format!(
            "mode of {pod}/podc-{pod}.service: 0755, podc writes 0644"
        )),
        "{}",
        stdout(&o)
    );
    fs::set_permissions(&unit, fs::Permissions::from_mode(0o644)).unwrap();

    // A symbolic link as the pod's directory: build and --check both refuse it.
    fs::rename(&dir, w.path().join("real")).unwrap();
    std::os::unix::fs::symlink(w.path().join("real"), &dir).unwrap();
    for args in [
        &["build", "pod.yaml", "-o", "out"][..],
        &["build", "--check", "pod.yaml", "-o", "out"][..],
    ] {
        let o = podc(w.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("is not a directory"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// `check` takes the target flags of `build` and agrees with it: a manifest that builds for its
/// own target but not for `--cgroup v1 --systemd 252` fails both there.
#[test]
fn check_and_build_agree_under_the_target_flags() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("pod.yaml"),
        "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/true]\n    isolators: {cpuShares: 100}\n",
    )
    .unwrap();
    let flags = ["--cgroup", "v1", "--systemd", "252"];
    let run = |args: &[&str]| podc(dir.path(), args);
    assert_eq!(run(&["check", "pod.yaml"]).status.code(), Some(0));
    assert_eq!(
        run(&["build", "pod.yaml", "-o", "out"]).status.code(),
        Some(0)
    );
    let check = run(&[&["check", "pod.yaml"][..], &flags].concat());
    let build = run(&[&["build", "pod.yaml", "-o", "out2"][..], &flags].concat());
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert_eq!(build.status.code(), Some(1), "{}", stderr(&build));
    assert_eq!(stderr(&check), stderr(&build));
    assert!(stderr(&check).contains("cpuShares"), "{}", stderr(&check));
}

#[test]
fn a_failed_build_leaves_the_old_tree_byte_identical() {
    let w = workdir(GOOD, "pod.yaml");
    assert!(podc(w.path(), &["build", "pod.yaml", "-o", "out"])
        .status
        .success());
    let dir = w.path().join("out").join(pod_name(GOOD));
    let before = snapshot(&dir);
    let manifest = fs::read_to_string(w.path().join("pod.yaml")).unwrap();
    fs::write(
        w.path().join("pod.yaml"),
        manifest.replacen("podc: 1", "podc: 2", 1),
    )
    .unwrap();
    let o = podc(w.path(), &["build", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(before, snapshot(&dir));
}

#[test]
fn stale_files_are_removed() {
    let w = workdir("tests/fixtures/good/many-apps.toml", "pod.toml");
    assert!(podc(w.path(), &["build", "pod.toml", "-o", "out"])
        .status
        .success());
    let pod = pod_name("tests/fixtures/good/many-apps.toml");
    let units = w
        .path()
        .join("out")
        .join(&pod)
        .join("rootfs/etc/systemd/system");
    let count = |d: &Path| fs::read_dir(d).unwrap().count();
    let before = count(&units);
    // Drop the last app: its unit must disappear.
    let manifest = fs::read_to_string(w.path().join("pod.toml")).unwrap();
    let last = manifest.rfind("[[apps]]").unwrap();
    fs::write(w.path().join("pod.toml"), &manifest[..last]).unwrap();
    let o = podc(w.path(), &["build", "pod.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&units), before - 1);
    // A file someone left in the tree is gone too: the tree is exactly what podc generates.
    fs::write(units.join("stray.service"), "x").unwrap();
    assert!(podc(w.path(), &["build", "pod.toml", "-o", "out"])
        .status
        .success());
    assert!(!units.join("stray.service").exists());
}

#[test]
fn a_directory_podc_did_not_create_is_refused() {
    let w = workdir(GOOD, "pod.yaml");
    let dir = w.path().join("out").join(pod_name(GOOD));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("precious.txt"), "mine").unwrap();
    let o = podc(w.path(), &["build", "pod.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not created by podc"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(dir.join("precious.txt")).unwrap(),
        "mine"
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    // Nor a file in the tree's place.
    let w = workdir(GOOD, "pod.yaml");
    fs::create_dir_all(w.path().join("out")).unwrap();
    fs::write(w.path().join("out").join(pod_name(GOOD)), "a file").unwrap();
    assert_eq!(
        podc(w.path(), &["build", "pod.yaml", "-o", "out"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn several_manifests_build_together_or_not_at_all() {
    let w = workdir("tests/fixtures/good/minimal.yaml", "a.yaml");
    fs::copy(
        common::root().join("tests/fixtures/good/spec-example.yaml"),
        w.path().join("b.yaml"),
    )
    .unwrap();
    fs::copy(
        common::root().join("tests/fixtures/bad/memory-zero.yaml"),
        w.path().join("c.yaml"),
    )
    .unwrap();
    let o = podc(
        w.path(),
        &["build", "a.yaml", "b.yaml", "c.yaml", "-o", "out"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !w.path().join("out").exists(),
        "one bad manifest must stop the whole build"
    );
    let o = podc(w.path(), &["build", "a.yaml", "b.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::read_dir(w.path().join("out")).unwrap().count(), 2);
    // Two manifests for one pod name are an error.
    fs::copy(w.path().join("a.yaml"), w.path().join("d.yaml")).unwrap();
    let o = podc(w.path(), &["build", "a.yaml", "d.yaml", "-o", "out2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--> d.yaml:"), "{}", stderr(&o));
    // A destination that may not be replaced stops the whole build before anything is
    // written: the other pod's tree is neither made nor changed.
    let b_pod = pod_name("tests/fixtures/good/spec-example.yaml");
    let foreign = w.path().join("out3").join(&b_pod);
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("precious.txt"), "mine").unwrap();
    let o = podc(w.path(), &["build", "a.yaml", "b.yaml", "-o", "out3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not created by podc"), "{}", stderr(&o));
    let names: Vec<_> = fs::read_dir(w.path().join("out3"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(&b_pod)],
        "nothing else is written"
    );
}

#[test]
fn output_is_the_same_from_any_directory_and_environment() {
    let a = workdir(GOOD, "pod.yaml");
    let b = tempfile::tempdir().unwrap();
    let nested = b.path().join("some/where/else");
    fs::create_dir_all(&nested).unwrap();
    fs::copy(a.path().join("pod.yaml"), nested.join("pod.yaml")).unwrap();
    assert!(podc(a.path(), &["build", "pod.yaml", "-o", "out"])
        .status
        .success());
    let o = Command::new(env!("CARGO_BIN_EXE_podc"))
        .current_dir(b.path())
        .args(["build", "some/where/else/pod.yaml", "-o", "x/y"])
        .env_clear()
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "tr_TR.UTF-8")
        .env("HOME", "/nonexistent")
        .env("HOSTNAME", "elsewhere")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pod = pod_name(GOOD);
    assert_eq!(
        snapshot(&a.path().join("out").join(&pod)),
        snapshot(&b.path().join("x/y").join(&pod))
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let o = podc(&common::root(), &["schema"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        fs::read_to_string(common::root().join("schemas/pod.schema.json")).unwrap()
    );
}

#[test]
fn example_builds() {
    let w = tempfile::tempdir().unwrap();
    let example = common::root().join("examples/web.yaml");
    let o = podc(
        w.path(),
        &["build", example.to_str().unwrap(), "-o", "build"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(w.path().join("build/web/podc-web.service").exists());
}

/// `podc probe-https`, as the health script runs it: 1 with the reason on standard output when
/// the probe fails (nothing listens on a port just freed), 2 for arguments that are not
/// headers (a name without a value; a value that would add a header line of its own).
#[test]
fn probe_https_fails_with_the_reason_and_refuses_odd_headers() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let o = podc(
        dir.path(),
        &[
            "probe-https",
            "--timeout-ms",
            "2000",
            "--",
            "127.0.0.1",
            &port,
            "/healthz",
            "-v",
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = format!("HTTPS probe GET https://127.0.0.1:{port}/healthz: cannot connect: ");
    assert!(stdout(&o).starts_with(&want), "{}", stdout(&o));
    for headers in [&["X-A"][..], &["X-A", "a\r\nX-B: b"], &["X A", "b"]] {
        let mut args = vec!["probe-https", "--", "127.0.0.1", &port, "/"];
        args.extend(headers);
        let o = podc(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{headers:?}: {}", stdout(&o));
        assert!(stderr(&o).contains("probe-https: "), "{}", stderr(&o));
    }
}

/// `--help` (not `-h`) ends with the command's examples and exit statuses, as its man page
/// does (#28).
#[test]
fn long_help_shows_examples_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["build"][..], &["image", "ls"], &["status"]] {
        let mut args = command.to_vec();
        args.push("--help");
        let o = podc(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let help = stdout(&o);
        let example = format!("Examples:\n  podc {}", command.join(" "));
        assert!(help.contains(&example), "{help}");
        assert!(help.contains("\nExit status:\n  0 "), "{help}");
        let mut args = command.to_vec();
        args.push("-h");
        assert!(!stdout(&podc(dir.path(), &args)).contains("Examples:"));
    }
}
