//! The command line: `podc build`, `podc check`, `podc schema`, `podc launch`, and the
//! operator commands (`install`, `uninstall`, `status`, `logs`: [`crate::host`]).
//!
//! Arguments are parsed by clap into [`Cli`], then each command reads its manifests, runs the
//! pure pipeline and, for `build`, hands the results to [`crate::emit`]. All manifests of one
//! call are compiled before anything is written, so one bad manifest writes nothing at all.
//! Exit status: 0 success, 1 bad input or drift, 2 usage, I/O or internal errors.

pub mod args;
pub mod exit;
pub mod host;
pub mod image;
pub mod man;
mod objects;

pub use args::Cli;
use args::{Command, CompileArgs, KindArg, KubeArgs, StdinFormat};
pub use exit::Exit;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::diag::codes;
use crate::diag::output::{Emitter, MessageFormat};
use crate::diag::{Diagnostic, Report};
use crate::lower::Install;
use crate::parse::Format;
use crate::{emit, Input};

/// A usage or I/O problem: exit status 2.
struct Fatal(String);

pub fn run(cli: Cli) -> Exit {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let result = match cli.command {
        Command::Schema => {
            let _ = stdout.write_all(crate::manifest::schema::schema_json().as_bytes());
            Ok(Exit::Ok)
        }
        Command::Install {
            tree,
            now,
            restart,
            root,
        } => host::install_command(&tree, now, restart, root, &mut stdout).map_err(Fatal),
        Command::Uninstall {
            pod,
            keep_data,
            delete_data,
            root,
        } => {
            let opts = crate::host::UninstallOptions {
                keep_data,
                delete_data,
            };
            host::uninstall_command(&pod, opts, root, &mut stdout).map_err(Fatal)
        }
        Command::Status { pod, json } => {
            host::status_command(&pod, json, &mut stdout).map_err(Fatal)
        }
        Command::Logs { pod, app, follow } => {
            host::logs_command(&pod, app.as_deref(), follow).map_err(Fatal)
        }
        Command::Exec { pod, app, command } => match crate::host::exec(&pod, &app, &command) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(Fatal(e.to_string())),
        },
        Command::Image { command } => crate::cli::image::run(command, &mut stdout).map_err(Fatal),
        Command::Completions { shell } => {
            host::completions(shell, &mut stdout);
            Ok(Exit::Ok)
        }
        Command::Man { dir } => man::man_pages(&dir).map_err(Fatal),
        Command::ProbeGrpc {
            host,
            port,
            service,
            timeout_ms,
        } => {
            use crate::launch::grpc_probe;
            let addr = std::net::SocketAddr::new(host, port);
            let service = service.unwrap_or_default();
            let timeout = std::time::Duration::from_millis(timeout_ms);
            match grpc_probe::check(addr, &service, timeout) {
                Ok(()) => Ok(Exit::Ok),
                Err(failure) => {
                    let _ = writeln!(stdout, "{}", grpc_probe::describe(addr, &service, &failure));
                    Ok(Exit::Input)
                }
            }
        }
        Command::ProbeHttps {
            host,
            port,
            path,
            headers,
            timeout_ms,
        } => probe_https(host, port, &path, &headers, timeout_ms, &mut stdout),
        Command::Launch {
            tree,
            dry_run,
            check,
        } => launch(&tree, dry_run, check, &mut stdout, &mut stderr),
        Command::Check { args } => {
            return compile_command(&args, None, &mut stdout, &mut stderr);
        }
        Command::Kube { args } => return kube_command(&args, &mut stdout, &mut stderr),
        Command::Build {
            args,
            output,
            check,
        } => {
            return compile_command(&args, Some((&output, check)), &mut stdout, &mut stderr);
        }
    };
    match result {
        Ok(exit) => exit,
        Err(Fatal(msg)) => {
            let _ = writeln!(stderr, "error: {msg}");
            Exit::Usage
        }
    }
}

