//! The operator commands where no systemd is PID 1: `podc install` and `uninstall` against a
//! temporary root with a recording stand-in for systemctl (the copy, the swap, what a reinstall
//! keeps, the refusals), `status` parsing and formatting with real cgroup file contents, the
//! `logs` command line, the refusals of the real binary on this machine, and the generated
//! shell completions and man pages. The VM hosts (tests/vm.rs) run the same commands for real.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use podc::host::{
    self, install, uninstall, uninstall_with, InstallOptions, Limit, OpError, PodStatus, Root,
    Systemd, UninstallOptions, Usage,
};

mod common;

fn podc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podc"))
        .args(args)
        .output()
        .expect("podc runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// systemctl as a list of calls, with the units it reports running.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    running: Vec<String>,
}

impl Systemd for Recorder {
    fn systemctl(&mut self, args: &[&str]) -> Result<String, OpError> {
        self.calls.push(args.join(" "));
        Ok(String::new())
    }
    fn is_active(&mut self, unit: &str) -> String {
        if self.running.iter().any(|u| u == unit) {
            "active".into()
        } else {
            "inactive".into()
        }
    }
}

/// Builds `manifest` (YAML text) with `podc build` into DIR/build, returning the pod's tree.
fn build(dir: &Path, name: &str, manifest: &str, extra: &[&str]) -> PathBuf {
    let file = dir.join(format!("{name}.yaml"));
    fs::write(&file, manifest).unwrap();
    let out = dir.join("build");
    let mut args = vec!["build", file.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend(extra);
    let o = podc(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    out.join(name)
}

const MAIN: &str = "podc: 1\nname: main\napps:\n  - name: web\n    image: /img\n    exec: [/bin/true]\n  - name: worker\n    image: /img\n    exec: [/bin/true]\n";
const WEB: &str = "podc: 1\nname: web\nnetwork: private\nstart: connection\napps:\n  - name: web\n    image: /img\n    exec: [/bin/true]\n    ports:\n      - {name: http, port: 8080, hostPort: 18080}\n";

/// `podc install TREE` under `root`, nothing running, with default options.
fn install_plain(tree: &Path, root: &Root) -> podc::host::Installed {
    install(
        tree,
        root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap()
}

/// Every entry below `dir` (relative), with file contents.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn install_copies_the_tree_and_units_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let root = Root(tmp.path().join("root"));
    let mut sd = Recorder::default();
    let done = install(&tree, &root, &mut sd, InstallOptions::default()).unwrap();
    let dest = root.path("/var/lib/podc/main");
    assert_eq!(done.dir, dest);
    assert!(!done.replaced);
    // The installed tree is the built one, file for file, and the marker install made.
    let mut installed = listing(&dest);
    assert!(installed.remove(Path::new(MARKER)).is_some());
    assert_eq!(installed, listing(&tree));
    let unit = root.path("/etc/systemd/system/podc-main.service");
    assert_eq!(done.units, std::slice::from_ref(&unit));
    assert_eq!(
        fs::read(&unit).unwrap(),
        fs::read(tree.join("podc-main.service")).unwrap()
    );
    assert_eq!(sd.calls, ["daemon-reload"]);
    // No staging directory is left beside it.
    let beside: Vec<_> = fs::read_dir(root.path("/var/lib/podc")).unwrap().collect();
    assert_eq!(beside.len(), 1);
}

#[test]
fn install_dir_and_podc_path_come_from_the_unit() {
    let tmp = tempfile::tempdir().unwrap();
    // `%` and `$` are escaped in the unit (%% and $$): the directory must be read back decoded.
    let tree = build(
        tmp.path(),
        "main",
        MAIN,
        &[
            "--install-dir",
            "/srv/pods/100%$x",
            "--podc-path",
            "/opt/podc",
        ],
    );
    let unit = fs::read_to_string(tree.join("podc-main.service")).unwrap();
    assert!(unit.contains(r#""/srv/pods/100%%$$x""#), "{unit}");
    let t = host::read_tree(&tree).unwrap();
    assert_eq!(t.install_dir, "/srv/pods/100%$x");
    let root = Root(tmp.path().join("root"));
    install_plain(&tree, &root);
    assert!(root.path("/srv/pods/100%$x/mounts.toml").is_file());
}

#[test]
fn unit_without_a_launch_line_is_not_a_host_unit() {
    assert_eq!(
        host::install_dir_of("[Service]\nExecStart=/bin/true\n"),
        None
    );
    assert_eq!(
        host::install_dir_of("ExecStart=\"/p\" \"launch\" \"relative\"\n"),
        None
    );
    assert_eq!(
        host::install_dir_of("ExecStart=\"/p\" \"launch\" \"/a\\x20b\"\n").as_deref(),
        Some("/a b")
    );
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    fs::write(
        tree.join("podc-main.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    let e = install(
        &tree,
        &Root(tmp.path().join("root")),
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no ExecStart=<podc> launch <dir>"),
        "{e}"
    );
}

#[test]
fn reinstall_keeps_what_the_pod_owns_and_drops_stale_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let root = Root(tmp.path().join("root"));
    install_plain(&tree, &root);
    let dest = root.path("/var/lib/podc/main");
    // What the launcher and the pod wrote while it ran, and a file no build made.
    fs::create_dir_all(dest.join("rootfs/var/log/journal/abc")).unwrap();
    fs::write(dest.join("rootfs/var/log/journal/abc/system.journal"), "J").unwrap();
    fs::create_dir_all(dest.join("state/web/upper")).unwrap();
    fs::write(dest.join("state/web/upper/written"), "W").unwrap();
    fs::write(dest.join("rootfs/etc/machine-id"), "0123\n").unwrap();
    fs::write(dest.join("rootfs/etc/systemd/system/gone.service"), "stale").unwrap();
    // The manifest changes: one app fewer.
    let tree = build(
        tmp.path(),
        "main",
        "podc: 1\nname: main\napps:\n  - name: web\n    image: /img\n    exec: [/bin/true]\n",
        &[],
    );
    let done = install_plain(&tree, &root);
    assert!(done.replaced);
    assert_eq!(
        done.kept,
        ["rootfs/var/log/journal", "state", "rootfs/etc/machine-id"]
    );
    assert_eq!(
        fs::read_to_string(dest.join("rootfs/var/log/journal/abc/system.journal")).unwrap(),
        "J"
    );
    assert_eq!(
        fs::read_to_string(dest.join("state/web/upper/written")).unwrap(),
        "W"
    );
    assert_eq!(
        fs::read_to_string(dest.join("rootfs/etc/machine-id")).unwrap(),
        "0123\n"
    );
    assert!(!dest.join("rootfs/etc/systemd/system/gone.service").exists());
    assert!(!dest
        .join("rootfs/etc/systemd/system/worker.service")
        .exists());
    // Everything else is the new build, byte for byte.
    let mut installed = listing(&dest);
    installed.retain(|p, _| {
        !p.starts_with("state")
            && !p.starts_with("rootfs/var")
            && p != Path::new("rootfs/etc/machine-id")
            && p != Path::new(MARKER)
    });
    assert_eq!(installed, listing(&tree));
    assert_eq!(fs::read_dir(root.path("/var/lib/podc")).unwrap().count(), 1);
}

#[test]
fn a_running_pod_is_replaced_only_with_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let root = Root(tmp.path().join("root"));
    install_plain(&tree, &root);
    let dest = root.path("/var/lib/podc/main");
    fs::write(dest.join("marker"), "old").unwrap();
    let before = listing(root.0.as_path());
    let mut sd = Recorder {
        running: vec!["podc-main.service".into()],
        ..Recorder::default()
    };
    let e = install(&tree, &root, &mut sd, InstallOptions::default()).unwrap_err();
    assert!(matches!(e, OpError::Running(ref p) if p == "main"), "{e}");
    assert!(e.to_string().contains("--restart"), "{e}");
    assert!(sd.calls.is_empty(), "{:?}", sd.calls);
    assert_eq!(
        listing(root.0.as_path()),
        before,
        "a refused install changed files"
    );

    let done = install(
        &tree,
        &root,
        &mut sd,
        InstallOptions {
            now: false,
            restart: true,
        },
    )
    .unwrap();
    assert!(done.restarted);
    assert!(!dest.join("marker").exists());
    // Stopped only for the swap, started again after the reload.
    assert_eq!(
        sd.calls,
        [
            "stop podc-main.service",
            "daemon-reload",
            "start podc-main.service"
        ]
    );
}

#[test]
fn now_starts_the_socket_of_a_connection_pod_and_the_service_of_others() {
    let tmp = tempfile::tempdir().unwrap();
    let now = InstallOptions {
        now: true,
        restart: false,
    };
    let web = build(tmp.path(), "web", WEB, &[]);
    let root = Root(tmp.path().join("root"));
    let mut sd = Recorder::default();
    let done = install(&web, &root, &mut sd, now).unwrap();
    assert_eq!(sd.calls, ["daemon-reload", "enable --now podc-web.socket"]);
    assert_eq!(done.units.len(), 2);
    assert!(root.path("/etc/systemd/system/podc-web.socket").is_file());

    let main = build(tmp.path(), "main", MAIN, &[]);
    let mut sd = Recorder::default();
    install(&main, &root, &mut sd, now).unwrap();
    assert_eq!(
        sd.calls,
        ["daemon-reload", "enable --now podc-main.service"]
    );
}

#[test]
fn a_socket_unit_the_pod_no_longer_has_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let web = build(tmp.path(), "web", WEB, &[]);
    install(
        &web,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let plain = build(
        tmp.path(),
        "web",
        "podc: 1\nname: web\napps:\n  - name: web\n    image: /img\n    exec: [/bin/true]\n",
        &[],
    );
    let mut sd = Recorder::default();
    install(&plain, &root, &mut sd, InstallOptions::default()).unwrap();
    assert!(!root.path("/etc/systemd/system/podc-web.socket").exists());
    assert_eq!(sd.calls, ["disable --now podc-web.socket", "daemon-reload"]);
}

#[test]
fn a_foreign_install_directory_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let root = Root(tmp.path().join("root"));
    let dest = root.path("/var/lib/podc/main");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("precious"), "data").unwrap();
    let e = install(
        &tree,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, OpError::Foreign { .. }), "{e}");
    assert_eq!(fs::read_to_string(dest.join("precious")).unwrap(), "data");
    assert!(!root.path("/etc/systemd/system/podc-main.service").exists());
}

