//! The image store (`/var/lib/podc/images`): content-addressed, verified, shared, immutable.
//!
//! Layout (ARCHITECTURE.md, "The image store"), every directory 0700 and root's:
//! - `blobs/sha256/<hex>`: verified blobs (indexes, manifests, configs, layers), read-only.
//! - `roots/<manifest hex>/`: one unpacked root per image manifest, made once in `tmp/` and
//!   renamed here whole; never written after it is visible.
//! - `refs/<percent-encoded name>`: `registry/repo:tag` → `sha256:<manifest hex>\n`, written
//!   last (temporary file and rename), only once the root it names is complete.
//! - `tmp/`: work in progress; each entry is held with `flock` by the process making it, and
//!   an entry nobody holds is stale and removed by the next ingest or gc.
//! - `lock`: ingests hold it shared, gc and rm exclusive, so gc never removes what an ingest
//!   is about to name.
//!
//! A `kill -9` at any moment leaves only complete, verified blobs in `blobs/`, complete roots
//! in `roots/` and refs to complete roots: everything becomes visible by one `rename`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use rustix::fs::{FlockOperation, RenameFlags};

use super::{media, Digest, ImageError, Reference, Source};
use crate::image::unpack::{self, Compression};

/// The largest index, manifest or config podc reads.
pub const MAX_DOCUMENT: u64 = 4 << 20;

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
    dir: PathBuf,
}

/// The OCI name of this host's architecture (`std::env::consts::ARCH` uses Rust's).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The compression of a layer of media type `mt`, or why podc cannot apply it.
pub fn layer_compression(mt: &str) -> Result<Compression, String> {
    match mt {
        media::OCI_LAYER => Ok(Compression::None),
        media::OCI_LAYER_GZIP | media::DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
        media::OCI_LAYER_ZSTD => Ok(Compression::Zstd),
        other => Err(format!(
            "layer media type `{other}` is not supported (podc applies tar layers, plain, gzip or zstd)"
        )),
    }
}

/// Whether a document is an index (OCI index or docker manifest list), from its media type,
/// or failing that from its own `mediaType` and shape.
fn is_index(mt: &str, bytes: &[u8]) -> bool {
    match mt {
        media::OCI_INDEX | media::DOCKER_LIST => true,
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => false,
        _ => {
            #[derive(serde::Deserialize)]
            struct Probe {
                #[serde(rename = "mediaType")]
                media_type: Option<String>,
                manifests: Option<serde_json::Value>,
            }
            match serde_json::from_slice::<Probe>(bytes) {
                Ok(p) => match p.media_type.as_deref() {
                    Some(media::OCI_INDEX | media::DOCKER_LIST) => true,
                    Some(_) => false,
                    None => p.manifests.is_some(),
                },
                Err(_) => false,
            }
        }
    }
}

/// The manifest of an index for this host (linux and [`host_arch`]). A descriptor without a
/// platform is taken only when it is the index's one image manifest.
pub fn pick_platform(index: &ImageIndex, what: &str) -> Result<Descriptor, ImageError> {
    let arch = host_arch();
    let manifests: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            matches!(
                d.media_type().to_string().as_str(),
                media::OCI_MANIFEST | media::DOCKER_MANIFEST
            )
        })
        .collect();
    let fits = |d: &&&Descriptor| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
    };
    if let Some(d) = manifests.iter().find(fits) {
        return Ok((*d).clone());
    }
    if let [only] = manifests.as_slice() {
        if only.platform().is_none() {
            return Ok((*only).clone());
        }
    }
    let has: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| format!("{}/{}", p.os(), p.architecture()))
        .collect();
    Err(ImageError::Invalid(format!(
        "{what}: no image for this host's platform linux/{arch} (it has: {})",
        if has.is_empty() {
            "no platform-tagged images".to_string()
        } else {
            has.join(", ")
        }
    )))
}

fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Digest, ImageError> {
    Digest::parse(d.digest().as_ref())
        .map_err(|e| ImageError::Invalid(format!("{what}: digest {}: {e}", d.digest())))
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
const REF_FILE_KEEPS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// The name a file of `refs/` stands for, if it is one [`ref_file_name`] could have made.
pub fn ref_of_file_name(f: &str) -> Option<Reference> {
    // A malformed `%` stays as it is here, and the name then differs from what it stands for.
    let text = percent_decode_str(f).decode_utf8().ok()?;
    let r = Reference::parse(&text).ok()?;
    (ref_file_name(&r) == f).then_some(r)
}

/// A directory in `tmp/` held (flock) by this process until dropped, then removed.
struct Work {
    path: PathBuf,
    _lock: File,
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = remove_any(&self.path);
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn mkdir_0700(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

fn sync_dir(p: &Path) -> Result<(), ImageError> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(ImageError::io(format!("syncing {}", p.display())))
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

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
        for sub in ["blobs/sha256", "roots", "refs", "tmp"] {
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

    /// Where the root of manifest `d` is (whether or not it is there).
    pub fn root_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("roots").join(d.hex())
    }

    fn ref_path(&self, r: &Reference) -> PathBuf {
        self.dir.join("refs").join(ref_file_name(r))
    }

    /// Takes the store's lock: shared for an ingest, exclusive for gc and rm.
    fn lock(&self, exclusive: bool) -> Result<File, ImageError> {
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
    fn work(&self) -> Result<Work, ImageError> {
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
            let f = File::open(&path).map_err(io)?;
            rustix::fs::flock(&f, FlockOperation::LockExclusive).map_err(|e| io(e.into()))?;
            // A cleaner may have locked and removed it between the mkdir and the flock.
            let mine = f.metadata().map_err(io)?.ino();
            if fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == mine) {
                return Ok(Work { path, _lock: f });
            }
        }
    }

    /// Removes every `tmp/` entry no process holds (left by a killed ingest or gc).
    fn clean_tmp(&self) {
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

    /// Streams a blob from `source` into `work`, hashing and counting it, and renames it into
    /// `blobs/` if it is exactly `size` bytes with digest `digest`.
    fn fetch_blob(
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
        Ok(dest)
    }

    /// Writes `bytes` (already checked to be `digest`) into `blobs/`.
    fn put_document(&self, work: &Work, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
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
        fs::rename(&tmp, &dest).map_err(io)
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

    /// [`Store::ingest`], telling `progress` what it is doing (for a progress line).
    pub fn ingest_with(
        &self,
        source: &mut dyn Source,
        reference: &str,
        name: Option<&Reference>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Digest, ImageError> {
        let _lock = self.lock(false)?;
        self.clean_tmp();
        let work = self.work()?;
        let from = source.describe();
        let (mt, bytes) = get_document(source, reference, &from)?;
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
            let (_, mbytes) = get_document(source, want.as_str(), &from)?;
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
            self.put_document(&work, &top, &bytes)?;
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
        let what = format!("image {digest} from {from}");
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("manifest {digest} from {from}: {e}")))?;
        let cfg_desc = manifest.config();
        let cfg_mt = cfg_desc.media_type().to_string();
        if cfg_mt != media::OCI_CONFIG && cfg_mt != media::DOCKER_CONFIG {
            return Err(ImageError::Invalid(format!(
                "{what}: config media type `{cfg_mt}` is not an image config (this is not a container image)"
            )));
        }
        let cfg_digest = descriptor_digest(cfg_desc, &what)?;
        let cfg_path = self.fetch_blob(
            source,
            &work,
            &cfg_digest,
            cfg_desc.size(),
            MAX_DOCUMENT,
            "config",
        )?;
        let config = read_config(&cfg_path, &cfg_digest)?;
        check_platform(&config, &what)?;
        let mut layers = Vec::new();
        for (i, l) in manifest.layers().iter().enumerate() {
            let mt = l.media_type().to_string();
            let comp = layer_compression(&mt)
                .map_err(|e| ImageError::Invalid(format!("{what}: layer {}: {e}", i + 1)))?;
            let d = descriptor_digest(l, &what)?;
            progress(&format!(
                "layer {}/{} {} ({} bytes)",
                i + 1,
                manifest.layers().len(),
                &d.hex()[..12],
                l.size()
            ));
            let p = self.fetch_blob(
                source,
                &work,
                &d,
                l.size(),
                unpack::Limits::default().max_bytes,
                "layer",
            )?;
            layers.push((p, comp, d));
        }
        self.put_document(&work, &digest, &bytes)?;
        sync_dir(&self.dir.join("blobs/sha256"))?;

        let root = self.root_path(&digest);
        if !exists(&root) {
            progress("unpacking");
            let staging = work.path.join("root");
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&staging)
                .map_err(ImageError::io(format!("making {}", staging.display())))?;
            let limits = unpack::Limits::default();
            for (i, (p, comp, d)) in layers.iter().enumerate() {
                let f =
                    File::open(p).map_err(ImageError::io(format!("opening {}", p.display())))?;
                unpack::apply_layer(
                    io::BufReader::new(f),
                    *comp,
                    Some(d.as_str()),
                    &staging,
                    &limits,
                )
                .map_err(|e| ImageError::Unpack(format!("{what}: layer {} ({d}): {e}", i + 1)))?;
            }
            let dir = File::open(&staging)
                .map_err(ImageError::io(format!("opening {}", staging.display())))?;
            rustix::fs::syncfs(&dir)
                .map_err(|e| ImageError::io(format!("syncing {}", staging.display()))(e.into()))?;
            let roots = File::open(self.dir.join("roots"))
                .map_err(ImageError::io("opening roots/".to_string()))?;
            let tmpd = File::open(&work.path)
                .map_err(ImageError::io(format!("opening {}", work.path.display())))?;
            match rustix::fs::renameat_with(
                &tmpd,
                "root",
                &roots,
                digest.hex(),
                RenameFlags::NOREPLACE,
            ) {
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
        }
        if let Some(n) = name {
            self.write_ref(&work, n, &digest)?;
        }
        Ok(digest)
    }

    /// Records `name` → `digest` (tmp file, then rename).
    fn write_ref(&self, work: &Work, name: &Reference, digest: &Digest) -> Result<(), ImageError> {
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

    /// The manifest digest the ref file of `r` holds, if there is one.
    fn read_ref(&self, r: &Reference) -> Result<Option<Digest>, ImageError> {
        let p = self.ref_path(r);
        match fs::read_to_string(&p) {
            Ok(s) => Digest::parse(s.trim_end_matches('\n'))
                .map(Some)
                .map_err(|e| ImageError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(format!("reading {}", p.display()))(e)),
        }
    }

    /// A stored index or manifest (at most [`MAX_DOCUMENT`] bytes), `None` if absent.
    fn read_document(&self, d: &Digest) -> Result<Option<Vec<u8>>, ImageError> {
        let p = self.blob_path(d);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io(format!("reading {}", p.display()))(e)),
        };
        let mut v = Vec::new();
        f.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut v)
            .map_err(ImageError::io(format!("reading {}", p.display())))?;
        if v.len() as u64 > MAX_DOCUMENT {
            return Err(ImageError::Invalid(format!(
                "{}: larger than {MAX_DOCUMENT} bytes",
                p.display()
            )));
        }
        Ok(Some(v))
    }

    /// The manifest digest `d` stands for here: `d` itself, or, for a stored index, its
    /// manifest for this host.
    fn manifest_of(&self, d: &Digest, shown: &str) -> Result<(Digest, ImageManifest), ImageError> {
        let bytes = self
            .read_document(d)?
            .ok_or_else(|| ImageError::NotFound(shown.to_string()))?;
        let (m, bytes) = if is_index("", &bytes) {
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::Invalid(format!("stored index {d}: {e}")))?;
            let desc = pick_platform(&index, &format!("stored index {d}"))?;
            let m = descriptor_digest(&desc, &format!("stored index {d}"))?;
            let b = self
                .read_document(&m)?
                .ok_or_else(|| ImageError::NotFound(shown.to_string()))?;
            (m, b)
        } else {
            (d.clone(), bytes)
        };
        let manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("stored manifest {m}: {e}")))?;
        Ok((m, manifest))
    }

    /// The image `reference` names in this store (by digest if pinned, else by its tag).
    pub fn resolve(&self, reference: &Reference) -> Result<Image, ImageError> {
        let shown = reference.to_string();
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => self
                .read_ref(reference)?
                .ok_or_else(|| ImageError::NotFound(shown.clone()))?,
        };
        let (manifest, m) = self.manifest_of(&digest, &shown)?;
        let root = self.root_path(&manifest);
        if !root.is_dir() {
            return Err(ImageError::NotFound(shown));
        }
        let cfg = descriptor_digest(m.config(), &format!("stored manifest {manifest}"))?;
        let cfg_path = self.blob_path(&cfg);
        if !exists(&cfg_path) {
            return Err(ImageError::NotFound(shown));
        }
        let config = read_config(&cfg_path, &cfg)?;
        Ok(Image {
            manifest,
            root,
            config,
        })
    }

    /// Every name in `refs/` with its manifest digest, in name order. Files that are not refs
    /// are skipped (`verify` reports them).
    pub fn refs(&self) -> Result<Vec<(Reference, Digest)>, ImageError> {
        let dir = self.dir.join("refs");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(ImageError::io(format!("reading {}", dir.display())))? {
            let e = e.map_err(ImageError::io(format!("reading {}", dir.display())))?;
            let Some(r) = e.file_name().to_str().and_then(ref_of_file_name) else {
                continue;
            };
            if let Ok(Some(d)) = self.read_ref(&r) {
                out.push((r, d));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The named images, for `podc image ls`.
    pub fn list(&self) -> Result<Vec<Listed>, ImageError> {
        let mut out = Vec::new();
        for (r, d) in self.refs()? {
            let shown = r.to_string();
            let (size, created) = match self.manifest_of(&d, &shown) {
                Ok((_, m)) => {
                    let size = self.blob_size(&d)
                        + self.blob_size_of(m.config())
                        + m.layers().iter().map(|l| self.blob_size_of(l)).sum::<u64>();
                    let created = descriptor_digest(m.config(), "")
                        .ok()
                        .and_then(|c| read_config(&self.blob_path(&c), &c).ok())
                        .and_then(|c| c.created().clone());
                    (size, created)
                }
                Err(_) => (0, None),
            };
            out.push(Listed {
                reference: shown,
                manifest: d,
                size,
                created,
            });
        }
        Ok(out)
    }

    fn blob_size(&self, d: &Digest) -> u64 {
        fs::metadata(self.blob_path(d)).map_or(0, |m| m.len())
    }

    fn blob_size_of(&self, desc: &Descriptor) -> u64 {
        descriptor_digest(desc, "").map_or(0, |d| self.blob_size(&d))
    }

    /// The names in `refs/` that removing `r` removes: its own (by tag), and for a
    /// digest-pinned `r` every name of the same repository holding that digest.
    pub fn matching_refs(&self, r: &Reference) -> Result<Vec<Reference>, ImageError> {
        let mut out = Vec::new();
        if (r.tag.is_some() || r.digest.is_none()) && exists(&self.ref_path(r)) {
            let mut own = r.clone();
            if own.tag.is_some() {
                own.digest = None;
            }
            out.push(own);
        }
        if let Some(d) = &r.digest {
            for (other, od) in self.refs()? {
                if other.name() == r.name()
                    && (&od == d || other.digest.as_ref() == Some(d))
                    && !out.contains(&other)
                {
                    out.push(other);
                }
            }
        }
        Ok(out)
    }

    /// Removes the names `refs` (not the images: `gc` does that). A name that is not in the
    /// store is an error naming it; nothing is removed then.
    pub fn remove_refs(&self, refs: &[Reference]) -> Result<(), ImageError> {
        let _lock = self.lock(true)?;
        let mut paths = Vec::new();
        for r in refs {
            let found = self.matching_refs(r)?;
            if found.is_empty() {
                return Err(ImageError::NotFound(r.to_string()));
            }
            paths.extend(found.iter().map(|f| self.ref_path(f)));
        }
        for p in paths {
            remove_any(&p).map_err(ImageError::io(format!("removing {}", p.display())))?;
        }
        sync_dir(&self.dir.join("refs"))
    }

    /// The manifests and blobs `refs` and `in_use` keep.
    fn kept(
        &self,
        in_use: &[Reference],
    ) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>), ImageError> {
        let mut manifests = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        let mut tops: Vec<Digest> = self.refs()?.into_iter().map(|(_, d)| d).collect();
        for r in in_use {
            match &r.digest {
                Some(d) => tops.push(d.clone()),
                None => tops.extend(self.read_ref(r).ok().flatten()),
            }
        }
        for d in tops {
            let Ok((m, manifest)) = self.manifest_of(&d, "") else {
                continue;
            };
            blobs.insert(d);
            blobs.insert(m.clone());
            blobs.extend(descriptor_digest(manifest.config(), "").ok());
            for l in manifest.layers() {
                blobs.extend(descriptor_digest(l, "").ok());
            }
            manifests.insert(m);
        }
        // Indexes whose manifest is kept stay too (a `name@<index digest>` still resolves).
        for d in self.blob_digests()? {
            if blobs.contains(&d)
                || fs::metadata(self.blob_path(&d)).map_or(true, |m| m.len() > MAX_DOCUMENT)
            {
                continue;
            }
            let Ok(Some(bytes)) = self.read_document(&d) else {
                continue;
            };
            if bytes.first() != Some(&b'{') || !is_index("", &bytes) {
                continue;
            }
            if let Ok(index) = serde_json::from_slice::<ImageIndex>(&bytes) {
                if index
                    .manifests()
                    .iter()
                    .any(|m| descriptor_digest(m, "").is_ok_and(|m| manifests.contains(&m)))
                {
                    blobs.insert(d);
                }
            }
        }
        Ok((manifests, blobs))
    }

    fn blob_digests(&self) -> Result<Vec<Digest>, ImageError> {
        digests_in(&self.dir.join("blobs/sha256"))
    }

    fn root_digests(&self) -> Result<Vec<Digest>, ImageError> {
        digests_in(&self.dir.join("roots"))
    }

    /// Removes every root and blob no name in `refs/` and no reference of `in_use` (the
    /// installed pods' images) needs, and stale `tmp/` entries. A root is first renamed into
    /// `tmp/` (so a crash never leaves half a root in `roots/`), then deleted.
    pub fn gc(&self, in_use: &[Reference]) -> Result<Collected, ImageError> {
        let _lock = self.lock(true)?;
        self.clean_tmp();
        let (manifests, blobs) = self.kept(in_use)?;
        let mut done = Collected::default();
        for d in self.root_digests()? {
            if manifests.contains(&d) {
                continue;
            }
            let work = self.work()?;
            let to = work.path.join("root");
            fs::rename(self.root_path(&d), &to).map_err(ImageError::io(format!(
                "moving {} out",
                self.root_path(&d).display()
            )))?;
            sync_dir(&self.dir.join("roots"))?;
            remove_any(&to).map_err(ImageError::io(format!("removing {}", to.display())))?;
            done.roots.push(d);
        }
        for d in self.blob_digests()? {
            if blobs.contains(&d) {
                continue;
            }
            let p = self.blob_path(&d);
            done.bytes += fs::metadata(&p).map_or(0, |m| m.len());
            remove_any(&p).map_err(ImageError::io(format!("removing {}", p.display())))?;
            done.blobs.push(d);
        }
        Ok(done)
    }

    /// Checks the store: every blob re-hashed, every ref naming a complete image (manifest,
    /// config, layers and root), every root a stored manifest's, nothing else in `blobs/`,
    /// `roots/` and `refs/`.
    /// Returns the problems found, one sentence each (empty: the store is sound).
    pub fn verify(&self) -> Result<Vec<String>, ImageError> {
        let mut problems = Vec::new();
        // Other entries beside blobs/, roots/, refs/, tmp/ and lock are not the store's (the
        // quick start keeps a hand-made root in /var/lib/podc/images/hello): not judged.
        for e in read_names(&self.dir.join("blobs"))? {
            if e != "sha256" {
                problems.push(format!("unexpected entry blobs/{e}"));
            }
        }
        let blob_dir = self.dir.join("blobs/sha256");
        for e in read_names(&blob_dir)? {
            let p = blob_dir.join(&e);
            let Ok(d) = Digest::parse(&format!("sha256:{e}")) else {
                problems.push(format!("blobs/sha256/{e}: not named by a sha256 digest"));
                continue;
            };
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => {}
                _ => {
                    problems.push(format!("blobs/sha256/{e}: not a regular file"));
                    continue;
                }
            }
            match hash_file(&p) {
                Ok(actual) if actual == d => {}
                Ok(actual) => {
                    problems.push(format!("blobs/sha256/{e}: content hashes to {actual}"))
                }
                Err(err) => problems.push(format!("blobs/sha256/{e}: {err}")),
            }
        }
        let mut blob_set: BTreeSet<Digest> = BTreeSet::new();
        blob_set.extend(self.blob_digests()?);
        for e in read_names(&self.dir.join("roots"))? {
            match Digest::parse(&format!("sha256:{e}")) {
                Ok(d) if blob_set.contains(&d) => {
                    if !self.root_path(&d).is_dir() {
                        problems.push(format!("roots/{e}: not a directory"));
                    }
                }
                Ok(_) => problems.push(format!("roots/{e}: its manifest is not in blobs/")),
                Err(_) => problems.push(format!("roots/{e}: not named by a manifest digest")),
            }
        }
        for e in read_names(&self.dir.join("refs"))? {
            let Some(r) = ref_of_file_name(&e) else {
                problems.push(format!("refs/{e}: not a reference's file name"));
                continue;
            };
            let d = match self.read_ref(&r) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(err) => {
                    problems.push(format!("refs/{e}: {err}"));
                    continue;
                }
            };
            match self.manifest_of(&d, &r.to_string()) {
                Ok((m, manifest)) => {
                    if !self.root_path(&m).is_dir() {
                        problems.push(format!("refs/{e}: the root of {m} is missing"));
                    }
                    let mut needed = vec![manifest.config().clone()];
                    needed.extend(manifest.layers().iter().cloned());
                    for n in needed {
                        match descriptor_digest(&n, "") {
                            Ok(b) if blob_set.contains(&b) => {}
                            Ok(b) => problems.push(format!("refs/{e}: blob {b} is missing")),
                            Err(err) => problems.push(format!("refs/{e}: {err}")),
                        }
                    }
                }
                Err(err) => problems.push(format!("refs/{e}: {err}")),
            }
        }
        Ok(problems)
    }
}

