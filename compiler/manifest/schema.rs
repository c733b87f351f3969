//! The JSON Schema of the manifest (draft-07, as yaml-language-server reads it), generated
//! from [`crate::manifest::Manifest`]. `schemas/pod.schema.json` is this text; a test keeps
//! the two in sync.

use schemars::generate::SchemaSettings;

use crate::manifest::Manifest;

pub fn schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
