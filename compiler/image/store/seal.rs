//! Seals: what each unpacked root held when podc made it, so that a root changed on disk
//! afterwards (a replaced binary, a deleted or added file, a changed owner or mode) is noticed
//! rather than run under the image's digest.
//!
//! `roots/<manifest hex>/seal` lists every entry of `roots/<manifest hex>/rootfs/`, in byte
//! order of its path: type, mode, owner, size, modification time and what it holds (a file's sha256, a
//! link's target, a device's numbers), then its inode number and change time. Its second line
//! is the digest of the listing without the last two columns: what the image's layers made,
//! the same for every unpack of them.
//!
//! [`Store::check_root`] compares a root with its seal. Quick (every launch): each entry's
//! inode metadata, no file read. The change time cannot be set from user space, so a file
//! rewritten and given back its old size and modification time is still caught. Full
//! (`podc image ls --verify`): every file hashed as well.

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, CONTROLS};
use sha2::Digest as _;

use super::files::hash_file;
use super::layout::Store;
use crate::image::{Digest, ImageError};

const HEADER: &str = "podc-seal 1";
/// Path bytes written as `%XX` in a seal: controls, space, `%` and everything beyond ASCII.
const ESCAPED: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

/// One entry of a root, as its seal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// `path type mode uid gid size mtime content`: what the layers made.
    made: String,
    /// `inode ctime`: this copy of it on disk.
    inode: String,
}

impl Entry {
    fn path(&self) -> &str {
        self.made.split(' ').next().unwrap_or("")
    }
}

/// How much of a root [`Store::check_root`] compares with its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Inode metadata only: no file is read.
    Quick,
    /// Also every file's content.
    Full,
}

/// Every entry of `root`, its own first (as `.`), in byte order of the path. Files are hashed
/// when `hash`; otherwise their content is `-`.
fn scan(root: &Path, hash: bool) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), ".".to_string())];
    out.push(entry(root, ".", hash)?);
    while let Some((dir, rel)) = dirs.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = percent_encode(e.file_name().as_bytes(), ESCAPED).to_string();
            let path = format!("{rel}/{name}");
            let full = e.path();
            let made = entry(&full, &path, hash)?;
            if made.made.split(' ').nth(1) == Some("d") {
                dirs.push((full, path));
            }
            out.push(made);
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

fn entry(p: &Path, path: &str, hash: bool) -> io::Result<Entry> {
    let m = fs::symlink_metadata(p)?;
    let t = m.file_type();
    let (kind, content) = if t.is_dir() {
        ("d", "-".to_string())
    } else if t.is_file() {
        let content = if hash {
            hash_file(p)?.hex().to_string()
        } else {
            "-".into()
        };
        ("f", content)
    } else if t.is_symlink() {
        let target = fs::read_link(p)?;
        let target = percent_encode(target.as_os_str().as_bytes(), ESCAPED).to_string();
        ("l", target)
    } else if t.is_char_device() || t.is_block_device() {
        let dev = rustix::fs::Dev::from(m.rdev());
        let numbers = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
        (if t.is_char_device() { "c" } else { "b" }, numbers)
    } else if t.is_fifo() {
        ("p", "-".into())
    } else {
        ("s", "-".into())
    };
    // A directory's size is the file system's business, not the layers'.
    let size = if t.is_dir() { 0 } else { m.size() };
    Ok(Entry {
        made: format!(
            "{path} {kind} {:o} {} {} {size} {} {content}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            m.mtime()
        ),
        inode: format!("{} {}.{:09}", m.ino(), m.ctime(), m.ctime_nsec()),
    })
}

/// The digest of what the layers made: the entries without their inode columns.
fn made_digest(entries: &[Entry]) -> String {
    let mut h = sha2::Sha256::new();
    for e in entries {
        h.update(e.made.as_bytes());
        h.update(b"\n");
    }
    Digest::from_hasher(h).to_string()
}

fn render(entries: &[Entry]) -> String {
    let mut s = format!("{HEADER}\n{}\n", made_digest(entries));
    for e in entries {
        s.push_str(&e.made);
        s.push(' ');
        s.push_str(&e.inode);
        s.push('\n');
    }
    s
}

/// A seal's entries, with its recorded digest checked against them.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("not a podc seal".into());
    }
    let digest = lines.next().unwrap_or_default();
    let mut entries = Vec::new();
    for line in lines {
        // The last two columns are the inode's.
        let mut cut = line.rsplitn(3, ' ');
        let (Some(ctime), Some(ino), Some(made)) = (cut.next(), cut.next(), cut.next()) else {
            return Err(format!("a broken line: {line:?}"));
        };
        entries.push(Entry {
            made: made.to_string(),
            inode: format!("{ino} {ctime}"),
        });
    }
    if made_digest(&entries) != digest {
        return Err("its listing does not match its own digest".into());
    }
    Ok(entries)
}

