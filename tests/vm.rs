//! Real hosts: each test boots one VM under qemu (software emulation) with systemd as PID 1 and
//! runs `tests/vm/guest.sh` there, which installs podc from its `.deb` (built here by
//! `packaging/deb`) and pods with `podc install`, as the README says, and checks them through
//! the generated host units: start, limits in the host's cgroup files, OOM kills, live
//! `systemctl set-property`, stop and restart, exit statuses, journal, a reboot, and podc's
//! operator commands (install, reinstall, status, logs, uninstall, man pages, completion).
//!
//! Needs root, qemu-system-x86_64 (package qemu-system-x86), debootstrap, mkfs.ext4
//! (e2fsprogs), the Debian cloud kernel (linux-image-cloud-amd64) and a static busybox
//! (busybox-static), and cargo-deb; `.ci/install` installs them. The root images are built once
//! by `tests/vm/image.sh` and cached in /var/cache/podc-vm. Where something is missing, the tests
//! are recorded as skipped, saying why (`tests/common/skip.rs`); with `CI` set they fail instead.
//!
//! The hosts take about 20 minutes on two cores, so they are `#[ignore]`d: the README's `cargo
//! test` lists them as ignored, and `.ci/run` runs them in its slow step (`cargo test --test vm
//! -- --ignored`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why VM hosts cannot boot here, if they cannot.
fn missing() -> Option<String> {
    if podc::sys::effective_uid() != 0 {
        return Some("not root (debootstrap and the image cache need it)".into());
    }
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        // tests/vm/registry.sh: the image the guests pull, and the registry they pull it from.
        ("umoci", "umoci"),
        ("skopeo", "skopeo"),
        ("docker-registry", "docker-registry"),
        ("python3", "python3"),
    ] {
        if !common::on_path(tool) {
            return Some(format!("{tool} is missing (package {package})"));
        }
    }
    let kernel = fs::read_dir("/boot").ok().and_then(|d| {
        d.flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with("-cloud-amd64"))
    });
    if kernel.is_none() {
        return Some("no Debian cloud kernel in /boot (package linux-image-cloud-amd64)".into());
    }
    if !common::on_path("cargo-deb") {
        return Some("cargo-deb is missing (cargo install cargo-deb --locked)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no static busybox at /bin/busybox (package busybox-static)".into());
    }
    None
}

/// What the guest said: its `vm: ...` lines from the second serial port.
#[derive(Default, Debug)]
struct Report {
    ok: Vec<String>,
    failed: Vec<String>,
    values: Vec<String>,
    times: Vec<String>,
    /// `vm: json NAME DOCUMENT` lines: name → document.
    json: Vec<(String, String)>,
    rebooted: bool,
    done: bool,
}

fn parse(text: &str) -> Report {
    let mut r = Report::default();
    for line in text.lines() {
        let Some(rest) = line.trim_end_matches('\r').strip_prefix("vm: ") else {
            continue;
        };
        if let Some(x) = rest.strip_prefix("ok ") {
            r.ok.push(x.into());
        } else if let Some(x) = rest.strip_prefix("FAIL ") {
            r.failed.push(x.into());
        } else if let Some(x) = rest.strip_prefix("value ") {
            r.values.push(x.into());
        } else if let Some(x) = rest.strip_prefix("time ") {
            r.times.push(x.into());
        } else if let Some(x) = rest.strip_prefix("json ") {
            let (name, doc) = x.split_once(' ').unwrap_or((x, ""));
            r.json.push((name.into(), doc.into()));
        } else if rest == "reboot" {
            r.rebooted = true;
        } else if rest == "done" {
            r.done = true;
        }
    }
    r
}

/// The fewest checks a whole run makes on any host; a run that says less stopped early.
const MIN_CHECKS: usize = 100;

/// The `.deb` the guests install, built once for all hosts by `packaging/deb` (a release
/// build) into this test's own target directory.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
            .to_path_buf();
        let out = Command::new(root().join("packaging/deb"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run packaging/deb");
        assert!(
            out.status.success(),
            "packaging/deb failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // cargo-deb prints the package's path last.
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .expect("packaging/deb names the .deb");
        assert!(path.is_file(), "no .deb at {}", path.display());
        path
    })
}

