//! The OCI layer unpacker (compiler/image/unpack.rs): a normal multi-layer image, compressions, the
//! digest check, and a corpus of hostile layers. Each hostile case checks the error (or the
//! neutralised result) and that nothing outside the root changed: the root is a subdirectory
//! of a temp dir with sentinels beside it, and the whole temp dir outside the root (plus a few
//! host paths an escape would reach) is compared before and after. Runs as root (chown is real).
//!
//! A regression in the unpacker would write to the machine running the tests (as root), so every
//! test that unpacks runs in a child process of this binary that first moves into a private
//! mount namespace and chroots into a fresh tmpfs, with the repository bound read-only at its
//! own path (read-only: a regression once removed a whole writable checkout bound there): an
//! escape reaches only that tmpfs, and the before/after comparison sees it there.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use podc::image::unpack::{apply_layer, Compression, Limits, Stats, UnpackError};
use sha2::{Digest, Sha256};
use tar::EntryType as T;

mod common;

/// One tar member, written raw (the tar crate's Builder refuses hostile names itself).
#[derive(Clone)]
pub struct M {
    kind: T,
    name: Vec<u8>,
    link: Vec<u8>,
    data: Vec<u8>,
    mode: u32,
    uid: u64,
    size: Option<u64>,
}

fn m(kind: T, name: &str) -> M {
    M {
        kind,
        name: name.as_bytes().to_vec(),
        link: Vec::new(),
        data: Vec::new(),
        mode: if kind == T::Directory { 0o755 } else { 0o644 },
        uid: 0,
        size: None,
    }
}
fn file(name: &str, data: &str) -> M {
    M {
        data: data.as_bytes().to_vec(),
        ..m(T::Regular, name)
    }
}
fn dir(name: &str) -> M {
    m(T::Directory, name)
}
fn sym(name: &str, target: &str) -> M {
    M {
        link: target.as_bytes().to_vec(),
        ..m(T::Symlink, name)
    }
}
fn hard(name: &str, target: &str) -> M {
    M {
        link: target.as_bytes().to_vec(),
        ..m(T::Link, name)
    }
}

fn long(b: &mut tar::Builder<Vec<u8>>, kind: T, bytes: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_size(bytes.len() as u64 + 1);
    h.set_cksum();
    let mut data = bytes.to_vec();
    data.push(0);
    b.append(&h, &data[..]).unwrap();
}

/// An uncompressed layer tar of `members`.
pub fn layer(members: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in members {
        if e.name.len() > 100 {
            long(&mut b, T::GNULongName, &e.name);
        }
        if e.link.len() > 100 {
            long(&mut b, T::GNULongLink, &e.link);
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.uid);
        h.set_mtime(1_000_000);
        h.set_size(e.size.unwrap_or(e.data.len() as u64));
        let g = h.as_gnu_mut().unwrap();
        let n = e.name.len().min(100);
        g.name[..n].copy_from_slice(&e.name[..n]);
        let n = e.link.len().min(100);
        g.linkname[..n].copy_from_slice(&e.link[..n]);
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn digest(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A temp dir with `root/` and sentinels beside it.
struct Env {
    tmp: tempfile::TempDir,
}

/// Host paths an escape would most likely write (a symlink to `/` then `passwd`, etc.).
const HOST: &[&str] = &[
    "/passwd",
    "/x",
    "/tmp/x",
    "/etc/x",
    "/escaped",
    "/etc/shadow",
];

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir(t.join("root")).unwrap();
        std::fs::write(t.join("sentinel"), "outside").unwrap();
        std::fs::create_dir_all(t.join("etc")).unwrap();
        std::fs::write(t.join("etc/passwd"), "root:x:0:0").unwrap();
        std::fs::write(t.join("x"), "x").unwrap();
        Env { tmp }
    }
    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }
    /// Everything outside root: path -> (type, mode, uid, nlink, size, mtime, content).
    fn outside(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.tmp.path(), &self.root(), &mut out);
        for h in HOST {
            let p = Path::new(h);
            out.insert(p.to_path_buf(), describe(p));
        }
        out
    }
    fn apply(&self, blob: &[u8]) -> Result<Stats, UnpackError> {
        apply_layer(
            blob,
            Compression::None,
            None,
            &self.root(),
            &Limits::default(),
        )
    }
}

