//! POD.md with hostile text in every place the manifest can put free text (image, command,
//! working directory, mount paths, a host volume's source, annotations): it keeps its shape
//! (tests/common/podmd.rs), and each value is shown as written, escaped.
//! tests/hostile.rs holds the same shape check over its generated samples.

mod common;

use podc::parse::Format;
use podc::read as parse;
use podc::resolve::{resolve, Overrides};

/// Builds a pod from JSON (which is YAML) and gives its POD.md.
fn pod_md(manifest: &serde_json::Value) -> String {
    let text = serde_json::to_string(manifest).unwrap();
    let parsed = parse(&text, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "pod.yaml", Overrides::default())
        .unwrap_or_else(|d| panic!("refused: {d:?}"));
    let install = podc::lower::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    podc::generate(&pod, &install)["POD.md"].clone()
}

/// Free text that Markdown tables and Mermaid labels must not take as markup.
const NASTY: &str = "a|b`c`<script>&amp;*x*_y_[l](u)\"q\"]) --> x;#35;%%~$!";

#[test]
fn hostile_text_keeps_pod_md_in_shape_and_is_shown_escaped() {
    let path = format!("/srv/{NASTY}");
    let manifest = serde_json::json!({
        "podc": 1,
        "name": "nasty",
        "network": "private",
        "annotations": {"note": format!("{NASTY}\nsecond line\u{202e}"), "k|`<": "v"},
        "volumes": [
            {"name": "data", "kind": "host", "source": path},
            {"name": "scratch", "kind": "empty"}
        ],
        "apps": [{
            "name": "app",
            "image": path,
            "exec": ["/bin/x", NASTY, "line\nbreak", "", "  ", "back\\slash"],
            "readOnlyRootfs": true,
            "workingDirectory": path,
            "mounts": [
                {"volume": "data", "path": path, "readOnly": true},
                {"volume": "scratch", "path": "/srv/x\"]) --> app0[\"evil"}
            ],
            "ports": [{"port": 80, "hostPort": 8080, "hostIP": "::1"}]
        }, {
            "name": "b",
            "image": "/i",
            "exec": ["/bin/y"],
            "after": ["app"]
        }]
    });
    let md = pod_md(&manifest);
    let problems = common::podmd::problems(&md, "pod.yaml");
    assert!(problems.is_empty(), "{}\n\n{md}", problems.join("\n"));

    let cell =
        r#"/srv/a\|b\`c\`&lt;script&gt;&amp;amp;\*x\*\_y\_\[l\](u)"q"\]) --&gt; x;\#35;%%\~\$\!"#;
    let row = |key: &str| -> String {
        md.lines()
            .find_map(|l| l.strip_prefix(&format!("| {key} | ")))
            .and_then(|l| l.strip_suffix(" |"))
            .unwrap_or_else(|| panic!("no {key} row:\n{md}"))
            .to_string()
    };
    assert_eq!(row("Image"), cell);
    assert_eq!(row("Working directory"), cell);
    assert_eq!(
        row("Command"),
        [
            r#""/bin/x""#,
            r#""a\|b\`c\`&lt;script&gt;&amp;amp;\*x\*\_y\_\[l\](u)\\"q\\"\]) --&gt; x;\#35;%%\~\$\!""#,
            r#""line\\nbreak""#,
            r#""""#,
            r#""  ""#,
            r#""back\\\\slash""#,
        ]
        .join(" ")
    );
    assert_eq!(
        row("Mounts"),
        format!(
            "data at {cell} (read-only)<br>scratch at /srv/x\"\\]) --&gt; app0\\[\"evil (read-write)"
        )
    );
    assert!(row("Annotations").contains(r"\\nsecond line\\u{202e}"));
    assert!(row("Annotations").starts_with(r"k\|\`&lt; = v<br>note = a\|b"));
    assert_eq!(
        row("Published ports"),
        r"tcp \[::1\]:8080 on the host to port 80 (forwarded by a proxy)"
    );

    // The diagram: labels hold entity codes, never a quote, bracket, `#` or `<` of their own.
    let label = "/srv/a#124;b#96;c#96;#60;script#62;#38;amp#59;#42;x#42;_y_#91;l#93;(u)#34;q#34;#93;) --#62; x#59;#35;35#59;#37;#37;#126;#36;#33;";
    assert!(
        md.contains(&format!(
            "    vol0[(\"volume data: host directory {label}\")]\n"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("    app0 -.->|\"ro {label}\"| vol0\n")),
        "{md}"
    );
    assert!(
        md.contains("    app0 -.->|\"rw /srv/x#34;#93;) --#62; app0#91;#34;evil\"| vol1\n"),
        "{md}"
    );
    assert!(md.contains("    app1 -->|after| app0\n"), "{md}");
    assert!(
        md.contains("    port0([\"tcp #91;::1#93;:8080\"]) -->|\"port 80\"| app0\n"),
        "{md}"
    );
}

/// The checker itself catches what it is there to catch.
/// An init app is shown as one: its node, the arrows to it and a row of its table.
#[test]
fn init_apps_are_shown_as_such() {
    let md = pod_md(&serde_json::json!({
        "podc": 1,
        "name": "shop",
        "apps": [
            {"name": "migrate", "image": "/i", "exec": ["/bin/m"], "init": true},
            {"name": "web", "image": "/i", "exec": ["/bin/w"], "after": ["migrate"]},
            {"name": "job", "image": "/i", "exec": ["/bin/j"], "after": ["web"]}
        ]
    }));
    let problems = common::podmd::problems(&md, "pod.yaml");
    assert!(problems.is_empty(), "{}\n\n{md}", problems.join("\n"));
    for line in [
        "    app0[\"init app migrate\"]\n",
        "    app1[\"app web\"]\n",
        "    app1 -->|after completion| app0\n",
        "    app2 -->|after| app1\n",
        "| Init | yes: runs to completion before the apps after it start, which start only if it exits 0 |\n",
    ] {
        assert!(md.contains(line), "no {line:?} in:\n{md}");
    }
    assert_eq!(md.matches("| Init |").count(), 1, "{md}");
}

#[test]
fn the_shape_check_finds_broken_pod_md() {
    let good = pod_md(&serde_json::json!({
        "podc": 1, "name": "p", "apps": [{"name": "a", "image": "/i", "exec": ["/x"]}]
    }));
    assert!(common::podmd::problems(&good, "pod.yaml").is_empty());
    for (from, to) in [
        ("| Image | /i |", "| Image | /i | x |"),
        ("| Image | /i |", "| Image | <img src=x> |"),
        ("| Image | /i |", "| Image | `/i` |"),
        ("| Image | /i |", "| Image | /i\nExtra |"),
        ("app0[\"app a\"]", "app0[\"app a\"] --> x"),
        ("app0[\"app a\"]", "app0[\"app \"a\"]"),
        ("<!-- Generated", "<!-- Made"),
    ] {
        assert!(good.contains(from), "{from}");
        let broken = good.replacen(from, to, 1);
        assert!(
            !common::podmd::problems(&broken, "pod.yaml").is_empty(),
            "not caught: {to}"
        );
    }
}

/// A manifest file name cannot end POD.md's header comment early.
#[test]
fn the_header_comment_survives_any_file_name() {
    let text =
        r#"{"podc": 1, "name": "p", "apps": [{"name": "a", "image": "/i", "exec": ["/x"]}]}"#;
    let parsed = parse(text, Format::Yaml).unwrap();
    let pod = resolve(&parsed, "a-->b--!>c---.yaml", Overrides::default()).unwrap();
    let install = podc::lower::Install {
        dir: "/d".into(),
        podc: "/p".into(),
    };
    let md = &podc::generate(&pod, &install)["POD.md"];
    let first = md.lines().next().unwrap();
    assert_eq!(
        first,
        "<!-- Generated by podc from a- ->b- -!>c- - -.yaml. Do not edit: change the manifest and run `podc build`. -->"
    );
}
