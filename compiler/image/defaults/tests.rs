//! The image defaults against images made in a temporary directory.

use super::*;
use crate::systemd::argv::texts;
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};

fn config(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> ImageConfiguration {
    ImageConfigurationBuilder::default()
        .config(f(ConfigBuilder::default()).build().unwrap())
        .build()
        .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An image root with `/bin/busybox` (executable), `/usr/bin/tool` a link to it, a
/// non-executable `/bin/readme`, and an `/etc/passwd`.
fn root() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("bin/busybox"), "#!").unwrap();
    std::fs::set_permissions(
        r.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(r.join("bin/readme"), "x").unwrap();
    std::os::unix::fs::symlink("/bin/busybox", r.join("usr/bin/tool")).unwrap();
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
    )
    .unwrap();
    dir
}

const NONE: Given<'static> = Given {
    command: Command::Image,
    working_directory: false,
    user: false,
    environment: &[],
};

fn text(d: &Defaults, given: Given<'_>) -> String {
    drop_in("web", "127.0.0.1:5000/x:1", "sha256:00", d, given)
        .unwrap()
        .text
}

#[test]
fn every_default_present() {
    let r = root();
    let c = config(|b| {
        b.entrypoint(strings(&["/bin/busybox", "sh"]))
            .cmd(strings(&["-c", "echo $HOME 100%"]))
            .env(strings(&[
                "PATH=/bin",
                "GREETING=hi \"there\"",
                "A=1",
                "A=2",
            ]))
            .working_dir("/srv/app/")
            .user("1000")
    });
    let d = Defaults::read(&c, r.path(), &[]);
    let t = text(&d, NONE);
    assert!(
        t.contains("\nExecStart=\"/bin/busybox\" \"sh\" \"-c\" \"echo $$HOME 100%%\"\n"),
        "{t}"
    );
    assert!(t.contains("\nWorkingDirectory=/srv/app\n"), "{t}");
    // A bare uid gets its primary group from the image's /etc/passwd.
    assert!(t.contains("\nUser=1000\nGroup=1001\n"), "{t}");
    assert!(
        t.contains("\nEnvironment=\"A=2\"\n"),
        "the later entry wins: {t}"
    );
    assert!(!t.contains("A=1"), "{t}");
    assert!(
        t.contains("\nEnvironment=\"GREETING=hi \\\"there\\\"\"\n"),
        "{t}"
    );
    assert!(t.contains("\nEnvironment=\"PATH=/bin\"\n"), "{t}");
    let out = drop_in("web", "r", "d", &d, NONE).unwrap();
    assert_eq!(out.uid, Some((1000, 1001)));
    assert_eq!(out.gid, Some(1001));
}

#[test]
fn every_default_absent() {
    let r = root();
    let d = Defaults::read(&ImageConfiguration::default(), r.path(), &[]);
    // No command at all: an error naming what is missing, for an app without exec only.
    let e = drop_in("web", "r", "d", &d, NONE).unwrap_err();
    assert!(e.contains("no Entrypoint and no Cmd"), "{e}");
    let t = run(&d, Command::InUnit).unwrap();
    assert!(!t.contains("ExecStart="), "{t}");
    assert!(t.contains("\nWorkingDirectory=/\n"), "default /: {t}");
    assert!(!t.contains("User=") && !t.contains("Group="), "root: {t}");
    assert!(!t.contains("Environment="), "{t}");
    // Cmd alone is the command.
    let c = config(|b| b.cmd(strings(&["/bin/busybox", "true"])));
    let t = text(&Defaults::read(&c, r.path(), &[]), NONE);
    assert!(t.contains("ExecStart=\"/bin/busybox\" \"true\"\n"), "{t}");
    // Entrypoint alone too.
    let c = config(|b| b.entrypoint(strings(&["/bin/busybox"])));
    let t = text(&Defaults::read(&c, r.path(), &[]), NONE);
    assert!(t.contains("ExecStart=\"/bin/busybox\"\n"), "{t}");
}

#[test]
fn the_manifest_wins() {
    let r = root();
    let c = config(|b| {
        b.entrypoint(strings(&["/bin/busybox"]))
            .env(strings(&["KEEP=image", "MINE=image"]))
            .working_dir("/srv")
            .user("app:app")
    });
    let d = Defaults::read(&c, r.path(), &[]);
    let mine = strings(&["MINE"]);
    let t = text(
        &d,
        Given {
            command: Command::InUnit,
            working_directory: true,
            user: true,
            environment: &mine,
        },
    );
    assert!(!t.contains("ExecStart="), "{t}");
    assert!(!t.contains("WorkingDirectory="), "{t}");
    assert!(!t.contains("User=") && !t.contains("Group="), "{t}");
    assert!(!t.contains("MINE"), "{t}");
    assert!(t.contains("Environment=\"KEEP=image\"\n"), "{t}");
}

