//! An ingest: an image from a [`Source`] into the store, in four steps: the manifest
//! resolved, its blobs fetched and verified, the root unpacked, the root published (and the
//! name recorded last).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest};
use rustix::fs::RenameFlags;

use super::documents::*;
use super::files::*;
use super::layout::*;
use super::seal::seal;
use crate::image::unpack::{self, Compression};
use crate::image::{media, Digest, ImageError, Reference, Source};

/// The most bytes one image may unpack to, all its layers together, unless
/// `PODC_MAX_IMAGE_BYTES` says otherwise: a decompression bomb stops here, not at the disk's end.
pub const MAX_IMAGE_BYTES: u64 = 32 << 30;
/// The most layers one image may have (Docker's own limit is 127).
pub const MAX_LAYERS: usize = 256;
/// The free space an unpack leaves on the store's file system, at least (at most a twentieth
/// of the file system).
pub const FREE_RESERVE: u64 = 1 << 30;

/// The cap on one image's unpacked bytes: `PODC_MAX_IMAGE_BYTES`, else [`MAX_IMAGE_BYTES`].
pub fn max_image_bytes() -> Result<u64, ImageError> {
    match std::env::var("PODC_MAX_IMAGE_BYTES") {
        Err(_) => Ok(MAX_IMAGE_BYTES),
        Ok(v) => v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            ImageError::Invalid(format!(
                "PODC_MAX_IMAGE_BYTES={v:?} is not a number of bytes above 0"
            ))
        }),
    }
}

/// Applies the layers in order to a new directory `root` in `work`: the image's root. Each
/// layer may write what is left of the image's cap and of the free space above
/// [`FREE_RESERVE`], whichever is less; past it the unpack stops (and `work` goes).
pub(super) fn unpack_layers(
    work: &Work,
    layers: &[(PathBuf, Compression, Digest)],
    what: &str,
) -> Result<PathBuf, ImageError> {
    let staging = work.path.join("root/rootfs");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(work.path.join("root"))
        .and_then(|()| fs::DirBuilder::new().mode(0o755).create(&staging))
        .map_err(ImageError::io(format!("making {}", staging.display())))?;
    let cap = max_image_bytes()?;
    let mut left = cap;
    for (i, (p, comp, d)) in layers.iter().enumerate() {
        let (free, reserve) = free_bytes(&staging)?;
        let room = free.saturating_sub(reserve);
        let mut limits = unpack::Limits::default();
        limits.max_bytes = limits.max_bytes.min(left).min(room);
        let f = File::open(p).map_err(ImageError::io(format!("opening {}", p.display())))?;
        let stats = unpack::apply_layer(
            io::BufReader::new(f),
            *comp,
            Some(d.as_str()),
            &staging,
            &limits,
        )
        .map_err(|e| {
            let why = if limits.max_bytes == room && room < left {
                format!(" (the store's file system has {free} bytes free and keeps {reserve})")
            } else if limits.max_bytes == left {
                format!(" (an image may unpack to {cap} bytes in all: PODC_MAX_IMAGE_BYTES)")
            } else {
                String::new()
            };
            ImageError::Unpack(format!("{what}: layer {} ({d}): {e}{why}", i + 1))
        })?;
        left = left.saturating_sub(stats.bytes);
    }
    Ok(staging)
}

/// Bytes free for an unprivileged writer on the file system of `p`, and the reserve an unpack
/// leaves there: [`FREE_RESERVE`], or a twentieth of the file system where that is less (a
/// small disk, such as a VM's, would otherwise take no image at all).
fn free_bytes(p: &Path) -> Result<(u64, u64), ImageError> {
    let st = rustix::fs::statvfs(p).map_err(|e| {
        ImageError::io(format!("reading the free space of {}", p.display()))(e.into())
    })?;
    let size = st.f_blocks.saturating_mul(st.f_frsize);
    Ok((
        st.f_bavail.saturating_mul(st.f_frsize),
        FREE_RESERVE.min(size / 20),
    ))
}

