//! Output of diagnostics in the three message formats of `build` and `check`.
//!
//! - `human`: rustc-style text on standard error (the [`Report`]'s `Display`).
//! - `json`: one JSON object per diagnostic and line on standard output, as cargo's
//!   `--message-format json` does, each with its `rendered` human text.
//! - `sarif`: one SARIF 2.1.0 log on standard output once every manifest is read, the format
//!   code-scanning tools show inline on pull requests. The types are serde-sarif's.
//!
//! Usage and I/O problems (exit status 2) are machine-readable too where the command line was
//! understood: a JSON object with `"code": null`, or a SARIF tool execution notification with
//! `executionSuccessful: false`. clap's own errors about the command line itself come before the
//! format is known and stay text.

use std::io::Write;

use serde_json::json;
use serde_sarif::sarif;

use crate::diag::codes::{self, Severity};
use crate::diag::{line_col, render, Diagnostic, Report};

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MessageFormat {
    #[default]
    Human,
    Json,
    Sarif,
}

/// Writes diagnostics as they come (human, json) or at the end (sarif).
pub struct Emitter {
    format: MessageFormat,
    /// SARIF results and the codes they use, gathered until [`Emitter::finish`].
    results: Vec<sarif::Result>,
    used: Vec<&'static codes::Code>,
    /// Usage or I/O problems, for SARIF.
    fatal: Vec<String>,
    /// Trees out of date (`build --check`), for SARIF.
    drift: Vec<String>,
}

/// 1-based start and end line and column of a diagnostic's span; the end is exclusive, as
/// SARIF's `endColumn` is.
fn region(source: &str, d: &Diagnostic) -> Option<(usize, usize, usize, usize)> {
    let span = d.span.as_ref()?;
    let (line, column) = line_col(source, span.start);
    let (end_line, end_column) = line_col(source, span.end.max(span.start));
    Some((line, column, end_line, end_column))
}

impl Emitter {
    pub fn new(format: MessageFormat) -> Emitter {
        Emitter {
            format,
            results: Vec::new(),
            used: Vec::new(),
            fatal: Vec::new(),
            drift: Vec::new(),
        }
    }

    pub fn format(&self) -> MessageFormat {
        self.format
    }

    /// Writes (or keeps, for SARIF) every diagnostic of one manifest. A report without
    /// diagnostics writes nothing.
    pub fn report(&mut self, report: &Report, stdout: &mut impl Write, stderr: &mut impl Write) {
        if report.diagnostics.is_empty() {
            return;
        }
        match self.format {
            MessageFormat::Human => {
                let _ = writeln!(stderr, "{report}");
            }
            MessageFormat::Json => {
                for d in &report.diagnostics {
                    let _ = writeln!(stdout, "{}", json_line(report, d));
                }
            }
            MessageFormat::Sarif => {
                for d in &report.diagnostics {
                    self.results.push(sarif_result(report, d));
                    if let Some(code) = codes::lookup(d.code.code) {
                        if !self.used.contains(&code) {
                            self.used.push(code);
                        }
                    }
                }
            }
        }
    }

    /// A usage or I/O problem (exit status 2).
    pub fn fatal(&mut self, message: &str, stdout: &mut impl Write, stderr: &mut impl Write) {
        match self.format {
            MessageFormat::Human => {
                let _ = writeln!(stderr, "error: {message}");
            }
            MessageFormat::Json => {
                let line = json!({
                    "file": null,
                    "line": null,
                    "column": null,
                    "end_line": null,
                    "end_column": null,
                    "severity": "error",
                    "code": null,
                    "message": message,
                    "path": null,
                    "help": null,
                    "rendered": format!("error: {message}\n"),
                });
                let _ = writeln!(stdout, "{line}");
            }
            MessageFormat::Sarif => self.fatal.push(message.to_string()),
        }
    }

    /// A tree `build --check` found out of date: `message` says which and what to do,
    /// `changed` names its changed files (`<pod>/<path>`), `diff` shows how. In json one
    /// line with the fields of a diagnostic's (no code, no position) and `changed`; in SARIF a
    /// notification of the run naming the files. Human output is the caller's (the diff).
    pub fn drift(
        &mut self,
        tree: &str,
        message: &str,
        changed: &[String],
        diff: &str,
        stdout: &mut impl Write,
    ) {
        match self.format {
            MessageFormat::Human => {}
            MessageFormat::Json => {
                let line = json!({
                    "file": tree,
                    "line": null,
                    "column": null,
                    "end_line": null,
                    "end_column": null,
                    "severity": "error",
                    "code": null,
                    "message": message,
                    "path": null,
                    "help": null,
                    "changed": changed,
                    "rendered": format!("{diff}error: {message}\n"),
                });
                let _ = writeln!(stdout, "{line}");
            }
            MessageFormat::Sarif => self
                .drift
                .push(format!("{message}; changed: {}", changed.join(", "))),
        }
    }

    /// Writes what was kept: the SARIF log, once.
    pub fn finish(self, stdout: &mut impl Write) {
        if self.format != MessageFormat::Sarif {
            return;
        }
        let log = sarif_log(self.results, self.used, &self.fatal, &self.drift);
        let _ = serde_json::to_writer_pretty(&mut *stdout, &log);
        let _ = writeln!(stdout);
    }
}