#[test]
fn uninstall_removes_units_and_tree_or_keeps_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let web = build(tmp.path(), "web", WEB, &[]);
    install(
        &web,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let mut sd = Recorder::default();
    let removed = uninstall("web", &root, &mut sd, false).unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!(
        sd.calls,
        [
            "disable --now podc-web.socket podc-web.service",
            "daemon-reload",
            "reset-failed podc-web.service"
        ]
    );
    assert!(!root.path("/var/lib/podc/web").exists());
    assert_eq!(
        fs::read_dir(root.path("/etc/systemd/system"))
            .unwrap()
            .count(),
        0
    );
    // Gone: a second uninstall says so.
    let e = uninstall("web", &root, &mut sd, false).unwrap_err();
    assert!(e.to_string().contains("pod web is not installed"), "{e}");

    install(
        &web,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    uninstall("web", &root, &mut Recorder::default(), true).unwrap();
    assert!(root.path("/var/lib/podc/web/mounts.toml").exists());
    assert!(!root.path("/etc/systemd/system/podc-web.service").exists());

    for bad in ["", "../x", "a/b", ".hidden"] {
        let e = uninstall(bad, &root, &mut Recorder::default(), false).unwrap_err();
        assert!(matches!(e, OpError::BadName(_)), "{bad:?}: {e}");
    }
}

/// Contents of real cgroup files: v2 from a Debian 13 host's app cgroup, v1 from this
/// machine's hybrid hierarchy (unlimited memory and CPU, as the kernel writes them).
fn v2_files(memory: &str, cpu: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("memory.max", format!("{memory}\n")),
        ("memory.current", "1388544\n".into()),
        ("cpu.max", format!("{cpu}\n")),
        (
            "cpu.stat",
            "usage_usec 35319\nuser_usec 31030\nsystem_usec 4289\nnr_periods 12\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"
                .into(),
        ),
        ("pids.max", "32\n".into()),
        ("pids.current", "2\n".into()),
    ])
}

#[test]
fn cgroup_v2_files_parse() {
    let u = Usage::from_v2(&v2_files("67108864", "50000 100000"));
    assert_eq!(
        u,
        Usage {
            memory_max: Some(Limit::Value(67108864)),
            memory_current: Some(1388544),
            cpu_max: Some((Limit::Value(50000), 100000)),
            cpu_usage_usec: Some(35319),
            pids_max: Some(Limit::Value(32)),
            pids_current: Some(2),
        }
    );
    let u = Usage::from_v2(&v2_files("max", "max 100000"));
    assert_eq!(u.memory_max, Some(Limit::Max(())));
    assert_eq!(u.cpu_max, Some((Limit::Max(()), 100000)));
    // Missing files (a controller not enabled) are unknown, not zero.
    assert_eq!(Usage::from_v2(&BTreeMap::new()), Usage::default());
}

