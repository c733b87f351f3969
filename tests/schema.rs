//! `schemas/pod.schema.json` is generated from the manifest types and kept in sync here; every
//! example and good fixture validates against it, and the schema refuses what it can see is
//! wrong in the bad fixtures that break a type or shape rule.
//! Regenerate with `cargo run -- schema > schemas/pod.schema.json`.

mod common;

use std::path::Path;

fn schema() -> serde_json::Value {
    serde_json::from_str(&podc::manifest::schema::schema_json()).unwrap()
}

/// A manifest as JSON, read with the same YAML 1.2 rules podc uses.
fn as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().unwrap() == "toml" {
        toml::from_str(&text).unwrap()
    } else {
        serde_saphyr::from_str(&text).unwrap()
    }
}

#[test]
fn schema_file_is_up_to_date() {
    let committed =
        std::fs::read_to_string(common::root().join("schemas/pod.schema.json")).unwrap();
    assert!(
        committed == podc::manifest::schema::schema_json(),
        "schemas/pod.schema.json is stale: run `cargo run -- schema > schemas/pod.schema.json`"
    );
}

#[test]
fn schema_is_draft_07() {
    assert_eq!(
        schema()["$schema"],
        "http://json-schema.org/draft-07/schema#"
    );
}

#[test]
fn every_good_manifest_validates() {
    let validator = jsonschema::draft7::new(&schema()).expect("the schema compiles");
    let mut paths = common::fixtures("good");
    for e in std::fs::read_dir(common::root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml" || x == "toml") {
            paths.push(p);
        }
    }
    assert!(paths.len() > 15);
    for path in paths {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&path))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn schema_refuses_shape_errors() {
    let validator = jsonschema::draft7::new(&schema()).expect("the schema compiles");
    for name in [
        "unknown-top-level-key.yaml",
        "unknown-app-key.yaml",
        "podc-2.yaml",
        "podc-string.yaml",
        "name-uppercase.yaml",
        "apps-empty.yaml",
        "cpushares-1.yaml",
        "cpuweight-10001.yaml",
        "oom-score-adj-1001.yaml",
        "memory-list.yaml",
        "restart-invalid.yaml",
        "volume-kind-invalid.yaml",
        "no-new-privileges-string.yaml",
        "args-empty.yaml",
        "health-header-name.yaml",
        "hooks-empty.yaml",
    ] {
        let path = common::root().join("tests/fixtures/bad").join(name);
        assert!(
            !validator.is_valid(&as_json(&path)),
            "the schema accepts bad/{name}"
        );
    }
}
