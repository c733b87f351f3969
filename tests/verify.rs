//! Every unit podc generates from every good fixture passes `systemd-analyze verify` without a
//! single line of output. Its exit status alone proves little: it exits 0 on unknown keys and
//! bad values, so any warning is a failure here.

mod common;

use std::process::Command;

use podc::lower::Install;

#[test]
fn generated_units_verify_without_warnings() {
    if !common::systemd_analyze() {
        return;
    }
    let mut failures = Vec::new();
    let fixtures = common::fixtures("good");
    assert!(
        fixtures.len() >= 15,
        "the good corpus shrank to {}",
        fixtures.len()
    );
    for path in fixtures {
        let pod = common::pod(&path).expect("good fixtures compile");
        // ExecStart= of the host unit must name a real binary: use the podc under test.
        let install = Install {
            dir: format!("/var/lib/podc/{}", pod.name),
            podc: env!("CARGO_BIN_EXE_podc").to_string(),
        };
        let files = podc::generate(&pod, &install);
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
                ..
            } = step
            {
                use podc::image::defaults::Command;
                let has = |k: &str| given.iter().any(|g| g == k);
                let drop = podc::image::defaults::drop_in(
                    app,
                    reference,
                    "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
                    &sample_defaults(exec.first().map(String::as_str)),
                    podc::image::defaults::Given {
                        command: match (has("exec"), exec.is_empty(), args.is_empty()) {
                            (true, _, _) => Command::InUnit,
                            (false, false, _) => Command::LookUp(exec),
                            (false, true, false) => Command::Args(args),
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
        let out = Command::new("systemd-analyze")
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
            failures.push(format!("{}:\n{text}", common::display_name(&path)));
        }
    }
    assert!(
        failures.is_empty(),
        "systemd-analyze verify complained:\n{}",
        failures.join("\n")
    );
}

/// Image defaults as a hostile but usable image config gives them: every kind of value, with
/// the characters systemd treats specially; `program`, a bare name an app's exec names, found
/// in its PATH.
fn sample_defaults(program: Option<&str>) -> podc::image::defaults::Defaults {
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
