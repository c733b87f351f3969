//! One app: its name, image, command, and the parts each subject checks.

use std::collections::BTreeMap;

use super::checker::*;
use super::health::*;
use super::isolators::*;
use super::items::*;
use super::ports::*;
use super::security::*;
use super::volumes::*;
use super::words::*;
use crate::diag::codes;
use crate::limits;
use crate::manifest;
use crate::manifest::reference::Reference;
use crate::parse::source::{join_index, join_key};
use crate::pod::{self, App};
use crate::systemd::escape;
use crate::systemd::target::Target;

/// Unit names systemd inside the pod uses itself, which an app must not shadow.
pub(super) const RESERVED_APP_NAMES: &[&str] = &[
    "dbus",
    "dbus-broker",
    "emergency",
    "rescue",
    "console-getty",
    "container-getty",
    "init",
];

pub(super) const RESERVED_APP_PREFIXES: &[&str] = &["podc-", "systemd-"];

pub(super) fn resolve_app(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    volumes: &BTreeMap<String, Declared>,
    (items, item_names): (&[pod::Item], &BTreeMap<String, manifest::ItemKind>),
    t: Target,
) -> App {
    let (image, image_valid) = check_name_and_image(c, path, a);
    // An image that is neither a path nor a reference has its error; no second one for the
    // command.
    let by_reference = image_valid.then_some(matches!(image, pod::Image::Reference(_)));
    let command = check_command(c, path, a, by_reference, &Vars::of(a, items));
    let (user, group, supplementary_groups, working_directory) = resolve_identity(c, path, a);
    let iso = a.isolators.clone().unwrap_or_default();
    let iso_path = join_key(path, "isolators");
    let limits = resolve_limits(c, &iso_path, &iso, t);
    if let Some(v) = iso.oom_score_adj {
        if !(-1000..=1000).contains(&v) {
            c.value(
                codes::OUT_OF_RANGE,
                &join_key(&iso_path, "oomScoreAdj"),
                format!("oomScoreAdj {v} is out of range -1000..1000"),
            );
        }
    }
    let capabilities = resolve_capabilities(c, &iso_path, &iso);
    let seccomp = resolve_seccomp(c, &iso_path, &iso, t);
    let cgroup_writable = resolve_cgroup_mount(c, &iso_path, &iso, t);
    let syscall_log = resolve_syscall_log(c, &iso_path, &iso, t);
    let syscall_architectures = resolve_syscall_architectures(c, &iso_path, &iso);
    let (mounts, files) = resolve_mounts(c, path, a, volumes, item_names);
    check_files_target(c, path, a, t);
    let (environment, env_from) = resolve_env(c, path, a, item_names);
    let environment_from = resolve_env_all(c, path, a, item_names);
    let ports = a
        .ports
        .iter()
        .enumerate()
        .filter_map(|(j, p)| resolve_port(c, &join_index(&join_key(path, "ports"), j), p))
        .collect();
    let health = a
        .health
        .as_ref()
        .and_then(|h| resolve_health(c, &join_key(path, "health"), h));
    let hooks = resolve_hooks(c, path, a);

    App {
        name: a.name.clone(),
        given: pod::Given {
            working_directory: a.working_directory.is_some()
                || !matches!(image, pod::Image::Reference(_)),
            user: a.user.is_some()
                || a.group.is_some()
                || !matches!(image, pod::Image::Reference(_)),
        },
        image,
        command,
        user,
        group,
        supplementary_groups,
        working_directory,
        environment,
        limits,
        oom_score_adj: iso.oom_score_adj,
        no_new_privileges: iso.no_new_privileges,
        capabilities,
        seccomp,
        syscall_log,
        syscall_architectures,
        relax: {
            let mut r = iso.relax.clone();
            r.sort();
            r.dedup();
            r
        },
        cgroup_writable,
        mounts,
        read_only_rootfs: a.read_only_rootfs.unwrap_or(false),
        after: a.after.clone(),
        init: a.init.unwrap_or(false),
        restart: a.restart.unwrap_or(manifest::Restart::No),
        ports,
        health,
        hooks,
        files,
        env_from,
        environment_from,
    }
}

