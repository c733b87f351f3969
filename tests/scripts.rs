//! The exit-status scripts of the tree (`rootfs/etc/podc/result.sh` and `exit.sh`), run on their
//! own with /bin/sh against a fake results directory and a fake `systemctl` on PATH: every way
//! an app can end gets the status the README's "Pod lifecycle" promises, and the pod exits with
//! the first failure in manifest order. tests/launch.rs proves the same end to end in nspawn.
//!
//! shellcheck checks both scripts; it skips, saying why, where shellcheck is missing, except in
//! CI (`CI` set), where `.ci/run` installs it.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The scripts as `podc build` writes them for a fixture: (result.sh, exit.sh, tree).
fn scripts() -> (String, String, podc::render::Files) {
    let files = common::compile(&common::root().join("examples/web.yaml"), None).unwrap();
    (
        files["rootfs/etc/podc/result.sh"].clone(),
        files["rootfs/etc/podc/exit.sh"].clone(),
        files,
    )
}

/// A directory with the scripts, a fake `systemctl` in `bin/` and an empty `results/`.
///
/// The fake prints the file `show` for `systemctl show …` (after logging its arguments to
/// `show.args`), and logs any other call's arguments to `calls`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let (result, exit, _) = scripts();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("result.sh"), result).unwrap();
        std::fs::write(p.join("exit.sh"), exit).unwrap();
        std::fs::create_dir(p.join("bin")).unwrap();
        let fake = format!(
            "#!/bin/sh\nif [ \"$1\" = show ]; then\n    echo \"$*\" >> '{0}/show.args'\n    cat '{0}/show' 2>/dev/null\nelse\n    echo \"$*\" >> '{0}/calls'\nfi\n",
            p.display()
        );
        let fake_path = p.join("bin/systemctl");
        std::fs::write(&fake_path, fake).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sh(&self, script: &str, args: &[&str]) {
        let status = Command::new("/bin/sh")
            .arg(self.path(script))
            .args(args)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .env("PODC_RESULT_DIR", self.path("results"))
            .status()
            .expect("/bin/sh runs");
        assert!(status.success(), "{script} {args:?}: {status}");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// What result.sh records for an app whose unit `systemctl show` describes with `show`.
fn recorded(show: &str) -> String {
    let s = Sandbox::new();
    std::fs::write(s.path("show"), show).unwrap();
    s.sh("result.sh", &["web-1"]);
    // It asks about the app's own unit, for exactly these properties.
    assert_eq!(
        s.read("show.args"),
        "show -p Result -p ExecMainCode -p ExecMainStatus -p InactiveExitTimestampMonotonic web-1.service\n"
    );
    s.read("results/web-1")
}

fn show(result: &str, code: u32, status: u32, started: u64) -> String {
    format!(
        "Result={result}\nExecMainCode={code}\nExecMainStatus={status}\nInactiveExitTimestampMonotonic={started}\n"
    )
}

#[test]
fn result_script_records_every_way_an_app_ends() {
    // (what systemctl show says, what is recorded, why)
    let cases = [
        (show("success", 1, 0, 123), "0 success\n", "exited 0"),
        (
            show("success", 0, 0, 123),
            "0 success\n",
            "stopped by systemd",
        ),
        (
            show("success", 0, 0, 0),
            "1 success\n",
            "never ran: a dependency failed",
        ),
        (
            show("exit-code", 1, 3, 123),
            "3 exit-code\n",
            "its exit code",
        ),
        (
            show("exit-code", 1, 255, 123),
            "255 exit-code\n",
            "its exit code",
        ),
        (
            show("exit-code", 1, 203, 123),
            "203 exit-code\n",
            "systemd's code for a missing program",
        ),
        (show("signal", 2, 15, 123), "143 signal\n", "128 + SIGTERM"),
        (
            show("core-dump", 3, 11, 123),
            "139 core-dump\n",
            "128 + SIGSEGV, dumped",
        ),
        (show("oom-kill", 2, 9, 123), "137 oom-kill\n", "OOM kill"),
        (
            show("oom-kill", 1, 0, 123),
            "137 oom-kill\n",
            "OOM kill of another process of the app",
        ),
        (
            show("exit-code", 1, 0, 123),
            "1 exit-code\n",
            "a failure is never 0",
        ),
        (
            show("timeout", 0, 0, 123),
            "1 timeout\n",
            "no status at all",
        ),
        (
            show("exit-code", 4, 7, 123),
            "1 exit-code\n",
            "an unknown way of ending",
        ),
        (String::new(), "1 \n", "systemctl said nothing"),
    ];
    for (show, want, why) in cases {
        assert_eq!(recorded(&show), want, "{why}: {show:?}");
    }
}

#[test]
fn result_script_ignores_other_properties_and_values_with_equals_signs() {
    let show = "Id=x.service\nResult=exit-code\nExecMainCode=1\nExecMainStatus=42\nInactiveExitTimestampMonotonic=9\nDescription=a=b\n";
    assert_eq!(recorded(show), "42 exit-code\n");
}

/// The pod's exit status for records `(app, content or None for no record)` in manifest order.
fn exit_status(records: &[(&str, Option<&str>)]) -> String {
    let s = Sandbox::new();
    std::fs::create_dir(s.path("results")).unwrap();
    for (app, content) in records {
        if let Some(c) = content {
            std::fs::write(s.path("results").join(app), c).unwrap();
        }
    }
    let apps: Vec<&str> = records.iter().map(|(a, _)| *a).collect();
    s.sh("exit.sh", &apps);
    s.read("calls")
}

#[test]
fn exit_script_exits_with_the_first_failure_in_manifest_order() {
    let exit = |n: u32| format!("--no-block exit {n}\n");
    let ok = Some("0 success\n");
    assert_eq!(exit_status(&[("a", ok), ("b", ok)]), exit(0));
    assert_eq!(
        exit_status(&[
            ("a", ok),
            ("b", Some("3 exit-code\n")),
            ("c", Some("5 exit-code\n"))
        ]),
        exit(3)
    );
    assert_eq!(
        exit_status(&[("c", Some("5 exit-code\n")), ("b", Some("3 exit-code\n"))]),
        exit(5)
    );
    assert_eq!(
        exit_status(&[("a", Some("143 signal\n")), ("b", ok)]),
        exit(143)
    );
    assert_eq!(
        exit_status(&[("a", ok), ("b", Some("137 oom-kill\n"))]),
        exit(137)
    );
    assert_eq!(
        exit_status(&[("a", ok), ("b", Some("203 exit-code\n"))]),
        exit(203)
    );
    // No record: the app never ran.
    assert_eq!(
        exit_status(&[("a", ok), ("b", None), ("c", Some("9 exit-code\n"))]),
        exit(1)
    );
    // An empty record counts as no record.
    assert_eq!(exit_status(&[("a", Some(""))]), exit(1));
}

#[test]
fn result_and_exit_scripts_work_together() {
    let s = Sandbox::new();
    for (app, show) in [
        ("cache", show("success", 1, 0, 5)),
        ("nginx", show("signal", 2, 9, 5)),
    ] {
        std::fs::write(s.path("show"), show).unwrap();
        s.sh("result.sh", &[app]);
    }
    s.sh("exit.sh", &["cache", "nginx"]);
    assert_eq!(s.read("calls"), "--no-block exit 137\n");
}

/// The words of an `Exec*=` line whose words are all quoted without escapes, as podc writes the
/// script lines.
fn words(line: &str) -> Vec<&str> {
    line.split(' ')
        .map(|w| {
            w.strip_prefix('"')
                .and_then(|w| w.strip_suffix('"'))
                .unwrap()
        })
        .collect()
}

/// The units run exactly these scripts, from the tree, with the apps in manifest order.
#[test]
fn units_run_the_scripts_of_the_tree() {
    let (_, _, files) = scripts();
    let stop = |unit: &str| -> Vec<String> {
        let text = &files[&format!("rootfs/etc/systemd/system/{unit}")];
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStop="))
            .unwrap();
        words(line).into_iter().map(String::from).collect()
    };
    assert_eq!(
        stop("podc-exit.service"),
        ["/usr/bin/sh", "/etc/podc/exit.sh", "cache", "nginx"]
    );
    assert_eq!(
        stop("podc-result@.service"),
        ["/usr/bin/sh", "/etc/podc/result.sh", "%i"]
    );
    for script in ["/etc/podc/exit.sh", "/etc/podc/result.sh"] {
        assert!(files.contains_key(&format!("rootfs{script}")), "{script}");
    }
}

/// health.sh from a tree with probes, run with bash against a fake `systemctl` (the Sandbox's)
/// and a TCP probe of a listener on loopback that the test opens and closes: `start` waits for
/// the first pass and starts the timer, or gives up after the start period and kills the app;
/// `live` counts failed probes in a row and restarts the app at the limit.
#[test]
fn health_script_waits_counts_and_restarts() {
    let files = common::compile(
        &common::root().join("tests/fixtures/good/health-probes.yaml"),
        None,
    )
    .unwrap();
    let s = Sandbox::new();
    std::fs::write(s.path("health.sh"), &files["rootfs/etc/podc/health.sh"]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let run = |mode: &str, start_ms: &str| {
        let o = Command::new("/usr/bin/bash")
            .arg(s.path("health.sh"))
            .args([
                mode,
                "web",
                start_ms,
                "100",
                "1000",
                "2",
                "tcp",
                "127.0.0.1",
                &port,
            ])
            .env("PATH", format!("{}:/usr/bin:/bin", s.path("bin").display()))
            .env("PODC_HEALTH_DIR", s.path("health"))
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(s.path("calls")).unwrap_or_default();
        let _ = std::fs::remove_file(s.path("calls"));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            calls,
            s.read("health/web"),
        )
    };
    let (code, said, calls, state) = run("start", "5000");
    assert_eq!((code, state.as_str()), (Some(0), "healthy 0\n"), "{said}");
    assert_eq!(calls, "--no-block start podc-health-web.timer\n");
    assert_eq!(run("live", "5000").3, "healthy 0\n");

    drop(listener);
    let (code, said, calls, state) = run("live", "5000");
    assert_eq!(
        (code, state.as_str(), calls.as_str()),
        (Some(0), "unhealthy 1\n", "")
    );
    assert!(
        said.contains("podc: app web failed its health probe (1 of 2 in a row)"),
        "{said}"
    );
    let (_, said, calls, state) = run("live", "5000");
    assert_eq!(state, "restarting 0\n");
    assert_eq!(calls, "--no-block restart web.service\n");
    assert!(
        said.contains("podc: restarting app web: 2 failed health probes in a row"),
        "{said}"
    );

    let (code, said, calls, state) = run("start", "300");
    assert_eq!(
        (code, state.as_str()),
        (Some(1), "never-healthy 0\n"),
        "{said}"
    );
    assert_eq!(calls, "kill --signal=SIGKILL web.service\n");
    assert!(
        said.contains("did not pass its health probe within 0.300 s"),
        "{said}"
    );
}

/// health.sh's HTTP probe, run with bash against a server on loopback that the test runs:
/// podc's own lines (Host, User-Agent, Connection), each replaced by a header of its name in
/// any case, and the headers byte for byte as the arguments give them (a value with `%s`, `$`,
/// quotes, a backslash and a tab stays text); a 2xx passes, a 403 fails with its status line.
#[test]
fn health_script_sends_the_headers_as_given() {
    use std::io::{Read, Write};
    let files = common::compile(
        &common::root().join("tests/fixtures/good/health-http-headers.yaml"),
        None,
    )
    .unwrap();
    let s = Sandbox::new();
    std::fs::write(s.path("health.sh"), &files["rootfs/etc/podc/health.sh"]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // One request, answered with `status`; the request's bytes up to the blank line.
    let serve = |status: &'static str| {
        let listener = listener.try_clone().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8];
            while !request.ends_with(b"\r\n\r\n") && c.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            c.write_all(format!("HTTP/1.0 {status}\r\n\r\n").as_bytes())
                .unwrap();
            String::from_utf8(request).unwrap()
        })
    };
    let probe = |headers: &[&str]| {
        let o = Command::new("/usr/bin/bash")
            .arg(s.path("health.sh"))
            .args(["probe", "web", "http", "127.0.0.1", &port, "/h?x=1"])
            .args(headers)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let value = "a \"b\" %s %n $HOME \\ 'c'\td";
    let server = serve("200 OK");
    let said = probe(&[
        "host",
        "web.example",
        "X-Token",
        value,
        "USER-AGENT",
        "kube-probe/1.30",
    ]);
    assert_eq!(said, (Some(0), String::new()));
    assert_eq!(
        server.join().unwrap(),
        format!(
            "GET /h?x=1 HTTP/1.0\r\nConnection: close\r\nhost: web.example\r\n\
             X-Token: {value}\r\nUSER-AGENT: kube-probe/1.30\r\n\r\n"
        )
    );
    let server = serve("200 OK");
    assert_eq!(probe(&[]).0, Some(0));
    assert_eq!(
        server.join().unwrap(),
        "GET /h?x=1 HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: podc-health\r\n\
         Connection: close\r\n\r\n"
    );
    let server = serve("403 Forbidden");
    let (code, said) = probe(&["X-Token", "wrong"]);
    server.join().unwrap();
    assert_eq!(code, Some(1));
    assert_eq!(said, "GET /h?x=1 answered: HTTP/1.0 403 Forbidden\n");
}

