//! A persistent volume from a pod's life with the host's ids, shifted once into the range of
//! its own user namespace.
//!
//! A pod that ran with `userNamespace: host` (the old default) left its persistent volumes
//! owned by host ids 0 to 65535. Launched in a user namespace of its own, its ids 0 to 65535
//! are `base` to `base + RANGE - 1` on the host, and those files would be `nobody` inside: its
//! root could not write its own data. So the first launch in its own user namespace gives
//! every entry of the volume whose uid (gid) is below [`RANGE`] that uid (gid) plus `base`,
//! and leaves every other id as it is. The volume's own directory is shifted last: its owner
//! in the range is what says the shift was done, so a launch that dies half-way does it again
//! next time, and what was shifted already (ids at `base` or above) is left alone.
//!
//! The volume's content is the pod's, and hostile: nothing in it is ever followed. Each entry
//! is opened relative to its directory's descriptor with `O_PATH | O_NOFOLLOW` (a symbolic
//! link is the link itself, and no FIFO or device is opened for reading), then stat'd,
//! chowned (`AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW`: a link gets lchown's semantics) and, where
//! the chown cleared its set-uid or set-gid bit, chmodded back through that same descriptor,
//! so an entry swapped under the walk never makes it change another file. A directory is read
//! through `openat(".")` of its descriptor. An entry on another file system, or the root of
//! another mount, is left with all that is below it. The walk is iterative and holds at most
//! [`MAX_OPEN`] directories open; directories deeper than that are walked after, reopened from
//! the volume name by name (`O_NOFOLLOW | O_DIRECTORY` each).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{chmodat, chownat, openat, statx, AtFlags, Dir, FileType, Gid, Mode, OFlags};
use rustix::fs::{Statx, StatxAttributes, StatxFlags, Uid, CWD};
use rustix::io::Errno;

use super::userns::RANGE;

/// How many directories the walk holds open at most, one per level.
pub const MAX_OPEN: usize = 64;

/// What a shift did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shifted {
    /// Entries given new owners (the volume's directory among them).
    pub entries: u64,
    /// Mount points (another file system or mount below the volume) left as they were.
    pub mounts: u64,
}

/// Whether the volume whose directory is open as `volume` is to be shifted into the range at
/// `base`: its directory's owner is outside that range.
pub fn needed(volume: BorrowedFd<'_>, base: u32) -> io::Result<bool> {
    let uid = stat(volume).map_err(|e| at(e, &[], None))?.stx_uid;
    Ok(!(uid >= base && uid - base < RANGE))
}

/// Gives every entry of the volume open as `volume` (its directory last) whose uid or gid is
/// below [`RANGE`] that id plus `base`; see the module's documentation.
pub fn shift(volume: BorrowedFd<'_>, base: u32) -> io::Result<Shifted> {
    let top = stat(volume).map_err(|e| at(e, &[], None))?;
    let mut walk = Walk {
        volume,
        base,
        dev: (top.stx_dev_major, top.stx_dev_minor),
        done: Shifted::default(),
        later: vec![Vec::new()],
    };
    while let Some(path) = walk.later.pop() {
        if let Some(dir) = walk.reopen(&path)? {
            walk.tree(dir, path)?;
        }
    }
    if shift_entry(volume, &top, base).map_err(|e| at(e, &[], None))? {
        walk.done.entries += 1;
    }
    Ok(walk.done)
}

struct Walk<'a> {
    volume: BorrowedFd<'a>,
    base: u32,
    /// The volume's file system.
    dev: (u32, u32),
    done: Shifted,
    /// Directories still to walk, by their names from the volume down.
    later: Vec<Vec<CString>>,
}

