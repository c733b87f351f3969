//! The tree's record of the images it runs ([`ImageRecord`], `TREE/state/images.toml`): read
//! before a launch resolves its references (a recorded reference runs its recorded digest),
//! written once a launch has resolved the rest, and by `podc install` from what the store's
//! names mean when the pod is installed ([`record_for`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::action::*;
use crate::image::store::Store;
use crate::image::{Digest, ImageError};
use crate::manifest::reference::Reference;
use crate::tree::images::ImageRecord;
use crate::tree::layout::{IMAGE_RECORD, STATE};
use crate::tree::plan::{MountPlan, Step};

/// The record's path in `tree`.
pub fn record_path(tree: &Path) -> PathBuf {
    tree.join(IMAGE_RECORD)
}

/// Reads `TREE/state/images.toml`; a tree without one has recorded nothing yet.
pub fn read_record(tree: &Path) -> Result<ImageRecord, LaunchError> {
    let path = record_path(tree);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ImageRecord::default()),
        Err(source) => {
            return Err(LaunchError::Io {
                what: "read",
                path,
                source,
            })
        }
    };
    ImageRecord::parse(&text).map_err(|message| LaunchError::BadPlan { path, message })
}

/// Writes `record` as `TREE/state/images.toml` (a temporary file beside it, flushed, renamed
/// over it), making `state/` if the tree has none; a `state` that is not a directory (a link)
/// is refused.
pub fn write_record(tree: &Path, record: &ImageRecord) -> Result<(), LaunchError> {
    let state = tree.join(STATE);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { what, path, source }
    };
    match fs::symlink_metadata(&state) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(LaunchError::BadPlan {
                path: state,
                message: "not a directory (a link?): the launcher writes its record of images only into the tree's own state directory".into(),
            })
        }
        Err(_) => fs::create_dir(&state).map_err(io("mkdir", &state))?,
    }
    let path = record_path(tree);
    let mut tmp = tempfile::Builder::new()
        .prefix(".images-")
        .tempfile_in(&state)
        .map_err(io("write", &path))?;
    tmp.write_all(record.to_text().as_bytes())
        .map_err(io("write", &path))?;
    tmp.as_file().sync_all().map_err(io("write", &path))?;
    tmp.persist(&path)
        .map_err(|e| io("write", &path)(e.error))?;
    Ok(())
}

/// Every image reference of the plan (`image` and `image-volume` steps), each once, in order.
pub fn plan_references(plan: &MountPlan) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for s in &plan.steps {
        let r = match s {
            Step::Image { reference, .. } | Step::ImageVolume { reference, .. } => reference,
            _ => continue,
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// What each image reference of the plan names in the store at `store` now: its manifest
/// digest, or why there is none (for `podc install`, which records the digests; a reference
/// it cannot record is recorded by the first launch that finds the image).
pub fn record_for(plan: &MountPlan, store: &Path) -> Vec<(String, Result<Digest, String>)> {
    let opened = Store::read_only(store);
    plan_references(plan)
        .into_iter()
        .map(|r| {
            let found = Reference::parse(r).and_then(|parsed| match opened.resolve(&parsed) {
                Ok(image) => Ok(image.manifest),
                Err(ImageError::NotFound(_)) => {
                    Err(format!("not in the image store ({}) yet", store.display()))
                }
                Err(e) => Err(e.to_string()),
            });
            (r.clone(), found)
        })
        .collect()
}
