//! The image store end to end: `podc image import` of OCI layouts made by umoci and docker
//! archives and zstd layouts made by skopeo, whiteouts, a tampered blob, `kill -9` at 100
//! moments of an import, concurrent imports, `ls`, `rm` and `gc` (root; skips elsewhere and
//! fails in CI when it cannot run). The import killed at 100 moments takes minutes, so it is
//! ignored by the README's `cargo test` and run by `.ci/run`'s slow step.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::images::{self, tree_listing};
use podc::image::store::Store;
use podc::manifest::reference::Reference;

const NAME: &str = "127.0.0.1:5000/test/busybox:1";

/// A scratch directory with a busybox layout `L:t` (cmd `/bin/sh -c "echo hi"`) and a store.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        images::busybox_layout(&dir.path().join("L"), "t", &["/bin/sh", "-c", "echo hi"]);
        Scratch { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn layout(&self) -> PathBuf {
        self.path("L")
    }
    fn store_dir(&self) -> PathBuf {
        self.path("store")
    }
    fn store(&self) -> Store {
        Store::open(&self.store_dir()).unwrap()
    }
    fn podc(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_podc"));
        c.env("PODC_IMAGE_STORE", self.store_dir());
        c
    }
    fn image(&self, args: &[&str]) -> Output {
        self.podc().arg("image").args(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.image(args);
        assert!(
            o.status.success(),
            "podc image {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    /// Fails unless the store verifies and `tmp/` is empty.
    fn sound(&self) {
        let problems = self.store().verify().unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn tmp_entries(store: &Path) -> usize {
    std::fs::read_dir(store.join("tmp")).unwrap().count()
}

/// The names in `blobs/sha256` of the store at `store`.
fn blob_names(store: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The root of an OCI layout import: busybox, its applets, the config's cmd, a gzip layer.
#[test]
fn an_oci_layout_imports_with_its_root_and_config() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let (digest, manifest) = images::layout_manifest(&s.layout(), "t");
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let o = s.image(&["import", s.layout().to_str().unwrap(), "--name", NAME]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("imported {NAME} {digest}\n")
    );
    // No progress where stderr is not a terminal.
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let img = s.store().resolve(&reference(NAME)).unwrap();
    assert_eq!(img.manifest.as_str(), digest);
    assert_eq!(
        std::fs::read(img.root.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_link(img.root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(img.root.join("etc/hostname")).unwrap(),
        "busybox\n"
    );
    let cfg = img.config.config().as_ref().unwrap();
    assert_eq!(
        cfg.cmd().as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into(), "echo hi".into()][..])
    );
    // Pinned by digest, the same image; by another tag, nothing.
    let pinned = format!("127.0.0.1:5000/test/busybox@{digest}");
    assert_eq!(
        s.store().resolve(&reference(&pinned)).unwrap().root,
        img.root
    );
    let e = s
        .store()
        .resolve(&reference("127.0.0.1:5000/test/busybox:2"))
        .unwrap_err();
    assert!(e.to_string().contains("is not in the store"), "{e}");
    // The store is private, its root complete, tmp/ empty.
    let mode = std::fs::metadata(s.store_dir()).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert_eq!(tmp_entries(&s.store_dir()), 0);
    s.sound();

    // On a terminal, progress is one line redrawn in place (and erased at the end).
    let script = format!(
        "PODC_IMAGE_STORE={} {} image import {} --name {NAME}-tty",
        s.store_dir().display(),
        env!("CARGO_BIN_EXE_podc"),
        s.layout().display()
    );
    if common::tool("script", "bsdutils") {
        let o = Command::new("script")
            .args(["-qec", &script, "/dev/null"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{shown}");
        // The store has the image's root already (imported above): nothing to unpack.
        let line = "\r\x1b[K127.0.0.1:5000/test/busybox:1-tty: ";
        assert!(
            shown.contains(&format!("{line}0.0/"))
                && shown.contains(" MiB, 1/1 layers fetched\r\x1b[Kimported "),
            "{shown:?}"
        );
    }

    // A second import of the same layout changes nothing, the root included.
    let before = tree_listing(&img.root);
    s.ok(&["import", s.layout().to_str().unwrap(), "--name", NAME]);
    assert_eq!(tree_listing(&img.root), before);
    s.sound();
}

/// The same image as a docker archive (skopeo, uncompressed layers, name from RepoTags) and
/// as a zstd layout: the same root, file for file.
#[test]
fn docker_archives_and_zstd_layers_give_the_same_root() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    s.ok(&["import", l.to_str().unwrap(), "--name", NAME]);
    let want = tree_listing(&s.store().resolve(&reference(NAME)).unwrap().root);

    let tar = s.path("x.tar");
    let named = "127.0.0.1:5000/test/from-archive:1";
    images::skopeo(&[
        "copy",
        &format!("oci:{}:t", l.display()),
        &format!("docker-archive:{}:{named}", tar.display()),
    ]);
    let out = s.ok(&["import", tar.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("imported {named} sha256:")),
        "{out}"
    );
    let from_archive = s.store().resolve(&reference(named)).unwrap();
    assert_eq!(tree_listing(&from_archive.root), want);
    assert_eq!(
        from_archive.config.config().as_ref().unwrap().cmd(),
        s.store()
            .resolve(&reference(NAME))
            .unwrap()
            .config
            .config()
            .as_ref()
            .unwrap()
            .cmd()
    );
    // Importing the archive again gives the same manifest (the made manifest is stable).
    assert_eq!(s.ok(&["import", tar.to_str().unwrap()]), out);

    let z = s.path("Z");
    images::skopeo(&[
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{}:t", l.display()),
        &format!("oci:{}:z", z.display()),
    ]);
    let (_, m) = images::layout_manifest(&z, "z");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let zname = "127.0.0.1:5000/test/zstd:1";
    s.ok(&["import", z.to_str().unwrap(), "--name", zname]);
    assert_eq!(
        tree_listing(&s.store().resolve(&reference(zname)).unwrap().root),
        want
    );
    s.sound();

    // skopeo writes docker's meaning of a bare name into RepoTags: the full name is used.
    let bare = s.path("bare.tar");
    images::skopeo(&[
        "copy",
        &format!("oci:{}:t", l.display()),
        &format!("docker-archive:{}:busybox:latest", bare.display()),
    ]);
    let out = s.ok(&["import", bare.to_str().unwrap()]);
    assert!(
        out.starts_with("imported docker.io/library/busybox:latest sha256:"),
        "{out}"
    );

    // A layout whose name is a tag alone (umoci's) is refused without --name, with the way out.
    let o = s.image(&["import", l.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"t\" cannot be used") && err.contains("--name REF"),
        "{err}"
    );
}

/// Whiteouts across layers: a file removed by a later layer (umoci's whiteout), a directory
/// emptied by an opaque whiteout, what the whiteout's own layer adds kept.
#[test]
fn whiteouts_across_layers_are_applied() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    images::change_layer(&l, "t", |r| {
        std::fs::remove_file(r.join("bin/ls")).unwrap();
        std::fs::create_dir_all(r.join("data/old")).unwrap();
        std::fs::write(r.join("data/a"), "a").unwrap();
        std::fs::write(r.join("data/old/b"), "b").unwrap();
    });
    images::raw_layer(
        &l,
        "t",
        &images::layer_tar(&[
            ("data/", None),
            ("data/.wh..wh..opq", Some(b"")),
            ("data/new", Some(b"new")),
        ]),
    );
    let (_, m) = images::layout_manifest(&l, "t");
    assert_eq!(m["layers"].as_array().unwrap().len(), 3);
    s.ok(&["import", l.to_str().unwrap(), "--name", NAME]);
    let root = s.store().resolve(&reference(NAME)).unwrap().root;
    assert!(
        !root.join("bin/ls").exists() && std::fs::symlink_metadata(root.join("bin/ls")).is_err()
    );
    assert!(root.join("bin/cat").exists());
    let mut data: Vec<String> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, ["new"]);
    assert!(!tree_listing(&root).contains(".wh."));
    s.sound();
}

/// A blob whose bytes are not its digest's is refused, and nothing of the image is visible.
#[test]
fn a_tampered_blob_is_refused_and_leaves_nothing_visible() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let (_, m) = images::layout_manifest(&l, "t");
    let layer = images::blob(&l, m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&layer, &bytes).unwrap();
    let o = s.image(&["import", l.to_str().unwrap(), "--name", NAME]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("digest mismatch") && err.contains("layer"),
        "{err}"
    );
    let store = s.store();
    assert!(store.refs().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("roots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(tmp_entries(&s.store_dir()), 0);
    assert!(!store
        .blob_path(
            &podc::manifest::reference::Digest::parse(m["layers"][0]["digest"].as_str().unwrap())
                .unwrap()
        )
        .exists());
    s.sound();
    let e = store.resolve(&reference(NAME)).unwrap_err();
    assert!(e.to_string().contains("not in the store"), "{e}");

    // A layer longer than its descriptor says is refused before a byte more is kept.
    let s = Scratch::new();
    let l = s.layout();
    let (_, m) = images::layout_manifest(&l, "t");
    let layer = images::blob(&l, m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&layer, &bytes).unwrap();
    let o = s.image(&["import", l.to_str().unwrap(), "--name", NAME]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("more than the"), "{err}");
    assert!(s.store().refs().unwrap().is_empty());
    s.sound();
}

/// A layout directory whose blob is a symlink out of it (to a host file with the same bytes,
/// or to /dev/zero) is refused naming the blob, and quickly: podc reads only what is in the
/// directory (#22).
#[test]
fn a_layout_directory_is_read_only_beneath_itself() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let (_, m) = images::layout_manifest(&l, "t");
    let layer = images::blob(&l, m["layers"][0]["digest"].as_str().unwrap());
    let outside = s.path("outside-layer");
    std::fs::rename(&layer, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &layer).unwrap();
    let o = s.image(&["import", l.to_str().unwrap(), "--name", NAME]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "imported through a symlink out: {err}"
    );
    assert!(err.contains("leads out of the directory"), "{err}");
    assert!(s.store().refs().unwrap().is_empty());
    s.sound();

    std::fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &layer).unwrap();
    let started = Instant::now();
    let o = s.image(&["import", l.to_str().unwrap(), "--name", NAME]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    s.sound();
}

/// An image that unpacks to more than the cap (`PODC_MAX_IMAGE_BYTES`, all layers together)
/// is refused saying so, and leaves no root, no name, nothing in `tmp/` and no blob: the
/// blobs it added are taken back, those that were there before stay (#22).
#[test]
fn an_image_over_the_unpack_cap_is_refused_and_leaves_nothing() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    // Two layers of 3 MiB of zeros each (a few KiB as blobs): each alone fits a 4 MiB cap,
    // together they do not.
    let zeros = vec![0u8; 3 << 20];
    images::raw_layer(&l, "t", &images::layer_tar(&[("zeros-1", Some(&zeros))]));
    images::raw_layer(&l, "t", &images::layer_tar(&[("zeros-2", Some(&zeros))]));
    let o = s
        .podc()
        .env("PODC_MAX_IMAGE_BYTES", (4u64 << 20).to_string())
        .args(["image", "import", l.to_str().unwrap(), "--name", NAME])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "imported past the cap: {err}");
    assert!(err.contains("PODC_MAX_IMAGE_BYTES"), "{err}");
    assert!(s.store().refs().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("roots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(tmp_entries(&s.store_dir()), 0);
    assert_eq!(
        blob_names(&s.store_dir()).len(),
        0,
        "the failed import left blobs"
    );
    s.sound();
    // The same image within a cap that holds it imports.
    let o = s
        .podc()
        .env("PODC_MAX_IMAGE_BYTES", (64u64 << 20).to_string())
        .args(["image", "import", l.to_str().unwrap(), "--name", NAME])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One more layer over the cap: its blob, config and manifest go again, the layers the
    // imported image has (the same blobs) stay.
    let before = blob_names(&s.store_dir());
    images::raw_layer(&l, "t", &images::layer_tar(&[("zeros-3", Some(&zeros))]));
    let o = s
        .podc()
        .env("PODC_MAX_IMAGE_BYTES", (8u64 << 20).to_string())
        .args([
            "image",
            "import",
            l.to_str().unwrap(),
            "--name",
            "x.test/other:1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(blob_names(&s.store_dir()), before);
    assert_eq!(s.store().refs().unwrap().len(), 1);
    s.sound();
}

/// Imports run side by side under the store's shared lock, and one may use a blob another
/// added: a failed import takes its blobs back only once no other import runs (it waits for
/// the exclusive lock), and then removes only those nothing uses: all of them when it ran
/// alone, none when an import beside it stored the same image meanwhile (#22).
#[test]
fn a_failed_import_takes_back_its_blobs_once_no_other_import_runs() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let zeros = vec![0u8; 3 << 20];
    images::raw_layer(&l, "t", &images::layer_tar(&[("zeros-1", Some(&zeros))]));
    images::raw_layer(&l, "t", &images::layer_tar(&[("zeros-2", Some(&zeros))]));
    let (manifest, m) = images::layout_manifest(&l, "t");
    let stored = |d: &str| {
        s.store_dir()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest_blob = stored(&manifest);
    let zeros_1 = stored(m["layers"][1]["digest"].as_str().unwrap());
    for beside in [false, true] {
        let _ = std::fs::remove_dir_all(s.store_dir());
        s.store();
        // Another import, as far as the lock goes.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(s.store_dir().join("lock"))
            .unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).unwrap();
        let mut child = s
            .podc()
            .env("PODC_MAX_IMAGE_BYTES", (4u64 << 20).to_string())
            .args([
                "image",
                "import",
                l.to_str().unwrap(),
                "--name",
                "x.test/capped:1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Failed: its layer `zeros-1` is stored (the unpack fails there or after it), its work
        // directory gone.
        let start = Instant::now();
        while !(zeros_1.exists() && tmp_entries(&s.store_dir()) == 0) {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "it never failed"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the import ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the failed import did not wait for the other import"
        );
        assert!(zeros_1.exists());
        if beside {
            // An import of the same image within a cap that holds it, meanwhile: it finds
            // the failed import's blobs in the store and names them.
            s.ok(&["import", l.to_str().unwrap(), "--name", NAME]);
        }
        drop(lock);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("PODC_MAX_IMAGE_BYTES"), "{err}");
        if beside {
            assert!(manifest_blob.exists());
            s.store().resolve(&reference(NAME)).unwrap();
        } else {
            assert_eq!(
                blob_names(&s.store_dir()).len(),
                0,
                "the failed import left blobs"
            );
        }
        s.sound();
    }
}

/// A store changed on disk is not used: an edited config blob, or a root replaced by a symlink
/// to `/`, make resolving the image (what `podc launch` does) fail naming what changed, and
/// `verify` report the root (#22).
#[test]
fn a_changed_store_is_refused_at_resolve() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    s.ok(&["import", s.layout().to_str().unwrap(), "--name", NAME]);
    let store = s.store();
    let img = store.resolve(&reference(NAME)).unwrap();

    // The config blob, edited (as `Env: LD_PRELOAD=/evil.so` would be).
    let (_, m) = images::layout_manifest(&s.layout(), "t");
    let cfg =
        podc::manifest::reference::Digest::parse(m["config"]["digest"].as_str().unwrap()).unwrap();
    let path = store.blob_path(&cfg);
    let good = std::fs::read(&path).unwrap();
    let mut evil: serde_json::Value = serde_json::from_slice(&good).unwrap();
    evil["config"]["Env"] = serde_json::json!(["LD_PRELOAD=/evil.so"]);
    std::fs::write(&path, serde_json::to_vec(&evil).unwrap()).unwrap();
    let e = store.resolve(&reference(NAME)).unwrap_err().to_string();
    assert!(
        e.contains("digest mismatch") && e.contains("the store was changed"),
        "{e}"
    );
    std::fs::write(&path, &good).unwrap();
    store.resolve(&reference(NAME)).unwrap();

    // The root, replaced by a symlink to the host's `/`.
    let moved = s.path("moved-root");
    std::fs::rename(&img.root, &moved).unwrap();
    std::os::unix::fs::symlink("/", &img.root).unwrap();
    let e = store.resolve(&reference(NAME)).unwrap_err().to_string();
    assert!(e.contains("is not a directory"), "{e}");
    let problems = store.verify().unwrap();
    assert!(
        problems.iter().any(|p| p.contains("not a directory")),
        "{problems:?}"
    );
    std::fs::remove_file(&img.root).unwrap();
    std::fs::rename(&moved, &img.root).unwrap();
    s.sound();
}

/// `kill -9` of `podc image import` at i/100 of an import's duration, i = 1..100: after each
/// the store verifies, and a fresh import succeeds and gives the one right root.
#[test]
#[ignore = "slow: 100 imports killed, about 2 min; .ci/run runs it (cargo test --test image_store -- --ignored)"]
fn kill_9_at_100_moments_of_an_import_leaves_the_store_sound() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let args = ["image", "import", l.to_str().unwrap(), "--name", NAME];
    // The duration of one import into an empty store (the best of two), measured again every
    // 20 trials: the other tests of this file load the machine at first, not later.
    let measure = || {
        let mut took = Duration::MAX;
        for _ in 0..2 {
            let _ = std::fs::remove_dir_all(s.store_dir());
            let t = Instant::now();
            let o = s.podc().args(args).output().unwrap();
            assert!(o.status.success());
            took = took.min(t.elapsed());
        }
        took
    };
    let mut took = measure();
    let mut durations = vec![took];
    let want = tree_listing(&s.store().resolve(&reference(NAME)).unwrap().root);
    let (mut killed, mut finished) = (0, 0);
    let mut left_tmp = 0;
    for i in 1..=100u32 {
        if i > 1 && i % 20 == 1 {
            took = measure();
            durations.push(took);
        }
        let _ = std::fs::remove_dir_all(s.store_dir());
        let mut child = s
            .podc()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(took * i / 100);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        } else {
            killed += 1;
        }
        if s.store_dir().join("tmp").is_dir() {
            left_tmp += usize::from(tmp_entries(&s.store_dir()) > 0);
        }
        // Whatever was visible is complete: verify, and a name only with its whole image.
        if s.store_dir().join("blobs").is_dir() {
            s.sound();
            if let Ok(img) = s.store().resolve(&reference(NAME)) {
                assert_eq!(tree_listing(&img.root), want, "kill at {i}/100");
            }
        }
        let o = s.podc().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "import after kill at {i}/100: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        s.sound();
        assert_eq!(tmp_entries(&s.store_dir()), 0, "tmp/ after kill at {i}/100");
        let img = s.store().resolve(&reference(NAME)).unwrap();
        assert_eq!(tree_listing(&img.root), want, "root after kill at {i}/100");
    }
    eprintln!(
        "kill -9 trials: 100 at i/100 of an import's duration ({durations:?}): {killed} killed mid-import, {finished} finished first, {left_tmp} left tmp/ entries the next import removed"
    );
    assert!(killed >= 40, "only {killed} of 100 kills landed mid-import");
}

/// Two imports of one image at once both succeed, and the store holds one good copy.
#[test]
fn concurrent_imports_of_one_image_both_succeed() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let args = ["image", "import", l.to_str().unwrap(), "--name", NAME];
    for round in 0..5 {
        let _ = std::fs::remove_dir_all(s.store_dir());
        let a = s.podc().args(args).spawn().unwrap();
        let b = s.podc().args(args).spawn().unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            a.status.success() && b.status.success(),
            "round {round}: {:?} {:?}\n{}{}{}{}",
            a.status,
            b.status,
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&b.stderr)
        );
        s.sound();
        assert_eq!(
            std::fs::read_dir(s.store_dir().join("roots"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(tmp_entries(&s.store_dir()), 0);
        s.store().resolve(&reference(NAME)).unwrap();
    }
}

/// A fake installed pod (host unit and install tree below `root`) whose plan names `reference`.
fn install_fake_pod(root: &Path, pod: &str, reference: &str) {
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join(format!("podc-{pod}.service")),
        format!("[Service]\nExecStart=\"/usr/bin/podc\" \"launch\" \"/var/lib/podc/{pod}\"\n"),
    )
    .unwrap();
    let tree = root.join("var/lib/podc").join(pod);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("mounts.toml"),
        format!("version = 1\n\n[[step]]\ndo = \"image\"\napp = \"main\"\nreference = \"{reference}\"\n"),
    )
    .unwrap();
}

/// `ls` shows the names; `rm` refuses a name an installed pod runs by (unless `--force`);
/// `gc` removes what nothing uses and keeps what a pod pins by digest; the kept root is
/// unchanged throughout.
#[test]
fn ls_rm_and_gc_keep_what_installed_pods_use() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let (base_digest, _) = images::layout_manifest(&l, "t");
    images::busybox_layout(&l, "u", &["/bin/true"]);
    images::change_layer(&l, "u", |r| std::fs::write(r.join("extra"), "x").unwrap());
    let used = "127.0.0.1:5000/test/used:t";
    s.ok(&["import", l.to_str().unwrap(), "--name", used]);
    // `L` holds two images now: --name picks by tag.
    let o = s.image(&[
        "import",
        l.to_str().unwrap(),
        "--name",
        "127.0.0.1:5000/test/unused:nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("none is named"));
    s.ok(&[
        "import",
        l.to_str().unwrap(),
        "--name",
        "127.0.0.1:5000/test/unused:u",
    ]);
    s.ok(&[
        "import",
        l.to_str().unwrap(),
        "--name",
        "127.0.0.1:5000/test/unused:t",
    ]);
    let root = s.path("host");
    install_fake_pod(&root, "web", used);
    let r = root.to_str().unwrap();
    let kept_root = s.store().resolve(&reference(used)).unwrap().root;
    let before = tree_listing(&kept_root);

    let table = s.ok(&["ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("REFERENCE"), "{table}");
    assert!(
        lines[1].starts_with("127.0.0.1:5000/test/unused:t ")
            && lines[1].contains(&format!("sha256:{}", &base_digest[7..19])),
        "{table}"
    );
    assert!(lines[3].starts_with(used), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["ls", "--json", "--verify"])).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[2]["reference"], used);
    assert_eq!(arr[2]["manifest"], base_digest);
    assert!(arr[2]["size"].as_u64().unwrap() > 500_000);
    assert!(arr[2]["created"].as_str().unwrap().starts_with("20"));

    // rm of the name the pod runs by is refused without --force.
    let o = s.image(&["rm", used, "--root", r]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("podc-web.service") && err.contains("--force"),
        "{err}"
    );
    s.store().resolve(&reference(used)).unwrap();

    // rm of the other image's names: its root goes (gc), the used one stays.
    let unused_digest = s
        .store()
        .resolve(&reference("127.0.0.1:5000/test/unused:u"))
        .unwrap()
        .manifest;
    let out = s.ok(&["rm", "127.0.0.1:5000/test/unused:u", "--root", r]);
    assert!(
        out.contains("removed 127.0.0.1:5000/test/unused:u\ngc: removed 1 image root(s)"),
        "{out}"
    );
    assert!(!s.store().root_path(&unused_digest).exists());
    // unused:t names the same image as `used`: removing it frees nothing.
    let out = s.ok(&["rm", "127.0.0.1:5000/test/unused:t", "--root", r]);
    assert!(
        out.contains("gc: removed 0 image root(s) and 0 blob(s)"),
        "{out}"
    );
    s.sound();

    // The pod pins by digest now: the image's last name is refused without --force, which
    // removes it saying which pod uses the image; gc keeps the image for the pod.
    install_fake_pod(
        &root,
        "web",
        &format!("127.0.0.1:5000/test/used@{base_digest}"),
    );
    let o = s.image(&["rm", used, "--root", r]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("podc-web.service (pinned by digest in its plan"),
        "{err}"
    );
    let o = s.image(&["rm", "--force", used, "--root", r]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {used} is used by the installed pod podc-web.service"
        )),
        "{err}"
    );
    assert!(s.store().refs().unwrap().is_empty());
    assert!(kept_root.is_dir());
    assert_eq!(tree_listing(&kept_root), before);
    s.sound();
    // With no pod left, gc removes everything.
    std::fs::remove_dir_all(&root).unwrap();
    let out = s.ok(&["gc", "--root", r]);
    assert!(out.starts_with("gc: removed 1 image root(s)"), "{out}");
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("roots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    // rm of a name that is not there says so.
    let o = s.image(&["rm", used, "--root", r]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not in the store"));
    s.sound();
}

/// Builds a pod `name` whose one app runs `image` (a reference) into `dir/build/<name>`.
fn build_pod(dir: &Path, name: &str, image: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let manifest = format!(
        "podc: 1\nname: {name}\napps:\n  - {{name: main, image: \"{image}\", exec: [/bin/sh, -c, \"cat /data.txt\"]}}\n"
    );
    std::fs::write(dir.join("pod.yaml"), manifest).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_podc"))
        .current_dir(dir)
        .args(["build", "pod.yaml", "-o", "build"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("build").join(name)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// #29, an installed pod that is stopped: `podc install` records the digest its tag names;
/// the tag imported again (a routine update) changes neither what gc keeps nor what the pod's
/// next start runs; `rm` of the tag is refused, and with `--force` says which pod uses it and
/// keeps the pod's image; a reinstall records what the tag names then (what it recorded before
/// where the tag names nothing); an edited record stops gc; uninstalled, nothing keeps it.
#[test]
fn an_installed_pod_keeps_its_image_when_its_tag_is_imported_again() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let layout = l.to_str().unwrap();
    images::change_layer(&l, "t", |r| {
        std::fs::write(r.join("data.txt"), "one\n").unwrap()
    });
    s.ok(&["import", layout, "--name", NAME]);
    let v1 = s.store().resolve(&reference(NAME)).unwrap();
    let tree = build_pod(&s.path("work"), "app", NAME);
    let root = s.path("host");
    let r = root.to_str().unwrap();
    let install = || {
        let o = s
            .podc()
            .args(["install", tree.to_str().unwrap(), "--root", r])
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}{err}");
        out
    };
    let out = install();
    assert!(
        out.contains(&format!("image {NAME}: runs {}\n", v1.manifest)),
        "{out}"
    );
    let installed = root.join("var/lib/podc/app");
    let record = std::fs::read_to_string(installed.join("state/images.toml")).unwrap();
    assert!(
        record.contains(&format!("\"{NAME}\" = \"{}\"", v1.manifest)),
        "{record}"
    );

    let o = s.image(&["rm", NAME, "--root", r]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("podc-app.service (by this name, recorded at install or launch; the image stays in the store for it)"),
        "{err}"
    );

    // The routine update: the tag names a new manifest now.
    images::change_layer(&l, "t", |r| {
        std::fs::write(r.join("data.txt"), "two\n").unwrap()
    });
    s.ok(&["import", layout, "--name", NAME]);
    let v2 = s.store().resolve(&reference(NAME)).unwrap();
    assert_ne!(v1.manifest, v2.manifest);
    let out = s.ok(&["gc", "--root", r]);
    assert!(out.starts_with("gc: removed 0 image root(s)"), "{out}");
    assert_eq!(
        std::fs::read_to_string(v1.root.join("data.txt")).unwrap(),
        "one\n"
    );
    // Its next start runs the image it was installed with.
    let o = s
        .podc()
        .args(["launch", "--dry-run"])
        .arg(&installed)
        .output()
        .unwrap();
    let (shown, err) = text(&o);
    assert!(o.status.success(), "{shown}{err}");
    assert!(
        shown.contains(&format!(
            "mount overlay {} (image, unchanged)",
            v1.root.display()
        )),
        "{shown}"
    );
    assert!(!shown.contains(&v2.root.display().to_string()), "{shown}");

    // rm of the tag the pod runs by is refused; --force removes the name, saying which pod
    // uses it, and gc then takes what nothing uses (the new image), not the pod's.
    let o = s.image(&["rm", NAME, "--root", r]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "podc-app.service (by this name; it runs {}, recorded at install or launch, until it is installed again)",
            v1.manifest
        )) && err.contains("--force"),
        "{err}"
    );
    let o = s.image(&["rm", "--force", NAME, "--root", r]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        err.contains(&format!(
            "warning: {NAME} is used by the installed pod podc-app.service"
        )),
        "{err}"
    );
    assert!(out.contains("gc: removed 1 image root(s)"), "{out}");
    assert!(!v2.root.exists());
    assert!(v1.root.is_dir());
    s.sound();

    // A reinstall records what the tag names then, and keeps the earlier record where it
    // names nothing.
    let out = install();
    assert!(
        out.contains(&format!(
            "image {NAME}: runs {} (kept from the earlier install: not in the image store",
            v1.manifest
        )),
        "{out}"
    );
    s.ok(&["import", layout, "--name", NAME]);
    let out = install();
    assert!(
        out.contains(&format!("image {NAME}: runs {}\n", v2.manifest)),
        "{out}"
    );
    let out = s.ok(&["gc", "--root", r]);
    assert!(out.starts_with("gc: removed 1 image root(s)"), "{out}");
    assert!(!v1.root.exists());
    assert!(v2.root.is_dir());

    // An edited record stops gc: what it keeps cannot be known.
    let record = installed.join("state/images.toml");
    let kept = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, "[images]\n\"127.0.0.1:5000/x:1\" = 1\n").unwrap();
    let o = s.image(&["gc", "--root", r]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("state/images.toml"), "{err}");
    std::fs::write(&record, kept).unwrap();
    // Uninstalled, nothing keeps the image but its name.
    std::fs::remove_dir_all(&root).unwrap();
    s.ok(&["rm", NAME, "--root", r]);
    assert!(!v2.root.exists());
    s.sound();
}

