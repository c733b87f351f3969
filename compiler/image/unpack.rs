//! Applying one OCI image layer (a tar changeset, OCI image spec `layer.md`) to a root
//! directory, safely against hostile layers.
//!
//! # Contract
//! [`apply_layer`] writes into `root`, an existing directory that earlier layers of the same
//! image were applied to. On error `root` is left in an unspecified state: the caller unpacks
//! into a staging directory of its own and discards it on any error (the store renames a
//! finished staging directory into place). The digest of the compressed blob is checked while
//! streaming, so a mismatch is only known at the end, after the layer was written: that is
//! why the staging directory is the contract, not an option.
//!
//! # Rules (ARCHITECTURE.md, "Image layers (unpacker)")
//! - Every file system operation is relative to an fd of `root`. Parent directories are opened
//!   with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: a symlink any layer made (`etc ->
//!   /`, `a -> ../../..`) resolves as if `root` were `/`, so a write through it lands inside
//!   `root`. The last component is then created, replaced or removed with a single-name `*at`
//!   call relative to that parent fd, never following it (`O_NOFOLLOW | O_EXCL`,
//!   `AT_SYMLINK_NOFOLLOW`). Symlinks themselves may point anywhere; they are never followed
//!   out of `root` while writing.
//! - Member names: a leading `/` and `.` components are dropped (as docker does; `tar -C dir .`
//!   writes `./etc`, and an absolute name then lands inside `root`); `..` components are
//!   refused, as are non-UTF-8 names, names longer than `max_path_len` and components longer
//!   than NAME_MAX (255). The entry for the root itself (`./`) is skipped: `root` belongs to
//!   the caller.
//! - Hardlinks must name an existing regular file inside `root` (checked without following a
//!   symlink). Device nodes are refused: `mknod` would put host device nodes into a shared
//!   image store that host users and every pod can reach, and no image needs them (nspawn
//!   gives each pod its own `/dev`). FIFOs are created (harmless). GNU sparse files are
//!   refused.
//! - setuid/setgid/sticky bits are kept (`ping`, `su`, `passwd` need them; they are the image's
//!   business). The store must therefore keep unpacked roots in a directory no host user can
//!   traverse (mode 0700). Owners (lchown), modes and mtimes come from the tar headers; xattrs
//!   (including `security.capability`) are ignored.
//! - Whiteouts: `.wh.NAME` removes NAME of a lower layer, `.wh..wh..opq` empties its directory
//!   of what lower layers put there; neither touches what this layer itself wrote. A whiteout
//!   of `.` or `..` is refused; other `.wh..wh.*` (AUFS metadata) are skipped.
//! - Limits: the decompressed stream (and so every member and their sum) is bounded by
//!   `max_bytes`, the number of members by `max_files`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use sha2::{Digest as _, Sha256};

/// The compression of a layer blob (from its media type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Bounds on what one layer may make.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The decompressed tar stream (headers and contents) and the compressed blob, each.
    pub max_bytes: u64,
    /// Tar members, of every kind.
    pub max_files: u64,
    /// A member name (or hardlink target) after normalisation, in bytes.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 30,
            max_files: 1_000_000,
            max_path_len: 4095,
        }
    }
}

/// NAME_MAX on Linux.
const NAME_MAX: usize = 255;

