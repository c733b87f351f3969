//! `podc launch`: its dry run as a snapshot, its errors, and real pods booted under
//! systemd-nspawn, checked from the host side.
//!
//! The end-to-end tests need root, systemd-nspawn (package systemd-container), a static
//! busybox (package busybox-static) for the tiny app images, and cgroup v1 controllers. Where
//! those are missing they print why and skip; with `CI` set they fail instead, because CI must
//! run them. Each pod is started the way the host wrapper unit would start it: `podc launch`
//! in a fresh cgroup of its own in every hierarchy.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use podc::launch::{self, Host};

/// One pod at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn podc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podc"))
}

#[test]
fn dry_run_shows_every_step_and_the_nspawn_command_line() {
    let out = tempfile::tempdir().unwrap();
    let example = common::root().join("examples/web.yaml");
    let o = podc()
        .args(["build", example.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let tree = out.path().join("web");
    let plan = launch::read_plan(&tree).unwrap();
    // A fixed host, as the host wrapper unit would place the launcher on a systemd host.
    let unit = "machine.slice/podc-web.service";
    let host = Host {
        cgroups: ["cpu", "cpuacct", "memory", "pids"]
            .iter()
            .map(|c| {
                let dir = if c.starts_with("cpu") {
                    "cpu,cpuacct"
                } else {
                    c
                };
                (
                    c.to_string(),
                    PathBuf::from(format!("/sys/fs/cgroup/{dir}/{unit}")),
                )
            })
            .collect(),
        systemd: true,
        notify: false,
        machine_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
        listen_fds: None,
        images: Default::default(),
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: Some(PathBuf::from("/usr/bin/podc")),
        resources: Default::default(),
        nsdelegate: false,
    };
    let launch = launch::prepare(Path::new("/var/lib/podc/web"), plan, &host).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_web", launch.to_string());
    });
    // The binary prints the same steps for the real tree.
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with(
            "listen tcp 127.0.0.1:8080 (no socket was handed over; the pod is handed this one)\n\
             unshare the mount namespace (private)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n  systemd.unit=podc-pod.target\n"),
        "{text}"
    );
}

/// A pod with a gRPC probe gets the launcher's own executable, read-only at the fixed path the
/// health script runs (`bind-podc`); one that nspawn cannot be given is refused, naming it.
#[test]
fn a_pod_with_a_grpc_probe_gets_podc_itself() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/health-grpc.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("shop");
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_podc")).unwrap();
    let bind = format!("\n  --bind-ro={}:/run/podc/probe\n", exe.display());
    assert!(text.contains(&bind), "want {bind:?} in:\n{text}");
    let host = |podc: Option<&str>| Host {
        cgroups: BTreeMap::new(),
        systemd: false,
        notify: false,
        machine_id: None,
        listen_fds: None,
        images: Default::default(),
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: podc.map(PathBuf::from),
        resources: Default::default(),
        nsdelegate: false,
    };
    let prepare = |podc| launch::prepare(&tree, launch::read_plan(&tree).unwrap(), &host(podc));
    let argv = prepare(Some("/opt/podc/bin/podc")).unwrap().argv;
    assert!(
        argv.contains(&"--bind-ro=/opt/podc/bin/podc:/run/podc/probe".to_string()),
        "{argv:?}"
    );
    // In a pod of its own user namespace, /run/podc is a tmpfs nspawn makes the pod's root's
    // (its bind of the program alone would make the directory the host's root's, where the
    // pod's systemd cannot record health).
    let mut plan = launch::read_plan(&tree).unwrap();
    plan.user_namespace = podc::manifest::UserNamespace::Private;
    let argv = launch::prepare(&tree, plan, &host(Some("/opt/podc/bin/podc")))
        .unwrap()
        .argv;
    let at = |a: &str| argv.iter().position(|x| x == a);
    assert!(
        at("--tmpfs=/run/podc:mode=0755").is_some()
            && at("--bind-ro=/opt/podc/bin/podc:/run/podc/probe").is_some(),
        "{argv:?}"
    );
    let refused = prepare(Some("/opt/po:dc")).unwrap_err().to_string();
    assert!(
        refused.contains("podc's executable /opt/po:dc has a `,`, `:` or `\\`"),
        "{refused}"
    );
    assert!(prepare(None).is_err());
}

#[test]
fn launch_refuses_what_is_not_a_podc_tree() {
    let dir = tempfile::tempdir().unwrap();
    let o = podc().arg("launch").arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a podc tree"));
    // A mounts.toml with podc's header that does not parse.
    fs::create_dir(dir.path().join("rootfs")).unwrap();
    fs::write(
        dir.path().join("mounts.toml"),
        "# Generated by podc from x.yaml.\nformat = \"one\"\n",
    )
    .unwrap();
    let o = podc().arg("launch").arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("mounts.toml"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every plan podc writes passes the launcher's checks, under every target.
#[test]
fn every_generated_plan_validates() {
    let fixtures = common::fixtures("good");
    assert!(fixtures.len() > 30);
    for path in fixtures {
        let files = common::compile(&path, None).unwrap();
        let plan = podc::tree::plan::MountPlan::from_toml(&files["mounts.toml"]).unwrap();
        if let Err(e) = plan.validate() {
            panic!("{}: {e}", common::display_name(&path));
        }
    }
}

/// A tree edited after review cannot make the launcher (root) do what the plan's rules forbid:
/// each edit is refused with exit 2 and a message naming the step, before anything is done.
#[test]
fn launch_refuses_an_edited_plan() {
    let out = tempfile::tempdir().unwrap();
    let example = common::root().join("examples/web.yaml");
    assert!(podc()
        .args(["build", example.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("web");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str, &str)] = &[
        // (what, from, to, the message says)
        ("a host directory as a volume", "volume = \"scratch\"\nmode", "volume = \"/some/host/dir\"\nmode", "step 2 (make-volume): volume \"/some/host/dir\" is not a volume name"),
        ("a target outside the tree", "target = \"/opt/stage2/nginx/rootfs\"", "target = \"/opt/../../../etc\"", "step 4 (bind-host): target \"/opt/../../../etc\""),
        ("an overlay of another app's root", "target = \"/opt/stage2/cache/rootfs\"", "target = \"/opt/stage2/nginx/rootfs\"", "step 3 (overlay): target \"/opt/stage2/nginx/rootfs\" is not \"/opt/stage2/cache/rootfs\""),
        ("nspawn options in the pod name", "pod = \"web\"", "pod = \"web --private-network\"", "pod \"web --private-network\" is not a pod name"),
        ("an unknown format", "format = 1", "format = 99", "format 99 is not one this podc reads"),
        ("a mode that is not octal", "mode = \"0750\"", "mode = \"04777x\"", "mode \"04777x\" is not 3 or 4 octal digits"),
        ("the pod's own limit made writable", "path = \"\"\ntarget = \"/sys/fs/cgroup/memory\"\nreadOnly = true", "path = \"memory.limit_in_bytes\"\ntarget = \"/sys/fs/cgroup/memory/memory.limit_in_bytes\"\nreadOnly = false", "may not be bound writable"),
        ("a cgroup outside the pod's", "path = \"system.slice/cache.service\"\n", "path = \"../../system.slice\"\n", "is not system.slice/<app>.service"),
        ("an unknown controller", "controller = \"pids\"", "controller = \"devices\"", "unknown variant `devices`, expected one of `memory`, `cpu`, `pids`"),
    ];
    for (what, from, to, says) in edits {
        assert!(plan.contains(from), "{what}: the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(o.stdout.is_empty(), "{what}: printed a plan");
    }
    // The pod's root as a symbolic link to somewhere else.
    fs::write(tree.join("mounts.toml"), &plan).unwrap();
    fs::rename(tree.join("rootfs"), out.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(out.path().join("elsewhere"), tree.join("rootfs")).unwrap();
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("rootfs: a mount point is reached through this symbolic link"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An edited plan cannot make an image step's command other than the build's kind: `exec`
/// there is a bare name to look up, and at most one of exec given, `exec` and `args`.
#[test]
fn launch_refuses_an_edited_image_command() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/image-reference-command.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("command");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "exec = [\"sh\"",
            "exec = [\"../sh\"",
            "step 2 (image): exec program \"../sh\" is not a bare name",
        ),
        (
            "exec = [\"sh\"",
            "exec = [\"/bin/sh\"",
            "step 2 (image): exec program \"/bin/sh\" is not a bare name",
        ),
        (
            "given = []\nenvironment = []\nexec",
            "given = [\"exec\"]\nenvironment = []\nexec",
            "step 2 (image): more than one of exec given, exec and args",
        ),
        (
            "environment = []\nargs",
            "environment = []\nexec = [\"sh\"]\nargs",
            "step 3 (image): more than one of exec given, exec and args",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}:\n{plan}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// An edited plan cannot put a variable where systemd does not substitute one (the program),
/// nor name one that is not a variable name.
#[test]
fn launch_refuses_an_edited_expand() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/exec-expand.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("expand");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "exec = [\"sh\"",
            "exec = [\"$(LEVEL)\"",
            "step 3 (image): exec program \"$(LEVEL)\" refers to a variable",
        ),
        (
            "expand = [\"LEVEL\"]",
            "expand = [\"LEVEL=x\"]",
            "step 3 (image): expand \"LEVEL=x\" is not a variable name",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}:\n{plan}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// A systemd host with no cgroups to find, the machine id and paths the dry-run snapshots show.
fn dry_host() -> Host {
    Host {
        cgroups: BTreeMap::new(),
        systemd: true,
        notify: false,
        machine_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
        listen_fds: None,
        images: Default::default(),
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: Some(PathBuf::from("/usr/bin/podc")),
        resources: Default::default(),
        nsdelegate: false,
    }
}

/// Persistent and memory volumes in the dry run: the persistent directory below the host's
/// volumes root (made if missing, never through a link), each memory volume a sized tmpfs on
/// the volumes tmpfs, and the binds from both.
#[test]
fn dry_run_shows_persistent_and_memory_volumes() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volumes-persistent-memory.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = launch::read_plan(&out.path().join("db")).unwrap();
    let host = dry_host();
    let launch = launch::prepare(Path::new("/var/lib/podc/db"), plan, &host).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_volumes", launch.to_string());
    });
    // The binary takes the volumes root from PODC_VOLUMES_DIR.
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(out.path().join("db"))
        .env("PODC_VOLUMES_DIR", "/srv/podc-volumes")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("persistent volume /srv/podc-volumes/db/pgdata: mkdir mode 0700 owner 999:999 if missing"),
        "{text}"
    );
}

/// A projected volume in the dry run: a fresh directory on the volumes tmpfs, each source's
/// files copied into it (never shown), bound read-only; an edited plan cannot copy from a
/// relative directory, into a volume no step made, or for no app.
#[test]
fn dry_run_shows_projected_volumes_and_refuses_edits() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volume-projected.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("projected");
    let plan = launch::read_plan(&tree).unwrap();
    let host = dry_host();
    let launch = launch::prepare(Path::new("/var/lib/podc/projected"), plan, &host).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_projected", launch.to_string());
    });
    let text = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "dir = \"/etc/podc/secrets/user\"",
            "dir = \"etc/podc/secrets/user\"",
            "(project): dir \"etc/podc/secrets/user\" is not an absolute path in normal form",
        ),
        (
            "do = \"project\"\nvolume = \"all-in-one\"",
            "do = \"project\"\nvolume = \"elsewhere\"",
            "(project): volume \"elsewhere\" is not made by an earlier step",
        ),
        (
            "apps = [\"web\"]\n",
            "apps = []\n",
            "(project): apps lists no app",
        ),
    ];
    for (from, to, says) in edits {
        assert!(text.contains(from), "the plan has no {from:?}:\n{text}");
        fs::write(tree.join("mounts.toml"), text.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// An edited plan cannot turn the new volume steps against the host: a persistent volume's
/// name is a volume name (its directory is the launcher's to choose), a memory volume has a
/// size (a tmpfs of size 0 has none), and no volume is made twice.
#[test]
fn launch_refuses_an_edited_volume_plan() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volumes-persistent-memory.yaml");
    assert!(podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("db");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str, &str)] = &[
        (
            "a persistent volume out of its pod's directory",
            "volume = \"pgdata\"\nmode",
            "volume = \"../../../etc\"\nmode",
            "step 2 (persistent-volume): volume \"../../../etc\" is not a volume name",
        ),
        (
            "a memory volume without a limit",
            "size = 67108864",
            "size = 0",
            "step 4 (memory-volume): size 0 is not 1 to",
        ),
        (
            "a volume made twice",
            "volume = \"archive\"\nmode",
            "volume = \"pgdata\"\nmode",
            "step 3 (persistent-volume): volume \"pgdata\" is made by an earlier step already",
        ),
        (
            "a memory volume's mode that is not octal",
            "mode = \"1777\"",
            "mode = \"17778\"",
            "step 4 (memory-volume): mode \"17778\" is not 3 or 4 octal digits",
        ),
        (
            "a bind of a volume never made",
            "volume = \"sort\"\nsize",
            "volume = \"other\"\nsize",
            "(bind-volume): volume \"sort\" is not made by an earlier step",
        ),
    ];
    for (what, from, to, says) in edits {
        assert!(plan.contains(from), "{what}: the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(o.stdout.is_empty(), "{what}: printed a plan");
    }
}

/// `podc launch --check` refuses a persistent volume that is a symbolic link (or a file), the
/// way the launch would, and changes nothing.
#[test]
fn launch_check_refuses_a_linked_persistent_volume() {
    if !common::tool("systemd-nspawn", "systemd-container") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_image(&w.join("images/app"));
    fs::write(
        w.join("pod.yaml"),
        format!(
            "podc: 1\nname: linked\nvolumes:\n  - {{name: data, kind: persistent}}\napps:\n  - name: app\n    image: \"{}/images/app\"\n    exec: [/bin/true]\n    mounts: [{{volume: data, path: /data}}]\n",
            w.display()
        ),
    )
    .unwrap();
    assert!(podc()
        .current_dir(w)
        .args(["build", "pod.yaml", "-o", "b"])
        .status()
        .unwrap()
        .success());
    let volumes = w.join("volumes");
    fs::create_dir_all(volumes.join("linked")).unwrap();
    std::os::unix::fs::symlink("/etc", volumes.join("linked/data")).unwrap();
    let o = podc()
        .args(["launch", "--check"])
        .arg(w.join("b/linked"))
        .env("PODC_VOLUMES_DIR", &volumes)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "linked/data: is a symbolic link; podc follows none where persistent volumes live"
        ),
        "{err}"
    );
    assert_eq!(
        fs::read_link(volumes.join("linked/data")).unwrap(),
        Path::new("/etc")
    );
}

/// #26: for a pod of its own user namespace, `podc launch --check` tries an idmapped mount of
/// every source the launch would idmap, and names one whose file system does not allow it (a
/// ramfs here) before anything is done; on ext4 the host can launch it.
#[test]
fn launch_check_tries_the_idmapped_mounts_of_a_user_namespace_pod() {
    if !common::tool("systemd-nspawn", "systemd-container") {
        return;
    }
    if !common::as_root() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ram = w.join("ram");
    fs::create_dir(&ram).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&ram)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(ram.clone());
    let check = |images: &Path| {
        make_image(&images.join("app"));
        fs::write(
            w.join("pod.yaml"),
            format!(
                "podc: 1\nname: ids\nuserNamespace: private\napps:\n  - name: app\n    image: \"{}/app\"\n    exec: [/bin/true]\n",
                images.display()
            ),
        )
        .unwrap();
        let _ = fs::remove_dir_all(w.join("b"));
        assert!(podc()
            .current_dir(w)
            .args(["build", "pod.yaml", "-o", "b"])
            .status()
            .unwrap()
            .success());
        let o = podc()
            .args(["launch", "--check"])
            .arg(w.join("b/ids"))
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = check(&ram);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "userNamespace: private needs {}: an idmapped mount of {}",
            ram.join("app").display(),
            ram.join("app").display()
        )),
        "{err}"
    );
    let (code, err) = check(&w.join("disk"));
    assert_eq!(code, Some(0), "{err}");
}

/// `podc launch --check` looks at the host as the launch would and says every problem: a
/// missing volume source, a user name the app's image does not have, a mount point reached
/// through a symbolic link in an image. Fixed, it says the host can launch the pod.
#[test]
fn launch_check_finds_what_the_launch_would() {
    if !common::tool("systemd-nspawn", "systemd-container") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let image = w.join("images/app");
    make_image(&image);
    fs::write(image.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("/etc", image.join("var/www")).unwrap();
    let manifest = format!(
        r#"podc: 1
name: checked
target: {{cgroup: v2, systemd: 252}}
volumes:
  - {{name: data, kind: host, source: "{w}/missing"}}
apps:
  - name: app
    image: "{w}/images/app"
    exec: ["/bin/true"]
    user: appuser
    mounts: [{{volume: data, path: /var/www/data}}]
"#,
        w = w.display()
    );
    fs::write(w.join("pod.yaml"), &manifest).unwrap();
    let build = |m: &str| {
        fs::write(w.join("pod.yaml"), m).unwrap();
        assert!(podc()
            .current_dir(w)
            .args(["build", "pod.yaml", "-o", "b"])
            .status()
            .unwrap()
            .success());
        podc()
            .args(["launch", "--check"])
            .arg(w.join("b/checked"))
            .output()
            .unwrap()
    };
    let o = build(&manifest);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for says in [
        "/missing: does not exist",
        "app app: user \"appuser\" is not in its image's",
        "images/app/var/www: a mount point is reached through this symbolic link",
    ] {
        assert!(err.contains(says), "want {says:?} in:\n{err}");
    }
    // The fixes: the source exists, the image has the user, the mount point is a directory.
    fs::create_dir(w.join("missing")).unwrap();
    fs::write(
        image.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nappuser:x:1500:1500::/:/bin/sh\n",
    )
    .unwrap();
    let fixed = manifest.replace("/var/www/data", "/srv/data");
    let o = build(&fixed);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("this host can launch it"));
}

/// #28, limits silently lost: a tree is held to this host's cgroup layout and systemd before
/// anything is done. On a hybrid (or legacy v1) host, a cgroup v2 tree whose apps have limits
/// is refused by `launch --check` and by `launch` (booted, the pod's systemd set none of them
/// and said nothing), naming the target, the host and the build that fits; without app limits
/// it is a warning; a v1 tree passes. On a unified host the same holds the other way round (a v1
/// tree is refused even without limits). A tree for a newer systemd than the host's is refused.
#[test]
fn launch_holds_the_tree_to_this_hosts_cgroups_and_systemd() {
    use podc::launch::target_check::{HostTarget, Layout};
    let host = HostTarget::detect();
    let (Some(layout), Some(systemd)) = (host.layout, host.systemd) else {
        common::skip(&format!(
            "cannot tell this host's cgroup layout or systemd: {host:?}"
        ));
        return;
    };
    let (fits, other) = match layout {
        Layout::Unified => ("v2", "v1"),
        Layout::Hybrid | Layout::Legacy => ("v1", "v2"),
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let manifest = "podc: 1\nname: held\napps:\n  - name: web\n    image: /srv/images/web\n    exec: [/bin/true]\n    isolators: {memory: 64Mi, tasks: 32}\n";
    let build = |manifest: &str, args: &[&str]| {
        fs::write(w.join("pod.yaml"), manifest).unwrap();
        let o = podc()
            .current_dir(w)
            .args(["build", "pod.yaml", "-o", "b"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        w.join("b/held")
    };
    let run = |tree: &Path, check: bool| {
        let mut cmd = podc();
        cmd.arg("launch");
        if check {
            cmd.arg("--check");
        }
        let o = cmd.arg(tree).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let says = "the tree is built for";
    let refused = |err: &str| {
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains(says))
    };
    // The other layout, with app limits: refused by both, before anything is done.
    let tree = build(
        manifest,
        &["--cgroup", other, "--systemd", &systemd.to_string()],
    );
    let fix = format!("`podc build --cgroup {fits} --systemd {systemd} pod.yaml`");
    for check in [true, false] {
        let (code, err) = run(&tree, check);
        assert_eq!(code, Some(2), "--check {check}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error: ") && l.contains(says))
            .unwrap_or_else(|| panic!("--check {check}: no refusal in {err}"));
        assert!(
            line.starts_with(&format!(
                "error: {}: the tree is built for cgroup {other}, systemd {systemd}, but this host has ",
                tree.display()
            )),
            "{line}"
        );
        assert!(line.ends_with(&fix), "{line}");
        if other == "v2" {
            assert!(
                line.contains(
                    "would not apply the limits of web.service (MemoryMax=67108864, TasksMax=32)"
                ),
                "{line}"
            );
        }
        assert!(!err.contains("this host can launch it"), "{err}");
    }
    // Without app limits: a v2 tree on a v1 host loses nothing and is a warning.
    let bare = manifest.replace("    isolators: {memory: 64Mi, tasks: 32}\n", "");
    let tree = build(&bare, &["--cgroup", other]);
    let (_, err) = run(&tree, true);
    if other == "v2" {
        assert!(
            err.contains("warning: ") && err.contains("its apps set no limit, so none is lost"),
            "{err}"
        );
        assert!(!refused(&err), "{err}");
    } else {
        assert!(refused(&err), "a v1 plan cannot boot on cgroup2: {err}");
    }
    // The host's own layout passes (other problems, such as the missing image, may remain).
    let tree = build(
        manifest,
        &["--cgroup", fits, "--systemd", &systemd.to_string()],
    );
    let (_, err) = run(&tree, true);
    assert!(!refused(&err), "{err}");
    assert!(!err.contains("warning"), "{err}");
    // A newer systemd than this host's: refused, naming the host's.
    let newer = systemd + 1;
    if fits == "v2" || newer < 258 {
        let tree = build(
            manifest,
            &["--cgroup", fits, "--systemd", &newer.to_string()],
        );
        let (code, err) = run(&tree, true);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!("the pod boots this host's systemd {systemd}, which ignores every setting newer than itself")),
            "{err}"
        );
        assert!(err.contains(&fix), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// End-to-end harness.

/// Why end-to-end tests cannot run here, if they cannot.
fn e2e_missing() -> Option<String> {
    if podc::sys::effective_uid() != 0 {
        return Some("not root".into());
    }
    if Command::new("systemd-nspawn")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("systemd-nspawn is missing (package systemd-container)".into());
    }
    if !busybox().exists() {
        return Some("no static busybox at /bin/busybox (package busybox-static)".into());
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Some("no cgroup v1 memory controller".into());
    }
    None
}

/// The turn of one end-to-end test (pods run one at a time: they share the machine's cgroups
/// and two cores), or `None` where they cannot run: then the test is recorded as skipped, with
/// why, and fails in CI.
#[track_caller]
fn e2e() -> Option<std::sync::MutexGuard<'static, ()>> {
    match e2e_missing() {
        None => Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner())),
        Some(why) => {
            common::skip(&format!("end-to-end: {why}"));
            None
        }
    }
}

fn busybox() -> PathBuf {
    PathBuf::from("/bin/busybox")
}

/// Whether the suite runs as if every pod had the host's ids (`PODC_TEST_USERNS=host`): the
/// opt-out from podc's default (a user namespace of the pod's own). This only changes the
/// manifests the tests write.
fn test_host_ids() -> bool {
    std::env::var_os("PODC_TEST_USERNS").is_some_and(|v| v == "host")
}

/// `manifest` as the suite's mode has it: under `PODC_TEST_USERNS=host`, a podc manifest
/// that does not choose gets `userNamespace: host`, and a Kubernetes pod spec
/// (`containers:`) that does not choose gets `hostUsers: true`; otherwise unchanged.
fn in_test_userns(manifest: &str) -> String {
    if !test_host_ids() || manifest.contains("userNamespace:") || manifest.contains("hostUsers:") {
        return manifest.to_string();
    }
    if let Some(rest) = manifest.strip_prefix("podc: 1\n") {
        return format!("podc: 1\nuserNamespace: host\n{rest}");
    }
    let mut out = String::new();
    for line in manifest.split_inclusive('\n') {
        if line.trim_end().trim_start() == "containers:" {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str("hostUsers: true\n");
        }
        out.push_str(line);
    }
    out
}

/// The host id of id `id` of `pod`: itself, or in a pod of its own user namespace, its
/// range's (the base the launcher recorded in the tree).
fn host_id(pod: &Pod, id: u32) -> u32 {
    let base = fs::read_to_string(pod.tree.join("state/userns")).ok();
    base.and_then(|t| t.trim().parse::<u32>().ok()).unwrap_or(0) + id
}

/// Whether pods built from `manifest` (as [`in_test_userns`] gives it) run in a user namespace
/// of their own.
fn own_users(manifest: &str) -> bool {
    let m = in_test_userns(manifest);
    !(m.contains("userNamespace: host") || m.contains("hostUsers: true"))
}