/// A launch's lease: gc waits while a launch holds the store's lock to look up its images,
/// then keeps the root the lease names though no name does any more; a lease handed to
/// another process (as the launcher hands it to nspawn) holds alone, and goes with that
/// process when it is killed with SIGKILL: then gc takes the root and the stale lease.
#[test]
fn a_lease_keeps_its_root_until_its_last_holder_is_killed() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let layout = l.to_str().unwrap();
    s.ok(&["import", layout, "--name", NAME]);
    let nobody = s.path("no-pods");
    let gc = || s.ok(&["gc", "--root", nobody.to_str().unwrap()]);
    let store = s.store();
    let launching = store.launching().unwrap();
    let v1 = store.resolve(&reference(NAME)).unwrap();
    let mut waiting = s
        .podc()
        .args(["image", "gc", "--root", nobody.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "gc ran while a launch looked up its images"
    );
    // Meanwhile the tag is imported again (an ingest shares the lock): no name keeps v1 now.
    images::change_layer(&l, "t", |r| std::fs::write(r.join("new"), "x").unwrap());
    s.ok(&["import", layout, "--name", NAME]);
    let lease = launching
        .lease(
            "web",
            Path::new("/srv/web"),
            std::slice::from_ref(&v1.manifest),
        )
        .unwrap();
    let out = waiting.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.starts_with("gc: removed 0 image root(s)"), "{out}");
    assert!(v1.root.is_dir());
    let running = store.running().unwrap();
    assert_eq!(running.holders.len(), 1, "{running:?}");
    assert_eq!(running.holders[0].pod, "web");
    assert_eq!(
        running.holders[0].images,
        std::slice::from_ref(&v1.manifest)
    );
    assert_eq!(
        running.users(&v1.manifest),
        ["the running pod web (/srv/web)"]
    );

    // Handed on: another process holds it alone.
    let fd = lease.into_fd();
    let raw = fd.as_raw_fd();
    // busybox's sleep: `image_tools` found /bin/busybox (`.ci/install` installs it).
    let mut holder = Command::new(Path::new("/bin/busybox"));
    holder.args(["sleep", "1000"]);
    // SAFETY: fcntl(2) is async-signal-safe; `raw` is open until the child has started.
    unsafe {
        holder.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Into::into)
        });
    }
    let mut holder = holder.spawn().unwrap();
    drop(fd);
    assert!(gc().starts_with("gc: removed 0 image root(s)"));
    assert!(v1.root.is_dir());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = gc();
    assert!(out.starts_with("gc: removed 1 image root(s)"), "{out}");
    assert!(!v1.root.exists());
    assert_eq!(store.running().unwrap(), Default::default());
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("leases"))
            .unwrap()
            .count(),
        0,
        "the stale lease is left"
    );
    s.sound();
}

