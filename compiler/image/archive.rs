//! Images from files: an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and `docker save` / `podman save` archives (a tar with `manifest.json`;
//! docker ≥ 25 also puts an OCI layout in it, which is preferred). Both are [`Source`]s: the
//! store verifies every byte they give, so nothing here needs to be trusted.
//!
//! A tar archive is never extracted: its member table (offset and size of each member) is read
//! once, and a member is read by seeking to it. For a docker archive without an OCI layout an
//! OCI manifest is made from `manifest.json` (config and layers hashed as they are read), so
//! the same archive always gives the same manifest digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path};

use oci_spec::image::ImageIndex;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::store::MAX_DOCUMENT;
use super::{media, Digest, ImageError, Source};

/// Members of a tar archive podc reads at most (an archive is a handful of blobs).
const MAX_MEMBERS: usize = 100_000;
/// The OCI annotation naming an index entry (often a tag alone, `latest`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker ≥ 25's) annotation with the full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where an archive's files are.
enum Files {
    /// A directory, opened once: its members are opened beneath it.
    Dir(std::os::fd::OwnedFd),
    Tar {
        file: File,
        /// Member name (normalised, no `./`) → offset and size of its contents.
        members: BTreeMap<String, (u64, u64)>,
    },
}

impl Files {
    fn open_tar(path: &Path, shown: &str) -> Result<Files, ImageError> {
        let file = File::open(path).map_err(ImageError::io(format!("opening {shown}")))?;
        let mut members = BTreeMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        {
            let mut ar = tar::Archive::new(&file);
            let entries = ar
                .entries_with_seek()
                .map_err(|e| ImageError::Invalid(format!("{shown}: not a tar archive: {e}")))?;
            for e in entries {
                let e =
                    e.map_err(|e| ImageError::Invalid(format!("{shown}: bad tar archive: {e}")))?;
                if members.len() + links.len() >= MAX_MEMBERS {
                    return Err(ImageError::Invalid(format!(
                        "{shown}: more than {MAX_MEMBERS} members; not an image archive"
                    )));
                }
                let Some(name) = e.path().ok().and_then(|p| normalise(&p)) else {
                    continue;
                };
                let kind = e.header().entry_type();
                if kind.is_file() {
                    members.insert(name, (e.raw_file_position(), e.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let Some(target) = e.link_name().ok().flatten() else {
                        continue;
                    };
                    let target = if kind.is_symlink() {
                        Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(t) = normalise(&target) {
                        links.push((name, t));
                    }
                }
            }
        }
        // Docker's legacy layout links identical layers (`a/layer.tar -> ../b/layer.tar`).
        for (name, target) in links {
            if let Some(&m) = members.get(&target) {
                members.entry(name).or_insert(m);
            }
        }
        Ok(Files::Tar { file, members })
    }

    /// Whether `name` is there (a regular file).
    fn has(&self, name: &str) -> bool {
        match self {
            Files::Dir(d) => open_beneath(d, name).is_ok(),
            Files::Tar { members, .. } => members.contains_key(name),
        }
    }

    /// A reader of `name` and its size.
    fn open(&mut self, name: &str) -> io::Result<(Box<dyn Read + '_>, u64)> {
        match self {
            Files::Dir(d) => {
                let f = open_beneath(d, name)?;
                let len = f.metadata()?.len();
                Ok((Box::new(io::BufReader::new(f).take(len)), len))
            }
            Files::Tar { file, members } => {
                let &(off, size) = members
                    .get(name)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such member"))?;
                file.seek(SeekFrom::Start(off))?;
                Ok((Box::new(io::BufReader::new(&*file).take(size)), size))
            }
        }
    }

    /// The whole of `name`, refused past `max` bytes.
    fn read(&mut self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let (mut r, size) = self.open(name)?;
        if size > max {
            return Err(io::Error::other(format!(
                "{size} bytes, more than the limit of {max}"
            )));
        }
        let mut v = Vec::with_capacity(size as usize);
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    /// The digest and size of `name`, read through.
    fn hash(&mut self, name: &str) -> io::Result<(Digest, u64)> {
        use sha2::Digest as _;
        let (mut r, _) = self.open(name)?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok((Digest::from_hasher(h), total));
            }
            total += n as u64;
            h.update(&buf[..n]);
        }
    }
}

/// A member of a layout directory: resolved beneath the directory (a symlink may not leave
/// it), opened without blocking (a FIFO or device is not waited on) and only if it is a
/// regular file. Reads are then bounded by the size it had when opened.
fn open_beneath(dir: &std::os::fd::OwnedFd, name: &str) -> io::Result<File> {
    let fd = rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => io::Error::other(format!(
            "{name} leads out of the directory (a symlink to elsewhere); podc reads only what is in it"
        )),
        e => e.into(),
    })?;
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!("{name} is not a regular file")));
    }
    Ok(f)
}