/// What one layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub members: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub fifos: u64,
    pub whiteouts: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A member the unpacker refuses (hostile or unsupported).
    #[error("layer member `{member}`: refused: {reason}")]
    Refused { member: String, reason: String },
    /// A limit of [`Limits`] was exceeded.
    #[error("layer member `{member}`: {what}")]
    Limit { member: String, what: String },
    /// A file system operation failed for a member.
    #[error("layer member `{member}`: {source}")]
    Io {
        member: String,
        #[source]
        source: io::Error,
    },
    /// The blob is not a valid compressed tar stream.
    #[error("layer is not a readable tar stream: {0}")]
    Stream(#[source] io::Error),
    /// `expected` is not `sha256:` and 64 lowercase hex digits.
    #[error("bad layer digest `{0}`: expected sha256:<64 lowercase hex digits>")]
    BadDigest(String),
    #[error("layer digest mismatch: expected {expected}, got {actual}")]
    Digest { expected: String, actual: String },
    /// The root directory could not be opened.
    #[error("layer root {path}: {source}")]
    Root {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Counts (and hashes) what passes through, failing past `limit`.
struct Meter<R> {
    inner: R,
    hasher: Option<Sha256>,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "the stream exceeds the limit of {} bytes",
                self.limit
            )));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn check_digest(expected: &str) -> Result<(), UnpackError> {
    let ok = expected.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(UnpackError::BadDigest(expected.to_string()))
    }
}

/// Applies one layer blob to `root` (see the module documentation for the rules and the
/// contract: on error, discard `root`).
pub fn apply_layer(
    blob: impl Read,
    compression: Compression,
    expected: Option<&str>,
    root: &Path,
    limits: &Limits,
) -> Result<Stats, UnpackError> {
    if let Some(e) = expected {
        check_digest(e)?;
    }
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Root {
        path: root.display().to_string(),
        source: e.into(),
    })?;
    let mut meter = Meter {
        inner: blob,
        hasher: expected.map(|_| Sha256::new()),
        read: 0,
        limit: limits.max_bytes,
    };
    let stats = {
        let decoded: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut meter),
            // Every member: eStargz and `cat a.gz b.gz` make layers of many, and a reader that
            // stopped after the first would lose the rest of the layer (whiteouts included).
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut meter)),
            Compression::Zstd => Box::new(ZstdFrames {
                src: io::BufReader::new(&mut meter),
                dec: ruzstd::decoding::FrameDecoder::new(),
                in_frame: false,
                frames: 0,
            }),
        };
        let tar_stream = Meter {
            inner: decoded,
            hasher: None,
            read: 0,
            limit: limits.max_bytes,
        };
        let mut u = Unpacker {
            root: root_fd.as_fd(),
            limits,
            stats: Stats::default(),
            made: HashSet::new(),
            dirs: Vec::new(),
        };
        u.run(tar_stream)?;
        u.finish_dirs()?;
        u.stats
    };
    if let Some(expected) = expected {
        // The digest covers the whole blob: read what the tar reader left (padding, trailer).
        io::copy(&mut meter, &mut io::sink()).map_err(UnpackError::Stream)?;
        let mut actual = String::from("sha256:");
        for b in meter.hasher.take().unwrap().finalize() {
            let _ = write!(actual, "{b:02x}");
        }
        if actual != expected {
            return Err(UnpackError::Digest {
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(stats)
}

/// A zstd stream of any number of frames (zstd's CLI and zstd:chunked write several, with
/// skippable frames between): ruzstd's `StreamingDecoder` reads only the first, which would
/// silently cut a layer short.
struct ZstdFrames<R> {
    src: R,
    dec: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
    frames: u64,
}

impl<R: io::BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::BlockDecodingStrategy;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                let d = &mut self.dec;
                while d.can_collect() < buf.len() && !d.is_finished() {
                    let more = buf.len() - d.can_collect();
                    d.decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(more))
                        .map_err(io::Error::other)?;
                }
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if !d.is_finished() || d.can_collect() > 0 {
                    continue;
                }
                self.in_frame = false;
            }
            if self.src.fill_buf()?.is_empty() {
                if self.frames == 0 {
                    return Err(io::Error::other("an empty zstd stream"));
                }
                return Ok(0);
            }
            match self.dec.init(&mut self.src) {
                Ok(()) => {
                    self.in_frame = true;
                    self.frames += 1;
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.src).take(length.into()), &mut io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::other("a truncated skippable zstd frame"));
                    }
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    limits: &'a Limits,
    stats: Stats,
    /// Normalised paths this layer made: whiteouts in the same layer do not remove them.
    made: HashSet<String>,
    /// Directories whose mode and mtime are set last (creating children changes the mtime).
    dirs: Vec<(String, u32, i64)>,
}