/// A tiny image: a static busybox with its applets, and the directories systemd mounts on.
fn make_image(dir: &Path) {
    for d in [
        "bin", "dev", "etc", "proc", "root", "run", "sys", "tmp", "usr", "var", "work",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(busybox(), dir.join("bin/busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
}

/// Fresh cgroups for one launcher, in every hierarchy this process is in: what the host
/// wrapper unit (`Delegate=yes`) gives podc launch.
struct Cgroups {
    dirs: BTreeMap<String, PathBuf>,
}

impl Cgroups {
    fn new(name: &str) -> Cgroups {
        let mut dirs = BTreeMap::new();
        for line in fs::read_to_string("/proc/self/cgroup").unwrap().lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrl, path) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let hierarchy = match ctrl {
                "" => "unified".to_string(),
                c if c.starts_with("name=") => c.trim_start_matches("name=").to_string(),
                c => c.to_string(),
            };
            // cpuset would need its cpus and mems set first; the rest podc does not use.
            if ![
                "memory",
                "cpu",
                "cpuacct",
                "cpu,cpuacct",
                "pids",
                "systemd",
                "unified",
            ]
            .contains(&hierarchy.as_str())
            {
                continue;
            }
            let dir = Path::new("/sys/fs/cgroup")
                .join(&hierarchy)
                .join(path.trim_start_matches('/'))
                .join(name);
            if dir.parent().unwrap().is_dir() {
                fs::create_dir_all(&dir).unwrap();
                dirs.insert(hierarchy, dir);
            }
        }
        Cgroups { dirs }
    }

    fn dir(&self, hierarchy: &str) -> &Path {
        &self.dirs[hierarchy]
    }

    /// Every process left anywhere below these cgroups.
    fn processes(&self) -> Vec<u32> {
        fn walk(dir: &Path, out: &mut Vec<u32>) {
            if let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(t.lines().filter_map(|l| l.parse::<u32>().ok()));
            }
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for d in self.dirs.values() {
            walk(d, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// Kills whatever is left (the container's own init survives a killed nspawn) and removes
    /// the cgroups, deepest first, as systemd does when the host unit stops.
    fn remove(&self) {
        for _ in 0..50 {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            for p in left {
                let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        fn rmdirs(dir: &Path) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        rmdirs(&e.path());
                    }
                }
            }
            let _ = fs::remove_dir(dir);
        }
        for d in self.dirs.values() {
            rmdirs(d);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A pod built from a manifest and started by `podc launch` in its own cgroups.
struct Pod {
    work: tempfile::TempDir,
    tree: PathBuf,
    cgroups: Cgroups,
    child: Option<Child>,
    started: Instant,
    /// A command `podc launch` runs under (as `systemd-socket-activate -l ADDR`), if any.
    wrapper: Vec<String>,
    /// Environment for `podc launch` (`PODC_IMAGE_STORE`).
    env: Vec<(String, PathBuf)>,
}

impl Pod {
    /// Builds `manifest` (with `@WORK@` replaced by the work directory) and launches it.
    fn start(name: &str, manifest: &str, images: &[&str]) -> Pod {
        Pod::start_with(name, manifest, images, |_| {})
    }

    /// As `start`, with `prepare` run on the work directory once the images are made.
    fn start_with(name: &str, manifest: &str, images: &[&str], prepare: impl FnOnce(&Path)) -> Pod {
        let mut pod = Pod::build(name, manifest, images, prepare);
        pod.launch();
        pod
    }

    /// Makes the images and builds the tree; launches nothing.
    fn build(name: &str, manifest: &str, images: &[&str], prepare: impl FnOnce(&Path)) -> Pod {
        Pod::build_with(name, manifest, images, prepare, &[])
    }

    /// As `build`, with `args` after `podc build pod.yaml -o build`.
    fn build_with(
        name: &str,
        manifest: &str,
        images: &[&str],
        prepare: impl FnOnce(&Path),
        args: &[&str],
    ) -> Pod {
        let work = tempfile::Builder::new()
            .prefix("podc-e2e-")
            .tempdir()
            .unwrap();
        for d in ["out", "shared", "ro"] {
            let p = work.path().join(d);
            fs::create_dir(&p).unwrap();
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        }
        for image in images {
            make_image(&work.path().join("images").join(image));
        }
        prepare(work.path());
        let manifest = in_test_userns(&manifest.replace("@WORK@", work.path().to_str().unwrap()));
        fs::write(work.path().join("pod.yaml"), manifest).unwrap();
        let o = podc()
            .current_dir(work.path())
            .args(["build", "pod.yaml", "-o", "build"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let tree = work.path().join("build").join(name);
        let cgroups = Cgroups::new(&format!("podc-e2e-{name}-{}", std::process::id()));
        // A pod of its own user namespace takes its range from a registry of the test's, not
        // the host's /var/lib/podc/userns (a test's tree is gone when it ends).
        let env = vec![("PODC_USERNS_DIR".to_string(), work.path().join("userns"))];
        Pod {
            work,
            tree,
            cgroups,
            child: None,
            started: Instant::now(),
            wrapper: Vec::new(),
            env,
        }
    }

    /// Starts `podc launch` of the tree, in the pod's cgroups.
    fn launch(&mut self) {
        // Join the cgroups, then become podc launch, which becomes systemd-nspawn: one pid.
        let joins: Vec<String> = self
            .cgroups
            .dirs
            .values()
            .map(|d| format!("echo $$ > '{}/cgroup.procs'", d.display()))
            .collect();
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(self.work.path().join("launch.log"))
            .unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{} && exec \"$@\"", joins.join(" && ")))
            .arg("sh")
            .args(&self.wrapper)
            // A wrapper (systemd-socket-activate) passes on no environment of its own: `env`
            // gives podc launch the pod's (PODC_USERNS_DIR above all, or the range is taken
            // from the host's registry for a tree that goes with the test).
            .args(self.wrapper.first().map(|_| "env"))
            .args(
                self.env
                    .iter()
                    .filter(|_| !self.wrapper.is_empty())
                    .map(|(k, v)| format!("{k}={}", v.display())),
            )
            .arg(env!("CARGO_BIN_EXE_podc"))
            .arg("launch")
            .arg(&self.tree)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.started = Instant::now();
    }

    /// Stops the pod as `systemctl stop` of its host unit does: SIGTERM to nspawn.
    fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id();
        assert!(Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    }

    fn out(&self, file: &str) -> PathBuf {
        self.work.path().join("out").join(file)
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.out(file)).unwrap_or_else(|e| panic!("{file}: {e}\n{}", self.log()))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.work.path().join("launch.log")).unwrap_or_default()
    }

    /// Waits until every file exists; returns how long that took since the launch.
    fn wait_for(&mut self, files: &[&str]) -> Duration {
        let out: Vec<PathBuf> = files.iter().map(|f| self.out(f)).collect();
        let what = format!("{files:?}");
        self.wait_until(&what, Duration::from_millis(50), || {
            out.iter().all(|p| p.exists())
        });
        self.started.elapsed()
    }

    /// Polls `done` every `poll` until it holds, for at most 60 s; panics, with the pod's log,
    /// if the pod ends first or time runs out (`what` names what was awaited).
    fn wait_until(&mut self, what: &str, poll: Duration, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the pod ended ({status}) before {what}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(poll);
        }
    }

    /// The container's init: the child of nspawn (the launcher's pid).
    fn leader(&self) -> u32 {
        let pid = self.child.as_ref().unwrap().id();
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("nspawn has a child")
            .parse()
            .unwrap()
    }

    /// Waits for the launcher to exit; returns its exit code and the whole cycle's time.
    fn wait(&mut self) -> (i32, Duration) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return (status.code().unwrap_or(-1), self.started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                self.cgroups.remove();
                panic!("the pod did not stop within 60 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Nothing is left: no process in the pod's cgroups, no mount of the tree, and the
    /// cgroups can be removed.
    fn assert_nothing_left(&self) {
        let left = self.cgroups.processes();
        assert!(
            left.is_empty(),
            "processes left in the pod's cgroups: {left:?}"
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let tree = self.tree.to_str().unwrap();
        assert!(
            !mounts.contains(tree),
            "mounts of the tree are left:\n{mounts}"
        );
        self.cgroups.remove();
        for d in self.cgroups.dirs.values() {
            assert!(!d.exists(), "{} could not be removed", d.display());
        }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn knob(cg: &Path, app: &str, file: &str) -> String {
    let p = cg
        .join("system.slice")
        .join(format!("{app}.service"))
        .join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Arguments that systemd would mangle without podc's escaping.
const HOSTILE: &[&str] = &[
    "a b",
    "%h %n %%",
    "$HOME ${HOME} $$",
    "\"double\" 'single'",
    "back\\slash\\",
    ";",
    "",
    "-dash",
    "tab\there\nnewline",
    "héllo ✓ 日本",
];

fn yaml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    quoted.join(", ")
}

/// Per-app limits land in the host's cgroup v1 files, the plan's boundary holds, argv and
/// environment arrive byte-exact with the manifest's identity, volumes behave, and the pod
/// stops by itself with status 0, leaving nothing behind.
#[test]
fn e2e_limits_identity_argv_volumes() {
    let Some(_turn) = e2e() else { return };
    let alpha = r#"id -u > /out/alpha.uid; id -g > /out/alpha.gid; pwd > /out/alpha.pwd
i=0; for a in "$@"; do i=$((i+1)); printf %s "$a" > /out/alpha.arg$i; done; echo $i > /out/alpha.argc
printf %s "$HOSTILE" > /out/alpha.env
ls -A /scratch | wc -l > /out/alpha.scratch
if touch /ro/x 2>/dev/null; then echo writable; else echo refused; fi > /out/alpha.ro
echo from-alpha > /shared/note
touch /out/alpha.ready
while [ ! -e /out/stop ]; do sleep 0.1; done"#;
    let beta = r#"while [ ! -e /shared/note ]; do sleep 0.1; done; cat /shared/note > /out/beta.shared
touch /out/beta.ready
while [ ! -e /out/stop ]; do sleep 0.1; done"#;
    let manifest = format!(
        r#"podc: 1
name: e2e-limits
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: shared, kind: host, source: "@WORK@/shared"}}
  - {{name: ro, kind: host, source: "@WORK@/ro", readOnly: true}}
  - {{name: scratch, kind: empty, mode: "0770", uid: 1234, gid: 1234}}
apps:
  - name: alpha
    image: "@WORK@/images/alpha"
    exec: ["/bin/sh", "-c", {alpha}, "sh", {args}]
    user: 1234
    group: 1234
    workingDirectory: /work
    environment: {{HOSTILE: {env}}}
    isolators: {{memory: 64Mi, cpu: 500m, cpuShares: 512, tasks: 32}}
    mounts:
      - {{volume: out, path: /out}}
      - {{volume: shared, path: /shared}}
      - {{volume: ro, path: /ro}}
      - {{volume: scratch, path: /scratch}}
  - name: beta
    image: "@WORK@/images/beta"
    exec: ["/bin/sh", "-c", {beta}]
    user: 4321
    isolators: {{memory: 32Mi, cpu: 250m, cpuShares: 1024, tasks: 16}}
    mounts:
      - {{volume: out, path: /out}}
      - {{volume: shared, path: /shared}}
"#,
        alpha = serde_json::to_string(alpha).unwrap(),
        beta = serde_json::to_string(beta).unwrap(),
        args = yaml_list(HOSTILE),
        env = serde_json::to_string("%h $HOME ${X} \"q\" back\\slash\nline ✓").unwrap(),
    );
    let mut pod = Pod::start("e2e-limits", &manifest, &["alpha", "beta"]);
    let up = pod.wait_for(&["alpha.ready", "beta.ready"]);

    // 1. Per-app limits in the host's cgroup files, while the apps run.
    let mem = pod.cgroups.dir("memory").to_path_buf();
    let cpu = pod.cgroups.dir("cpu").to_path_buf();
    let pids = pod.cgroups.dir("pids").to_path_buf();
    assert_eq!(knob(&mem, "alpha", "memory.limit_in_bytes"), "67108864");
    assert_eq!(knob(&mem, "beta", "memory.limit_in_bytes"), "33554432");
    assert_eq!(knob(&cpu, "alpha", "cpu.cfs_period_us"), "100000");
    assert_eq!(knob(&cpu, "alpha", "cpu.cfs_quota_us"), "50000");
    assert_eq!(knob(&cpu, "beta", "cpu.cfs_quota_us"), "25000");
    assert_eq!(knob(&cpu, "alpha", "cpu.shares"), "512");
    assert_eq!(knob(&cpu, "beta", "cpu.shares"), "1024");
    assert_eq!(knob(&pids, "alpha", "pids.max"), "32");
    assert_eq!(knob(&pids, "beta", "pids.max"), "16");
    // The apps really are in those cgroups.
    assert!(!knob(&mem, "alpha", "cgroup.procs").is_empty());

    // 3. The plan's boundary, seen from inside the container's mount namespace.
    let leader = pod.leader().to_string();
    let write_in_pod = |path: &str, value: &str| {
        Command::new("nsenter")
            .args([
                "--target",
                &leader,
                "--mount",
                "--root",
                "--",
                "/usr/bin/sh",
                "-c",
            ])
            .arg(format!("echo {value} > {path}"))
            .output()
            .unwrap()
            .status
            .success()
    };
    let base = "/sys/fs/cgroup/memory";
    assert!(
        write_in_pod(
            &format!("{base}/system.slice/alpha.service/memory.limit_in_bytes"),
            "67108864"
        ),
        "a planned knob must be writable"
    );
    assert!(!write_in_pod(
        &format!("{base}/system.slice/alpha.service/memory.soft_limit_in_bytes"),
        "1048576"
    ));
    assert!(!write_in_pod(
        &format!("{base}/memory.limit_in_bytes"),
        "1048576"
    ));
    assert!(!write_in_pod(
        "/sys/fs/cgroup/cpu/system.slice/alpha.service/cpu.rt_runtime_us",
        "0"
    ));
    assert_eq!(
        knob(&mem, "alpha", "memory.soft_limit_in_bytes"),
        fs::read_to_string(mem.join("memory.soft_limit_in_bytes"))
            .unwrap()
            .trim()
    );

    // 4. argv and environment byte-exact; the manifest's uid, gid and working directory.
    assert_eq!(pod.read("alpha.argc").trim(), HOSTILE.len().to_string());
    for (i, want) in HOSTILE.iter().enumerate() {
        assert_eq!(
            &pod.read(&format!("alpha.arg{}", i + 1)),
            want,
            "argument {}",
            i + 1
        );
    }
    assert_eq!(
        pod.read("alpha.env"),
        "%h $HOME ${X} \"q\" back\\slash\nline ✓"
    );
    assert_eq!(pod.read("alpha.uid").trim(), "1234");
    assert_eq!(pod.read("alpha.gid").trim(), "1234");
    assert_eq!(pod.read("alpha.pwd").trim(), "/work");

    // 5. Volumes: shared between apps, read-only refuses writes, empty starts empty.
    assert_eq!(pod.read("beta.shared").trim(), "from-alpha");
    assert_eq!(pod.read("alpha.ro").trim(), "refused");
    assert!(!pod.work.path().join("ro/x").exists());
    assert_eq!(pod.read("alpha.scratch").trim(), "0");

    // 6. The pod stops by itself once the apps are done, with status 0, leaving nothing.
    fs::write(pod.out("stop"), "").unwrap();
    let (code, cycle) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    eprintln!("e2e-limits: apps up after {up:?}, whole cycle {cycle:?}");
    assert!(cycle < Duration::from_secs(30), "the cycle took {cycle:?}");
    pod.assert_nothing_left();
}

/// An app that allocates past its memory limit is OOM-killed while its sibling lives on, and
/// the pod's exit status is the killed app's (128 + SIGKILL): dd's 100 MB buffer under 32 MiB.
#[test]
fn e2e_oom_kill_and_exit_status() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-oom
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: hog
    image: "@WORK@/images/hog"
    exec: ["/bin/sh", "-c", "touch /out/hog.started; exec dd if=/dev/zero of=/dev/null bs=100M count=1"]
    isolators: {memory: 32Mi}
    mounts: [{volume: out, path: /out}]
  - name: sibling
    image: "@WORK@/images/sibling"
    exec: ["/bin/sh", "-c", "while [ ! -e /out/hog.started ]; do sleep 0.1; done; sleep 2; touch /out/sibling.alive"]
    isolators: {memory: 64Mi}
    mounts: [{volume: out, path: /out}]
"#;
    let mut pod = Pod::start("e2e-oom", manifest, &["hog", "sibling"]);
    let (code, cycle) = pod.wait();
    assert!(pod.out("hog.started").exists(), "{}", pod.log());
    assert!(
        pod.out("sibling.alive").exists(),
        "the sibling did not live on"
    );
    assert_eq!(code, 137, "{}", pod.log());
    eprintln!("e2e-oom: whole cycle {cycle:?}");
    pod.assert_nothing_left();
}

/// A failing app gives its own exit status; a cgroup v2 target without app limits boots and
/// runs its app with the right argv on this host too, with a warning that its target is not
/// this host's (one with app limits is refused: this host's cgroup2 has no controller to set
/// them in, see `launch_holds_the_tree_to_this_hosts_cgroups_and_systemd`; pod-level limits are
/// the host unit's, whose systemd sets them on either layout, and the launcher run by hand says
/// that it does not set them).
#[test]
fn e2e_failure_status_and_cgroup_v2_target() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-v2
target: {cgroup: v2, systemd: 252}
isolators: {memory: 256Mi}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: ok
    image: "@WORK@/images/ok"
    exec: ["/bin/sh", "-c", "printf %s \"$1|$2\" > /out/ok.argv", "sh", "a b", "%n$$"]
    mounts: [{volume: out, path: /out}]
  - name: fails
    image: "@WORK@/images/fails"
    exec: ["/bin/sh", "-c", "sleep 1; exit 3"]
    mounts: [{volume: out, path: /out}]
"#;
    let mut pod = Pod::start("e2e-v2", manifest, &["ok", "fails"]);
    let (code, cycle) = pod.wait();
    assert_eq!(pod.read("ok.argv"), "a b|%n$$");
    assert_eq!(code, 3, "{}", pod.log());
    assert!(
        pod.log().contains("its apps set no limit, so none is lost"),
        "{}",
        pod.log()
    );
    // Run by hand, the pod-level limits are the host unit's to set, and the launcher says so.
    assert!(
        pod.log().contains("the pod-level limits of podc-e2e-v2.service (MemoryMax=268435456) are set by that host unit only"),
        "{}",
        pod.log()
    );
    eprintln!("e2e-v2: whole cycle {cycle:?}");
    pod.assert_nothing_left();
}

/// A pod stopped from outside (SIGTERM to nspawn, what `systemctl stop` of the host unit does)
/// ends by the manifest's rule like a pod that ends by itself: 0 when every app was healthy, the
/// status of an app that had already failed otherwise. On both cgroup targets: systemd in the
/// pod unloads stopped units during its shutdown, so reading their state at the end once made
/// every stopped pod exit 1.
#[test]
fn e2e_stop_from_outside_keeps_the_exit_status_rule() {
    let Some(_turn) = e2e() else { return };
    for cgroup in ["v1", "v2"] {
        let name = format!("e2e-stop-{cgroup}");
        let healthy = format!(
            r#"podc: 1
name: {name}
target: {{cgroup: {cgroup}, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", "touch /out/a.up; exec sleep 3600"]
    mounts: [{{volume: out, path: /out}}]
  - name: b
    image: "@WORK@/images/b"
    exec: ["/bin/sh", "-c", "touch /out/b.up; exec sleep 3600"]
    mounts: [{{volume: out, path: /out}}]
"#
        );
        let mut pod = Pod::start(&name, &healthy, &["a", "b"]);
        pod.wait_for(&["a.up", "b.up"]);
        pod.terminate();
        let (code, cycle) = pod.wait();
        assert_eq!(
            code,
            0,
            "{cgroup}: a healthy pod stopped from outside\n{}",
            pod.log()
        );
        eprintln!("{name}: healthy pod, stopped: 0 after {cycle:?}");
        pod.assert_nothing_left();

        let failed = healthy
            .replace(
                "touch /out/a.up; exec sleep 3600",
                "touch /out/a.up; exit 3",
            )
            .replace(
                &format!("name: {name}\n"),
                &format!("name: {name}-failed\n"),
            );
        let mut pod = Pod::start(&format!("{name}-failed"), &failed, &["a", "b"]);
        pod.wait_for(&["a.up", "b.up"]);
        std::thread::sleep(Duration::from_secs(1));
        pod.terminate();
        let (code, _) = pod.wait();
        assert_eq!(
            code,
            3,
            "{cgroup}: a pod whose app had failed, stopped\n{}",
            pod.log()
        );
        pod.assert_nothing_left();
    }
}

/// The pod's exit status for each way an app can end by itself: the first app in manifest
/// order that did not succeed gives its exit code, 128 + its signal, 203 when its binary is
/// missing, 1 when it never ran (its `after` dependency failed); 0 when all succeeded.
#[test]
fn e2e_exit_status_for_each_way_an_app_ends() {
    let Some(_turn) = e2e() else { return };
    let cases: &[(&str, &str, i32)] = &[
        (
            "ok",
            r#"[{name: a, exec: ["/bin/true"]}, {name: b, exec: ["/bin/sh", "-c", "sleep 1"]}]"#,
            0,
        ),
        (
            "code",
            r#"[{name: a, exec: ["/bin/true"]}, {name: b, exec: ["/bin/sh", "-c", "exit 7"]}]"#,
            7,
        ),
        (
            "signal",
            r#"[{name: a, exec: ["/bin/sh", "-c", "kill -USR1 $$"]}]"#,
            128 + 10,
        ),
        ("missing", r#"[{name: a, exec: ["/nonexistent"]}]"#, 203),
        (
            "never-ran",
            r#"[{name: a, exec: ["/bin/true"], after: [b]}, {name: b, exec: ["/nonexistent"]}]"#,
            1,
        ),
        (
            "order",
            r#"[{name: a, exec: ["/bin/sh", "-c", "sleep 1; exit 4"]}, {name: b, exec: ["/bin/sh", "-c", "exit 5"]}]"#,
            4,
        ),
    ];
    for (case, apps, want) in cases {
        let name = format!("e2e-status-{case}");
        // Every app runs in the one image "i".
        let apps = apps.replace("{name: ", "{image: \"@WORK@/images/i\", name: ");
        let manifest =
            format!("podc: 1\nname: {name}\ntarget: {{cgroup: v1, systemd: 252}}\napps: {apps}\n");
        eprintln!("{case}: expecting {want}");
        let mut pod = Pod::start(&name, &manifest, &["i"]);
        let (code, _) = pod.wait();
        assert_eq!(code, *want, "{case}\n{}", pod.log());
        pod.assert_nothing_left();
    }
}

/// The test's side of the readiness protocol: a notification socket, as systemd gives a
/// `Type=notify` unit, and every message sent to it with when it came.
struct Manager {
    _dir: tempfile::TempDir,
    path: PathBuf,
    messages: std::sync::Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let messages = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
        // Reads until the socket's file is gone with the test; a descriptor sent with a
        // message (BARRIER=1) is closed as the message is read, which is what releases it.
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let watched = path.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while watched.exists() {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    seen.lock().unwrap().push((Instant::now(), text));
                }
            }
        });
        Manager {
            _dir: dir,
            path,
            messages,
        }
    }

    /// When a message with exactly `line` among its lines came, if one did.
    fn when(&self, line: &str) -> Option<Instant> {
        let m = self.messages.lock().unwrap();
        m.iter()
            .find(|(_, text)| text.lines().any(|l| l == line))
            .map(|(t, _)| *t)
    }

    fn all(&self) -> Vec<String> {
        let m = self.messages.lock().unwrap();
        m.iter().map(|(_, t)| t.clone()).collect()
    }
}

/// Under a service manager that waits for readiness (`NOTIFY_SOCKET`, the host unit's
/// `Type=notify`), the launcher reports the pod ready once its apps have started, and a job
/// pod (every app ends at once) still ends as a job that did its work: it is reported ready
/// before the launcher exits 0, and the launcher waits until the manager has read that. On
/// systemd 252 the host unit of such a pod failed with Result=protocol: nothing ever said
/// READY=1. A pod that fails at once ends with its app's status, one whose app is restarted
/// after failing at once ends well, and SIGTERM (`systemctl stop`) still stops the pod in
/// order.
#[test]
fn e2e_job_pods_under_a_service_manager() {
    let Some(_turn) = e2e() else { return };
    let cases: &[(&str, &str, i32)] = &[
        (
            "ok",
            r#"[{name: a, exec: ["/bin/true"]}, {name: b, exec: ["/bin/true"]}]"#,
            0,
        ),
        (
            "fails",
            r#"[{name: a, exec: ["/bin/true"]}, {name: b, exec: ["/bin/sh", "-c", "exit 3"]}]"#,
            3,
        ),
        (
            "later",
            r#"[{name: a, exec: ["/bin/sh", "-c", "touch /out/started; sleep 5"], mounts: [{volume: out, path: /out}]}]"#,
            0,
        ),
        (
            // Restarted once after failing at once, then done.
            "restart",
            r#"[{name: a, restart: on-failure, exec: ["/bin/sh", "-c", "test -e /out/failed && exit 0; touch /out/failed; exit 4"], mounts: [{volume: out, path: /out}]}]"#,
            0,
        ),
        (
            "stopped",
            r#"[{name: a, exec: ["/bin/sh", "-c", "touch /out/started; exec sleep 600"], mounts: [{volume: out, path: /out}]}]"#,
            0,
        ),
    ];
    for (case, apps, want) in cases {
        let name = format!("e2e-job-{case}");
        let apps = apps.replace("{name: ", "{image: \"@WORK@/images/i\", name: ");
        let manifest = format!(
            "podc: 1\nname: {name}\ntarget: {{cgroup: v1, systemd: 252}}\n\
             volumes: [{{name: out, kind: host, source: \"@WORK@/out\"}}]\napps: {apps}\n"
        );
        let manager = Manager::new();
        let mut pod = Pod::build(&name, &manifest, &["i"], |_| {});
        pod.env.push(("NOTIFY_SOCKET".into(), manager.path.clone()));
        pod.launch();
        if *case == "stopped" {
            pod.wait_for(&["started"]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while manager.when("READY=1").is_none() {
                assert!(Instant::now() < deadline, "never ready:\n{}", pod.log());
                std::thread::sleep(Duration::from_millis(50));
            }
            pod.terminate();
        }
        let (code, _) = pod.wait();
        let ended = Instant::now();
        let said = manager.all();
        eprintln!("{case}: exit {code}, the manager was told {said:?}");
        assert_eq!(code, *want, "{case}\n{}", pod.log());
        if *want == 0 {
            let ready = manager.when("READY=1");
            assert!(
                ready.is_some_and(|t| t <= ended),
                "{case}: not ready: {said:?}\n{}",
                pod.log()
            );
        }
        if matches!(*case, "later" | "stopped") {
            // Ready meant the apps had started, and came while the pod ran: nothing to wait for.
            let started = fs::metadata(pod.out("started"))
                .unwrap()
                .modified()
                .unwrap();
            let since = started.elapsed().unwrap();
            // READY=1 comes once the app's process is executed (Type=exec), which is a shell
            // start before its `touch`; and a file's time is the kernel's coarse clock, a tick
            // behind. Both are milliseconds: ready a quarter of a second before the file would
            // be the pod saying so before its app ran at all.
            let ready = manager.when("READY=1").unwrap();
            assert!(
                ready.elapsed() <= since + Duration::from_millis(250),
                "{case}: ready {:?} ago, before the app started {since:?} ago",
                ready.elapsed()
            );
            assert!(manager.when("BARRIER=1").is_none(), "{case}: {said:?}");
        }
        pod.assert_nothing_left();
    }
}

/// Init apps (`init: true`) run to completion before the apps after them start: each app
/// after one checks at its start that the init app's file is there, and fails if it was
/// started early; the init app runs once, and the pod does not end when it does while an app
/// after it still runs. One that exits 3 keeps the app after it from ever starting, and the
/// pod ends with 3. A pod of init apps only ends once they are done.
#[test]
fn e2e_init_apps_complete_before_the_apps_after_them() {
    let Some(_turn) = e2e() else { return };
    let migrate = r#"{name: migrate, init: true, exec: ["/bin/sh", "-c", "echo run >> /out/migrate-runs; sleep 2; touch /out/migrated"]}"#;
    let cases: &[(&str, String, i32)] = &[
        (
            // web is a job: the pod ends once it is done (not when migrate is).
            "job",
            format!(
                r#"[{migrate}, {{name: web, after: [migrate], exec: ["/bin/sh", "-c", "test -e /out/migrated || exit 9; sleep 2; touch /out/web-done"]}}]"#
            ),
            0,
        ),
        (
            // web keeps running (and would restart after failing early): stopped from outside.
            "service",
            format!(
                r#"[{migrate}, {{name: web, after: [migrate], restart: always, exec: ["/bin/sh", "-c", "echo run >> /out/web-runs; test -e /out/migrated || exit 9; touch /out/web-started; exec sleep 600"]}}]"#
            ),
            0,
        ),
        (
            "fails",
            r#"[{name: migrate, init: true, exec: ["/bin/sh", "-c", "sleep 1; exit 3"]}, {name: web, after: [migrate], exec: ["/bin/sh", "-c", "touch /out/web-started"]}]"#.into(),
            3,
        ),
        (
            "only-init",
            r#"[{name: a, init: true, exec: ["/bin/sh", "-c", "sleep 1; touch /out/a"]}, {name: b, init: true, after: [a], exec: ["/bin/sh", "-c", "test -e /out/a && touch /out/b"]}]"#.into(),
            0,
        ),
    ];
    for (case, apps, want) in cases {
        let name = format!("e2e-init-{case}");
        let apps = apps.replace(
            "{name: ",
            "{image: \"@WORK@/images/i\", mounts: [{volume: out, path: /out}], name: ",
        );
        let manifest = format!(
            "podc: 1\nname: {name}\ntarget: {{cgroup: v1, systemd: 252}}\n\
             volumes: [{{name: out, kind: host, source: \"@WORK@/out\"}}]\napps: {apps}\n"
        );
        eprintln!("{case}: expecting {want}");
        let mut pod = Pod::start(&name, &manifest, &["i"]);
        if *case == "service" {
            let took = pod.wait_for(&["web-started"]);
            assert!(took >= Duration::from_secs(2), "web started after {took:?}");
            // migrate has completed, web runs: the pod does not end by itself.
            std::thread::sleep(Duration::from_millis(1500));
            assert!(
                pod.child.as_mut().unwrap().try_wait().unwrap().is_none(),
                "the pod ended while web ran:\n{}",
                pod.log()
            );
            pod.terminate();
        }
        let (code, took) = pod.wait();
        assert_eq!(code, *want, "{case}\n{}", pod.log());
        match *case {
            "job" => {
                assert!(pod.out("web-done").exists(), "{}", pod.log());
                assert!(took >= Duration::from_secs(4), "{case}: {took:?}");
            }
            "service" => assert_eq!(pod.read("web-runs"), "run\n", "web started early"),
            "fails" => assert!(!pod.out("web-started").exists(), "web started"),
            _ => assert!(pod.out("b").exists(), "{}", pod.log()),
        }
        if matches!(*case, "job" | "service") {
            assert_eq!(
                pod.read("migrate-runs"),
                "run\n",
                "{case}: migrate ran again"
            );
        }
        pod.assert_nothing_left();
    }
}

/// The pod's journal, kept in its tree: every line of `unit`, as text.
fn pod_journal(pod: &Pod, unit: &str) -> String {
    let dir = pod.tree.join("rootfs/var/log/journal");
    let o = Command::new("journalctl")
        .arg("-D")
        .arg(&dir)
        .args(["-o", "cat", "--no-pager", "-u", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Health probes (issue 23, item 1), in a private pod: an app counts as started only once its
/// HTTP probe passes (after ~2 s), so the app `after` it starts ~2 s later; an app whose exec
/// probe (run in its own mount namespace: its private /tmp) starts failing is restarted, and
/// the restart is in the journal with the probe's output; an app whose probe never passes
/// fails its start, and the pod ends with 1 and says why.
#[test]
fn e2e_health_probes_hold_starts_and_restart_apps() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-health
network: private
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: web
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "touch /out/web.started; mkdir /tmp/www; (sleep 2; echo ok > /tmp/www/healthz) & exec httpd -f -p 8080 -h /tmp/www"]
    mounts: [{volume: out, path: /out}]
    health: {http: {port: 8080, path: /healthz}, interval: 200ms, startPeriod: 20s}
  - name: after-web
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "touch /out/after-web.started; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    after: [web]
  - name: flaky
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "echo start >> /out/flaky.starts; touch /tmp/alive; sleep 2; rm /tmp/alive; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    health: {exec: ["/bin/test", "-e", "/tmp/alive"], interval: 500ms, failures: 2}
  - name: guarded
    image: "@WORK@/images/i"
    exec: ["/bin/nc", "-ll", "-p", "8081", "-e", "/srv/answer"]
    mounts: [{volume: out, path: /out}]
    health:
      http:
        port: 8081
        path: /ready
        headers: {Host: guarded.example, X-Probe-Token: "a \"b\" %n $HOME \\ tab\tend"}
      interval: 200ms
      startPeriod: 20s
  - name: after-guarded
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "touch /out/after-guarded.started; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    after: [guarded]
"#;
    let mut pod = Pod::start_with("e2e-health", manifest, &["i"], |work| {
        // An HTTP server that answers 200 only to a request with the probe's headers (busybox
        // httpd cannot ask for one), 403 to any other; it keeps each request's header lines.
        let answer = work.join("images/i/srv/answer");
        fs::create_dir_all(answer.parent().unwrap()).unwrap();
        fs::write(
            &answer,
            "#!/bin/sh\nok=0\ncr=$(printf '\\r')\nwhile IFS= read -r line; do\n    \
             line=${line%\"$cr\"}\n    [ -z \"$line\" ] && break\n    \
             echo \"$line\" >> /out/guarded.requests\n    case $line in\n        \
             'Host: guarded.example' | 'X-Probe-Token: a \"b\" %n $HOME \\ tab\tend') ok=$((ok + 1)) ;;\n    \
             esac\ndone\necho >> /out/guarded.requests\nif [ \"$ok\" = 2 ]; then\n    \
             printf 'HTTP/1.0 200 OK\\r\\n\\r\\n'\nelse\n    \
             printf 'HTTP/1.0 403 Forbidden\\r\\n\\r\\n'\nfi\n",
        )
        .unwrap();
        fs::set_permissions(&answer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    });
    pod.wait_for(&["web.started", "after-web.started", "after-guarded.started"]);
    // The app after `guarded` started: its probe passed, which only the headers allow; each
    // request had them once, podc's own Host line replaced.
    let requests = pod.read("guarded.requests");
    let first = requests.split("\n\n").next().unwrap();
    assert_eq!(
        first.lines().collect::<Vec<_>>(),
        [
            "GET /ready HTTP/1.0",
            "User-Agent: podc-health",
            "Connection: close",
            "Host: guarded.example",
            "X-Probe-Token: a \"b\" %n $HOME \\ tab\tend",
        ],
        "{requests}"
    );
    assert!(!requests.contains("Host: 127.0.0.1"), "{requests}");
    let started = |f: &str| fs::metadata(pod.out(f)).unwrap().modified().unwrap();
    let held = started("after-web.started")
        .duration_since(started("web.started"))
        .unwrap();
    eprintln!("after-web started {held:?} after web");
    assert!(
        held >= Duration::from_millis(1800),
        "after-web did not wait for web's probe: {held:?}\n{}",
        pod.log()
    );
    // flaky: healthy for 2 s, then two failed probes, a restart; twice within 15 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let starts = fs::read_to_string(pod.out("flaky.starts")).unwrap_or_default();
        if starts.lines().count() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flaky was not restarted twice: {starts:?}\n{}\n{}\n{}",
            pod.log(),
            pod_journal(&pod, "podc-ready-flaky.service"),
            pod_journal(&pod, "podc-health-flaky.service")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let said = pod_journal(&pod, "podc-health-flaky.service");
    assert!(
        said.contains("podc: app flaky failed its health probe (2 of 2 in a row): exit status 1")
            && said.contains("podc: restarting app flaky: 2 failed health probes in a row"),
        "{said}"
    );
    let said = pod_journal(&pod, "podc-ready-web.service");
    assert!(
        said.contains("podc: app web passed its health probe"),
        "{said}"
    );
    pod.assert_nothing_left();

    // A probe that never passes: the start fails after the start period, the pod ends with 1.
    let manifest = r#"podc: 1
name: e2e-unhealthy
target: {cgroup: v1, systemd: 252}
apps:
  - name: deaf
    image: "@WORK@/images/i"
    exec: ["/bin/sleep", "600"]
    health: {tcp: {port: 9}, interval: 300ms, startPeriod: 2s}
"#;
    let mut pod = Pod::start("e2e-unhealthy", manifest, &["i"]);
    let (code, cycle) = pod.wait();
    assert_eq!(code, 1, "{}", pod.log());
    assert!(cycle < Duration::from_secs(30), "{cycle:?}");
    let said = pod_journal(&pod, "podc-ready-deaf.service");
    assert!(
        said.contains(
            "podc: app deaf did not pass its health probe within 2.000 s, so it did not start"
        ),
        "{said}"
    );
    pod.assert_nothing_left();
}

/// Lifecycle hooks in a pod (issue: Kubernetes files in the wild): postStart runs in the app's
/// root (it reads the image's own file), as its user, with its environment and `$MAINPID`;
/// preStop runs when the pod is stopped, while the app still runs (it shares its private /tmp
/// and finds its main process alive), and the app gets SIGTERM only after the hook ended; what
/// preStop writes to a volume is there after the stop. systemd also runs preStop after an app
/// exited 0 by itself (with `$MAINPID` unset), as the README says; a failing postStart fails
/// the app's start: it is stopped with SIGTERM, and the pod exits 143.
#[test]
fn e2e_lifecycle_hooks_run_in_the_app_around_its_start_and_stop() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-hooks
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: broken
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "touch /out/broken.started; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    hooks: {postStart: ["/bin/sh", "-c", "touch /out/broken.post; exit 4"]}
  - name: job
    image: "@WORK@/images/i"
    exec: ["/bin/true"]
    mounts: [{volume: out, path: /out}]
    hooks: {preStop: ["/bin/sh", "-c", "echo \"job prestop [$MAINPID]\" > /out/job.prestop"]}
  - name: web
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "trap 'echo term >> /out/order; exit 0' TERM; echo $$ > /tmp/pid; while :; do sleep 0.1; done"]
    user: 1000
    group: 1000
    environment: {MODE: "e2e %n $x"}
    mounts: [{volume: out, path: /out}]
    hooks:
      postStart: ["/bin/sh", "-c", "echo \"$(id -u):$(id -g) $MODE $(cat /etc/marker) ${MAINPID:+main}\" > /out/web.post"]
      preStop: ["/bin/sh", "-c", "sleep 1; [ \"$MAINPID\" = \"$(cat /tmp/pid)\" ] && kill -0 \"$MAINPID\" && echo \"prestop $(id -u) $MODE\" >> /out/order"]
"#;
    let mut pod = Pod::start_with("e2e-hooks", manifest, &["i"], |work| {
        fs::write(work.join("images/i/etc/marker"), "from-the-image").unwrap();
    });
    pod.wait_for(&["web.post", "job.prestop", "broken.post"]);
    assert_eq!(
        pod.read("web.post"),
        "1000:1000 e2e %n $x from-the-image main\n"
    );
    assert_eq!(pod.read("job.prestop"), "job prestop []\n");
    assert!(pod.out("broken.started").exists());
    // The broken app's start failed, and it was stopped, not left running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pod_journal(&pod, "broken.service").contains("Failed with result")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 143, "the failed start of broken\n{}", pod.log());
    assert_eq!(pod.read("order"), "prestop 1000 e2e %n $x\nterm\n");
    let said = pod_journal(&pod, "broken.service");
    assert!(
        said.contains("Control process exited, code=exited, status=4"),
        "{said}"
    );
    pod.assert_nothing_left();
}

/// A gRPC health probe (Kubernetes' `grpc` probe) in a pod on the host network, against the
/// tests' h2c server in this process on a free loopback port: while the server answers
/// NOT_SERVING the app does not count as started and the app `after` it waits; once it answers
/// SERVING that app starts; when it answers NOT_SERVING again the app is restarted after two
/// failed probes, and the journal says why. The probe is the `podc` under test, which the
/// launcher binds into the pod (the pod's /usr, the host's, has no podc).
#[test]
fn e2e_grpc_health_probe_holds_the_start_and_restarts_the_app() {
    use common::h2c::{Answer, Server};
    let Some(_turn) = e2e() else { return };
    let server = Server::start(Answer::Status(2));
    let port = server.addr.port();
    let manifest = format!(
        r#"podc: 1
name: e2e-grpc
network: host
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: api
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "echo start >> /out/api.starts; exec sleep 600"]
    mounts: [{{volume: out, path: /out}}]
    health: {{grpc: {{port: {port}}}, interval: 200ms, failures: 2, startPeriod: 30s}}
  - name: after-api
    image: "@WORK@/images/i"
    exec: ["/bin/sh", "-c", "touch /out/after-api.started; exec sleep 600"]
    mounts: [{{volume: out, path: /out}}]
    after: [api]
"#
    );
    let mut pod = Pod::start("e2e-grpc", &manifest, &["i"]);
    pod.wait_for(&["api.starts"]);
    // NOT_SERVING: probed and failed several times, and nothing after the app started.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.calls().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the probe made {} calls:\n{}\n{}",
            server.calls().len(),
            pod.log(),
            pod_journal(&pod, "podc-ready-api.service")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pod.out("after-api.started").exists(), "{}", pod.log());
    server.set(Answer::Status(1));
    pod.wait_for(&["after-api.started"]);
    // NOT_SERVING again: two failed probes in a row, and a restart.
    server.set(Answer::Status(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let starts = fs::read_to_string(pod.out("api.starts")).unwrap_or_default();
        if starts.lines().count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "api was not restarted: {starts:?}\n{}\n{}",
            pod.log(),
            pod_journal(&pod, "podc-health-api.service")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.set(Answer::Status(1));
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let said = pod_journal(&pod, "podc-ready-api.service");
    assert!(
        said.contains("podc: app api passed its health probe"),
        "{said}"
    );
    let said = pod_journal(&pod, "podc-health-api.service");
    let why = format!("gRPC health check of 127.0.0.1:{port}: answered NOT_SERVING");
    assert!(
        said.contains(&format!(
            "podc: app api failed its health probe (2 of 2 in a row): {why}"
        )) && said.contains("podc: restarting app api: 2 failed health probes in a row"),
        "{said}"
    );
    // Every call was the standard one, for the whole server (a probe stopped with its app as
    // it restarted may have closed its connection before a byte).
    let calls = server.calls();
    let closed = |c: &&common::h2c::Call| c.problem.as_deref() == Some(common::h2c::CLOSED_AT_ONCE);
    assert!(calls.iter().filter(closed).count() <= 2, "{calls:?}");
    for call in calls.iter().filter(|c| !closed(c)) {
        assert_eq!(call.problem, None, "{call:?}");
        assert_eq!(call.service, "");
        assert!(call
            .headers
            .contains(&(":path".into(), "/grpc.health.v1.Health/Check".into())));
    }
    pod.assert_nothing_left();
}

/// HTTPS health probes (Kubernetes' `scheme: HTTPS`), in private pods. The app serves HTTPS on
/// the pod's loopback with `openssl s_server` (the host's, copied into the image with its
/// libraries: busybox has no TLS server) and a certificate made now, self-signed and for a name
/// the pod does not have, after 2 s; its probe is podc's own client (bound into the pod), which
/// takes any certificate as the kubelet does, so the app after it starts once it answers. Then
/// an app serving plain HTTP probed as HTTPS: every handshake fails, the start fails after its
/// start period, the pod ends with 1, and the journal says why.
#[test]
fn e2e_https_health_probe_takes_any_certificate_and_fails_without_tls() {
    let Some(_turn) = e2e() else { return };
    let openssl = Command::new("openssl").arg("version").output();
    if !openssl.is_ok_and(|o| o.status.success()) {
        common::skip("openssl is missing (package openssl)");
        return;
    }
    if !common::tool("ldd", "libc-bin") {
        return;
    }
    let manifest = r#"podc: 1
name: e2e-https
network: private
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: tls
    image: "@WORK@/images/tls"
    exec: ["/bin/sh", "-c", "touch /out/tls.started; sleep 2; exec /usr/bin/openssl s_server -quiet -www -accept 127.0.0.1:8443 -cert /etc/tls/cert.pem -key /etc/tls/key.pem"]
    mounts: [{volume: out, path: /out}]
    health:
      http: {port: 8443, path: /healthz, scheme: https, headers: {X-Probe: podc}}
      interval: 200ms
      startPeriod: 20s
  - name: after-tls
    image: "@WORK@/images/tls"
    exec: ["/bin/sh", "-c", "touch /out/after-tls.started; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    after: [tls]
"#;
    let mut pod = Pod::start_with("e2e-https", manifest, &["tls"], |work| {
        let image = work.join("images/tls");
        copy_with_libraries("/usr/bin/openssl", &image);
        let dir = image.join("etc/tls");
        fs::create_dir_all(&dir).unwrap();
        let o = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=not-this-pod.invalid"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    pod.wait_for(&["tls.started", "after-tls.started"]);
    let started = |f: &str| fs::metadata(pod.out(f)).unwrap().modified().unwrap();
    let held = started("after-tls.started")
        .duration_since(started("tls.started"))
        .unwrap();
    assert!(
        held >= Duration::from_millis(1800),
        "after-tls did not wait for the HTTPS probe: {held:?}\n{}",
        pod.log()
    );
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let said = pod_journal(&pod, "podc-ready-tls.service");
    assert!(
        said.contains("podc: app tls passed its health probe"),
        "{said}"
    );
    pod.assert_nothing_left();

    // Plain HTTP where the probe asks for HTTPS: never healthy.
    let manifest = r#"podc: 1
name: e2e-https-plain
network: private
target: {cgroup: v1, systemd: 252}
apps:
  - name: plain
    image: "@WORK@/images/i"
    exec: ["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/"]
    health: {http: {port: 8080, scheme: https}, interval: 300ms, startPeriod: 2s}
"#;
    let mut pod = Pod::start("e2e-https-plain", manifest, &["i"]);
    let (code, cycle) = pod.wait();
    assert_eq!(code, 1, "{}", pod.log());
    assert!(cycle < Duration::from_secs(30), "{cycle:?}");
    let said = pod_journal(&pod, "podc-ready-plain.service");
    assert!(
        said.contains(
            "podc: app plain did not pass its health probe within 2.000 s, so it did not start: \
             HTTPS probe GET https://127.0.0.1:8080/: TLS handshake failed: "
        ),
        "{said}"
    );
    pod.assert_nothing_left();
}

/// A persistent volume outlives a run: made at the first launch with the declared mode and
/// owner (below 0700 directories of root's), a file written in one run is there in the next,
/// and a mode the pod gave it is kept. A memory volume is a tmpfs of exactly its size, fresh in
/// each run: writing past the size fails.
#[test]
fn e2e_persistent_and_memory_volumes() {
    use std::os::unix::fs::MetadataExt;
    let Some(_turn) = e2e() else { return };
    let script = r#"echo run >> /data/runs; cat /data/runs > /out/runs
stat -c '%a %u %g' /data > /out/data.stat; chmod 0700 /data
stat -c '%a %u %g' /cache > /out/cache.stat
ls -A /cache | wc -l > /out/cache.count; touch /cache/leftover
stat -f -c '%b %S' /cache > /out/cache.statfs
grep ' /cache ' /proc/self/mountinfo > /out/cache.mountinfo
if dd if=/dev/zero of=/cache/big bs=1024 count=2048 2>/dev/null; then echo fits; else echo full; fi > /out/dd"#;
    let manifest = format!(
        r#"podc: 1
name: e2e-vols
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: data, kind: persistent, mode: "0750", uid: 1234, gid: 2345}}
  - {{name: cache, kind: memory, size: 1Mi, mode: "1777"}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", {}]
    user: 1234
    group: 2345
    mounts: [{{volume: out, path: /out}}, {{volume: data, path: /data}}, {{volume: cache, path: /cache}}]
"#,
        serde_json::to_string(script).unwrap()
    );
    let mut pod = Pod::build("e2e-vols", &manifest, &["a"], |_| {});
    let volumes = pod.work.path().join("volumes");
    pod.env.push(("PODC_VOLUMES_DIR".into(), volumes.clone()));
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("runs"), "run\n");
    assert_eq!(pod.read("data.stat"), "750 1234 2345\n");
    let dir = volumes.join("e2e-vols/data");
    let m = fs::symlink_metadata(&dir).unwrap();
    assert!(m.is_dir());
    // The pod's ids on the host: themselves, or its range's in a user namespace of its own.
    assert_eq!(
        (m.uid(), m.gid()),
        (host_id(&pod, 1234), host_id(&pod, 2345))
    );
    for d in [volumes.clone(), volumes.join("e2e-vols")] {
        let m = fs::symlink_metadata(&d).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o700, 0), "{}", d.display());
    }
    // The memory volume: a tmpfs of 1 MiB (256 pages of 4 KiB), with its mode, that refuses
    // 2 MiB.
    assert_eq!(pod.read("cache.stat"), "1777 0 0\n");
    assert_eq!(pod.read("cache.count").trim(), "0");
    assert_eq!(pod.read("cache.statfs"), "256 4096\n");
    let mountinfo = pod.read("cache.mountinfo");
    assert!(
        mountinfo.contains(" - tmpfs ") && mountinfo.contains("size=1024k"),
        "{mountinfo}"
    );
    assert_eq!(pod.read("dd"), "full\n");

    // Again: the file is still there, the mode the pod set is kept, the tmpfs is fresh.
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("runs"), "run\nrun\n");
    assert_eq!(pod.read("data.stat"), "700 1234 2345\n");
    assert_eq!(pod.read("cache.count").trim(), "0");
    pod.assert_nothing_left();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(volumes.to_str().unwrap()), "{mounts}");
}

