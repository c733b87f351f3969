//! The file work of the store: work directories in `tmp/` held with `flock`, fsyncs, and
//! reading digest-named entries.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use crate::image::{Digest, ImageError};

/// A directory in `tmp/` held (flock) by this process until dropped, then removed.
pub(super) struct Work {
    pub(super) path: PathBuf,
    pub(super) _lock: File,
    /// The blobs this work renamed into `blobs/` (they were not there when it looked): what a
    /// failed ingest takes back. The threads fetching blobs at once each add theirs.
    pub(super) added: Mutex<Vec<Digest>>,
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = remove_any(&self.path);
    }
}

pub(super) fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn mkdir_0700(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

pub(super) fn sync_dir(p: &Path) -> Result<(), ImageError> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(ImageError::io(format!("syncing {}", p.display())))
}

pub(super) fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

pub(super) static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) fn read_names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(ImageError::io(format!("reading {}", dir.display())))? {
        let e = e.map_err(ImageError::io(format!("reading {}", dir.display())))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

/// The digest of the regular file `p`, opened without following a link (a store's blob, or a
/// file of an unpacked root).
pub(super) fn hash_file(p: &Path) -> io::Result<Digest> {
    use sha2::Digest as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut h = sha2::Sha256::new();
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(p)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(Digest::from_hasher(h));
        }
        h.update(&buf[..n]);
    }
}

/// The digests named by the entries of `dir` (files or directories called by their sha256
/// hex digits), sorted; other names are skipped (`verify` reports them).
pub(super) fn digests_in(dir: &Path) -> Result<Vec<Digest>, ImageError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(ImageError::io(format!("reading {}", dir.display())))? {
        let e = e.map_err(ImageError::io(format!("reading {}", dir.display())))?;
        if let Some(d) = e
            .file_name()
            .to_str()
            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
        {
            out.push(d);
        }
    }
    out.sort();
    Ok(out)
}

/// What the store holds is what was verified when it came in, or it is not used: `bytes`,
/// read back from the store as `what`, must still hash to `d`.
pub(super) fn check_stored(bytes: &[u8], d: &Digest, what: &str) -> Result<(), ImageError> {
    let actual = Digest::of(bytes);
    if actual == *d {
        return Ok(());
    }
    Err(ImageError::Digest {
        what: format!("{what} (the store was changed)"),
        expected: d.clone(),
        actual,
    })
}