#[test]
fn cgroup_v1_files_parse() {
    let files = BTreeMap::from([
        ("memory.limit_in_bytes", "9223372036854771712\n".to_string()),
        ("memory.usage_in_bytes", "2146304\n".into()),
        ("cpu.cfs_quota_us", "-1\n".into()),
        ("cpu.cfs_period_us", "100000\n".into()),
        ("cpuacct.usage", "35457417420524\n".into()),
        ("pids.max", "max\n".into()),
        ("pids.current", "3\n".into()),
    ]);
    let u = Usage::from_v1(&files);
    assert_eq!(
        u,
        Usage {
            memory_max: Some(Limit::Max(())),
            memory_current: Some(2146304),
            cpu_max: Some((Limit::Max(()), 100000)),
            cpu_usage_usec: Some(35457417420),
            pids_max: Some(Limit::Max(())),
            pids_current: Some(3),
        }
    );
    let mut limited = files.clone();
    limited.insert("memory.limit_in_bytes", "50331648\n".into());
    limited.insert("cpu.cfs_quota_us", "25000\n".into());
    let u = Usage::from_v1(&limited);
    assert_eq!(u.memory_max, Some(Limit::Value(50331648)));
    assert_eq!(u.cpu_max, Some((Limit::Value(25000), 100000)));
}

/// `systemctl show -p ...` of a running host unit (systemd 252).
const SHOW_RUNNING: &str = "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainStatus=0\nMainPID=412\nActiveEnterTimestamp=Sun 2026-11-29 23:10:04 UTC\nInactiveEnterTimestamp=n/a\n";
const SHOW_FAILED: &str = "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainStatus=3\nMainPID=0\nActiveEnterTimestamp=Sun 2026-11-29 23:10:04 UTC\nInactiveEnterTimestamp=Sun 2026-11-29 23:11:00 UTC\n";

#[test]
fn systemctl_show_parses() {
    let s = host::UnitState::from_show(&host::parse_show(SHOW_RUNNING));
    assert_eq!(s.active, "active");
    assert_eq!(s.sub, "running");
    assert_eq!(s.main_pid, Some(412));
    assert_eq!(s.exit_status, Some(0));
    assert_eq!(s.since, "Sun 2026-11-29 23:10:04 UTC");
    let s = host::UnitState::from_show(&host::parse_show(SHOW_FAILED));
    assert_eq!(
        (s.active.as_str(), s.result.as_str()),
        ("failed", "exit-code")
    );
    assert_eq!(s.main_pid, None);
    assert_eq!(s.exit_status, Some(3));
    assert_eq!(s.since, "Sun 2026-11-29 23:11:00 UTC");
}

fn sample_status() -> PodStatus {
    let app = |name: &str, memory: &str, cpu: &str| host::AppStatus {
        name: name.into(),
        state: host::UnitState::from_show(&host::parse_show(
            "ActiveState=active\nSubState=running\nExecMainStatus=0\nMainPID=57\n",
        )),
        cgroup: None,
        usage: Usage::from_v2(&v2_files(memory, cpu)),
        health: None,
        image: None,
    };
    PodStatus {
        pod: "main".into(),
        unit: "podc-main.service".into(),
        dir: "/var/lib/podc/main".into(),
        cgroup: "v2".into(),
        host: host::UnitState::from_show(&host::parse_show(SHOW_RUNNING)),
        apps: vec![
            app("web", "67108864", "50000 100000"),
            app("worker-with-a-long-name", "max", "max 100000"),
        ],
        volumes: vec![
            host::VolumeStatus {
                name: "data".into(),
                path: "/var/lib/podc/volumes/main/data".into(),
                exists: true,
                bytes: Some(3 << 20),
                complete: true,
            },
            host::VolumeStatus {
                name: "spool".into(),
                path: "/var/lib/podc/volumes/main/spool".into(),
                exists: false,
                bytes: None,
                complete: true,
            },
        ],
        network: None,
        users: None,
    }
}

/// A private pod's network is a line of its own: its address, where it has a way out.
#[test]
fn status_shows_a_private_pods_network() {
    let mut s = sample_status();
    s.network =
        Some("private, 10.89.0.2 on podc0, out through NAT, 10.90.0.2 on network backend".into());
    let text = s.to_string();
    assert!(
        text.contains("  tree /var/lib/podc/main, cgroup v2\n  network private, 10.89.0.2 on podc0, out through NAT, 10.90.0.2 on network backend\nAPP "),
        "{text}"
    );
}

/// A pod of its own user namespace shows its range of host ids on a line of its own.
#[test]
fn status_shows_a_pods_range_of_ids() {
    let mut s = sample_status();
    s.users = Some("user namespace, host ids 1879048192-1879113727".into());
    let text = s.to_string();
    assert!(
        text.contains("  tree /var/lib/podc/main, cgroup v2\n  ids: user namespace, host ids 1879048192-1879113727\nAPP "),
        "{text}"
    );
}

#[test]
fn status_table_is_aligned() {
    let want = "\
pod main: active (running) since Sun 2026-11-29 23:10:04 UTC
  unit podc-main.service, main PID 412, exit status 0, result success
  tree /var/lib/podc/main, cgroup v2
APP                      STATE             EXIT  MEMORY            CPU   CPU TIME  TASKS
web                      active (running)  0     1.3 MiB / 64 MiB  0.50  0.04s     2 / 32
worker-with-a-long-name  active (running)  0     1.3 MiB / max     max   0.04s     2 / 32
volume data (persistent): /var/lib/podc/volumes/main/data, 3 MiB on disk
volume spool (persistent): /var/lib/podc/volumes/main/spool, not made yet (at the first launch)
";
    assert_eq!(sample_status().to_string(), want);
}

/// With a health probe, a HEALTH column; read from the pod's records as health.sh writes them.
#[test]
fn status_shows_health_where_an_app_has_a_probe() {
    let dir = "/run/podc/health";
    let read = host::parse_health(
        "/run/podc/health/web:healthy 0\n/run/podc/health/worker-with-a-long-name:unhealthy 2\nnoise\n",
        dir,
    );
    assert_eq!(read["web"], "healthy");
    assert_eq!(read["worker-with-a-long-name"], "unhealthy (2 failed)");
    assert_eq!(read.len(), 2);
    let mut s = sample_status();
    s.apps[0].health = Some(read["web"].clone());
    let want = "\
APP                      STATE             HEALTH   EXIT  MEMORY            CPU   CPU TIME  TASKS
web                      active (running)  healthy  0     1.3 MiB / 64 MiB  0.50  0.04s     2 / 32
worker-with-a-long-name  active (running)  -        0     1.3 MiB / max     max   0.04s     2 / 32
";
    assert!(s.to_string().contains(want), "{s}");
    assert_eq!(
        serde_json::to_value(&s).unwrap()["apps"][0]["health"],
        "healthy"
    );
}

