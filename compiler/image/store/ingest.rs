//! An ingest: an image from a [`Source`] into the store, in four steps: the manifest
//! resolved, its blobs fetched and verified while the root is unpacked from them (`fetch.rs`),
//! the root published, and the name recorded last.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::PoisonError;

use oci_spec::image::{ImageIndex, ImageManifest};
use rustix::fs::RenameFlags;

use super::documents::*;
use super::fetch::{Event, Layer, Want};
use super::files::*;
use super::layout::*;
use super::seal::seal;
use crate::image::{media, Digest, ImageError, Reference, Source};

/// The most layers one image may have (Docker's own limit is 127).
pub const MAX_LAYERS: usize = 256;

impl Store {
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
        work.added
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(digest.clone());
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
        self.ingest_with(source, reference, name, &|_| {})
    }

    /// [`Store::ingest`], telling `progress` how far it is (for a progress line): the layers'
    /// bytes as they arrive, each layer fetched and verified, each layer unpacked. The
    /// manifest is resolved (through an index to this host's platform), its config fetched,
    /// then its layers, several at once where the source serves them so, while the root is
    /// unpacked from those in; the root is published, the name recorded.
    ///
    /// An ingest that fails because of the image (a digest, a size, a document podc refuses,
    /// the unpack cap) takes back the blobs it added (`take_back`): the store holds what it
    /// held before, not a failed image's layers until the next `gc`. One that fails because of
    /// the transfer ([`ImageError::is_transfer`]: a lost connection, the deadline) keeps the
    /// blobs it verified, so that the next ingest of the image fetches only the rest; so does
    /// one that is killed.
    pub fn ingest_with(
        &self,
        source: &mut dyn Source,
        reference: &str,
        name: Option<&Reference>,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Digest, ImageError> {
        let lock = self.lock(false)?;
        self.clean_tmp();
        let work = self.work()?;
        let done = self.ingest_in(source, &work, reference, name, progress);
        if let Err(e) = &done {
            let added =
                std::mem::take(&mut *work.added.lock().unwrap_or_else(PoisonError::into_inner));
            drop(work);
            drop(lock);
            if !e.is_transfer() {
                self.take_back(&added);
            }
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
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Digest, ImageError> {
        let from = source.describe();
        let (digest, bytes) = self.resolve_manifest(source, work, reference, name, &from)?;
        if let Some(staging) = self.fetch_image(source, work, &digest, &bytes, &from, progress)? {
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
    /// by its digest and size, the config checked for this host's platform (before any
    /// layer is asked for), and the manifest itself stored; the root unpacked from the layers
    /// meanwhile, unless the store has it: that root, in `work`.
    pub(super) fn fetch_image(
        &self,
        source: &mut dyn Source,
        work: &Work,
        digest: &Digest,
        bytes: &[u8],
        from: &str,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Option<std::path::PathBuf>, ImageError> {
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
        let want = Want {
            digest: &cfg_digest,
            size: cfg_desc.size(),
            max: MAX_DOCUMENT,
            what: "config",
        };
        let cfg_path = self.fetch_blob(
            work,
            &want,
            from,
            || source.blob(&cfg_digest, cfg_desc.size()),
            &|_| {},
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
            let compression = layer_compression(&mt)
                .map_err(|e| ImageError::Invalid(format!("{what}: layer {}: {e}", i + 1)))?;
            layers.push(Layer {
                digest: descriptor_digest(l, what)?,
                size: l.size(),
                compression,
            });
        }
        self.fetch_layers(source, work, (digest, bytes), &layers, progress)
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