/// A persistent volume that is a symbolic link stops the launch before anything is mounted,
/// naming it; the link's target is not touched.
#[test]
fn e2e_persistent_volume_through_a_link_is_refused() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-link
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: data, kind: persistent, uid: 1234}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/true"]
    mounts: [{volume: data, path: /data}]
"#;
    let mut pod = Pod::build("e2e-link", manifest, &["a"], |_| {});
    let volumes = pod.work.path().join("volumes");
    let elsewhere = pod.work.path().join("elsewhere");
    fs::create_dir_all(volumes.join("e2e-link")).unwrap();
    fs::set_permissions(
        &volumes,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, volumes.join("e2e-link/data")).unwrap();
    pod.env.push(("PODC_VOLUMES_DIR".into(), volumes.clone()));
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("e2e-link/data: is a symbolic link or not a directory"),
        "{log}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&elsewhere).unwrap().uid(), 0);
    pod.assert_nothing_left();
}

/// A persistent volume from a pod's life with the host's ids (`userNamespace: host`, once the
/// default) is shifted into the pod's range at its first launch in a user namespace of its own:
/// what its root wrote before is its root's still (uid 0 inside, the range's first id on the
/// host), other owners are shifted alike, it appends to its file and makes new ones. A set-uid
/// bit is kept, a link out of the volume is changed itself and not what it points to, and the
/// launch says so once: the next launch leaves the volume as it is.
#[test]
fn e2e_persistent_volume_of_host_ids_is_shifted_into_the_pods_range() {
    use std::os::unix::fs::MetadataExt;
    let Some(_turn) = e2e() else { return };
    // Both manifests choose, so the test is the same under PODC_TEST_USERNS.
    let manifest = |users: &str, script: &str| {
        format!(
            r#"podc: 1
name: e2e-shift
userNamespace: {users}
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: data, kind: persistent}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", {}]
    mounts: [{{volume: out, path: /out}}, {{volume: data, path: /data}}]
"#,
            serde_json::to_string(script).unwrap()
        )
    };
    let before = "echo host > /data/old; mkdir /data/sub; echo deep > /data/sub/f
chown 1234:2345 /data/sub/f; touch /data/suid; chmod 4755 /data/suid
ln -s @WORK@/bait /data/bait; id -u > /out/before";
    let after = "echo private >> /data/old; echo new > /data/new; cat /data/old > /out/old
stat -c '%u %g' /data /data/old /data/new /data/sub/f > /out/inside; id -u > /out/after";
    let mut pod = Pod::build("e2e-shift", &manifest("host", before), &["a"], |w| {
        fs::write(w.join("bait"), "bait").unwrap()
    });
    let work = pod.work.path().to_path_buf();
    let volumes = work.join("volumes");
    pod.env.push(("PODC_VOLUMES_DIR".into(), volumes.clone()));
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("before"), "0\n");
    let data = volumes.join("e2e-shift/data");
    let ids = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(host_id(&pod, 0), 0, "the first launch has the host's ids");
    assert_eq!(ids(&data.join("old")), (0, 0));

    // The same pod, rebuilt in a user namespace of its own.
    let text = manifest("private", after).replace("@WORK@", work.to_str().unwrap());
    fs::write(work.join("pod.yaml"), text).unwrap();
    let o = podc()
        .current_dir(&work)
        .args(["build", "pod.yaml", "-o", "build"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Fresh cgroups, as systemd gives the host unit at each start: the first launch's pod
    // left its systemd's cgroups (init.scope, system.slice) owned by the host's root, which
    // the pod's systemd in its own user namespace cannot use (it exits 255).
    pod.cgroups = Cgroups::new(&format!("podc-e2e-shift-again-{}", std::process::id()));
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    let base = host_id(&pod, 0);
    assert!(base >= 0x7000_0000, "the pod's range: {base}");
    assert_eq!(pod.read("after"), "0\n");
    assert_eq!(pod.read("old"), "host\nprivate\n");
    assert_eq!(pod.read("inside"), "0 0\n0 0\n0 0\n1234 2345\n");
    for f in ["", "old", "new", "sub", "suid", "bait"] {
        assert_eq!(ids(&data.join(f)), (base, base), "data/{f}");
    }
    assert_eq!(ids(&data.join("sub/f")), (base + 1234, base + 2345));
    let suid = fs::symlink_metadata(data.join("suid")).unwrap().mode();
    assert_eq!(suid & 0o7777, 0o4755);
    assert!(fs::symlink_metadata(data.join("bait"))
        .unwrap()
        .is_symlink());
    assert_eq!(ids(&work.join("bait")), (0, 0), "the link's target");
    let notice = "podc launch: pod e2e-shift, volume data: its files were owned by the host's ids";
    assert_eq!(pod.log().matches(notice).count(), 1, "{}", pod.log());

    // Once: the next launch finds the volume in the range and says nothing.
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("old"), "host\nprivate\nprivate\n");
    assert_eq!(pod.log().matches(notice).count(), 1, "{}", pod.log());
    pod.assert_nothing_left();
}

/// Paths inside volumes (Kubernetes' `subPath`) in the dry run: each bound from inside its
/// volume, never through a link out of it, made as a directory where missing (but in a
/// read-only volume); an edited plan cannot name a path out of the volume.
#[test]
fn dry_run_shows_sub_paths() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volumes-sub-paths.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("site");
    let plan = launch::read_plan(&tree).unwrap();
    let host = dry_host();
    let launch = launch::prepare(Path::new("/var/lib/podc/site"), plan, &host).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_sub_paths", launch.to_string());
    });
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "subPath = \"html\"",
            "subPath = \"../../etc\"",
            "subPath \"../../etc\" is not a relative path in normal form",
        ),
        (
            "subPath = \"html\"",
            "subPath = \"/etc\"",
            "subPath \"/etc\" is not a relative path in normal form",
        ),
        (
            "subPath = \"html\"",
            "subPath = \"\"",
            "subPath \"\" is not a relative path in normal form",
        ),
        (
            "subPath = \"web\"\nmakeMissing = true\n",
            "makeMissing = true\n",
            "makeMissing without a subPath",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// A private pod's network in the dry run: its way out, its network, the host ports it may
/// reach and its /etc/hosts; an edited plan's network names and host ports are held to the
/// manifest's rules (a network name becomes an interface name and a file name).
#[test]
fn dry_run_shows_the_network_and_refuses_edits() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/network-allow-host.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = out.path().join("reporter");
    let plan = launch::read_plan(&tree).unwrap();
    let launch = launch::prepare(Path::new("/var/lib/podc/reporter"), plan, &dry_host()).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_network", launch.to_string());
    });
    // In a user namespace of its own (the default) the pod holds no capability in the
    // network namespace the launcher makes (the host's user namespace owns it), so its ports
    // below 1024 are opened to its ids there (the guestbook's app on port 80 failed with
    // EACCES); with the host's ids they are not.
    assert!(
        launch.to_string().contains(
            "\n    ports below 1024 open to the pod's ids (net.ipv4.ip_unprivileged_port_start=0"
        ),
        "{launch}"
    );
    let mut plan = launch::read_plan(&tree).unwrap();
    plan.user_namespace = podc::manifest::UserNamespace::Host;
    let shown = launch::prepare(Path::new("/var/lib/podc/reporter"), plan, &dry_host())
        .unwrap()
        .to_string();
    assert!(!shown.contains("ports below 1024"), "{shown}");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "networks = [\"backend\"]",
            "networks = [\"../etc\"]",
            "network 1 \"../etc\" is not a network name",
        ),
        (
            "networks = [\"backend\"]",
            "networks = [\"backend\", \"backend\"]",
            "or is named twice",
        ),
        (
            "port = 5432",
            "port = 0",
            "allowHost 1: port 0/tcp is not 1 to 65535",
        ),
        ("port = 5432", "port = 65536", "port"),
        (
            "egress = \"nat\"\nnetworks = [\"backend\"]\n",
            "",
            "allowHost needs a bridge to the host",
        ),
        (
            "network = \"private\"\n",
            "",
            "egress and networks are for a pod with network = \"private\"",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// An image volume in an edited plan: its name is a volume name, its reference a reference;
/// an image the store lacks is named by its volume, and nothing is bound for it.
#[test]
fn launch_holds_image_volume_steps_to_the_rules() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volumes-image.yaml");
    assert!(podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("models");
    let store = tempfile::tempdir().unwrap();
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("volume weights: image registry.example/models/llama@sha256:"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("rootfs/models"),
        "bound an image the store lacks"
    );
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "volume = \"weights\"\nreference",
            "volume = \"../w\"\nreference",
            "step 2 (image-volume): volume \"../w\" is not a volume name",
        ),
        (
            "reference = \"registry.example/models/llama@",
            "reference = \"Bad Ref@",
            "step 2 (image-volume): reference \"Bad Ref@",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// A persistent volume's directory as a test prepares it, below 0700 directories of root's.
fn seed_persistent(volumes: &Path, pod: &str, volume: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = volumes.join(pod).join(volume);
    fs::create_dir_all(&dir).unwrap();
    for d in [volumes.to_path_buf(), volumes.join(pod)] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

/// Paths inside volumes (Kubernetes' `subPath`) as the kubelet binds them: a file and a
/// directory of a persistent volume (one reached through a link inside the volume), a
/// directory of an empty volume that an init app fills after the launch made it, directories
/// made where missing with the volume's permissions (one named like a file, as Kubernetes makes
/// it), one below /run; read-only where the mount says so.
#[test]
fn e2e_sub_paths_of_volumes() {
    use std::os::unix::fs::MetadataExt;
    let Some(_turn) = e2e() else { return };
    let script = r#"cat /srv/site/index.html > /out/site
cat /etc/app.conf > /out/conf
cat /etc/linked/app.conf > /out/linked
stat -c '%a %u' /srv/made > /out/made
echo w > /srv/made/f && echo writable > /out/made-writable
if echo x > /srv/site/new 2>/dev/null; then echo writable; else echo read-only; fi > /out/site-ro
test -d /etc/nginx.conf && echo directory > /out/nginx
test -d /run/sock && echo directory > /out/run
ls -A /srv/site > /out/site-list"#;
    let manifest = format!(
        r#"podc: 1
name: e2e-sub
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: data, kind: persistent}}
  - {{name: scratch, kind: empty, mode: "0777"}}
apps:
  - name: writer
    image: "@WORK@/images/a"
    init: true
    exec: ["/bin/sh", "-c", "echo from-the-writer > /scratch/site/index.html"]
    mounts: [{{volume: scratch, path: /scratch}}]
  - name: reader
    image: "@WORK@/images/a"
    after: [writer]
    user: 1234
    exec: ["/bin/sh", "-c", {}]
    mounts:
      - {{volume: out, path: /out}}
      - {{volume: scratch, path: /srv/site, subPath: site, readOnly: true}}
      - {{volume: scratch, path: /srv/made, subPath: made/deep}}
      - {{volume: data, path: /etc/app.conf, subPath: conf/app.conf, readOnly: true}}
      - {{volume: data, path: /etc/linked, subPath: inside}}
      - {{volume: data, path: /etc/nginx.conf, subPath: nginx.conf}}
      - {{volume: data, path: /run/sock, subPath: run}}
"#,
        serde_json::to_string(script).unwrap()
    );
    let mut pod = Pod::build("e2e-sub", &manifest, &["a"], |_| {});
    let volumes = pod.work.path().join("volumes");
    let data = seed_persistent(&volumes, "e2e-sub", "data");
    fs::create_dir(data.join("conf")).unwrap();
    fs::write(data.join("conf/app.conf"), "from-the-claim\n").unwrap();
    std::os::unix::fs::symlink("conf", data.join("inside")).unwrap();
    pod.env.push(("PODC_VOLUMES_DIR".into(), volumes.clone()));
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("site"), "from-the-writer\n");
    assert_eq!(pod.read("site-list"), "index.html\n");
    assert_eq!(pod.read("site-ro"), "read-only\n");
    assert_eq!(pod.read("conf"), "from-the-claim\n");
    assert_eq!(pod.read("linked"), "from-the-claim\n");
    // Made with the empty volume's own permissions (0777), so the app's user writes there.
    assert_eq!(pod.read("made"), "777 0\n");
    assert_eq!(pod.read("made-writable"), "writable\n");
    assert_eq!(pod.read("nginx"), "directory\n");
    assert_eq!(pod.read("run"), "directory\n");
    // In the persistent volume on the host: the directories made, as the volume's (0755).
    for made in ["nginx.conf", "run"] {
        let m = fs::symlink_metadata(data.join(made)).unwrap();
        assert!(m.is_dir(), "{made}");
        assert_eq!(m.mode() & 0o7777, 0o755, "{made}");
    }
    pod.assert_nothing_left();
}

/// A subPath reached through a symbolic link that leads out of the volume stops the launch,
/// naming it; nothing is bound or made where the link points.
#[test]
fn e2e_sub_path_through_a_link_out_of_the_volume_is_refused() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-escape
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: data, kind: persistent}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/true"]
    mounts: [{volume: data, path: /data, subPath: away/made}]
"#;
    for target in ["ABSOLUTE", "../../elsewhere"] {
        let mut pod = Pod::build("e2e-escape", manifest, &["a"], |_| {});
        let volumes = pod.work.path().join("volumes");
        let data = seed_persistent(&volumes, "e2e-escape", "data");
        let elsewhere = volumes.join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let link = if target == "ABSOLUTE" {
            elsewhere.display().to_string()
        } else {
            target.to_string()
        };
        std::os::unix::fs::symlink(&link, data.join("away")).unwrap();
        pod.env.push(("PODC_VOLUMES_DIR".into(), volumes.clone()));
        pod.launch();
        let (code, _) = pod.wait();
        let log = pod.log();
        assert_eq!(code, 2, "{link}: {log}");
        assert!(
            log.contains("data/away/made: a symbolic link on the way leads out of the volume"),
            "{link}: {log}"
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "{link}");
        pod.assert_nothing_left();
    }
}

/// Host volumes of each `type` in the dry run: what is made or checked before each bind, and
/// file mount points made as files.
#[test]
fn dry_run_shows_host_types() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/volumes-host-types.yaml");
    let o = podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = launch::read_plan(&out.path().join("agent")).unwrap();
    let host = dry_host();
    let launch = launch::prepare(Path::new("/var/lib/podc/agent"), plan, &host).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("launch_dry_run_host_types", launch.to_string());
    });
    // Only the paths that must exist already are sources the launch needs.
    let sources: Vec<_> = launch
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    for path in [
        "/etc/agent/pki",
        "/etc/ssl/certs/agent-ca.pem",
        "/run/docker.sock",
    ] {
        assert!(sources.contains(&path.to_string()), "{path}: {sources:?}");
    }
    for path in ["/var/lib/agent", "/etc/agent/agent.conf", "/var/log/agent"] {
        assert!(!sources.contains(&path.to_string()), "{path}: {sources:?}");
    }
}

/// Host volumes as Kubernetes' hostPath types: a directory made with its parents (0755), a file
/// made empty (0644) and bound as a file the app writes, a file and a socket bound as they are,
/// and `any` binding a file as a file and making a directory where nothing was.
#[test]
fn e2e_host_volumes_of_each_type() {
    use std::os::unix::fs::MetadataExt;
    let Some(_turn) = e2e() else { return };
    let script = r#"echo made > /made/x
stat -c %F /etc/conf.txt > /out/conf-type; echo written > /etc/conf.txt
cat /etc/given.txt > /out/given
if echo x > /etc/given.txt 2>/dev/null; then echo writable; else echo read-only; fi > /out/given-ro
stat -c %F /run/s.sock > /out/sock-type
stat -c %F /etc/any-file > /out/any-file-type
test -d /anydir && echo directory > /out/anydir"#;
    let manifest = format!(
        r#"podc: 1
name: e2e-host
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: made, kind: host, source: "@WORK@/new/deep/dir", type: directory-or-create}}
  - {{name: conf, kind: host, source: "@WORK@/conf.txt", type: file-or-create}}
  - {{name: given, kind: host, source: "@WORK@/given.txt", type: file, readOnly: true}}
  - {{name: sock, kind: host, source: "@WORK@/s.sock", type: socket}}
  - {{name: anyfile, kind: host, source: "@WORK@/given.txt", type: any}}
  - {{name: anydir, kind: host, source: "@WORK@/anydir", type: any}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", {}]
    mounts:
      - {{volume: out, path: /out}}
      - {{volume: made, path: /made}}
      - {{volume: conf, path: /etc/conf.txt}}
      - {{volume: given, path: /etc/given.txt}}
      - {{volume: sock, path: /run/s.sock}}
      - {{volume: anyfile, path: /etc/any-file, readOnly: true}}
      - {{volume: anydir, path: /anydir}}
"#,
        serde_json::to_string(script).unwrap()
    );
    let mut pod = Pod::build("e2e-host", &manifest, &["a"], |w| {
        fs::write(w.join("given.txt"), "given\n").unwrap();
    });
    let w = pod.work.path().to_path_buf();
    let listener = std::os::unix::net::UnixListener::bind(w.join("s.sock")).unwrap();
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    drop(listener);
    assert_eq!(
        fs::read_to_string(w.join("new/deep/dir/x")).unwrap(),
        "made\n"
    );
    for d in ["new", "new/deep", "new/deep/dir"] {
        assert_eq!(
            fs::metadata(w.join(d)).unwrap().mode() & 0o7777,
            0o755,
            "{d}"
        );
    }
    assert_eq!(pod.read("conf-type"), "regular empty file\n");
    assert_eq!(fs::read_to_string(w.join("conf.txt")).unwrap(), "written\n");
    assert_eq!(
        fs::metadata(w.join("conf.txt")).unwrap().mode() & 0o7777,
        0o644
    );
    assert_eq!(pod.read("given"), "given\n");
    assert_eq!(pod.read("given-ro"), "read-only\n");
    assert_eq!(fs::read_to_string(w.join("given.txt")).unwrap(), "given\n");
    assert_eq!(pod.read("sock-type"), "socket\n");
    assert_eq!(pod.read("any-file-type"), "regular file\n");
    assert_eq!(pod.read("anydir"), "directory\n");
    assert!(w.join("anydir").is_dir());
    pod.assert_nothing_left();
}