fn describe(p: &Path) -> String {
    match std::fs::symlink_metadata(p) {
        Err(_) => "absent".into(),
        Ok(md) => {
            let content = if md.is_file() && md.len() < 1 << 20 {
                digest(&std::fs::read(p).unwrap_or_default())
            } else if md.is_symlink() {
                std::fs::read_link(p).unwrap().display().to_string()
            } else {
                String::new()
            };
            format!(
                "{:o} {} {} {} {} {} {}",
                md.mode(),
                md.uid(),
                md.nlink(),
                md.len(),
                md.mtime(),
                md.ctime(),
                content
            )
        }
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    out.insert(dir.to_path_buf(), describe(dir));
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p == skip {
            continue;
        }
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            walk(&p, skip, out);
        } else {
            out.insert(p.clone(), describe(&p));
        }
    }
}

/// Applies each layer in turn; the last result is returned. Asserts nothing outside changed.
fn hostile(layers: &[Vec<M>]) -> (Env, Result<Stats, UnpackError>) {
    let env = Env::new();
    let before = env.outside();
    let mut result = Ok(Stats::default());
    for l in layers {
        result = env.apply(&layer(l));
        if result.is_err() {
            break;
        }
    }
    let after = env.outside();
    assert_eq!(before, after, "something outside the root changed");
    (env, result)
}

fn refused(layers: &[Vec<M>], member: &str, needle: &str) -> Env {
    let (env, r) = hostile(layers);
    let e = r.expect_err("the hostile layer was accepted");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("`{member}")) && msg.contains(needle),
        "wrong error: {msg}"
    );
    env
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(p).unwrap()
}

// ---------------------------------------------------------------- a normal image

