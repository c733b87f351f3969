//! Paths of a launch: where a plan's target is in the pod's root, and refusing symlinks
//! on the way to a path in an image.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::action::*;

/// Where `target` (absolute, inside the pod) is below the pod's root directory.
pub(super) fn inside(root: &Path, target: &str) -> PathBuf {
    root.join(target.trim_start_matches('/'))
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The pod's root directory: the parent of the first directory the actions make.
pub(super) fn root_of(actions: &[Action]) -> &Path {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Mkdir(p) => p.parent(),
            _ => None,
        })
        .unwrap_or(Path::new("/"))
}

/// Refuses a mount point reached through a symbolic link below `root`: an image could point
/// `/var/www` at `/etc` of the host and have a volume mounted over it.
pub fn refuse_symlinks(root: &Path, target: &Path) -> Result<(), LaunchError> {
    let Ok(rest) = target.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    for part in rest.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(LaunchError::Symlink(at)),
            Ok(_) => {}
            Err(_) => break, // the rest is made fresh by create_dir_all
        }
    }
    Ok(())
}
