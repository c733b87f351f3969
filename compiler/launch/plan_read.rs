//! Reading a tree's mount plan, held to the rules an edited plan must keep.

use std::fs;
use std::path::Path;

use super::action::*;
use crate::tree::layout::GENERATED;
use crate::tree::plan::MountPlan;

/// Reads `TREE/mounts.toml` through the same type the compiler wrote it with.
pub fn read_plan(tree: &Path) -> Result<MountPlan, LaunchError> {
    let path = tree.join("mounts.toml");
    let text = fs::read_to_string(&path).map_err(|_| LaunchError::NotATree(tree.to_path_buf()))?;
    if !text.starts_with(GENERATED) {
        return Err(LaunchError::NotATree(tree.to_path_buf()));
    }
    // The pod's root must be the tree's own directory, not a link to somewhere else.
    let rootfs = tree.join("rootfs");
    match fs::symlink_metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => return Err(LaunchError::Symlink(rootfs)),
        _ => return Err(LaunchError::NotATree(tree.to_path_buf())),
    }
    let plan = MountPlan::from_toml(&text).map_err(|e| LaunchError::BadPlan {
        path: path.clone(),
        message: e.message().to_string(),
    })?;
    plan.validate()
        .map_err(|message| LaunchError::BadPlan { path, message })?;
    Ok(plan)
}
