//! The OCI documents an ingest reads: manifests and indexes (bounded), configs, and which
//! manifest of an index is this host's platform.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex};

use super::files::check_stored;
use crate::image::unpack::Compression;
use crate::image::{media, Digest, ImageError, Source};

/// The largest index, manifest or config podc reads.
pub const MAX_DOCUMENT: u64 = 4 << 20;

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
pub(super) fn is_index(mt: &str, bytes: &[u8]) -> bool {
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

pub(super) fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Digest, ImageError> {
    Digest::parse(d.digest().as_ref())
        .map_err(|e| ImageError::Invalid(format!("{what}: digest {}: {e}", d.digest())))
}

/// A manifest or index from `source`, at most [`MAX_DOCUMENT`] bytes.
pub(super) fn get_document(
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

pub(super) fn read_config(p: &Path, d: &Digest) -> Result<ImageConfiguration, ImageError> {
    let f = File::open(p).map_err(ImageError::io(format!("reading config {d}")))?;
    let mut v = Vec::new();
    f.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut v)
        .map_err(ImageError::io(format!("reading config {d}")))?;
    check_stored(&v, d, &format!("config {}", p.display()))?;
    serde_json::from_slice(&v)
        .map_err(|e| ImageError::Invalid(format!("config {d} is not a valid image config: {e}")))
}

pub(super) fn check_platform(config: &ImageConfiguration, what: &str) -> Result<(), ImageError> {
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    if os != "linux" || arch != host_arch() {
        return Err(ImageError::Invalid(format!(
            "{what}: the image is for {os}/{arch}; this host runs linux/{}",
            host_arch()
        )));
    }
    Ok(())
}
