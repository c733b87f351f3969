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
