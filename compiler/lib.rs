//! podc: a declarative pod compiler.
//!
//! ```text
//!              ┌ kube/ (a Kubernetes Pod or Deployment) ┐
//! &str ─parse/─┤                                        ├→ Manifest ─resolve/→ Pod ─lower/→ UnitTree
//!              └ parse/ (a podc manifest)               ┘
//!      UnitTree + Pod ─render/→ Files (units, mounts.toml, POD.md) ─emit→ disk
//!      disk (tree/: layout + plan) ─launch/→ a running pod;  host/: install, status, logs
//! ```
//! Every stage before `emit` is a pure function of its input: [`read`], [`check`] and
//! [`generate`] run them. Each folder is a wing of this pipeline and imports only the wings
//! before it (ARCHITECTURE.md, "The house"; tests/architecture.rs holds the rules). `cli/` is
//! the command line on top of it all.

// The command line, on top.
pub mod cli;
// The format and the words podc knows, at the bottom.
pub mod diag;
pub mod limits;
pub mod manifest;
pub mod sys;
pub mod systemd;
// The contract between build, launch and host.
pub mod tree;
// The compiler's stages.
pub mod emit;
pub mod lower;
pub mod parse;
pub mod pod;
pub mod render;
pub mod resolve;
// Beside the compiler: images, Kubernetes, the launcher and the host.
pub mod host;
pub mod image;
pub mod kube;
pub mod launch;

use diag::Diagnostic;
use diag::Report;
use lower::Install;
use parse::{Format, Parsed};
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
    /// Which Pod or Deployment of a file of several to read (0 for the first; see
    /// [`workloads`]).
    pub workload: usize,
    /// ConfigMaps and Secrets given besides the file, for a Kubernetes pod to take.
    pub side: &'a kube::import::Objects,
}

/// How many pods a manifest's text holds: the Pods and Deployments of a Kubernetes file (one
/// for anything else, a podc manifest or a text that does not read).
pub fn workloads(source: &str, format: Format) -> usize {
    match format {
        Format::Toml => 1,
        Format::Yaml => kube::import::workloads(source, &parse::yaml_documents(source)).max(1),
    }
}

/// Reads a manifest: a podc manifest (YAML or TOML), or a Kubernetes Pod or Deployment (YAML),
/// decided after the YAML is read.
// One diagnostic by value, as parse's own (see there).
#[allow(clippy::result_large_err)]
pub fn read(source: &str, format: Format) -> Result<Parsed, Diagnostic> {
    read_with(source, format, 0, kube::import::Objects::none())
}

/// [`read`], with ConfigMaps and Secrets given besides the file (`--configmap`, `--secret`)
/// for a Kubernetes pod to take.
#[allow(clippy::result_large_err)]
pub fn read_with(
    source: &str,
    format: Format,
    workload: usize,
    side: &kube::import::Objects,
) -> Result<Parsed, Diagnostic> {
    match format {
        Format::Toml => parse::manifest(source, format, None),
        Format::Yaml => {
            let documents = parse::yaml_documents(source);
            if documents.len() > 1 {
                let (m, map, warnings) =
                    kube::import::import_stream(source, &documents, workload, side)?;
                return Ok(parse::imported(source, m, map, warnings));
            }
            // One document between `---` lines is read alone, at its place in the text.
            let text = match documents.first() {
                Some(d) if d.len() != source.len() => parse::masked(source, d.clone()),
                _ => source.to_string(),
            };
            let value = parse::yaml_document(&text)?;
            if kube::import::is_kube(&value) {
                let (m, map, warnings) = kube::import::import(&text, value, side)?;
                Ok(parse::imported(&text, m, map, warnings))
            } else {
                parse::manifest(&text, format, Some(value))
            }
        }
    }
}

/// Parses and resolves a manifest: every rule checked, all problems reported.
pub fn check(input: &Input, overrides: Overrides) -> Result<Pod, Report> {
    let report = |diagnostics| Report {
        file: input.display.to_string(),
        source: input.source.to_string(),
        diagnostics,
    };
    let parsed = read_with(input.source, input.format, input.workload, input.side)
        .map_err(|d| report(vec![d]))?;
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
    match read_with(input.source, input.format, input.workload, input.side) {
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
    render::render(&lower::lower(pod, install), &render::podmd::pod_md(pod))
}
