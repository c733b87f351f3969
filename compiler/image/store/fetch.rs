//! An image's layers fetched into the store, several at once where the source serves them so
//! ([`Source::concurrent`]: a registry, a request per blob), and unpacked in order while later
//! ones still arrive: layer N is applied as soon as layers 1..N are in `blobs/`.
//!
//! Each blob is streamed into the ingest's work directory, hashed and counted as it comes,
//! refused past its descriptor's size, and renamed into `blobs/` only when its digest matches:
//! a blob in `blobs/` is complete and verified whichever thread put it there, and a `kill -9`
//! leaves only such blobs and the work directory (which the next ingest removes). The first
//! failure, of a blob or of the unpack, is the one reported; it stops the other threads at
//! their next read, and nothing is published.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, PoisonError};

use super::files::*;
use super::layout::Store;
use crate::image::unpack::{self, Compression};
use crate::image::{Blobs, Digest, ImageError, Source};

/// The most bytes one image may unpack to, all its layers together, unless
/// `PODC_MAX_IMAGE_BYTES` says otherwise: a decompression bomb stops here, not at the disk's end.
pub const MAX_IMAGE_BYTES: u64 = 32 << 30;
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

/// What an ingest tells its caller as it goes, for a progress line. The threads that fetch
/// and the one that unpacks send them as things happen, in no fixed order between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The image's layers are known: `blobs` layer blobs (each counted once) of `bytes` in
    /// all, and `layers` layers to unpack (none when the store has the image's root).
    Start {
        blobs: usize,
        bytes: u64,
        layers: usize,
    },
    /// More bytes of a layer blob are in (all of one the store held already).
    Received(u64),
    /// One more layer blob is verified and in `blobs/`.
    Fetched,
    /// One more layer is applied to the root.
    Unpacked,
}

/// A layer of an image: its blob, of `size` bytes, compressed so.
pub(super) struct Layer {
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) compression: Compression,
}

/// A blob to fetch: `digest`, of `size` bytes as its descriptor says (at most `max`), called
/// `what` in messages (`config`, `layer`).
pub(super) struct Want<'a> {
    pub(super) digest: &'a Digest,
    pub(super) size: u64,
    pub(super) max: u64,
    pub(super) what: &'a str,
}

/// The first failure among an ingest's threads, and the flag that stops the others.
#[derive(Default)]
struct Failure {
    first: Mutex<Option<ImageError>>,
    stop: AtomicBool,
}

impl Failure {
    /// Records `e` unless a failure came first (then `e` is only its echo in another thread,
    /// such as a read that stopped), and stops the other threads.
    fn fail(&self, e: ImageError) {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn into_result(self) -> Result<(), ImageError> {
        match self
            .first
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A reader that fails once another thread of the ingest failed, so that a blob still
/// arriving or a layer still being applied stops at its next read.
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "stopped: another part of the ingest failed",
            ));
        }
        self.inner.read(buf)
    }
}

/// What the threads of [`Store::fetch_layers`] share.
struct Shared<'a> {
    work: &'a Work,
    layers: &'a [Layer],
    /// The distinct layer blobs, in the order of the layers that first use them.
    blobs: Vec<&'a Layer>,
    /// For each layer, the index of its blob in `blobs`.
    of_layer: Vec<usize>,
    /// The source, and the image, as messages name them.
    from: String,
    what: String,
    /// The most bytes the image may unpack to ([`max_image_bytes`]).
    cap: u64,
    failure: Failure,
    progress: &'a (dyn Fn(Event) + Sync),
}

