//! A pod's own user namespace: the range of host ids it runs as, allocated by podc and kept
//! with the tree, and the idmapped mounts through which the pod sees the files it shares with
//! the host (its tree, the host's /usr, image roots) with their owners shifted into that range,
//! the files themselves unchanged.
//!
//! The range is podc's own rather than nspawn's `--private-users=pick`: pick derives a range
//! from the machine name and may change it when another container holds it, and a pod's
//! persistent data must keep its owners from one start to the next. podc records each range in
//! `/var/lib/podc/userns/<base>` (the tree it belongs to) and in the tree's `state/userns`,
//! under a lock, from [`FIRST_BASE`] up: above the ranges nspawn picks from (524288 to
//! 1879048191), so a container of nspawn's own cannot be given a pod's ids.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How many ids a pod has: uid and gid 0 to 65535 inside.
pub const RANGE: u32 = 65536;
/// The first pod's base; the next ones follow, [`RANGE`] apart.
pub const FIRST_BASE: u32 = 0x7000_0000;
/// How many pods can have a range: up to 0x7FFE0000, where systemd's reserved ids begin.
pub const MAX_RANGES: u32 = (0x7FFE_0000 - FIRST_BASE) / RANGE;
/// The registry of ranges: `<base>` holds the tree's path.
pub const REGISTRY: &str = "/var/lib/podc/userns";
/// The tree's record of its range, below its `state` directory.
pub const TREE_RECORD: &str = "userns";

/// A pod's ids on the host: `base` to `base + RANGE - 1`, which are 0 to 65535 in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub base: u32,
}

impl IdRange {
    /// The host id of id `id` in the pod.
    pub fn host(&self, id: u32) -> u32 {
        self.base + id
    }
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.base, self.base + RANGE - 1)
    }
}