/// Each app whose image is a reference shows the digest the tree recorded for it (what it
/// runs), or that none is recorded yet; an app whose image is a directory shows none.
#[test]
fn status_shows_the_digest_each_app_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(
        tmp.path(),
        "refs",
        "podc: 1\nname: refs\napps:\n  - {name: web, image: \"127.0.0.1:5000/a/web:1\"}\n  - {name: side, image: \"127.0.0.1:5000/a/side:2\"}\n  - {name: dir, image: /img, exec: [/bin/true]}\n",
        &[],
    );
    let plan = podc::launch::read_plan(&tree).unwrap();
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let record = podc::tree::images::ImageRecord::parse(&format!(
        "[images]\n\"127.0.0.1:5000/a/web:1\" = \"{d}\"\n\"127.0.0.1:5000/a/gone:1\" = \"{d}\"\n"
    ))
    .unwrap();
    let images = host::app_images(&plan, &record);
    assert_eq!(images.len(), 2, "{images:?}");
    assert_eq!(images["web"].digest.as_deref(), Some(d));
    assert_eq!(images["side"].digest, None);
    let mut s = sample_status();
    s.apps[0].image = Some(images["web"].clone());
    s.apps[1].image = Some(images["side"].clone());
    let text = s.to_string();
    assert!(
        text.contains(&format!("app web: image 127.0.0.1:5000/a/web:1, {d}\napp worker-with-a-long-name: image 127.0.0.1:5000/a/side:2, not recorded yet (the first launch records it)\nvolume data")),
        "{text}"
    );
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["apps"][0]["image"]["digest"], d);
    assert_eq!(v["apps"][0]["image"]["reference"], "127.0.0.1:5000/a/web:1");
    assert!(v["apps"][1]["image"]["digest"].is_null());
}

#[test]
fn status_json_has_the_numbers() {
    let v = serde_json::to_value(sample_status()).unwrap();
    assert_eq!(v["host"]["main_pid"], 412);
    assert_eq!(v["apps"][0]["usage"]["memory_max"], 67108864);
    assert_eq!(
        v["apps"][0]["usage"]["cpu_max"],
        serde_json::json!([50000, 100000])
    );
    assert_eq!(v["apps"][1]["usage"]["memory_max"], "max");
    assert_eq!(v["apps"][1]["state"]["active"], "active");
    assert_eq!(v["volumes"][0]["path"], "/var/lib/podc/volumes/main/data");
    assert_eq!(v["volumes"][0]["bytes"], 3 << 20);
    assert_eq!(v["volumes"][1]["exists"], false);
}

const DB: &str = "podc: 1\nname: db\nvolumes:\n  - {name: data, kind: persistent, mode: \"0700\", uid: 999}\n  - {name: spool, kind: persistent}\napps:\n  - name: db\n    image: /img\n    exec: [/bin/true]\n    mounts: [{volume: data, path: /data}, {volume: spool, path: /spool}]\n";

/// Makes a persistent volume below `root` as the launcher does at a pod's first launch, with
/// a file in it.
fn launched_volume(root: &Root, pod: &str, volume: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let top = root.path("/var/lib/podc/volumes");
    let dir = top.join(pod).join(volume);
    fs::create_dir_all(&dir).unwrap();
    for d in [&top, &top.join(pod)] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::write(dir.join("table"), vec![7u8; 64 * 1024]).unwrap();
    dir
}

/// Persistent volumes live outside the install directory: a reinstall with --restart keeps
/// them, and so does an uninstall (with or without --keep-data). Only --delete-data removes
/// them (the whole <volumes>/<pod>), after the checks and the stop; for a pod uninstalled
/// before, it removes what that pod left.
/// A pod named after one of podc's own directories beside the install directories (its
/// image store, persistent volumes, registry of id ranges) is refused before anything is
/// written: its tree would be mixed into podc's files.
#[test]
fn a_pod_is_never_installed_into_podcs_own_directories() {
    for name in ["images", "volumes", "userns"] {
        let tmp = tempfile::tempdir().unwrap();
        let tree = build(
            tmp.path(),
            name,
            &MAIN.replace("name: main", &format!("name: {name}")),
            &[],
        );
        let root = Root(tmp.path().join("root"));
        let mut sd = Recorder::default();
        let e = install(&tree, &root, &mut sd, InstallOptions::default()).unwrap_err();
        assert!(matches!(e, OpError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("podc keeps"), "{e}");
        assert!(e.to_string().contains("--install-dir"), "{e}");
        assert!(sd.calls.is_empty(), "{:?}", sd.calls);
        assert!(!root.path(&format!("/var/lib/podc/{name}")).exists());
        assert!(!root
            .path(&format!("/etc/systemd/system/podc-{name}.service"))
            .exists());
    }
}

/// A pod's range of ids outlives `podc uninstall` (its data keeps its owners), and is given up
/// with the data by `--delete-data`.
#[test]
fn delete_data_gives_up_the_pods_range_of_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "db", DB, &[]);
    let root = Root(tmp.path().join("root"));
    let registry = root.path(podc::launch::userns::REGISTRY);
    let entry = registry.join(podc::launch::userns::FIRST_BASE.to_string());
    let install_db = || {
        install_plain(&tree, &root);
        let dir = root.path("/var/lib/podc/db").canonicalize().unwrap();
        fs::create_dir_all(&registry).unwrap();
        fs::write(&entry, format!("{}\n", dir.display())).unwrap();
    };
    install_db();
    uninstall("db", &root, &mut Recorder::default(), false).unwrap();
    assert!(
        entry.exists(),
        "uninstall gave up the range of the data it kept"
    );
    install_db();
    let delete = UninstallOptions {
        keep_data: false,
        delete_data: true,
    };
    uninstall_with("db", &root, &mut Recorder::default(), delete).unwrap();
    assert!(!entry.exists(), "--delete-data kept the range");
}