#[test]
fn scripts_pass_shellcheck() {
    if !common::tool("shellcheck", "shellcheck") {
        return;
    }
    let s = Sandbox::new();
    let files = common::compile(
        &common::root().join("tests/fixtures/good/health-probes.yaml"),
        None,
    )
    .unwrap();
    std::fs::write(s.path("health.sh"), &files["rootfs/etc/podc/health.sh"]).unwrap();
    for (script, shell) in [
        ("result.sh", "sh"),
        ("exit.sh", "sh"),
        ("health.sh", "bash"),
    ] {
        let out = Command::new("shellcheck")
            .args([&format!("--shell={shell}"), "--severity=style"])
            .arg(s.path(script))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // It does find problems: a script with one is refused.
    let bad = s.path("bad.sh");
    std::fs::write(&bad, "# shellcheck shell=sh\nrm -rf $1/*\n").unwrap();
    let out = Command::new("shellcheck").arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

/// health.sh's gRPC kind runs the podc it is given (here the test build, as the launcher binds
/// its own executable into a pod) against the tests' h2c server: SERVING passes and starts the
/// timer, NOT_SERVING counts as a failed probe with the reason in the journal, and a service
/// that looks like a flag reaches the server as a service name.
#[test]
fn health_script_runs_the_grpc_probe() {
    use common::h2c::{Answer, Server};
    let files = common::compile(
        &common::root().join("tests/fixtures/good/health-grpc.yaml"),
        None,
    )
    .unwrap();
    let s = Sandbox::new();
    std::fs::write(s.path("health.sh"), &files["rootfs/etc/podc/health.sh"]).unwrap();
    let server = Server::start(Answer::Status(1));
    let port = server.addr.port().to_string();
    let run = |mode: &str, service: &str| {
        let o = Command::new("/usr/bin/bash")
            .arg(s.path("health.sh"))
            .args([mode, "cart", "5000", "100", "2000", "2", "grpc"])
            .arg(env!("CARGO_BIN_EXE_podc"))
            .args(["probe-grpc", "127.0.0.1", &port, service])
            .env("PATH", format!("{}:/usr/bin:/bin", s.path("bin").display()))
            .env("PODC_HEALTH_DIR", s.path("health"))
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(s.path("calls")).unwrap_or_default();
        let _ = std::fs::remove_file(s.path("calls"));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            calls,
            s.read("health/cart"),
        )
    };
    let (code, said, calls, state) = run("start", "");
    assert_eq!((code, state.as_str()), (Some(0), "healthy 0\n"), "{said}");
    assert_eq!(calls, "--no-block start podc-health-cart.timer\n");

    server.set(Answer::Status(2));
    let (code, said, _, state) = run("live", "--help");
    assert_eq!((code, state.as_str()), (Some(0), "unhealthy 1\n"), "{said}");
    let want = format!(
        "podc: app cart failed its health probe (1 of 2 in a row): gRPC health check of 127.0.0.1:{port} for service \"--help\": answered NOT_SERVING"
    );
    assert!(said.contains(&want), "want {want:?} in {said:?}");
    // The server records a call once the client has gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.calls().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let services: Vec<String> = server.calls().into_iter().map(|c| c.service).collect();
    assert_eq!(services, ["", "--help"]);
}
