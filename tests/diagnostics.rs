//! The diagnostics as the binary shows them: `build` and `check` agree on every flag and
//! manifest, warnings and `--deny-warnings`, standard input, problems caused by a flag, and the
//! `json` and `sarif` message formats (the SARIF log validated against the official schema).

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn podc_in(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podc"))
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podc runs");
    let mut input = child.stdin.take().unwrap();
    // podc may exit before it reads (a usage error): a broken pipe is no failure of the test.
    let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A work directory with the fixtures copied under their own names.
fn workdir(fixtures: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in fixtures {
        let src = common::root().join("tests/fixtures").join(f);
        fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    dir
}

const GOOD: &str = "good/volumes-shared.yaml";
const WARN: &str = "warn/memory-bare-number.yaml";
const BAD: &str = "bad/after-unknown-app.yaml";
const V1_233: &str = "good/v1-systemd-233.yaml";
const FRACTION: &str = "good/cpu-fractional-percent.yaml";

fn name(fixture: &str) -> &str {
    fixture.rsplit('/').next().unwrap()
}

/// `check` and `build` give the same exit status and the same diagnostics for every
/// combination of these manifests and flags: they share one set of flags and one validation.
#[test]
fn check_and_build_agree_on_flags_and_manifests() {
    let fixtures = [GOOD, WARN, BAD, V1_233, FRACTION];
    let w = workdir(&fixtures);
    let flag_sets: &[&[&str]] = &[
        &[],
        &["--systemd", "230"],
        &["--systemd", "245"],
        &["--systemd", "258", "--cgroup", "v1"],
        &["--cgroup", "v1"],
        &["--systemd", "100"],
        &["--deny-warnings"],
        &["--install-dir", "relative"],
        &["--podc-path", "/usr/local/bin/podc"],
        &["--message-format", "json"],
    ];
    let mut statuses = std::collections::BTreeSet::new();
    for fixture in fixtures {
        for flags in flag_sets {
            let mut check = vec!["check", name(fixture)];
            check.extend_from_slice(flags);
            let mut build = vec!["build", name(fixture), "-o", "out"];
            build.extend_from_slice(flags);
            let c = podc_in(w.path(), &check, None);
            let b = podc_in(w.path(), &build, None);
            assert_eq!(
                c.status.code(),
                b.status.code(),
                "{check:?} vs {build:?}:\n{}\n{}",
                text(&c.stderr),
                text(&b.stderr)
            );
            // The same diagnostics; build adds only its `wrote` line.
            let b_err: String = text(&b.stderr)
                .lines()
                .filter(|l| !l.starts_with("wrote "))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(text(&c.stderr), b_err, "{check:?} vs {build:?}");
            assert_eq!(text(&c.stdout), text(&b.stdout), "{check:?} vs {build:?}");
            statuses.insert(c.status.code());
        }
    }
    // The combinations reach every exit status.
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2)]
    );
}

#[test]
fn warnings_exit_0_and_build_unless_denied() {
    let w = workdir(&[WARN]);
    let o = podc_in(w.path(), &["build", name(WARN), "-o", "out"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("warning[P1001]: memory limit of 128 bytes"),
        "{err}"
    );
    assert!(
        err.contains("warning: memory-bare-number.yaml: 1 warning found"),
        "{err}"
    );
    assert!(w.path().join("out/bare-memory").is_dir());

    // Denied: exit 1 and nothing written, for build and check alike.
    let w = workdir(&[WARN]);
    let denied: [&[&str]; 2] = [
        &["build", name(WARN), "-o", "out", "--deny-warnings"],
        &["check", name(WARN), "--deny-warnings"],
    ];
    for args in denied {
        let o = podc_in(w.path(), args, None);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("warnings are denied (--deny-warnings)"),
            "{}",
            text(&o.stderr)
        );
    }
    assert!(!w.path().join("out").exists());
}

