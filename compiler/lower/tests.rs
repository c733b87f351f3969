use crate::parse::Format;
use crate::read as parse;
use crate::resolve::{resolve, Overrides};
use crate::systemd::escape::tests::{decode_words, HOSTILE};

/// Every limit directive has the manifest's text above it; whitespace resolution accepts
/// around a quantity (line breaks included) cannot end the comment early.
#[test]
fn limit_comments_quote_the_manifest_and_stay_on_one_line() {
    let yaml = "podc: 1\nname: p\nisolators:\n  cpu: \"\\n2\\n\"\n  tasks: 9\napps:\n  - name: a\n    image: /i\n    exec: [/bin/x]\n    isolators:\n      memory: \"\\n 128Mi\\r\\n\\u2028\"\n      cpu: 0.5\n      cpuWeight: 50\n      tasks: 7\n      oomScoreAdj: -5\n";
    let parsed = parse(yaml, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
    let install = super::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    let files = crate::generate(&pod, &install);
    let pairs = |text: &str| -> Vec<(String, String)> {
        let lines: Vec<&str> = text.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].starts_with("# ") && w[0].ends_with("isolators)"))
            .map(|w| (w[0].to_string(), w[1].to_string()))
            .collect()
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        pairs(&files["rootfs/etc/systemd/system/a.service"]),
        [
            s("# memory: 128Mi (apps[a].isolators)", "MemoryMax=134217728"),
            s("# cpu: 0.5 (apps[a].isolators)", "CPUQuota=50%"),
            s("# cpuWeight: 50 (apps[a].isolators)", "CPUWeight=50"),
            s("# tasks: 7 (apps[a].isolators)", "TasksMax=7"),
            s("# oomScoreAdj: -5 (apps[a].isolators)", "OOMScoreAdjust=-5"),
        ]
    );
    assert_eq!(
        pairs(&files["podc-p.service"]),
        [
            s("# cpu: 2 (isolators)", "CPUQuota=200%"),
            s("# tasks: 9 (isolators)", "TasksMax=9"),
        ]
    );
    // Text that is not a plain word is quoted, whatever it holds.
    assert_eq!(
        super::limit_comment("memory", "1\n[Service]\t", "isolators"),
        r#"memory: "1\n[Service]\t" (isolators)"#
    );
}