#[test]
fn user_forms() {
    let r = root();
    let u = |s: &str| user(Some(s), r.path());
    let id = IdOrName::Id;
    let name = |n: &str| IdOrName::Name(n.into());
    assert_eq!(
        u("1000:50").unwrap(),
        Some(User {
            user: id(1000),
            group: Some(id(50))
        })
    );
    assert_eq!(
        u("app").unwrap(),
        Some(User {
            user: name("app"),
            group: None
        })
    );
    assert_eq!(
        u("app:staff").unwrap(),
        Some(User {
            user: name("app"),
            group: Some(name("staff"))
        })
    );
    // A uid the image's passwd lacks runs with group 0.
    assert_eq!(
        u("4242").unwrap(),
        Some(User {
            user: id(4242),
            group: Some(id(0))
        })
    );
    assert_eq!(user(None, r.path()).unwrap(), None);
    assert_eq!(user(Some(""), r.path()).unwrap(), None);
    for bad in [
        "65535",
        "4294967295",
        "99999999999",
        "a b",
        "x:",
        ":1",
        "-x",
        "a\nUser=0",
        "%n",
    ] {
        assert!(u(bad).is_err(), "{bad:?}");
    }
    // Names go to the pod's user database through the `names` machinery.
    let c = config(|b| b.entrypoint(strings(&["/bin/busybox"])).user("app:staff"));
    let out = drop_in("web", "r", "d", &Defaults::read(&c, r.path(), &[]), NONE).unwrap();
    assert_eq!(
        (out.users, out.groups),
        (strings(&["app"]), strings(&["staff"]))
    );
    assert!(
        out.text.contains("\nUser=app\nGroup=staff\n"),
        "{}",
        out.text
    );
}

#[test]
fn a_bare_program_is_looked_up_in_the_images_path() {
    let r = root();
    let c = config(|b| {
        b.entrypoint(strings(&["tool", "x"]))
            .env(strings(&["PATH=/nope:/usr/bin"]))
    });
    let t = text(&Defaults::read(&c, r.path(), &[]), NONE);
    assert!(t.contains("ExecStart=\"/usr/bin/tool\" \"x\"\n"), "{t}");
    // The default PATH when the image has none.
    let c = config(|b| b.entrypoint(strings(&["busybox"])));
    let t = text(&Defaults::read(&c, r.path(), &[]), NONE);
    assert!(t.contains("ExecStart=\"/bin/busybox\"\n"), "{t}");
    // Not executable, missing, or a relative path with a `/`: refused.
    for bad in [
        &["readme"][..],
        &["nothere"],
        &["bin/busybox"],
        &["./busybox"],
        &[""],
    ] {
        let c = config(|b| b.entrypoint(strings(bad)));
        let d = Defaults::read(&c, r.path(), &[]);
        assert!(d.command.is_err(), "{bad:?}: {:?}", d.command);
    }
}

/// The drop-in for an app whose command is `command`, or why there is none.
fn run(d: &Defaults, command: Command<'_>) -> Result<String, String> {
    let given = Given { command, ..NONE };
    drop_in("web", "r", "d", d, given).map(|d| d.text)
}

#[test]
fn a_bare_exec_program_is_looked_up_in_the_images_path() {
    let r = root();
    let c = config(|b| {
        b.entrypoint(strings(&["/bin/busybox", "httpd"]))
            .env(strings(&["PATH=/nope:/usr/bin"]))
    });
    let d = Defaults::read(&c, r.path(), &["tool", "busybox", "readme"]);
    let exec = strings(&["tool", "-c", "echo $x > /out/x"]);
    let t = run(&d, Command::LookUp(&texts(&exec))).unwrap();
    let want = "\nExecStart=\"/usr/bin/tool\" \"-c\" \"echo $$x > /out/x\"\n";
    assert!(t.contains(want), "{t}");
    assert!(!t.contains("httpd"), "exec replaces the Entrypoint: {t}");
    // Only the image's PATH counts (busybox is in /bin, not in it); a file that is not
    // executable is not a program; a name nobody asked the image for is not found either.
    for name in ["busybox", "readme", "other"] {
        assert_eq!(
            run(&d, Command::LookUp(&texts(&strings(&[name, "x"])))).unwrap_err(),
            format!("exec's program {name:?} is not in the image's PATH (/nope:/usr/bin) inside the image")
        );
    }
    // Without an Env PATH, the default one.
    let d = Defaults::read(&ImageConfiguration::default(), r.path(), &["busybox"]);
    let exec = strings(&["busybox", "true"]);
    let t = run(&d, Command::LookUp(&texts(&exec))).unwrap();
    assert!(t.contains("\nExecStart=\"/bin/busybox\" \"true\"\n"), "{t}");
}