thread_local! {
    /// The base of the range of the pod being launched (0: the host's ids), which every owner
    /// the launcher gives a file of the pod's is shifted by.
    static SHIFT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Shifts every owner the launcher gives from now on by `base` (see [`host_id`]).
pub fn shift_owners(base: u32) {
    SHIFT.with(|s| s.set(base));
}

/// The host id of the pod's id `id`: itself, or in a pod of its own user namespace, the id of
/// its range.
pub fn host_id(id: u32) -> u32 {
    SHIFT.with(|s| s.get()) + id
}

/// Where the registry of ranges is: [`REGISTRY`], or for tests `PODC_USERNS_DIR`.
pub fn registry() -> PathBuf {
    std::env::var_os("PODC_USERNS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(REGISTRY))
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The range recorded in the tree at `state` (its `state` directory), if any.
pub fn recorded(state: &Path) -> Option<IdRange> {
    let text = fs::read_to_string(state.join(TREE_RECORD)).ok()?;
    let base: u32 = text.trim().parse().ok()?;
    valid_base(base).then_some(IdRange { base })
}

fn valid_base(base: u32) -> bool {
    base >= FIRST_BASE
        && (base - FIRST_BASE).is_multiple_of(RANGE)
        && (base - FIRST_BASE) / RANGE < MAX_RANGES
}

/// The range of the tree at `tree` (its `state` directory at `state`): the one it recorded,
/// if the registry gives it to no other tree, else the lowest free one, recorded in both.
/// `registry` is [`REGISTRY`] but in tests.
pub fn allocate(tree: &Path, state: &Path, registry: &Path) -> io::Result<IdRange> {
    fs::create_dir_all(registry).map_err(io_at(registry))?;
    let lock_path = registry.join(".lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_at(&lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_at(&lock_path)(e.into()))?;
    let owner = |base: u32| -> Option<PathBuf> {
        fs::read_to_string(registry.join(base.to_string()))
            .ok()
            .map(|t| PathBuf::from(t.trim_end_matches('\n')))
    };
    if let Some(r) = recorded(state) {
        match owner(r.base) {
            Some(t) if t == tree => return Ok(r),
            None => {
                write_record(registry, state, tree, r)?;
                return Ok(r);
            }
            Some(_) => {} // another tree holds it: this copy gets a range of its own
        }
    }
    // A tree installed again where it was (`podc uninstall` without `--delete-data`, then
    // `podc install`) has lost its record but not its data: it gets the range the registry
    // still gives its path, so the data keeps its owners.
    if let Some(r) = owned_by(registry, tree) {
        write_record(registry, state, tree, r)?;
        return Ok(r);
    }
    let free = (0..MAX_RANGES)
        .map(|i| IdRange {
            base: FIRST_BASE + i * RANGE,
        })
        .find(|r| owner(r.base).is_none())
        .ok_or_else(|| {
            io::Error::other(format!(
                "every one of the {MAX_RANGES} id ranges in {} is taken",
                registry.display()
            ))
        })?;
    write_record(registry, state, tree, free)?;
    drop(lock);
    Ok(free)
}

fn write_record(registry: &Path, state: &Path, tree: &Path, r: IdRange) -> io::Result<()> {
    let entry = registry.join(r.base.to_string());
    fs::write(&entry, format!("{}\n", tree.display())).map_err(io_at(&entry))?;
    fs::create_dir_all(state).map_err(io_at(state))?;
    let record = state.join(TREE_RECORD);
    fs::write(&record, format!("{}\n", r.base)).map_err(io_at(&record))
}

/// The range whose registry entry names `tree`, if one does.
fn owned_by(registry: &Path, tree: &Path) -> Option<IdRange> {
    fs::read_dir(registry).ok()?.flatten().find_map(|e| {
        let base: u32 = e.file_name().to_str()?.parse().ok()?;
        let owner = fs::read_to_string(e.path()).ok()?;
        (valid_base(base) && Path::new(owner.trim_end_matches('\n')) == tree)
            .then_some(IdRange { base })
    })
}

/// Gives up the range of the tree at `tree` (`podc uninstall --delete-data`: no data of the
/// pod's is left to own): its registry entry, if there is one.
pub fn release(tree: &Path, registry: &Path) {
    if let Some(r) = owned_by(registry, tree) {
        let _ = fs::remove_file(registry.join(r.base.to_string()));
    }
}

/// A user namespace whose ids 0 to 65535 are `range` on the host: what an idmapped mount is
/// made with. Made by a short-lived child (`sleep`) that unshares one; the namespace lives on
/// in the descriptor.
pub fn namespace(range: IdRange) -> io::Result<OwnedFd> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: unshare is async-signal-safe and touches no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let proc = PathBuf::from(format!("/proc/{}", child.id()));
    let map = format!("0 {} {RANGE}\n", range.base);
    let result = fs::write(proc.join("uid_map"), &map)
        .and_then(|()| fs::write(proc.join("gid_map"), &map))
        .and_then(|()| fs::File::open(proc.join("ns/user")))
        .map(OwnedFd::from);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `mount_setattr(2)`'s argument: what to set on a mount (rustix does not offer the call).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Makes the detached mount `tree` (its top mount only) idmapped through `userns`.
fn set_idmap(
    tree: &OwnedFd,
    userns: BorrowedFd<'_>,
    read_only: bool,
    source: &Path,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: rustix::fd::AsRawFd::as_raw_fd(&userns) as u64,
    };
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes of `attr`, which lives across
    // the call; the path is the empty C string with AT_EMPTY_PATH, naming the descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            rustix::fd::AsRawFd::as_raw_fd(tree),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "an idmapped mount of {} (Linux 5.12 and a file system that allows it: ext4, xfs, btrfs; tmpfs from 6.3): {e}",
                source.display()
            ),
        ));
    }
    Ok(())
}

/// Binds `source` (that mount alone, without what is mounted below it) at `target`, its
/// owners seen through `userns`: a file the host's uid 0 owns is owned by the pod's root.
/// Read-only if asked. Needs Linux 5.12 and a file system that allows it (ext4, xfs, btrfs;
/// tmpfs from Linux 6.3).
pub fn idmapped_bind(
    source: &Path,
    target: &Path,
    userns: BorrowedFd<'_>,
    read_only: bool,
) -> io::Result<()> {
    use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
    let tree = open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| io_at(source)(e.into()))?;
    set_idmap(&tree, userns, read_only, source)?;
    move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| io_at(target)(e.into()))
}

/// Whether the kernel and the file system of `path` allow an idmapped mount of it: one is
/// made detached and dropped (`podc launch --check`).
pub fn can_idmap(path: &Path, userns: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let tree = open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| io_at(path)(e.into()))?;
    set_idmap(&tree, userns, false, path)
}