/// The app's name (the Name rule, not reserved) and its image: an absolute path, or else an
/// OCI reference (a path that breaks a rule is still reported as a path: it starts with `/`).
/// Whether the image is one of the two (an invalid path still counts: it is a path).
pub(super) fn check_name_and_image(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
) -> (pod::Image, bool) {
    let name_path = join_key(path, "name");
    let reserved = RESERVED_APP_NAMES.contains(&a.name.as_str())
        || RESERVED_APP_PREFIXES.iter().any(|p| a.name.starts_with(p));
    if c.name(&name_path, "app", &a.name) && reserved {
        c.value(codes::APP_NAME_RESERVED, &name_path, format!("app name {} is reserved: its unit would shadow one that systemd or podc runs in the pod", show(&a.name)))
            .help = Some(format!(
                "reserved are the names {} and names starting with {}",
                RESERVED_APP_NAMES.join(", "),
                RESERVED_APP_PREFIXES.join(" or ")
            ));
    }
    let image_path = join_key(path, "image");
    if a.image.starts_with("./") || a.image.starts_with("../") {
        c.value(
            codes::IMAGE_REFERENCE,
            &image_path,
            format!(
                "image {} is a relative path, neither an absolute path nor an image reference",
                show(&a.image)
            ),
        )
        .help = Some(
            "a root filesystem is named by its absolute path on the host; an image by a reference \
             (`registry.example/name:tag`, best pinned with `@sha256:<digest>`)"
                .into(),
        );
        return (pod::Image::Path(a.image.clone()), false);
    }
    if !a.image.starts_with('/') {
        // A short name is Docker Hub's (the warnings say so, P1008).
        return match Reference::parse_normalized(&a.image) {
            Ok((r, _)) => (pod::Image::Reference(r), true),
            Err(why) => {
                c.value(
                    codes::IMAGE_REFERENCE,
                    &image_path,
                    format!(
                        "image {} is not an absolute path, nor an image reference: {why}",
                        show(&a.image)
                    ),
                )
                .help = Some(
                    "give the root filesystem's absolute path, or an image reference: \
                     `registry.example/name:tag`, best pinned with `@sha256:<digest>`"
                        .into(),
                );
                (pod::Image::Path(a.image.clone()), false)
            }
        };
    }
    if c.abs_path(&image_path, "image", &a.image)
        && !a.read_only_rootfs.unwrap_or(false)
        && !escape::overlay_safe(&a.image)
    {
        c.value(codes::PATH_UNWRITABLE, &join_key(path, "image"), format!("image {} has a `,`, `:` or `\\`, which cannot be named as the lower layer of the overlay that keeps the image unchanged", show(&a.image)))
            .help = Some("move the image, or set readOnlyRootfs: true (then it is bound read-only, with no overlay)".into());
    }
    (pod::Image::Path(a.image.clone()), true)
}

