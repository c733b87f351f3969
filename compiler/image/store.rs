//! The image store (`/var/lib/podc/images`): content-addressed, verified, shared, immutable.
//!
//! Being written (issue #13): this file holds the interface the rest of podc builds on; the
//! bodies land with the store itself.

use std::path::{Path, PathBuf};

use super::{Digest, ImageError, Reference, Source};

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

/// An opened store.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the store at `dir`, making its layout if it has none.
    pub fn open(dir: &Path) -> Result<Store, ImageError> {
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches `reference` from `source` into the store: every blob verified, the root
    /// unpacked, then made visible at once; the name (if any) recorded last.
    pub fn ingest(
        &self,
        _source: &mut dyn Source,
        _reference: &str,
        _name: Option<&Reference>,
    ) -> Result<Digest, ImageError> {
        Err(ImageError::Invalid(
            "the image store is not written yet".into(),
        ))
    }

    /// The image `reference` names in this store (by digest if pinned, else by its tag).
    pub fn resolve(&self, reference: &Reference) -> Result<Image, ImageError> {
        Err(ImageError::NotFound(reference.to_string()))
    }
}
