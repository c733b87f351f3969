//! Test images: a busybox root made into an OCI layout with `umoci`, converted and pushed with
//! `skopeo`, and a hash of a whole tree to prove an image root unchanged.
//!
//! Everything here runs as root (umoci unpacks with the image's owners) and writes only below
//! the directories it is given.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the image tests can run here: root, umoci, skopeo and a static busybox. Where not,
/// the test is recorded as skipped; in CI (`CI` set) it fails instead.
#[track_caller]
pub fn image_tools() -> bool {
    if !super::as_root() {
        return false;
    }
    if !Path::new("/bin/busybox").is_file() {
        super::skip("/bin/busybox is missing (package busybox-static)");
        return false;
    }
    super::tool("umoci", "umoci") && super::tool("skopeo", "skopeo")
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn umoci(args: &[&str]) {
    run(Command::new("umoci").args(args));
}

/// `skopeo ARGS…` with an insecure (accept anything) signature policy: test images are
/// unsigned and the host's policy file may be missing.
pub fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo").arg("--insecure-policy").args(args))
}

/// The busybox applets the test images link.
pub const APPLETS: &[&str] = &["sh", "ls", "cat", "echo", "sleep", "true", "id", "env"];

/// Makes the OCI layout `layout` (created if missing) with image `tag`: one gzip layer of
/// `/bin/busybox` and [`APPLETS`] symlinks, `/etc/hostname`, and the config `cmd` given.
pub fn busybox_layout(layout: &Path, tag: &str, cmd: &[&str]) {
    let l = layout.to_str().unwrap();
    if !layout.join("oci-layout").exists() {
        umoci(&["init", "--layout", l]);
    }
    let image = format!("{l}:{tag}");
    umoci(&["new", "--image", &image]);
    change_layer(layout, tag, |rootfs| {
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::write(rootfs.join("etc/hostname"), "busybox\n").unwrap();
    });
    let mut args = vec!["config", "--image", &image];
    let cmds: Vec<String> = cmd.iter().map(|c| format!("--config.cmd={c}")).collect();
    args.extend(cmds.iter().map(String::as_str));
    umoci(&args);
}

/// Adds a layer to `layout:tag` made by `change` on its unpacked root (umoci records what
/// changed, deletions as whiteouts).
pub fn change_layer(layout: &Path, tag: &str, change: impl FnOnce(&Path)) {
    let bundle = tempfile::tempdir_in(layout.parent().unwrap()).unwrap();
    let b = bundle.path().join("b");
    let image = format!("{}:{tag}", layout.display());
    umoci(&["unpack", "--image", &image, b.to_str().unwrap()]);
    change(&b.join("rootfs"));
    umoci(&["repack", "--image", &image, b.to_str().unwrap()]);
}

/// Adds `tar` (an uncompressed layer, e.g. with an opaque whiteout umoci never writes) as a
/// layer of `layout:tag`.
pub fn raw_layer(layout: &Path, tag: &str, tar: &[u8]) {
    let dir = tempfile::tempdir_in(layout.parent().unwrap()).unwrap();
    let f = dir.path().join("layer.tar");
    std::fs::write(&f, tar).unwrap();
    let image = format!("{}:{tag}", layout.display());
    umoci(&["raw", "add-layer", "--image", &image, f.to_str().unwrap()]);
}

/// An uncompressed layer of `entries`: (name, Some(content)) files and (name, None) dirs.
pub fn layer_tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(c.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, name, *c).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_cksum();
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// The manifest `layout:tag` names, parsed (its digest and its JSON).
pub fn layout_manifest(layout: &Path, tag: &str) -> (String, serde_json::Value) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{tag} not in {}", layout.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m = std::fs::read(blob(layout, &d)).unwrap();
    (d, serde_json::from_slice(&m).unwrap())
}

/// Where blob `digest` (`sha256:…`) of a layout is.
pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Every entry below `root` with its kind, mode, owner, size and content (files by sha256,
/// symlinks by target), one line each in path order: equal strings mean equal trees.
pub fn tree_listing(root: &Path) -> String {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                "dir".to_string()
            } else if m.is_file() {
                use sha2::Digest as _;
                let h = sha2::Sha256::digest(std::fs::read(&p).unwrap());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                format!("file {} {hex}", m.len())
            } else {
                format!("other {:o}", m.mode())
            };
            out.insert(
                rel,
                format!("{:o} {}:{} {what}", m.mode() & 0o7777, m.uid(), m.gid()),
            );
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out.iter().map(|(k, v)| format!("{k} {v}\n")).collect()
}

/// Writes `bytes` as a blob of `layout`, returning its digest and size.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let d = format!("sha256:{hex}");
    std::fs::write(blob(layout, &d), bytes).unwrap();
    (d, bytes.len() as u64)
}

/// Replaces the manifest `layout:tag` names by `edit` of it (a new blob, `index.json` updated),
/// returning the new manifest's digest.
pub fn edit_manifest(
    layout: &Path,
    tag: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let (old, mut m) = layout_manifest(layout, tag);
    edit(&mut m);
    let (d, size) = put_blob(layout, &serde_json::to_vec(&m).unwrap());
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["digest"] == old.as_str() {
            e["digest"] = d.clone().into();
            e["size"] = size.into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    d
}

/// Replaces the config of `layout:tag` by `edit` of it (new config blob and manifest).
pub fn edit_config(layout: &Path, tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let (_, m) = layout_manifest(layout, tag);
    let mut cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(layout, m["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    edit(&mut cfg);
    let (d, size) = put_blob(layout, &serde_json::to_vec(&cfg).unwrap());
    edit_manifest(layout, tag, |m| {
        m["config"]["digest"] = d.into();
        m["config"]["size"] = size.into();
    })
}

/// A tar of the directory `dir` (its files and directories, names relative to it), plus
/// `extra` members, as `docker save` ≥ 25 writes an OCI layout with a `manifest.json`.
pub fn tar_of(dir: &Path, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    for (name, content) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *content).unwrap();
    }
    b.into_inner().unwrap()
}