impl Store {
    /// Streams a blob from `source` into `work`, hashing and counting it, and renames it into
    /// `blobs/` if it is exactly `size` bytes with digest `digest`.
    pub(super) fn fetch_blob(
        &self,
        source: &mut dyn Source,
        work: &Work,
        digest: &Digest,
        size: u64,
        max: u64,
        what: &str,
    ) -> Result<PathBuf, ImageError> {
        use sha2::Digest as _;
        let dest = self.blob_path(digest);
        if exists(&dest) {
            return Ok(dest);
        }
        if size > max {
            return Err(ImageError::Invalid(format!(
                "{what} {digest}: its descriptor says {size} bytes, more than the limit of {max}"
            )));
        }
        let tmp = work.path.join(format!("blob-{}", digest.hex()));
        let io = |e| ImageError::io(format!("{what} {digest}: writing {}", tmp.display()))(e);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&tmp)
            .map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let mut total: u64 = 0;
        let from = source.describe();
        {
            let reader = source.blob(digest, size)?;
            let mut reader = reader.take(size + 1);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(ImageError::io(format!(
                            "{what} {digest}: reading it from {from}"
                        ))(e))
                    }
                };
                total += n as u64;
                if total > size {
                    return Err(ImageError::Invalid(format!(
                        "{what} {digest}: {from} sent more than the {size} bytes its descriptor says"
                    )));
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io)?;
            }
        }
        if total < size {
            return Err(ImageError::Invalid(format!(
                "{what} {digest}: {} sent {total} bytes, its descriptor says {size}",
                source.describe()
            )));
        }
        let actual = Digest::from_hasher(hasher);
        if &actual != digest {
            return Err(ImageError::Digest {
                what: format!("{what} from {}", source.describe()),
                expected: digest.clone(),
                actual,
            });
        }
        out.sync_all().map_err(io)?;
        drop(out);
        fs::rename(&tmp, &dest).map_err(io)?;
        work.added.borrow_mut().push(digest.clone());
        Ok(dest)
    }

    /// Writes `bytes` (already checked to be `digest`) into `blobs/`.
    pub(super) fn put_document(
        &self,
        work: &Work,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), ImageError> {
        let dest = self.blob_path(digest);
        if exists(&dest) {
            return Ok(());
        }
        let tmp = work.path.join(format!("doc-{}", digest.hex()));
        let io = |e| ImageError::io(format!("writing {}", tmp.display()))(e);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &dest).map_err(io)?;
        work.added.borrow_mut().push(digest.clone());
        Ok(())
    }

    /// Fetches `reference` from `source` into the store: every blob verified, the root
    /// unpacked, then made visible at once; the name (if any) recorded last. Returns the
    /// digest of the manifest for this host's platform.
    pub fn ingest(
        &self,
        source: &mut dyn Source,
        reference: &str,
        name: Option<&Reference>,
    ) -> Result<Digest, ImageError> {
        self.ingest_with(source, reference, name, &mut |_| {})
    }

    /// [`Store::ingest`], telling `progress` what it is doing (for a progress line): the
    /// manifest resolved (through an index to this host's platform), its config and layers
    /// fetched and verified, the root unpacked and published, the name recorded.
    ///
    /// An ingest that fails takes back the blobs it added (`take_back`): the store
    /// holds what it held before, not a failed image's layers until the next `gc`.
    pub fn ingest_with(
        &self,
        source: &mut dyn Source,
        reference: &str,
        name: Option<&Reference>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Digest, ImageError> {
        let lock = self.lock(false)?;
        self.clean_tmp();
        let work = self.work()?;
        let done = self.ingest_in(source, &work, reference, name, progress);
        if done.is_err() {
            let added = work.added.take();
            drop(work);
            drop(lock);
            self.take_back(&added);
        }
        done
    }

    /// Removes the blobs `added` by a failed ingest (which holds the store's lock no more)
    /// that nothing in the store uses. Other ingests run beside one under the shared lock, and
    /// one may have found a blob this one added and be about to name it, so this waits for
    /// the exclusive lock (no ingest running) and then keeps every blob that a name, or an
    /// image whose root is in `roots/`, uses. A failure here leaves the blobs to `gc`.
    fn take_back(&self, added: &[Digest]) {
        if added.is_empty() {
            return;
        }
        let Ok(_lock) = self.lock(true) else { return };
        let Ok((_, mut keep)) = self.kept(&[]) else {
            return;
        };
        let Ok(roots) = self.root_digests() else {
            return;
        };
        for r in roots {
            if let Ok((m, manifest)) = self.manifest_of(&r, "") {
                keep.insert(m);
                keep.extend(descriptor_digest(manifest.config(), "").ok());
                keep.extend(
                    manifest
                        .layers()
                        .iter()
                        .filter_map(|l| descriptor_digest(l, "").ok()),
                );
            }
            keep.insert(r);
        }
        for d in added.iter().filter(|d| !keep.contains(d)) {
            let _ = remove_any(&self.blob_path(d));
        }
        let _ = sync_dir(&self.dir.join("blobs/sha256"));
    }

    /// The four steps of [`Store::ingest_with`] in the work directory `work`.
    fn ingest_in(
        &self,
        source: &mut dyn Source,
        work: &Work,
        reference: &str,
        name: Option<&Reference>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Digest, ImageError> {
        let from = source.describe();
        let (digest, bytes) = self.resolve_manifest(source, work, reference, name, &from)?;
        let what = format!("image {digest} from {from}");
        let layers = self.fetch_image(source, work, &digest, &bytes, &from, progress)?;
        let root = self.root_path(&digest);
        if !exists(&root) {
            progress("unpacking");
            let staging = unpack_layers(work, &layers, &what)?;
            seal(&staging, &work.path.join("root/seal"))?;
            self.publish_root(work, &staging, &digest)?;
        }
        if let Some(n) = name {
            self.write_ref(work, n, &digest)?;
        }
        Ok(digest)
    }

    /// The manifest `reference` names at `source` (`from`), through an index to this host's
    /// platform (the index kept in the store), checked against a pinned digest in `reference`
    /// or `name`: its digest and bytes.
    pub(super) fn resolve_manifest(
        &self,
        source: &mut dyn Source,
        work: &Work,
        reference: &str,
        name: Option<&Reference>,
        from: &str,
    ) -> Result<(Digest, Vec<u8>), ImageError> {
        let (mt, bytes) = get_document(source, reference, from)?;
        let top = Digest::of(&bytes);
        if let Ok(pinned) = Digest::parse(reference) {
            if pinned != top {
                return Err(ImageError::Digest {
                    what: format!("manifest {reference} from {from}"),
                    expected: pinned,
                    actual: top,
                });
            }
        }
        let (digest, bytes) = if is_index(&mt, &bytes) {
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::Invalid(format!("index {top} from {from} is not valid: {e}"))
            })?;
            let d = pick_platform(&index, &format!("index {top} from {from}"))?;
            let want = descriptor_digest(&d, &format!("index {top}"))?;
            let (_, mbytes) = get_document(source, want.as_str(), from)?;
            let got = Digest::of(&mbytes);
            if got != want {
                return Err(ImageError::Digest {
                    what: format!("manifest {want} from {from}"),
                    expected: want,
                    actual: got,
                });
            }
            if mbytes.len() as u64 != d.size() {
                return Err(ImageError::Invalid(format!(
                    "manifest {want} from {from}: {} bytes, its descriptor says {}",
                    mbytes.len(),
                    d.size()
                )));
            }
            self.put_document(work, &top, &bytes)?;
            (want, mbytes)
        } else {
            (top.clone(), bytes)
        };
        if let Some(pinned) = name.and_then(|n| n.digest.as_ref()) {
            if pinned != &digest && pinned != &top {
                return Err(ImageError::Invalid(format!(
                    "{} names digest {pinned}, but {from} gave manifest {digest}",
                    name.map(|n| n.to_string()).unwrap_or_default()
                )));
            }
        }
        Ok((digest, bytes))
    }

    /// The config and the layers of the manifest `bytes` fetched into the store, each verified
    /// by its digest and size, the config checked for this host's platform, and the manifest
    /// itself stored: each layer's blob, compression and digest.
    pub(super) fn fetch_image(
        &self,
        source: &mut dyn Source,
        work: &Work,
        digest: &Digest,
        bytes: &[u8],
        from: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<(PathBuf, Compression, Digest)>, ImageError> {
        let what = &format!("image {digest} from {from}");
        let manifest: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::Invalid(format!("manifest {digest} from {from}: {e}")))?;
        let cfg_desc = manifest.config();
        let cfg_mt = cfg_desc.media_type().to_string();
        if cfg_mt != media::OCI_CONFIG && cfg_mt != media::DOCKER_CONFIG {
            return Err(ImageError::Invalid(format!(
                "{what}: config media type `{cfg_mt}` is not an image config (this is not a container image)"
            )));
        }
        let cfg_digest = descriptor_digest(cfg_desc, what)?;
        let cfg_path = self.fetch_blob(
            source,
            work,
            &cfg_digest,
            cfg_desc.size(),
            MAX_DOCUMENT,
            "config",
        )?;
        let config = read_config(&cfg_path, &cfg_digest)?;
        check_platform(&config, what)?;
        let mut layers = Vec::new();
        if manifest.layers().len() > MAX_LAYERS {
            return Err(ImageError::Invalid(format!(
                "{what}: {} layers; podc takes at most {MAX_LAYERS}",
                manifest.layers().len()
            )));
        }
        for (i, l) in manifest.layers().iter().enumerate() {
            let mt = l.media_type().to_string();
            let comp = layer_compression(&mt)
                .map_err(|e| ImageError::Invalid(format!("{what}: layer {}: {e}", i + 1)))?;
            let d = descriptor_digest(l, what)?;
            progress(&format!(
                "layer {}/{} {} ({} bytes)",
                i + 1,
                manifest.layers().len(),
                &d.hex()[..12],
                l.size()
            ));
            let p = self.fetch_blob(
                source,
                work,
                &d,
                l.size(),
                unpack::Limits::default().max_bytes,
                "layer",
            )?;
            layers.push((p, comp, d));
        }
        self.put_document(work, digest, bytes)?;
        sync_dir(&self.dir.join("blobs/sha256"))?;
        Ok(layers)
    }

    /// Makes the unpacked root `staging` (in `work`, with its seal) the store's root of
    /// `digest`, durably; a concurrent ingest that made it first wins.
    pub(super) fn publish_root(
        &self,
        work: &Work,
        staging: &Path,
        digest: &Digest,
    ) -> Result<(), ImageError> {
        let root = self.image_dir(digest);
        let dir = File::open(staging)
            .map_err(ImageError::io(format!("opening {}", staging.display())))?;
        rustix::fs::syncfs(&dir)
            .map_err(|e| ImageError::io(format!("syncing {}", staging.display()))(e.into()))?;
        let roots = File::open(self.dir.join("roots"))
            .map_err(ImageError::io("opening roots/".to_string()))?;
        let tmpd = File::open(&work.path)
            .map_err(ImageError::io(format!("opening {}", work.path.display())))?;
        match rustix::fs::renameat_with(&tmpd, "root", &roots, digest.hex(), RenameFlags::NOREPLACE)
        {
            Ok(()) => {}
            // A concurrent ingest made it first: keep theirs, ours goes with `work`.
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => {}
            Err(e) => {
                return Err(ImageError::io(format!(
                    "renaming the root to {}",
                    root.display()
                ))(e.into()))
            }
        }
        roots
            .sync_all()
            .map_err(ImageError::io("syncing roots/".to_string()))?;
        Ok(())
    }

    /// Records `name` → `digest` (tmp file, then rename).
    pub(super) fn write_ref(
        &self,
        work: &Work,
        name: &Reference,
        digest: &Digest,
    ) -> Result<(), ImageError> {
        let tmp = work.path.join("ref");
        let dest = self.ref_path(name);
        let io = |e| ImageError::io(format!("writing {}", dest.display()))(e);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(format!("{digest}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &dest).map_err(io)?;
        sync_dir(&self.dir.join("refs"))
    }
}