impl Walk<'_> {
    /// Shifts what is below the directory `dir` (at `path` in the volume), down to
    /// [`MAX_OPEN`] levels; what is deeper goes to `later`.
    fn tree(&mut self, dir: OwnedFd, mut path: Vec<CString>) -> io::Result<()> {
        let mut open = vec![Dir::new(dir).map_err(|e| at(e, &path, None))?];
        while let Some(dir) = open.last_mut() {
            let Some(entry) = dir.next() else {
                open.pop();
                if !open.is_empty() {
                    path.pop();
                }
                continue;
            };
            let entry = entry.map_err(|e| at(e, &path, None))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let parent = dir.fd().map_err(|e| at(e, &path, None))?;
            let Some(child) = self
                .entry(parent, name)
                .map_err(|e| at(e, &path, Some(name)))?
            else {
                continue;
            };
            let name = name.to_owned();
            if open.len() < MAX_OPEN {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let below = openat(&child, c".", flags, Mode::empty())
                    .and_then(Dir::new)
                    .map_err(|e| at(e, &path, Some(&name)))?;
                open.push(below);
                path.push(name);
            } else {
                let mut deeper = path.clone();
                deeper.push(name);
                self.later.push(deeper);
            }
        }
        Ok(())
    }

    /// Shifts the entry `name` of the directory `parent`; returns it (as an `O_PATH`
    /// descriptor) if it is a directory to walk.
    fn entry(&mut self, parent: BorrowedFd<'_>, name: &CStr) -> Result<Option<OwnedFd>, Errno> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Gone since the directory was read.
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = stat(fd.as_fd())?;
        if self.other_mount(&st) {
            self.done.mounts += 1;
            return Ok(None);
        }
        if shift_entry(fd.as_fd(), &st, self.base)? {
            self.done.entries += 1;
        }
        Ok(FileType::from_raw_mode(st.stx_mode.into())
            .is_dir()
            .then_some(fd))
    }

    /// Whether `st` is of another file system than the volume, or the root of another mount.
    fn other_mount(&self, st: &Statx) -> bool {
        let root = StatxAttributes::MOUNT_ROOT;
        (st.stx_dev_major, st.stx_dev_minor) != self.dev
            || st.stx_attributes_mask.contains(root) && st.stx_attributes.contains(root)
    }

    /// The directory at `path` in the volume, opened name by name without following a link;
    /// `None` if it is gone or no longer a directory of the volume's mount.
    fn reopen(&self, path: &[CString]) -> io::Result<Option<OwnedFd>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd =
            openat(self.volume, c".", flags, Mode::empty()).map_err(|e| at(e, &[], None))?;
        for (i, name) in path.iter().enumerate() {
            fd = match openat(&fd, name.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
                Err(e) => return Err(at(e, &path[..i], Some(name))),
            };
            let st = stat(fd.as_fd()).map_err(|e| at(e, &path[..=i], None))?;
            if self.other_mount(&st) {
                return Ok(None);
            }
        }
        Ok(Some(fd))
    }
}

/// The entry open as `fd` itself (a symbolic link not followed).
fn stat(fd: BorrowedFd<'_>) -> Result<Statx, Errno> {
    statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
}