#[test]
fn persistent_volumes_outlive_uninstall_until_delete_data() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "db", DB, &[]);
    let root = Root(tmp.path().join("root"));
    install_plain(&tree, &root);
    let data = launched_volume(&root, "db", "data");
    let pod_volumes = root.path("/var/lib/podc/volumes/db");

    let mut sd = Recorder {
        running: vec!["podc-db.service".into()],
        ..Default::default()
    };
    let opts = InstallOptions {
        restart: true,
        ..Default::default()
    };
    install(&tree, &root, &mut sd, opts).unwrap();
    assert!(data.join("table").is_file(), "a reinstall lost the data");

    let removed = uninstall("db", &root, &mut Recorder::default(), false).unwrap();
    assert!(!removed.contains(&pod_volumes), "{removed:?}");
    assert!(!root.path("/var/lib/podc/db").exists());
    assert!(data.join("table").is_file(), "uninstall lost the data");

    // The pod is gone; --delete-data removes what it left.
    let delete = UninstallOptions {
        keep_data: false,
        delete_data: true,
    };
    let removed = uninstall_with("db", &root, &mut Recorder::default(), delete).unwrap();
    assert_eq!(removed, std::slice::from_ref(&pod_volumes));
    assert!(!pod_volumes.exists());
    assert!(root.path("/var/lib/podc/volumes").is_dir());

    // Installed: one uninstall with --delete-data stops it and removes units, tree and data.
    install_plain(&tree, &root);
    launched_volume(&root, "db", "data");
    let mut sd = Recorder::default();
    let removed = uninstall_with("db", &root, &mut sd, delete).unwrap();
    assert_eq!(sd.calls[0], "disable --now podc-db.service");
    assert_eq!(removed.last(), Some(&pod_volumes));
    assert!(removed.contains(&root.path("/var/lib/podc/db")));
    assert!(!pod_volumes.exists());

    // Nothing to delete is not an error for an installed pod; for a pod that was never
    // there, it is.
    install_plain(&tree, &root);
    uninstall_with("db", &root, &mut Recorder::default(), delete).unwrap();
    let e = uninstall_with("db", &root, &mut Recorder::default(), delete).unwrap_err();
    assert!(matches!(e, OpError::NotInstalled { .. }), "{e}");
}

/// The volumes directory --delete-data would remove is checked before anything is stopped:
/// a link (to anywhere) or a directory others can write is refused, and nothing is changed.
#[test]
fn delete_data_refuses_a_volumes_directory_podc_did_not_make() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "db", DB, &[]);
    let root = Root(tmp.path().join("root"));
    let delete = UninstallOptions {
        keep_data: false,
        delete_data: true,
    };
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("precious"), "data").unwrap();
    let top = root.path("/var/lib/podc/volumes");
    fs::create_dir_all(&top).unwrap();
    std::os::unix::fs::symlink(&elsewhere, top.join("db")).unwrap();
    install_plain(&tree, &root);
    let mut sd = Recorder::default();
    let e = uninstall_with("db", &root, &mut sd, delete).unwrap_err();
    assert!(
        e.to_string().contains(
            "a symbolic link: not the persistent volumes directory podc made for this pod"
        ),
        "{e}"
    );
    assert!(sd.calls.is_empty(), "{:?}", sd.calls);
    assert!(root.path("/etc/systemd/system/podc-db.service").exists());
    assert!(elsewhere.join("precious").exists());

    fs::remove_file(top.join("db")).unwrap();
    fs::create_dir(top.join("db")).unwrap();
    fs::set_permissions(top.join("db"), fs::Permissions::from_mode(0o777)).unwrap();
    let e = uninstall_with("db", &root, &mut sd, delete).unwrap_err();
    assert!(
        e.to_string()
            .contains("mode 0777, writable by group or others"),
        "{e}"
    );
    assert!(sd.calls.is_empty(), "{:?}", sd.calls);

    // The command line will not keep and delete the data at once.
    let o = podc(&[
        "uninstall",
        "db",
        "--keep-data",
        "--delete-data",
        "--root",
        root.0.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}

/// `podc status` lists each persistent volume of the plan with its directory, and what it
/// takes on disk once the launcher has made it.
#[test]
fn status_lists_persistent_volumes_with_their_size() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "db", DB, &[]);
    let root = Root(tmp.path().join("root"));
    let plan = podc::launch::read_plan(&tree).unwrap();
    launched_volume(&root, "db", "data");
    let v = host::persistent_volumes(&plan, &root);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].name, "data");
    assert_eq!(v[0].path, root.path("/var/lib/podc/volumes/db/data"));
    assert!(v[0].exists && v[0].complete);
    let bytes = v[0].bytes.unwrap();
    assert!((64 * 1024..1 << 20).contains(&bytes), "{bytes}");
    assert_eq!(
        (v[1].name.as_str(), v[1].exists, v[1].bytes),
        ("spool", false, None)
    );
}

#[test]
fn app_cgroups_are_found_below_payload() {
    // The v2 layout nspawn and the pod's systemd make below the host unit.
    let tmp = tempfile::tempdir().unwrap();
    let pod = tmp.path().join("machine.slice/podc-main.service");
    let web = pod.join("payload/system.slice/web.service");
    fs::create_dir_all(&web).unwrap();
    fs::create_dir_all(pod.join("payload/init.scope")).unwrap();
    for (f, c) in v2_files("67108864", "50000 100000") {
        fs::write(web.join(f), c).unwrap();
    }
    let (dir, usage) =
        host::read_usage(tmp.path(), podc::manifest::CgroupVersion::V2, "main", "web");
    assert_eq!(dir, Some(web));
    assert_eq!(usage.memory_max, Some(Limit::Value(67108864)));
    let (dir, usage) = host::read_usage(
        tmp.path(),
        podc::manifest::CgroupVersion::V2,
        "main",
        "worker",
    );
    assert_eq!((dir, usage), (None, Usage::default()));
}

#[test]
fn logs_reads_the_running_pod_through_machined_else_its_tree() {
    let dir = Path::new("/var/lib/podc/main");
    assert_eq!(
        host::logs_command("main", dir, true, Some("web"), true),
        ["journalctl", "-M", "podc-main", "-u", "web.service", "-f"]
    );
    assert_eq!(
        host::logs_command("main", dir, false, None, false),
        [
            "journalctl",
            "-D",
            "/var/lib/podc/main/rootfs/var/log/journal",
            "--no-pager"
        ]
    );
}

#[test]
fn commands_refuse_without_systemd_as_pid_1() {
    if Path::new("/run/systemd/system").exists() {
        common::skip("this host runs systemd as PID 1");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let runs: [&[&str]; 4] = [
        &["install", tree.to_str().unwrap(), "--now"],
        &["uninstall", "main"],
        &["status", "main"],
        &["logs", "main", "web"],
    ];
    for args in runs {
        let o = podc(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        let err = text(&o.stderr);
        if args[0] == "logs" {
            // No pod is installed without systemd, but one launched by hand may run, or be
            // read by its tree.
            assert!(
                err.contains("pod main is neither installed here nor running")
                    && err.contains("give its tree: podc logs TREE [APP]"),
                "{args:?}: {err}"
            );
        } else if podc::sys::effective_uid() == 0 || args[0] == "status" {
            assert!(
                err.contains("systemd is not running as PID 1"),
                "{args:?}: {err}"
            );
        }
        if args[0] != "status" {
            continue;
        }
        // status says what it needs and what there is instead; it installs nothing (#28: it
        // said there was "no systemd to install a pod into").
        for words in [
            "`podc status` shows a pod installed",
            "podc-main.service",
            "`podc logs TREE`",
        ] {
            assert!(err.contains(words), "{args:?}: {err}");
        }
        assert!(!err.contains("install a pod into"), "{args:?}: {err}");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            insta::assert_snapshot!("operate_status_without_systemd", err);
        });
    }
    // Nothing was installed anywhere.
    assert!(!Path::new("/etc/systemd/system/podc-main.service").exists());
}

