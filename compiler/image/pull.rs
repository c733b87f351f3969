//! A pull: an image from a source (a registry) into the store under its reference, with one
//! updating progress line on stderr when asked for (`podc image pull` asks on a terminal).

use super::progress::Line;
use super::store::Store;
use super::{Digest, ImageError, Reference, Source};

/// Ingests `reference` from `source` into `store` under its own name; with `progress`, shows
/// the bytes and layers of the whole image on stderr ([`Line`]).
pub fn pull(
    store: &Store,
    reference: &Reference,
    mut source: impl Source,
    progress: bool,
) -> Result<Digest, ImageError> {
    let line = Line::new(reference.to_string(), progress);
    let result = store.ingest_with(
        &mut source,
        reference.manifest_reference(),
        Some(reference),
        &|e| line.event(e),
    );
    line.clear();
    result
}