/// The member's name split into normal components.
fn normalise(name: &[u8], member: &str, limits: &Limits) -> Result<Vec<String>, UnpackError> {
    let refuse = |reason: &str| UnpackError::Refused {
        member: member.to_string(),
        reason: reason.to_string(),
    };
    let s = std::str::from_utf8(name).map_err(|_| refuse("the name is not UTF-8"))?;
    let mut comps = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(refuse("a `..` component")),
            c if c.len() > NAME_MAX => {
                return Err(refuse("a name component longer than NAME_MAX (255)"))
            }
            c => comps.push(c.to_string()),
        }
    }
    let len: usize = comps.iter().map(|c| c.len() + 1).sum();
    if len > limits.max_path_len {
        return Err(UnpackError::Limit {
            member: member.to_string(),
            what: format!("the name is longer than {} bytes", limits.max_path_len),
        });
    }
    Ok(comps)
}

fn display(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.into_owned()
    }
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Unpacker<'_> {
    fn run(&mut self, stream: impl Read) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive.entries().map_err(UnpackError::Stream)?;
        for entry in entries {
            let mut entry = entry.map_err(UnpackError::Stream)?;
            self.stats.members += 1;
            let raw = entry.path_bytes().into_owned();
            let member = display(&raw);
            if self.stats.members > self.limits.max_files {
                return Err(UnpackError::Limit {
                    member,
                    what: format!("more than {} members", self.limits.max_files),
                });
            }
            let size = entry.header().entry_size().map_err(UnpackError::Stream)?;
            if size > self.limits.max_bytes || self.stats.bytes + size > self.limits.max_bytes {
                return Err(UnpackError::Limit {
                    member,
                    what: format!(
                        "its size {size} exceeds the limit of {} bytes",
                        self.limits.max_bytes
                    ),
                });
            }
            self.member(&mut entry, &raw, &member)?;
        }
        Ok(())
    }

    /// Opens the directory `comps` inside root (resolving symlinks as if root were `/`),
    /// creating missing directories (mode 0755) if `create`.
    fn open_dir(&self, comps: &[String], create: bool) -> io::Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let path = if comps.is_empty() {
            ".".to_string()
        } else {
            comps.join("/")
        };
        match rustix::fs::openat2(self.root, &path, flags, Mode::empty(), IN_ROOT) {
            Err(rustix::io::Errno::NOENT) if create => {}
            r => return r.map_err(Into::into),
        }
        let mut fd = rustix::fs::openat2(self.root, ".", flags, Mode::empty(), IN_ROOT)?;
        for i in 0..comps.len() {
            let prefix = comps[..=i].join("/");
            fd = match rustix::fs::openat2(self.root, &prefix, flags, Mode::empty(), IN_ROOT) {
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&fd, comps[i].as_str(), Mode::from_raw_mode(0o755)) {
                        Err(rustix::io::Errno::EXIST) => {
                            return Err(dangling(&fd, &comps[i], &prefix))
                        }
                        r => r?,
                    }
                    rustix::fs::openat2(self.root, &prefix, flags, Mode::empty(), IN_ROOT)?
                }
                r => r?,
            };
        }
        Ok(fd)
    }

    fn member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        member: &str,
    ) -> Result<(), UnpackError> {
        let io_err = io_error(member);
        let refuse = |reason: &str| refused(member, reason);
        let kind = entry.header().entry_type();
        let comps = normalise(raw, member, self.limits)?;
        let Some((name, parent)) = comps.split_last() else {
            // The root itself (`./`): the caller's directory, left alone.
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(refuse("a non-directory named as the root"))
            };
        };
        let path = comps.join("/");

        if let Some(target) = name.strip_prefix(".wh.") {
            return self.whiteout(parent, target, member);
        }
        let meta = Meta::of(entry.header(), member)?;
        use tar::EntryType as T;
        match kind {
            T::Char | T::Block => {
                return Err(refuse("a device node (images get their /dev from nspawn)"))
            }
            T::GNUSparse => return Err(refuse("a GNU sparse file")),
            T::XGlobalHeader => return Ok(()),
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link | T::Fifo => {}
            _ => return Err(refuse("an unsupported member type")),
        }

        let dir = self.open_dir(parent, true).map_err(io_err)?;
        let name = name.as_str();
        // Replace what is there, except a directory by a directory (its metadata is updated).
        let keep_dir = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                if kind == T::Directory
                    && FileType::from_raw_mode(st.st_mode) == FileType::Directory
                {
                    true
                } else {
                    remove(&dir, OsStr::new(name)).map_err(io_err)?;
                    false
                }
            }
            Err(rustix::io::Errno::NOENT) => false,
            Err(e) => return Err(io_err(e.into())),
        };

        let at = At {
            dir: &dir,
            name,
            member,
        };
        match kind {
            T::Directory => self.directory(&at, &meta, keep_dir, &path)?,
            T::Regular | T::Continuous => self.regular(&at, &meta, entry)?,
            T::Symlink => self.symlink(&at, &meta, entry)?,
            T::Link => self.hardlink(&at, entry)?,
            T::Fifo => self.fifo(&at, &meta)?,
            _ => unreachable!(),
        }
        self.made.insert(path);
        Ok(())
    }

    /// A whiteout `.wh.<target>` in `parent`: removes what a lower layer put there (nothing
    /// if this layer made it), or all of `parent`'s lower contents for the opaque marker.
    fn whiteout(
        &mut self,
        parent: &[String],
        target: &str,
        member: &str,
    ) -> Result<(), UnpackError> {
        let io_err = io_error(member);
        let refuse = |reason: &str| refused(member, reason);
        self.stats.whiteouts += 1;
        if target == ".wh..opq" {
            return self.opaque(parent).map_err(io_err);
        }
        if target.starts_with(".wh.") {
            return Ok(()); // AUFS metadata (`.wh..wh.plnk` and the like).
        }
        if target.is_empty() || target == "." || target == ".." {
            return Err(refuse("a whiteout of `.`, `..` or nothing"));
        }
        let mut victim = parent.to_vec();
        victim.push(target.to_string());
        if self.made.contains(&victim.join("/")) {
            return Ok(());
        }
        let dir = match self.open_dir(parent, false) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc_enoent()) => return Ok(()),
            Err(e) => return Err(io_err(e)),
        };
        remove(&dir, OsStr::new(target)).map_err(io_err)
    }

    /// A directory: made (or kept, its metadata updated), owned; its mode and times are set
    /// at the end of the layer.
    fn directory(
        &mut self,
        at: &At,
        meta: &Meta,
        keep_dir: bool,
        path: &str,
    ) -> Result<(), UnpackError> {
        let (dir, name, member, owner, mode, mtime) = (
            at.dir, at.name, at.member, meta.owner, meta.mode, meta.mtime,
        );
        let io_err = io_error(member);
        if !keep_dir {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| io_err(e.into()))?;
        }
        rustix::fs::chownat(dir, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(e.into()))?;
        self.dirs.push((path.to_string(), mode, mtime));
        self.stats.dirs += 1;
        Ok(())
    }

    /// A regular file: written new (never through a link), owned, its mode and times set.
    fn regular<R: Read>(
        &mut self,
        at: &At,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let (dir, name, member, owner, mode, times) = (
            at.dir,
            at.name,
            at.member,
            meta.owner,
            meta.mode,
            &meta.times,
        );
        let io_err = io_error(member);
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err(e.into()))?;
        let mut file = std::fs::File::from(fd);
        let n = io::copy(entry, &mut file).map_err(UnpackError::Stream)?;
        self.stats.bytes += n;
        rustix::fs::fchown(&file, owner.0, owner.1).map_err(|e| io_err(e.into()))?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| io_err(e.into()))?;
        rustix::fs::futimens(&file, times).map_err(|e| io_err(e.into()))?;
        self.stats.files += 1;
        Ok(())
    }

    /// A symlink, its target as written (it is never followed while unpacking).
    fn symlink<R: Read>(
        &mut self,
        at: &At,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let (dir, name, member, owner, times) =
            (at.dir, at.name, at.member, meta.owner, &meta.times);
        let io_err = io_error(member);
        let refuse = |reason: &str| refused(member, reason);
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| refuse("a symlink without a target"))?;
        if target.is_empty() {
            return Err(refuse("a symlink without a target"));
        }
        if target.len() > self.limits.max_path_len {
            return Err(UnpackError::Limit {
                member: member.to_string(),
                what: "the symlink target is too long".into(),
            });
        }
        let target = OsStr::from_bytes(&target);
        rustix::fs::symlinkat(target, dir, name).map_err(|e| io_err(e.into()))?;
        self.set_link_meta(dir, name, owner, times)
            .map_err(io_err)?;
        self.stats.symlinks += 1;
        Ok(())
    }

    /// A hard link to a regular file this root already has.
    fn hardlink<R: Read>(
        &mut self,
        at: &At,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let (dir, name, member) = (at.dir, at.name, at.member);
        let io_err = io_error(member);
        let refuse = |reason: &str| refused(member, reason);
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| refuse("a hardlink without a target"))?;
        let tcomps = normalise(&target, member, self.limits)?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(refuse("a hardlink to the root"));
        };
        let not_file = || refuse("a hardlink whose target is not a regular file inside the root");
        let tdir = self.open_dir(tparent, false).map_err(|_| not_file())?;
        let st = rustix::fs::statat(&tdir, tname.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|_| not_file())?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(not_file());
        }
        rustix::fs::linkat(&tdir, tname.as_str(), dir, name, AtFlags::empty())
            .map_err(|e| io_err(e.into()))?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// A FIFO.
    fn fifo(&mut self, at: &At, meta: &Meta) -> Result<(), UnpackError> {
        let (dir, name, member, mode, times) = (at.dir, at.name, at.member, meta.mode, &meta.times);
        let owner = meta.owner;
        let io_err = io_error(member);
        rustix::fs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| io_err(e.into()))?;
        rustix::fs::chownat(dir, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(e.into()))?;
        // The FIFO was just made here and nothing else writes into root: chmodat
        // (which has no no-follow flag) reaches it and only it.
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
            .map_err(|e| io_err(e.into()))?;
        self.set_link_meta(dir, name, (None, None), times)
            .map_err(io_err)?;
        self.stats.fifos += 1;
        Ok(())
    }

    fn set_link_meta(
        &self,
        dir: &OwnedFd,
        name: &str,
        owner: (Option<Uid>, Option<Gid>),
        times: &Timestamps,
    ) -> io::Result<()> {
        if owner.0.is_some() {
            rustix::fs::chownat(dir, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
        }
        rustix::fs::utimensat(dir, name, times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// `.wh..wh..opq` in `parent`: removes every child a lower layer made.
    fn opaque(&mut self, parent: &[String]) -> io::Result<()> {
        let dir = match self.open_dir(parent, false) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc_enoent()) => return Ok(()),
            Err(e) => return Err(e),
        };
        let rd = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for e in rustix::fs::Dir::read_from(&rd)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        let prefix = parent.join("/");
        for n in names {
            let p = if prefix.is_empty() {
                n.clone()
            } else {
                format!("{prefix}/{n}")
            };
            if !self.made.contains(&p) {
                remove(&dir, OsStr::new(&n))?;
            }
        }
        Ok(())
    }

    /// Sets directory modes and mtimes, deepest last-made first.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let dirs = std::mem::take(&mut self.dirs);
        for (path, mode, mtime) in dirs.into_iter().rev() {
            let io_err = |e: io::Error| UnpackError::Io {
                member: path.clone(),
                source: e,
            };
            // A later member may have replaced the directory; skip what is no longer one.
            let Ok(fd) = rustix::fs::openat2(
                self.root,
                path.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            ) else {
                continue;
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(e.into()))?;
            let t = Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            };
            rustix::fs::futimens(
                &fd,
                &Timestamps {
                    last_access: t,
                    last_modification: t,
                },
            )
            .map_err(|e| io_err(e.into()))?;
        }
        Ok(())
    }
}

