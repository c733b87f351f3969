//! What the store holds: resolving a name to a root, listing, removing names, collecting
//! garbage, verifying.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::documents::*;
use super::files::*;
use super::layout::*;
use super::seal::Depth;
use crate::image::{Digest, ImageError, Reference};

/// Groups names by manifest digest (for messages that list every name of an image).
pub fn names_by_digest(refs: &[(Reference, Digest)]) -> BTreeMap<Digest, Vec<String>> {
    let mut m: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (r, d) in refs {
        m.entry(d.clone()).or_default().push(r.to_string());
    }
    m
}

impl Store {
    /// The manifest digest the ref file of `r` holds, if there is one.
    pub(super) fn read_ref(&self, r: &Reference) -> Result<Option<Digest>, ImageError> {
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
    pub(super) fn read_document(&self, d: &Digest) -> Result<Option<Vec<u8>>, ImageError> {
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
        check_stored(&v, d, &format!("stored document {}", p.display()))?;
        Ok(Some(v))
    }

    /// The manifest digest `d` stands for here: `d` itself, or, for a stored index, its
    /// manifest for this host.
    pub(super) fn manifest_of(
        &self,
        d: &Digest,
        shown: &str,
    ) -> Result<(Digest, ImageManifest), ImageError> {
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
        for dir in [self.image_dir(&manifest), root.clone()] {
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                // A symlink would put whatever it names (the host's `/`) under the app.
                Ok(_) => {
                    return Err(ImageError::Invalid(format!(
                        "image {shown}: {} is not a directory (a symlink?); the store was changed",
                        dir.display()
                    )))
                }
                Err(_) => return Err(ImageError::NotFound(shown)),
            }
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

    pub(super) fn blob_size(&self, d: &Digest) -> u64 {
        fs::metadata(self.blob_path(d)).map_or(0, |m| m.len())
    }

    pub(super) fn blob_size_of(&self, desc: &Descriptor) -> u64 {
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
    pub(super) fn kept(
        &self,
        in_use: &[Reference],
    ) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>), ImageError> {
        self.kept_with(in_use, BTreeSet::new())
    }

    /// [`Store::kept`], keeping the images `running` (manifest digests) too.
    fn kept_with(
        &self,
        in_use: &[Reference],
        running: BTreeSet<Digest>,
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
        // A running pod's root stays even where its manifest cannot be read any more.
        manifests.extend(running.iter().cloned());
        tops.extend(running);
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

    pub(super) fn blob_digests(&self) -> Result<Vec<Digest>, ImageError> {
        digests_in(&self.dir.join("blobs/sha256"))
    }

    pub(super) fn root_digests(&self) -> Result<Vec<Digest>, ImageError> {
        digests_in(&self.dir.join("roots"))
    }

    /// Removes every root and blob no name in `refs/`, no reference of `in_use` (the
    /// installed pods' images, as their plans name them and as they recorded them) and no
    /// running pod (a held lease, a mount anywhere on the host: `lease.rs`) needs, stale
    /// `tmp/` entries and stale leases. A root is first renamed into `tmp/` (so a crash never
    /// leaves half a root in `roots/`), then deleted.
    pub fn gc(&self, in_use: &[Reference]) -> Result<Collected, ImageError> {
        let _lock = self.lock(true)?;
        self.clean_tmp();
        let running = self.running_locked(true)?;
        let (manifests, blobs) = self.kept_with(in_use, running.digests())?;
        let mut done = Collected::default();
        for d in self.root_digests()? {
            if manifests.contains(&d) {
                continue;
            }
            let work = self.work()?;
            let to = work.path.join("root");
            fs::rename(self.image_dir(&d), &to).map_err(ImageError::io(format!(
                "moving {} out",
                self.image_dir(&d).display()
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
    /// config, layers and root), every root a stored manifest's and as its seal says (every
    /// file hashed), nothing else in `blobs/`, `roots/`, `seals/` and `refs/`.
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
                    if !is_real_dir(&self.image_dir(&d)) || !is_real_dir(&self.root_path(&d)) {
                        problems.push(format!(
                            "roots/{e}: not a directory with a rootfs/ directory"
                        ));
                    } else if let Err(err) = self.check_root(&d, Depth::Full) {
                        problems.push(format!("roots/{e}: {err}"));
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
                    if !is_real_dir(&self.root_path(&m)) {
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

/// A directory, not a link to one.
fn is_real_dir(p: &std::path::Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}