/// A host path of another kind than its `type` stops the launch before anything is mounted,
/// naming it; `--check` says the same and makes nothing.
#[test]
fn e2e_host_path_of_the_wrong_type_stops_the_launch() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-wrong
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: conf, kind: host, source: "@WORK@/shared", type: file-or-create}
  - {name: later, kind: host, source: "@WORK@/later", type: directory-or-create}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/true"]
    mounts: [{volume: conf, path: /etc/conf}, {volume: later, path: /later}]
"#;
    let mut pod = Pod::build("e2e-wrong", manifest, &["a"], |_| {});
    let says = "shared: is not a regular file (hostPath type file-or-create)";
    let o = podc()
        .args(["launch", "--check"])
        .arg(&pod.tree)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(says), "{err}");
    assert!(!pod.work.path().join("later").exists());
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    assert!(pod.log().contains(says), "{}", pod.log());
    pod.assert_nothing_left();
}

/// cpuRequest on a cgroup v1 host: the app's cpu.shares are what the kubelet derives from the
/// request (250m → 256, 1500m → 1536), through systemd 252's CPUWeight= (25, 150).
#[test]
fn e2e_cpu_request_sets_cpu_shares_on_v1() {
    let Some(_turn) = e2e() else { return };
    let wait = "touch /out/$0.ready; while [ ! -e /out/stop ]; do sleep 0.1; done";
    let manifest = format!(
        r#"podc: 1
name: e2e-req
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", {wait}, "a"]
    isolators: {{cpuRequest: 250m}}
    mounts: [{{volume: out, path: /out}}]
  - name: b
    image: "@WORK@/images/b"
    exec: ["/bin/sh", "-c", {wait}, "b"]
    isolators: {{cpu: "2", cpuRequest: 1500m}}
    mounts: [{{volume: out, path: /out}}]
"#,
        wait = serde_json::to_string(wait).unwrap()
    );
    let mut pod = Pod::start("e2e-req", &manifest, &["a", "b"]);
    pod.wait_for(&["a.ready", "b.ready"]);
    let cpu = pod.cgroups.dir("cpu").to_path_buf();
    assert_eq!(knob(&cpu, "a", "cpu.shares"), "256");
    assert_eq!(knob(&cpu, "b", "cpu.shares"), "1536");
    assert_eq!(knob(&cpu, "b", "cpu.cfs_quota_us"), "200000");
    fs::write(pod.out("stop"), "").unwrap();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// #28, operating a pod: `podc exec POD APP -- COMMAND` runs the command as the app runs, in
/// its root (a file only its image has), as its user and groups, with its environment and
/// working directory, in the pod's PID, UTS and mount namespaces and in the app's own cgroups
/// (within its limits), and ends with the command's status; by the tree's path too. An app that
/// is not running, an app the pod lacks and a pod that is not running are errors (exit 2), a
/// command the app's root lacks is 127.
#[test]
fn e2e_exec_runs_a_command_as_the_app_runs() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-exec
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: app
    image: "@WORK@/images/app"
    exec: ["/bin/sh", "-c", "cd /work && touch /out/up && exec sleep 3600"]
    user: 1234
    group: 2345
    supplementaryGroups: [3456]
    environment: {GREETING: "hello from the app"}
    isolators: {memory: 48Mi, tasks: 20}
    mounts: [{volume: out, path: /out}]
  - name: done
    image: "@WORK@/images/done"
    exec: ["/bin/true"]
"#;
    let mut pod = Pod::start_with("e2e-exec", manifest, &["app", "done"], |w| {
        fs::write(w.join("images/app/marker"), "only in app's image\n").unwrap();
    });
    pod.wait_for(&["up"]);
    let exec = |which: &str, app: &str, command: &[&str]| {
        let o = podc()
            .args(["exec", which, app, "--"])
            .args(command)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let script = "id -u; id -g; id -G; cat /marker; pwd; echo \"$GREETING\"; hostname; \
                  readlink /proc/self/ns/pid; grep :memory: /proc/self/cgroup; \
                  grep NoNewPrivs /proc/self/status";
    let (code, out, err) = exec("e2e-exec", "app", &["/bin/sh", "-c", script]);
    assert_eq!(code, Some(0), "{err}\n{}", pod.log());
    let leader_ns = fs::read_link(format!("/proc/{}/ns/pid", pod.leader())).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    // From the app's cgroup namespace: its own cgroup (the hierarchy's number is the host's).
    let memory = lines.remove(8);
    assert!(
        memory.ends_with(":memory:/system.slice/app.service"),
        "{memory}"
    );
    assert_eq!(
        lines,
        [
            "1234",
            "2345",
            "2345 3456",
            "only in app's image",
            "/work",
            "hello from the app",
            "podc-e2e-exec",
            leader_ns.to_str().unwrap(),
            "NoNewPrivs:\t1",
        ],
        "{err}"
    );
    // Its exit status is podc's; by the tree's path too.
    let tree = pod.tree.to_str().unwrap().to_string();
    let (code, _, err) = exec(&tree, "app", &["/bin/sh", "-c", "exit 7"]);
    assert_eq!(code, Some(7), "{err}");
    let (code, _, err) = exec("e2e-exec", "app", &["/no/such/program"]);
    assert_eq!(code, Some(127), "{err}");
    assert!(err.contains("/no/such/program"), "{err}");
    // What cannot be entered says why.
    std::thread::sleep(Duration::from_millis(500));
    for (which, app, says) in [
        (
            "e2e-exec",
            "done",
            "app done of pod e2e-exec is not running",
        ),
        (
            "e2e-exec",
            "nope",
            "pod e2e-exec has no app \"nope\"; its apps: app, done",
        ),
        (
            "e2e-exec-not-here",
            "app",
            "pod e2e-exec-not-here is not running here",
        ),
    ] {
        let (code, _, err) = exec(which, app, &["/bin/true"]);
        assert_eq!(code, Some(2), "{which} {app}: {err}");
        assert!(err.contains(says), "{which} {app}: {err}");
    }
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// #28: `podc logs` reads a pod launched by hand: by its name while it runs (without systemd
/// as PID 1 on the host, as here), and by its tree at any time; an app's own lines only.
#[test]
fn e2e_logs_read_a_pod_launched_by_hand() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-logs
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: talker
    image: "@WORK@/images/talker"
    exec: ["/bin/sh", "-c", "echo said-by-talker; touch /out/said; exec sleep 3600"]
    mounts: [{volume: out, path: /out}]
  - name: quiet
    image: "@WORK@/images/quiet"
    exec: ["/bin/sh", "-c", "echo said-by-quiet; exec sleep 3600"]
"#;
    let mut pod = Pod::start("e2e-logs", manifest, &["talker", "quiet"]);
    pod.wait_for(&["said"]);
    let logs = |args: &[&str]| {
        let o = podc().arg("logs").args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let tree = pod.tree.to_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = logs(&["e2e-logs", "talker"]);
        assert_eq!(code, Some(0), "{err}");
        if out.contains("said-by-talker") {
            assert!(!out.contains("said-by-quiet"), "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no line of talker in:\n{out}\n{err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, err) = logs(&[&tree]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("said-by-quiet"), "{out}");
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    // Stopped: by its tree, not by a name nothing runs under.
    let (code, out, err) = logs(&[&tree, "talker"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("said-by-talker") && !out.contains("said-by-quiet"),
        "{out}"
    );
    let (code, _, err) = logs(&["e2e-logs", "talker"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give its tree: podc logs TREE [APP]"), "{err}");
    let (code, _, err) = logs(&[&tree, "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pod e2e-logs has no app \"nope\""), "{err}");
    pod.assert_nothing_left();
}

/// One tree keeps one machine id across launches (so one journal directory on the host): the
/// id derived from the host's machine id, the tree's path and the pod's name.
#[test]
fn e2e_machine_id_is_kept_across_launches() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-id
target: {cgroup: v1, systemd: 252}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/true"]
"#;
    let mut pod = Pod::start("e2e-id", manifest, &["a"]);
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    let first = fs::read_to_string(pod.tree.join("rootfs/etc/machine-id")).unwrap();
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    let second = fs::read_to_string(pod.tree.join("rootfs/etc/machine-id")).unwrap();
    assert_eq!(
        first, second,
        "the pod's machine id changed between launches"
    );
    if let Some(host) = Host::detect().machine_id {
        let tree = pod.tree.canonicalize().unwrap();
        assert_eq!(
            first.trim_end(),
            launch::pod_machine_id(&host, &tree, "e2e-id")
        );
    }
    pod.assert_nothing_left();
}

/// Clear errors for a missing image, before anything is mounted.
#[test]
fn e2e_missing_image_is_an_error() {
    let Some(_turn) = e2e() else { return };
    let work = tempfile::tempdir().unwrap();
    let manifest =
        "podc: 1\nname: gone\napps:\n  - {name: a, image: /nonexistent/image, exec: [/bin/true]}\n";
    fs::write(work.path().join("pod.yaml"), in_test_userns(manifest)).unwrap();
    assert!(podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "b"])
        .status()
        .unwrap()
        .success());
    let o = podc()
        .arg("launch")
        .arg(work.path().join("b/gone"))
        .env("PODC_USERNS_DIR", work.path().join("userns"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/image: does not exist"));
}

/// Secret bytes of the config-and-secrets pods: distinctive, and hostile for an environment
/// file (quotes, `$`, backquote, backslashes, `%`, a tab, non-ASCII, trailing blanks).
const PASSWORD: &str = "pw-7f3a9 \"q\" 'single' $HOME ${X} \\back\\ `tick` %d\té✓ end  ";
const PASSWORD_2: &str = "pw2-c41d8 changed";
/// A whole-file secret with a line break inside; its final line break is not the value's.
const TOKEN: &str = "tok-5b2e1 first line\nsecond line";

/// Processes whose command line holds `marker` (an app's `$0`).
fn pids_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Every file below `dir` (not following links) that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            found.extend(files_holding(&e.path(), needle));
        } else if t.is_file() {
            let bytes = fs::read(e.path()).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(e.path());
            }
        }
    }
    found
}

/// The pod's journal, every field of every entry (`journalctl -o export`).
fn journal_export(tree: &Path) -> Vec<u8> {
    let o = Command::new("journalctl")
        .arg("-D")
        .arg(tree.join("rootfs/var/log/journal"))
        .args(["-o", "export", "--no-pager"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const ITEMS_MANIFEST: &str = r#"podc: 1
name: e2e-items
target: {cgroup: v1, systemd: 252}
config:
  - name: app-conf
    text: "log_level=debug\ncolor = blue\n"
  - name: greeting
    file: "@WORK@/greeting.txt"
secrets:
  - name: db
    file: "@WORK@/secrets/db.env"
  - name: token
    file: "@WORK@/secrets/token"
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: reader
    image: "@WORK@/images/a"
    user: 65534
    group: 65534
    exec:
      - /bin/sh
      - -c
      - |
        cat /run/secrets/db > /out/file.db
        cat /etc/app/app.conf > /out/file.conf
        cat /etc/app/greeting > /out/file.greeting
        stat -c '%a %u' /run/secrets/db > /out/file.db.stat
        printf %s "$DB_PASSWORD" > /out/env.DB_PASSWORD
        printf %s "$TOKEN" > /out/env.TOKEN
        printf %s "$LOG" > /out/env.LOG
        printf %s "$PLAIN" > /out/env.PLAIN
        echo reader-started-a81c
        touch /out/reader.ready
        while [ ! -e /out/stop ]; do sleep 0.1; done
      - podc-e2e-app-reader
    environment:
      PLAIN: plain value
      DB_PASSWORD: {secret: db, key: password}
      TOKEN: {secret: token}
      LOG: {config: app-conf, key: log_level}
    mounts:
      - {volume: out, path: /out}
      - {secret: db, path: /run/secrets/db}
      - {config: app-conf, path: /etc/app/app.conf}
      - {config: greeting, path: /etc/app/greeting}
  - name: other
    image: "@WORK@/images/a"
    exec:
      - /bin/sh
      - -c
      - |
        if [ -e /run/secrets/db ] || [ -e /etc/app/app.conf ]; then echo yes; else echo no; fi > /out/other.sees
        touch /out/other.ready
        while [ ! -e /out/stop ]; do sleep 0.1; done
      - podc-e2e-app-other
    mounts:
      - {volume: out, path: /out}
"#;

/// Writes the secrets and the config file of `ITEMS_MANIFEST` into the work directory.
fn write_items(work: &Path, password: &str) {
    use std::os::unix::fs::PermissionsExt;
    let secrets = work.join("secrets");
    fs::create_dir_all(&secrets).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(
        secrets.join("db.env"),
        format!("# the shop's database\nuser=app\npassword={password}\n"),
    )
    .unwrap();
    fs::write(secrets.join("token"), format!("{TOKEN}\n")).unwrap();
    for f in ["db.env", "token"] {
        fs::set_permissions(secrets.join(f), fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::write(work.join("greeting.txt"), "hello from a host file\n").unwrap();
}

/// A plan's config and secret steps are held to their rules: a secret always comes from a
/// host file named by a normal absolute path, names are names, variables are variable names,
/// apps are the pod's.
#[test]
fn launch_refuses_an_edited_plan_of_config_and_secrets() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/config-and-secrets.yaml");
    assert!(podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("shop");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str, &str)] = &[
        (
            "a secret from the tree",
            "name = \"db\"\nsource = \"/etc/podc/secrets/shop-db.env\"\napps",
            "name = \"db\"\napps",
            "(credential): secret \"db\" has no source: a secret is never in the tree",
        ),
        (
            "a relative source",
            "source = \"/etc/ssl/certs/ca-certificates.crt\"",
            "source = \"../../etc/shadow\"",
            "(credential): source \"../../etc/shadow\" is not an absolute path in normal form",
        ),
        (
            "a name with a slash",
            "name = \"app-conf\"\napps",
            "name = \"../app-conf\"\napps",
            "(credential): config \"../app-conf\" is not a name",
        ),
        (
            "no app takes it",
            "apps = [\"web\"]",
            "apps = []",
            "(credential): apps lists no app",
        ),
        (
            "an app of another pod",
            "app = \"web\"\nvariable = \"API_TOKEN\"",
            "app = \"ghost\"\nvariable = \"API_TOKEN\"",
            "(env): app \"ghost\" is not an app of the pod",
        ),
        (
            "a variable that is not one",
            "variable = \"DB_USER\"",
            "variable = \"DB USER\"",
            "(env): variable \"DB USER\" is not a variable name",
        ),
        (
            "a key that is not one",
            "key = \"password\"",
            "key = \"pass word\"",
            "(env): key \"pass word\" is not a variable name",
        ),
        (
            "an unknown kind",
            "kind = \"secret\"\nname = \"db\"\nsource",
            "kind = \"file\"\nname = \"db\"\nsource",
            "unknown variant `file`, expected `config` or `secret`",
        ),
    ];
    for (what, from, to, says) in edits {
        assert!(plan.contains(from), "{what}: the plan has no {from:?}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(o.stdout.is_empty(), "{what}: printed a plan");
    }
}

/// A plan's `env-all` steps are held to their rules, and `--dry-run` says where every key
/// comes from (a directory's files, a file's lines, the tree's text), never reading one.
#[test]
fn launch_shows_and_checks_the_plan_of_environment_from() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/environment-from.yaml");
    assert!(podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("shop");
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for says in [
        format!("    every key of config defaults, from the lines of {}/rootfs/etc/podc/config/defaults (not DB_password MODE: the app's own)\n", tree.display()),
        "    every key of config shop-env, from the files of /etc/podc/configmaps/shop-env (not DB_password MODE: the app's own)\n".to_string(),
        "    every key of secret db as DB_<key>, from the files of /etc/podc/secrets/db (not DB_password MODE: the app's own)\n".to_string(),
        "    every key of secret api as API_<key>, from the lines of /etc/podc/secrets/api.env (not DB_password MODE: the app's own)\n".to_string(),
        "    DB_password = secret api, key db_password, from /etc/podc/secrets/api.env\n".to_string(),
        format!("write {}/rootfs/etc/podc/env/worker (mode 0600; app worker's variables from config and secrets, read now):\n    every key of secret db, from the files of /etc/podc/secrets/db\n", tree.display()),
    ] {
        assert!(text.contains(&says), "want {says:?} in:\n{text}");
    }
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let edits: &[(&str, &str, &str)] = &[
        (
            "dir = \"/etc/podc/secrets/db\"\nprefix",
            "dir = \"secrets/db\"\nprefix",
            "(env-all): dir \"secrets/db\" is not an absolute path in normal form",
        ),
        (
            "prefix = \"DB_\"",
            "prefix = \"1DB\"",
            "(env-all): prefix \"1DB\" cannot start a variable name",
        ),
        (
            "given = [\"DB_password\", \"MODE\"]",
            "given = [\"A B\"]",
            "(env-all): given \"A B\" is not a variable name",
        ),
        (
            "name = \"db\"\ndir",
            "name = \"db\"\nsource = \"/etc/db\"\ndir",
            "(env-all): it has both a source and a dir",
        ),
        (
            "kind = \"secret\"\nname = \"db\"\ndir = \"/etc/podc/secrets/db\"\nprefix",
            "kind = \"secret\"\nname = \"db\"\nprefix",
            "(env-all): secret \"db\" has no source: a secret is never in the tree",
        ),
    ];
    for (from, to, says) in edits {
        assert!(plan.contains(from), "the plan has no {from:?}:\n{plan}");
        fs::write(tree.join("mounts.toml"), plan.replacen(from, to, 1)).unwrap();
        let o = podc()
            .args(["launch", "--dry-run"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "want {says:?} in:\n{err}");
    }
}

/// `--dry-run` names each config item and secret and where it is read, never reading one;
/// `--check` reads them as the launch would and names every problem.
#[test]
fn dry_run_and_check_name_config_and_secrets() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_image(&w.join("images/a"));
    write_items(w, PASSWORD);
    fs::create_dir(w.join("out")).unwrap();
    fs::write(
        w.join("pod.yaml"),
        ITEMS_MANIFEST.replace("@WORK@", w.to_str().unwrap()),
    )
    .unwrap();
    assert!(podc()
        .current_dir(w)
        .args(["build", "pod.yaml", "-o", "b"])
        .status()
        .unwrap()
        .success());
    let tree = w.join("b/e2e-items");
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    let secrets = w.join("secrets");
    for says in [
        format!("mount tmpfs {}/rootfs/etc/podc/env\n", tree.display()),
        format!("write {}/rootfs/etc/podc/env/reader (mode 0600; app reader's variables from config and secrets, read now):\n", tree.display()),
        format!("    DB_PASSWORD = secret db, key password, from {}/db.env\n", secrets.display()),
        format!("    LOG = config app-conf, key log_level, from {}/rootfs/etc/podc/config/app-conf\n", tree.display()),
        format!("    TOKEN = secret token, from {}/token\n", secrets.display()),
        format!("  --load-credential=podc.secret.db:{}/db.env\n", secrets.display()),
        format!("  --load-credential=podc.config.greeting:{}/greeting.txt\n", w.display()),
        format!("  --load-credential=podc.config.app-conf:{}/rootfs/etc/podc/config/app-conf\n", tree.display()),
    ] {
        assert!(text.contains(&says), "want {says:?} in:\n{text}");
    }
    assert!(
        !text.contains("pw-7f3a9") && !text.contains("tok-5b2e1"),
        "{text}"
    );
    if !common::on_path("systemd-nspawn") {
        common::skip("the --check half: systemd-nspawn is missing (package systemd-container)");
        return;
    }
    // Every problem: a missing secret, and (read as root) a key its file lacks.
    fs::remove_file(secrets.join("token")).unwrap();
    fs::write(secrets.join("db.env"), "user=app\n").unwrap();
    let o = podc()
        .args(["launch", "--check"])
        .arg(&tree)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let mut want = vec![format!(
        "pod e2e-items, app reader: secret token: {}/token: cannot read it: No such file or directory",
        secrets.display()
    )];
    if podc::sys::effective_uid() == 0 {
        want.push(format!(
            "pod e2e-items, app reader: secret db: {}/db.env: has no line `password=...`",
            secrets.display()
        ));
    }
    for says in want {
        assert!(err.contains(&says), "want {says:?} in:\n{err}");
    }
    write_items(w, PASSWORD);
    let o = podc()
        .args(["launch", "--check"])
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Config items and secrets reach an app as files (systemd credentials: the app's user only)
/// and as variables (byte-exact, hostile bytes included), while another app of the pod sees
/// neither; no secret byte is anywhere in the tree (while the pod runs, seen from the host,
/// and after), in POD.md, mounts.toml, the launcher's output, `--dry-run`, `podc kube`, the
/// pod's journal, or another process's environment. A changed secret is read at the next
/// launch.
#[test]
fn e2e_config_and_secrets_reach_apps_as_files_and_variables() {
    let Some(_turn) = e2e() else { return };
    let mut pod = Pod::start_with("e2e-items", ITEMS_MANIFEST, &["a"], |w| {
        write_items(w, PASSWORD)
    });
    pod.wait_for(&["reader.ready", "other.ready"]);
    // As files: the bytes, mode 0400 owned by the app's user.
    let db = format!("# the shop's database\nuser=app\npassword={PASSWORD}\n");
    assert_eq!(pod.read("file.db"), db);
    assert_eq!(pod.read("file.db.stat").trim(), "400 65534");
    assert_eq!(pod.read("file.conf"), "log_level=debug\ncolor = blue\n");
    assert_eq!(pod.read("file.greeting"), "hello from a host file\n");
    // As variables: the key's value, the whole file without its final line break.
    assert_eq!(pod.read("env.DB_PASSWORD"), PASSWORD);
    assert_eq!(pod.read("env.TOKEN"), TOKEN);
    assert_eq!(pod.read("env.LOG"), "debug");
    assert_eq!(pod.read("env.PLAIN"), "plain value");
    assert_eq!(pod.read("other.sees").trim(), "no");

    // The environments of the pod's processes, read from the host: the reader has its
    // variables (the check can fail), the other app and the pod's systemd have none.
    let environ = |marker: &str| -> Vec<u8> {
        let pids = pids_with(marker);
        assert!(!pids.is_empty(), "no process of {marker}:\n{}", pod.log());
        pids.iter()
            .flat_map(|p| fs::read(format!("/proc/{p}/environ")).unwrap_or_default())
            .collect()
    };
    let reader = environ("podc-e2e-app-reader");
    assert!(holds(&reader, &format!("DB_PASSWORD={PASSWORD}\0")));
    assert!(holds(&reader, &format!("TOKEN={TOKEN}\0")));
    let other = environ("podc-e2e-app-other");
    let init = fs::read(format!("/proc/{}/environ", pod.leader())).unwrap();
    for secret in ["pw-7f3a9", "tok-5b2e1"] {
        assert!(
            !holds(&other, secret),
            "{secret} in the other app's environment"
        );
        assert!(
            !holds(&init, secret),
            "{secret} in the pod's systemd's environment"
        );
    }

    // The tree, seen from the host while the pod runs (the launcher's tmpfs and systemd's
    // credentials are in their own mount namespaces): the config text is there (the search
    // can find what it looks for), no secret byte is.
    assert!(!files_holding(&pod.tree, b"log_level=debug").is_empty());
    let secret_places = |pod: &Pod| -> Vec<String> {
        let mut places = Vec::new();
        for secret in ["pw-7f3a9", "tok-5b2e1", "second line", "pw2-c41d8"] {
            for f in files_holding(&pod.tree, secret.as_bytes()) {
                places.push(format!("{secret} in {}", f.display()));
            }
            if holds(pod.log().as_bytes(), secret) {
                places.push(format!("{secret} in the launcher's output"));
            }
        }
        places
    };
    assert_eq!(secret_places(&pod), Vec::<String>::new());

    fs::write(pod.out("stop"), "").unwrap();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(secret_places(&pod), Vec::<String>::new());
    let journal = journal_export(&pod.tree);
    assert!(
        holds(&journal, "reader-started-a81c"),
        "the journal holds the app's output"
    );
    for secret in ["pw-7f3a9", "tok-5b2e1", "second line"] {
        assert!(!holds(&journal, secret), "{secret} in the pod's journal");
    }
    assert_dry_run_and_kube_hide(
        &pod,
        &[
            "--image",
            "reader=r.example/a:1",
            "--image",
            "other=r.example/a:1",
        ],
        "db",
        &["pw-7f3a9", "tok-5b2e1"],
    );

    // A changed secret is what the next launch reads.
    write_items(pod.work.path(), PASSWORD_2);
    for f in [
        "reader.ready",
        "other.ready",
        "env.DB_PASSWORD",
        "file.db",
        "stop",
    ] {
        let _ = fs::remove_file(pod.out(f));
    }
    pod.launch();
    pod.wait_for(&["reader.ready"]);
    assert_eq!(pod.read("env.DB_PASSWORD"), PASSWORD_2);
    assert!(pod
        .read("file.db")
        .contains(&format!("password={PASSWORD_2}\n")));
    fs::write(pod.out("stop"), "").unwrap();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(secret_places(&pod), Vec::<String>::new());
    pod.assert_nothing_left();
}

const ENVDIR_MANIFEST: &str = r#"podc: 1
name: e2e-envdir
target: {cgroup: v1, systemd: 252}
config:
  - name: settings
    dir: "@WORK@/configmaps/settings"
secrets:
  - name: creds
    dir: "@WORK@/secrets/creds"
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: reader
    image: "@WORK@/images/a"
    user: 65534
    group: 65534
    exec:
      - /bin/sh
      - -c
      - |
        printf %s "$DB_password" > /out/env.DB_password
        printf %s "$LOG_LEVEL" > /out/env.LOG_LEVEL
        printf %s "$COLOR" > /out/env.COLOR
        env | cut -d= -f1 | sort > /out/env.names
        echo envdir-started-c93e
        touch /out/reader.ready
        while [ ! -e /out/stop ]; do sleep 0.1; done
      - podc-e2e-app-reader
    environment:
      COLOR: from the manifest
    environmentFrom:
      - {config: settings}
      - {secret: creds, prefix: DB_}
    mounts:
      - {volume: out, path: /out}
"#;

/// A secret key's value, hostile bytes and a final line break included (kept: as Kubernetes
/// keeps a key's value byte for byte).
const DIR_PASSWORD: &str = "pwd-8e1c4 \"q\" 'single' $HOME ${X} \\back\\ `tick` %d\té✓ end \n";
/// The value of a key that is not a variable name with the prefix: never read.
const DIR_SKIPPED: &str = "apikey-0b7d2 never read";

/// The directories of `ENVDIR_MANIFEST`: a secret of two keys (`api-key` is no variable name,
/// even with the prefix) and a config item whose `DB_password` the later secret overrides and
/// whose `COLOR` the app's own environment does.
fn write_dirs(work: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let creds = work.join("secrets/creds");
    fs::create_dir_all(&creds).unwrap();
    fs::set_permissions(work.join("secrets"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(creds.join("password"), DIR_PASSWORD).unwrap();
    fs::write(creds.join("api-key"), DIR_SKIPPED).unwrap();
    let settings = work.join("configmaps/settings");
    fs::create_dir_all(&settings).unwrap();
    for (k, v) in [
        ("LOG_LEVEL", "debug"),
        ("COLOR", "from the config"),
        ("DB_password", "from the config"),
    ] {
        fs::write(settings.join(k), v).unwrap();
    }
}

/// Every key of a secret directory and a config directory reaches the app as variables
/// (`environmentFrom`, one with a prefix): byte for byte, a later item winning, the app's own
/// `environment` over all, a key that is no variable name skipped and named (never its value)
/// in the launcher's log. No secret byte is in the tree (units, POD.md, mounts.toml), the
/// launcher's log, `--dry-run`, `podc kube` or the pod's journal. A directory mounted at a
/// path is refused by the build (systemd credentials are single files), and a missing
/// directory stops the launch naming the app and the item.
#[test]
fn e2e_every_key_of_directories_reaches_an_app_as_variables() {
    let Some(_turn) = e2e() else { return };
    let mut pod = Pod::start_with("e2e-envdir", ENVDIR_MANIFEST, &["a"], write_dirs);
    pod.wait_for(&["reader.ready"]);
    assert_eq!(pod.read("env.DB_password"), DIR_PASSWORD);
    assert_eq!(pod.read("env.LOG_LEVEL"), "debug");
    assert_eq!(pod.read("env.COLOR"), "from the manifest");
    let names = pod.read("env.names");
    assert!(names.lines().any(|n| n == "DB_password"), "{names}");
    assert!(
        !names.contains("api"),
        "a skipped key is a variable:\n{names}"
    );
    let creds = pod.work.path().join("secrets/creds");
    let log = pod.log();
    let says = format!(
        "podc launch: pod e2e-envdir, app reader: secret creds: {}: skipped keys that are not variable names with the prefix DB_: api-key\n",
        creds.display()
    );
    assert!(log.contains(&says), "want {says:?} in:\n{log}");

    let secret_places = |pod: &Pod| -> Vec<String> {
        let mut places = Vec::new();
        for secret in ["pwd-8e1c4", "apikey-0b7d2"] {
            for f in files_holding(&pod.tree, secret.as_bytes()) {
                places.push(format!("{secret} in {}", f.display()));
            }
            if holds(pod.log().as_bytes(), secret) {
                places.push(format!("{secret} in the launcher's output"));
            }
        }
        places
    };
    assert_eq!(secret_places(&pod), Vec::<String>::new());
    // The search finds what is there: the units name the items and where they come from.
    let unit =
        fs::read_to_string(pod.tree.join("rootfs/etc/systemd/system/reader.service")).unwrap();
    assert!(
        unit.contains("the keys of config settings, then secret creds (as DB_<key>)"),
        "{unit}"
    );
    assert!(!files_holding(&pod.tree, b"secrets/creds").is_empty());

    fs::write(pod.out("stop"), "").unwrap();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(secret_places(&pod), Vec::<String>::new());
    let journal = journal_export(&pod.tree);
    assert!(
        holds(&journal, "envdir-started-c93e"),
        "the journal holds the app's output"
    );
    for secret in ["pwd-8e1c4", "apikey-0b7d2"] {
        assert!(!holds(&journal, secret), "{secret} in the pod's journal");
    }
    assert_dry_run_and_kube_hide(
        &pod,
        &["--image", "reader=r.example/a:1"],
        "creds",
        &["pwd-8e1c4", "apikey-0b7d2"],
    );

    // Mounted at a path, the directory is refused by the build, saying what to do instead.
    let mounted = fs::read_to_string(pod.work.path().join("pod.yaml"))
        .unwrap()
        .replace(
            "      - {volume: out, path: /out}\n",
            "      - {volume: out, path: /out}\n      - {secret: creds, path: /run/secrets/creds}\n",
        );
    fs::write(pod.work.path().join("mounted.yaml"), mounted).unwrap();
    let o = podc()
        .current_dir(pod.work.path())
        .args(["check", "mounted.yaml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[P0650]: secret \"creds\" is a directory, which cannot be mounted"),
        "{err}"
    );

    // A missing directory stops the next launch before anything is done.
    fs::remove_dir_all(&creds).unwrap();
    for f in [
        "reader.ready",
        "env.DB_password",
        "env.LOG_LEVEL",
        "env.COLOR",
        "env.names",
        "stop",
    ] {
        let _ = fs::remove_file(pod.out(f));
    }
    fs::write(pod.work.path().join("launch.log"), "").unwrap();
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    assert_eq!(code, 2, "{log}");
    let says = format!(
        "pod e2e-envdir, app reader: secret creds: {}: cannot read it: No such file or directory",
        creds.display()
    );
    assert!(log.contains(&says), "want {says:?} in:\n{log}");
    assert!(log.contains("nothing was started"), "{log}");
    assert!(!pod.out("reader.ready").exists(), "the app ran");
    pod.assert_nothing_left();
}

/// A secret the host does not have stops the launch before anything is done: the error names
/// the pod, the app and the secret, no app runs, and the tree is untouched (no machine id, no
/// journal). So does a key the secret file lacks.
#[test]
fn e2e_missing_secret_fails_the_launch_and_nothing_runs() {
    let Some(_turn) = e2e() else { return };
    let mut pod = Pod::build("e2e-items", ITEMS_MANIFEST, &["a"], |w| {
        write_items(w, PASSWORD);
        fs::remove_file(w.join("secrets/token")).unwrap();
    });
    let token = pod.work.path().join("secrets/token");
    let cases = [
        format!(
            "pod e2e-items, app reader: secret token: {}: cannot read it: No such file or directory",
            token.display()
        ),
        "pod e2e-items, app reader: secret db: ".to_string() + &format!("{}: has no line `password=...`", pod.work.path().join("secrets/db.env").display()),
    ];
    for (i, says) in cases.iter().enumerate() {
        if i == 1 {
            write_items(pod.work.path(), PASSWORD);
            fs::write(pod.work.path().join("secrets/db.env"), "user=app\n").unwrap();
        }
        pod.launch();
        let (code, took) = pod.wait();
        let log = pod.log();
        assert_eq!(code, 2, "{log}");
        assert!(log.contains(says), "want {says:?} in:\n{log}");
        assert!(log.contains("nothing was started"), "{log}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        for secret in ["pw-7f3a9", "tok-5b2e1"] {
            assert!(!log.contains(secret), "{secret} in the launcher's output");
        }
        assert!(
            fs::read_dir(pod.work.path().join("out"))
                .unwrap()
                .next()
                .is_none(),
            "an app ran"
        );
        for never in ["rootfs/etc/machine-id", "rootfs/var/log/journal", "state"] {
            assert!(!pod.tree.join(never).exists(), "{never} was made");
        }
        fs::write(pod.work.path().join("launch.log"), "").unwrap();
    }
    pod.assert_nothing_left();
}

/// podc's default sandbox holds for a root app: no kernel modules, no /proc/kcore or
/// /proc/keys, no capability outside the default set (mount needs CAP_SYS_ADMIN), no way out of
/// the chroot through /proc/1/root, no writes to /proc/sys, a private /dev; an app that relaxes
/// a part gets that part back and keeps the rest.
#[test]
fn e2e_default_sandbox() {
    let Some(_turn) = e2e() else { return };
    let probe = r#"r() { if sh -c "$2" >/dev/null 2>&1; then echo "$1 allowed"; else echo "$1 denied"; fi; }
r insmod 'insmod /bogus.ko'
r kcore 'test "$(head -c 1 /proc/kcore | wc -c)" -gt 0'
r keys 'test "$(wc -c < /proc/keys)" -gt 0'
r mount 'mkdir -p /mnt && mount -t tmpfs none /mnt'
r escape 'cat /proc/1/root/etc/machine-id'
r sysctl 'echo 60 > /proc/sys/vm/swappiness'
r mknod 'mknod /dev/x b 7 0'
grep CapBnd /proc/self/status"#;
    let manifest = format!(
        r#"podc: 1
name: e2e-sandbox
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: strict
    image: "@WORK@/images/strict"
    exec: ["/bin/sh", "-c", {probe_strict}]
    mounts: [{{volume: out, path: /out}}]
  - name: relaxed
    image: "@WORK@/images/relaxed"
    exec: ["/bin/sh", "-c", {probe_relaxed}]
    isolators:
      relax: [devices]
    mounts: [{{volume: out, path: /out}}]
  - name: nocaps
    image: "@WORK@/images/nocaps"
    exec: ["/bin/sh", "-c", "grep CapBnd /proc/self/status > /out/nocaps.txt"]
    isolators:
      capabilities: {{retain: []}}
    mounts: [{{volume: out, path: /out}}]
"#,
        probe_strict = serde_json::to_string(&format!("({probe}) > /out/strict.txt")).unwrap(),
        probe_relaxed = serde_json::to_string(&format!("({probe}) > /out/relaxed.txt")).unwrap(),
    );
    let mut pod = Pod::start("e2e-sandbox", &manifest, &["strict", "relaxed", "nocaps"]);
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let strict = pod.read("strict.txt");
    for line in [
        "insmod denied",
        "kcore denied",
        "keys denied",
        "mount denied",
        "escape denied",
        "sysctl denied",
        "mknod denied",
    ] {
        assert!(
            strict.lines().any(|l| l == line),
            "want {line:?} in:\n{strict}"
        );
    }
    // The default bounding set: the 14 capabilities of Docker and rkt, less CAP_MKNOD, which
    // PrivateDevices= takes away (a8 → a0 in the high byte). In a user namespace of its own on
    // the host's network, also less CAP_NET_BIND_SERVICE (0x400), which nspawn takes away
    // there: the host's network is the host's user namespace's, where the pod's root holds
    // no capability, so no port below 1024 can be bound whatever the set says.
    let (strict_set, relaxed_set) = if own_users(&manifest) {
        ("a00421fb", "a80421fb")
    } else {
        ("a00425fb", "a80425fb")
    };
    assert!(
        strict.contains(&format!("CapBnd:\t00000000{strict_set}")),
        "{strict}"
    );
    // An app that relaxes the private /dev keeps CAP_MKNOD and may make a node in the
    // container's /dev; the rest of the sandbox stays. In a user namespace of its own it still
    // may not: the kernel makes device nodes only for the host's user namespace.
    let relaxed = pod.read("relaxed.txt");
    for line in [
        if own_users(&manifest) {
            "mknod denied"
        } else {
            "mknod allowed"
        },
        "insmod denied",
        "mount denied",
        "escape denied",
        "sysctl denied",
    ] {
        assert!(
            relaxed.lines().any(|l| l == line),
            "want {line:?} in:\n{relaxed}"
        );
    }
    assert!(
        relaxed.contains(&format!("CapBnd:\t00000000{relaxed_set}")),
        "{relaxed}"
    );
    // `capabilities: {retain: []}` is an empty bounding set.
    assert_eq!(pod.read("nocaps.txt"), "CapBnd:\t0000000000000000\n");
    pod.assert_nothing_left();
}

/// Host mounts a test makes, unmounted (deepest first) when it ends however it ends.
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn tmpfs(&mut self, at: &Path, options: &str) {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        self.0.push(at.to_path_buf());
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = Command::new("umount").arg(at).status();
        }
    }
}

/// A read-only volume is read-only all the way down and keeps its source's flags: a submount
/// of the source is read-only too (a plain read-only remount of the top mount left it writable:
/// this test saw `sub-writable`), and a `noexec` source stays `noexec`.
#[test]
fn e2e_read_only_volumes_are_read_only_all_the_way_down() {
    let Some(_turn) = e2e() else { return };
    let src = tempfile::Builder::new()
        .prefix("podc-e2e-rosrc-")
        .tempdir()
        .unwrap();
    let mut mounts = HostMounts(Vec::new());
    let top = src.path().join("top");
    mounts.tmpfs(&top, "mode=0777,nosuid,nodev,noexec");
    fs::copy(busybox(), top.join("bb")).unwrap();
    mounts.tmpfs(&top.join("sub"), "mode=0777");
    let probe = "touch /ro/x 2>/dev/null && echo top-writable; \
                 touch /ro/sub/x 2>/dev/null && echo sub-writable; \
                 /ro/bb true 2>/dev/null && echo exec-allowed; \
                 echo done";
    let manifest = format!(
        r#"podc: 1
name: e2e-ro
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: ro, kind: host, source: "{}", readOnly: true}}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", {}]
    mounts: [{{volume: out, path: /out}}, {{volume: ro, path: /ro}}]
"#,
        top.display(),
        serde_json::to_string(&format!("({probe}) > /out/ro.txt")).unwrap()
    );
    let mut pod = Pod::start("e2e-ro", &manifest, &["a"]);
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(pod.read("ro.txt"), "done\n");
    pod.assert_nothing_left();
    drop(mounts);
}

/// Volumes under /run and /dev are what the app sees there, not hidden under the /run and /dev
/// that systemd mounts over the app's root (they are bound again with BindPaths=).
#[test]
fn e2e_volumes_under_run_and_dev_are_visible() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-api
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
  - {name: shared, kind: host, source: "@WORK@/shared"}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", "echo run > /run/out/run.txt; echo shm > /dev/shm/shm.txt"]
    mounts: [{volume: out, path: /run/out}, {volume: shared, path: /dev/shm}]
"#;
    let mut pod = Pod::start("e2e-api", manifest, &["a"]);
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(pod.read("run.txt"), "run\n");
    let shm = pod.work.path().join("shared/shm.txt");
    assert_eq!(fs::read_to_string(&shm).unwrap_or_default(), "shm\n");
    pod.assert_nothing_left();
}

/// User and group names resolve as the app's own image says (its /etc/passwd and /etc/group),
/// as in rkt; before, a name only the image knew made the app fail with 217/USER. A name the
/// image does not know stops the launch with a message naming the app and the name.
#[test]
fn e2e_user_and_group_names_come_from_the_image() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-names
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: named
    image: "@WORK@/images/named"
    exec: ["/bin/sh", "-c", "id -u > /out/ids; id -g >> /out/ids; id -G >> /out/ids"]
    user: appuser
    group: appgroup
    supplementaryGroups: [extra]
    mounts: [{volume: out, path: /out}]
"#;
    let users = |work: &Path| {
        let etc = work.join("images/named/etc");
        fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/sh\nappuser:x:4321:4322::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            etc.join("group"),
            "root:x:0:\nappgroup:x:4322:\nextra:x:4323:appuser\n",
        )
        .unwrap();
    };
    let mut pod = Pod::start_with("e2e-names", manifest, &["named"], users);
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(pod.read("ids"), "4321\n4322\n4322 4323\n");
    pod.assert_nothing_left();

    let missing = manifest
        .replace("user: appuser", "user: ghost")
        .replace("name: e2e-names", "name: e2e-names-missing");
    let mut pod = Pod::start_with("e2e-names-missing", &missing, &["named"], users);
    let (code, _) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    assert!(
        pod.log()
            .contains("app named: user \"ghost\" is not in its image's"),
        "{}",
        pod.log()
    );
    pod.assert_nothing_left();
}

/// Every entry of a directory tree: type, mode, owner, size, content or link target.
fn tree_state(dir: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {:?}", fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                format!("file {:?}", fs::read(&p).unwrap().len())
            };
            let key = p.strip_prefix(dir).unwrap().to_path_buf();
            out.insert(
                key,
                format!(
                    "{what} {:o} {}:{} {}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.mtime()
                ),
            );
        }
    }
    out
}