/// Puts an idmapped copy of the tree of mounts at `root` over it, the top mount alone
/// idmapped (files the host's root wrote there are the pod's root's) and the mounts below it
/// as they are. Called once every mount of the pod is in place, as the launcher writes there
/// as the host's root, which an idmapped mount cannot map.
pub fn idmapped_top(root: &Path, userns: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
    let tree = open_tree(
        rustix::fs::CWD,
        root,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| io_at(root)(e.into()))?;
    set_idmap(&tree, userns, false, root)?;
    move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        root,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| io_at(root)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_allocated_once_kept_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (sa, sb) = (a.join("state"), b.join("state"));
        let ra = allocate(&a, &sa, &registry).unwrap();
        let rb = allocate(&b, &sb, &registry).unwrap();
        assert_eq!(ra.base, FIRST_BASE);
        assert_eq!(rb.base, FIRST_BASE + RANGE);
        // The same tree keeps its range.
        assert_eq!(allocate(&a, &sa, &registry).unwrap(), ra);
        assert_eq!(recorded(&sa), Some(ra));
        // A copy of tree a elsewhere (its record copied too) gets a range of its own.
        let c = dir.path().join("c");
        fs::create_dir_all(c.join("state")).unwrap();
        fs::copy(sa.join(TREE_RECORD), c.join("state").join(TREE_RECORD)).unwrap();
        let rc = allocate(&c, &c.join("state"), &registry).unwrap();
        assert_ne!(rc, ra);
        assert_ne!(rc, rb);
        // Installed again at its path, its record gone: the same range.
        fs::remove_dir_all(&sa).unwrap();
        assert_eq!(allocate(&a, &sa, &registry).unwrap(), ra);
        assert_eq!(recorded(&sa), Some(ra));
        release(&a, &registry);
        assert!(!registry.join(ra.base.to_string()).exists());
        // Released, the range is free for the next tree.
        let d = dir.path().join("d");
        assert_eq!(allocate(&d, &d.join("state"), &registry).unwrap(), ra);
        // A record that is not a range's base is not taken.
        fs::write(sb.join(TREE_RECORD), format!("{}\n", FIRST_BASE + 1)).unwrap();
        assert_eq!(recorded(&sb), None);
        assert_eq!(
            ra.to_string(),
            format!("{}-{}", FIRST_BASE, FIRST_BASE + 65535)
        );
    }
}

#[cfg(test)]
mod mount_tests {
    use super::*;

    /// As root, in a mount namespace of its own: a file of the host's root, seen through an
    /// idmapped bind, is owned by the range's base, also as an overlay's lower layer (the
    /// upper one plain), where a copy-up keeps that owner on disk; the idmapped top of a tree
    /// leaves the mounts below it as they were.
    #[test]
    fn idmapped_binds_shift_owners_and_carry_an_overlay() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("skipping: not root");
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let r = IdRange {
            base: FIRST_BASE + 7 * RANGE,
        };
        let out = std::thread::spawn(move || -> Result<Vec<u32>, String> {
            let e = |w: &'static str| move |e: io::Error| format!("{w}: {e}");
            crate::sys::private_mount_namespace().map_err(e("unshare"))?;
            for p in ["img", "lower", "upper", "work", "root/merged", "root/plain"] {
                fs::create_dir_all(d.join(p)).unwrap();
            }
            fs::write(d.join("img/f"), "image").unwrap();
            fs::write(d.join("root/own"), "tree").unwrap();
            let ns = namespace(r).map_err(e("namespace"))?;
            idmapped_bind(&d.join("img"), &d.join("lower"), ns.as_fd(), true)
                .map_err(e("bind lower"))?;
            let seen = fs::metadata(d.join("lower/f")).unwrap().uid();
            crate::sys::overlay(
                &d.join("lower"),
                &d.join("upper"),
                &d.join("work"),
                &d.join("root/merged"),
            )
            .map_err(e("overlay"))?;
            let merged = fs::metadata(d.join("root/merged/f")).unwrap().uid();
            fs::write(d.join("root/merged/f"), "copied up").unwrap();
            let copied = fs::metadata(d.join("upper/f")).unwrap().uid();
            crate::sys::bind(&d.join("img"), &d.join("root/plain"), true).map_err(e("bind"))?;
            idmapped_top(&d.join("root"), ns.as_fd()).map_err(e("top"))?;
            let own = fs::metadata(d.join("root/own")).unwrap().uid();
            let below = fs::metadata(d.join("root/plain/f")).unwrap().uid();
            Ok(vec![seen, merged, copied, own, below])
        })
        .join()
        .unwrap();
        assert_eq!(out.unwrap(), [r.base, r.base, r.base, r.base, 0]);
    }
}