fn read_names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(ImageError::io(format!("reading {}", dir.display())))? {
        let e = e.map_err(ImageError::io(format!("reading {}", dir.display())))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

fn hash_file(p: &Path) -> io::Result<Digest> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut f = File::open(p)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(Digest::from_hasher(h));
        }
        h.update(&buf[..n]);
    }
}

/// A manifest or index from `source`, at most [`MAX_DOCUMENT`] bytes.
fn get_document(
    source: &mut dyn Source,
    reference: &str,
    from: &str,
) -> Result<(String, Vec<u8>), ImageError> {
    let (mt, bytes) = source.manifest(reference)?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(ImageError::Invalid(format!(
            "manifest {reference} from {from}: {} bytes, more than the limit of {MAX_DOCUMENT}",
            bytes.len()
        )));
    }
    Ok((mt, bytes))
}

fn read_config(p: &Path, d: &Digest) -> Result<ImageConfiguration, ImageError> {
    let f = File::open(p).map_err(ImageError::io(format!("reading config {d}")))?;
    let mut v = Vec::new();
    f.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut v)
        .map_err(ImageError::io(format!("reading config {d}")))?;
    serde_json::from_slice(&v)
        .map_err(|e| ImageError::Invalid(format!("config {d} is not a valid image config: {e}")))
}