/// A member or path name with `.` components and a leading `/` dropped; `None` if it climbs
/// (`..`) or is empty.
fn normalise(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// One image an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The names the archive gives it (full references, or tags alone), best first.
    pub names: Vec<String>,
    /// What to ask [`Source::manifest`] for: the digest of its manifest or index.
    pub digest: Digest,
}

/// An OCI layout or a docker archive, opened.
pub struct Archive {
    shown: String,
    files: Files,
    entries: Vec<Entry>,
    /// Media types the layout's `index.json` gives its entries.
    media_types: BTreeMap<Digest, String>,
    /// For a docker archive: the manifests podc made, and where each blob is.
    made: BTreeMap<Digest, Vec<u8>>,
    blobs: BTreeMap<Digest, String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Archive {
    /// Opens `path`: a directory is an OCI layout; a file is a tar archive (an OCI layout in
    /// a tar, or a docker/podman archive).
    pub fn open(path: &Path) -> Result<Archive, ImageError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(ImageError::io(format!("opening {shown}")))?;
        let files = if meta.is_dir() {
            let dir = rustix::fs::open(
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ImageError::io(format!("opening {shown}"))(e.into()))?;
            Files::Dir(dir)
        } else {
            Files::open_tar(path, &shown)?
        };
        let mut a = Archive {
            shown,
            files,
            entries: Vec::new(),
            media_types: BTreeMap::new(),
            made: BTreeMap::new(),
            blobs: BTreeMap::new(),
        };
        if a.files.has("oci-layout") && a.files.has("index.json") {
            a.read_layout()?;
        } else if a.files.has("manifest.json") {
            a.read_docker()?;
        } else {
            return Err(ImageError::Invalid(format!(
                "{}: neither an OCI image layout (oci-layout, index.json) nor a docker archive (manifest.json)",
                a.shown
            )));
        }
        if a.entries.is_empty() {
            return Err(ImageError::Invalid(format!("{}: holds no image", a.shown)));
        }
        Ok(a)
    }