/// The difference between what a root holds now (`now`) and its seal that says most, in
/// words: an entry added or removed first, then a changed attribute (mtime last: a directory's
/// moves with any file added to it), then a changed inode; the first by path among equals.
fn first_difference(sealed: &[Entry], now: &[Entry], depth: Depth) -> Option<String> {
    const COLUMNS: [&str; 8] = [
        "path", "type", "mode", "owner", "group", "size", "mtime", "content",
    ];
    let mut found: Option<(u8, String)> = None;
    let mut note = |rank: u8, text: String| {
        if found.as_ref().is_none_or(|(r, _)| rank < *r) {
            found = Some((rank, text));
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < sealed.len() || j < now.len() {
        let (s, n) = (sealed.get(i), now.get(j));
        match (s, n) {
            (Some(s), n) if n.is_none_or(|n| s.path() < n.path()) => {
                note(0, format!("{}: removed", shown(s.path())));
                i += 1;
            }
            (s, Some(n)) if s.is_none_or(|s| s.path() > n.path()) => {
                note(0, format!("{}: added", shown(n.path())));
                j += 1;
            }
            (Some(s), Some(n)) => {
                let sm: Vec<&str> = s.made.split(' ').collect();
                let nm: Vec<&str> = n.made.split(' ').collect();
                for (k, name) in COLUMNS.iter().enumerate().skip(1) {
                    let unhashed = depth == Depth::Quick && k == 7 && sm[1] == "f";
                    if sm.get(k) != nm.get(k) && !unhashed {
                        let rank = if *name == "mtime" { 2 } else { 1 };
                        note(
                            rank,
                            format!(
                                "{}: {name} was {}, is {}",
                                shown(s.path()),
                                sm.get(k).unwrap_or(&"?"),
                                nm.get(k).unwrap_or(&"?")
                            ),
                        );
                    }
                }
                // The root's own change time moves when it is renamed (as gc does).
                if s.inode != n.inode && s.path() != "." {
                    note(
                        3,
                        format!(
                            "{}: rewritten in place (inode and change time were {}, are {})",
                            shown(s.path()),
                            s.inode,
                            n.inode
                        ),
                    );
                }
                i += 1;
                j += 1;
            }
            _ => break,
        }
    }
    found.map(|(_, text)| text)
}

/// A seal's path as the user knows it: `/usr/bin/x`.
fn shown(path: &str) -> String {
    let p = percent_decode_str(path).decode_utf8_lossy();
    match p.strip_prefix('.') {
        Some("") => "/".into(),
        Some(rest) => rest.to_string(),
        None => p.into_owned(),
    }
}

impl Store {
    /// Checks the root of `digest` against its seal; the error names the path that differs.
    pub fn check_root(&self, digest: &Digest, depth: Depth) -> Result<(), ImageError> {
        let root = self.root_path(digest);
        let changed = |why: String| {
            ImageError::Invalid(format!(
                "its root {} changed after podc unpacked it: {why}; \
                 remove the image (podc image rm, then podc image gc) and pull or import it again",
                root.display()
            ))
        };
        let seal = self.seal_path(digest);
        let text = match fs::read_to_string(&seal) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(changed(format!("it has no seal ({})", seal.display())))
            }
            Err(e) => return Err(ImageError::io(format!("reading {}", seal.display()))(e)),
        };
        let sealed = parse(&text).map_err(|e| changed(format!("{}: {e}", seal.display())))?;
        let now = scan(&root, depth == Depth::Full)
            .map_err(ImageError::io(format!("reading {}", root.display())))?;
        match first_difference(&sealed, &now, depth) {
            None => Ok(()),
            Some(d) => Err(changed(d)),
        }
    }
}

/// Seals the root just unpacked at `rootfs`: writes `seal` beside it (in the same directory
/// of `tmp/`, published with it by one rename). Every file is hashed.
pub(super) fn seal(rootfs: &Path, seal: &Path) -> Result<(), ImageError> {
    let entries =
        scan(rootfs, true).map_err(ImageError::io(format!("reading {}", rootfs.display())))?;
    let io = |e| ImageError::io(format!("writing {}", seal.display()))(e);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(seal)
        .map_err(io)?;
    f.write_all(render(&entries).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}