/// Gives the entry open as `fd` (stat'd as `st`) its ids plus `base` where they are below
/// [`RANGE`], and its mode back if the chown took a set-uid or set-gid bit; whether it
/// changed.
fn shift_entry(fd: BorrowedFd<'_>, st: &Statx, base: u32) -> Result<bool, Errno> {
    let shifted = |id: u32| (id < RANGE).then(|| id + base);
    let (uid, gid) = (shifted(st.stx_uid), shifted(st.stx_gid));
    if uid.is_none() && gid.is_none() {
        return Ok(false);
    }
    chownat(
        fd,
        c"",
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?;
    let mode = u32::from(st.stx_mode) & 0o7777;
    let kind = FileType::from_raw_mode(st.stx_mode.into());
    if !kind.is_symlink() && mode & 0o6000 != 0 && u32::from(stat(fd)?.stx_mode) & 0o7777 != mode {
        // An O_PATH descriptor takes no fchmod; its /proc link names the same inode, whatever
        // the name in the volume is now.
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        chmodat(
            CWD,
            link.as_str(),
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )?;
    }
    Ok(true)
}

/// `e` at `path` (and `name` below it) in the volume.
fn at(e: Errno, path: &[CString], name: Option<&CStr>) -> io::Error {
    let mut shown: Vec<String> = path
        .iter()
        .chain(name.map(CStr::to_owned).as_ref())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    if shown.is_empty() {
        shown.push(".".into());
    }
    let e = io::Error::from(e);
    io::Error::new(
        e.kind(),
        format!("shifting owners, at {}: {e}", shown.join("/")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{chown, lchown, symlink, MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    const BASE: u32 = super::super::userns::FIRST_BASE + 3 * RANGE;

    fn ids(p: &Path) -> (u32, u32) {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn file(p: &Path, uid: u32, gid: u32, mode: u32) {
        fs::write(p, "x").unwrap();
        chown(p, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The volume of a launch with the host's ids, as the pod left it: files of several owners
    /// (one past the range, one shifted already), set-id files, links out of the volume, a
    /// FIFO, a tree deeper than the walk holds open, a tmpfs and a bind mount in it.
    fn fill(d: &Path, vol: &Path) -> PathBuf {
        let outside = d.join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        file(&outside.join("bait"), 0, 0, 0o644);
        file(&outside.join("dir/f"), 0, 0, 0o644);
        file(&vol.join("a"), 0, 0, 0o644);
        file(&vol.join("u"), 1234, 70000, 0o600);
        file(&vol.join("hi"), 70000, 5, 0o600);
        file(&vol.join("done"), BASE + 7, BASE + 7, 0o600);
        file(&vol.join("suid"), 0, 0, 0o4755);
        file(&vol.join("sgid"), 0, 50, 0o2755);
        symlink(outside.join("bait"), vol.join("link")).unwrap();
        symlink(outside.join("dir"), vol.join("dirlink")).unwrap();
        lchown(vol.join("link"), Some(0), Some(0)).unwrap();
        rustix::fs::mknodat(
            CWD,
            vol.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let mut deep = vol.join("deep");
        for _ in 0..(2 * MAX_OPEN + 10) {
            deep.push("x");
        }
        fs::create_dir_all(&deep).unwrap();
        file(&deep.join("bottom"), 33, 33, 0o640);
        for m in ["tmpfs", "bound"] {
            fs::create_dir(vol.join(m)).unwrap();
        }
        crate::sys::tmpfs(&vol.join("tmpfs")).unwrap();
        file(&vol.join("tmpfs/f"), 0, 0, 0o644);
        crate::sys::bind(&outside.join("dir"), &vol.join("bound"), false).unwrap();
        deep.join("bottom")
    }

    /// As root, in a mount namespace of its own: a volume made by a launch with the host's ids
    /// is shifted by the first launch in a user namespace of its own (said once in the log),
    /// and left alone by the next; ids at or past the range stay, set-id bits are kept,
    /// nothing is followed out of the volume and no mount in it is touched. A shift that died
    /// half-way is finished by the next launch.
    #[test]
    fn a_volume_of_host_ids_is_shifted_once_into_the_range() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("skipping: not root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        std::thread::spawn(move || {
            crate::sys::private_mount_namespace().unwrap();
            let root = d.join("volumes");
            let vol = root.join("p/data");
            let make = |log: &mut Vec<u8>| {
                super::super::volumes::make_persistent(&root, "p", "data", 0o755, 0, 0, log)
            };
            let mut log = Vec::new();
            // The pod's life with the host's ids: made as root's, nothing to shift.
            make(&mut log).unwrap();
            let bottom = fill(&d, &vol);
            make(&mut log).unwrap();
            assert_eq!(ids(&vol.join("a")), (0, 0));
            assert!(log.is_empty());

            // Its first launch in a user namespace of its own.
            super::super::userns::shift_owners(BASE);
            make(&mut log).unwrap();
            let said = String::from_utf8(log.clone()).unwrap();
            assert_eq!(said.lines().count(), 1, "{said}");
            let deep = 2 * MAX_OPEN + 10;
            // The volume, a, u, hi, suid, sgid, link, dirlink, fifo, deep, its x/x/…, bottom;
            // not done (shifted already), nor the two mounts.
            let entries = 1 + 8 + 1 + deep + 1;
            assert!(
                said.contains("pod p, volume data: its files were owned by the host's ids")
                    && said.contains(&format!("shifted the owners of {entries} entries into the pod's range {BASE}-{}; 2 mount point(s) in it left as they are", BASE + RANGE - 1)),
                "{said}"
            );
            assert_eq!(ids(&vol), (BASE, BASE));
            assert_eq!(ids(&vol.join("a")), (BASE, BASE));
            assert_eq!(ids(&vol.join("u")), (BASE + 1234, 70000));
            assert_eq!(ids(&vol.join("hi")), (70000, BASE + 5));
            assert_eq!(ids(&vol.join("done")), (BASE + 7, BASE + 7));
            assert_eq!(ids(&vol.join("fifo")), (BASE, BASE));
            assert_eq!(ids(&bottom), (BASE + 33, BASE + 33));
            assert_eq!(mode(&bottom), 0o640);
            assert_eq!((ids(&vol.join("suid")), mode(&vol.join("suid"))), ((BASE, BASE), 0o4755));
            assert_eq!((ids(&vol.join("sgid")), mode(&vol.join("sgid"))), ((BASE, BASE + 50), 0o2755));
            // The links themselves, not what they point to.
            assert_eq!(ids(&vol.join("link")), (BASE, BASE));
            assert_eq!(ids(&vol.join("dirlink")), (BASE, BASE));
            for p in ["outside/bait", "outside/dir", "outside/dir/f"] {
                assert_eq!(ids(&d.join(p)), (0, 0), "{p}");
            }
            // The mounts in the volume, and what is in them.
            for p in ["tmpfs", "tmpfs/f", "bound", "bound/f"] {
                assert_eq!(ids(&vol.join(p)), (0, 0), "{p}");
            }

            // Once: the next launch leaves the volume as the pod leaves it.
            chown(vol.join("a"), Some(0), Some(0)).unwrap();
            log.clear();
            make(&mut log).unwrap();
            assert!(log.is_empty(), "{}", String::from_utf8_lossy(&log));
            assert_eq!(ids(&vol.join("a")), (0, 0));

            // A shift that died before the volume's own directory: done again, and what was
            // shifted already is left as it is.
            chown(&vol, Some(0), Some(0)).unwrap();
            make(&mut log).unwrap();
            let said = String::from_utf8(log.clone()).unwrap();
            assert!(said.contains("shifted the owners of 2 entries"), "{said}");
            assert_eq!(ids(&vol.join("a")), (BASE, BASE));
            assert_eq!(ids(&vol.join("u")), (BASE + 1234, 70000));

            // A volume's directory of an id past 65535 stays outside the range: each launch
            // looks, and says nothing when it finds nothing to shift.
            chown(&vol, Some(70000), Some(BASE)).unwrap();
            log.clear();
            make(&mut log).unwrap();
            assert!(log.is_empty(), "{}", String::from_utf8_lossy(&log));
            assert_eq!(ids(&vol), (70000, BASE));
        })
        .join()
        .unwrap();
    }

    /// The volume's directory alone tells whether a shift is due: while its owner is outside
    /// the range.
    #[test]
    fn a_shift_is_due_while_the_volume_directory_is_outside_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = openat(CWD, dir.path(), flags, Mode::empty()).unwrap();
        let uid = rustix::process::geteuid().as_raw();
        assert!(needed(fd.as_fd(), uid + 1).unwrap());
        assert!(!needed(fd.as_fd(), uid).unwrap());
        if uid != 0 {
            return;
        }
        for (owner, due) in [
            (BASE - 1, true),
            (BASE, false),
            (BASE + RANGE - 1, false),
            (BASE + RANGE, true),
        ] {
            chown(dir.path(), Some(owner), None).unwrap();
            assert_eq!(needed(fd.as_fd(), BASE).unwrap(), due, "{owner}");
        }
    }
}
