//! The manual: a page per command (`podc.1`, `podc-build.1`, ...) and the manifest format
//! (`podc.5`), written by `podc man DIR` for the package; and the examples and exit statuses
//! `--help` shows.
//!
//! A command's page is clap's (name, synopsis, description, flags: clap_mangen), then its exit
//! statuses and examples from [`pages`], which `--help` shows too, then where to read on.
//! `podc.5` is written from the manifest's schema ([`format`]), so it names every key the
//! types have.

mod format;
mod pages;

use std::fs;
use std::path::Path;

use clap::Command;
use roff::{bold, roman, Roff};

use super::args::Cli;
use super::exit::Exit;

/// The command line with each command's examples and exit statuses after its flags in
/// `--help` (not `-h`).
pub fn command() -> Command {
    fn annotate(mut cmd: Command, path: &str) -> Command {
        if let Some(page) = pages::page(path) {
            cmd = cmd.after_long_help(pages::help_text(page));
        }
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            let below = if path.is_empty() {
                name.clone()
            } else {
                format!("{path} {name}")
            };
            cmd = cmd.mut_subcommand(&name, |s| annotate(s, &below));
        }
        cmd
    }
    annotate(<Cli as clap::CommandFactory>::command(), "")
}

/// `podc man DIR`: podc.5, and one page per command that is not hidden (podc.1,
/// podc-build.1, podc-image-ls.1, ...).
pub fn man_pages(dir: &Path) -> Result<Exit, String> {
    let shown = |e: std::io::Error| format!("{}: {e}", dir.display());
    fs::create_dir_all(dir).map_err(shown)?;
    let mut cmd = Cli::command_for_pages();
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, "", &mut pages);
    pages.push(("podc.5".into(), format::page()));
    for (file, text) in pages {
        fs::write(dir.join(file), ascii(&text)).map_err(shown)?;
    }
    Ok(Exit::Ok)
}

/// Roff with every character beyond ASCII as groff's `\[uXXXX]`: groff reads its input as
/// Latin-1 unless told otherwise (a `×` in a doc comment was "invalid input character code
/// 151").
fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}

impl Cli {
    /// clap's command line as the pages show it: without `help` as a command.
    fn command_for_pages() -> Command {
        <Cli as clap::CommandFactory>::command().disable_help_subcommand(true)
    }
}

/// The page of `cmd` (at `path` below podc) and of each command below it that is not hidden,
/// as (file name, text).
fn collect(cmd: &Command, path: &str, out: &mut Vec<(String, String)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let below = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        collect(sub, &below, out);
    }
    // Every argument of `.TH` given: an empty one would be lost, and the next take its place.
    let man = clap_mangen::Man::new(cmd.clone())
        .date(format!("podc {}", env!("CARGO_PKG_VERSION")))
        .source("podc")
        .manual("podc manual");
    out.push((man.get_filename(), render(&man, cmd, path)));
}

/// One command's page: clap's sections, then EXIT STATUS, EXAMPLES and SEE ALSO.
fn render(man: &clap_mangen::Man, cmd: &Command, path: &str) -> String {
    let mut out = Vec::new();
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut out);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        let _ = man.render_subcommands_section(&mut out);
    }
    let mut roff = Roff::default();
    if let Some(page) = pages::page(path) {
        roff.control("SH", ["EXIT STATUS"]);
        for (status, when) in page.exit {
            roff.control("TP", [])
                .text([bold(*status)])
                .text([roman(*when)]);
        }
        roff.control("SH", ["EXAMPLES"]);
        for (line, what) in page.examples {
            roff.control("TP", [])
                .text([bold(*line)])
                .text([roman(*what)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut also = vec![bold("podc"), roman("(5) (the manifest format)")];
    if !path.is_empty() {
        also.extend([roman(", "), bold("podc"), roman("(1)")]);
    }
    also.push(roman(
        ", systemd-nspawn(1), systemd.unit(5), journalctl(1); /usr/share/doc/podc/README.md",
    ));
    roff.text(also);
    let _ = roff.to_writer(&mut out);
    if cmd.get_version().is_some() {
        let _ = man.render_version_section(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command that is not hidden has a page of examples and exit statuses, and every
    /// page is a command's.
    #[test]
    fn every_command_has_its_examples_and_exit_statuses() {
        let mut cmd = Cli::command_for_pages();
        cmd.build();
        let mut paths = Vec::new();
        fn walk(cmd: &Command, path: &str, out: &mut Vec<String>) {
            out.push(path.to_string());
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let below = format!("{path} {}", sub.get_name());
                walk(sub, below.trim_start(), out);
            }
        }
        walk(&cmd, "", &mut paths);
        for path in &paths {
            let page = pages::page(path).unwrap_or_else(|| panic!("no page for `podc {path}`"));
            assert!(!page.examples.is_empty() && !page.exit.is_empty(), "{path}");
            for (line, _) in page.examples {
                let words: Vec<&str> = line.split_whitespace().collect();
                let at = words.iter().position(|w| *w == "podc").expect("runs podc");
                let named = words[at + 1..].join(" ");
                assert!(
                    named.starts_with(path.as_str()),
                    "`podc {path}`: example `{line}` runs another command"
                );
            }
        }
        for page in pages::PAGES {
            assert!(paths.iter().any(|p| p == page.command), "{}", page.command);
        }
    }

    #[test]
    fn help_shows_the_examples_and_exit_statuses() {
        let mut cmd = command();
        let help = cmd
            .find_subcommand_mut("build")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("Examples:\n  podc build web.yaml -o build\n"),
            "{help}"
        );
        assert!(help.contains("Exit status:\n  0 "), "{help}");
    }
}
