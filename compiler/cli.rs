//! The command line: `podc build`, `podc check`, `podc schema`, `podc launch`, and the
//! operator commands (`install`, `uninstall`, `status`, `logs`: [`crate::operate`]).
//!
//! Arguments are parsed by clap into [`Cli`], then each command reads its manifests, runs the
//! pure pipeline and, for `build`, hands the results to [`crate::emit`]. All manifests of one
//! call are compiled before anything is written, so one bad manifest writes nothing at all.
//! Exit status: 0 success, 1 bad input or drift, 2 usage, I/O or internal errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::{Diagnostic, Report};
use crate::lower::Install;
use crate::manifest::CgroupVersion;
use crate::parse::Format;
use crate::resolve::Overrides;
use crate::{emit, Input};

#[derive(Debug, Parser)]
#[command(
    name = "podc",
    version,
    about = "Compile pod manifests into systemd units for systemd-nspawn"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile manifests into unit trees (one directory per pod under the output directory).
    Build {
        /// Manifests (.yaml, .yml or .toml).
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Output directory; each pod's tree is DIR/<pod>.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "DIR",
            default_value = "build"
        )]
        output: PathBuf,
        /// Write nothing; print a diff against the existing trees and exit 1 if they differ.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        target: TargetArgs,
        /// Where the tree is installed on the host [default: /var/lib/podc/<pod>].
        #[arg(long, value_name = "DIR")]
        install_dir: Option<String>,
        /// Where podc is installed on the host.
        #[arg(long, value_name = "PATH", default_value = "/usr/bin/podc")]
        podc_path: String,
    },
    /// Validate manifests: print diagnostics, set the exit status.
    Check {
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run a built pod: mount its plan and exec systemd-nspawn (as root).
    Launch {
        /// The pod's tree (a directory `podc build` wrote, e.g. build/web).
        tree: PathBuf,
        /// Print every step and the nspawn command line, one per line; do nothing.
        #[arg(long, conflicts_with = "check")]
        dry_run: bool,
        /// Look at the host as the launch would (nspawn, images, volume sources, cgroup
        /// controllers, user and group names in the images, mount points); change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Print the JSON Schema (draft-07) of the manifest.
    Schema,
    /// Install a built tree on this systemd host: its install directory and host unit(s).
    Install {
        /// The pod's tree (a directory `podc build` wrote, e.g. build/web).
        tree: PathBuf,
        /// Enable and start the pod (its socket unit for a `start: connection` pod).
        #[arg(long)]
        now: bool,
        /// Replace a running pod: stop it, swap in the new tree, start it again.
        #[arg(long)]
        restart: bool,
        /// Install into the file system tree DIR (an image being made, a test) instead of this
        /// host: print the systemctl commands instead of running them.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Stop and disable an installed pod, remove its units and its install directory.
    Uninstall {
        pod: String,
        /// Keep the install directory (the pod's journal and state).
        #[arg(long)]
        keep_data: bool,
        /// Uninstall from the file system tree DIR instead of this host: print the systemctl
        /// commands instead of running them.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Show an installed pod's host unit, and each app's state, limits and usage.
    Status {
        pod: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an installed pod's journal (journalctl), or one app's.
    Logs {
        pod: String,
        app: Option<String>,
        /// Follow: print new entries as they come.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a man page per command into DIR (podc.1, podc-build.1, ...).
    #[command(hide = true)]
    Man { dir: PathBuf },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CgroupArg {
    V1,
    V2,
}

/// The target flags `build` and `check` share, so that both judge a manifest the same way.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// cgroup hierarchy of the target host (overrides the manifest).
    #[arg(long, value_enum)]
    cgroup: Option<CgroupArg>,
    /// systemd version of the target (overrides the manifest).
    #[arg(long, value_name = "N")]
    systemd: Option<u32>,
}

impl TargetArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            cgroup: self.cgroup.map(|c| match c {
                CgroupArg::V1 => CgroupVersion::V1,
                CgroupArg::V2 => CgroupVersion::V2,
            }),
            systemd: self.systemd,
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Input = 1,
    Usage = 2,
}

/// A usage or I/O problem: exit status 2.
struct Fatal(String);

pub fn run(cli: Cli) -> Exit {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let result = match cli.command {
        Command::Schema => {
            let _ = stdout.write_all(crate::schema::schema_json().as_bytes());
            Ok(Exit::Ok)
        }
        Command::Install {
            tree,
            now,
            restart,
            root,
        } => crate::operate::cli_install(&tree, now, restart, root, &mut stdout).map_err(Fatal),
        Command::Uninstall {
            pod,
            keep_data,
            root,
        } => crate::operate::cli_uninstall(&pod, keep_data, root, &mut stdout).map_err(Fatal),
        Command::Status { pod, json } => {
            crate::operate::cli_status(&pod, json, &mut stdout).map_err(Fatal)
        }
        Command::Logs { pod, app, follow } => {
            crate::operate::cli_logs(&pod, app.as_deref(), follow).map_err(Fatal)
        }
        Command::Completions { shell } => {
            crate::operate::completions(shell, &mut stdout);
            Ok(Exit::Ok)
        }
        Command::Man { dir } => crate::operate::man_pages(&dir).map_err(Fatal),
        Command::Launch {
            tree,
            dry_run,
            check,
        } => launch(&tree, dry_run, check, &mut stdout, &mut stderr),
        Command::Check { manifests, target } => {
            compile_all(&manifests, target.overrides(), &mut stderr).map(|r| match r {
                Ok(_) => Exit::Ok,
                Err(()) => Exit::Input,
            })
        }
        Command::Build {
            manifests,
            output,
            check,
            target,
            install_dir,
            podc_path,
        } => build(
            &manifests,
            &output,
            check,
            target.overrides(),
            install_dir,
            podc_path,
            &mut stdout,
            &mut stderr,
        ),
    };
    match result {
        Ok(exit) => exit,
        Err(Fatal(msg)) => {
            let _ = writeln!(stderr, "error: {msg}");
            Exit::Usage
        }
    }
}

fn launch(
    tree: &Path,
    dry_run: bool,
    check: bool,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<Exit, Fatal> {
    use crate::launch;
    let fatal = |e: launch::LaunchError| Fatal(e.to_string());
    let plan = launch::read_plan(tree).map_err(fatal)?;
    let tree = tree
        .canonicalize()
        .map_err(|e| Fatal(format!("{}: {e}", tree.display())))?;
    let host = launch::Host::detect();
    let launch = launch::prepare(&tree, plan, &host).map_err(fatal)?;
    if dry_run {
        let _ = write!(stdout, "{launch}");
        return Ok(Exit::Ok);
    }
    if check {
        let problems = launch::check_host(&launch, &host);
        for p in &problems {
            let _ = writeln!(stderr, "error: {p}");
        }
        if !problems.is_empty() {
            return Ok(Exit::Usage);
        }
        let _ = writeln!(stdout, "{}: this host can launch it", tree.display());
        return Ok(Exit::Ok);
    }
    let nspawn = launch::preflight(&launch, &host, true).map_err(fatal)?;
    let _ = stdout.flush();
    Err(fatal(launch::execute(&launch, &nspawn)))
}

/// The path flags that feed the tree, held to the rules the manifest's paths are held to:
/// `--podc-path` is the program of the host unit's `ExecStart=`, `--install-dir` the tree the
/// launcher runs (its `state/` is named in overlayfs options).
fn check_path_flag(flag: &str, value: &str) -> Result<(), Fatal> {
    if !crate::escape::is_normal_abs_path(value) {
        return Err(Fatal(format!(
            "{flag} must be an absolute path in normal form without control characters, not {value:?}"
        )));
    }
    let problem = match flag {
        "--podc-path" => crate::escape::exec_path_problem(value),
        _ if !crate::escape::overlay_safe(value) => {
            Some("contains `,`, `:` or `\\`, which overlayfs options cannot carry")
        }
        _ if crate::escape::loses_trailing_space(value) => {
            Some("ends with white space, which systemd strips")
        }
        _ => None,
    };
    match problem {
        Some(p) => Err(Fatal(format!("{flag} {value:?} {p}"))),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    manifests: &[PathBuf],
    output: &Path,
    check: bool,
    overrides: Overrides,
    install_dir: Option<String>,
    podc_path: String,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<Exit, Fatal> {
    if let Some(systemd) = overrides.systemd {
        if systemd < crate::target::MIN_SYSTEMD {
            return Err(Fatal(format!(
                "--systemd {systemd}: podc targets systemd {} or newer",
                crate::target::MIN_SYSTEMD
            )));
        }
    }
    check_path_flag("--podc-path", &podc_path)?;
    if let Some(dir) = &install_dir {
        check_path_flag("--install-dir", dir)?;
        if manifests.len() > 1 {
            return Err(Fatal(
                "--install-dir names one pod's directory; give one manifest with it".into(),
            ));
        }
    }
    let pods = match compile_all(manifests, overrides, stderr)? {
        Ok(pods) => pods,
        Err(()) => return Ok(Exit::Input),
    };
    let mut drift = false;
    let names: Vec<&str> = pods.keys().map(String::as_str).collect();
    let fatal = |e: emit::EmitError| Fatal(e.to_string());
    // Every destination is checked before anything is written, and every tree is written
    // before any is swapped in.
    let mut writer = if check {
        None
    } else {
        Some(emit::Writer::open(output, &names).map_err(fatal)?)
    };
    for pod in pods.values() {
        let install = Install {
            dir: install_dir
                .clone()
                .unwrap_or_else(|| format!("/var/lib/podc/{}", pod.name)),
            podc: podc_path.clone(),
        };
        let files = crate::generate(pod, &install);
        if let Some(writer) = writer.as_mut() {
            writer.stage(&pod.name, &files).map_err(fatal)?;
        } else {
            let diff = emit::diff_tree(output, &pod.name, &files).map_err(fatal)?;
            if !diff.is_empty() {
                drift = true;
                let _ = stdout.write_all(diff.as_bytes());
                let _ = writeln!(
                    stderr,
                    "{}: out of date; run `podc build` to update it",
                    output.join(&pod.name).display()
                );
            }
        }
    }
    if let Some(writer) = writer {
        writer.commit().map_err(fatal)?;
        for name in names {
            let _ = writeln!(stderr, "wrote {}", output.join(name).display());
        }
    }
    Ok(if drift { Exit::Input } else { Exit::Ok })
}

/// Reads a file, but no more than one byte past the manifest size limit.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(crate::limits::MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads and checks every manifest. `Ok(Err(()))` when any has errors (already printed).
fn compile_all(
    manifests: &[PathBuf],
    overrides: Overrides,
    stderr: &mut impl Write,
) -> Result<Result<BTreeMap<String, crate::pod::Pod>, ()>, Fatal> {
    let mut pods = BTreeMap::new();
    let mut failed = false;
    for path in manifests {
        let display = path.display().to_string();
        let format = Format::of(path).ok_or_else(|| {
            Fatal(format!(
                "{display}: unknown manifest type; use a .yaml, .yml or .toml file"
            ))
        })?;
        let bytes = read_bounded(path).map_err(|e| Fatal(format!("{display}: {e}")))?;
        if bytes.len() > crate::limits::MAX_MANIFEST_BYTES {
            let report = Report {
                file: display,
                source: String::new(),
                diagnostics: vec![Diagnostic::new(format!(
                    "the manifest is larger than {} MiB, the most podc reads",
                    crate::limits::MAX_MANIFEST_BYTES >> 20
                ))
                .at("", Some(0..0))],
            };
            let _ = writeln!(stderr, "{report}");
            failed = true;
            continue;
        }
        let source = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let source = String::from_utf8_lossy(e.as_bytes()).into_owned();
                // The lossy text has the same bytes up to the first invalid one.
                let report = Report {
                    file: display,
                    source,
                    diagnostics: vec![Diagnostic::new("the manifest is not valid UTF-8")
                        .at("", Some(valid..valid + 1))],
                };
                let _ = writeln!(stderr, "{report}");
                failed = true;
                continue;
            }
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let input = Input {
            display: &display,
            file_name: &file_name,
            source: &source,
            format,
        };
        match crate::check(&input, overrides) {
            Ok(pod) => {
                if let Some(first) = pods
                    .get(&pod.name)
                    .map(|p: &crate::pod::Pod| p.manifest_file.clone())
                {
                    let parsed = crate::parse::parse(&source, format).ok();
                    let span = parsed.and_then(|p| p.map.value("name"));
                    let report = Report {
                        file: display.clone(),
                        source: source.clone(),
                        diagnostics: vec![Diagnostic::new(format!("pod {:?} is also defined by {first}; pod names must be unique in one build", pod.name)).at("name", span)],
                    };
                    let _ = writeln!(stderr, "{report}");
                    failed = true;
                } else {
                    pods.insert(pod.name.clone(), pod);
                }
            }
            Err(report) => {
                let _ = writeln!(stderr, "{report}");
                failed = true;
            }
        }
    }
    Ok(if failed { Err(()) } else { Ok(pods) })
}