    /// The images in the archive, in its order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn invalid(&self, what: impl std::fmt::Display) -> ImageError {
        ImageError::Invalid(format!("{}: {what}", self.shown))
    }

    fn read_layout(&mut self) -> Result<(), ImageError> {
        let layout = self
            .files
            .read("oci-layout", MAX_DOCUMENT)
            .map_err(|e| self.invalid(format!("oci-layout: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&layout)
            .map_err(|e| self.invalid(format!("oci-layout: {e}")))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(self.invalid("oci-layout: imageLayoutVersion is not 1.0.0"));
        }
        let bytes = self
            .files
            .read("index.json", MAX_DOCUMENT)
            .map_err(|e| self.invalid(format!("index.json: {e}")))?;
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| self.invalid(format!("index.json: {e}")))?;
        for d in index.manifests() {
            let digest = Digest::parse(d.digest().as_ref())
                .map_err(|e| self.invalid(format!("index.json: {e}")))?;
            let ann = d.annotations().clone().unwrap_or_default();
            let names = [CONTAINERD_NAME, REF_NAME]
                .iter()
                .filter_map(|k| ann.get(*k).cloned())
                .collect();
            self.media_types
                .insert(digest.clone(), d.media_type().to_string());
            self.entries.push(Entry { names, digest });
        }
        Ok(())
    }

    fn read_docker(&mut self) -> Result<(), ImageError> {
        let bytes = self
            .files
            .read("manifest.json", MAX_DOCUMENT)
            .map_err(|e| self.invalid(format!("manifest.json: {e}")))?;
        let list: Vec<DockerEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| self.invalid(format!("manifest.json: {e}")))?;
        for (i, e) in list.into_iter().enumerate() {
            let at = |what: &str| format!("manifest.json entry {}: {what}", i + 1);
            let (cfg, cfg_size) = self
                .member_digest(&e.config)
                .map_err(|err| self.invalid(at(&format!("config {}: {err}", e.config))))?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let (d, size) = self
                    .member_digest(l)
                    .map_err(|err| self.invalid(at(&format!("layer {l}: {err}"))))?;
                let mt = self
                    .layer_type(l)
                    .map_err(|err| self.invalid(at(&format!("layer {l}: {err}"))))?;
                layers
                    .push(serde_json::json!({"mediaType": mt, "digest": d.as_str(), "size": size}));
            }
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": cfg.as_str(), "size": cfg_size},
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest).expect("a JSON value serializes");
            let digest = Digest::of(&bytes);
            self.made.insert(digest.clone(), bytes);
            self.media_types
                .insert(digest.clone(), media::OCI_MANIFEST.to_string());
            self.entries.push(Entry {
                names: e.repo_tags.unwrap_or_default(),
                digest,
            });
        }
        Ok(())
    }

    /// The digest and size of a member named in `manifest.json`, remembered for [`Source::blob`].
    fn member_digest(&mut self, name: &str) -> Result<(Digest, u64), String> {
        let n = normalise(Path::new(name)).ok_or("not a member name")?;
        let (d, size) = self.files.hash(&n).map_err(|e| e.to_string())?;
        self.blobs.insert(d.clone(), n);
        Ok((d, size))
    }

    /// A layer's media type from its first bytes (docker archives do not say).
    fn layer_type(&mut self, name: &str) -> Result<&'static str, String> {
        let n = normalise(Path::new(name)).ok_or("not a member name")?;
        let (mut r, _) = self.files.open(&n).map_err(|e| e.to_string())?;
        let mut head = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut head[got..]).map_err(|e| e.to_string())? {
                0 => break,
                k => got += k,
            }
        }
        Ok(match &head[..got] {
            [0x1f, 0x8b, ..] => media::OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => media::OCI_LAYER_ZSTD,
            _ => media::OCI_LAYER,
        })
    }

    fn blob_member(&self, d: &Digest) -> String {
        self.blobs
            .get(d)
            .cloned()
            .unwrap_or_else(|| format!("blobs/sha256/{}", d.hex()))
    }
}

impl Source for Archive {
    fn describe(&self) -> String {
        format!("archive {}", self.shown)
    }

    fn manifest(&mut self, reference: &str) -> Result<(String, Vec<u8>), ImageError> {
        let d = match Digest::parse(reference) {
            Ok(d) => d,
            Err(_) => {
                // A tag: the one entry of that name.
                let hits: Vec<&Entry> = self
                    .entries
                    .iter()
                    .filter(|e| e.names.iter().any(|n| n == reference))
                    .collect();
                match hits.as_slice() {
                    [one] => one.digest.clone(),
                    [] => {
                        return Err(ImageError::NotFound(format!(
                            "{reference} in {}",
                            self.shown
                        )))
                    }
                    _ => {
                        return Err(
                            self.invalid(format!("more than one image is named {reference}"))
                        )
                    }
                }
            }
        };
        if let Some(b) = self.made.get(&d) {
            return Ok((media::OCI_MANIFEST.to_string(), b.clone()));
        }
        let member = self.blob_member(&d);
        let bytes = match self.files.read(&member, MAX_DOCUMENT) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(format!("{d} in {}", self.shown)))
            }
            Err(e) => return Err(self.invalid(format!("{member}: {e}"))),
        };
        let mt = self.media_types.get(&d).cloned().unwrap_or_default();
        Ok((mt, bytes))
    }

    fn blob(&mut self, digest: &Digest, _size: u64) -> Result<Box<dyn Read + '_>, ImageError> {
        let member = self.blob_member(digest);
        let shown = self.shown.clone();
        match self.files.open(&member) {
            Ok((r, _)) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ImageError::Invalid(format!(
                "{shown}: blob {digest} is missing"
            ))),
            Err(e) => Err(ImageError::io(format!("{shown}: {member}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised_and_never_climb() {
        assert_eq!(normalise(Path::new("./a/b")).as_deref(), Some("a/b"));
        assert_eq!(normalise(Path::new("/a/./b")).as_deref(), Some("a/b"));
        assert_eq!(normalise(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(normalise(Path::new("../b")), None);
        assert_eq!(normalise(Path::new("./")), None);
    }
}