#[test]
fn install_needs_root() {
    // Root, to run podc as another user with setpriv.
    if !common::as_root() || !common::program("setpriv", "util-linux") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "main", MAIN, &[]);
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_podc"))
        .args(["install", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("needs root"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn install_and_uninstall_with_root_print_what_systemctl_would_do() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "web", WEB, &[]);
    let root = tmp.path().join("image");
    let r = root.to_str().unwrap();
    let o = podc(&["install", tree.to_str().unwrap(), "--now", "--root", r]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("would run: systemctl daemon-reload\nwould run: systemctl enable --now podc-web.socket\n"), "{out}");
    assert!(out.contains("(new)"), "{out}");
    assert!(root.join("var/lib/podc/web/mounts.toml").is_file());
    let o = podc(&["uninstall", "web", "--root", r]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!root.join("var/lib/podc/web").exists());
    // Not a tree: the launcher's own error, exit 2.
    let o = podc(&["install", tmp.path().to_str().unwrap(), "--root", r]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a podc tree"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bash_completion_loads_and_completes() {
    if !common::program("bash", "bash") {
        return;
    }
    let o = podc(&["completions", "bash"]);
    assert!(o.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("podc.bash");
    fs::write(&script, &o.stdout).unwrap();
    // As bash-completion would: source it, then call the registered function the way
    // programmable completion does (COMP_WORDS, COMP_CWORD; arguments: command, word, previous).
    let complete = |line: &[&str]| -> String {
        let words = line
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let prog = format!(
            ". '{}' && complete -p podc && COMP_WORDS=({words}) && COMP_CWORD={} && \
             _podc podc '{}' '{}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            line.len() - 1,
            line[line.len() - 1],
            line[line.len() - 2],
        );
        let o = Command::new("bash").args(["-c", &prog]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let out = complete(&["podc", "ins"]);
    let mut lines = out.lines();
    let registration = lines.next().unwrap();
    assert!(registration.starts_with("complete ") && registration.ends_with(" podc"));
    assert!(registration.contains("-F _podc"), "{registration}");
    assert_eq!(lines.collect::<Vec<_>>(), ["install"]);
    let subcommands = complete(&["podc", ""]);
    for c in [
        "build",
        "check",
        "install",
        "uninstall",
        "status",
        "logs",
        "completions",
    ] {
        assert!(
            subcommands.lines().any(|l| l == c),
            "{c} missing: {subcommands}"
        );
    }
    // Hidden commands (`man`, for packaging; `probe-grpc`, for pods' health probes) are not
    // offered, and `-V` still is.
    for hidden in ["man", "probe-grpc"] {
        assert!(!subcommands.lines().any(|l| l == hidden), "{subcommands}");
    }
    let top = complete(&["podc", "-"]);
    assert!(top.lines().any(|l| l == "-V"), "{top}");
    let flags = complete(&["podc", "install", "--"]);
    assert!(flags.lines().any(|l| l == "--restart"), "{flags}");
    for shell in ["zsh", "fish"] {
        let o = podc(&["completions", shell]);
        assert!(o.status.success() && text(&o.stdout).contains("install"));
    }
}

/// podc.5, as groff shows it, names every key of every mapping of `podc schema` as an entry
/// of its own (`name (kind…)` at the start of a line), and has the examples.
fn manifest_page_names_every_key(roff: &str) {
    let o = podc(&["schema"]);
    assert!(o.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut keys = Vec::new();
    let mut mappings = vec![("(top level)".to_string(), &schema)];
    for (name, def) in schema["definitions"].as_object().unwrap() {
        mappings.push((name.clone(), def));
    }
    for (mapping, node) in mappings {
        for key in node["properties"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.keys())
        {
            keys.push((mapping.clone(), key.clone()));
        }
    }
    assert!(keys.len() > 100, "{keys:?}");
    let shown = if common::on_path("groff") {
        let mut child = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-bcou"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(roff.as_bytes())
            .unwrap();
        text(&child.wait_with_output().unwrap().stdout)
    } else {
        // Without groff (skipped above, outside CI) the entries are read from the roff.
        roff.replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
            .replace("\\-", "-")
    };
    let missing: Vec<String> = keys
        .iter()
        .filter(|(_, key)| {
            !shown
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{key} (")))
        })
        .map(|(mapping, key)| format!("{mapping}.{key}"))
        .collect();
    assert!(missing.is_empty(), "podc.5 lacks {missing:?}");
    for section in ["KEYS", "VALUES", "EXAMPLES", "SEE ALSO"] {
        assert!(
            shown.lines().any(|l| l.trim() == section),
            "podc.5: no {section}"
        );
    }
    for example in ["name: hello", "[[apps]]", "name: web"] {
        assert!(shown.contains(example), "podc.5: no example with {example}");
    }
}

#[test]
fn every_command_has_a_man_page_that_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let o = podc(&["man", tmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut pages: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    // One per command clap knows that is not hidden (nested ones as `podc-image-ls.1`), and
    // the top one.
    fn pages_of(c: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for s in c.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", s.get_name());
            out.push(format!("{name}.1"));
            pages_of(s, &name, out);
        }
    }
    let cli = <podc::cli::Cli as clap::CommandFactory>::command();
    // And the manifest format, podc.5.
    let mut want = vec!["podc.1".to_string(), "podc.5".to_string()];
    pages_of(&cli, "podc", &mut want);
    want.sort();
    assert_eq!(pages, want);
    assert!(pages.contains(&"podc-install.1".to_string()));
    assert!(pages.contains(&"podc-image-import.1".to_string()));
    manifest_page_names_every_key(&fs::read_to_string(tmp.path().join("podc.5")).unwrap());
    if !common::on_path("groff") {
        common::skip("the man pages not rendered: groff is missing (package groff-base)");
        return;
    }
    for page in &pages {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(tmp.path().join(page))
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{page}: {}",
            text(&o.stderr)
        );
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-bcou"])
            .arg(tmp.path().join(page))
            .output()
            .unwrap();
        let shown = text(&o.stdout);
        let name = page.trim_end_matches(".1").trim_end_matches(".5");
        assert!(
            shown.contains("NAME") && shown.contains(name),
            "{page}: {shown}"
        );
        // Each command's page says how it ends and shows it used (#28: the pages were the
        // --help text alone).
        if page.ends_with(".1") {
            for heading in ["EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
                assert!(
                    shown.lines().any(|l| l == heading),
                    "{page}: no {heading} section:\n{shown}"
                );
            }
            assert!(
                shown.contains(&format!("       {} ", name.replace('-', " "))),
                "{page}: no example runs it:\n{shown}"
            );
        }
    }
    let install = Command::new("groff")
        .args(["-man", "-Tascii", "-P-bcou"])
        .arg(tmp.path().join("podc-install.1"))
        .output()
        .unwrap();
    let shown = text(&install.stdout);
    assert!(
        shown.contains("--restart") && shown.contains("TREE"),
        "{shown}"
    );
}

#[test]
fn show_of_several_units_splits_per_unit() {
    // `nsenter -t <pod PID 1> -m -p systemctl show -p ... web.service worker.service`, as
    // systemd 252 printed it for a running pod (its own property order).
    let text = "Result=success\nExecMainStatus=0\nActiveState=active\nSubState=running\n\nResult=exit-code\nExecMainStatus=3\nActiveState=failed\nSubState=failed\n";
    let states = host::parse_show_blocks(text, 2);
    let s: Vec<_> = states
        .iter()
        .map(|s| {
            let s = s.as_ref().unwrap();
            (s.active.as_str(), s.sub.as_str(), s.exit_status)
        })
        .collect();
    assert_eq!(
        s,
        [
            ("active", "running", Some(0)),
            ("failed", "failed", Some(3))
        ]
    );
    // Fewer blocks than units (systemctl stopped early): the rest are unknown.
    assert_eq!(host::parse_show_blocks("", 1), [None]);
}

/// An edited tree is not installed (#22's red team): a host unit with an `ExecStartPre=` and
/// `ExecStart="/bin/sh" "launch" "/root/.ssh"`, or a tree with a file `podc build` never
/// writes (`authorized_keys`), is refused naming the file and line, and nothing is written
/// under the root.
#[test]
fn an_edited_tree_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = build(tmp.path(), "web", WEB, &[]);
    let unit = tree.join("podc-web.service");
    let good = fs::read_to_string(&unit).unwrap();
    let root = tmp.path().join("image");
    let r = root.to_str().unwrap();
    for (what, edit) in [
        (
            "ExecStartPre",
            good.replace(
                "Type=notify\n",
                "Type=notify\nExecStartPre=/bin/sh -c 'id > /tmp/x'\n",
            ),
        ),
        (
            "ExecStart=",
            good.replace(
                "ExecStart=\"/usr/bin/podc\" \"launch\" \"/var/lib/podc/web\"",
                "ExecStart=\"/bin/sh\" \"launch\" \"/root/.ssh\"",
            ),
        ),
    ] {
        assert_ne!(edit, good, "{what}: the edit did not apply");
        fs::write(&unit, &edit).unwrap();
        let o = podc(&["install", tree.to_str().unwrap(), "--root", r]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: installed: {err}");
        assert!(
            err.contains("podc-web.service: line ") && err.contains(what),
            "{err}"
        );
        assert!(!root.exists(), "{what}: something was written");
    }
    fs::write(&unit, &good).unwrap();
    fs::write(tree.join("authorized_keys"), "ssh-ed25519 AAAA attacker").unwrap();
    let o = podc(&["install", tree.to_str().unwrap(), "--root", r]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "installed: {err}");
    assert!(
        err.contains("authorized_keys: a file `podc build` does not write"),
        "{err}"
    );
    assert!(!root.exists());
    fs::remove_file(tree.join("authorized_keys")).unwrap();
    let o = podc(&["install", tree.to_str().unwrap(), "--root", r]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

// --- what install and uninstall take for their own (#22) -----------------------------------

/// The file `podc install` creates in an install directory it made.
const MARKER: &str = ".podc-installed";

/// Plants, in `dir` below `root`, a directory that looks like an installed tree: the header of
/// a generated `mounts.toml` (or a real tree's whole plan) and a file someone cares about.
fn plant(root: &Root, dir: &str, plan: &str) -> PathBuf {
    let d = root.path(dir);
    fs::create_dir_all(d.join("rootfs")).unwrap();
    fs::write(d.join("mounts.toml"), plan).unwrap();
    fs::write(d.join("thesis.tex"), "years of work").unwrap();
    d
}

const FORGED: &str = "# Generated by podc from forged.yaml. Do not edit.\n";

/// A directory with a forged header is nobody's install directory: install into it is refused
/// (whoever owns it), the files stay, and nothing was written or run.
#[test]
fn a_forged_header_does_not_make_a_directory_podcs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    for (dir, owner) in [("/home/alice", Some(1000)), ("/srv/data", None)] {
        let tree = build(tmp.path(), "main", MAIN, &["--install-dir", dir]);
        let d = plant(&root, dir, FORGED);
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
        }
        let before = listing(&root.0);
        let mut sd = Recorder::default();
        let e = install(&tree, &root, &mut sd, InstallOptions::default()).unwrap_err();
        assert!(matches!(e, OpError::Foreign { .. }), "{dir}: {e}");
        assert!(e.to_string().contains("refusing"), "{e}");
        assert_eq!(
            listing(&root.0),
            before,
            "{dir}: a refused install changed files"
        );
        assert_eq!(
            fs::read_to_string(d.join("thesis.tex")).unwrap(),
            "years of work"
        );
        assert!(sd.calls.is_empty(), "{:?}", sd.calls);
    }
}

/// An installed unit edited (or planted) to name a directory podc did not install: uninstall
/// refuses before it stops, disables or removes anything.
#[test]
fn uninstall_removes_only_a_directory_podc_installed_and_checks_first() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let web = build(tmp.path(), "web", WEB, &[]);
    install(
        &web,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let main = build(tmp.path(), "main", MAIN, &[]);
    install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let unit = root.path("/etc/systemd/system/podc-web.service");
    let good = fs::read_to_string(&unit).unwrap();
    let plan = fs::read_to_string(web.join("mounts.toml")).unwrap();
    // A forged header, a real tree's plan planted beside a user's files, and another pod's
    // install directory (its marker names main).
    plant(&root, "/srv/data", FORGED);
    plant(&root, "/srv/copy", &plan);
    for dir in ["/srv/data", "/srv/copy", "/var/lib/podc/main"] {
        fs::write(&unit, good.replace("/var/lib/podc/web", dir)).unwrap();
        let before = listing(&root.0);
        let mut sd = Recorder::default();
        let e = uninstall("web", &root, &mut sd, false).unwrap_err();
        assert!(matches!(e, OpError::Foreign { .. }), "{dir}: {e}");
        assert_eq!(
            listing(&root.0),
            before,
            "{dir}: a refused uninstall changed files"
        );
        assert!(sd.calls.is_empty(), "{dir}: {:?}", sd.calls);
        assert!(root.path("/etc/systemd/system/podc-web.socket").is_file());
    }
    // --keep-data removes the units alone, and leaves the directory be.
    uninstall("web", &root, &mut Recorder::default(), true).unwrap();
    assert!(!unit.exists());
    assert!(root.path("/var/lib/podc/main/mounts.toml").is_file());
    assert!(root.path("/srv/data/thesis.tex").is_file());
}

/// Another pod's install directory is not replaced: a second pod built with the same
/// `--install-dir`, or a marker that names another pod.
#[test]
fn a_marker_naming_another_pod_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let main = build(tmp.path(), "main", MAIN, &[]);
    install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let web = build(
        tmp.path(),
        "web",
        WEB,
        &["--install-dir", "/var/lib/podc/main"],
    );
    let before = listing(&root.0);
    let e = install(
        &web,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("pod main"), "{e}");
    assert_eq!(listing(&root.0), before);

    let marker = root.path("/var/lib/podc/main").join(MARKER);
    let text = fs::read_to_string(&marker).unwrap();
    assert!(text.contains("\"main\""), "{text}");
    fs::write(&marker, text.replace("\"main\"", "\"web\"")).unwrap();
    let before = listing(&root.0);
    let mut sd = Recorder::default();
    let e = install(&main, &root, &mut sd, InstallOptions::default()).unwrap_err();
    assert!(matches!(e, OpError::Foreign { .. }), "{e}");
    let e = uninstall("main", &root, &mut sd, false).unwrap_err();
    assert!(matches!(e, OpError::Foreign { .. }), "{e}");
    assert_eq!(listing(&root.0), before);
    assert!(sd.calls.is_empty(), "{:?}", sd.calls);
}

/// The marker, the install directory and the directories above it must be root's: a marker
/// another user owns, a marker that is a link, an install directory another user owns or can
/// write, or a parent others can write, and install and uninstall refuse.
#[test]
fn a_marker_or_directory_not_roots_is_refused() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let main = build(tmp.path(), "main", MAIN, &[]);
    install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let dest = root.path("/var/lib/podc/main");
    let marker = dest.join(MARKER);
    let text = fs::read_to_string(&marker).unwrap();
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    let parent = root.path("/var/lib/podc");
    /// What is changed, how, and how it is undone.
    type Edit<'a> = (&'a str, &'a dyn Fn(), &'a dyn Fn());
    let edits: [Edit; 5] = [
        (
            "marker owned by 1000",
            &|| chown(&marker, Some(1000), Some(1000)).unwrap(),
            &|| chown(&marker, Some(0), Some(0)).unwrap(),
        ),
        (
            "marker a symbolic link",
            &|| {
                fs::write(tmp.path().join("elsewhere"), &text).unwrap();
                fs::remove_file(&marker).unwrap();
                symlink(tmp.path().join("elsewhere"), &marker).unwrap();
            },
            &|| {
                fs::remove_file(&marker).unwrap();
                fs::write(&marker, &text).unwrap();
            },
        ),
        (
            "install directory owned by 1000",
            &|| chown(&dest, Some(1000), Some(1000)).unwrap(),
            &|| chown(&dest, Some(0), Some(0)).unwrap(),
        ),
        (
            "install directory writable by all",
            &|| mode(&dest, 0o777),
            &|| mode(&dest, 0o755),
        ),
        ("parent writable by all", &|| mode(&parent, 0o777), &|| {
            mode(&parent, 0o755)
        }),
    ];
    for (what, edit, undo) in edits {
        edit();
        let before = listing(&root.0);
        let mut sd = Recorder::default();
        let e = install(&main, &root, &mut sd, InstallOptions::default()).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{what}: {e}");
        let e = uninstall("main", &root, &mut sd, false).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{what}: {e}");
        assert_eq!(listing(&root.0), before, "{what}: files changed");
        assert!(sd.calls.is_empty(), "{what}: {:?}", sd.calls);
        undo();
        install(
            &main,
            &root,
            &mut Recorder::default(),
            InstallOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{what}, undone: {e}"));
    }
}

/// The whole life of a pod with its marker: a first install makes it (root's, 0644, naming the
/// pod), an upgrade makes a new one in the new tree, uninstall removes the directory with it.
#[test]
fn install_upgrade_uninstall_keep_the_marker() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let main = build(tmp.path(), "main", MAIN, &[]);
    let dest = root.path("/var/lib/podc/main");
    let check = || {
        let m = fs::symlink_metadata(dest.join(MARKER)).unwrap();
        assert!(m.is_file());
        assert_eq!((m.uid(), m.mode() & 0o7777, m.nlink()), (0, 0o644, 1));
        let text = fs::read_to_string(dest.join(MARKER)).unwrap();
        assert!(text.contains("pod = \"main\"\n"), "{text}");
        m.ino()
    };
    install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let first = check();
    fs::create_dir_all(dest.join("state/web")).unwrap();
    let done = install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    assert!(done.replaced);
    assert_eq!(done.kept, ["state"]);
    assert_ne!(check(), first, "the upgrade's marker is the new tree's own");
    // Installing from an installed tree works: its marker is not copied (O_EXCL would fail).
    install(
        &dest,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    check();
    let removed = uninstall("main", &root, &mut Recorder::default(), false).unwrap();
    assert_eq!(removed.last(), Some(&dest));
    assert!(!dest.exists());
}

/// A directory from a podc that made no marker is not replaced; the message says what to do.
#[test]
fn an_install_directory_without_a_marker_is_refused_saying_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root(tmp.path().join("root"));
    let main = build(tmp.path(), "main", MAIN, &[]);
    install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap();
    let dest = root.path("/var/lib/podc/main");
    let _ = fs::remove_file(dest.join(MARKER));
    let e = install(
        &main,
        &root,
        &mut Recorder::default(),
        InstallOptions::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(MARKER) && msg.contains("--keep-data"), "{msg}");
    let e = uninstall("main", &root, &mut Recorder::default(), false).unwrap_err();
    assert!(e.to_string().contains("--keep-data"), "{e}");
    assert!(dest.join("mounts.toml").is_file());
}