/// A pod never changes its images: a root app that writes to /, deletes a file of the image and
/// has a volume at a path the image lacks leaves the image's tree exactly as it was; the writes
/// are in the pod's own layer (TREE/state/<app>/upper).
#[test]
fn e2e_a_pod_never_changes_its_image() {
    let Some(_turn) = e2e() else { return };
    let manifest = r#"podc: 1
name: e2e-image
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: scratch, kind: empty}
apps:
  - name: writer
    image: "@WORK@/images/writer"
    exec: ["/bin/sh", "-c", "echo x > /written && rm /bin/ls && echo y > /newdir/vol/f"]
    mounts: [{volume: scratch, path: /newdir/vol}]
"#;
    let before = std::cell::RefCell::new(BTreeMap::new());
    let mut pod = Pod::start_with("e2e-image", manifest, &["writer"], |work| {
        *before.borrow_mut() = tree_state(&work.join("images/writer"));
    });
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let image = pod.work.path().join("images/writer");
    assert!(
        !image.join("newdir").exists(),
        "a mount point was made in the image"
    );
    assert!(
        image.join("bin/ls").exists(),
        "the app's delete reached the image"
    );
    assert_eq!(before.into_inner(), tree_state(&image), "the image changed");
    let upper = pod.tree.join("state/writer/upper");
    assert_eq!(fs::read_to_string(upper.join("written")).unwrap(), "x\n");
    pod.assert_nothing_left();
}

/// A mount path that goes through a symbolic link in the image is refused before anything is
/// mounted, so an image cannot aim a volume at the host's /etc.
#[test]
fn e2e_symlink_in_image_is_refused() {
    let Some(_turn) = e2e() else { return };
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("image");
    make_image(&image);
    fs::create_dir_all(image.join("srv")).unwrap();
    let trap = format!("podc-e2e-trap-{}", std::process::id());
    std::os::unix::fs::symlink("/etc", image.join("srv/www")).unwrap();
    fs::create_dir(work.path().join("data")).unwrap();
    let manifest = format!(
        "podc: 1\nname: trap\nvolumes:\n  - {{name: data, kind: host, source: {data:?}}}\napps:\n  - name: a\n    image: {image:?}\n    exec: [/bin/true]\n    mounts: [{{volume: data, path: /srv/www/{trap}}}]\n",
        data = work.path().join("data"),
        image = image,
    );
    fs::write(work.path().join("pod.yaml"), in_test_userns(&manifest)).unwrap();
    assert!(podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "b"])
        .status()
        .unwrap()
        .success());
    let o = podc()
        .arg("launch")
        .arg(work.path().join("b/trap"))
        .env("PODC_USERNS_DIR", work.path().join("userns"))
        .output()
        .unwrap();
    let made = Path::new("/etc").join(&trap);
    if made.exists() {
        let _ = fs::remove_dir(&made);
    }
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("srv/www: a mount point is reached through this symbolic link"),
        "{err}"
    );
    let made = Path::new("/etc").join(&trap);
    if made.exists() {
        let _ = fs::remove_dir(&made);
        panic!("a directory was made in the host's /etc");
    }
}

// Networking. Every connection goes to 127.0.0.1 (`loopback`), never elsewhere; pods with a
// private network have loopback only and no route anywhere.

/// The only address these tests connect to.
fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port))
}

/// A TCP port free on 127.0.0.1 (the kernel's pick; free again once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind(loopback(0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /` over HTTP/1.0 from 127.0.0.1:`port`: the response, or why there was none.
fn http_get(port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let addr = loopback(port);
    assert!(addr.ip().is_loopback());
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    s.read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    if response.is_empty() {
        return Err("closed without a response".into());
    }
    Ok(response)
}