/// An image short name (#24) builds, with a warning (P1008, once per image: no second P1007
/// for its tag), as the full name it means: that is what the unit, the plan, POD.md and
/// `podc kube` show. Under `--deny-warnings` it is refused like any warning.
#[test]
fn a_short_name_is_built_as_its_full_name_and_refused_when_warnings_are_denied() {
    const SHORT: &str = "warn/image-short-name.yaml";
    let w = workdir(&[SHORT]);
    let o = podc_in(w.path(), &["build", name(SHORT), "-o", "out"], None);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("warning[P1008]").count(), 4, "{err}");
    assert!(!err.contains("P1007"), "{err}");
    let tree = w.path().join("out/short");
    let read = |f: &str| fs::read_to_string(tree.join(f)).unwrap();
    let plan = read("mounts.toml");
    let podmd = read("POD.md");
    for (app, full) in [
        ("web", "docker.io/library/nginx:latest"),
        ("tools", "docker.io/library/busybox:1.28"),
        ("cache", "docker.io/bitnami/redis:latest"),
    ] {
        assert!(
            plan.contains(&format!("reference = \"{full}\"\n")),
            "{plan}"
        );
        assert!(
            podmd.contains(&format!("| Image | {full} (tag, resolved at launch) |")),
            "{podmd}"
        );
        let unit = read(&format!("rootfs/etc/systemd/system/{app}.service"));
        assert!(
            unit.contains(&format!("\n# image: {full} (tag, resolved at launch")),
            "{unit}"
        );
    }
    assert!(
        !plan.contains("reference = \"nginx") && !plan.contains("reference = \"bitnami"),
        "{plan}"
    );
    let o = podc_in(w.path(), &["kube", name(SHORT)], None);
    let yaml = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for full in [
        "docker.io/library/nginx:latest",
        "docker.io/library/busybox:1.28",
        "docker.io/bitnami/redis:latest",
    ] {
        assert!(yaml.contains(&format!("image: {full}\n")), "{yaml}");
    }
    assert!(
        !yaml.contains("image: nginx") && !yaml.contains("image: busybox"),
        "{yaml}"
    );

    let w = workdir(&[SHORT]);
    for args in [
        &["build", name(SHORT), "-o", "out", "--deny-warnings"][..],
        &["check", name(SHORT), "--deny-warnings"],
    ] {
        let o = podc_in(w.path(), args, None);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("warning[P1008]: image \"nginx\" names no registry"),
            "{err}"
        );
        assert!(
            err.contains("warnings are denied (--deny-warnings)"),
            "{err}"
        );
    }
    assert!(!w.path().join("out").exists());
}

#[test]
fn the_summary_counts_errors_and_warnings() {
    // Two manifests: one with an error, one with a warning; each gets its own closing line.
    let w = workdir(&[BAD, WARN]);
    let o = podc_in(w.path(), &["check", name(BAD), name(WARN)], None);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: after-unknown-app.yaml: 1 error found"),
        "{err}"
    );
    assert!(
        err.contains("warning: memory-bare-number.yaml: 1 warning found"),
        "{err}"
    );
    assert!(err.contains("= help: this pod's apps: nginx"), "{err}");
}

