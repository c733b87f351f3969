//! Test images: a busybox root made into an OCI image layout with `umoci`, converted and
//! pushed with `skopeo`. Callers check `tools()` first (it fails in CI where one is missing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether umoci and skopeo run here (in CI they must).
pub fn tools() -> bool {
    super::tool("umoci", "umoci") && super::tool("skopeo", "skopeo")
}

/// The static busybox the test images carry (package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes an OCI image layout `dir/layout` holding `layout:tag`: one layer with a busybox root
/// (`/bin/busybox`, `/bin/sh` and a few applets as symlinks, `/etc/image-name` holding `tag`),
/// then one layer per entry of `extra_layers` (files: path below the root, contents), and the
/// config `cmd`. Layers are gzip-compressed (umoci's default). Returns the layout path.
pub fn busybox_layout(
    dir: &Path,
    tag: &str,
    extra_layers: &[Vec<(&str, Vec<u8>)>],
    cmd: &[&str],
) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join(format!("bundle-{tag}"));
    let image = format!("{}:{tag}", layout.display());
    if !layout.exists() {
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout));
    }
    run(Command::new("umoci").args(["new", "--image", &image]));
    let rootless: &[&str] = if rustix::process::geteuid().is_root() {
        &[]
    } else {
        &["--rootless"]
    };
    let unpack = |cmd: &mut Command| {
        run(cmd
            .args(["unpack"])
            .args(rootless)
            .args(["--image", &image])
            .arg(&bundle))
    };
    let repack = || {
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        std::fs::remove_dir_all(&bundle).unwrap();
    };
    unpack(&mut Command::new("umoci"));
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/image-name"), tag).unwrap();
    repack();
    for files in extra_layers {
        unpack(&mut Command::new("umoci"));
        for (path, contents) in files {
            let p = bundle.join("rootfs").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        repack();
    }
    let mut config = Command::new("umoci");
    config.args(["config", "--image", &image]);
    for c in cmd {
        config.args(["--config.cmd", c]);
    }
    run(&mut config);
    layout
}

/// Copies `layout:tag` to `out:tag` with every layer recompressed as zstd.
pub fn to_zstd(layout: &Path, tag: &str, out: &Path) {
    run(Command::new("skopeo").args([
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("oci:{}:{tag}", out.display()),
    ]));
}

/// Pushes `layout:tag` to `dest` (`127.0.0.1:PORT/name:tag`) over plain HTTP, layers as they are.
pub fn push(layout: &Path, tag: &str, dest: &str) {
    assert!(
        dest.starts_with("127.0.0.1:"),
        "tests push to loopback only"
    );
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{dest}"),
    ]));
}

/// Writes `layout:tag` as a `docker save` archive at `out` (named `name:tag` inside).
pub fn docker_archive(layout: &Path, tag: &str, out: &Path, name: &str) {
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker-archive:{}:{name}:{tag}", out.display()),
    ]));
}

/// Pseudo-random bytes (xorshift), so a layer does not compress away.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