/// Retries `GET /` until it answers; the response and the time since `since`.
fn first_answer(pod: &mut Pod, port: u16, since: Instant) -> (String, Duration) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match http_get(port) {
            Ok(r) => return (r, since.elapsed()),
            Err(e) => {
                if let Some(status) = pod.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "the pod ended ({status}) before it answered ({e}):\n{}",
                        pod.log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no answer on port {port}: {e}\n{}",
                    pod.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Median time of `n` more requests, each answered.
fn steady_state(port: u16, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            http_get(port).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn web_image(work: &Path, name: &str) {
    let www = work.join("images").join(name).join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "hello from the pod\n").unwrap();
}

/// A private pod answers on its published port (bound by the launcher, no socket handed over)
/// through the proxy to the app's own port; inside, the pod cannot reach a service on the
/// host's loopback, and the app's port is not on the host; once stopped, nothing is left and
/// the port is free again.
#[test]
fn e2e_private_pod_answers_on_its_published_port() {
    let Some(_turn) = e2e() else { return };
    let published = free_port();
    let inner = free_port();
    // A service on the host's loopback that the pod must not reach.
    let host_service = std::net::TcpListener::bind(loopback(0)).unwrap();
    host_service.set_nonblocking(true).unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    let manifest = format!(
        r#"podc: 1
name: net
network: private
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "{inner}", -h, /www]
    ports:
      - {{name: http, port: {inner}, hostPort: {published}, hostIP: 127.0.0.1}}
  - name: probe
    image: "@WORK@/images/probe"
    exec: [/bin/sh, -c, "if nc -w 2 127.0.0.1 {host_port} </dev/null; then echo reached; else echo unreachable; fi > /out/probe; ip -o link | wc -l > /out/links; ip route | wc -l > /out/routes"]
    mounts: [{{volume: out, path: /out}}]
"#
    );
    let mut pod = Pod::start_with("net", &manifest, &["web", "probe"], |w| web_image(w, "web"));
    let started = pod.started;
    let (response, first) = first_answer(&mut pod, published, started);
    assert!(response.contains("hello from the pod"), "{response}");
    let steady = steady_state(published, 21);
    eprintln!("private pod, launcher-bound port: first answer {first:?} after launch, then {steady:?} per request (median of 21)");
    pod.wait_for(&["probe", "links", "routes"]);
    assert_eq!(pod.read("probe").trim(), "unreachable");
    assert_eq!(pod.read("links").trim(), "1", "the pod has loopback only");
    assert_eq!(pod.read("routes").trim(), "0", "the pod has no route");
    assert!(
        matches!(host_service.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's loopback service was reached from the pod"
    );
    assert!(
        std::net::TcpStream::connect_timeout(&loopback(inner), Duration::from_secs(2)).is_err(),
        "the app's own port {inner} is open on the host"
    );
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
    std::net::TcpListener::bind(loopback(published)).expect("the published port is free again");
}

/// In a pod of its own user namespace (the default), an app that is not root serves port 80 of
/// the pod's private network: the launcher made that network namespace and opened its ports
/// below 1024 to every id of the pod (nspawn's own would be the pod's, where only its root
/// may); with the host's ids `podc build` refuses it (P0805).
#[test]
fn e2e_an_app_that_is_not_root_serves_port_80_of_its_private_network() {
    let Some(_turn) = e2e() else { return };
    let published = free_port();
    let manifest = format!(
        r#"podc: 1
name: low
network: private
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "80", -h, /www]
    user: 1000
    group: 1000
    ports:
      - {{name: http, port: 80, hostPort: {published}, hostIP: 127.0.0.1}}
"#
    );
    if !own_users(&manifest) {
        // The suite runs pods with the host's ids (PODC_TEST_USERNS=host): refused.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("low.yaml");
        let text = in_test_userns(&manifest).replace("@WORK@", &dir.path().display().to_string());
        fs::write(&file, text).unwrap();
        let o = podc()
            .arg("build")
            .arg(&file)
            .arg("-o")
            .arg(dir.path().join("b"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("error[P0805]"), "{err}");
        return;
    }
    let mut pod = Pod::start_with("low", &manifest, &["web"], |w| web_image(w, "web"));
    let started = pod.started;
    let (response, _) = first_answer(&mut pod, published, started);
    assert!(response.contains("hello from the pod"), "{response}");
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// A published port another process holds stops the launch before anything is mounted, with a
/// message that names the port.
#[test]
fn e2e_port_in_use_fails_the_launch() {
    let Some(_turn) = e2e() else { return };
    let held = std::net::TcpListener::bind(loopback(0)).unwrap();
    let port = held.local_addr().unwrap().port();
    let manifest = format!(
        r#"podc: 1
name: busy
network: private
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "8080"]
    ports: [{{port: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]
"#
    );
    let mut pod = Pod::start("busy", &manifest, &["web"]);
    let (code, took) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    let log = pod.log();
    assert!(
        log.contains(&format!("cannot listen on tcp 127.0.0.1:{port}"))
            && log.contains("another process holds it"),
        "{log}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    pod.assert_nothing_left();
}

/// Copies `binary` and the libraries `ldd` names into `image`, at the same paths.
fn copy_with_libraries(binary: &str, image: &Path) {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success(), "ldd {binary}");
    let mut paths = vec![binary.to_string()];
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            paths.push(p.to_string());
        }
    }
    for p in paths {
        let to = image.join(p.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&p, &to).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

/// Whether systemd-socket-proxyd (the socket-activated app of these tests) and ldd (which
/// finds the libraries it needs in its image) are here; where not, the test is skipped.
#[track_caller]
fn socket_proxyd_here() -> bool {
    let proxyd = podc::lower::SOCKET_PROXYD;
    if !Path::new(proxyd).exists() {
        common::skip(&format!("{proxyd} is missing (package systemd)"));
        return false;
    }
    common::tool("ldd", "libc-bin")
}

/// The host's socket is handed through (here by `systemd-socket-activate`, as systemd does with
/// podc-<pod>.socket): nothing runs until the first connection, which starts the whole pod;
/// systemd in the pod adopts the socket for an app that takes it (`activation: socket`; the app
/// is systemd-socket-proxyd, which relays to a web server in the pod's private network).
#[test]
fn e2e_first_connection_starts_the_pod_and_reaches_a_socket_activated_app() {
    let Some(_turn) = e2e() else { return };
    if !socket_proxyd_here() {
        return;
    }
    let proxyd = podc::lower::SOCKET_PROXYD;
    let published = free_port();
    let inner = free_port();
    let manifest = format!(
        r#"podc: 1
name: lazy
network: private
start: connection
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "127.0.0.1:{inner}", -h, /www]
  - name: relay
    image: "@WORK@/images/relay"
    exec: ["{proxyd}", "127.0.0.1:{inner}"]
    ports:
      - {{port: {published}, hostIP: 127.0.0.1, activation: socket}}
"#
    );
    let mut pod = Pod::build("lazy", &manifest, &["web", "relay"], |w| {
        web_image(w, "web");
        copy_with_libraries(proxyd, &w.join("images/relay"));
    });
    pod.wrapper = vec![
        "systemd-socket-activate".into(),
        "-l".into(),
        format!("127.0.0.1:{published}"),
    ];
    pod.launch();
    // Listening (seen in the kernel's socket table: a connection would start the pod), and
    // nothing started: the only process is the one waiting for a connection.
    let listening = |port: u16| {
        let table = fs::read_to_string("/proc/net/tcp").unwrap();
        let local = format!("0100007F:{port:04X} 00000000:0000 0A");
        table.lines().any(|l| l.contains(&local))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(published) {
        assert!(Instant::now() < deadline, "nothing listens:\n{}", pod.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let waiting: std::collections::BTreeSet<u32> = pod.cgroups.processes().into_iter().collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let t = Instant::now();
    let (response, first) = first_answer(&mut pod, published, t);
    assert!(response.contains("hello from the pod"), "{response}");
    let steady = steady_state(published, 21);
    eprintln!("socket-activated pod: first answer {first:?} after the first connection, then {steady:?} per request (median of 21)");
    let running: std::collections::BTreeSet<u32> = pod.cgroups.processes().into_iter().collect();
    assert!(running.len() > 3, "the pod is not running: {running:?}");
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// Two private pods, each serving the same inner port, publish different host ports side by
/// side: each answers on its own.
#[test]
fn e2e_two_pods_publish_different_ports_side_by_side() {
    let Some(_turn) = e2e() else { return };
    let manifest = |name: &str, port: u16| {
        format!(
            r#"podc: 1
name: {name}
network: private
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "8080", -h, /www]
    ports: [{{port: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]
"#
        )
    };
    let (a, b) = (free_port(), free_port());
    let mut one = Pod::start_with("one", &manifest("one", a), &["web"], |w| {
        web_image(w, "web")
    });
    let mut two = Pod::start_with("two", &manifest("two", b), &["web"], |w| {
        web_image(w, "web");
        fs::write(w.join("images/web/www/index.html"), "hello from pod two\n").unwrap();
    });
    let (ra, _) = first_answer(&mut one, a, Instant::now());
    let (rb, _) = first_answer(&mut two, b, Instant::now());
    assert!(ra.contains("hello from the pod"), "{ra}");
    assert!(rb.contains("hello from pod two"), "{rb}");
    for pod in [&mut one, &mut two] {
        pod.terminate();
        assert_eq!(pod.wait().0, 0, "{}", pod.log());
        pod.assert_nothing_left();
    }
}

/// Published ports: the launcher binds them first (before any mount) unless the host handed
/// the same number of sockets over; a private pod gets `--private-network`.
#[test]
fn launch_binds_published_ports_unless_handed_them() {
    let out = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/good/network-private-proxy.yaml");
    assert!(podc()
        .args(["build", fixture.to_str().unwrap(), "-o"])
        .arg(out.path())
        .status()
        .unwrap()
        .success());
    let tree = out.path().join("shop");
    let host = |listen_fds| Host {
        cgroups: BTreeMap::new(),
        systemd: true,
        notify: false,
        machine_id: None,
        listen_fds,
        images: Default::default(),
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: Some(PathBuf::from("/usr/bin/podc")),
        resources: Default::default(),
        nsdelegate: false,
    };
    let plan = || launch::read_plan(&tree).unwrap();
    let own = launch::prepare(&tree, plan(), &host(None)).unwrap();
    let shown: Vec<String> = own.actions.iter().map(|a| a.to_string()).collect();
    assert!(
        shown[0].starts_with("listen tcp 127.0.0.1:8080"),
        "{shown:?}"
    );
    assert!(shown[1].starts_with("listen tcp 9090"), "{shown:?}");
    assert!(shown[2].starts_with("unshare"), "{shown:?}");
    // In the pod's own user namespace the launcher makes the network namespace (loopback
    // only), so that every id of the pod may bind a port below 1024: no `--private-network`.
    assert!(
        shown
            .iter()
            .any(|a| a.contains("a network namespace nspawn runs in, with loopback only")),
        "{shown:?}"
    );
    assert!(!own.argv.contains(&"--private-network".to_string()));
    let handed = launch::prepare(&tree, plan(), &host(Some(2))).unwrap();
    assert!(!handed
        .actions
        .iter()
        .any(|a| a.to_string().starts_with("listen")));
    let wrong = launch::prepare(&tree, plan(), &host(Some(1))).unwrap_err();
    assert!(
        wrong.to_string().contains("1 sockets were handed"),
        "{wrong}"
    );
}

// ---------------------------------------------------------------------------------------------
// Images by reference (#13).

/// The OCI layout `layout` with image `tag`: busybox (with `sh`, `id`, `pwd`, `cat`, `echo`;
/// no mount points: systemd makes them in the pod's layer), `/srv/hello` owned by 1000:1000, a
/// user `hello` (1000:1000) in its `/etc/passwd`, and a config with every default podc takes:
/// Entrypoint (a bare name, found in the image's PATH) + Cmd, Env, WorkingDir and `user`. The
/// app writes what it got to `/out/<out>`. Returns the manifest's digest.
fn config_image(layout: &Path, tag: &str, user: &str, out: &str) -> String {
    use common::images;
    images::busybox_layout(layout, tag, &[]);
    images::change_layer(layout, tag, |rootfs| {
        fs::create_dir_all(rootfs.join("srv/hello")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/pwd")).unwrap();
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nhello:x:1000:1000::/srv/hello:/bin/sh\n",
        )
        .unwrap();
        fs::write(rootfs.join("etc/group"), "root:x:0:\nhello:x:1000:\n").unwrap();
        std::os::unix::fs::chown(rootfs.join("srv/hello"), Some(1000), Some(1000)).unwrap();
        fs::write(rootfs.join("srv/hello/file"), "original\n").unwrap();
        std::os::unix::fs::chown(rootfs.join("srv/hello/file"), Some(1000), Some(1000)).unwrap();
    });
    let script = format!(
        "echo \"$GREETING $FROM_MANIFEST in $(pwd) as $(id -u):$(id -g)\" > /out/{out} \
         && echo changed > /srv/hello/file && cat /srv/hello/file > /out/{out}-wrote"
    );
    let image = format!("{}:{tag}", layout.display());
    images::run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint=sh",
        "--config.cmd=-c",
        &format!("--config.cmd={script}"),
        "--config.env=PATH=/bin",
        "--config.env=GREETING=hello-from-the-image-config",
        "--config.env=FROM_MANIFEST=image-lost",
        "--config.workingdir=/srv/hello",
        &format!("--config.user={user}"),
    ]));
    images::layout_manifest(layout, tag).0
}

/// A pod whose app names a digest-pinned image and gives no exec, user or working directory
/// runs from the image store: the image's Entrypoint + Cmd, Env (where the manifest sets no
/// such name), WorkingDir and User apply; the app writes to its root; and the image's root in
/// the store is byte for byte what it was. A pod naming an image the store lacks fails,
/// naming the app and `podc image pull`.
#[test]
fn e2e_an_image_by_reference_runs_with_its_config_defaults() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = layout_dir.path().join("layout");
    // One image runs as `uid:gid`, the other as a user name its /etc/passwd has.
    let digest = config_image(&layout, "1", "1000:1000", "ids");
    let named = config_image(&layout, "2", "hello", "named");
    let reference = format!("127.0.0.1:5000/podc/hello@{digest}");
    for tag in ["1", "2"] {
        let o = podc()
            .args(["image", "import"])
            .arg(&layout)
            .args(["--name", &format!("127.0.0.1:5000/podc/hello:{tag}")])
            .env("PODC_IMAGE_STORE", store.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let resolve = |r: &str| {
        podc::image::store::Store::read_only(store.path())
            .resolve(&podc::manifest::reference::Reference::parse(r).unwrap())
            .unwrap()
    };
    let image = resolve(&reference);
    let named_root = resolve(&format!("127.0.0.1:5000/podc/hello@{named}")).root;
    let hash =
        || [&image.root, &named_root].map(|r| (common::images::tree_listing(r), tree_state(r)));
    let before = hash();

    let manifest = format!(
        r#"podc: 1
name: e2e-ref
target: {{cgroup: v1, systemd: 252}}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: hello
    image: {reference}
    environment:
      FROM_MANIFEST: manifest-wins
    mounts: [{{volume: out, path: /out}}]
  - name: named
    image: 127.0.0.1:5000/podc/hello@{named}
    mounts: [{{volume: out, path: /out}}]
"#
    );
    let mut pod = Pod::build("e2e-ref", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    // The dry run shows the resolved root and the drop-in with the defaults.
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        shown.contains(&format!(
            "mount overlay {} (image, unchanged)",
            image.root.display()
        )),
        "{shown}"
    );
    // The drop-in is bound by nspawn on the pod's /run, or in a pod of its own user namespace
    // by the launcher below the pod's /etc/systemd/system.attached (see layout.rs).
    let drop_in_bind = if own_users(&manifest) {
        "/etc/systemd/system.attached/hello.service.d\n"
    } else {
        "--bind-ro="
    };
    for want in [
        "ExecStart=\"/bin/sh\" \"-c\"",
        "WorkingDirectory=/srv/hello",
        "User=1000",
        "Group=1000",
        "Environment=\"GREETING=hello-from-the-image-config\"",
        drop_in_bind,
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    let hello_drop_in: String = shown
        .split("state/hello/image/50-image.conf")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert!(hello_drop_in.contains("User=1000"), "{shown}");
    assert!(
        !hello_drop_in.contains("image-lost"),
        "the manifest's variable wins: {shown}"
    );
    assert!(shown.contains("    User=hello\n"), "{shown}");
    let o = podc()
        .args(["launch", "--check"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(
        o.status.success()
            && String::from_utf8_lossy(&o.stdout).contains("this host can launch it"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A store someone else owns is refused (its owner could swap a root under the pod).
    std::os::unix::fs::lchown(store.path(), Some(1234), None).unwrap();
    let o = podc()
        .args(["launch", "--check"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    std::os::unix::fs::lchown(store.path(), Some(0), None).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("owned by uid 1234, not by root"), "{err}");
    // The units stay as built (the drop-in lives in the pod's /run).
    let unit = pod.tree.join("rootfs/etc/systemd/system/hello.service");
    let unit_before = fs::read_to_string(&unit).unwrap();

    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(
        pod.read("ids"),
        "hello-from-the-image-config manifest-wins in /srv/hello as 1000:1000\n"
    );
    assert_eq!(pod.read("ids-wrote"), "changed\n");
    assert_eq!(
        pod.read("named"),
        "hello-from-the-image-config image-lost in /srv/hello as 1000:1000\n",
        "the other app sets no FROM_MANIFEST, so the image's applies"
    );
    assert_eq!(pod.read("named-wrote"), "changed\n");
    assert_eq!(
        fs::read_to_string(pod.tree.join("state/hello/upper/srv/hello/file")).unwrap(),
        "changed\n",
        "the app's write is in the pod's own layer"
    );
    assert_eq!(fs::read_to_string(&unit).unwrap(), unit_before);
    assert!(
        !pod.tree
            .join("rootfs/etc/systemd/system/hello.service.d")
            .exists(),
        "the drop-in is not written into the tree"
    );
    assert_eq!(before, hash(), "an image's root in the store changed");
    assert_eq!(
        fs::read_to_string(image.root.join("srv/hello/file")).unwrap(),
        "original\n"
    );
    pod.assert_nothing_left();

    // A pod naming an image the store lacks fails, naming the app and the command to fetch it.
    let other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let gone = manifest
        .replace(&digest, other)
        .replace("name: e2e-ref", "name: e2e-ref-gone");
    let mut pod = Pod::build("e2e-ref-gone", &gone, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    let want = format!(
        "app hello: image 127.0.0.1:5000/podc/hello@{other} is not in the image store ({}); fetch it with: podc image pull 127.0.0.1:5000/podc/hello@{other}",
        store.path().display()
    );
    assert!(pod.log().contains(&want), "{}", pod.log());
    pod.assert_nothing_left();
}

/// What real-world Kubernetes files write (#24) runs from the image store: an image short name
/// (`busybox`, imported by its short name too: both mean docker.io/library/busybox:latest),
/// `exec` with a bare program looked up in the image's PATH, and `args` alone, which run the
/// image's Entrypoint with them in place of its Cmd. A bare program the image's PATH lacks
/// stops the launch, naming the app and the program.
#[test]
fn e2e_short_names_bare_programs_and_args_run_from_the_store() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    use common::images;
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let (plain, shell) = (layouts.path().join("busybox"), layouts.path().join("shell"));
    // `busybox`: no Entrypoint, a Cmd that would write the wrong text.
    images::busybox_layout(&plain, "1", &["sh", "-c", "echo cmd > /out/short"]);
    // `shell`: Entrypoint `/bin/sh -c`, and a Cmd that args replace.
    images::busybox_layout(&shell, "1", &[]);
    images::run(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:1", shell.display()),
        "--config.entrypoint=/bin/sh",
        "--config.entrypoint=-c",
        "--config.cmd=echo from-the-cmd > /out/cmd",
    ]));
    // `--name busybox` is recorded as docker.io/library/busybox:latest, which the manifest's
    // `busybox` means.
    for (layout, name) in [
        (&plain, "busybox"),
        (&shell, "registry.example/podc/shell:1"),
    ] {
        let o = podc()
            .args(["image", "import"])
            .arg(layout)
            .args(["--name", name])
            .env("PODC_IMAGE_STORE", store.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = podc()
        .args(["image", "ls"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.contains("docker.io/library/busybox:latest "),
        "{listed}"
    );

    let manifest = r#"podc: 1
name: e2e-cmd
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: short
    image: busybox
    exec: [sh, -c, 'echo "hi $0" > /out/short', "there"]
    mounts: [{volume: out, path: /out}]
  - name: args
    image: registry.example/podc/shell:1
    args: ['echo "from args: $0" > /out/args', "x y"]
    mounts: [{volume: out, path: /out}]
  - name: cmd
    image: registry.example/podc/shell:1
    mounts: [{volume: out, path: /out}]
"#;
    let mut pod = Pod::build("e2e-cmd", manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    // The unit names the full reference and leaves the command to the drop-in, which has the
    // program found in the image's PATH.
    let unit =
        fs::read_to_string(pod.tree.join("rootfs/etc/systemd/system/short.service")).unwrap();
    assert!(!unit.lines().any(|l| l.starts_with("ExecStart=")), "{unit}");
    assert!(
        unit.contains("# image: docker.io/library/busybox:latest ("),
        "{unit}"
    );
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in [
        "    ExecStart=\"/bin/sh\" \"-c\" \"echo \\\"hi $$0\\\" > /out/short\" \"there\"\n",
        "    ExecStart=\"/bin/sh\" \"-c\" \"echo \\\"from args: $$0\\\" > /out/args\" \"x y\"\n",
    ] {
        assert!(shown.contains(want), "{want}\n{shown}");
    }
    // The Cmd is there (the app without args runs it), and args replace it.
    assert_eq!(shown.matches("from-the-cmd").count(), 1, "{shown}");
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(pod.read("short"), "hi there\n");
    assert_eq!(pod.read("args"), "from args: x y\n");
    assert_eq!(pod.read("cmd"), "from-the-cmd\n");
    pod.assert_nothing_left();

    // A bare program the image's PATH lacks: the launch stops before nspawn, saying which.
    let missing = manifest
        .replace("name: e2e-cmd", "name: e2e-cmd-missing")
        .replace("exec: [sh, -c,", "exec: [no-such-program, -c,");
    let mut pod = Pod::build("e2e-cmd-missing", &missing, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    let want = "app short: image docker.io/library/busybox:latest: exec's program \"no-such-program\" is not in the image's PATH (";
    assert!(pod.log().contains(want), "{}", pod.log());
    assert!(!pod.out("short").exists(), "nothing ran");
    pod.assert_nothing_left();
}

/// `podc launch --check` and `--dry-run` report an image the store lacks as the launch would,
/// naming the app and `podc image pull`, and make no store; no root needed.
#[test]
fn launch_check_reports_an_image_missing_from_the_store() {
    let work = tempfile::tempdir().unwrap();
    let reference =
        "127.0.0.1:5000/x@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let manifest = format!(
        "podc: 1\nname: refs\napps:\n  - {{name: web, image: \"{reference}\"}}\n  - {{name: also, image: \"127.0.0.1:5000/y:1\"}}\n"
    );
    fs::write(work.path().join("pod.yaml"), manifest).unwrap();
    let o = podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "b"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store = work.path().join("no-store-here");
    for flag in ["--check", "--dry-run"] {
        let o = podc()
            .args(["launch", flag])
            .arg(work.path().join("b/refs"))
            .env("PODC_IMAGE_STORE", &store)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        for (app, r) in [("web", reference), ("also", "127.0.0.1:5000/y:1")] {
            let want = format!(
                "app {app}: image {r} is not in the image store ({}); fetch it with: podc image pull {r}",
                store.display()
            );
            assert!(err.contains(&want), "{flag}: {want}\n{err}");
        }
        assert!(!store.exists(), "{flag} made the store");
    }
}

/// The launcher's plan for an `image` step, from a store image it is handed (pure: no root,
/// no store): an overlay or, with `readOnlyRootfs`, a read-only bind of the image's root; the
/// drop-in with the defaults, bound into the pod's /run; the image's `User` names through the
/// `names` machinery; and a hostile config refused, naming the app.
#[test]
fn image_steps_become_mounts_a_drop_in_and_names() {
    use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
    use podc::image::defaults::Defaults;
    let work = tempfile::tempdir().unwrap();
    let digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    let reference = format!("127.0.0.1:5000/x@{digest}");
    let manifest = format!(
        "podc: 1\nname: refs\napps:\n  - {{name: web, image: \"{reference}\", environment: {{MINE: m}}}}\n  - {{name: ro, image: \"{reference}\", readOnlyRootfs: true, exec: [/bin/true], user: 7, group: wheel}}\n"
    );
    fs::write(work.path().join("pod.yaml"), manifest).unwrap();
    let o = podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "b"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = work.path().join("b/refs");
    let root = work.path().join("image-root");
    fs::create_dir_all(root.join("bin")).unwrap();
    let config = |env: &[&str]| {
        let c = ConfigBuilder::default()
            .entrypoint(vec!["/bin/app".to_string()])
            .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .user("app:staff")
            .build()
            .unwrap();
        ImageConfigurationBuilder::default()
            .config(c)
            .build()
            .unwrap()
    };
    let host = |env: &[&str]| Host {
        cgroups: BTreeMap::new(),
        systemd: true,
        notify: false,
        machine_id: None,
        listen_fds: None,
        images: launch::Images {
            store: work.path().join("store"),
            found: [(
                reference.clone(),
                launch::StoreImage {
                    digest: digest.into(),
                    root: root.clone(),
                    defaults: Defaults::read(&config(env), &root, &[]),
                },
            )]
            .into(),
            pinned: BTreeMap::new(),
        },
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: Some(PathBuf::from("/usr/bin/podc")),
        resources: Default::default(),
        nsdelegate: false,
    };
    let l = launch::prepare(
        &tree,
        launch::read_plan(&tree).unwrap(),
        &host(&["MINE=image", "THEIRS=t"]),
    )
    .unwrap();
    let shown = l.to_string();
    let r = root.display();
    let t = tree.display();
    for want in [
        format!("mount overlay {r} (image, unchanged) + {t}/state/web/upper (the pod's writes) at {t}/rootfs/opt/stage2/web/rootfs"),
        format!("bind ro {r} {t}/rootfs/opt/stage2/ro/rootfs"),
        format!("write {t}/state/web/image/50-image.conf (the defaults app web takes from its image):"),
        "    ExecStart=\"/bin/app\"".into(),
        "    User=app\n    Group=staff\n".into(),
        "    Environment=\"THEIRS=t\"".into(),
        "    WorkingDirectory=/".into(),
        format!("add app web's users [app] and groups [staff] with their ids in {r}/etc"),
        // The manifest's own names read the image's database just the same.
        format!("add app ro's users [] and groups [wheel] with their ids in {r}/etc"),
        // In the pod's own user namespace (the default) the launcher binds each app's
        // drop-in directory into the pod's root itself, where systemd reads it.
        format!("bind ro {t}/state/web/image {t}/rootfs/etc/systemd/system.attached/web.service.d"),
        format!("bind ro {t}/state/ro/image {t}/rootfs/etc/systemd/system.attached/ro.service.d"),
    ] {
        assert!(shown.contains(&want), "{want}\n{shown}");
    }
    // Each app's drop-in: the lines after its `write`, up to the next action.
    let drop_in = |app: &str| -> String {
        shown
            .split(&format!("state/{app}/image/50-image.conf"))
            .nth(1)
            .unwrap()
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let (web, ro) = (drop_in("web"), drop_in("ro"));
    assert!(
        !web.contains("MINE=image"),
        "the manifest's variable wins:\n{web}"
    );
    assert!(ro.contains("Environment=\"MINE=image\""), "{ro}");
    // The app that gives exec and user takes neither from the image.
    assert!(!ro.contains("ExecStart") && !ro.contains("User="), "{ro}");
    assert!(web.contains("ExecStart") && web.contains("User="), "{web}");
    assert!(l.missing_images.is_empty());

    let e = launch::prepare(
        &tree,
        launch::read_plan(&tree).unwrap(),
        &host(&["BAD-NAME=x"]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "app web: image {reference}: Env name \"BAD-NAME\""
        )),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes YAML as people write it (#24).

/// A guestbook-style Kubernetes file runs as written: a ConfigMap, a Service and a Deployment
/// of three replicas in one file, short image names, a bare program with `args`, a variable
/// from the ConfigMap and one from the pod's own name, a ConfigMap key as a file, a readiness
/// probe and a published port. The Service and the replicas are ignored with warnings; the
/// page comes from the ConfigMap through the published port, on loopback.
#[test]
fn e2e_a_kubernetes_guestbook_file_runs() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("busybox");
    common::images::busybox_layout(&layout, "1", &["sh"]);
    let o = podc()
        .args(["image", "import"])
        .arg(&layout)
        .args(["--name", "busybox:1.36"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let port = free_port();
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook
data:
  GET_HOSTS_FROM: env
  index.html: |
    <h1>Guestbook</h1>
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
  labels: {{app: guestbook, tier: frontend}}
spec:
  type: LoadBalancer
  ports:
  - port: 80
  selector: {{app: guestbook, tier: frontend}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  replicas: 3
  selector:
    matchLabels: {{app: guestbook, tier: frontend}}
  template:
    metadata:
      labels: {{app: guestbook, tier: frontend}}
    spec:
      containers:
      - name: php-redis
        image: busybox:1.36
        command: [busybox]
        args: [httpd, -f, -p, "80", -h, /var/www/html]
        env:
        - name: GET_HOSTS_FROM
          valueFrom:
            configMapKeyRef: {{name: guestbook, key: GET_HOSTS_FROM}}
        resources:
          requests: {{cpu: 100m}}
        ports:
        - containerPort: 80
          hostPort: {port}
          hostIP: 127.0.0.1
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          periodSeconds: 1
        volumeMounts:
        - name: html
          mountPath: /var/www/html
      - name: recorder
        image: busybox:1.36
        command: [sh, -c, 'echo "$(POD_NAME) reads hosts from $GET_HOSTS_FROM" > /out/env && exec sleep 3600']
        env:
        - name: POD_NAME
          valueFrom:
            fieldRef: {{fieldPath: metadata.name}}
        envFrom:
        - configMapRef: {{name: guestbook}}
        volumeMounts:
        - {{name: out, mountPath: /out}}
      volumes:
      - name: html
        configMap:
          name: guestbook
          items: [{{key: index.html, path: index.html}}]
      - name: out
        hostPath: {{path: "@WORK@/out", type: Directory}}
"#
    );
    // For this host's cgroup v1 controllers: a v2 tree's limits would not be set here (#28).
    let mut pod = Pod::build_with("frontend", &manifest, &[], |_| {}, &["--cgroup", "v1"]);
    // The build said what it ignored, and why.
    let o = podc()
        .current_dir(pod.work.path())
        .args(["check", "pod.yaml"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    for want in ["Service ignored", "`replicas` ignored", "warning[P1008]"] {
        assert!(said.contains(want), "{want}: {said}");
    }
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let started = pod.started;
    let (page, first) = first_answer(&mut pod, port, started);
    assert!(page.contains("<h1>Guestbook</h1>"), "{page}");
    eprintln!("guestbook: first answer {first:?} after launch");
    pod.wait_for(&["env"]);
    assert_eq!(pod.read("env"), "frontend reads hosts from env\n");
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// `Localhost` seccomp profiles, read from `--seccomp-dir` when the pod is built, run as
/// Kubernetes runs them: an allow list allows exactly its calls (busybox's `$$` is -1 with
/// `getpid` left out, which systemd's `@default` group would otherwise allow), a deny list
/// refuses its calls with the profile's errno (EACCES), an audit profile lets everything run,
/// and the violation profile (an empty allow list) keeps its container from starting at all.
#[test]
fn e2e_localhost_seccomp_profiles_allow_deny_and_stop_as_written() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("busybox");
    common::images::busybox_layout(&layout, "1", &["sh"]);
    let o = podc()
        .args(["image", "import"])
        .arg(&layout)
        .args(["--name", "busybox:1.36"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // What `busybox sh -c 'echo ... > FILE'` calls (strace), and systemd needs between the
    // filter and the program (execve, write for Type=exec), but getpid.
    let allowed = [
        "arch_prctl",
        "brk",
        "close",
        "dup2",
        "execve",
        "exit_group",
        "fcntl",
        "getppid",
        "getrandom",
        "getuid",
        "mprotect",
        "newfstatat",
        "openat",
        "prctl",
        "prlimit64",
        "readlink",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "set_robust_list",
        "set_tid_address",
        "write",
    ];
    let profiles = [
        (
            "fine.json",
            // Native calls only, and uname allowed and logged: systemd loads those two filters
            // before the allow list, which does not allow seccomp(2).
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": allowed, "action": "SCMP_ACT_ALLOW"},
                    {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                ],
            }),
        ),
        (
            "deny.json",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
            }),
        ),
        (
            "audit.json",
            serde_json::json!({"defaultAction": "SCMP_ACT_LOG"}),
        ),
        (
            "violation.json",
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        ),
    ];
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: seccomp
spec:
  restartPolicy: Never
  containers:
  - name: fine
    image: busybox:1.36
    command: [sh, -c, 'echo "pid $$$$" > /out/fine']
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: profiles/fine.json}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: denied
    image: busybox:1.36
    command: [sh, -c, 'mkdir /tmp/d 2> /out/denied; echo "status $?" >> /out/denied']
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: profiles/deny.json}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: audit
    image: busybox:1.36
    command: [sh, -c, 'mkdir /tmp/d && echo ran > /out/audit']
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: profiles/audit.json}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: violation
    image: busybox:1.36
    command: [sh, -c, 'echo ran > /out/violation']
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: ./profiles/violation.json}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - name: out
    hostPath: {path: "@WORK@/out", type: Directory}
"#;
    let mut pod = Pod::build_with(
        "seccomp",
        manifest,
        &[],
        |work| {
            let dir = work.join("seccomp/profiles");
            fs::create_dir_all(&dir).unwrap();
            for (name, profile) in &profiles {
                fs::write(dir.join(name), profile.to_string()).unwrap();
            }
        },
        &["--seccomp-dir", "seccomp"],
    );
    let unit = |app: &str| {
        fs::read_to_string(
            pod.tree
                .join(format!("rootfs/etc/systemd/system/{app}.service")),
        )
        .unwrap()
    };
    let fine = unit("fine");
    for line in ["SystemCallLog=uname", "SystemCallArchitectures=x86-64"] {
        assert!(fine.lines().any(|l| l == line), "{line}: {fine}");
    }
    let unit = unit("violation");
    assert!(
        unit.contains(
            "SystemCallFilter=@default\nSystemCallFilter=~@default\nSystemCallErrorNumber=EPERM\n"
        ),
        "{unit}"
    );
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    // The kernel logs the audit container's calls (SECCOMP_RET_LOG): after this line.
    let mark = format!("podc-e2e-seccomp-{}", std::process::id());
    fs::write("/dev/kmsg", format!("{mark}\n")).unwrap();
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    let kernel = common::images::run(Command::new("dmesg").arg("--notime"));
    let after = kernel
        .rsplit_once(&mark)
        .expect("the mark is in the kernel log")
        .1;
    assert!(
        after
            .lines()
            .any(|l| l.contains("exe=\"/bin/busybox\"") && l.contains("code=0x7ffc0000")),
        "no call of the audit container logged:\n{after}"
    );
    assert_eq!(pod.read("fine"), "pid -1\n", "{log}");
    assert_eq!(
        pod.read("denied"),
        "mkdir: can't create directory '/tmp/d': Permission denied\nstatus 1\n",
        "{log}"
    );
    assert_eq!(pod.read("audit"), "ran\n", "{log}");
    // Not started: systemd's child can neither execve nor exit (exit_group is denied too, and
    // glibc's _exit then faults): SIGSEGV, 128 + 11.
    assert!(!pod.out("violation").exists(), "{log}");
    assert_eq!(code, 139, "{log}");
    pod.assert_nothing_left();
}

/// Kubernetes' image volumes (as the documentation's pods-image-volumes files write them): the
/// image's root from the store, whole and a directory of it (subPath), read-only and noexec,
/// the store's root unchanged; before the image is in the store, `--check` names the volume
/// and `podc image pull`.
#[test]
fn e2e_image_volumes_are_read_only_roots_from_the_store() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let import = |layout: &Path, name: &str| {
        let o = podc()
            .args(["image", "import"])
            .arg(layout)
            .args(["--name", name])
            .env("PODC_IMAGE_STORE", store.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let app = layouts.path().join("app");
    common::images::busybox_layout(&app, "1", &["sh"]);
    import(&app, "registry.example/podc/shell:1");
    let data = layouts.path().join("data");
    common::images::busybox_layout(&data, "1", &[]);
    common::images::change_layer(&data, "1", |rootfs| {
        fs::create_dir_all(rootfs.join("dir")).unwrap();
        fs::write(rootfs.join("dir/hello.txt"), "hello from the image\n").unwrap();
    });
    let script = r#"cat /volume/dir/hello.txt > /out/whole
cat /sub/hello.txt > /out/sub
if echo x > /volume/dir/new 2>/dev/null; then echo writable; else echo read-only; fi > /out/ro
if echo x > /sub/new 2>/dev/null; then echo writable; else echo read-only; fi > /out/sub-ro
if /volume/bin/true 2>/dev/null; then echo exec; else echo noexec; fi > /out/exec"#;
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: e2e-imgvol
spec:
  restartPolicy: Never
  containers:
  - name: shell
    image: registry.example/podc/shell:1
    command: [sh, -c, {}]
    volumeMounts:
    - {{name: volume, mountPath: /volume}}
    - {{name: volume, mountPath: /sub, subPath: dir, readOnly: false}}
    - {{name: out, mountPath: /out}}
  volumes:
  - name: volume
    image:
      reference: registry.example/podc/data:1
      pullPolicy: IfNotPresent
  - name: out
    hostPath: {{path: "@WORK@/out", type: Directory}}
"#,
        serde_json::to_string(script).unwrap()
    );
    let mut pod = Pod::build("e2e-imgvol", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    let o = podc()
        .args(["launch", "--check"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("volume volume: image registry.example/podc/data:1 is not in the image store")
            && err.contains("podc image pull registry.example/podc/data:1"),
        "{err}"
    );
    import(&data, "registry.example/podc/data:1");
    let root = podc::image::store::Store::read_only(store.path())
        .resolve(
            &podc::manifest::reference::Reference::parse("registry.example/podc/data:1").unwrap(),
        )
        .unwrap()
        .root;
    let before = common::images::tree_listing(&root);
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains(&format!("bind ro,noexec {} ", root.display()))
            && shown.contains(&format!("bind ro,noexec {}/dir ", root.display())),
        "{shown}"
    );
    pod.launch();
    assert_eq!(pod.wait().0, 0, "{}", pod.log());
    assert_eq!(pod.read("whole"), "hello from the image\n");
    assert_eq!(pod.read("sub"), "hello from the image\n");
    assert_eq!(pod.read("ro"), "read-only\n");
    assert_eq!(pod.read("sub-ro"), "read-only\n");
    assert_eq!(pod.read("exec"), "noexec\n");
    assert_eq!(common::images::tree_listing(&root), before);
    pod.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Images in use (#29): leases, records, gc.

/// `podc image …` against the store at `store`; fails unless it succeeds, giving its stdout.
fn image_ok(store: &Path, args: &[&str]) -> String {
    let o = podc()
        .arg("image")
        .args(args)
        .env("PODC_IMAGE_STORE", store)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "podc image {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The image `reference` names in the store at `store`.
fn stored(store: &Path, reference: &str) -> podc::image::store::Image {
    podc::image::store::Store::read_only(store)
        .resolve(&podc::manifest::reference::Reference::parse(reference).unwrap())
        .unwrap()
}

/// Whether nobody holds the lock of the file at `path` (it can be taken exclusively now).
fn unlocked(path: &Path) -> bool {
    let f = fs::File::open(path).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Whether process `pid` has the file at `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| l == path))
}

/// The files in the store's `leases/`.
fn leases(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(store.join("leases"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// What the pod's app wrote to `out/seen` next (the file is removed, then waited for until it
/// is written again), however its launcher fares.
fn seen_next(pod: &Pod) -> String {
    let _ = fs::remove_file(pod.out("seen"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = fs::read_to_string(pod.out("seen")) {
            if !t.is_empty() {
                return t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the app wrote nothing:\n{}",
            pod.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An app that writes what its image's /data.txt says (or why it cannot) every 0.1 s.
const READER: &str =
    "exec: [/bin/sh, -c, 'while true; do cat /data.txt > /out/seen 2>&1; sleep 0.1; done']";

/// #29, as an operator met it: a pod runs an image by tag, the tag is imported again (the
/// tag names a new manifest) and `podc image gc` runs. gc keeps the running pod's root (its
/// launcher, nspawn, holds the lease; the container's init does not have it), and `rm --force`
/// of the image's last name is refused while the pod runs, naming it. The tree recorded what
/// it runs, so its next launch would run the same. `kill -9` of the launcher takes the lease
/// with it; the container outlives its nspawn, and gc keeps the root it still has mounted until
/// it is gone. Then the tree does not start on what the tag names now: it says the image it
/// recorded is missing.
#[test]
fn e2e_gc_keeps_the_image_of_a_running_pod_after_its_tag_moved() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("layout");
    let l = layout.to_str().unwrap();
    common::images::busybox_layout(&layout, "1", &[]);
    common::images::change_layer(&layout, "1", |r| {
        fs::write(r.join("data.txt"), "one\n").unwrap()
    });
    let name = "127.0.0.1:5000/podc/data:1";
    image_ok(store, &["import", l, "--name", name]);
    let v1 = stored(store, name);
    let nobody = layouts.path().join("no-pods");
    let nobody = nobody.to_str().unwrap();
    let manifest = format!(
        "podc: 1\nname: e2e-gc\ntarget: {{cgroup: v1, systemd: 252}}\nvolumes:\n  - {{name: out, kind: host, source: \"@WORK@/out\"}}\napps:\n  - name: reader\n    image: {name}\n    {READER}\n    mounts: [{{volume: out, path: /out}}]\n"
    );
    let mut pod = Pod::build("e2e-gc", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.to_path_buf()));
    pod.launch();
    assert_eq!(seen_next(&pod), "one\n");
    let record = fs::read_to_string(pod.tree.join("state/images.toml")).unwrap();
    assert!(
        record.contains(&format!("\"{name}\" = \"{}\"", v1.manifest)),
        "{record}"
    );
    let held = leases(store);
    assert_eq!(held.len(), 1, "{held:?}");
    let lease = &held[0];
    assert!(!unlocked(lease), "nobody holds the lease");
    let launcher = pod.child.as_ref().unwrap().id();
    assert!(has_open(launcher, lease), "nspawn has no lease");
    assert!(
        !has_open(pod.leader(), lease),
        "the container's init has the lease"
    );

    // The image's last name cannot go while the pod runs, not even with --force.
    let o = podc()
        .args(["image", "rm", "--force", name, "--root", nobody])
        .env("PODC_IMAGE_STORE", store)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is used by the running pod e2e-gc (") && err.contains("stop it first"),
        "{err}"
    );

    // The routine update, then gc.
    common::images::change_layer(&layout, "1", |r| {
        fs::write(r.join("data.txt"), "two\n").unwrap()
    });
    image_ok(store, &["import", l, "--name", name]);
    let v2 = stored(store, name);
    assert_ne!(v1.manifest, v2.manifest);
    let out = image_ok(store, &["gc", "--root", nobody]);
    assert!(out.starts_with("gc: removed 0 image root(s)"), "{out}");
    assert_eq!(
        seen_next(&pod),
        "one\n",
        "the app's files vanished under it"
    );
    // What the tree would launch next: the image it recorded.
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&pod.tree)
        .env("PODC_IMAGE_STORE", store)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains(&format!(
            "mount overlay {} (image, unchanged)",
            v1.root.display()
        )),
        "{shown}"
    );

    // kill -9 of the launcher (nspawn: podc execs it): the lease goes with it.
    let mut child = pod.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(unlocked(lease), "the lease outlived its holder");
    assert!(
        !pod.cgroups.processes().is_empty(),
        "the container did not outlive its nspawn"
    );
    // The container lives on with its mounts: gc keeps what it has mounted.
    let out = image_ok(store, &["gc", "--root", nobody]);
    assert!(out.starts_with("gc: removed 0 image root(s)"), "{out}");
    assert_eq!(seen_next(&pod), "one\n");
    assert!(leases(store).is_empty(), "gc left the stale lease");
    // Once the container is gone nothing keeps the root.
    pod.cgroups.remove();
    let out = image_ok(store, &["gc", "--root", nobody]);
    assert!(out.starts_with("gc: removed 1 image root(s)"), "{out}");
    assert!(!v1.root.exists());
    assert!(v2.root.is_dir());

    // The tree runs what it recorded, and says so rather than run what the tag names now.
    pod.cgroups = Cgroups::new(&format!("podc-e2e-gc-again-{}", std::process::id()));
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 2, "{}", pod.log());
    let want = format!(
        "app reader: image 127.0.0.1:5000/podc/data@{} (what {name} named when the tree recorded it in state/images.toml) is not in the image store",
        v1.manifest
    );
    assert!(pod.log().contains(&want), "{}", pod.log());
    pod.assert_nothing_left();
}

/// #29 in a pod of its own user namespace (#26): its overlay's lower layer is an idmapped bind
/// of the image's root (`state/<app>/lower`), which the container's mount table does not show
/// (only the overlay naming that path); once `kill -9` of the launcher has taken the lease
/// with it, gc keeps what the tree of that overlay recorded it runs.
#[test]
fn e2e_gc_keeps_an_idmapped_image_root_of_a_pod_in_its_own_user_namespace() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let registry = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("layout");
    let l = layout.to_str().unwrap();
    common::images::busybox_layout(&layout, "1", &[]);
    common::images::change_layer(&layout, "1", |r| {
        fs::write(r.join("data.txt"), "one\n").unwrap()
    });
    let name = "127.0.0.1:5000/podc/mapped:1";
    image_ok(store, &["import", l, "--name", name]);
    let v1 = stored(store, name);
    let nobody = layouts.path().join("no-pods");
    let nobody = nobody.to_str().unwrap();
    let manifest = format!(
        "podc: 1\nname: e2e-gc-userns\nuserNamespace: private\nvolumes:\n  - {{name: out, kind: host, source: \"@WORK@/out\"}}\napps:\n  - name: reader\n    image: {name}\n    {READER}\n    mounts: [{{volume: out, path: /out}}]\n"
    );
    let mut pod = Pod::build("e2e-gc-userns", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.to_path_buf()));
    pod.env
        .push(("PODC_USERNS_DIR".into(), registry.path().to_path_buf()));
    pod.launch();
    assert_eq!(seen_next(&pod), "one\n");
    let held = leases(store);
    assert_eq!(held.len(), 1, "{held:?}");
    common::images::change_layer(&layout, "1", |r| {
        fs::write(r.join("data.txt"), "two\n").unwrap()
    });
    image_ok(store, &["import", l, "--name", name]);
    let mut child = pod.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(unlocked(&held[0]), "the lease outlived its holder");
    let out = image_ok(store, &["gc", "--root", nobody]);
    assert!(out.starts_with("gc: removed 0 image root(s)"), "{out}");
    assert_eq!(
        seen_next(&pod),
        "one\n",
        "the app's files vanished under it"
    );
    pod.cgroups.remove();
    let out = image_ok(store, &["gc", "--root", nobody]);
    assert!(out.starts_with("gc: removed 1 image root(s)"), "{out}");
    assert!(!v1.root.exists());
    pod.assert_nothing_left();
}

/// #29, gc during launches: `podc image gc` runs without pause while a pod is launched three
/// times, and each time its tag moves to another image the moment the launcher has taken its
/// lease (the name's file renamed over, as an import does last), so that no name keeps the
/// image it is about to mount. Each launch runs, whole, the image it resolved and recorded, and
/// once it has stopped gc takes that image.
#[test]
fn e2e_gc_running_throughout_never_takes_an_image_from_a_launch() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("layout");
    let l = layout.to_str().unwrap();
    common::images::busybox_layout(&layout, "1", &[]);
    let version = |k: usize| format!("127.0.0.1:5000/podc/race:v{k}");
    for k in 0..4 {
        common::images::change_layer(&layout, "1", |r| {
            fs::write(r.join("data.txt"), format!("version {k}\n")).unwrap()
        });
        image_ok(store, &["import", l, "--name", &version(k)]);
    }
    let versions: Vec<_> = (0..4).map(|k| stored(store, &version(k))).collect();
    let name = "127.0.0.1:5000/podc/race:now";
    let ref_file = |r: &str| {
        store.join("refs").join(podc::image::store::ref_file_name(
            &podc::manifest::reference::Reference::parse(r).unwrap(),
        ))
    };
    // The tag names version 0, which has no other name now.
    fs::rename(ref_file(&version(0)), ref_file(name)).unwrap();
    let manifest = format!(
        "podc: 1\nname: e2e-race\ntarget: {{cgroup: v1, systemd: 252}}\nvolumes:\n  - {{name: out, kind: host, source: \"@WORK@/out\"}}\napps:\n  - name: reader\n    image: {name}\n    {READER}\n    mounts: [{{volume: out, path: /out}}]\n"
    );
    let mut pod = Pod::build("e2e-race", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.to_path_buf()));
    let nobody = layouts.path().join("no-pods");
    /// Stops the gc loop however the test ends (before the store goes).
    struct Stop(std::sync::Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Stop(std::sync::Arc::new(AtomicBool::new(false)));
    let collector = {
        let (stop, store, nobody) = (stop.0.clone(), store.to_path_buf(), nobody.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                image_ok(&store, &["gc", "--root", nobody.to_str().unwrap()]);
                runs += 1;
            }
            runs
        })
    };
    for (k, ran) in versions.iter().enumerate().take(3) {
        let _ = fs::remove_file(pod.tree.join("state/images.toml"));
        let before = leases(store);
        pod.launch();
        let deadline = Instant::now() + Duration::from_secs(30);
        while leases(store).iter().all(|l| before.contains(l)) {
            assert!(Instant::now() < deadline, "no lease taken:\n{}", pod.log());
            std::thread::sleep(Duration::from_millis(1));
        }
        // The tag moves on: what the launch resolved has no name from here on. The rename
        // holds the store's lock shared, as an import's does (gc never reads refs/ mid-rename).
        let opened = podc::image::store::Store::read_only(store);
        let held = opened.launching().unwrap();
        fs::rename(ref_file(&version(k + 1)), ref_file(name)).unwrap();
        drop(held);
        assert_eq!(seen_next(&pod), format!("version {k}\n"), "launch {k}");
        let record = fs::read_to_string(pod.tree.join("state/images.toml")).unwrap();
        assert!(
            record.contains(ran.manifest.as_str()),
            "launch {k}: {record}"
        );
        pod.terminate();
        let (code, _) = pod.wait();
        assert_eq!(code, 0, "launch {k}: {}", pod.log());
        assert!(pod.cgroups.processes().is_empty());
        // Stopped, nothing keeps it: the running gc takes it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ran.root.exists() {
            assert!(Instant::now() < deadline, "gc kept version {k}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    drop(stop);
    let runs = collector.join().expect("a gc failed");
    assert!(runs > 10, "gc ran only {runs} times");
    assert!(versions[3].root.is_dir(), "gc took the image the tag names");
    pod.assert_nothing_left();
}

/// `podc launch --dry-run` of the pod's tree and `podc kube` of its manifest (with `kube_args`
/// after `pod.yaml`) succeed, name the secret `name`, and show none of the `secrets`' bytes.
fn assert_dry_run_and_kube_hide(pod: &Pod, kube_args: &[&str], name: &str, secrets: &[&str]) {
    let dry_run = vec![
        "launch".to_string(),
        "--dry-run".into(),
        pod.tree.display().to_string(),
    ];
    let kube = ["kube", "pod.yaml"]
        .iter()
        .chain(kube_args)
        .map(|a| a.to_string())
        .collect();
    for args in [dry_run, kube] {
        let o = podc()
            .current_dir(pod.work.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let all = [o.stdout, o.stderr].concat();
        assert!(holds(&all, name), "{args:?} names the secret");
        for secret in secrets {
            assert!(!holds(&all, secret), "{secret} in the output of {args:?}");
        }
    }
}

/// An app with its own writable cgroup (`cgroupMount: read-write`, systemd 257) has a
/// `writable-cgroup` step: the launcher starts nothing where cgroup2 is not mounted with
/// `nsdelegate` (as on this machine), naming the app; an edited plan cannot name another app.
#[test]
fn a_writable_cgroup_needs_nsdelegate_on_the_host() {
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("pod.yaml");
    fs::write(
        &manifest,
        "podc: 1\nname: nest\ntarget: {systemd: 257}\napps:\n  \
         - {name: runner, image: /srv/images/runner, exec: [/bin/runner], isolators: {cgroupMount: read-write}}\n",
    )
    .unwrap();
    let o = podc()
        .args(["build", manifest.to_str().unwrap(), "-o"])
        .arg(work.path().join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tree = work.path().join("out/nest");
    let plan = fs::read_to_string(tree.join("mounts.toml")).unwrap();
    let step = "[[step]]\ndo = \"writable-cgroup\"\napp = \"runner\"\n";
    assert!(plan.contains(step), "{plan}");
    let host = |nsdelegate| Host {
        cgroups: BTreeMap::new(),
        systemd: true,
        notify: false,
        machine_id: None,
        listen_fds: None,
        images: Default::default(),
        volumes: PathBuf::from("/var/lib/podc/volumes"),
        podc: Some(PathBuf::from("/usr/bin/podc")),
        nsdelegate,
        resources: Default::default(),
    };
    let prepared = |nsdelegate| {
        let host = host(nsdelegate);
        let launch = launch::prepare(&tree, launch::read_plan(&tree).unwrap(), &host).unwrap();
        launch::preflight(&launch, &host, false)
    };
    let refused = prepared(false).unwrap_err().to_string();
    assert!(
        refused.starts_with("app runner takes its own cgroup writable (cgroupMount: read-write), which is safe only where cgroup2 is mounted at /sys/fs/cgroup with nsdelegate"),
        "{refused}"
    );
    assert!(!matches!(
        prepared(true),
        Err(launch::LaunchError::NoNsdelegate(_))
    ));
    // This machine's cgroup2 (if any) has no nsdelegate: `--check` says so too.
    if !Host::detect().nsdelegate {
        let o = podc()
            .args(["launch", "--check"])
            .arg(&tree)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("app runner takes its own cgroup writable"),
            "{err}"
        );
    }
    fs::write(
        tree.join("mounts.toml"),
        plan.replace(
            step,
            "[[step]]\ndo = \"writable-cgroup\"\napp = \"other\"\n",
        ),
    )
    .unwrap();
    let o = podc()
        .args(["launch", "--dry-run"])
        .arg(&tree)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("(writable-cgroup): app \"other\" is not an app of the pod"),
        "{err}"
    );
}

/// Issue 26: a pod with `userNamespace: private` runs as a range of host ids of its own: its
/// root's uid_map shows the range; a file it writes to a host volume is owned on the host by
/// the range's base, not by root; a root-only host file bound into it by mistake cannot be
/// read; its image's files are its root's, and the image is the same, byte for byte and owner
/// for owner, after the pod ran; a second pod gets a range that does not overlap; a
/// relaunch of the first keeps its range.
#[test]
fn e2e_user_namespace_maps_the_pod_to_a_range_of_its_own() {
    let Some(_turn) = e2e() else { return };
    use std::os::unix::fs::MetadataExt;
    let registry = tempfile::tempdir().unwrap();
    let manifest = |name: &str| {
        format!(
            r#"podc: 1
name: {name}
userNamespace: private
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
  - {{name: secret, kind: host, source: "@WORK@/secret", type: file}}
apps:
  - name: probe
    image: "@WORK@/images/probe"
    exec: [/bin/sh, -c, "cat /proc/self/uid_map > /out/uid_map; id -u > /out/id; stat -c '%u %g' /bin/busybox > /out/image-owner; echo written > /out/written; if cat /secret/file > /out/secret 2>/dev/null; then echo read; else echo denied; fi > /out/secret-read; echo > /out/done; exec sleep 1000"]
    mounts: [{{volume: out, path: /out}}, {{volume: secret, path: /secret/file}}]
"#
        )
    };
    let secret = |w: &Path| {
        let f = w.join("secret");
        fs::write(&f, "root only\n").unwrap();
        fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    };
    let image_state = |w: &Path| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(
                "cd \"$1\" && find . -printf '%p %y %m %U %G %s %l\\n' | LC_ALL=C sort | sha256sum",
            )
            .arg("sh")
            .arg(w.join("images/probe"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let mut first = Pod::build("first", &manifest("first"), &["probe"], secret);
    first
        .env
        .push(("PODC_USERNS_DIR".into(), registry.path().into()));
    let before = image_state(first.work.path());
    first.launch();
    first.wait_for(&["done"]);
    let map: Vec<u64> = first
        .read("uid_map")
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(map.len(), 3, "{map:?}");
    let base = map[1];
    assert_eq!((map[0], map[2]), (0, 65536), "{map:?}");
    assert!(base >= 0x7000_0000, "the range {map:?} is not podc's");
    assert_eq!(
        first.read("id").trim(),
        "0",
        "the app runs as the pod's root"
    );
    assert_eq!(
        first.read("image-owner").trim(),
        "0 0",
        "the image's files are the pod's root's"
    );
    let written = fs::metadata(first.out("written")).unwrap();
    assert_eq!(
        (u64::from(written.uid()), u64::from(written.gid())),
        (base, base),
        "the pod's root wrote as the range's base"
    );
    assert_eq!(
        first.read("secret-read").trim(),
        "denied",
        "{}",
        first.read("secret")
    );
    assert_eq!(
        fs::read_to_string(first.tree.join("state/userns"))
            .unwrap()
            .trim(),
        base.to_string()
    );
    let mut second = Pod::build("second", &manifest("second"), &["probe"], secret);
    second
        .env
        .push(("PODC_USERNS_DIR".into(), registry.path().into()));
    second.launch();
    second.wait_for(&["done"]);
    let other: u64 = second
        .read("uid_map")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        other >= base + 65536 || other + 65536 <= base,
        "the ranges overlap: {base} and {other}"
    );
    for pod in [&mut first, &mut second] {
        pod.terminate();
        let (code, _) = pod.wait();
        assert_eq!(code, 0, "{}", pod.log());
        pod.assert_nothing_left();
    }
    assert_eq!(image_state(first.work.path()), before, "the image changed");
    // A relaunch keeps the range.
    let _ = fs::remove_file(first.out("done"));
    first.cgroups = Cgroups::new(&format!("podc-e2e-first-again-{}", std::process::id()));
    first.launch();
    first.wait_for(&["done"]);
    assert_eq!(
        first.read("uid_map").split_whitespace().nth(1),
        Some(base.to_string().as_str())
    );
    first.terminate();
    first.wait();
    first.assert_nothing_left();
}

/// A port below 1024 that nothing listens on at 127.0.0.1 (from 1023 down), if any.
fn free_low_port(but: u16) -> Option<u16> {
    (900..1024)
        .rev()
        .filter(|p| *p != but)
        .find(|p| std::net::TcpListener::bind(loopback(*p)).is_ok())
}

/// A pod of its own user namespace on the host's network (what P1009 warns of): its root
/// cannot bind a port below 1024 itself (the host's network is the host's user namespace's,
/// where the pod's root holds no capability), and one published with `activation: socket`,
/// which the launcher binds as the host's root, reaches its app all the same.
#[test]
fn e2e_a_pod_of_its_own_users_on_the_host_network_serves_a_low_port_through_a_socket() {
    let Some(_turn) = e2e() else { return };
    if !socket_proxyd_here() {
        return;
    }
    let proxyd = podc::lower::SOCKET_PROXYD;
    let Some(low) = free_low_port(0) else {
        common::skip("no port from 900 to 1023 is free on 127.0.0.1");
        return;
    };
    let Some(other) = free_low_port(low) else {
        common::skip("no second port from 900 to 1023 is free on 127.0.0.1");
        return;
    };
    let inner = free_port();
    let manifest = format!(
        r#"podc: 1
name: lowport
userNamespace: private
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: web
    image: "@WORK@/images/web"
    exec: [/bin/httpd, -f, -p, "127.0.0.1:{inner}", -h, /www]
  - name: relay
    image: "@WORK@/images/relay"
    exec: ["{proxyd}", "127.0.0.1:{inner}"]
    ports:
      - {{port: {low}, hostIP: 127.0.0.1, activation: socket}}
  - name: binder
    image: "@WORK@/images/web"
    exec: ["/bin/sh", "-c", "id -u > /out/binder-id; timeout 1 httpd -f -p 127.0.0.1:{other} -h /www 2> /out/bind.err; echo > /out/bind.done; exec sleep 600"]
    mounts: [{{volume: out, path: /out}}]
"#
    );
    let mut pod = Pod::start_with("lowport", &manifest, &["web", "relay"], |w| {
        web_image(w, "web");
        copy_with_libraries(proxyd, &w.join("images/relay"));
    });
    let t = Instant::now();
    let (response, _) = first_answer(&mut pod, low, t);
    assert!(response.contains("hello from the pod"), "{response}");
    pod.wait_for(&["bind.done"]);
    assert_eq!(pod.read("binder-id").trim(), "0", "the pod's root");
    let err = pod.read("bind.err");
    assert!(err.contains("Permission denied"), "port {other}: {err:?}");
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
}

/// A network namespace the test makes to stand for the world outside the host: a veth pair
/// from the host (198.51.100.1/30, TEST-NET-2) to it (198.51.100.2/30), nothing else; removed
/// on drop.
struct Outside {
    netns: String,
    veth: String,
}

impl Outside {
    const HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 51, 100, 1);
    const SERVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 51, 100, 2);

    fn new() -> Outside {
        let id = std::process::id() % 100_000;
        let o = Outside {
            netns: format!("podc-t-out-{id}"),
            veth: format!("pto{id}"),
        };
        let peer = format!("{}p", o.veth);
        let host = format!("{}/30", Outside::HOST);
        let server = format!("{}/30", Outside::SERVER);
        for args in [
            vec!["netns", "add", &o.netns],
            vec![
                "link", "add", &o.veth, "type", "veth", "peer", "name", &peer,
            ],
            vec!["link", "set", &peer, "netns", &o.netns],
            vec!["addr", "add", &host, "dev", &o.veth],
            vec!["link", "set", &o.veth, "up"],
            vec!["-n", &o.netns, "addr", "add", &server, "dev", &peer],
            vec!["-n", &o.netns, "link", "set", &peer, "up"],
            vec!["-n", &o.netns, "link", "set", "lo", "up"],
        ] {
            let s = Command::new("ip").args(&args).status().unwrap();
            assert!(s.success(), "ip {args:?}");
        }
        // The network safety rule: the server's address goes through the test's own veth.
        let route = Command::new("ip")
            .args(["-o", "route", "get", &Outside::SERVER.to_string()])
            .output()
            .unwrap();
        let route = String::from_utf8_lossy(&route.stdout).to_string();
        assert!(
            route.contains(&format!("dev {} ", o.veth)),
            "{} is not routed through the test's veth: {route}",
            Outside::SERVER
        );
        o
    }

    /// A TCP server in the outside namespace on an ephemeral port: it answers one connection
    /// and returns the address that connection came from.
    fn serve(&self) -> (u16, std::thread::JoinHandle<Option<std::net::IpAddr>>) {
        use std::io::Write;
        let path = format!("/run/netns/{}", self.netns);
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let ns = fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let l = std::net::TcpListener::bind((Outside::SERVER, 0)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.write_all(b"hello from outside\n");
                        return Some(peer.ip());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            None
        });
        (rx.recv().unwrap(), handle)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// What podc's host networking leaves: its bridge, veth ends, nft table and leases.
fn podc_network_left() -> Vec<String> {
    let mut left: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n == podc::launch::network::BRIDGE
                || n.starts_with(podc::launch::network::NETWORK_PREFIX)
                || (n.starts_with(podc::launch::network::VETH_PREFIX)
                    && n.len() >= 10
                    && n[2..10].bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .collect();
    if Command::new("nft")
        .args(["list", "table", "inet", podc::launch::network::TABLE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        left.push("nft table inet podc".into());
    }
    left.extend(
        podc::launch::network::leases()
            .into_iter()
            .map(|l| format!("lease {} of pod {}", l.address, l.pod)),
    );
    left
}

/// Issue 25: a private pod with `egress: nat` reaches a server outside (a network namespace the
/// test made, routed from the host through the test's own veth), which sees the host's address
/// on that veth, not the pod's; the pod does not reach a service of the host itself; its
/// /etc/resolv.conf names the host's DNS servers; once it has stopped, no bridge, veth, nft
/// table or lease of podc is left and IPv4 forwarding is as it was.
#[test]
fn e2e_private_pod_with_egress_reaches_outside_through_nat() {
    let Some(_turn) = e2e() else { return };
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if !common::program(tool, package) {
            return;
        }
    }
    // What an earlier run that failed half way left (its pods gone) is swept first.
    podc::launch::network::tidy().unwrap();
    assert!(
        podc_network_left().is_empty(),
        "podc networking is set up for a pod that runs: {:?}",
        podc_network_left()
    );
    let forwarding = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let outside = Outside::new();
    let (port, server) = outside.serve();
    // A service of the host, on every address (so also on the pods' gateway): not for pods.
    let host_service = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    let gateway = podc::launch::network::host_subnet().unwrap().gateway();
    let manifest = format!(
        r#"podc: 1
name: egress
network: private
egress: nat
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: probe
    image: "@WORK@/images/probe"
    exec: [/bin/sh, -c, "nc -w 10 {server} {port} </dev/null > /out/answer; if nc -w 2 {gateway} {host_port} </dev/null; then echo reached; else echo unreachable; fi > /out/host; cat /etc/resolv.conf > /out/resolv; ip -4 -o addr show eth0 > /out/addr; ip route > /out/routes; echo > /out/done"]
    mounts: [{{volume: out, path: /out}}]
"#,
        server = Outside::SERVER,
    );
    let mut pod = Pod::start("egress", &manifest, &["probe"]);
    pod.wait_for(&["done"]);
    assert_eq!(pod.read("answer"), "hello from outside\n", "{}", pod.log());
    let peer = server.join().unwrap();
    assert_eq!(
        peer,
        Some(std::net::IpAddr::V4(Outside::HOST)),
        "the outside saw the pod's own address, not the host's"
    );
    assert_eq!(
        pod.read("host").trim(),
        "unreachable",
        "the pod reached the host's service"
    );
    assert!(
        matches!(host_service.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's service was reached from the pod"
    );
    let servers = podc::launch::network::dns_servers();
    assert_eq!(
        pod.read("resolv"),
        podc::launch::network::resolv_conf(&servers),
        "the pod's /etc/resolv.conf"
    );
    let addr = pod.read("addr");
    let subnet = podc::launch::network::host_subnet().unwrap();
    assert!(
        addr.contains(&format!(
            "{}/{}",
            subnet.hosts().next().unwrap(),
            subnet.prefix
        )),
        "{addr}"
    );
    assert!(
        pod.read("routes")
            .contains(&format!("default via {gateway}")),
        "{}",
        pod.read("routes")
    );
    assert!(
        !podc_network_left().is_empty(),
        "the pod's network is not seen"
    );
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
    assert_eq!(
        podc_network_left(),
        Vec::<String>::new(),
        "left after the pod stopped"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        forwarding,
        "IPv4 forwarding is not as it was"
    );
}

/// Issue 25: a private pod reaches the ports of the host its manifest allows (`allowHost`), at
/// `host.podc.internal` from its /etc/hosts, and no other port of the host; while it runs the
/// table's set `hostports` holds its address and port; once it has stopped nothing is left.
#[test]
fn e2e_a_pod_reaches_the_host_ports_it_is_allowed_and_no_other() {
    let Some(_turn) = e2e() else { return };
    if !common::program("nft", "nftables") {
        return;
    }
    podc::launch::network::tidy().unwrap();
    // Two services of the host on every address (so also on the pods' gateway), one allowed:
    // each counts the connections it gets and closes them (busybox nc waits for that).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listen = || {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = stop.clone();
        let counted = std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok(_) => n += 1,
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            n
        });
        (counted, port)
    };
    let ((allowed, allowed_port), (denied, denied_port)) = (listen(), listen());
    let manifest = format!(
        r#"podc: 1
name: hostports
network: private
egress: nat
allowHost:
  - port: {allowed_port}
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: probe
    image: "@WORK@/images/probe"
    exec: [/bin/sh, -c, "h=$(awk '$2 == \"host.podc.internal\" {{ print $1 }}' /etc/hosts); cp /etc/hosts /out/hosts; for p in {allowed_port} {denied_port}; do if nc -w 2 $h $p </dev/null; then echo reached; else echo unreachable; fi > /out/port-$p; done; echo > /out/done; exec sleep 1000"]
    mounts: [{{volume: out, path: /out}}]
"#
    );
    let mut pod = Pod::start("hostports", &manifest, &["probe"]);
    pod.wait_for(&["done"]);
    let gateway = podc::launch::network::host_subnet().unwrap().gateway();
    assert!(
        pod.read("hosts")
            .contains(&format!("{gateway}\thost.podc.internal\n")),
        "{}",
        pod.read("hosts")
    );
    let lease = podc::launch::network::leases()
        .into_iter()
        .find(|l| l.pod == "hostports")
        .expect("the pod's lease");
    let set = Command::new("nft")
        .args(["list", "set", "inet", "podc", "hostports"])
        .output()
        .unwrap();
    let set = String::from_utf8_lossy(&set.stdout).to_string();
    assert!(
        set.contains(&format!("{} . tcp . {allowed_port}", lease.address)),
        "{set}"
    );
    assert_eq!(
        pod.read(&format!("port-{allowed_port}")).trim(),
        "reached",
        "the allowed port of the host: {}",
        pod.log()
    );
    assert_eq!(
        pod.read(&format!("port-{denied_port}")).trim(),
        "unreachable",
        "a port of the host that is not allowed"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        allowed.join().unwrap(),
        1,
        "the allowed service's connections"
    );
    assert_eq!(
        denied.join().unwrap(),
        0,
        "the service that is not allowed was reached from the pod"
    );
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
    assert_eq!(
        podc_network_left(),
        Vec::<String>::new(),
        "left after the pod stopped"
    );
}

/// Issue 25: a launcher killed with SIGKILL cannot take the pod's way out down; once the pod's
/// processes are gone (as systemd kills a unit's cgroup), its veth has gone with its network
/// namespace, and the next launch (here, of the same pod) sweeps the lease it left and gets
/// the address again; after that pod stops, nothing of podc's networking is left.
#[test]
fn e2e_egress_left_by_a_killed_launcher_is_swept_by_the_next_launch() {
    let Some(_turn) = e2e() else { return };
    if !common::program("nft", "nftables") {
        return;
    }
    podc::launch::network::tidy().unwrap();
    let manifest = r#"podc: 1
name: killed
network: private
egress: nat
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: probe
    image: "@WORK@/images/probe"
    exec: [/bin/sh, -c, "ip -4 -o addr show eth0 > /out/addr; echo > /out/done"]
    mounts: [{volume: out, path: /out}]
"#;
    let mut pod = Pod::start("killed", manifest, &["probe"]);
    pod.wait_for(&["done"]);
    // `N: eth0    inet 10.89.0.2/24 scope global ...`: the address, not the interface index.
    let inet = |line: String| {
        line.split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_string()
    };
    let first = inet(pod.read("addr"));
    assert!(first.contains('/'), "{first}");
    let launcher = pod.child.as_ref().unwrap().id();
    assert!(Command::new("kill")
        .args(["-KILL", &launcher.to_string()])
        .status()
        .unwrap()
        .success());
    pod.wait();
    // What systemd does to a stopped unit's cgroup: every process left is killed.
    pod.cgroups.remove();
    let leases = podc::launch::network::leases();
    assert_eq!(leases.len(), 1, "the killed launcher's lease: {leases:?}");
    assert!(
        !Path::new("/sys/class/net").join(&leases[0].veth).exists(),
        "the veth outlived the pod's network namespace"
    );
    let _ = fs::remove_file(pod.out("done"));
    let _ = fs::remove_file(pod.out("addr"));
    pod.cgroups = Cgroups::new(&format!("podc-e2e-killed-again-{}", std::process::id()));
    pod.launch();
    pod.wait_for(&["done"]);
    assert_eq!(
        inet(pod.read("addr")),
        first,
        "the swept address is given again"
    );
    assert_eq!(podc::launch::network::leases().len(), 1);
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
    assert_eq!(
        podc_network_left(),
        Vec::<String>::new(),
        "left after the pod stopped"
    );
}

/// Issue 25: pods on one host network (`networks: [backend]`) reach each other by pod name
/// (their /etc/hosts, which the launcher rewrites in place as pods come: the first pod sees the
/// second appear), and a pod on another network does not reach them; once all have stopped,
/// nothing of podc's networking is left.
#[test]
fn e2e_pods_on_one_network_reach_each_other_by_name() {
    let Some(_turn) = e2e() else { return };
    if !common::program("nft", "nftables") {
        return;
    }
    podc::launch::network::tidy().unwrap();
    let pod = |name: &str, network: &str, exec: &str| {
        format!(
            r#"podc: 1
name: {name}
network: private
networks: [{network}]
volumes:
  - {{name: out, kind: host, source: "@WORK@/out"}}
apps:
  - name: app
    image: "@WORK@/images/app"
    exec: [/bin/sh, -c, "{exec}"]
    mounts: [{{volume: out, path: /out}}]
"#
        )
    };
    // alpha serves, and waits to see beta in its /etc/hosts.
    let mut alpha = Pod::start_with(
        "alpha",
        &pod(
            "alpha",
            "backend",
            "httpd -p 8080 -h /www; until grep -q beta /etc/hosts; do sleep 0.2; done; cp /etc/hosts /out/hosts; exec sleep 1000",
        ),
        &["app"],
        |w| web_image(w, "app"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut beta = Pod::start(
        "beta",
        &pod(
            "beta",
            "backend",
            "a=$(awk '$2 == \\\"alpha\\\" { print $1 }' /etc/hosts); printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 5 $a 8080 > /out/answer; cp /etc/hosts /out/hosts; echo > /out/done; exec sleep 1000",
        ),
        &["app"],
    );
    let mut gamma = Pod::start(
        "gamma",
        &pod("gamma", "other", "echo > /out/done; exec sleep 1000"),
        &["app"],
    );
    beta.wait_for(&["done"]);
    gamma.wait_for(&["done"]);
    alpha.wait_for(&["hosts"]);
    assert!(
        beta.read("answer").contains("hello from the pod"),
        "beta did not reach alpha by name: {:?}\n{}",
        beta.read("answer"),
        beta.log()
    );
    let leases = podc::launch::network::leases();
    let addr = |pod: &str| {
        leases
            .iter()
            .find(|l| l.pod == pod)
            .unwrap_or_else(|| panic!("no lease of {pod}: {leases:?}"))
            .address
    };
    let (a, b) = (addr("alpha"), addr("beta"));
    for hosts in [alpha.read("hosts"), beta.read("hosts")] {
        assert!(
            hosts.contains(&format!("{a}\talpha\n")) && hosts.contains(&format!("{b}\tbeta\n")),
            "{hosts}"
        );
        assert!(!hosts.contains("gamma"), "{hosts}");
    }
    // From inside each pod's network namespace (its launcher's), to alpha's web server.
    let reaches = |from: &Pod| {
        let launcher = from.child.as_ref().unwrap().id().to_string();
        Command::new("nsenter")
            .args(["-t", &launcher, "-n", "/bin/busybox", "nc", "-w", "2"])
            .arg(a.to_string())
            .arg("8080")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(reaches(&beta), "beta does not reach alpha");
    assert!(!reaches(&gamma), "gamma, on another network, reached alpha");
    for p in [&mut alpha, &mut beta, &mut gamma] {
        p.terminate();
        let (code, _) = p.wait();
        assert_eq!(code, 0, "{}", p.log());
        p.assert_nothing_left();
    }
    assert_eq!(
        podc_network_left(),
        Vec::<String>::new(),
        "left after the pods stopped"
    );
}

impl Outside {
    /// A server in the outside namespace on an ephemeral port, for measuring: each connection
    /// sends one byte, `c` (the server closes at once) or `t` (it sends `bytes` first).
    fn serve_many(&self, bytes: usize) -> u16 {
        use std::io::{Read, Write};
        let path = format!("/run/netns/{}", self.netns);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ns = fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let l = std::net::TcpListener::bind((Outside::SERVER, 0)).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            let block = vec![7u8; 1 << 16];
            // Ends with the test process (the namespace is removed under it).
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut what = [0u8; 1];
                if s.read_exact(&mut what).is_ok() && what[0] == b't' {
                    let mut left = bytes;
                    while left > 0 {
                        let n = left.min(block.len());
                        if s.write_all(&block[..n]).is_err() {
                            break;
                        }
                        left -= n;
                    }
                }
            }
        });
        rx.recv().unwrap()
    }
}

/// `n` connections (one byte each, then closed by the server) and one transfer of `bytes` to
/// the outside server, from the network namespace at `ns` (the host's when `None`): the median
/// connection and the throughput in MiB/s.
fn measure_outside(ns: Option<PathBuf>, port: u16, n: usize, bytes: usize) -> (Duration, f64) {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Some(ns) = ns {
            let f = fs::File::open(ns).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
        }
        let addr = std::net::SocketAddr::from((Outside::SERVER, port));
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let mut s =
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
                s.write_all(b"c").unwrap();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                t.elapsed()
            })
            .collect();
        times.sort();
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.write_all(b"t").unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while got < bytes {
            match s.read(&mut buf).unwrap() {
                0 => break,
                k => got += k,
            }
        }
        assert_eq!(got, bytes);
        let rate = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
        (times[n / 2], rate)
    })
    .join()
    .unwrap()
}

/// Issue 25, measured: a connection from a pod with a way out to a server outside, and a
/// transfer from it, against the same from the host itself, side by side in one run (the
/// pod's through its veth, the bridge, the forward chain and NAT). Printed for the notes; the
/// bound only catches a way out that is broken, not one that is a little slower.
#[test]
fn e2e_egress_against_the_host_side_by_side() {
    let Some(_turn) = e2e() else { return };
    if !common::program("nft", "nftables") {
        return;
    }
    podc::launch::network::tidy().unwrap();
    let outside = Outside::new();
    const BYTES: usize = 256 << 20;
    let port = outside.serve_many(BYTES);
    let manifest = r#"podc: 1
name: speed
network: private
egress: nat
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: idle
    image: "@WORK@/images/idle"
    exec: [/bin/sh, -c, "echo > /out/up; exec sleep 1000"]
    mounts: [{volume: out, path: /out}]
"#;
    let mut pod = Pod::start("speed", manifest, &["idle"]);
    pod.wait_for(&["up"]);
    let ns = PathBuf::from(format!("/proc/{}/ns/net", pod.child.as_ref().unwrap().id()));
    let mut host = Vec::new();
    let mut inside = Vec::new();
    for _ in 0..3 {
        host.push(measure_outside(None, port, 101, BYTES));
        inside.push(measure_outside(Some(ns.clone()), port, 101, BYTES));
    }
    let median = |v: &mut Vec<(Duration, f64)>| {
        let mut c: Vec<Duration> = v.iter().map(|m| m.0).collect();
        let mut r: Vec<f64> = v.iter().map(|m| m.1).collect();
        c.sort();
        r.sort_by(f64::total_cmp);
        (c[c.len() / 2], r[r.len() / 2])
    };
    let (hc, hr) = median(&mut host);
    let (pc, pr) = median(&mut inside);
    let connect = pc.as_secs_f64() / hc.as_secs_f64();
    let throughput = pr / hr;
    eprintln!(
        "egress: connection {pc:?} from the pod vs {hc:?} from the host ({connect:.2}x); \
         throughput {pr:.0} MiB/s vs {hr:.0} MiB/s ({throughput:.2}x of the host's); medians of 3 rounds"
    );
    assert!(
        connect < 10.0 && throughput > 0.1,
        "the way out is broken slow"
    );
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    pod.assert_nothing_left();
    assert_eq!(podc_network_left(), Vec::<String>::new());
}

/// A directory of the host made for one test, removed with what it holds when dropped, and
/// with it each parent the test had to make.
struct HostDir {
    made: Vec<PathBuf>,
}

impl HostDir {
    fn new(dir: &Path) -> HostDir {
        let mut made = Vec::new();
        let mut d = dir.to_path_buf();
        while !d.exists() {
            made.push(d.clone());
            d = d.parent().unwrap().to_path_buf();
        }
        fs::create_dir_all(dir).unwrap();
        HostDir { made }
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        if let Some(deepest) = self.made.first() {
            let _ = fs::remove_dir_all(deepest);
        }
        for d in &self.made {
            let _ = fs::remove_dir(d);
        }
    }
}

/// A Kubernetes file whose command refers to variables from a ConfigMap podc reads when the
/// pod launches (`$(SPECIAL_LEVEL_KEY)`, as in the Kubernetes documentation's example): the
/// build writes `${SPECIAL_LEVEL_KEY}` for systemd, and the app gets the values of the files on
/// the host at launch, each argument one argument whatever its value holds (spaces, `$`, `%`),
/// an unknown `$(NAME)` and a `$$(NAME)` as text; in a command the launcher completes from
/// the image (a bare program), too. The next launch takes changed values.
#[test]
fn e2e_dollar_references_to_a_configmap_read_at_launch() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("busybox");
    common::images::busybox_layout(&layout, "1", &["sh"]);
    let o = podc()
        .args(["image", "import"])
        .arg(&layout)
        .args(["--name", "registry.k8s.io/busybox:1.27.2"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = format!("podc-e2e-special-{}", std::process::id());
    let dir = Path::new("/etc/podc/configmaps").join(&name);
    let _configmap = HostDir::new(&dir);
    fs::write(dir.join("SPECIAL_LEVEL"), "very").unwrap();
    fs::write(dir.join("SPECIAL_TYPE"), "charm  quark $HOME %h \"q\"").unwrap();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: dapi-test-pod
spec:
  containers:
  - name: test-container
    image: registry.k8s.io/busybox:1.27.2
    command: ["/bin/sh", "-c", 'printf "[%s]\n" "$@" > /out/argv', "sh",
              "$(SPECIAL_LEVEL_KEY) $(SPECIAL_TYPE_KEY)", "$(SPECIAL_TYPE_KEY)",
              "$(UNDEFINED) $$(SPECIAL_LEVEL_KEY)"]
    env: &env
    - name: SPECIAL_LEVEL_KEY
      valueFrom:
        configMapKeyRef: {{name: {name}, key: SPECIAL_LEVEL}}
    - name: SPECIAL_TYPE_KEY
      valueFrom:
        configMapKeyRef: {{name: {name}, key: SPECIAL_TYPE}}
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: looked-up
    image: registry.k8s.io/busybox:1.27.2
    command: [sh, -c, 'printf "[%s]\n" "$@" > /out/looked-up', "sh"]
    args: ["$(SPECIAL_TYPE_KEY)"]
    env: *env
    volumeMounts: [{{name: out, mountPath: /out}}]
  restartPolicy: Never
  volumes:
  - name: out
    hostPath: {{path: "@WORK@/out", type: Directory}}
"#
    );
    let mut pod = Pod::build("dapi-test-pod", &manifest, &[], |_| {});
    let unit = fs::read_to_string(
        pod.tree
            .join("rootfs/etc/systemd/system/test-container.service"),
    )
    .unwrap();
    assert!(
        unit.contains(r#""${SPECIAL_LEVEL_KEY} ${SPECIAL_TYPE_KEY}" "${SPECIAL_TYPE_KEY}" "$$(UNDEFINED) $$(SPECIAL_LEVEL_KEY)""#),
        "{unit}"
    );
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(
        pod.read("argv"),
        "[very charm  quark $HOME %h \"q\"]\n[charm  quark $HOME %h \"q\"]\n[$(UNDEFINED) $(SPECIAL_LEVEL_KEY)]\n"
    );
    assert_eq!(pod.read("looked-up"), "[charm  quark $HOME %h \"q\"]\n");
    // The values are read at every launch.
    fs::write(dir.join("SPECIAL_TYPE"), "strange").unwrap();
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    assert_eq!(
        pod.read("argv"),
        "[very strange]\n[strange]\n[$(UNDEFINED) $(SPECIAL_LEVEL_KEY)]\n"
    );
    // A missing key stops the launch before anything runs, as for any variable read at launch.
    fs::remove_file(dir.join("SPECIAL_LEVEL")).unwrap();
    fs::remove_file(pod.out("argv")).unwrap();
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("SPECIAL_LEVEL: cannot read it"), "{log}");
    assert!(!pod.out("argv").exists(), "the app ran");
    pod.assert_nothing_left();
}

/// A downward API file and variables of limits a container does not set (the example of the
/// Kubernetes documentation's projected volume): podc counts the host's online CPUs and memory
/// when the pod launches, as the kubelet gives the node's allocatable, rounded up by `divisor`;
/// the pod's labels are a file too. The numbers are in no file of the tree.
#[test]
fn e2e_downward_api_limits_are_the_hosts_counted_at_launch() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("busybox");
    common::images::busybox_layout(&layout, "1", &["sh"]);
    let o = podc()
        .args(["image", "import"])
        .arg(&layout)
        .args(["--name", "busybox:1.28"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: volume-test
  labels: {app: volume-test, tier: back}
spec:
  containers:
  - name: container-test
    image: busybox:1.28
    command: ["sh", "-c", 'cat /projected-volume/cpu_limit > /out/cpu; cat /projected-volume/cpu_millis > /out/millis; cat /projected-volume/labels > /out/labels; echo "$MEMORY_KIB $(CPUS)" > /out/env']
    env:
    - name: CPUS
      valueFrom: {resourceFieldRef: {resource: limits.cpu}}
    - name: MEMORY_KIB
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Ki}}
    volumeMounts:
    - {name: all-in-one, mountPath: /projected-volume, readOnly: true}
    - {name: out, mountPath: /out}
  restartPolicy: Never
  volumes:
  - name: all-in-one
    projected:
      sources:
      - downwardAPI:
          items:
          - path: "labels"
            fieldRef: {fieldPath: metadata.labels}
          - path: "cpu_limit"
            resourceFieldRef: {containerName: container-test, resource: limits.cpu}
          - path: "cpu_millis"
            resourceFieldRef: {containerName: container-test, resource: limits.cpu, divisor: 1m}
  - name: out
    hostPath: {path: "@WORK@/out", type: Directory}
"#;
    let mut pod = Pod::build("volume-test", manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    // The host's online CPUs, as getconf counts them, and MemTotal in KiB.
    let getconf = Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .unwrap();
    let cpus: u64 = String::from_utf8_lossy(&getconf.stdout)
        .trim()
        .parse()
        .unwrap();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pod.read("cpu"), cpus.to_string());
    assert_eq!(pod.read("millis"), (cpus * 1000).to_string());
    assert_eq!(pod.read("env"), format!("{kib} {cpus}\n"));
    assert_eq!(pod.read("labels"), "app=\"volume-test\"\ntier=\"back\"\n");
    // Counted at launch: the tree names what is counted, never a number.
    let unit = fs::read_to_string(pod.tree.join("mounts.toml")).unwrap();
    assert!(unit.contains("host = \"cpu\"\ndivisor = 1\n"), "{unit}");
    assert!(files_holding(&pod.tree, format!("{}", kib).as_bytes()).is_empty());
    pod.assert_nothing_left();
}

/// A projected volume of two whole Secrets podc reads when the pod launches (the Kubernetes
/// documentation's example): the launcher copies each directory's files into a fresh
/// read-only volume on its tmpfs, a later Secret's file replacing an earlier one's of that
/// name; the app reads both. The secrets' bytes are in no file of the tree, nor in the
/// launcher's output, the dry run, `podc kube` or the pod's journal; a missing Secret stops
/// the launch before anything runs.
#[test]
fn e2e_a_projected_volume_of_two_secrets_read_at_launch() {
    let Some(_turn) = e2e() else { return };
    if !common::images::image_tools() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("busybox");
    common::images::busybox_layout(&layout, "1", &["sh"]);
    let o = podc()
        .args(["image", "import"])
        .arg(&layout)
        .args(["--name", "busybox:1.28"])
        .env("PODC_IMAGE_STORE", store.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (user, pass) = (
        format!("podc-e2e-user-{}", std::process::id()),
        format!("podc-e2e-pass-{}", std::process::id()),
    );
    let (user_dir, pass_dir) = (
        Path::new("/etc/podc/secrets").join(&user),
        Path::new("/etc/podc/secrets").join(&pass),
    );
    // Dropped in reverse: the parents made for the first go with it, last.
    let _user_dir = HostDir::new(&user_dir);
    let _pass_dir = HostDir::new(&pass_dir);
    fs::write(user_dir.join("username"), "admin-4c1d").unwrap();
    fs::write(user_dir.join("shared"), "from user").unwrap();
    fs::write(pass_dir.join("password"), "pw-9e7a2f\n").unwrap();
    fs::write(pass_dir.join("shared"), "from pass").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", pass_dir.join("linked")).unwrap();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: test-projected-volume
spec:
  containers:
  - args:
    - sh
    - -c
    - 'cat /projected-volume/username > /out/user; cat /projected-volume/password > /out/pass; cat /projected-volume/shared > /out/shared; ls /projected-volume > /out/ls; touch /projected-volume/new 2>/dev/null && echo writable > /out/ro; echo done > /out/done'
    image: busybox:1.28
    name: test-projected-volume
    securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
    volumeMounts:
    - mountPath: /projected-volume
      name: all-in-one
      readOnly: true
    - {{name: out, mountPath: /out}}
  restartPolicy: Never
  volumes:
  - name: all-in-one
    projected:
      sources:
      - secret:
          name: {user}
      - secret:
          name: {pass}
  - name: out
    hostPath: {{path: "@WORK@/out", type: Directory}}
"#
    );
    let mut pod = Pod::build("test-projected-volume", &manifest, &[], |_| {});
    pod.env
        .push(("PODC_IMAGE_STORE".into(), store.path().to_path_buf()));
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    assert_eq!(code, 0, "{log}");
    // Both Secrets' files, a non-root app reading them (0644, as Kubernetes makes them).
    assert_eq!(pod.read("user"), "admin-4c1d");
    assert_eq!(pod.read("pass"), "pw-9e7a2f\n");
    assert_eq!(pod.read("shared"), "from pass");
    assert_eq!(pod.read("ls"), "password\nshared\nusername\n");
    assert!(!pod.out("ro").exists(), "the volume is writable");
    assert!(
        log.contains("skipped entries that are not regular files: linked"),
        "{log}"
    );
    let secrets = ["admin-4c1d", "pw-9e7a2f"];
    for secret in secrets {
        assert_eq!(
            files_holding(&pod.tree, secret.as_bytes()),
            Vec::<PathBuf>::new()
        );
        assert!(
            !holds(log.as_bytes(), secret),
            "{secret} in the launcher's output"
        );
        assert!(
            !holds(&journal_export(&pod.tree), secret),
            "{secret} in the journal"
        );
    }
    for args in [
        &["launch", "--dry-run", "build/test-projected-volume"][..],
        &["kube", "pod.yaml"],
    ] {
        let o = podc()
            .current_dir(pod.work.path())
            .args(args)
            .env("PODC_IMAGE_STORE", store.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let all = [o.stdout, o.stderr].concat();
        assert!(holds(&all, &user), "{args:?} names the secret");
        for secret in secrets {
            assert!(!holds(&all, secret), "{secret} in the output of {args:?}");
        }
    }
    // A Secret missing at launch stops it before anything runs.
    fs::remove_dir_all(&pass_dir).unwrap();
    fs::remove_file(pod.out("done")).unwrap();
    fs::write(pod.work.path().join("launch.log"), "").unwrap();
    pod.launch();
    let (code, _) = pod.wait();
    let log = pod.log();
    assert_eq!(code, 2, "{log}");
    let says = format!("secret {pass}: {}: cannot read it", pass_dir.display());
    assert!(log.contains(&says), "want {says:?} in:\n{log}");
    assert!(!pod.out("done").exists(), "the app ran");
    pod.assert_nothing_left();
}

// ---- `podc launch` against nspawn by hand (#27) ----

/// One step of a launch made by hand from `podc launch --dry-run`, ready to be performed
/// between fork and exec without allocating: every path a C string made beforehand.
enum HandStep {
    Unshare,
    /// A directory and its parents, parents first; those that exist are kept.
    Mkdirs(Vec<std::ffi::CString>),
    Symlink {
        target: std::ffi::CString,
        link: std::ffi::CString,
    },
    /// Written if missing, or (`always`) whenever it does not hold `content` already.
    Write {
        path: std::ffi::CString,
        content: Vec<u8>,
        always: bool,
    },
    /// A recursive bind; if read-only, each mount at or below the target then remounted
    /// read-only with the flags its source mount has.
    Bind {
        source: std::ffi::CString,
        target: std::ffi::CString,
        read_only: Vec<(std::ffi::CString, libc::c_ulong)>,
    },
    Tmpfs(std::ffi::CString),
    Overlay {
        target: std::ffi::CString,
        options: std::ffi::CString,
    },
}

fn c_path(p: &str) -> std::ffi::CString {
    std::ffi::CString::new(p).unwrap()
}

/// The mount flags a read-only remount of the mount at `point` must repeat to keep them.
fn kept_mount_flags(point: &str) -> libc::c_ulong {
    let vfs = rustix::fs::statvfs(point).unwrap();
    use rustix::fs::StatVfsMountFlags as S;
    [
        (S::NOSUID, libc::MS_NOSUID),
        (S::NODEV, libc::MS_NODEV),
        (S::NOEXEC, libc::MS_NOEXEC),
        (S::NOATIME, libc::MS_NOATIME),
        (S::NODIRATIME, libc::MS_NODIRATIME),
        (S::RELATIME, libc::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(s, _)| vfs.f_flag.contains(*s))
    .fold(0, |all, (_, m)| all | m)
}

/// The read-only remounts of a bind of `source` at `target`: the target itself, and where
/// each mount below the source lands (this namespace's mounts; the bind takes them along).
fn read_only_points(source: &str, target: &str) -> Vec<(std::ffi::CString, libc::c_ulong)> {
    let mut points = vec![(c_path(target), kept_mount_flags(source))];
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for point in table.lines().filter_map(|l| l.split(' ').nth(4)) {
        let point = podc::sys::unescape_mountinfo(point);
        if let Ok(below) = Path::new(&point).strip_prefix(source) {
            if !below.as_os_str().is_empty() {
                let at = Path::new(target).join(below);
                points.push((c_path(at.to_str().unwrap()), kept_mount_flags(&point)));
            }
        }
    }
    points
}

/// What `podc launch --dry-run` prints, as steps to perform by hand and nspawn's argv. A line
/// it does not know stops the test: the launch by hand must do all the dry run says.
fn launch_by_hand(dry_run: &str) -> (Vec<HandStep>, Vec<String>) {
    let mut steps = Vec::new();
    let mut lines = dry_run.lines();
    for line in lines.by_ref() {
        if line == "exec" {
            break;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let step = match words[..] {
            ["unshare", "the", "mount", "namespace", "(private)"] => HandStep::Unshare,
            ["mkdir", "cgroup", dir] | ["mkdir", dir] => HandStep::Mkdirs(
                Path::new(dir)
                    .ancestors()
                    .filter(|p| p.parent().is_some())
                    .map(|p| c_path(p.to_str().unwrap()))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
            ),
            ["symlink", link, "->", target] => HandStep::Symlink {
                target: c_path(target),
                link: c_path(link),
            },
            ["write", path, "(if", "missing)"] => HandStep::Write {
                // What podc seeds (systemd-sysusers completes them at boot).
                content: match Path::new(path).file_name().unwrap().to_str().unwrap() {
                    "passwd" => b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
                    "group" => b"root:x:0:\n".to_vec(),
                    other => panic!("a seed podc does not write: {other}"),
                },
                path: c_path(path),
                always: false,
            },
            ["write", path, id, "(the", "pod's", "machine", ..] => HandStep::Write {
                path: c_path(path),
                content: format!("{id}\n").into_bytes(),
                always: true,
            },
            ["bind", mode @ ("ro" | "rw"), source, target] => HandStep::Bind {
                source: c_path(source),
                target: c_path(target),
                read_only: match mode {
                    "ro" => read_only_points(source, target),
                    _ => Vec::new(),
                },
            },
            ["mount", "tmpfs", path] => HandStep::Tmpfs(c_path(path)),
            ["mount", "overlay", lower, "(image,", "unchanged)", "+", upper, "(the", "pod's", "writes)", "at", target] =>
            {
                // podc's work directory is the upper one's sibling (made by a mkdir line).
                let work = Path::new(upper).with_file_name("work");
                HandStep::Overlay {
                    target: c_path(target),
                    options: c_path(&format!(
                        "lowerdir={lower},upperdir={upper},workdir={}",
                        work.display()
                    )),
                }
            }
            _ => panic!("a step the launch by hand does not make: {line}"),
        };
        steps.push(step);
    }
    let argv: Vec<String> = lines
        .map(|l| {
            l.strip_prefix("  ")
                .expect("nspawn's argv, one word a line")
        })
        .map(str::to_string)
        .collect();
    assert_eq!(argv.first().map(String::as_str), Some("systemd-nspawn"));
    (steps, argv)
}

/// Performs `steps` in this process (between fork and exec: system calls only, nothing
/// allocated).
fn perform_by_hand(steps: &[HandStep]) -> std::io::Result<()> {
    use std::ptr::null;
    let check = |r: libc::c_int| match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    };
    for step in steps {
        // SAFETY: plain system calls on C strings that live as long as `steps`.
        unsafe {
            match step {
                HandStep::Unshare => {
                    check(libc::unshare(libc::CLONE_NEWNS))?;
                    check(libc::mount(
                        null(),
                        c"/".as_ptr(),
                        null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        null(),
                    ))?;
                }
                HandStep::Mkdirs(dirs) => {
                    for d in dirs {
                        if libc::mkdir(d.as_ptr(), 0o755) != 0
                            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                }
                HandStep::Symlink { target, link } => {
                    if libc::symlink(target.as_ptr(), link.as_ptr()) != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                HandStep::Write {
                    path,
                    content,
                    always,
                } => {
                    let mut held = [0u8; 128];
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    let same = fd >= 0 && {
                        let n = libc::read(fd, held.as_mut_ptr().cast(), held.len());
                        libc::close(fd);
                        n >= 0 && held[..n as usize] == content[..]
                    };
                    if fd < 0 || (*always && !same) {
                        let flags =
                            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
                        let fd = libc::open(path.as_ptr(), flags, 0o644);
                        if fd < 0
                            || libc::write(fd, content.as_ptr().cast(), content.len())
                                != content.len() as isize
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(fd);
                    }
                }
                HandStep::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    let flags = libc::MS_BIND | libc::MS_REC;
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        null(),
                        flags,
                        null(),
                    ))?;
                    for (point, kept) in read_only {
                        let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | kept;
                        check(libc::mount(null(), point.as_ptr(), null(), flags, null()))?;
                    }
                }
                HandStep::Tmpfs(path) => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    path.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=0755".as_ptr().cast(),
                ))?,
                HandStep::Overlay { target, options } => check(libc::mount(
                    c"overlay".as_ptr(),
                    target.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    options.as_ptr().cast(),
                ))?,
            }
        }
    }
    Ok(())
}

/// `program args` started in the cgroups whose `cgroup.procs` files are `procs` (joined
/// between fork and exec, as the host unit starts the launcher in its own), after `steps`,
/// output to `log`.
fn started_in(procs: &[PathBuf], steps: Vec<HandStep>, argv: &[String], log: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let procs: Vec<std::ffi::CString> = procs.iter().map(|p| c_path(p.to_str().unwrap())).collect();
    let log = fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..])
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: only system calls between fork and exec (see perform_by_hand).
    unsafe {
        c.pre_exec(move || {
            for p in &procs {
                // "0": the process that writes.
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            perform_by_hand(&steps)
        });
    }
    c
}

/// One launch: from the start of `cmd` to the app's file `ready` in the host's directory, then
/// the pod stopped as its host unit stops it (SIGTERM to nspawn) and every process of it gone.
fn launch_to_ready(pod: &mut Pod, cmd: &mut Command, ready: &Path) -> Duration {
    let _ = fs::remove_file(ready);
    let start = Instant::now();
    pod.child = Some(cmd.spawn().unwrap());
    pod.wait_until("it was ready", Duration::from_millis(1), || ready.exists());
    let took = start.elapsed();
    pod.terminate();
    let (code, _) = pod.wait();
    assert_eq!(code, 0, "{}", pod.log());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pod.cgroups.processes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pod's processes outlived nspawn"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    took
}

/// Issue 27, measured: `podc launch` of a pod to its first app ready, against the same
/// launch made by hand from what `podc launch --dry-run` prints (the test makes its mounts in
/// a private mount namespace of the child, then execs that nspawn command line), the two
/// alternately in one run (`PODC_BENCH_RUNS`, default 10 each, after one of each not
/// counted), on the same tree in the same cgroups. The app is ready when it has written a file
/// into a host directory. Prints mean, median, fastest and slowest, for docs/performance.md
/// ("Pulls and launch (#27)"); the bound only catches a launcher gone badly wrong.
#[test]
#[ignore = "a measurement (about 15 s, root and nspawn): run it by hand on a release build, see docs/performance.md"]
fn e2e_launch_against_nspawn_by_hand_side_by_side() {
    let Some(_turn) = e2e() else { return };
    let runs: usize = std::env::var("PODC_BENCH_RUNS").map_or(10, |n| n.parse().unwrap());
    let manifest = r#"podc: 1
name: e2e-race
target: {cgroup: v1, systemd: 252}
volumes:
  - {name: out, kind: host, source: "@WORK@/out"}
apps:
  - name: a
    image: "@WORK@/images/a"
    exec: ["/bin/sh", "-c", "touch /out/ready; exec sleep 600"]
    mounts: [{volume: out, path: /out}]
    isolators: {memory: 64Mi, tasks: 64}
"#;
    let mut pod = Pod::build("e2e-race", manifest, &["a"], |_| {});
    let procs: Vec<PathBuf> = pod
        .cgroups
        .dirs
        .values()
        .map(|d| d.join("cgroup.procs"))
        .collect();
    let tree = pod.tree.to_str().unwrap().to_string();
    let podc_argv = [env!("CARGO_BIN_EXE_podc"), "launch", &tree].map(str::to_string);
    // The dry run in the same cgroups, so that it names theirs.
    let dry = started_in(
        &procs,
        Vec::new(),
        &podc_argv,
        &pod.work.path().join("dry.log"),
    )
    .arg("--dry-run")
    .stdout(Stdio::piped())
    .output()
    .unwrap();
    let said = || fs::read_to_string(pod.work.path().join("dry.log")).unwrap_or_default();
    assert!(dry.status.success(), "{}", said());
    let dry = String::from_utf8(dry.stdout).unwrap();
    let (steps, nspawn_argv) = launch_by_hand(&dry);
    let log = pod.work.path().join("launch.log");
    let mut by_podc = started_in(&procs, Vec::new(), &podc_argv, &log);
    let mut by_hand = started_in(&procs, steps, &nspawn_argv, &log);
    let ready = pod.out("ready");
    let load = || {
        fs::read_to_string("/proc/loadavg")
            .unwrap()
            .trim()
            .to_string()
    };
    let load_before = load();
    launch_to_ready(&mut pod, &mut by_podc, &ready);
    launch_to_ready(&mut pod, &mut by_hand, &ready);
    let (mut podc, mut hand) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Each first in turn.
        if i % 2 == 0 {
            podc.push(launch_to_ready(&mut pod, &mut by_podc, &ready));
            hand.push(launch_to_ready(&mut pod, &mut by_hand, &ready));
        } else {
            hand.push(launch_to_ready(&mut pod, &mut by_hand, &ready));
            podc.push(launch_to_ready(&mut pod, &mut by_podc, &ready));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let figures = |v: &mut Vec<Duration>| {
        v.sort();
        let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
        [mean, ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1])]
    };
    let (p, h) = (figures(&mut podc), figures(&mut hand));
    eprintln!("launch to the app's file, {runs} each, alternately; load average before: {load_before}, after: {}", load());
    eprintln!("| launch | mean ms | median ms | fastest ms | slowest ms |");
    eprintln!("|---|---|---|---|---|");
    for (name, f) in [("`podc launch`", p), ("nspawn by hand", h)] {
        eprintln!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
            f[0], f[1], f[2], f[3]
        );
    }
    eprintln!(
        "| podc / by hand | {:.2} | {:.2} | {:.2} | {:.2} |",
        p[0] / h[0],
        p[1] / h[1],
        p[2] / h[2],
        p[3] / h[3]
    );
    assert!(
        p[1] < 3.0 * h[1],
        "podc launch is far slower than nspawn by hand"
    );
    pod.assert_nothing_left();
}