/// An OCI layout in a tar (skopeo's oci-archive), and docker ≥ 25's archive (an OCI layout
/// and a `manifest.json`): the layout is read, its containerd name used.
#[test]
fn oci_layouts_in_tar_archives_are_read_in_place() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let (digest, _) = images::layout_manifest(&l, "t");
    let oci_tar = s.path("oci.tar");
    images::skopeo(&[
        "copy",
        &format!("oci:{}:t", l.display()),
        &format!("oci-archive:{}:t", oci_tar.display()),
    ]);
    let out = s.ok(&["import", oci_tar.to_str().unwrap(), "--name", NAME]);
    assert!(
        out.starts_with(&format!("imported {NAME} sha256:")),
        "{out}"
    );
    let want = tree_listing(&s.store().resolve(&reference(NAME)).unwrap().root);

    // docker ≥ 25: index.json names the image fully; manifest.json is there too but unused.
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.join("index.json")).unwrap()).unwrap();
    let named = "127.0.0.1:5000/test/docker25:1";
    for e in index["manifests"].as_array_mut().unwrap() {
        e["annotations"]["io.containerd.image.name"] = named.into();
    }
    let d25 = s.path("d25");
    std::fs::create_dir(&d25).unwrap();
    run_cp(&l, &d25);
    std::fs::write(d25.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let manifest_json =
        br#"[{"Config":"blobs/sha256/nothere","RepoTags":["x.io/wrong:1"],"Layers":[]}]"#;
    let tar = s.path("docker25.tar");
    std::fs::write(
        &tar,
        images::tar_of(&d25, &[("manifest.json", manifest_json)]),
    )
    .unwrap();
    let out = s.ok(&["import", tar.to_str().unwrap()]);
    assert_eq!(out, format!("imported {named} {digest}\n"));
    assert_eq!(
        tree_listing(&s.store().resolve(&reference(named)).unwrap().root),
        want
    );
    s.sound();
}