impl Store {
    /// Streams the blob `want` from the reader `open` gives into `work`, hashing and counting
    /// it (`received` is told each piece), and renames it into `blobs/` if it is exactly its
    /// size with its digest. A blob the store holds already is not asked for (`received` is
    /// told its size at once). `from` names the source in messages.
    pub(super) fn fetch_blob<'r>(
        &self,
        work: &Work,
        want: &Want,
        from: &str,
        open: impl FnOnce() -> Result<Box<dyn Read + 'r>, ImageError>,
        received: &dyn Fn(u64),
    ) -> Result<PathBuf, ImageError> {
        use sha2::Digest as _;
        let Want {
            digest,
            size,
            max,
            what,
        } = *want;
        let dest = self.blob_path(digest);
        if exists(&dest) {
            received(size);
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
        {
            let mut reader = open()?.take(size + 1);
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
                received(n as u64);
            }
        }
        if total < size {
            return Err(ImageError::Invalid(format!(
                "{what} {digest}: {from} sent {total} bytes, its descriptor says {size}"
            )));
        }
        let actual = Digest::from_hasher(hasher);
        if &actual != digest {
            return Err(ImageError::Digest {
                what: format!("{what} from {from}"),
                expected: digest.clone(),
                actual,
            });
        }
        out.sync_all().map_err(io)?;
        drop(out);
        fs::rename(&tmp, &dest).map_err(io)?;
        work.added
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(digest.clone());
        Ok(dest)
    }

    /// Fetches the blobs of `layers` (the layers of manifest `digest`, whose document is
    /// `bytes`) the store lacks, several at once where `source` serves them so, then stores
    /// the manifest itself. Unless the store has the image's root, applies the layers in
    /// order to a new root in `work` meanwhile, each as soon as it and those before it are in,
    /// and gives that root (`work/root/rootfs`).
    pub(super) fn fetch_layers(
        &self,
        source: &mut dyn Source,
        work: &Work,
        (digest, bytes): (&Digest, &[u8]),
        layers: &[Layer],
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Option<PathBuf>, ImageError> {
        // Each blob once (an image may repeat a layer), and for each layer the blob's index.
        let mut blobs: Vec<&Layer> = Vec::new();
        let mut of_layer = Vec::with_capacity(layers.len());
        for l in layers {
            let i = match blobs.iter().position(|b| b.digest == l.digest) {
                Some(i) => i,
                None => {
                    blobs.push(l);
                    blobs.len() - 1
                }
            };
            of_layer.push(i);
        }
        let unpack = !exists(&self.root_path(digest));
        progress(Event::Start {
            blobs: blobs.len(),
            bytes: blobs.iter().map(|b| b.size).sum(),
            layers: if unpack { layers.len() } else { 0 },
        });
        let staging = if unpack {
            Some(make_staging(work)?)
        } else {
            None
        };
        let from = source.describe();
        let shared = Shared {
            work,
            layers,
            blobs,
            of_layer,
            what: format!("image {digest} from {from}"),
            from,
            cap: max_image_bytes()?,
            failure: Failure::default(),
            progress,
        };
        let (ready, arrived) = channel();
        std::thread::scope(|s| {
            let unpacker = staging.as_deref().map(|root| {
                let shared = &shared;
                s.spawn(move || {
                    if let Err(e) = self.apply_in_order(root, arrived, shared) {
                        shared.failure.fail(e);
                    }
                })
            });
            match source.concurrent() {
                Some((blobs, jobs)) if jobs > 1 && shared.blobs.len() > 1 => {
                    self.fetch_at_once(blobs, jobs, &shared, &ready)
                }
                _ => self.fetch_in_turn(source, &shared, &ready),
            }
            drop(ready);
            // Every layer is in: the manifest may say so (while the unpack goes on).
            if !shared.failure.stopped() {
                let stored = self
                    .put_document(work, digest, bytes)
                    .and_then(|()| sync_dir(&self.dir.join("blobs/sha256")));
                if let Err(e) = stored {
                    shared.failure.fail(e);
                }
            }
            if let Some(Err(panic)) = unpacker.map(|u| u.join()) {
                std::panic::resume_unwind(panic);
            }
        });
        shared.failure.into_result()?;
        Ok(staging)
    }

    /// Fetches the blobs one after another through `source`, telling `ready` each one's index
    /// once it is in `blobs/`.
    fn fetch_in_turn(&self, source: &mut dyn Source, shared: &Shared, ready: &Sender<usize>) {
        for (i, b) in shared.blobs.iter().enumerate() {
            if shared.failure.stopped() {
                return;
            }
            let stop = &shared.failure.stop;
            let fetched = self.fetch_one(shared, b, || {
                let inner = source.blob(&b.digest, b.size)?;
                Ok(Box::new(Stoppable { inner, stop }) as Box<dyn Read + '_>)
            });
            match fetched {
                Ok(()) => {
                    let _ = ready.send(i);
                }
                Err(e) => return shared.failure.fail(e),
            }
        }
    }

    /// Fetches the blobs through `blobs` on `jobs` threads at once, each taking the next blob
    /// in order (so that the first layers come first), telling `ready` each one's index once
    /// it is in `blobs/`.
    fn fetch_at_once(
        &self,
        blobs: &dyn Blobs,
        jobs: usize,
        shared: &Shared,
        ready: &Sender<usize>,
    ) {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..jobs.min(shared.blobs.len()) {
                let (ready, next) = (ready.clone(), &next);
                s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(b) = shared.blobs.get(i) else { return };
                    if shared.failure.stopped() {
                        return;
                    }
                    let stop = &shared.failure.stop;
                    let fetched = self.fetch_one(shared, b, || {
                        let inner = blobs.fetch(&b.digest, b.size)?;
                        Ok(Box::new(Stoppable { inner, stop }) as Box<dyn Read + '_>)
                    });
                    match fetched {
                        Ok(()) => {
                            let _ = ready.send(i);
                        }
                        Err(e) => return shared.failure.fail(e),
                    }
                });
            }
        });
    }

    /// One layer blob through [`Store::fetch_blob`], its bytes and its end told to the
    /// progress line.
    fn fetch_one<'r>(
        &self,
        shared: &Shared,
        b: &Layer,
        open: impl FnOnce() -> Result<Box<dyn Read + 'r>, ImageError>,
    ) -> Result<(), ImageError> {
        let want = Want {
            digest: &b.digest,
            size: b.size,
            max: unpack::Limits::default().max_bytes,
            what: "layer",
        };
        let received = |n| (shared.progress)(Event::Received(n));
        self.fetch_blob(shared.work, &want, &shared.from, open, &received)?;
        (shared.progress)(Event::Fetched);
        Ok(())
    }

    /// Applies the layers in order to `root`, each once `arrived` has said its blob is in
    /// `blobs/`. Each layer may write what is left of the image's cap and of the free space
    /// above [`FREE_RESERVE`], whichever is less; past it the unpack stops. Ends early,
    /// without an error of its own, when the fetching failed.
    fn apply_in_order(
        &self,
        root: &Path,
        arrived: Receiver<usize>,
        shared: &Shared,
    ) -> Result<(), ImageError> {
        let (cap, what) = (shared.cap, &shared.what);
        let mut ready = vec![false; shared.blobs.len()];
        let mut left = cap;
        for (i, l) in shared.layers.iter().enumerate() {
            while !ready[shared.of_layer[i]] {
                match arrived.recv() {
                    Ok(b) => ready[b] = true,
                    // Every fetching thread ended before this blob was in: they failed.
                    Err(_) => return Ok(()),
                }
            }
            if shared.failure.stopped() {
                return Ok(());
            }
            let (free, reserve) = free_bytes(root)?;
            let room = free.saturating_sub(reserve);
            let mut limits = unpack::Limits::default();
            limits.max_bytes = limits.max_bytes.min(left).min(room);
            let p = self.blob_path(&l.digest);
            let f = File::open(&p).map_err(ImageError::io(format!("opening {}", p.display())))?;
            let blob = io::BufReader::new(Stoppable {
                inner: f,
                stop: &shared.failure.stop,
            });
            let stats = unpack::apply_layer(
                blob,
                l.compression,
                Some(l.digest.as_str()),
                root,
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
                ImageError::Unpack(format!("{what}: layer {} ({}): {e}{why}", i + 1, l.digest))
            })?;
            left = left.saturating_sub(stats.bytes);
            (shared.progress)(Event::Unpacked);
        }
        Ok(())
    }
}

/// Makes the directory a new root is unpacked into, `work/root/rootfs` (`root/` 0700: the
/// root keeps setuid files).
fn make_staging(work: &Work) -> Result<PathBuf, ImageError> {
    let staging = work.path.join("root/rootfs");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(work.path.join("root"))
        .and_then(|()| fs::DirBuilder::new().mode(0o755).create(&staging))
        .map_err(ImageError::io(format!("making {}", staging.display())))?;
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