#[test]
fn args_replace_the_cmd_after_the_entrypoint() {
    let r = root();
    let args = strings(&["-c", "echo hi"]);
    // Entrypoint (a bare name, found) + args; the Cmd is left out.
    let c = config(|b| {
        b.entrypoint(strings(&["tool", "sh"]))
            .cmd(strings(&["the-cmd"]))
            .env(strings(&["PATH=/usr/bin"]))
    });
    let t = run(
        &Defaults::read(&c, r.path(), &[]),
        Command::Args(&texts(&args)),
    )
    .unwrap();
    let want = "\nExecStart=\"/usr/bin/tool\" \"sh\" \"-c\" \"echo hi\"\n";
    assert!(t.contains(want) && !t.contains("the-cmd"), "{t}");
    // No Entrypoint: args are the command line, as Docker runs them, args[0] a program
    // (absolute, or a bare name looked up).
    let c = config(|b| b.cmd(strings(&["/bin/busybox", "the-cmd"])));
    let d = Defaults::read(&c, r.path(), &["busybox"]);
    for (first, want) in [("busybox", "/bin/busybox"), ("/opt/x", "/opt/x")] {
        let t = run(&d, Command::Args(&texts(&strings(&[first, "echo"])))).unwrap();
        let want = format!("\nExecStart=\"{want}\" \"echo\"\n");
        assert!(t.contains(&want), "{t}");
    }
    for (bad, why) in [
        ("./busybox", "a relative path"),
        ("nothere", "not in the image's"),
    ] {
        let e = run(&d, Command::Args(&texts(&strings(&[bad])))).unwrap_err();
        let want = format!("the app's program {bad:?} is {why}");
        assert!(e.starts_with(&want), "{e}");
    }
    // An Entrypoint that cannot be used: args are passed to it, so the app cannot run.
    let c = config(|b| b.entrypoint(strings(&["nothere"])));
    let e = run(
        &Defaults::read(&c, r.path(), &[]),
        Command::Args(&texts(&args)),
    )
    .unwrap_err();
    assert!(e.contains("\"nothere\" is not in"), "{e}");
    assert!(e.contains("give the app an exec"), "{e}");
    // A variable read at launch stays for systemd to put in; never in the program.
    let with_var = [
        Arg::text("-c"),
        Arg::from_parts([Part::Text("say $".into()), Part::Var("WHO".into())]),
    ];
    let c = config(|b| b.entrypoint(strings(&["/bin/busybox", "sh"])));
    let t = run(&Defaults::read(&c, r.path(), &[]), Command::Args(&with_var)).unwrap();
    let want = "\nExecStart=\"/bin/busybox\" \"sh\" \"-c\" \"say $$${WHO}\"\n";
    assert!(t.contains(want), "{t}");
    let c = config(|b| b.cmd(strings(&["/bin/busybox"])));
    let program = [Arg::from_parts([Part::Var("SHELL".into())])];
    let e = run(&Defaults::read(&c, r.path(), &[]), Command::Args(&program)).unwrap_err();
    assert!(e.contains("program refers to a variable"), "{e}");
    // The app's words are held to the kernel's limits as the image's are.
    let c = config(|b| b.entrypoint(strings(&["/bin/busybox"])));
    let long = strings(&["x".repeat(200_000).as_str()]);
    let e = run(
        &Defaults::read(&c, r.path(), &[]),
        Command::Args(&texts(&long)),
    )
    .unwrap_err();
    assert!(e.contains("the kernel passes at most"), "{e}");
}

