//! The OCI layer unpacker against arbitrary bytes (an uncompressed layer): applied into a
//! fresh root inside a temp dir with sentinels beside it, it must not panic and must change
//! nothing outside the root (the temp dir, and the host directories an absolute symlink
//! would lead a write to). `tests/unpack.rs` runs the kept inputs (fuzz/seeds-unpack,
//! fuzz/regressions-unpack) through the same check.
//!
//! Run as root (ownership is applied), so a regression in the unpacker would write to the
//! host: the target first moves itself into a private mount namespace and chroots into a
//! tmpfs (with the fuzz directory bind-mounted at its own path for libFuzzer's corpus and
//! artifacts), so that an escape reaches only that tmpfs, whose `/`, `/etc`, `/usr` and
//! `/bin` are watched.

#![no_main]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use podc::image::unpack::{apply_layer, Compression, Limits};

/// Host directories whose entries an escape would change (their mtime and ctime move).
const HOST: &[&str] = &["/", "/etc", "/usr", "/bin"];

fn describe(p: &Path) -> String {
    match std::fs::symlink_metadata(p) {
        Err(_) => "absent".into(),
        Ok(md) => {
            format!(
                "{:o} {} {} {} {} {}",
                md.mode(),
                md.uid(),
                md.nlink(),
                md.len(),
                md.mtime_nsec(),
                md.ctime_nsec()
            ) + &if md.is_file() {
                format!("{:?}", std::fs::read(p).unwrap_or_default())
            } else {
                String::new()
            }
        }
    }
}

fn outside(top: &Path, root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(d) = stack.pop() {
        out.insert(d.clone(), describe(&d));
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == root {
                continue;
            }
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), describe(&p));
            }
        }
    }
    for h in HOST {
        out.insert(PathBuf::from(h), describe(Path::new(h)));
    }
    out
}

/// A private mount namespace, chrooted into a fresh tmpfs (see the module documentation).
/// Runs in LLVMFuzzerInitialize, before libFuzzer starts its threads (CLONE_NEWNS needs a
/// process whose file system context no other thread shares).
fn confine() {
    use rustix::mount::{mount, mount_bind, mount_change, MountFlags, MountPropagationFlags};
    use rustix::thread::{unshare_unsafe, UnshareFlags};
    // SAFETY: single-threaded here; only the mount namespace (and fs context) is unshared.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS) }
        .expect("unshare(CLONE_NEWNS): run as root, and single-threaded");
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .unwrap();
    let base = std::env::temp_dir().join(format!("podc-fuzz-unpack-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    mount("tmpfs", &base, "tmpfs", MountFlags::empty(), c"size=256m").unwrap();
    for d in ["tmp", "etc", "usr", "bin"] {
        std::fs::create_dir(base.join(d)).unwrap();
    }
    let cwd = std::env::current_dir().unwrap();
    let inner = base.join(cwd.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inner).unwrap();
    mount_bind(&cwd, &inner).unwrap();
    rustix::process::chroot(&base).unwrap();
    std::env::set_current_dir(&cwd).unwrap();
    // SAFETY: still single-threaded.
    unsafe { std::env::set_var("TMPDIR", "/tmp") };
}

fuzz_target!(init: confine(), |data: &[u8]| {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path();
    let root = top.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(top.join("sentinel"), "outside").unwrap();
    std::fs::create_dir(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/passwd"), "root:x:0:0").unwrap();
    let limits = Limits {
        max_bytes: 1 << 20,
        max_files: 1000,
        ..Limits::default()
    };
    let before = outside(top, &root);
    let _ = apply_layer(data, Compression::None, None, &root, &limits);
    let after = outside(top, &root);
    assert_eq!(before, after, "something outside the root changed");
});