/// What `podc status main --json` said on a host while the pod ran: the host unit active,
/// both apps active with the manifest's limits read from their cgroups, some memory in use.
fn check_status_json(name: &str, doc: &str) {
    let v: serde_json::Value = serde_json::from_str(doc)
        .unwrap_or_else(|e| panic!("{name}: podc status --json is not JSON ({e}): {doc}"));
    assert_eq!(v["pod"], "main", "{name}: {v}");
    assert_eq!(v["host"]["active"], "active", "{name}: {v}");
    assert!(v["host"]["main_pid"].as_u64().is_some(), "{name}: {v}");
    let apps = v["apps"].as_array().expect("apps");
    let names: Vec<&str> = apps.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["web", "worker"], "{name}: {v}");
    for (app, memory, quota, tasks) in [
        (&apps[0], 67108864u64, 50000u64, 32u64),
        (&apps[1], 50331648, 25000, 16),
    ] {
        assert_eq!(app["state"]["active"], "active", "{name}: {app}");
        assert_eq!(app["state"]["sub"], "running", "{name}: {app}");
        let u = &app["usage"];
        assert_eq!(u["memory_max"], memory, "{name}: {app}");
        assert_eq!(
            u["cpu_max"],
            serde_json::json!([quota, 100000]),
            "{name}: {app}"
        );
        assert_eq!(u["pids_max"], tasks, "{name}: {app}");
        assert!(
            u["memory_current"].as_u64().is_some_and(|m| m > 0),
            "{name}: {app}"
        );
        assert!(
            u["pids_current"].as_u64().is_some_and(|p| p >= 1),
            "{name}: {app}"
        );
        assert!(u["cpu_usage_usec"].as_u64().is_some(), "{name}: {app}");
    }
}

fn boot(name: &str, dist: &str, cgroup: &str) {
    if let Some(why) = missing() {
        common::skip(&format!("VM host: {why}"));
        return;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm").join(name);
    let started = Instant::now();
    let status = Command::new(root().join("tests/vm/run.sh"))
        .args([name, dist, cgroup])
        .arg(deb())
        .arg(&out)
        .status()
        .expect("run tests/vm/run.sh");
    let seconds = started.elapsed().as_secs_f64();
    let results = fs::read_to_string(out.join("results.log")).unwrap_or_default();
    let console = fs::read_to_string(out.join("console.log")).unwrap_or_default();
    let r = parse(&results);
    let summary = format!(
        "{name}: {} checks passed, {} failed, in {seconds:.0} s (image, boot, checks, reboot)\n  \
         times: {}\n  values: {}\n",
        r.ok.len(),
        r.failed.len(),
        r.times.join(", "),
        r.values.join(", ")
    );
    // Straight to stderr, past the test harness's capture: the timings belong in CI's log.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), summary.as_bytes());
    let _ = fs::write(out.join("summary.txt"), &summary);
    let tail: Vec<&str> = console.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        status.success(),
        "{name}: the VM did not power off by itself ({status}); console ends:\n{}",
        tail.join("\n")
    );
    assert!(
        r.failed.is_empty(),
        "{name}: checks failed:\n  {}\n(console: {})",
        r.failed.join("\n  "),
        out.join("console.log").display()
    );
    assert!(
        r.rebooted && r.done,
        "{name}: the guest did not finish both boots; console ends:\n{}",
        tail.join("\n")
    );
    let status = r.json.iter().find(|(n, _)| n == "status-main");
    check_status_json(
        name,
        &status.expect("the guest printed podc status --json").1,
    );
    assert!(
        r.ok.len() >= MIN_CHECKS,
        "{name}: only {} checks ran",
        r.ok.len()
    );
}

#[test]
#[ignore = "slow: a VM host under qemu, 8 to 10 min; .ci/run runs it (cargo test --test vm -- --ignored)"]
fn debian12_cgroup_v2() {
    boot("debian12-v2", "bookworm", "v2");
}

#[test]
#[ignore = "slow: a VM host under qemu, 8 to 10 min; .ci/run runs it (cargo test --test vm -- --ignored)"]
fn debian12_cgroup_v1_hybrid() {
    boot("debian12-v1", "bookworm", "v1");
}

#[test]
#[ignore = "slow: a VM host under qemu, 8 to 10 min; .ci/run runs it (cargo test --test vm -- --ignored)"]
fn debian13_cgroup_v2() {
    boot("debian13-v2", "trixie", "v2");
}

#[test]
fn report_lines_parse() {
    let r = parse("junk\nvm: ok a (1)\r\nvm: FAIL b: x\nvm: value k=v\nvm: time t=1.5\nvm: json j {\"a\": 1}\nvm: reboot\nvm: done\n");
    assert_eq!(r.json, [("j".to_string(), "{\"a\": 1}".to_string())]);
    assert_eq!(r.ok, ["a (1)"]);
    assert_eq!(r.failed, ["b: x"]);
    assert_eq!(r.values, ["k=v"]);
    assert_eq!(r.times, ["t=1.5"]);
    assert!(r.rebooted && r.done);
    assert!(!parse("vm: ok a\n").done);
}
