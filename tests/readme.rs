//! The README's quick start and command summary hold: its manifest is `examples/hello.yaml`
//! byte for byte, the examples build without a warning, the schema line names the path the
//! `.deb` installs the schema at, and every command the summary shows exists.

use std::path::Path;
use std::process::Command;

mod common;

fn readme() -> String {
    std::fs::read_to_string(common::root().join("README.md")).unwrap()
}

#[test]
fn quick_start_manifest_is_the_example() {
    let readme = readme();
    let start = "cat > hello.yaml <<'END'\n";
    let from = readme
        .find(start)
        .expect("the quick start writes hello.yaml")
        + start.len();
    let len = readme[from..]
        .find("\nEND\n")
        .expect("the here-document ends")
        + 1;
    let example = std::fs::read_to_string(common::root().join("examples/hello.yaml")).unwrap();
    assert_eq!(&readme[from..from + len], example);
}

#[test]
fn examples_build_without_warnings() {
    for name in ["hello.yaml", "web.yaml"] {
        let path = common::root().join("examples").join(name);
        let (pod, report) = common::check_all(&path);
        assert!(
            pod.is_some() && report.diagnostics.is_empty(),
            "{name}:\n{report}"
        );
    }
}

#[test]
fn schema_line_names_the_path_the_package_installs() {
    let line = "# yaml-language-server: $schema=";
    let readme = readme();
    let cargo = std::fs::read_to_string(common::root().join("Cargo.toml")).unwrap();
    let mut seen = 0;
    for text in [
        &readme,
        &std::fs::read_to_string(common::root().join("examples/hello.yaml")).unwrap(),
    ] {
        for l in text.lines().filter(|l| l.starts_with(line)) {
            let path = &l[line.len()..];
            let asset = format!(
                "[\"schemas/pod.schema.json\", \"{}\", \"644\"]",
                path.trim_start_matches('/')
            );
            assert!(
                cargo.contains(&asset),
                "Cargo.toml's deb assets lack {asset}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 2, "the README and the example name the schema");
}

#[test]
fn every_command_in_the_summary_exists() {
    let readme = readme();
    let block = readme
        .split("```\n")
        .nth(1)
        .expect("the summary is the first code block");
    let mut commands: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("podc "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    commands.dedup();
    assert!(commands.len() >= 8, "{commands:?}");
    for c in commands {
        let o = Command::new(env!("CARGO_BIN_EXE_podc"))
            .args([c, "--help"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .output()
            .unwrap();
        assert!(o.status.success(), "podc {c} --help: {o:?}");
    }
}