#[test]
fn a_link_out_of_the_root_is_not_followed() {
    // /usr/bin/escape -> /../../host-bin/prog: resolved inside the root, where it is
    // missing, though the host path beside the root exists and is executable.
    use std::os::unix::fs::PermissionsExt;
    let outer = tempfile::tempdir().unwrap();
    let r = outer.path().join("root");
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(outer.path().join("host-bin")).unwrap();
    let prog = outer.path().join("host-bin/prog");
    std::fs::write(&prog, "#!").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("../../host-bin/prog", r.join("usr/bin/escape")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("host-bin"), r.join("hostdir")).unwrap();
    let c = config(|b| {
        b.entrypoint(strings(&["escape"]))
            .env(strings(&["PATH=/usr/bin"]))
    });
    assert!(Defaults::read(&c, &r, &[]).command.is_err());
    let c = config(|b| {
        b.entrypoint(strings(&["prog"]))
            .env(strings(&["PATH=/hostdir"]))
    });
    assert!(Defaults::read(&c, &r, &[]).command.is_err());
}

#[test]
fn hostile_values_are_escaped_or_refused() {
    let r = root();
    // Escaped: what the process sees is byte for byte the config's.
    let c = config(|b| {
        b.entrypoint(strings(&[
            "/bin/busybox",
            "a\nExecStartPre=/bin/rm",
            "$x %n \\ \"q\"",
        ]))
        .env(strings(&["E=line\n[Service]\nUser=0", "P=%h $HOME \\"]))
    });
    let d = Defaults::read(&c, r.path(), &[]);
    let t = text(&d, NONE);
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("ExecStartPre") && !l.starts_with("User")),
        "{t}"
    );
    assert!(
        t.contains("\"a\\nExecStartPre=/bin/rm\" \"$$x %%n \\\\ \\\"q\\\"\""),
        "{t}"
    );
    assert!(
        t.contains("Environment=\"E=line\\n[Service]\\nUser=0\"\n"),
        "{t}"
    );
    assert!(t.contains("Environment=\"P=%%h $HOME \\\\\"\n"), "{t}");
    // Refused: what systemd or the kernel cannot carry.
    let refused = [
        config(|b| b.entrypoint(strings(&["/bin/busy\"box"]))),
        config(|b| b.entrypoint(strings(&["/bin/$x"]))),
        config(|b| b.entrypoint(strings(&["/bin/../bin/busybox"]))),
        config(|b| b.entrypoint(strings(&["/bin/busybox", "a\0b"]))),
        config(|b| b.entrypoint(strings(&["/bin/busybox", &"x".repeat(200_000)]))),
    ];
    for c in &refused {
        let e = drop_in("web", "r", "d", &Defaults::read(c, r.path(), &[]), NONE).unwrap_err();
        assert!(e.contains("the image's"), "{e}");
    }
    for env in ["A", "1A=x", "A-B=x", "A=\0", "=x"] {
        let c = config(|b| {
            b.entrypoint(strings(&["/bin/busybox"]))
                .env(strings(&[env]))
        });
        let d = Defaults::read(&c, r.path(), &[]);
        assert!(drop_in("web", "r", "d", &d, NONE).is_err(), "{env:?}");
    }
    for dir in [
        "rel",
        "/a/../b",
        "/a\nb",
        "/a\\b",
        "/a ",
        &format!("/{}", "x".repeat(256)),
    ] {
        let c = config(|b| b.entrypoint(strings(&["/bin/busybox"])).working_dir(dir));
        let d = Defaults::read(&c, r.path(), &[]);
        assert!(drop_in("web", "r", "d", &d, NONE).is_err(), "{dir:?}");
        // A value the manifest overrides does not matter.
        let ok = drop_in(
            "web",
            "r",
            "d",
            &d,
            Given {
                working_directory: true,
                ..NONE
            },
        );
        assert!(ok.is_ok(), "{dir:?}");
    }
    let c = config(|b| {
        b.entrypoint(strings(&["/bin/busybox"]))
            .user("0\n[Service]")
    });
    let d = Defaults::read(&c, r.path(), &[]);
    assert!(drop_in("web", "r", "d", &d, NONE).is_err());
    assert!(drop_in("web", "r", "d", &d, Given { user: true, ..NONE }).is_ok());
    // Many large variables together: more than podc lets an app have.
    let big: Vec<String> = (0..20)
        .map(|i| format!("V{i}={}", "x".repeat(100_000)))
        .collect();
    let c = config(|b| b.entrypoint(strings(&["/bin/busybox"])).env(big));
    let e = drop_in("web", "r", "d", &Defaults::read(&c, r.path(), &[]), NONE).unwrap_err();
    assert!(e.contains("bytes"), "{e}");
}
