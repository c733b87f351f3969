//! podc: a declarative pod compiler.
//!
//! ```text
//! &str ─parse→ Manifest ─resolve→ Pod ─lower→ UnitTree ─render→ Files ─emit→ disk
//! ```
//! Every stage before `emit` is a pure function of its input: [`compile`] runs them.

pub mod cli;
pub mod codes;
pub mod diag;
pub mod emit;
pub mod escape;
pub mod image;
pub mod kube;
pub mod launch;
pub mod limits;
pub mod linux;
pub mod lower;
pub mod manifest;
pub mod mountplan;
pub mod operate;
pub mod output;
pub mod parse;
pub mod pod;
pub mod podmd;
pub mod quantity;
pub mod render;
pub mod resolve;
pub mod schema;
pub mod source;
pub mod sys;
pub mod target;
pub mod unpack;
pub mod yaml_fast;

use diag::Report;
use lower::Install;
use parse::Format;
use pod::Pod;
use render::Files;
use resolve::Overrides;

/// A manifest's name and text, as read.
pub struct Input<'a> {
    /// The name to show in diagnostics (the path the user gave).
    pub display: &'a str,
    /// The file name alone, for the "generated from" headers.
    pub file_name: &'a str,
    pub source: &'a str,
    pub format: Format,
}

/// Parses and resolves a manifest: every rule checked, all problems reported.
pub fn check(input: &Input, overrides: Overrides) -> Result<Pod, Report> {
    let report = |diagnostics| Report {
        file: input.display.to_string(),
        source: input.source.to_string(),
        diagnostics,
    };
    let parsed = parse::parse(input.source, input.format).map_err(|d| report(vec![d]))?;
    resolve::resolve(&parsed, input.file_name, overrides).map_err(report)
}

/// Parses and resolves a manifest, keeping warnings: the pod (when nothing is an error) and
/// every diagnostic, warnings included.
pub fn check_all(input: &Input, overrides: Overrides) -> (Option<Pod>, Report) {
    let mut report = Report {
        file: input.display.to_string(),
        source: input.source.to_string(),
        diagnostics: Vec::new(),
    };
    match parse::parse(input.source, input.format) {
        Err(d) => {
            report.diagnostics.push(d);
            (None, report)
        }
        Ok(parsed) => {
            let (pod, diagnostics) = resolve::resolve_all(&parsed, input.file_name, overrides);
            report.diagnostics = diagnostics;
            (pod, report)
        }
    }
}

/// The files of a pod's tree, relative to the pod directory.
pub fn generate(pod: &Pod, install: &Install) -> Files {
    render::render(&lower::lower(pod, install))
}