/// `podc probe-https`: exit 0 when the probe passes, else 1 with why on standard output (the
/// health script puts it in the journal).
fn probe_https(
    host: std::net::IpAddr,
    port: u16,
    path: &str,
    headers: &[String],
    timeout_ms: u64,
    stdout: &mut impl Write,
) -> Result<Exit, Fatal> {
    use crate::launch::https_probe;
    if !headers.len().is_multiple_of(2) {
        return Err(Fatal(format!(
            "probe-https: headers come as a name and a value each; {:?} has no value",
            headers[headers.len() - 1]
        )));
    }
    let headers: Vec<(String, String)> = headers
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    // What the manifest's checks allow (tokens; one line without NUL), so that no argument
    // adds a header line of its own.
    let token = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if let Some((name, _)) = headers
        .iter()
        .find(|(n, v)| !token(n) || v.contains(['\r', '\n', '\0']))
    {
        return Err(Fatal(format!(
            "probe-https: header {name:?} is not a token with a value of one line"
        )));
    }
    let probe = https_probe::Probe {
        host,
        port,
        path,
        headers: &headers,
    };
    let timeout = std::time::Duration::from_millis(timeout_ms);
    match https_probe::check(&probe, timeout) {
        Ok(_) => Ok(Exit::Ok),
        Err(failed) => {
            let _ = writeln!(stdout, "{failed}");
            Ok(Exit::Input)
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
    // The tree's target against this host (not for the dry run, which shows the plan).
    let target = match dry_run {
        true => Default::default(),
        false => {
            let host = launch::target_check::HostTarget::detect();
            launch::target_check::check_target(&tree, &plan, &host)
        }
    };
    for w in &target.warnings {
        let _ = writeln!(stderr, "warning: {}: {w}", tree.display());
    }
    // A refused target is said first: what the rest of the preparation trips over on this host
    // (a v1 controller a v2 host lacks) follows from it and would hide the fix. A launch stops
    // there; a check goes on to say what else it finds.
    if let Some(r) = target.refusals.first().filter(|_| !check) {
        return Err(Fatal(format!("{}: {r}", tree.display())));
    }
    for r in &target.refusals {
        let _ = writeln!(stderr, "error: {}: {r}", tree.display());
    }
    let refused = |e: Fatal, stderr: &mut dyn Write| match target.refusals.is_empty() {
        true => Err(e),
        false => {
            let _ = writeln!(stderr, "error: {}", e.0);
            Ok(Exit::Usage)
        }
    };
    let mut host = launch::Host::detect();
    let record = launch::read_record(&tree).map_err(fatal)?;
    // A launch holds a lease on its images from the look-up on; a dry run or a check (or a
    // launch by another user than root, which preflight refuses) takes none.
    let lease = if dry_run || check || crate::sys::effective_uid() != 0 {
        host.images = launch::Images::look_up(&plan, &host.images.store, &record).map_err(fatal)?;
        None
    } else {
        let (images, lease) =
            launch::Images::look_up_leased(&plan, &host.images.store, &record, &tree)
                .map_err(fatal)?;
        host.images = images;
        lease
    };
    host.resources = launch::HostResources::read(&tree);
    let launch = match launch::prepare(&tree, plan, &host) {
        Ok(l) => l,
        Err(e) => return refused(fatal(e), stderr),
    };
    if dry_run {
        let _ = write!(stdout, "{launch}");
        for m in &launch.missing_images {
            let _ = writeln!(stderr, "error: {m}");
        }
        return Ok(if launch.missing_images.is_empty() {
            Exit::Ok
        } else {
            Exit::Usage
        });
    }
    if check {
        let problems = launch::check_host(&launch, &host);
        for p in &problems {
            let _ = writeln!(stderr, "error: {p}");
        }
        if !problems.is_empty() || !target.refusals.is_empty() {
            return Ok(Exit::Usage);
        }
        let _ = writeln!(stdout, "{}: this host can launch it", tree.display());
        return Ok(Exit::Ok);
    }
    if !host.notify {
        if let Some(w) = launch::target_check::by_hand_warning(&tree, &launch.plan) {
            let _ = writeln!(stderr, "warning: {}: {w}", tree.display());
        }
    }
    let nspawn = launch::preflight(&launch, &host, true).map_err(fatal)?;
    // What this launch runs is recorded before anything is mounted: every later launch runs
    // the same images, whatever their names mean by then.
    let ran = host.images.record();
    if ran != record {
        launch::write_record(&tree, &ran).map_err(fatal)?;
    }
    let _ = stdout.flush();
    let status =
        launch::execute(&launch, &nspawn, lease.map(|l| l.into_fd()), stderr).map_err(fatal)?;
    // Supervised (see launch::supervise): podc ends as nspawn ended.
    std::process::exit(launch::exit_code(status))
}

/// The path flags that feed the tree, held to the rules the manifest's paths are held to:
/// `--podc-path` is the program of the host unit's `ExecStart=`, `--install-dir` the tree the
/// launcher runs (its `state/` is named in overlayfs options).
fn check_path_flag(flag: &str, value: &str) -> Result<(), Fatal> {
    if !crate::systemd::escape::is_normal_abs_path(value) {
        return Err(Fatal(format!(
            "{flag} must be an absolute path in normal form without control characters, not {value:?}"
        )));
    }
    let problem = match flag {
        "--podc-path" => crate::systemd::escape::exec_path_problem(value),
        _ if !crate::systemd::escape::overlay_safe(value) => {
            Some("contains `,`, `:` or `\\`, which overlayfs options cannot carry")
        }
        _ if crate::systemd::escape::loses_trailing_space(value) => {
            Some("ends with white space, which systemd strips")
        }
        _ => None,
    };
    match problem {
        Some(p) => Err(Fatal(format!("{flag} {value:?} {p}"))),
        None => Ok(()),
    }
}

/// The one validation of the flags `build` and `check` share: both refuse the same command
/// lines with the same words.
fn validate(args: &CompileArgs) -> Result<(), Fatal> {
    if let Some(systemd) = args.target.systemd {
        if systemd < crate::systemd::target::MIN_SYSTEMD {
            return Err(Fatal(format!(
                "--systemd {systemd}: podc targets systemd {} or newer",
                crate::systemd::target::MIN_SYSTEMD
            )));
        }
    }
    check_path_flag("--podc-path", &args.podc_path)?;
    if let Some(dir) = &args.install_dir {
        check_path_flag("--install-dir", dir)?;
        if args.manifests.len() > 1 {
            return Err(Fatal(
                "--install-dir names one pod's directory; give one manifest with it".into(),
            ));
        }
    }
    if args.manifests.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(Fatal("standard input (`-`) can be read only once".into()));
    }
    Ok(())
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// `build` (with its output directory and `--check`) or `check`: validate the flags, compile
/// every manifest, show the diagnostics in the chosen format, and for `build` write the trees.
fn compile_command(
    args: &CompileArgs,
    build_to: Option<(&Path, bool)>,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Exit {
    let mut emitter = Emitter::new(args.message_format);
    let result = validate(args).and_then(|()| {
        let pods = match compile_all(args, &mut emitter, stdout, stderr)? {
            Ok(pods) => pods,
            Err(()) => return Ok(Exit::Input),
        };
        match build_to {
            None => Ok(Exit::Ok),
            Some((output, check)) => {
                build(args, &pods, output, check, &mut emitter, stdout, stderr)
            }
        }
    });
    let exit = match result {
        Ok(exit) => exit,
        Err(Fatal(msg)) => {
            emitter.fatal(&msg, stdout, stderr);
            Exit::Usage
        }
    };
    emitter.finish(stdout);
    exit
}

fn build(
    args: &CompileArgs,
    pods: &BTreeMap<String, crate::pod::Pod>,
    output: &Path,
    check: bool,
    emitter: &mut Emitter,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<Exit, Fatal> {
    let format = emitter.format();
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
            dir: args
                .install_dir
                .clone()
                .unwrap_or_else(|| format!("/var/lib/podc/{}", pod.name)),
            podc: args.podc_path.clone(),
        };
        let files = crate::generate(pod, &install);
        if let Some(writer) = writer.as_mut() {
            writer.stage(&pod.name, &files).map_err(fatal)?;
        } else {
            let found = emit::diff_tree(output, &pod.name, &files).map_err(fatal)?;
            if !found.is_empty() {
                drift = true;
                let tree = output.join(&pod.name).display().to_string();
                let message = format!("{tree}: out of date; run `podc build` to update it");
                // Standard output carries the machine-readable messages in json and sarif:
                // there one message names the tree and its changed files (#28: json said
                // nothing), and the diff goes to standard error.
                if format == MessageFormat::Human {
                    let _ = stdout.write_all(found.diff.as_bytes());
                } else {
                    let _ = stderr.write_all(found.diff.as_bytes());
                    emitter.drift(&tree, &message, &found.changed, &found.diff, stdout);
                }
                let _ = writeln!(stderr, "{message}");
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

/// Reads at most one byte past the manifest size limit.
fn read_bounded(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader
        .take(crate::limits::MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A manifest's bytes, name to show and format: a file, or standard input for `-`.
fn read_manifest(path: &Path, args: &CompileArgs) -> Result<(Vec<u8>, String, Format), Fatal> {
    if is_stdin(path) {
        let display = "<stdin>".to_string();
        let format = match args.stdin_format {
            StdinFormat::Yaml => Format::Yaml,
            StdinFormat::Toml => Format::Toml,
        };
        let bytes =
            read_bounded(std::io::stdin().lock()).map_err(|e| Fatal(format!("{display}: {e}")))?;
        return Ok((bytes, display, format));
    }
    let display = path.display().to_string();
    let format = Format::of(path).ok_or_else(|| {
        Fatal(format!(
            "{display}: unknown manifest type; use a .yaml, .yml or .toml file, or `-` for standard input"
        ))
    })?;
    let bytes = std::fs::File::open(path)
        .and_then(read_bounded)
        .map_err(|e| Fatal(format!("{display}: {e}")))?;
    Ok((bytes, display, format))
}

/// Reads and checks every manifest, showing each one's diagnostics. `Ok(Err(()))` when any
/// has errors, or warnings under `--deny-warnings`.
fn compile_all(
    args: &CompileArgs,
    emitter: &mut Emitter,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<Result<BTreeMap<String, crate::pod::Pod>, ()>, Fatal> {
    compile_each(args, emitter, stdout, stderr, &mut |_, _, _| {})
}

/// Checks one pod further, adding its diagnostics to the manifest's report before it is shown:
/// the pod, the report, and the manifest's format (for the positions of document paths).
type PodHook<'a> = dyn FnMut(&crate::pod::Pod, &mut Report, &Input) + 'a;

/// [`compile_all`], calling `hook` on every pod that checked (in manifest order).
fn compile_each(
    args: &CompileArgs,
    emitter: &mut Emitter,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
    hook: &mut PodHook,
) -> Result<Result<BTreeMap<String, crate::pod::Pod>, ()>, Fatal> {
    let overrides = args.target.overrides();
    let side = objects::objects(&args.objects)?;
    let mut pods = BTreeMap::new();
    let mut failed = false;
    for path in &args.manifests {
        let (bytes, display, format) = read_manifest(path, args)?;
        if bytes.len() > crate::limits::MAX_MANIFEST_BYTES {
            let report = Report {
                file: display,
                source: String::new(),
                diagnostics: vec![Diagnostic::new(
                    codes::TOO_LARGE,
                    format!(
                        "the manifest is larger than {} MiB, the most podc reads",
                        crate::limits::MAX_MANIFEST_BYTES >> 20
                    ),
                )
                .at("", Some(0..0))],
            };
            emitter.report(&report, stdout, stderr);
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
                    diagnostics: vec![Diagnostic::new(
                        codes::NOT_UTF8,
                        "the manifest is not valid UTF-8",
                    )
                    .at("", Some(valid..valid + 1))],
                };
                emitter.report(&report, stdout, stderr);
                failed = true;
                continue;
            }
        };
        let file_name = if is_stdin(path) {
            display.clone()
        } else {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        // A Kubernetes file may hold several Pods and Deployments: each is a pod of its own.
        for workload in 0..crate::workloads(&source, format) {
            let input = Input {
                display: &display,
                file_name: &file_name,
                source: &source,
                format,
                workload,
                side: &side,
            };
            let (pod, mut report) = crate::check_all(&input, overrides);
            if let Some(pod) = pod {
                if let Some(first) = pods
                    .get(&pod.name)
                    .map(|p: &crate::pod::Pod| p.manifest_file.clone())
                {
                    let parsed = crate::read_with(&source, format, workload, &side).ok();
                    let span = parsed.and_then(|p| p.map.value("name"));
                    report.diagnostics.push(
                        Diagnostic::new(
                            codes::POD_DUPLICATE,
                            format!(
                                "pod {:?} is also defined by {first}; pod names must be unique in one build",
                                pod.name
                            ),
                        )
                        .at("name", span),
                    );
                } else {
                    hook(&pod, &mut report, &input);
                    // Kept only if the whole call succeeds.
                    pods.insert(pod.name.clone(), pod);
                }
            }
            let denied = args.deny_warnings && report.errors() == 0 && report.warnings() > 0;
            failed |= report.errors() > 0 || denied;
            emitter.report(&report, stdout, stderr);
            if denied && emitter.format() == MessageFormat::Human {
                let _ = writeln!(
                    stderr,
                    "error: {display}: warnings are denied (--deny-warnings)"
                );
            }
        }
    }
    Ok(if failed { Err(()) } else { Ok(pods) })
}

/// `podc kube`: check every manifest as `podc check` does, map each pod to a Kubernetes
/// object, and write the documents (in manifest order) only if nothing failed.
fn kube_command(args: &KubeArgs, stdout: &mut impl Write, stderr: &mut impl Write) -> Exit {
    use crate::kube::{out, Kind, KubeOptions};
    let compile = CompileArgs {
        manifests: args.manifests.clone(),
        target: args.target.clone(),
        objects: args.objects.clone(),
        install_dir: None,
        podc_path: "/usr/bin/podc".into(),
        deny_warnings: args.deny_warnings,
        message_format: args.message_format,
        stdin_format: args.stdin_format,
    };
    let mut emitter = Emitter::new(args.message_format);
    let result = validate(&compile)
        .and_then(|()| {
            if args.message_format != MessageFormat::Human && args.output.is_none() {
                return Err(Fatal(
                    "--message-format json and sarif write to standard output; give -o FILE for the YAML"
                        .into(),
                ));
            }
            kube_options(args)
        })
        .and_then(|opts| {
            let opts = KubeOptions {
                kind: match args.kind {
                    KindArg::Pod => Kind::Pod,
                    KindArg::Deployment => Kind::Deployment,
                },
                images: opts,
            };
            let mut documents = Vec::new();
            let mut hook = |pod: &crate::pod::Pod, report: &mut Report, input: &Input| {
                let (yaml, mut diagnostics) = match out::to_kube(pod, &opts) {
                    Ok(k) => (Some(k.yaml), k.warnings),
                    Err(errors) => (None, errors),
                };
                // Place each diagnostic at its setting in the manifest.
                if let Ok(parsed) =
                    crate::read_with(input.source, input.format, input.workload, input.side)
                {
                    for d in &mut diagnostics {
                        if let Some(p) = d.path.take() {
                            d.span = parsed.map.key(&p);
                            // A Kubernetes input names its own paths.
                            d.path = Some(parsed.map.document_path(&p));
                        }
                    }
                }
                report.diagnostics.extend(diagnostics);
                documents.extend(yaml);
            };
            let pods = match compile_each(&compile, &mut emitter, stdout, stderr, &mut hook)? {
                Ok(pods) => pods,
                Err(()) => return Ok(Exit::Input),
            };
            for name in opts.images.keys() {
                if !pods
                    .values()
                    .any(|p| p.apps.iter().any(|a| &a.name == name))
                {
                    return Err(Fatal(format!(
                        "--image {name}=...: no app {name:?} in the manifests"
                    )));
                }
            }
            let text = documents.join("---\n");
            match &args.output {
                None => {
                    let _ = stdout.write_all(text.as_bytes());
                }
                Some(path) => write_atomically(path, text.as_bytes())
                    .map_err(|e| Fatal(format!("{}: {e}", path.display())))?,
            }
            Ok(Exit::Ok)
        });
    let exit = match result {
        Ok(exit) => exit,
        Err(Fatal(msg)) => {
            emitter.fatal(&msg, stdout, stderr);
            Exit::Usage
        }
    };
    emitter.finish(stdout);
    exit
}

/// `--image APP=REF` flags as a map, each reference checked.
fn kube_options(args: &KubeArgs) -> Result<BTreeMap<String, String>, Fatal> {
    let mut images = BTreeMap::new();
    for flag in &args.images {
        let Some((app, reference)) = flag.split_once('=') else {
            return Err(Fatal(format!("--image {flag:?}: write APP=REF")));
        };
        // A short name is Docker Hub's, as in a manifest; the object names the full one.
        let (r, _) = crate::manifest::reference::Reference::parse_normalized(reference)
            .map_err(|e| Fatal(format!("--image {flag:?}: {e}")))?;
        if images.insert(app.to_string(), r.to_string()).is_some() {
            return Err(Fatal(format!("--image: app {app:?} is given twice")));
        }
    }
    Ok(images)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// the file is either the old one or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // A temporary file is private (0600); the YAML is not secret.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
