//! Images by reference: OCI references ([`reference`]), where images come from ([`Source`]:
//! a registry, an OCI layout directory, a `docker save` archive) and the content-addressed
//! store they land in ([`store`]), from which the launcher resolves an app's root.

pub mod archive;
pub mod auth;
pub mod challenge;
pub mod defaults;
pub mod progress;
pub mod pull;
pub mod registry;
pub mod store;
pub mod unpack;

pub use crate::manifest::reference::{Digest, Reference};

use std::io::Read;

/// Media types podc reads.
pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// Why an image operation failed. Every message names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Reference(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Bytes whose digest is not the one they were asked for by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    /// A manifest, index, config or archive that is not what the OCI specs allow.
    #[error("{0}")]
    Invalid(String),
    /// Talking to a registry failed (HTTP status, authentication, transport).
    #[error("{0}")]
    Registry(String),
    /// The store has no image for this reference.
    #[error("image {0} is not in the store")]
    NotFound(String),
    #[error("{0}")]
    Unpack(String),
}

impl ImageError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Io { what, source }
    }

    /// Whether this is a failure of the transfer (a connection lost, the deadline, an error
    /// status from the registry, a disk error), which a new try may get past, rather than of
    /// the image itself (a digest or size that does not match, a document podc refuses, the
    /// unpack cap), which it will not. A failed ingest keeps the blobs it verified in the first
    /// case, so that the next one resumes from them, and takes them back in the second.
    pub fn is_transfer(&self) -> bool {
        matches!(self, ImageError::Io { .. } | ImageError::Registry(_))
    }
}

/// Where an image's bytes come from. The store asks a source for a manifest (or index) by
/// tag or digest and for blobs by digest, and verifies every byte it is given: a source need
/// not be trusted.
pub trait Source {
    /// What to call this source in messages (`registry 127.0.0.1:5000`, `archive x.tar`).
    fn describe(&self) -> String;
    /// The manifest or index that `reference` (a tag or a `sha256:` digest) names: its media
    /// type (from the transport or the document's own `mediaType`) and its bytes.
    fn manifest(&mut self, reference: &str) -> Result<(String, Vec<u8>), ImageError>;
    /// A reader of the blob `digest`, of `size` bytes as its descriptor says.
    fn blob(&mut self, digest: &Digest, size: u64) -> Result<Box<dyn Read + '_>, ImageError>;
    /// The same blobs for several threads at once, and how many at once at most, where the
    /// source serves them so (a registry: a request each, on a connection of its own); `None`,
    /// the default, where they come one at a time through [`Source::blob`] (an archive is one
    /// file, read in order).
    fn concurrent(&self) -> Option<(&dyn Blobs, usize)> {
        None
    }
}

/// A [`Source`]'s blobs, fetched by several threads at once.
pub trait Blobs: Sync {
    /// A reader of the blob `digest`, of `size` bytes as its descriptor says.
    fn fetch(&self, digest: &Digest, size: u64) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}