/// The rendered ExecStart= and Environment= lines decode back to the manifest's values.
#[test]
fn hostile_values_survive_the_whole_pipeline() {
    // JSON strings are YAML double-quoted scalars, once DEL and C1 controls are escaped too.
    let json = |s: &str| {
        serde_json::to_string(s)
            .unwrap()
            .chars()
            .map(|c| match c {
                '\u{7f}'..='\u{9f}' => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect::<String>()
    };
    let args: Vec<String> = HOSTILE.iter().map(|s| json(s)).collect();
    let env: Vec<String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, s)| format!("      V{i}: {}", json(s)))
        .collect();
    // JSON string syntax is valid YAML double-quoted syntax for these values.
    let yaml = format!(
        "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [\"/bin/x\", {}]\n    environment:\n{}\n",
        args.join(", "),
        env.join("\n")
    );
    let parsed = parse(&yaml, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
    let install = super::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    let files = crate::generate(&pod, &install);
    let unit = &files["rootfs/etc/systemd/system/a.service"];
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut want = vec!["/bin/x".to_string()];
    want.extend(HOSTILE.iter().map(|s| s.to_string()));
    assert_eq!(decode_words(exec, true), want);
    let envs: Vec<Vec<String>> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .map(|l| decode_words(l, false))
        .collect();
    assert_eq!(envs.len(), HOSTILE.len());
    for (i, s) in HOSTILE.iter().enumerate() {
        assert!(
            envs.contains(&vec![format!("V{i}={s}")]),
            "V{i}={s:?} missing"
        );
    }
}

/// The tree of a manifest that resolves.
fn tree(yaml: &str) -> crate::render::Files {
    let parsed = parse(yaml, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
    let install = super::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    crate::generate(&pod, &install)
}

/// The directive lines (no comments, no blank lines) of a unit file.
fn directives(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains('=') && !l.starts_with('#'))
        .collect()
}

fn app_unit(files: &crate::render::Files, app: &str) -> Vec<String> {
    let text = &files[&format!("rootfs/etc/systemd/system/{app}.service")];
    directives(text).into_iter().map(String::from).collect()
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

/// An init app runs to completion (oneshot, no start timeout); one that apps start after
/// stays active while they need it and is pulled in by them, not by the pod's target, which
/// would keep it (and so the pod) up for good; one no app starts after ends as a job does.
/// The host unit waits for them however long they take.
#[test]
fn init_apps_run_to_completion_and_are_held_by_the_apps_after_them() {
    let files = tree(
        "podc: 1\nname: p\napps:\n\
         - {name: migrate, image: /i, exec: [/bin/m], init: true}\n\
         - {name: web, image: /i, exec: [/bin/w], after: [migrate], restart: always}\n\
         - {name: report, image: /i, exec: [/bin/r], init: true}\n\
         - {name: job, image: /i, exec: [/bin/j]}\n",
    );
    let migrate = app_unit(&files, "migrate");
    for line in [
        "Type=oneshot",
        "RemainAfterExit=yes",
        "StopWhenUnneeded=yes",
        "Restart=no",
        "TimeoutStartSec=infinity",
    ] {
        assert!(has(&migrate, line), "migrate lacks {line}: {migrate:#?}");
    }
    assert!(!migrate.iter().any(|l| l.starts_with("RestartMode=")));
    let report = app_unit(&files, "report");
    assert!(has(&report, "Type=oneshot") && has(&report, "TimeoutStartSec=infinity"));
    assert!(!has(&report, "RemainAfterExit=yes") && !has(&report, "StopWhenUnneeded=yes"));
    let web = app_unit(&files, "web");
    assert!(has(&web, "Type=exec") && has(&web, "Requires=migrate.service"));
    for plain in [&web, &app_unit(&files, "job")] {
        assert!(!plain.iter().any(|l| l.starts_with("TimeoutStartSec=")
            || l.starts_with("RemainAfterExit=")
            || l.starts_with("StopWhenUnneeded=")));
    }
    assert_eq!(
        directives(&files["rootfs/etc/systemd/system/podc-pod.target"]),
        [
            "Description=podc pod p",
            "Wants=web.service",
            "Wants=report.service",
            "Wants=job.service"
        ]
    );
    let host = directives(&files["podc-p.service"]);
    assert_eq!(host[1..3], ["Type=notify", "TimeoutStartSec=infinity"]);

    // Without init apps the host unit keeps systemd's start timeout.
    let files = tree("podc: 1\nname: p\napps:\n- {name: a, image: /i, exec: [/bin/a]}\n");
    assert!(!files["podc-p.service"].contains("TimeoutStartSec="));
}

/// A pod of init apps only: the last of a chain is the one the target starts; it pulls in the
/// others, and once it has completed nothing holds them, so the pod ends.
#[test]
fn a_pod_of_init_apps_only_is_started_from_its_last() {
    let files = tree(
        "podc: 1\nname: p\napps:\n\
         - {name: a, image: /i, exec: [/bin/a], init: true}\n\
         - {name: b, image: /i, exec: [/bin/b], init: true, after: [a]}\n",
    );
    assert_eq!(
        directives(&files["rootfs/etc/systemd/system/podc-pod.target"]),
        ["Description=podc pod p", "Wants=b.service"]
    );
    assert!(has(&app_unit(&files, "a"), "StopWhenUnneeded=yes"));
    let b = app_unit(&files, "b");
    assert!(has(&b, "Requires=a.service") && !has(&b, "StopWhenUnneeded=yes"));
}

/// `restart: on-failure` retries an init app while the apps after it keep waiting
/// (`RestartMode=direct`, 254); older targets refuse it, located.
#[test]
fn an_init_app_restarts_on_failure_only_with_restart_mode_direct() {
    let yaml = |systemd: u32| {
        format!(
            "podc: 1\nname: p\ntarget: {{systemd: {systemd}}}\napps:\n\
             - {{name: m, image: /i, exec: [/bin/m], init: true, restart: on-failure}}\n\
             - {{name: w, image: /i, exec: [/bin/w], after: [m]}}\n"
        )
    };
    let m = app_unit(&tree(&yaml(257)), "m");
    let at = m.iter().position(|l| l == "Restart=on-failure").unwrap();
    assert_eq!(m[at + 1], "RestartMode=direct");
    let parsed = parse(&yaml(253), Format::Yaml).unwrap();
    let errors = resolve(&parsed, "p.yaml", Overrides::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, crate::diag::codes::FEATURE_MISSING);
    assert_eq!(errors[0].path.as_deref(), Some("apps[0].restart"));
}

/// The hooks' `ExecStartPost=` and `ExecStop=-` lines and the probe's script lines decode back
/// to the manifest's words: each hook's command, and each header name and value (every hostile
/// value that is one line) as two words after the probe's path.
#[test]
fn hooks_and_probe_headers_survive_the_whole_pipeline() {
    let json = |s: &str| {
        serde_json::to_string(s)
            .unwrap()
            .chars()
            .map(|c| match c {
                '\u{7f}'..='\u{9f}' => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect::<String>()
    };
    let args: Vec<String> = HOSTILE.iter().map(|s| json(s)).collect();
    let values: Vec<&str> = HOSTILE
        .iter()
        .copied()
        .filter(|v| !v.contains(['\r', '\n']))
        .collect();
    let headers: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("X-{i:02}: {}", json(v)))
        .collect();
    let yaml = format!(
        "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/x]\n    \
         hooks: {{postStart: [\"/bin/post\", {args}], preStop: [\"/bin/stop\", {args}]}}\n    \
         health: {{http: {{port: 80, path: /h, headers: {{{}}}}}}}\n",
        headers.join(", "),
        args = args.join(", ")
    );
    let parsed = parse(&yaml, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "p.yaml", Overrides::default()).unwrap();
    let install = super::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    let files = crate::generate(&pod, &install);
    let unit = &files["rootfs/etc/systemd/system/a.service"];
    let line = |prefix: &str| unit.lines().find_map(|l| l.strip_prefix(prefix)).unwrap();
    for (prefix, program) in [("ExecStartPost=", "/bin/post"), ("ExecStop=-", "/bin/stop")] {
        let mut want = vec![program.to_string()];
        want.extend(HOSTILE.iter().map(|s| s.to_string()));
        assert_eq!(decode_words(line(prefix), true), want, "{prefix}");
    }
    let ready = &files["rootfs/etc/systemd/system/podc-ready-a.service"];
    let exec = ready
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let words = decode_words(exec, true);
    let at = words.iter().position(|w| w == "/h").unwrap();
    let want: Vec<String> = values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| [format!("X-{i:02}"), v.to_string()])
        .collect();
    assert_eq!(words[at + 1..], want[..]);
}

/// The system call lines as systemd reads them in order (the first decides allow or deny,
/// each later one adds or takes away; an empty one resets): an exact allow list starts with
/// `@default` and takes it out, so an empty exact list denies every call instead of being the
/// empty assignment that would leave the app unfiltered; a plain allow list keeps systemd's
/// `@default`.
#[test]
fn an_exact_allow_list_takes_out_systemds_default_group_and_an_empty_one_denies_all() {
    let files = tree("podc: 1\nname: p\napps:\n  - name: none\n    image: /i\n    exec: [/bin/x]\n    isolators:\n      seccomp: {retain: [], exact: true, errno: EPERM}\n  - name: two\n    image: /i\n    exec: [/bin/x]\n    isolators:\n      seccomp: {retain: [read, write], exact: true}\n      syscallLog: {retain: ['@known']}\n      syscallArchitectures: [x86-64, x32]\n  - name: plain\n    image: /i\n    exec: [/bin/x]\n    isolators:\n      seccomp: {retain: [read]}\n");
    let syscalls = |app: &str| -> Vec<String> {
        app_unit(&files, app)
            .into_iter()
            .filter(|l| l.starts_with("SystemCall"))
            .collect()
    };
    assert_eq!(
        syscalls("none"),
        [
            "SystemCallFilter=@default",
            "SystemCallFilter=~@default",
            "SystemCallErrorNumber=EPERM"
        ]
    );
    assert_eq!(
        syscalls("two"),
        [
            "SystemCallFilter=@default",
            "SystemCallFilter=~@default",
            "SystemCallFilter=read",
            "SystemCallFilter=write",
            "SystemCallLog=@known",
            "SystemCallArchitectures=x86-64",
            "SystemCallArchitectures=x32",
        ]
    );
    assert_eq!(syscalls("plain"), ["SystemCallFilter=read"]);
    assert!(!files.values().any(|text| text
        .lines()
        .any(|l| l == "SystemCallFilter=" || l == "SystemCallLog=")));
}

/// `cgroupMount: read-write` (Kubernetes' `cgroupOptions.mountMode: ReadWrite`): the app's own
/// cgroup namespace with a writable cgroup2 mount, delegated (257, cgroup v2); the other apps
/// keep the read-only view. Older targets and cgroup v1 refuse it, located, and so does a
/// relaxed control-groups part.
#[test]
fn a_writable_cgroup_is_the_apps_own_namespace_delegated() {
    let yaml = |target: &str, extra: &str| {
        format!(
            "podc: 1\nname: p\ntarget: {{{target}}}\napps:\n\
             - {{name: a, image: /i, exec: [/bin/a], isolators: {{cgroupMount: read-write{extra}}}}}\n\
             - {{name: b, image: /i, exec: [/bin/b], isolators: {{cgroupMount: read-only}}}}\n"
        )
    };
    let files = tree(&yaml("systemd: 257", ""));
    let a = app_unit(&files, "a");
    let at = a
        .iter()
        .position(|l| l == "ProtectControlGroups=private")
        .unwrap_or_else(|| panic!("{a:#?}"));
    assert_eq!(a[at + 1], "Delegate=yes");
    assert!(!has(&a, "ProtectControlGroups=yes"));
    let b = app_unit(&files, "b");
    assert!(has(&b, "ProtectControlGroups=yes"));
    assert!(!b.iter().any(|l| l.starts_with("Delegate=")));
    assert!(files["POD.md"].contains("| Cgroups | its own cgroup at /sys/fs/cgroup, writable"));
    let refused = |target: &str, extra: &str| {
        let parsed = parse(&yaml(target, extra), Format::Yaml).unwrap();
        let errors = resolve(&parsed, "p.yaml", Overrides::default()).unwrap_err();
        errors
            .iter()
            .map(|e| (e.code.code, e.path.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let at = "apps[0].isolators.cgroupMount".to_string();
    assert_eq!(refused("systemd: 256", ""), [("P0904", at.clone())]);
    assert_eq!(
        refused("cgroup: v1, systemd: 257", ""),
        [("P0530", at.clone())]
    );
    assert_eq!(
        refused("systemd: 257", ", relax: [control-groups]"),
        [("P0531", at)]
    );
}

/// #28: the host unit restarts a pod whose apps all restart (a service) when it fails as a
/// whole, and no other: a pod with an app that does not restart may end by design (a job), and
/// one of init apps only is a job too.
#[test]
fn the_host_unit_restarts_a_pod_whose_apps_all_restart() {
    let host = |apps: &str| {
        let files = tree(&format!("podc: 1\nname: p\napps:\n{apps}"));
        directives(&files["podc-p.service"])
            .into_iter()
            .filter(|l| l.starts_with("Restart"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let restarts = ["Restart=on-failure".to_string()];
    assert_eq!(
        host(
            "- {name: a, image: /i, exec: [/bin/a], restart: always}\n\
              - {name: b, image: /i, exec: [/bin/b], restart: on-failure}\n"
        ),
        restarts
    );
    // An init app that does not restart is still the start of a service.
    assert_eq!(
        host(
            "- {name: m, image: /i, exec: [/bin/m], init: true}\n\
              - {name: a, image: /i, exec: [/bin/a], restart: always, after: [m]}\n"
        ),
        restarts
    );
    assert!(host(
        "- {name: a, image: /i, exec: [/bin/a], restart: always}\n\
         - {name: job, image: /i, exec: [/bin/job]}\n"
    )
    .is_empty());
    assert!(host("- {name: m, image: /i, exec: [/bin/m], init: true}\n").is_empty());
}