fn libc_enoent() -> i32 {
    rustix::io::Errno::NOENT.raw_os_error()
}

/// Directory depth `remove` descends to: symlinks let layers build trees deeper than any
/// path (each level holds an fd, and recursion a stack frame), so deeper is an error.
const MAX_REMOVE_DEPTH: usize = 256;

/// Removes `name` in `dir` (recursively for a directory), following no symlink.
fn remove(dir: &impl AsFd, name: &OsStr) -> io::Result<()> {
    remove_at(dir, name, 0)
}

fn remove_at(dir: &impl AsFd, name: &OsStr, depth: usize) -> io::Result<()> {
    if depth > MAX_REMOVE_DEPTH {
        return Err(io::Error::other(format!(
            "a directory tree deeper than {MAX_REMOVE_DEPTH} levels to remove"
        )));
    }
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut names = Vec::new();
            for e in rustix::fs::Dir::read_from(&sub)? {
                let e = e?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
            for n in names {
                remove_at(&sub, OsStr::from_bytes(&n), depth + 1)?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(Into::into)
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

/// Where a member goes: the directory it is made in, its name there, and its path in the
/// layer (for messages).
struct At<'a> {
    dir: &'a OwnedFd,
    name: &'a str,
    member: &'a str,
}

/// A member's owner, mode and times, read from its header.
struct Meta {
    mode: u32,
    mtime: i64,
    owner: (Option<Uid>, Option<Gid>),
    times: Timestamps,
}

impl Meta {
    fn of(header: &tar::Header, member: &str) -> Result<Meta, UnpackError> {
        let refuse = |reason: &str| refused(member, reason);
        let mode = header.mode().map_err(UnpackError::Stream)? & 0o7777;
        let uid = header.uid().map_err(UnpackError::Stream)?;
        let gid = header.gid().map_err(UnpackError::Stream)?;
        let mtime = header.mtime().map_err(UnpackError::Stream)?;
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(refuse("a uid or gid beyond 32 bits"));
        };
        let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        };

        Ok(Meta {
            mode,
            mtime,
            owner,
            times,
        })
    }
}

/// An I/O error while writing `member`.
fn io_error(member: &str) -> impl Fn(io::Error) -> UnpackError + Copy + '_ {
    move |source| UnpackError::Io {
        member: member.to_string(),
        source,
    }
}

/// `member` refused, and why.
fn refused(member: &str, reason: &str) -> UnpackError {
    UnpackError::Refused {
        member: member.to_string(),
        reason: reason.to_string(),
    }
}

/// Why a directory on a member's path cannot be made: `name` (in `dir`, at `path` in the
/// image) is there but leads nowhere, a symlink whose target the image does not have.
fn dangling(dir: &OwnedFd, name: &str, path: &str) -> io::Error {
    let target =
        rustix::fs::readlinkat(dir, name, Vec::new()).map(|t| t.to_string_lossy().into_owned());
    io::Error::other(match target {
        Ok(t) => format!(
            "`{path}` is a symlink to `{t}`, which the image does not have: podc makes no directory through a dangling symlink"
        ),
        Err(_) => format!("`{path}` exists but is not a directory podc can open"),
    })
}
