//! The few Linux system calls std does not offer, through rustix: atomic exchange of two paths,
//! a private mount namespace, bind and tmpfs mounts, and the effective uid.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, statvfs, RenameFlags, StatVfsMountFlags, CWD};
use rustix::mount::{
    mount, mount_bind_recursive, mount_change, mount_remount, MountFlags, MountPropagationFlags,
};

/// Atomically swaps two directory entries.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    Ok(renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)?)
}

/// Moves this (single-threaded) process into a new mount namespace whose mounts do not
/// propagate back to the host; they vanish when its last process exits.
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: podc launch has one thread when it calls this, so no other thread can be left
    // with a view of the old namespace that it relies on.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)? };
    Ok(mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?)
}

/// Binds `source` at `target` with every mount below it, then, if asked, makes each of those
/// mounts read-only: a read-only remount of the top mount alone leaves the submounts writable.
/// Each remount repeats the mount's own flags (`nosuid`, `nodev`, `noexec`, atime), which a
/// remount that does not name them may reset.
pub fn bind(source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
    bind_with(source, target, read_only, false)
}

/// [`bind`], and with `noexec` no program runs from any of those mounts.
pub fn bind_with(source: &Path, target: &Path, read_only: bool, noexec: bool) -> io::Result<()> {
    mount_bind_recursive(source, target)?;
    if read_only || noexec {
        let mut add = MountFlags::BIND;
        if read_only {
            add |= MountFlags::RDONLY;
        }
        if noexec {
            add |= MountFlags::NOEXEC;
        }
        for point in mounts_at_or_below(target)? {
            mount_remount(&point, add | kept_flags(&point)?, "")?;
        }
    }
    Ok(())
}

/// The per-mount flags of the mount at `point` that a remount must repeat to keep them.
fn kept_flags(point: &Path) -> io::Result<MountFlags> {
    let have = statvfs(point)?.f_flag;
    let mut keep = MountFlags::empty();
    for (st, ms) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if have.contains(st) {
            keep |= ms;
        }
    }
    Ok(keep)
}

/// Mount points of this mount namespace at `target` or below it, from /proc/self/mountinfo,
/// parents before children.
fn mounts_at_or_below(target: &Path) -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(target))
        .collect();
    points.sort();
    points.dedup();
    Ok(points)
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts a fresh tmpfs at `target`.
pub fn tmpfs(target: &Path) -> io::Result<()> {
    Ok(mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=0755",
    )?)
}

/// Mounts a fresh tmpfs at `target` that holds at most `size` bytes (the kernel counts whole
/// pages), its root directory with `mode`, `uid` and `gid`.
pub fn tmpfs_sized(target: &Path, size: u64, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    let options =
        std::ffi::CString::new(format!("size={size},mode={mode:04o},uid={uid},gid={gid}"))?;
    Ok(mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        options.as_c_str(),
    )?)
}

/// Mounts an overlay at `target`: `lower` read-only beneath, writes going to `upper`. The
/// paths must not hold `,`, `:` or `\` (the manifest rules refuse those).
pub fn overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let options = std::ffi::CString::new(options)?;
    Ok(mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        options.as_c_str(),
    )?)
}

pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            super::unescape_mountinfo(r"/a\040b\011c\134d"),
            "/a b\tc\\d"
        );
        assert_eq!(super::unescape_mountinfo(r"/a\x"), "/a\\x");
        assert_eq!(super::unescape_mountinfo("/plain"), "/plain");
    }
}