#[test]
fn standard_input_is_read_for_dash() {
    let yaml = fs::read_to_string(common::root().join("tests/fixtures").join(BAD)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = podc_in(dir.path(), &["check", "-"], Some(&yaml));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("--> <stdin>:8:13"), "{err}");
    assert!(err.contains("error: <stdin>: 1 error found"), "{err}");

    // TOML only when told: the default is YAML.
    let toml = fs::read_to_string(common::root().join("tests/fixtures/good/minimal.toml")).unwrap();
    let o = podc_in(
        dir.path(),
        &["check", "-", "--stdin-format", "toml"],
        Some(&toml),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = podc_in(dir.path(), &["check", "-"], Some(&toml));
    assert_eq!(o.status.code(), Some(1), "TOML read as YAML must fail");

    // build - writes the tree; its headers name <stdin>.
    let good = fs::read_to_string(common::root().join("tests/fixtures").join(GOOD)).unwrap();
    let o = podc_in(dir.path(), &["build", "-", "-o", "out"], Some(&good));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let pod = common::pod(&common::root().join("tests/fixtures").join(GOOD))
        .unwrap()
        .name;
    let files = walk(&dir.path().join("out").join(&pod));
    assert!(!files.is_empty());
    for f in files {
        let content = fs::read_to_string(&f).unwrap();
        assert!(
            content.contains("Generated by podc from <stdin>."),
            "{}",
            f.display()
        );
    }

    // Standard input can be read once.
    let o = podc_in(dir.path(), &["check", "-", "-"], Some(&good));
    assert_eq!(o.status.code(), Some(2));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn problems_caused_by_a_flag_name_the_flag() {
    let w = workdir(&[GOOD, V1_233, FRACTION]);
    // Both sides from flags: no manifest line to point at.
    let o = podc_in(
        w.path(),
        &["check", name(GOOD), "--cgroup", "v1", "--systemd", "258"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(
            "error[P0902]: --cgroup v1 --systemd 258: systemd 258 cannot run on cgroup v1"
        ),
        "{err}"
    );
    assert!(!err.contains("target."), "{err}");
    // The manifest says cgroup v1, the flag a systemd without it: the manifest's line, and the
    // flag named.
    let o = podc_in(w.path(), &["check", name(V1_233), "--systemd", "258"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("(the command line says --systemd 258)"),
        "{err}"
    );
    assert!(err.contains("note: at `target.cgroup`"), "{err}");
    // A feature the flag's systemd lacks: at the line that asks for it, naming the flag.
    let o = podc_in(
        w.path(),
        &["check", name(FRACTION), "--systemd", "240"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("which systemd 240 (--systemd 240) lacks"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {}:", name(FRACTION))), "{err}");
    // An old systemd from the flag cannot give apps their own root.
    let o = podc_in(w.path(), &["check", name(GOOD), "--systemd", "231"], None);
    let err = text(&o.stderr);
    assert!(
        err.contains("systemd 231 (--systemd 231) cannot run apps in their own root"),
        "{err}"
    );
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_lines_carry_position_code_and_rendered_text() {
    let w = workdir(&[BAD, WARN]);
    let o = podc_in(
        w.path(),
        &["check", name(BAD), name(WARN), "--message-format", "json"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let e = &lines[0];
    assert_eq!(e["file"], "after-unknown-app.yaml");
    assert_eq!(
        (&e["line"], &e["column"], &e["end_line"], &e["end_column"]),
        (&8.into(), &13.into(), &8.into(), &15.into())
    );
    assert_eq!(e["severity"], "error");
    assert_eq!(e["code"], "P0703");
    assert_eq!(e["message"], "no app named \"db\" in this pod");
    assert_eq!(e["path"], "apps[0].after[0]");
    assert_eq!(e["help"], "this pod's apps: nginx");
    assert!(e["rendered"]
        .as_str()
        .unwrap()
        .starts_with("error[P0703]: no app named"));
    assert_eq!(lines[1]["severity"], "warning");
    assert_eq!(lines[1]["code"], "P1001");

    // A usage error is a JSON line too, with no code.
    let o = podc_in(
        w.path(),
        &["check", "missing.yaml", "--message-format", "json"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["code"].is_null());
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("missing.yaml: "));
}

/// The official SARIF 2.1.0 schema, vendored: `tests/schemas/sarif-2.1.0.json` is the
/// `sarif-schema-2.1.0.json` of OASIS (its `$id` names the oasis-tcs/sarif-spec repository),
/// copied byte for byte from the serde-sarif 0.8.0 crate's `src/schema.json`, from which that
/// crate generates its types.
///
/// One pattern of the official file, the `language` of `run` and of `toolComponent`
/// (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`), has a stray `]` that ECMA-262 reads as a
/// literal but Rust's regex engines refuse; it is escaped here, in memory, which keeps its
/// meaning. The vendored file stays as published.
fn sarif_validator() -> jsonschema::Validator {
    const STRAY: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    const ESCAPED: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$";
    let text = fs::read_to_string(common::root().join("tests/schemas/sarif-2.1.0.json")).unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    for owner in ["run", "toolComponent"] {
        let pattern = &mut schema["definitions"][owner]["properties"]["language"]["pattern"];
        assert_eq!(pattern, STRAY, "the vendored schema changed; look again");
        *pattern = ESCAPED.into();
    }
    jsonschema::draft7::new(&schema).expect("the SARIF schema compiles")
}

fn assert_valid_sarif(log: &serde_json::Value) {
    let validator = sarif_validator();
    let errors: Vec<String> = validator.iter_errors(log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
}

#[test]
fn sarif_log_validates_against_the_schema() {
    let w = workdir(&[BAD, WARN, GOOD]);
    let o = podc_in(
        w.path(),
        &[
            "check",
            name(BAD),
            name(WARN),
            name(GOOD),
            "--message-format",
            "sarif",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "podc");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["P0703", "P1001"]);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["ruleId"], "P0703");
    assert_eq!(results[0]["level"], "error");
    let loc = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "after-unknown-app.yaml");
    assert_eq!(loc["region"]["startLine"], 8);
    assert_eq!(loc["region"]["startColumn"], 13);
    assert_eq!(loc["region"]["endLine"], 8);
    assert_eq!(loc["region"]["endColumn"], 15);
    assert_eq!(results[1]["level"], "warning");

    // A clean run is a valid log with no results; a usage error a valid log that says so.
    let o = podc_in(
        w.path(),
        &["check", name(GOOD), "--message-format", "sarif"],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), 0);
    let o = podc_in(
        w.path(),
        &[
            "check",
            name(GOOD),
            "--systemd",
            "100",
            "--message-format",
            "sarif",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("--systemd 100")
    );
}

/// Names that are not plain paths still give a valid log: standard input and a space.
#[test]
fn sarif_uris_of_stdin_and_odd_names_are_valid() {
    let w = workdir(&[WARN]);
    fs::rename(w.path().join(name(WARN)), w.path().join("my pod.yaml")).unwrap();
    let o = podc_in(
        w.path(),
        &["check", "my pod.yaml", "--message-format", "sarif"],
        None,
    );
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    let uri = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"];
    assert_eq!(uri, "my%20pod.yaml");
    let yaml = fs::read_to_string(w.path().join("my pod.yaml")).unwrap();
    let o = podc_in(
        w.path(),
        &["check", "-", "--message-format", "sarif"],
        Some(&yaml),
    );
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    let uri = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"];
    assert_eq!(uri, "%3Cstdin%3E");
}

/// The schema check can fail: a log without its version, or with a level SARIF lacks, is
/// refused.
#[test]
fn the_sarif_schema_check_can_fail() {
    let validator = sarif_validator();
    let bad = serde_json::json!({"runs": []});
    assert!(!validator.is_valid(&bad));
    let bad = serde_json::json!({
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "podc"}},
                  "results": [{"message": {"text": "x"}, "level": "fatal"}]}]
    });
    assert!(!validator.is_valid(&bad));
}

/// Every diagnostic a flag-free run of each bad fixture prints in JSON has a registered code
/// whose severity it carries.
#[test]
fn json_codes_are_registered() {
    let bad: Vec<_> = common::fixtures("bad");
    let dir = tempfile::tempdir().unwrap();
    for path in bad.iter().take(40) {
        let o = podc_in(
            dir.path(),
            &["check", path.to_str().unwrap(), "--message-format", "json"],
            None,
        );
        for line in json_lines(&o) {
            let code = line["code"].as_str().expect("a code");
            let registered = podc::diag::codes::lookup(code).expect("registered");
            assert_eq!(line["severity"], registered.severity.name());
        }
    }
}

/// `build --check` with `--message-format json` or `sarif`: a tree out of date is one message
/// on standard output naming the tree and its changed files (#28: json printed nothing there,
/// only the diff on standard error); an up-to-date tree prints nothing.
#[test]
fn a_tree_out_of_date_is_one_message_naming_its_changed_files() {
    use std::os::unix::fs::PermissionsExt;
    let w = workdir(&[GOOD]);
    let o = podc_in(w.path(), &["build", name(GOOD), "-o", "out"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let check = |format: &str| {
        podc_in(
            w.path(),
            &[
                "build",
                "--check",
                name(GOOD),
                "-o",
                "out",
                "--message-format",
                format,
            ],
            None,
        )
    };
    let o = check("json");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));

    // One unit changed in content, one file in mode.
    let manifest = w.path().join(name(GOOD));
    let was = fs::read_to_string(&manifest).unwrap();
    let now = was.replace(
        r#""/usr/bin/sleep", "infinity""#,
        r#""/usr/bin/sleep", "1000""#,
    );
    assert_ne!(was, now);
    fs::write(&manifest, now).unwrap();
    let pod = "shared-volumes";
    let moded = w.path().join(format!("out/{pod}/podc-{pod}.service"));
    fs::set_permissions(&moded, fs::Permissions::from_mode(0o600)).unwrap();

    let o = check("json");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let mut line = lines[0].clone();
    let rendered = line["rendered"].as_str().unwrap().to_string();
    assert!(
        rendered.contains("+ExecStart=\"/usr/bin/sleep\" \"1000\"")
            && rendered.ends_with("out of date; run `podc build` to update it\n"),
        "{rendered}"
    );
    let changed: Vec<&str> = line["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&format!("{pod}/podc-{pod}.service").as_str()),
        "{changed:?}"
    );
    assert!(
        changed.contains(&format!("{pod}/rootfs/etc/systemd/system/app.service").as_str()),
        "{changed:?}"
    );
    line["rendered"] = "(the diff, checked above)".into();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(
            "diagnostics_build_check_json_out_of_date",
            serde_json::to_string_pretty(&line).unwrap()
        );
    });
    // The diff still goes to standard error for a human watching.
    assert!(
        text(&o.stderr).contains("+ExecStart="),
        "{}",
        text(&o.stderr)
    );

    // SARIF: a run that went well, with a notification naming the files.
    let o = check("sarif");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_sarif(&log);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true, "{log:#}");
    let note = invocation["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(
        note.contains("out of date") && note.contains(&format!("{pod}/podc-{pod}.service")),
        "{note}"
    );
}
