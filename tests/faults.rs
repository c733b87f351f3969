//! Faults while writing: `kill -9` at any moment, two builds at once, a full disk and a
//! read-only output directory each leave either the complete old tree or the complete new one.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn podc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podc"))
}

/// A pod large enough that writing it takes a while (300 units, each with a 2 kB variable).
fn manifest(exec: &str) -> String {
    let mut s = String::from("podc: 1\nname: big\napps:\n");
    for i in 0..300 {
        s.push_str(&format!(
            "  - name: a{i}\n    image: /i\n    exec: [{exec}]\n    environment: {{A: \"{}\"}}\n",
            "x".repeat(2000)
        ));
    }
    s
}

/// Every file below `dir`, relative path → content.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What podc generates for `text` saved as `dir/pod.yaml`.
fn expected(dir: &Path, text: &str) -> BTreeMap<String, String> {
    let path = dir.join("pod.yaml");
    fs::write(&path, text).unwrap();
    common::compile(&path, None).unwrap().into_iter().collect()
}

/// A deterministic sequence of delays, spread over the time a build takes.
fn delays(n: usize, span: Duration) -> Vec<Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            span.mul_f64((x % 10_000) as f64 / 10_000.0)
        })
        .collect()
}

#[test]
fn kill_9_at_any_moment_leaves_the_old_or_the_new_tree() {
    let work = tempfile::tempdir().unwrap();
    let exp = tempfile::tempdir().unwrap();
    let (old_text, new_text) = (manifest("/bin/true"), manifest("/bin/false"));
    let (old, new) = (
        expected(exp.path(), &old_text),
        expected(exp.path(), &new_text),
    );
    fs::write(work.path().join("pod.yaml"), &old_text).unwrap();
    let build = || {
        podc()
            .current_dir(work.path())
            .args(["build", "pod.yaml", "-o", "out"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long one build takes here.
    let start = Instant::now();
    assert!(build().wait().unwrap().success());
    let span = start.elapsed() + Duration::from_millis(20);
    let dest = work.path().join("out/big");
    let (mut olds, mut news, mut finished) = (0, 0, 0);
    for (trial, delay) in delays(120, span).into_iter().enumerate() {
        // Alternate the manifest so every trial replaces one complete tree with another.
        let (from, to, text) = if trial % 2 == 0 {
            (&old, &new, &new_text)
        } else {
            (&new, &old, &old_text)
        };
        let before = tree(&dest);
        if &before != from {
            // The previous trial's build was killed before its swap: the tree is still `to`.
            assert_eq!(
                &before, to,
                "trial {trial}: the tree is neither old nor new"
            );
        }
        fs::write(work.path().join("pod.yaml"), text).unwrap();
        let mut child = build();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        if child.wait().unwrap().success() {
            finished += 1;
        }
        let after = tree(&dest);
        if &after == to {
            news += 1;
        } else {
            assert!(
                after == before,
                "trial {trial} (killed after {delay:?}): a mixed tree"
            );
            olds += 1;
        }
    }
    eprintln!(
        "120 kills: {olds} left the old tree, {news} the new one ({finished} builds had finished)"
    );
    assert!(
        olds > 0 && news > 0,
        "the kills did not land both before and after the swap"
    );
    // Leftover staging directories of killed builds are removed by the next build.
    assert!(podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "out"])
        .status()
        .unwrap()
        .success());
    let names: Vec<String> = fs::read_dir(work.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["big".to_string()]);
}

#[test]
fn concurrent_builds_end_with_one_complete_tree_and_the_loser_says_why() {
    let work = tempfile::tempdir().unwrap();
    let exp = tempfile::tempdir().unwrap();
    let texts = [manifest("/bin/true"), manifest("/bin/false")];
    let trees = [
        expected(exp.path(), &texts[0]),
        expected(exp.path(), &texts[1]),
    ];
    for (i, t) in texts.iter().enumerate() {
        fs::create_dir(work.path().join(i.to_string())).unwrap();
        fs::write(work.path().join(i.to_string()).join("pod.yaml"), t).unwrap();
    }
    let out = work.path().join("out");
    let mut refused = 0;
    for _ in 0..5 {
        let children: Vec<_> = (0..2)
            .map(|i| {
                podc()
                    .current_dir(work.path().join(i.to_string()))
                    .args(["build", "pod.yaml", "-o"])
                    .arg(&out)
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let results: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        assert!(
            results.iter().any(|r| r.status.success()),
            "neither build finished"
        );
        for r in &results {
            if !r.status.success() {
                refused += 1;
                assert_eq!(r.status.code(), Some(2));
                let msg = String::from_utf8_lossy(&r.stderr);
                assert!(
                    msg.contains("another podc build is writing here now"),
                    "{msg}"
                );
            }
        }
        let t = tree(&out.join("big"));
        assert!(
            t == trees[0] || t == trees[1],
            "a mixed tree after concurrent builds"
        );
    }
    eprintln!("5 races: {refused} builds refused");
}

#[test]
fn symlinked_output_directories_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, work.path().join("out")).unwrap();
    fs::copy(
        common::root().join("tests/fixtures/good/minimal.yaml"),
        work.path().join("pod.yaml"),
    )
    .unwrap();
    let o = podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "out"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbolic link"));
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    // A pod directory that is a symlink is not followed either.
    let out2 = work.path().join("out2");
    fs::create_dir(&out2).unwrap();
    std::os::unix::fs::symlink(&target, out2.join("hello")).unwrap();
    let o = podc()
        .current_dir(work.path())
        .args(["build", "pod.yaml", "-o", "out2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !common::as_root() {
            return None;
        }
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs");
        Some(Tmpfs(dir.to_path_buf()))
    }

    fn remount(&self, opts: &str) {
        assert!(Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_or_read_only_output_leaves_the_old_tree() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let Some(fs_) = Tmpfs::new(&out, "256k") else {
        return;
    };
    let small = "podc: 1\nname: big\napps:\n  - {name: a, image: /i, exec: [/bin/true]}\n";
    fs::write(work.path().join("pod.yaml"), small).unwrap();
    let build = || {
        podc()
            .current_dir(work.path())
            .args(["build", "pod.yaml", "-o", "out"])
            .output()
            .unwrap()
    };
    assert!(build().status.success());
    let before = tree(&out.join("big"));

    // Full: the big pod (1.3 MB) does not fit in 256 kB.
    fs::write(work.path().join("pod.yaml"), manifest("/bin/true")).unwrap();
    let o = build();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No space left on device"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(tree(&out.join("big")), before);
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        1,
        "staging left behind"
    );

    // Read-only.
    fs::write(
        work.path().join("pod.yaml"),
        small.replace("/bin/true", "/bin/false"),
    )
    .unwrap();
    fs_.remount("ro");
    let o = build();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    fs_.remount("rw");
    assert_eq!(tree(&out.join("big")), before);
}
