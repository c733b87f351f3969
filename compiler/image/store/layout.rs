//! The store on disk (`blobs/sha256/`, `roots/`, `refs/`, `tmp/`), opened read-write or
//! read-only, and its lock.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustix::fs::FlockOperation;

use super::files::*;
use crate::image::{Digest, ImageError, Reference};

/// The store podc uses unless told otherwise (`PODC_IMAGE_STORE` in the environment, for tests
/// and for hosts that keep images elsewhere).
pub fn default_dir() -> PathBuf {
    std::env::var_os("PODC_IMAGE_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/podc/images"))
}

/// One image as the store holds it, ready to run.
#[derive(Debug, Clone)]
pub struct Image {
    /// The digest of the image's manifest (for this host's platform).
    pub manifest: Digest,
    /// The unpacked root filesystem, shared read-only by every pod that runs the image.
    pub root: PathBuf,
    /// The image's configuration (entrypoint, cmd, env, working directory, user, …).
    pub config: oci_spec::image::ImageConfiguration,
}

/// One named image, as `podc image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name (`registry/repo:tag`, or `registry/repo@sha256:…` for a digest-only name).
    pub reference: String,
    pub manifest: Digest,
    /// The bytes of the manifest, config and layers as stored (compressed).
    pub size: u64,
    /// The config's `created`, if it has one.
    pub created: Option<String>,
}

/// What `gc` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub roots: Vec<Digest>,
    pub blobs: Vec<Digest>,
    /// The bytes of the removed blobs.
    pub bytes: u64,
}

/// An opened store.
pub struct Store {
    pub(super) dir: PathBuf,
}

/// A reference's file name in `refs/`: its name percent-encoded (every byte but letters,
/// digits, `.`, `_` and `-`), so no name can climb out of `refs/`.
pub fn ref_file_name(r: &Reference) -> String {
    let key = match (&r.tag, &r.digest) {
        (Some(t), _) => format!("{}:{t}", r.name()),
        (None, Some(d)) => format!("{}@{d}", r.name()),
        (None, None) => format!("{}:latest", r.name()),
    };
    utf8_percent_encode(&key, REF_FILE_KEEPS).to_string()
}

/// What a reference's file name keeps as it is; every other byte is `%XX`.
pub(super) const REF_FILE_KEEPS: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// The name a file of `refs/` stands for, if it is one [`ref_file_name`] could have made.
pub fn ref_of_file_name(f: &str) -> Option<Reference> {
    // A malformed `%` stays as it is here, and the name then differs from what it stands for.
    let text = percent_decode_str(f).decode_utf8().ok()?;
    let r = Reference::parse(&text).ok()?;
    (ref_file_name(&r) == f).then_some(r)
}

impl Store {
    /// Opens the store at `dir`, making its layout if it has none.
    pub fn open(dir: &Path) -> Result<Store, ImageError> {
        let io = |what: &str| ImageError::io(format!("image store {}: {what}", dir.display()));
        mkdir_0700(dir).map_err(io("making it"))?;
        // Whoever owns the store could swap a root under every pod: it must be ours (root's).
        let owner = fs::symlink_metadata(dir).map_err(io("reading it"))?.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(ImageError::Invalid(format!(
                "image store {}: owned by uid {owner}, not by this user (uid {me}); refusing to use it",
                dir.display()
            )));
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io("making it private (0700)"))?;
        for sub in ["blobs/sha256", "roots", "refs", "tmp", "leases"] {
            mkdir_0700(&dir.join(sub)).map_err(io(&format!("making {sub}/")))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The store at `dir` for reading only ([`Store::resolve`], [`Store::list`],
    /// [`Store::verify`]): makes nothing, so a host without a store just has no images
    /// (`podc launch --check` changes nothing).
    pub fn read_only(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the verified blob `d` is (whether or not it is there).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    /// Where the image of manifest `d` is unpacked (whether or not it is there): its root
    /// (`rootfs/`) and that root's seal, made in `tmp/` and renamed here together.
    pub(super) fn image_dir(&self, d: &Digest) -> PathBuf {
        self.dir.join("roots").join(d.hex())
    }

    /// Where the root of manifest `d` is (whether or not it is there).
    pub fn root_path(&self, d: &Digest) -> PathBuf {
        self.image_dir(d).join("rootfs")
    }

    /// What the root of manifest `d` held when it was unpacked (see `seal.rs`).
    pub(super) fn seal_path(&self, d: &Digest) -> PathBuf {
        self.image_dir(d).join("seal")
    }

    pub(super) fn ref_path(&self, r: &Reference) -> PathBuf {
        self.dir.join("refs").join(ref_file_name(r))
    }

    /// Takes the store's lock: shared for an ingest and a launch, exclusive for gc and rm.
    pub(super) fn lock(&self, exclusive: bool) -> Result<File, ImageError> {
        let p = self.dir.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(ImageError::io(format!("opening {}", p.display())))?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        rustix::fs::flock(&f, op)
            .map_err(|e| ImageError::io(format!("locking {}", p.display()))(e.into()))?;
        Ok(f)
    }

    /// A fresh directory in `tmp/`, locked by this process.
    pub(super) fn work(&self) -> Result<Work, ImageError> {
        let tmp = self.dir.join("tmp");
        let io = |e| ImageError::io(format!("making a work directory in {}", tmp.display()))(e);
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!(
                "work-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = tmp.join(name);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(e)),
            }
            let f = match File::open(&path) {
                Ok(f) => f,
                // Another ingest's cleaner removed it between the mkdir and the open.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            rustix::fs::flock(&f, FlockOperation::LockExclusive).map_err(|e| io(e.into()))?;
            // A cleaner may have locked and removed it between the mkdir and the flock.
            let mine = f.metadata().map_err(io)?.ino();
            if fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == mine) {
                return Ok(Work {
                    path,
                    _lock: f,
                    added: Default::default(),
                });
            }
        }
    }

    /// Removes every `tmp/` entry no process holds (left by a killed ingest or gc).
    pub(super) fn clean_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.dir.join("tmp")) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(f) = File::open(&p) else { continue };
            if rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = remove_any(&p);
            }
        }
    }
}