/// The command line and environment: what systemd and the kernel can pass to the program.
/// `by_reference`: whether the image is a reference (`None`: it is neither a path nor a
/// reference, and has its error).
pub(super) fn check_command(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    by_reference: Option<bool>,
    vars: &Vars,
) -> pod::Command {
    let exec_path = join_key(path, "exec");
    let no_exec = Vec::new();
    let words = match (&a.exec, &a.args) {
        (Some(e), _) => e,
        (None, Some(args)) => args,
        (None, None) if by_reference != Some(false) => &no_exec,
        (None, None) => {
            c.key(
                codes::EXEC_MISSING,
                &join_key(path, "image"),
                format!(
                    "app {} gives no exec, and its image is a path: a root filesystem has no command of its own",
                    show(&a.name)
                ),
            )
            .help = Some(
                "add `exec: [/path/to/program, args...]`; only an image by reference (with its config's Entrypoint and Cmd) may leave it out"
                    .into(),
            );
            &no_exec
        }
    };
    if a.exec.as_ref().is_some_and(|e| e.is_empty()) {
        c.value(
            codes::EXEC_EMPTY,
            &exec_path,
            "exec needs at least the program to run",
        );
    }
    check_args(c, path, a, by_reference);
    // The list the checks below hold: exec, else args (the image's Entrypoint, which comes
    // before them, is checked at launch).
    let exec_path = if a.exec.is_some() {
        exec_path
    } else {
        join_key(path, "args")
    };
    let exec = word_args(c, &exec_path, words, vars);
    for (i, arg) in exec.iter().enumerate() {
        let p = || join_index(&exec_path, i);
        if arg.text_contains('\0') {
            c.value(
                codes::NUL,
                &p(),
                "a NUL character cannot be passed to a program",
            );
        } else if i == 0 && a.exec.is_some() {
            match arg.as_text() {
                Some(program) => check_program(c, &p(), program, by_reference),
                None => {
                    c.value(
                        codes::PROGRAM_PATH,
                        &p(),
                        "the program refers to a variable read at launch: systemd puts variables into the arguments, never into the program",
                    )
                    .help = Some("name the program as it is, and pass the variable as an argument".into());
                }
            }
        }
    }

    // A variable's value counts when the app starts: the launcher holds each to the kernel's
    // limit.
    for (i, arg) in exec.iter().enumerate() {
        let len = arg.text_len();
        if len + 1 > escape::MAX_ARG_STRLEN {
            c.value(codes::ARG_TOO_LONG, &join_index(&exec_path, i), format!("argument of {len} bytes: the kernel passes at most {} bytes per argument (MAX_ARG_STRLEN)", escape::MAX_ARG_STRLEN - 1));
        }
    }
    // Quoting at most quadruples a byte: only a line that might be too long is built to measure.
    let bound: usize = exec
        .iter()
        .map(|a| 4 * a.text_len() + 3 + a.vars().map(|v| v.len() + 3).sum::<usize>())
        .sum();
    if bound + "ExecStart=".len() >= limits::MAX_UNIT_LINE
        && escape::exec_args_line(&exec).len() + "ExecStart=".len() >= limits::MAX_UNIT_LINE
    {
        c.value(codes::LINE_TOO_LONG, &exec_path, format!("the command line is too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
    }
    let args_total: usize = exec
        .iter()
        .map(|a| a.text_len() + 1)
        .chain(a.environment.iter().map(|(k, v)| match v {
            manifest::EnvValue::Text(v) => escape::exec_string_bytes(k) + v.len() + 1,
            // Read at launch; the launcher holds each value to the kernel's limit.
            manifest::EnvValue::From(_) => 0,
        }))
        .sum();
    if args_total > escape::MAX_ARGS_TOTAL {
        c.value(codes::ARGS_TOTAL, &exec_path, format!("arguments and environment take {args_total} bytes together; podc allows at most {} (the kernel's limit is a quarter of the stack limit, shared with what systemd adds)", escape::MAX_ARGS_TOTAL));
    }
    check_environment(c, path, a);
    match (&a.exec, &a.args) {
        (Some(e), _) if e.first().is_some_and(|p| !p.text().contains('/')) => {
            pod::Command::LookUp(exec)
        }
        (Some(_), _) => pod::Command::Exec(exec),
        (None, Some(_)) => pod::Command::Args(exec),
        (None, None) => pod::Command::Image,
    }
}

/// The environment's names and values: what systemd and the kernel can pass.
fn check_environment(c: &mut Checker, path: &str, a: &manifest::App) {
    for (k, v) in &a.environment {
        let p = join_key(&join_key(path, "environment"), k);
        let valid = k
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            c.key(
                codes::ENV_NAME,
                &p,
                format!(
                    "environment variable name {} must match ^[A-Za-z_][A-Za-z0-9_]*$",
                    show(k)
                ),
            );
        }
        let manifest::EnvValue::Text(v) = v else {
            continue;
        };
        if escape::has_nul(v) {
            c.value(
                codes::NUL,
                &p,
                "a NUL character cannot be passed in the environment",
            );
        } else if k.len() + 1 + escape::exec_string_bytes(v) > escape::MAX_ARG_STRLEN {
            c.value(codes::ARG_TOO_LONG, &p, format!("`{k}=` and its value take {} bytes: the kernel passes at most {} bytes per environment entry (MAX_ARG_STRLEN)", k.len() + 1 + v.len(), escape::MAX_ARG_STRLEN - 1));
        } else if 4 * (k.len() + 1 + v.len()) + 2 + "Environment=".len() >= limits::MAX_UNIT_LINE
            && escape::env_assignment(k, v).len() + "Environment=".len() >= limits::MAX_UNIT_LINE
        {
            c.value(codes::LINE_TOO_LONG, &p, format!("the value is too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
        }
    }
}

/// `args`: the arguments for the image's Entrypoint, so only for an image by reference, and
/// not beside `exec` (the whole command line).
fn check_args(c: &mut Checker, path: &str, a: &manifest::App, by_reference: Option<bool>) {
    let Some(args) = &a.args else { return };
    let args_path = join_key(path, "args");
    if a.exec.is_some() {
        c.key(
            codes::ARGS_WITH_EXEC,
            &args_path,
            format!(
                "app {} gives `args` and `exec`: exec is the whole command line, in place of the image's Entrypoint and Cmd",
                show(&a.name)
            ),
        )
        .help = Some(
            "put the arguments at the end of exec, or leave exec out to pass args to the image's Entrypoint"
                .into(),
        );
    } else if by_reference == Some(false) {
        c.key(
            codes::ARGS_IMAGE_PATH,
            &args_path,
            format!(
                "app {} gives `args`, but its image is a path: a root filesystem has no Entrypoint to pass them to",
                show(&a.name)
            ),
        )
        .help = Some("write the whole command line in `exec: [/path/to/program, args...]`".into());
    } else if args.is_empty() {
        c.value(
            codes::ARGS_EMPTY,
            &args_path,
            "args is empty: leave it out to run the image's Entrypoint and Cmd",
        )
        .help = Some(
            "Kubernetes reads an empty `args` as none; to run the Entrypoint without arguments, write the whole command line in exec"
                .into(),
        );
    }
}

/// exec[0]: an absolute path in the image, or (an image by reference only) a bare name that
/// `podc launch` looks up in the image's PATH.
fn check_program(c: &mut Checker, p: &str, program: &str, by_reference: Option<bool>) {
    if let Some(problem) = escape::exec_path_problem(program) {
        c.value(
            codes::PROGRAM_PATH,
            p,
            format!("program path {} {problem}", show(program)),
        );
    } else if program.starts_with('/') {
        if program.ends_with('/') && program.len() > 1 {
            c.value(
                codes::PROGRAM_PATH,
                p,
                format!("program path {} ends with `/`", show(program)),
            );
        } else {
            c.abs_path(p, "program path", program);
        }
    } else if program.contains('/') {
        c.value(
            codes::PATH_RELATIVE,
            p,
            format!("program path {} is a relative path", show(program)),
        )
        .help = Some(
            "give the program's absolute path in the image; only a bare name (no `/`) is looked up, in the PATH of an image by reference"
                .into(),
        );
    } else if program.is_empty() || program == "." || program == ".." {
        c.value(
            codes::PROGRAM_PATH,
            p,
            format!("program {} names no program", show(program)),
        );
    } else if by_reference == Some(false) {
        c.value(
            codes::PATH_RELATIVE,
            p,
            format!(
                "program {} is not an absolute path, and the app's image is a path: podc looks a bare name up only in the PATH of an image by reference",
                show(program)
            ),
        )
        .help = Some(format!(
            "give the program's absolute path in the root filesystem (`/…/{program}`)"
        ));
    } else if escape::has_control(program) {
        c.value(
            codes::PATH_CONTROL,
            p,
            format!("program {} contains a control character", show(program)),
        );
    } else if program.len() > escape::NAME_MAX {
        c.value(
            codes::PATH_COMPONENT_LONG,
            p,
            format!(
                "program name of {} bytes; Linux file names hold at most {}",
                program.len(),
                escape::NAME_MAX
            ),
        );
    }
}

/// A command line at `path` that systemd runs with `directive` (`ExecStart=`, with any prefix):
/// no NUL, a program path systemd runs, arguments the kernel passes, a line systemd reads.
fn check_argv(c: &mut Checker, path: &str, argv: &[String], directive: &str) {
    for (i, arg) in argv.iter().enumerate() {
        let p = || join_index(path, i);
        if escape::has_nul(arg) {
            c.value(
                codes::NUL,
                &p(),
                "a NUL character cannot be passed to a program",
            );
        } else if i == 0 {
            if let Some(problem) = escape::exec_path_problem(arg) {
                c.value(
                    codes::PROGRAM_PATH,
                    &p(),
                    format!("program path {} {problem}", show(arg)),
                );
            } else if arg.ends_with('/') && arg.len() > 1 {
                c.value(
                    codes::PROGRAM_PATH,
                    &p(),
                    format!("program path {} ends with `/`", show(arg)),
                );
            } else {
                c.abs_path(&p(), "program path", arg);
            }
        }
    }

    for (i, arg) in argv.iter().enumerate() {
        if escape::exec_string_bytes(arg) > escape::MAX_ARG_STRLEN {
            c.value(codes::ARG_TOO_LONG, &join_index(path, i), format!("argument of {} bytes: the kernel passes at most {} bytes per argument (MAX_ARG_STRLEN)", arg.len(), escape::MAX_ARG_STRLEN - 1));
        }
    }
    // Quoting at most quadruples a byte: only a line that might be too long is built to measure.
    let bound: usize = argv.iter().map(|s| 4 * s.len() + 3).sum();
    if bound + directive.len() >= limits::MAX_UNIT_LINE
        && escape::exec_line(argv).len() + directive.len() >= limits::MAX_UNIT_LINE
    {
        c.value(codes::LINE_TOO_LONG, path, format!("the command line is too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
    }
}

/// The arguments of a command at `path` and the app's environment, which its process gets
/// together, within what podc allows.
fn check_args_total(c: &mut Checker, path: &str, argv: &[String], a: &manifest::App) {
    let args_total: usize = argv
        .iter()
        .map(|s| escape::exec_string_bytes(s))
        .chain(a.environment.iter().map(|(k, v)| match v {
            manifest::EnvValue::Text(v) => escape::exec_string_bytes(k) + v.len() + 1,
            // Read at launch; the launcher holds each value to the kernel's limit.
            manifest::EnvValue::From(_) => 0,
        }))
        .sum();
    if args_total > escape::MAX_ARGS_TOTAL {
        c.value(codes::ARGS_TOTAL, path, format!("arguments and environment take {args_total} bytes together; podc allows at most {} (the kernel's limit is a quarter of the stack limit, shared with what systemd adds)", escape::MAX_ARGS_TOTAL));
    }
}

/// The app's lifecycle hooks at `path` (the app), each a command systemd runs in the app's
/// unit: `postStart` as `ExecStartPost=`, `preStop` as `ExecStop=-` (its failure ignored).
/// A hook whose command cannot be run is left out (its error is reported).
pub(super) fn resolve_hooks(c: &mut Checker, path: &str, a: &manifest::App) -> pod::Hooks {
    let Some(h) = &a.hooks else {
        return pod::Hooks::default();
    };
    let hooks_path = join_key(path, "hooks");
    let mut hook = |key: &str, argv: &Option<Vec<String>>, directive: &str| {
        let argv = argv.as_ref()?;
        let p = join_key(&hooks_path, key);
        let before = c.errors.len();
        match argv.first() {
            None => {
                c.value(
                    codes::HOOK_EMPTY,
                    &p,
                    format!("the {key} hook names no program"),
                )
                .help = Some(format!(
                    "give a command as exec takes it: `{key}: [/bin/sh, -c, \"...\"]`"
                ));
            }
            // Kubernetes looks a bare name up on the container's PATH; systemd does not look in
            // the app's root, so podc asks for the path.
            Some(program) if !program.is_empty() && !program.contains('/') => {
                c.value(
                    codes::PATH_RELATIVE,
                    &join_index(&p, 0),
                    format!("program path {} is not an absolute path", show(program)),
                )
                .help = Some(format!(
                    "a hook runs its program by path, as exec does: give its absolute path in the image (such as /bin/{program})"
                ));
            }
            Some(_) => {
                check_argv(c, &p, argv, directive);
                check_args_total(c, &p, argv, a);
            }
        }
        (c.errors.len() == before).then(|| argv.clone())
    };
    pod::Hooks {
        post_start: hook("postStart", &h.post_start, "ExecStartPost="),
        pre_stop: hook("preStop", &h.pre_stop, "ExecStop=-"),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::Format;
    use crate::pod::Hooks;
    use crate::resolve::{resolve, Overrides};

    /// An app with `hooks` (a YAML flow map's inside): its hooks, or the code, path and help
    /// of each diagnostic.
    fn hooks(hooks: &str) -> Result<Hooks, Vec<(String, String)>> {
        let yaml = format!(
            "podc: 1\nname: p\napps:\n  - name: web\n    image: /i\n    exec: [/bin/web]\n    \
             environment: {{A: b}}\n    hooks: {{{hooks}}}\n"
        );
        let parsed = crate::read(&yaml, Format::Yaml).expect("the manifest parses");
        match resolve(&parsed, "p.yaml", Overrides::default()) {
            Ok(pod) => Ok(pod.apps[0].hooks.clone()),
            Err(ds) => Err(ds
                .iter()
                .map(|d| (d.code.code.to_string(), d.path.clone().unwrap_or_default()))
                .collect()),
        }
    }

    fn argv(words: &[&str]) -> Option<Vec<String>> {
        Some(words.iter().map(|w| w.to_string()).collect())
    }

    fn err(code: &str, path: &str) -> Result<Hooks, Vec<(String, String)>> {
        Err(vec![(code.into(), format!("apps[0].hooks.{path}"))])
    }

    #[test]
    fn hooks_are_kept_as_given() {
        assert_eq!(
            hooks(r#"postStart: [/bin/sh, -c, "echo $A %n \"q\" > /run/x"], preStop: [/bin/stop]"#),
            Ok(Hooks {
                post_start: argv(&["/bin/sh", "-c", "echo $A %n \"q\" > /run/x"]),
                pre_stop: argv(&["/bin/stop"]),
            })
        );
        assert_eq!(
            hooks("preStop: [/bin/stop, '']"),
            Ok(Hooks {
                post_start: None,
                pre_stop: argv(&["/bin/stop", ""]),
            })
        );
        assert_eq!(hooks(""), Ok(Hooks::default()));
    }

    #[test]
    fn a_hook_names_a_program_by_its_absolute_path() {
        assert_eq!(hooks("postStart: []"), err("P0466", "postStart"));
        assert_eq!(hooks("preStop: [sh, -c, x]"), err("P0201", "preStop[0]"));
        assert_eq!(hooks("preStop: [./stop]"), err("P0201", "preStop[0]"));
        assert_eq!(hooks("preStop: ['']"), err("P0201", "preStop[0]"));
        assert_eq!(
            hooks("postStart: [/bin/a/../b]"),
            err("P0203", "postStart[0]")
        );
        assert_eq!(hooks("postStart: [/bin/$x]"), err("P0207", "postStart[0]"));
        assert_eq!(hooks("postStart: [/bin/]"), err("P0207", "postStart[0]"));
        let both = hooks("postStart: [], preStop: [stop]").unwrap_err();
        assert_eq!(both.len(), 2, "{both:?}");
    }

    #[test]
    fn a_hook_is_what_systemd_and_the_kernel_pass() {
        assert_eq!(
            hooks(r#"postStart: [/bin/a, "x\u0000y"]"#),
            err("P0402", "postStart[1]")
        );
        let big = "v".repeat(128 * 1024);
        assert_eq!(
            hooks(&format!("preStop: [/bin/a, {big}]")),
            err("P0403", "preStop[1]")
        );
        // Nine arguments of 120 KiB each: each fits, the line (and the total) does not.
        let args = vec!["v".repeat(120 * 1024); 9].join(", ");
        let got = hooks(&format!("postStart: [/bin/a, {args}]")).unwrap_err();
        let codes: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["P0404", "P0405"], "{got:?}");
    }
}