fn multi_layer_image() {
    let env = Env::new();
    let root = env.root();
    let busybox = M {
        mode: 0o4755,
        ..file("bin/busybox", "#!busybox")
    };
    let owned = M {
        uid: 1000,
        mode: 0o640,
        ..file("./etc/hostname", "one")
    };
    let l1 = layer(&[
        dir("./"),
        dir("etc"),
        owned,
        dir("bin"),
        busybox,
        sym("bin/sh", "busybox"),
        sym("abs", "/bin/busybox"),
        hard("bin/ls", "bin/busybox"),
        file("var/cache/a", "a"), // no directory entries: made 0755
        dir("var/cache/sub"),
        file("var/cache/sub/b", "b"),
        file("gone", "gone"),
        m(T::Fifo, "run/fifo"),
        file("/absolute", "normalised"),
        M {
            mode: 0o700,
            ..dir("opt")
        },
        file("opt/o", "set after its children"),
    ]);
    let s1 = apply_layer(&l1[..], Compression::None, None, &root, &Limits::default()).unwrap();
    assert_eq!(
        (s1.files, s1.symlinks, s1.hardlinks, s1.fifos),
        (7, 2, 1, 1)
    );

    let l2 = gzip(&layer(&[
        file(".wh.gone", ""),
        file("var/cache/.wh..wh..opq", ""),
        file("var/cache/c", "c"),
        file("etc/hostname", "two"),
        file("kept", "same layer"),
        file(".wh.kept", ""), // a whiteout never removes what its own layer made
    ]));
    let s2 = apply_layer(
        &l2[..],
        Compression::Gzip,
        Some(&digest(&l2)),
        &root,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s2.whiteouts, 3);

    let l3 = zstd(&layer(&[
        file("bin/sh2", "zstd"),
        sym("lnk", "/etc"),
        file("lnk/through", "via an absolute symlink, inside root"),
    ]));
    apply_layer(
        &l3[..],
        Compression::Zstd,
        Some(&digest(&l3)),
        &root,
        &Limits::default(),
    )
    .unwrap();

    assert_eq!(read(root.join("etc/hostname")), "two");
    assert_eq!(read(root.join("absolute")), "normalised");
    assert_eq!(read(root.join("bin/sh2")), "zstd");
    assert_eq!(
        read(root.join("etc/through")),
        "via an absolute symlink, inside root"
    );
    assert_eq!(read(root.join("kept")), "same layer");
    assert!(!root.join("gone").exists());
    let cache: Vec<_> = std::fs::read_dir(root.join("var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        cache,
        vec!["c"],
        "the opaque whiteout empties the directory"
    );
    let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(bb.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(bb.mtime(), 1_000_000);
    assert_eq!(bb.nlink(), 2);
    assert_eq!(
        std::fs::metadata(root.join("bin/ls")).unwrap().ino(),
        bb.ino()
    );
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_link(root.join("abs")).unwrap(),
        Path::new("/bin/busybox")
    );
    let host = std::fs::metadata(root.join("etc/hostname")).unwrap();
    // Replaced in layer 2 by a root-owned 0644 file.
    assert_eq!((host.uid(), host.mode() & 0o777), (0, 0o644));
    let opt = std::fs::metadata(root.join("opt")).unwrap();
    assert_eq!((opt.mode() & 0o7777, opt.mtime()), (0o700, 1_000_000));
    let fifo = std::fs::symlink_metadata(root.join("run/fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    assert_eq!(
        std::fs::metadata(root.join("var")).unwrap().mode() & 0o777,
        0o755
    );
}

fn ownership_from_headers() {
    let env = Env::new();
    let l = layer(&[
        M {
            uid: 1234,
            ..file("f", "x")
        },
        M {
            uid: 4321,
            ..dir("d")
        },
        M {
            uid: 77,
            ..sym("s", "/nowhere")
        },
    ]);
    env.apply(&l).unwrap();
    let r = env.root();
    assert_eq!(std::fs::metadata(r.join("f")).unwrap().uid(), 1234);
    assert_eq!(std::fs::metadata(r.join("f")).unwrap().gid(), 1234);
    assert_eq!(std::fs::metadata(r.join("d")).unwrap().uid(), 4321);
    assert_eq!(std::fs::symlink_metadata(r.join("s")).unwrap().uid(), 77);
}

fn digest_checked() {
    let env = Env::new();
    let blob = gzip(&layer(&[file("f", "x")]));
    let right = digest(&blob);
    apply_layer(
        &blob[..],
        Compression::Gzip,
        Some(&right),
        &env.root(),
        &Limits::default(),
    )
    .unwrap();
    let wrong = digest(b"something else");
    let e = apply_layer(
        &blob[..],
        Compression::Gzip,
        Some(&wrong),
        &env.root(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Digest { .. }), "{e}");
    // Trailing bytes after the tar stream count too.
    let mut longer = layer(&[file("f", "x")]);
    let d = digest(&longer);
    longer.extend_from_slice(&[0; 1024]);
    let e = apply_layer(
        &longer[..],
        Compression::None,
        Some(&d),
        &env.root(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Digest { .. }), "{e}");
    let e = apply_layer(
        &blob[..],
        Compression::Gzip,
        Some("md5:00"),
        &env.root(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::BadDigest(_)), "{e}");
}

/// Several zstd frames with a skippable frame between (as zstd:chunked writes): all are read.
fn zstd_multi_frame() {
    let env = Env::new();
    let tar = layer(&[file("a", &"a".repeat(3000)), file("b", "b")]);
    let (one, two) = tar.split_at(1536);
    let mut blob = zstd(one);
    blob.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    blob.extend_from_slice(&3u32.to_le_bytes());
    blob.extend_from_slice(b"xyz");
    blob.extend_from_slice(&zstd(two));
    let s = apply_layer(
        &blob[..],
        Compression::Zstd,
        Some(&digest(&blob)),
        &env.root(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s.files, 2);
    assert_eq!(read(env.root().join("b")), "b");
}

/// A gzip layer of several members (`cat a.gz b.gz`): every member is read, not only the
/// first (a file of the second member exists).
fn gzip_concatenated_members() {
    let env = Env::new();
    let tar = layer(&[file("a", &"a".repeat(3000)), file("b", "b")]);
    let (one, two) = tar.split_at(1536);
    let mut blob = gzip(one);
    blob.extend_from_slice(&gzip(two));
    let s = apply_layer(
        &blob[..],
        Compression::Gzip,
        Some(&digest(&blob)),
        &env.root(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s.files, 2);
    assert_eq!(read(env.root().join("b")), "b");
}

/// An eStargz-style layer: one gzip member per file, the tar's end in a member of its own.
/// A whiteout in a later member removes what the lower layer had: a file a scanner sees as
/// removed does not stay in the root that runs.
fn gzip_estargz_members() {
    let env = Env::new();
    let lower = layer(&[file("secret", "s"), file("kept", "k")]);
    apply_layer(
        &lower[..],
        Compression::None,
        None,
        &env.root(),
        &Limits::default(),
    )
    .unwrap();
    let tar = layer(&[file("new", "n"), file(".wh.secret", "")]);
    // Members cut at each 512-byte record: header, content, header, content, then the end.
    let mut blob = Vec::new();
    for chunk in tar.chunks(512) {
        blob.extend_from_slice(&gzip(chunk));
    }
    let s = apply_layer(
        &blob[..],
        Compression::Gzip,
        Some(&digest(&blob)),
        &env.root(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s.whiteouts, 1);
    assert_eq!(read(env.root().join("new")), "n");
    assert!(
        !env.root().join("secret").exists(),
        "the whiteout in a later member was lost"
    );
    assert_eq!(read(env.root().join("kept")), "k");
}

fn garbage_is_a_stream_error() {
    let env = Env::new();
    let e = apply_layer(
        &b"not gzip"[..],
        Compression::Gzip,
        None,
        &env.root(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Stream(_)), "{e}");
}

// ---------------------------------------------------------------- the hostile corpus

/// The hostile layers, by name: also written as fuzz seeds (see `write_fuzz_seeds`).
pub fn corpus() -> Vec<(&'static str, Vec<Vec<M>>)> {
    let big = M {
        size: Some(1 << 50),
        ..file("huge", "")
    };
    let many: Vec<M> = (0..20).map(|i| file(&format!("f{i}"), "")).collect();
    vec![
        ("dotdot", vec![vec![file("../x", "escaped")]]),
        ("dotdot-inner", vec![vec![file("a/../../x", "escaped")]]),
        (
            "dotdot-dir",
            vec![vec![dir("a/.."), file("a/../sentinel", "")]],
        ),
        (
            "symlink-root-then-write",
            vec![vec![sym("etc", "/")], vec![file("etc/passwd", "owned")]],
        ),
        (
            "symlink-dotdot-then-write",
            vec![vec![sym("up", "..")], vec![file("up/sentinel", "owned")]],
        ),
        (
            "symlink-deep-dotdot",
            vec![
                vec![sym("a", "../../../../../..")],
                vec![file("a/tmp/x", "owned")],
            ],
        ),
        (
            "symlink-chain",
            vec![
                vec![sym("a", "b"), sym("b", "c/../../.."), dir("c")],
                vec![file("a/x", "owned"), file("a/escaped", "owned")],
            ],
        ),
        (
            "symlink-same-layer",
            vec![vec![dir("tmp"), sym("s", "/tmp"), file("s/x", "owned")]],
        ),
        (
            "symlink-dangling",
            vec![vec![sym("s", "/tmp"), file("s/x", "owned")]],
        ),
        (
            "symlink-then-dir",
            vec![vec![
                dir("etc"),
                sym("s", "/etc"),
                dir("s/x"),
                file("s/x/y", "owned"),
            ]],
        ),
        (
            "symlink-replaced-by-file",
            vec![
                vec![sym("x", "/x")],
                vec![file("x", "replaces the link, not its target")],
            ],
        ),
        ("hardlink-shadow", vec![vec![hard("shadow", "/etc/shadow")]]),
        ("hardlink-outside", vec![vec![hard("pw", "../etc/passwd")]]),
        (
            "hardlink-symlink-out",
            vec![vec![sym("s", "/etc/shadow"), hard("h", "s")]],
        ),
        (
            "hardlink-through-dir-symlink",
            vec![vec![sym("e", "/etc"), hard("h", "e/shadow")]],
        ),
        ("device-char", vec![vec![m(T::Char, "dev/sda")]]),
        ("device-block", vec![vec![m(T::Block, "dev/sda")]]),
        ("whiteout-dotdot", vec![vec![file("../.wh.sentinel", "")]]),
        ("whiteout-dot-dot", vec![vec![file(".wh..", "")]]),
        ("whiteout-dot", vec![vec![file("a/.wh..", "")]]),
        (
            "whiteout-through-symlink",
            vec![vec![sym("up", "..")], vec![file("up/.wh.sentinel", "")]],
        ),
        (
            "opaque-through-symlink",
            vec![vec![sym("up", "..")], vec![file("up/.wh..wh..opq", "")]],
        ),
        ("huge-size", vec![vec![big]]),
        ("too-many", vec![many]),
        ("long-name", vec![vec![file(&"n/".repeat(2500), "")]]),
        ("long-component", vec![vec![file(&"n".repeat(300), "")]]),
        (
            "non-utf8",
            vec![vec![M {
                name: b"bad\xff".to_vec(),
                ..file("", "")
            }]],
        ),
        ("root-as-file", vec![vec![file("./", "")]]),
    ]
}

fn case(name: &str) -> Vec<Vec<M>> {
    corpus().into_iter().find(|(n, _)| *n == name).unwrap().1
}

fn small() -> Limits {
    Limits {
        max_files: 10,
        ..Limits::default()
    }
}

fn dotdot_refused() {
    refused(&case("dotdot"), "../x", "`..`");
    refused(&case("dotdot-inner"), "a/../../x", "`..`");
    refused(&case("dotdot-dir"), "a/..", "`..`");
}

fn absolute_names_normalised() {
    let (env, r) = hostile(&[vec![file("/escaped", "in root"), file("/tmp/x", "in root")]]);
    r.unwrap();
    assert_eq!(read(env.root().join("escaped")), "in root");
    assert_eq!(read(env.root().join("tmp/x")), "in root");
}

fn symlink_escapes_are_confined() {
    // Writes through a symlink resolve as if root were `/`: they land inside root.
    let (env, r) = hostile(&case("symlink-root-then-write"));
    r.unwrap();
    assert_eq!(read(env.root().join("passwd")), "owned");
    let (env, r) = hostile(&case("symlink-dotdot-then-write"));
    r.unwrap();
    assert_eq!(read(env.root().join("sentinel")), "owned");
    let (env, r) = hostile(&case("symlink-deep-dotdot"));
    r.unwrap();
    assert_eq!(read(env.root().join("tmp/x")), "owned");
    let (env, r) = hostile(&case("symlink-chain"));
    r.unwrap();
    assert_eq!(read(env.root().join("x")), "owned");
    let (env, r) = hostile(&case("symlink-same-layer"));
    r.unwrap();
    assert_eq!(read(env.root().join("tmp/x")), "owned");
    // Through a dangling symlink, as `mkdir -p` would: an error (the target is not made).
    let env = refused(
        &case("symlink-dangling"),
        "s/x",
        "`s` is a symlink to `/tmp`, which the image does not have: podc makes no directory through a dangling symlink",
    );
    assert!(!env.root().join("tmp").exists());
    let (env, r) = hostile(&case("symlink-then-dir"));
    r.unwrap();
    assert_eq!(read(env.root().join("etc/x/y")), "owned");
    let (env, r) = hostile(&case("symlink-replaced-by-file"));
    r.unwrap();
    assert!(std::fs::symlink_metadata(env.root().join("x"))
        .unwrap()
        .is_file());
}

fn hardlinks_out_refused() {
    refused(
        &case("hardlink-shadow"),
        "shadow",
        "not a regular file inside the root",
    );
    refused(&case("hardlink-outside"), "pw", "`..`");
    refused(
        &case("hardlink-symlink-out"),
        "h",
        "not a regular file inside the root",
    );
    refused(
        &case("hardlink-through-dir-symlink"),
        "h",
        "not a regular file inside the root",
    );
}

fn devices_refused() {
    refused(&case("device-char"), "dev/sda", "device node");
    refused(&case("device-block"), "dev/sda", "device node");
}

fn whiteouts_confined() {
    refused(&case("whiteout-dotdot"), "../.wh.sentinel", "`..`");
    refused(&case("whiteout-dot-dot"), ".wh..", "whiteout of");
    refused(&case("whiteout-dot"), "a/.wh..", "whiteout of");
    // Through a symlink, the whiteout resolves inside root (and finds nothing to remove).
    hostile(&case("whiteout-through-symlink")).1.unwrap();
    let (env, r) = hostile(&case("opaque-through-symlink"));
    r.unwrap();
    // The opaque whiteout through `up -> ..` emptied root, nothing else. (Destructive cases
    // escape relatively, into the temp dir: a regression must not empty the host's `/`.)
    assert_eq!(std::fs::read_dir(env.root()).unwrap().count(), 0);
}

fn sizes_and_counts_bounded() {
    refused(&case("huge-size"), "huge", "exceeds the limit");
    let env = Env::new();
    let before = env.outside();
    let l = layer(&case("too-many")[0]);
    let e = apply_layer(&l[..], Compression::None, None, &env.root(), &small()).unwrap_err();
    assert!(e.to_string().contains("more than 10 members"), "{e}");
    // The sum: two members each under the limit.
    let l = layer(&[file("a", &"a".repeat(600)), file("b", &"b".repeat(600))]);
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let e = apply_layer(&l[..], Compression::None, None, &env.root(), &limits).unwrap_err();
    assert!(e.to_string().contains("limit of 1000"), "{e}");
    assert_eq!(before, env.outside());
}

/// A tree deeper than any path (built through a symlink), then removed by a whiteout: an
/// error, not a stack overflow.
fn deep_tree_removal_bounded() {
    let deep = "d/".repeat(200);
    let (_env, r) = hostile(&[
        vec![file(&format!("{deep}f"), "")],
        vec![
            sym("l", &format!("/{deep}")),
            file(&format!("l/{deep}g"), ""),
        ],
        vec![file(".wh.d", "")],
    ]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("`.wh.d`") && e.contains("deeper than 256"),
        "{e}"
    );
}

fn bad_names_refused() {
    refused(&case("long-name"), "n/n/", "longer than 4095");
    refused(&case("long-component"), "nnn", "NAME_MAX");
    refused(&case("non-utf8"), "bad", "not UTF-8");
    refused(&case("root-as-file"), "./", "root");
}

/// Writes the corpus as fuzz seeds (one uncompressed tar of all its layers, concatenated:
/// the fuzz target applies the bytes as one layer). A tool, not a check, so ignored: run it with
/// `cargo test --test unpack write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "a tool, not a check: writes fuzz/seeds-unpack (cargo test --test unpack write_fuzz_seeds -- --ignored)"]
fn write_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds-unpack");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, layers) in corpus() {
        let members: Vec<M> = layers.into_iter().flatten().collect();
        std::fs::write(dir.join(name), layer(&members)).unwrap();
    }
}

/// The fuzz target's check over its kept inputs (`fuzz/seeds-unpack`, the hostile corpus as
/// single layers, and `fuzz/regressions-unpack`, inputs that once failed): applied as an
/// uncompressed layer with the fuzz target's limits, nothing outside the root may change.
fn fuzz_inputs() {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_files: 1000,
        ..Limits::default()
    };
    let mut n = 0;
    for dir in ["seeds-unpack", "regressions-unpack"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            let env = Env::new();
            let before = env.outside();
            let _ = apply_layer(&data[..], Compression::None, None, &env.root(), &limits);
            assert_eq!(
                before,
                env.outside(),
                "{}: changed the outside",
                p.display()
            );
            n += 1;
        }
    }
    assert!(n >= corpus().len(), "the kept fuzz inputs are missing");
}

/// The child's confinement: a private mount namespace, chrooted into a fresh tmpfs with the
/// repository bound read-only at its own path (the kept fuzz inputs are read there).
/// Needs a process with no other thread (libtest runs one test on its main thread with
/// `--test-threads=1`): unshare(CLONE_NEWNS) refuses a shared file system context.
fn confine() {
    use rustix::mount::{
        mount, mount_bind, mount_change, mount_remount, MountFlags, MountPropagationFlags,
    };
    use rustix::thread::{unshare_unsafe, UnshareFlags};
    // SAFETY: the child runs one test on its only thread; only the mount namespace (and the
    // file system context) is unshared.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS) }.expect("unshare(CLONE_NEWNS) as root");
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .unwrap();
    let base = std::env::temp_dir().join(format!("podc-test-unpack-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    mount("tmpfs", &base, "tmpfs", MountFlags::empty(), c"size=256m").unwrap();
    for d in ["tmp", "etc", "usr", "bin"] {
        std::fs::create_dir(base.join(d)).unwrap();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inner = base.join(repo.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inner).unwrap();
    mount_bind(repo, &inner).unwrap();
    mount_remount(&inner, MountFlags::BIND | MountFlags::RDONLY, c"").unwrap();
    rustix::process::chroot(&base).unwrap();
    std::env::set_current_dir("/").unwrap();
    // SAFETY: the only thread.
    unsafe { std::env::set_var("TMPDIR", "/tmp") };
}

/// Runs `test` confined: in the child (PODC_UNPACK_CONFINED set) directly after confine(),
/// otherwise by running this test alone in a child of this binary and passing on its result.
/// The base directory of the child's tmpfs (an empty directory in the host's temp dir once
/// the child's namespace is gone; named by the child's pid, so that tests running side by side
/// leave each other's alone) is removed afterwards.
fn run_confined(name: &str, test: fn()) {
    if std::env::var_os("PODC_UNPACK_CONFINED").is_some() {
        confine();
        test();
        return;
    }
    // Root: ownership is real, and the child confines itself in a mount namespace.
    if !common::as_root() {
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env("PODC_UNPACK_CONFINED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = std::env::temp_dir().join(format!("podc-test-unpack-{}", child.id()));
    let o = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir(base);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("1 passed"),
        "{name} in its confined child:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

macro_rules! confined_tests {
    ($($t:ident),* $(,)?) => {
        mod confined {
            $(
                #[test]
                fn $t() {
                    super::run_confined(concat!("confined::", stringify!($t)), super::$t)
                }
            )*
        }
    };
}

confined_tests!(
    multi_layer_image,
    ownership_from_headers,
    digest_checked,
    zstd_multi_frame,
    gzip_concatenated_members,
    gzip_estargz_members,
    garbage_is_a_stream_error,
    dotdot_refused,
    absolute_names_normalised,
    symlink_escapes_are_confined,
    hardlinks_out_refused,
    devices_refused,
    whiteouts_confined,
    sizes_and_counts_bounded,
    deep_tree_removal_bounded,
    bad_names_refused,
    fuzz_inputs,
);