fn run_cp(from: &Path, to: &Path) {
    images::run(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(to),
    );
}

/// A multi-platform index gives this host's image (and resolves by the index's digest); an
/// image for another platform, or with a layer type podc cannot apply, is refused by name
/// and leaves nothing visible.
#[test]
fn platforms_and_media_types_are_checked() {
    if !images::image_tools() {
        return;
    }
    let s = Scratch::new();
    let l = s.layout();
    let (amd64, _) = images::layout_manifest(&l, "t");
    let msize = std::fs::metadata(images::blob(&l, &amd64)).unwrap().len();
    // An arm64 sibling (its config says so) listed first.
    let arm64 = images::edit_config(&l, "t", |c| c["architecture"] = "arm64".into());
    let asize = std::fs::metadata(images::blob(&l, &arm64)).unwrap().len();
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": mt, "digest": arm64, "size": asize, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": mt, "digest": amd64, "size": msize, "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    });
    let (idx, isize) = images::put_blob(&l, &serde_json::to_vec(&index).unwrap());
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx, "size": isize,
         "annotations": {"org.opencontainers.image.ref.name": "multi"}},
        {"mediaType": mt, "digest": arm64, "size": asize,
         "annotations": {"org.opencontainers.image.ref.name": "arm"}},
    ]});
    std::fs::write(l.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();

    let out = s.ok(&[
        "import",
        l.to_str().unwrap(),
        "--name",
        "127.0.0.1:5000/test/multi:multi",
    ]);
    assert_eq!(
        out,
        format!("imported 127.0.0.1:5000/test/multi:multi {amd64}\n")
    );
    let by_index = s
        .store()
        .resolve(&reference(&format!("127.0.0.1:5000/test/multi@{idx}")))
        .unwrap();
    assert_eq!(by_index.manifest.as_str(), amd64);

    let o = s.image(&[
        "import",
        l.to_str().unwrap(),
        "--name",
        "127.0.0.1:5000/test/arm:arm",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the image is for linux/arm64; this host runs linux/amd64"),
        "{err}"
    );
    assert!(s
        .store()
        .resolve(&reference("127.0.0.1:5000/test/arm:arm"))
        .is_err());
    s.sound();

    // A nondistributable layer type is refused, naming it.
    let s = Scratch::new();
    let l = s.layout();
    images::edit_manifest(&l, "t", |m| {
        m["layers"][0]["mediaType"] =
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into();
    });
    let o = s.image(&["import", l.to_str().unwrap(), "--name", NAME]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("layer 1: layer media type `application/vnd.oci.image.layer.nondistributable.v1.tar+gzip` is not supported"), "{err}");
    assert!(s.store().refs().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(s.store_dir().join("roots"))
            .unwrap()
            .count(),
        0
    );
    s.sound();
}

/// A root changed on disk after podc unpacked it (item 2 of issue 22: a replaced binary, a
/// changed mode or owner, a file added or removed) is refused by `podc launch` (its quick check
/// reads inode metadata only, and a file rewritten with its old size and mtime still has a new
/// change time) and by `podc image ls --verify` (which hashes every file), each naming the
/// image and the path. Before the seal, every one of these ran under the image's digest.
#[test]
fn a_root_changed_on_disk_is_refused_by_launch_and_verify() {
    if !images::image_tools() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let rewrite = |root: &Path| {
        // Same size, same mtime, other bytes: only the change time and content tell.
        let p = root.join("etc/hostname");
        let before = std::fs::metadata(&p).unwrap();
        std::fs::write(&p, "evilbox\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
    };
    type Change<'a> = &'a dyn Fn(&Path);
    let cases: &[(&str, &str, Change)] = &[
        ("rewritten", "/etc/hostname", &rewrite),
        ("mode", "/bin/busybox", &|root: &Path| {
            std::fs::set_permissions(root.join("bin/busybox"), PermissionsExt::from_mode(0o4755))
                .unwrap()
        }),
        ("owner", "/etc", &|root: &Path| {
            std::os::unix::fs::chown(root.join("etc"), Some(1000), None).unwrap()
        }),
        ("added", "/bin/evil", &|root: &Path| {
            std::fs::write(root.join("bin/evil"), "#!/bin/sh\n").unwrap()
        }),
        ("removed", "/bin/true", &|root: &Path| {
            std::fs::remove_file(root.join("bin/true")).unwrap()
        }),
    ];
    for (case, path, change) in cases {
        let s = Scratch::new();
        s.ok(&["import", s.layout().to_str().unwrap(), "--name", NAME]);
        let manifest =
            format!("podc: 1\nname: sealed\napps:\n  - {{name: a, image: \"{NAME}\"}}\n");
        std::fs::write(s.path("pod.yaml"), manifest).unwrap();
        let o = s
            .podc()
            .current_dir(s.path(""))
            .args(["build", "pod.yaml", "-o", "b"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let launch = || {
            s.podc()
                .args(["launch", "--dry-run"])
                .arg(s.path("b/sealed"))
                .output()
                .unwrap()
        };
        let o = launch();
        assert!(
            o.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        s.sound();

        change(&s.store().resolve(&reference(NAME)).unwrap().root);
        let o = launch();
        let err = String::from_utf8_lossy(&o.stderr);
        eprintln!("{case}: launch: {}", err.trim());
        assert_eq!(o.status.code(), Some(2), "{case}: {err}");
        assert!(
            err.contains(&format!("image {NAME}: its root"))
                && err.contains("changed after podc unpacked it")
                && err.contains(&format!("{path}: ")),
            "{case}: {err}"
        );
        let o = s.image(&["ls", "--verify"]);
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("{case}: verify: {}", out.trim());
        assert!(!o.status.success(), "{case}: {out}");
        assert!(out.contains(&format!("{path}: ")), "{case}: {out}");
    }
}