/// One diagnostic as a JSON object: the fields cargo's JSON messages have, and the document
/// path and help of podc's.
fn json_line(report: &Report, d: &Diagnostic) -> serde_json::Value {
    let r = region(&report.source, d);
    json!({
        "file": report.file,
        "line": r.map(|r| r.0),
        "column": r.map(|r| r.1),
        "end_line": r.map(|r| r.2),
        "end_column": r.map(|r| r.3),
        "severity": d.severity().name(),
        "code": d.code.code,
        "message": d.message,
        "path": d.path,
        "help": d.help,
        "rendered": render(&report.file, &report.source, d),
    })
}

fn sarif_result(report: &Report, d: &Diagnostic) -> sarif::Result {
    let level = match d.severity() {
        Severity::Error => sarif::ResultLevel::Error,
        Severity::Warning => sarif::ResultLevel::Warning,
    };
    let mut text = d.message.clone();
    if let Some(h) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(h);
    }
    let artifact = sarif::ArtifactLocation::builder()
        .uri(uri_reference(&report.file))
        .build();
    let physical = match region(&report.source, d) {
        Some((line, column, end_line, end_column)) => sarif::PhysicalLocation::builder()
            .artifact_location(artifact)
            .region(
                sarif::Region::builder()
                    .start_line(line as i64)
                    .start_column(column as i64)
                    .end_line(end_line as i64)
                    // An empty span still covers one column.
                    .end_column(end_column.max(column + usize::from(line == end_line)) as i64)
                    .build(),
            )
            .build(),
        None => sarif::PhysicalLocation::builder()
            .artifact_location(artifact)
            .build(),
    };
    let mut location = sarif::Location::builder()
        .physical_location(physical)
        .build();
    if let Some(path) = &d.path {
        location.logical_locations = Some(vec![sarif::LogicalLocation::builder()
            .fully_qualified_name(path.clone())
            .build()]);
    }
    sarif::Result::builder()
        .rule_id(d.code.code.to_string())
        .level(level)
        .message(sarif::Message::builder().text(text).build())
        .locations(vec![location])
        .build()
}

/// The manifest path as given, as a URI reference (SARIF's `uri`): a relative or absolute path
/// stays as it is, except for the bytes a URI cannot hold (space, `<`, `>`, `%`, non-ASCII
/// ...), which are percent-encoded (RFC 3986): `my pod.yaml` → `my%20pod.yaml`, `<stdin>` →
/// `%3Cstdin%3E`.
fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_log(
    results: Vec<sarif::Result>,
    mut used: Vec<&'static codes::Code>,
    fatal: &[String],
    drift: &[String],
) -> sarif::Sarif {
    used.sort_by_key(|c| c.code);
    let rules: Vec<sarif::ReportingDescriptor> = used
        .iter()
        .map(|c| {
            sarif::ReportingDescriptor::builder()
                .id(c.code.to_string())
                .short_description(
                    sarif::MultiformatMessageString::builder()
                        .text(c.summary.to_string())
                        .build(),
                )
                .default_configuration(
                    sarif::ReportingConfiguration::builder()
                        .level(serde_json::Value::from(c.severity.name()))
                        .build(),
                )
                .build()
        })
        .collect();
    let driver = sarif::ToolComponent::builder()
        .name("podc".to_string())
        .version(env!("CARGO_PKG_VERSION").to_string())
        .rules(rules)
        .build();
    let mut run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .results(results)
        // Columns count characters, as in the human output.
        .column_kind(serde_json::Value::from("unicodeCodePoints"))
        .build();
    if !fatal.is_empty() || !drift.is_empty() {
        // A tree out of date is a finding of a run that went well; a usage or I/O problem
        // ends the run.
        let notifications: Vec<sarif::Notification> = fatal
            .iter()
            .chain(drift)
            .map(|m| {
                sarif::Notification::builder()
                    .level(serde_json::Value::from("error"))
                    .message(sarif::Message::builder().text(m.clone()).build())
                    .build()
            })
            .collect();
        run.invocations = Some(vec![sarif::Invocation::builder()
            .execution_successful(fatal.is_empty())
            .tool_execution_notifications(notifications)
            .build()]);
    }
    sarif::Sarif::builder()
        .schema(sarif::SCHEMA_URL.to_string())
        .version(serde_json::Value::from("2.1.0"))
        .runs(vec![run])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_references_keep_paths_and_encode_the_rest() {
        assert_eq!(uri_reference("pods/web.yaml"), "pods/web.yaml");
        assert_eq!(uri_reference("/srv/a-b_c~d.yaml"), "/srv/a-b_c~d.yaml");
        assert_eq!(uri_reference("my pod.yaml"), "my%20pod.yaml");
        assert_eq!(uri_reference("<stdin>"), "%3Cstdin%3E");
        assert_eq!(uri_reference("100%.yaml"), "100%25.yaml");
        assert_eq!(uri_reference("é.yaml"), "%C3%A9.yaml");
    }
}