fn check_platform(config: &ImageConfiguration, what: &str) -> Result<(), ImageError> {
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    if os != "linux" || arch != host_arch() {
        return Err(ImageError::Invalid(format!(
            "{what}: the image is for {os}/{arch}; this host runs linux/{}",
            host_arch()
        )));
    }
    Ok(())
}

/// Groups names by manifest digest (for messages that list every name of an image).
pub fn names_by_digest(refs: &[(Reference, Digest)]) -> BTreeMap<Digest, Vec<String>> {
    let mut m: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (r, d) in refs {
        m.entry(d.clone()).or_default().push(r.to_string());
    }
    m
}

/// The digests named by the entries of `dir` (files or directories called by their sha256
/// hex digits), sorted; other names are skipped (`verify` reports them).
fn digests_in(dir: &Path) -> Result<Vec<Digest>, ImageError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_file_names_round_trip_and_stay_in_refs() {
        for s in [
            "127.0.0.1:5000/busybox:t",
            "docker.io/library/nginx:1.25",
            "[::1]:5000/a/b:x_y.z-w",
            "localhost/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let r = Reference::parse(s).unwrap();
            let f = ref_file_name(&r);
            assert!(!f.contains('/') && f != "." && f != "..", "{f}");
            assert_eq!(ref_of_file_name(&f).unwrap(), r, "{s}");
        }
        assert_eq!(
            ref_file_name(&Reference::parse("127.0.0.1:5000/busybox:t").unwrap()),
            "127.0.0.1%3A5000%2Fbusybox%3At"
        );
        assert!(ref_of_file_name("x%2").is_none());
        assert!(ref_of_file_name("nonsense").is_none());
    }

    #[test]
    fn a_missing_store_read_only_has_no_images_and_makes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("none");
        let store = Store::read_only(&dir);
        let r = Reference::parse("127.0.0.1:5000/a:t").unwrap();
        let e = store.resolve(&r).unwrap_err();
        assert!(matches!(e, ImageError::NotFound(_)), "{e}");
        assert!(!dir.exists());
    }

    #[test]
    fn a_store_someone_else_owns_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        Store::open(&dir).unwrap();
        let me = rustix::process::geteuid().as_raw();
        if me != 0 {
            eprintln!("skipping the foreign owner: needs root to chown");
            return;
        }
        std::os::unix::fs::lchown(&dir, Some(1234), None).unwrap();
        let e = Store::open(&dir).err().expect("refused").to_string();
        assert!(e.contains("owned by uid 1234"), "{e}");
    }

    #[test]
    fn layer_media_types_map_to_compressions() {
        assert_eq!(layer_compression(media::OCI_LAYER), Ok(Compression::None));
        assert_eq!(
            layer_compression(media::DOCKER_LAYER_GZIP),
            Ok(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(media::OCI_LAYER_ZSTD),
            Ok(Compression::Zstd)
        );
        let e = layer_compression("application/vnd.oci.image.layer.nondistributable.v1.tar")
            .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn indexes_are_told_from_manifests() {
        assert!(is_index("", br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!is_index(
            "",
            br#"{"schemaVersion":2,"config":{},"layers":[]}"#
        ));
        assert!(is_index(media::DOCKER_LIST, b""));
    }

    #[test]
    fn an_index_without_this_platform_is_refused_by_name() {
        let idx: ImageIndex = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}}]}}"#,
            media::OCI_MANIFEST,
            "0".repeat(64)
        ))
        .unwrap();
        let e = pick_platform(&idx, "index x").unwrap_err().to_string();
        assert!(e.contains("linux/s390x") && e.contains("index x"), "{e}");
    }
}
