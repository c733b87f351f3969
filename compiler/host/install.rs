//! `podc install` (copy beside, carry the pod's own files across, swap) and `podc uninstall`.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::data::{check_volumes_dir, volumes_of};
use super::marker::{check_ancestors, check_ours, create_marker, present};
use super::systemd::*;
use super::tree::*;
use crate::tree::images::ImageRecord;
use crate::tree::layout::{INSTALL_MARKER, POD_OWNED};

#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    /// Enable and start the pod (its socket for `start: connection`).
    pub now: bool,
    /// Replace a running pod: stop it, swap the tree, start it again.
    pub restart: bool,
}

/// What `install` did, for the operator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Installed {
    pub dir: PathBuf,
    pub units: Vec<PathBuf>,
    pub kept: Vec<String>,
    pub replaced: bool,
    pub restarted: bool,
    /// Each image reference of the plan and the digest recorded for it, or why none is.
    pub images: Recorded,
}

/// Installs a built tree: copies it beside its install directory, carries the pod-owned parts
/// of an earlier install across ([`POD_OWNED`]), swaps it in with one
/// `renameat2(RENAME_EXCHANGE)`, writes the host unit(s) atomically, reloads systemd, and with
/// `--now` enables and starts the pod. A running pod is replaced only with `--restart`.
///
/// An existing install directory is replaced only if it is the one podc made for this pod
/// ([`INSTALL_MARKER`], see `marker.rs`); the new tree gets its own marker, made with `O_EXCL`
/// in the staging copy before the swap. Every check precedes every change.
///
/// A crash leaves the complete old tree or the complete new one at the install directory (and
/// at worst a `.podc-install-*` directory beside it); the pod is stopped only once the new tree
/// is fully copied, so a restart is as short as a rename and a unit reload.
///
/// The new tree records the image each of its references names in the image store now
/// (`state/images.toml`, see `crate::tree::images`): what the pod runs from then on, however
/// the names change, until the next install. A reference the store cannot resolve keeps what
/// the earlier install recorded for it, if anything; else the first launch records it.
pub fn install(
    tree: &Path,
    root: &Root,
    sd: &mut dyn Systemd,
    opts: InstallOptions,
) -> Result<Installed, OpError> {
    let t = read_tree(tree)?;
    let dest = root.path(&t.install_dir);
    let parent = dest.parent().expect("an absolute normal path has a parent");
    check_not_podcs_own(&dest, root)?;
    check_ancestors(&dest)?;
    let exists = present(&dest)?;
    if exists {
        check_ours(&dest, &t.pod)?;
    }
    // Which of the pod's units are running now: these are stopped for the swap and started
    // again after it.
    let active: Vec<String> = t
        .units
        .iter()
        .filter(|u| running(&sd.is_active(u)))
        .cloned()
        .collect();
    if active.contains(&t.service()) && !opts.restart {
        return Err(OpError::Running(t.pod));
    }
    let (earlier, record, images) = image_record(tree, exists.then_some(&*dest))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .map_err(io_err(parent))?;
    // Again, now that the parents exist: one made meanwhile by someone else is not ours.
    check_ancestors(&dest)?;

    let staging = tempfile::Builder::new()
        .prefix(".podc-install-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_err(staging.path()))?;
    copy_tree(tree, staging.path(), Path::new(""))?;
    create_marker(staging.path(), &t.pod)?;
    let file = fs::File::open(staging.path()).map_err(io_err(staging.path()))?;
    rustix::fs::syncfs(&file).map_err(|e| io_err(parent)(e.into()))?;

    if !active.is_empty() {
        let mut args = vec!["stop"];
        args.extend(active.iter().map(String::as_str));
        sd.systemctl(&args)?;
    }
    let mut kept = Vec::new();
    if exists {
        for rel in POD_OWNED {
            let old = dest.join(rel);
            if fs::symlink_metadata(&old).is_err() {
                continue;
            }
            let new = staging.path().join(rel);
            let new_parent = new.parent().expect("below the staging directory");
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(new_parent)
                .map_err(io_err(new_parent))?;
            fs::rename(&old, &new).map_err(io_err(&old))?;
            kept.push(rel.to_string());
        }
        crate::sys::exchange(staging.path(), &dest).map_err(io_err(&dest))?;
        // The staging directory holds the old tree now and is removed with it.
        staging.close().map_err(io_err(parent))?;
    } else {
        let tmp = staging.keep();
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    }
    // Into the installed tree, whose `state/` is the earlier install's: written before this
    // point, a failure would have lost the pod's own files with the staging directory.
    if record != earlier {
        crate::launch::write_record(&dest, &record)?;
    }

    let unit_dir = root.path(UNIT_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&unit_dir)
        .map_err(io_err(&unit_dir))?;
    let mut units = Vec::new();
    for unit in &t.units {
        let text = fs::read(tree.join(unit)).map_err(io_err(&tree.join(unit)))?;
        let to = unit_dir.join(unit);
        write_atomic(&to, &text)?;
        units.push(to);
    }
    // A socket unit the new tree no longer has (the pod stopped publishing ports) goes.
    let stale = unit_dir.join(format!("podc-{}.socket", t.pod));
    if !t.units.iter().any(|u| u.ends_with(".socket")) && stale.exists() {
        let name = format!("podc-{}.socket", t.pod);
        let _ = sd.systemctl(&["disable", "--now", &name]);
        fs::remove_file(&stale).map_err(io_err(&stale))?;
    }
    sd.systemctl(&["daemon-reload"])?;
    if opts.now {
        sd.systemctl(&["enable", "--now", &t.start_unit])?;
    }
    if !active.is_empty() {
        let mut args = vec!["start"];
        args.extend(active.iter().map(String::as_str));
        sd.systemctl(&args)?;
    }
    Ok(Installed {
        dir: dest,
        units,
        kept,
        replaced: exists,
        restarted: !active.is_empty(),
        images,
    })
}

/// Each image reference of a tree, with the digest an install records for it or why none.
pub type Recorded = Vec<(String, Result<String, String>)>;

/// What installing `tree` records: each reference's digest in the image store now, else what
/// the earlier install at `installed` recorded for it; with that earlier record, and for each
/// reference what it records or why nothing.
fn image_record(
    tree: &Path,
    installed: Option<&Path>,
) -> Result<(ImageRecord, ImageRecord, Recorded), OpError> {
    let plan = crate::launch::read_plan(tree)?;
    let found = crate::launch::record_for(&plan, &crate::image::store::default_dir());
    let earlier = match installed {
        Some(dir) => crate::launch::read_record(dir)?,
        None => ImageRecord::default(),
    };
    let mut record = ImageRecord::default();
    let mut said = Vec::new();
    for (reference, digest) in found {
        let shown = match (digest, earlier.images.get(&reference)) {
            (Ok(d), _) => {
                record.images.insert(reference.clone(), d.clone());
                Ok(d.to_string())
            }
            (Err(why), Some(d)) => {
                record.images.insert(reference.clone(), d.clone());
                Ok(format!("{d} (kept from the earlier install: {why})"))
            }
            (Err(why), None) => Err(why),
        };
        said.push((reference, shown));
    }
    Ok((earlier, record, said))
}

/// Copies the tree `from` into the existing directory `to`: directories, regular files with
/// their modes, and symbolic links as links. What the launcher left in a tree that was run in
/// place ([`POD_OWNED`], `volumes/`) is not the build's and is not copied, nor is the marker
/// of an installed tree ([`INSTALL_MARKER`]: each install makes its own).
pub(super) fn copy_tree(from: &Path, to: &Path, rel: &Path) -> Result<(), OpError> {
    let dir = from.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let rel_str = rel.to_string_lossy();
        if POD_OWNED.contains(&rel_str.as_ref())
            || rel_str == "volumes"
            || rel_str == INSTALL_MARKER
        {
            continue;
        }
        let src = from.join(&rel);
        let dst = to.join(&rel);
        let meta = fs::symlink_metadata(&src).map_err(io_err(&src))?;
        if meta.is_dir() {
            fs::create_dir(&dst).map_err(io_err(&dst))?;
            fs::set_permissions(&dst, meta.permissions()).map_err(io_err(&dst))?;
            copy_tree(from, to, &rel)?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&src).map_err(io_err(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io_err(&dst))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

/// Writes a file by writing a temporary file beside it, flushing it and renaming it over.
pub(super) fn write_atomic(to: &Path, bytes: &[u8]) -> Result<(), OpError> {
    use std::io::Write;
    let dir = to.parent().expect("a unit file has a directory");
    let mut tmp = tempfile::Builder::new()
        .prefix(".podc-unit-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(to))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err(to))?;
    tmp.as_file().sync_all().map_err(io_err(to))?;
    tmp.persist(to).map_err(|e| io_err(to)(e.error))?;
    Ok(())
}

/// What `uninstall` removes besides the pod's units.
#[derive(Debug, Clone, Copy, Default)]
pub struct UninstallOptions {
    /// Keep the install directory (the pod's journal and its apps' writes to their roots).
    pub keep_data: bool,
    /// Remove the pod's persistent volumes too, which every other uninstall keeps. (The command
    /// line refuses it with `--keep-data`, whose name says the opposite.)
    pub delete_data: bool,
}

/// Stops and disables a pod, removes its units and (unless `keep_data`) its install
/// directory, and reloads systemd. Returns what was removed. The install directory is removed
/// only if it is the one podc made for this pod (the unit that names it may have been edited
/// or planted), and that is checked before anything is stopped or removed. Its persistent
/// volumes stay: see [`uninstall_with`].
pub fn uninstall(
    pod: &str,
    root: &Root,
    sd: &mut dyn Systemd,
    keep_data: bool,
) -> Result<Vec<PathBuf>, OpError> {
    let opts = UninstallOptions {
        keep_data,
        delete_data: false,
    };
    uninstall_with(pod, root, sd, opts)
}

/// [`uninstall`], and with `delete_data` the pod's persistent volumes (the whole
/// `<volumes>/<pod>`, checked first like the install directory). A pod uninstalled before
/// has no units left: `delete_data` then removes the volumes it left behind.
pub fn uninstall_with(
    pod: &str,
    root: &Root,
    sd: &mut dyn Systemd,
    opts: UninstallOptions,
) -> Result<Vec<PathBuf>, OpError> {
    let keep_data = opts.keep_data;
    let volumes = volumes_of(root, pod);
    let p = match find_installed(pod, root) {
        Err(OpError::NotInstalled { .. }) if opts.delete_data && check_volumes_dir(&volumes)? => {
            fs::remove_dir_all(&volumes).map_err(io_err(&volumes))?;
            return Ok(vec![volumes]);
        }
        found => found?,
    };
    let remove_volumes = opts.delete_data && check_volumes_dir(&volumes)?;
    let remove_dir = !keep_data && present(&p.dir)?;
    // The path the launcher gave its id range under (it launches the canonical path).
    let launched = p.dir.canonicalize().unwrap_or_else(|_| p.dir.clone());
    if remove_dir {
        check_ancestors(&p.dir)?;
        check_ours(&p.dir, pod)?;
    }
    let unit_dir = root.path(UNIT_DIR);
    let units: Vec<String> = [".socket", ".service"]
        .iter()
        .map(|s| format!("podc-{pod}{s}"))
        .filter(|u| unit_dir.join(u).exists())
        .collect();
    let mut args = vec!["disable", "--now"];
    args.extend(units.iter().map(String::as_str));
    sd.systemctl(&args)?;
    let mut removed = Vec::new();
    for u in &units {
        let path = unit_dir.join(u);
        fs::remove_file(&path).map_err(io_err(&path))?;
        removed.push(path);
    }
    sd.systemctl(&["daemon-reload"])?;
    // A failed pod stays listed as failed until reset; it is gone now.
    let _ = sd.systemctl(&["reset-failed", &format!("podc-{pod}.service")]);
    if remove_dir {
        fs::remove_dir_all(&p.dir).map_err(io_err(&p.dir))?;
        removed.push(p.dir);
    }
    if remove_volumes {
        fs::remove_dir_all(&volumes).map_err(io_err(&volumes))?;
        removed.push(volumes);
    }
    // The pod's id range outlives an uninstall, for the data it owns; with that data gone, it
    // is free for other pods.
    if opts.delete_data {
        crate::launch::userns::release(&launched, &userns_registry(root));
    }
    Ok(removed)
}

/// podc's own directories beside the pods' install directories: a pod named `images`,
/// `volumes` or `userns` would be installed into one of them.
const PODCS_OWN: [(&str, &str); 3] = [
    ("/var/lib/podc/images", "the image store"),
    (
        crate::tree::layout::PERSISTENT_VOLUMES,
        "the persistent volumes",
    ),
    (
        crate::launch::userns::REGISTRY,
        "the registry of user-namespace ranges",
    ),
];

fn check_not_podcs_own(dest: &Path, root: &Root) -> Result<(), OpError> {
    match PODCS_OWN.iter().find(|(dir, _)| root.path(dir) == dest) {
        Some((_, what)) => Err(OpError::Foreign {
            path: dest.to_path_buf(),
            reason: format!("podc keeps {what} here"),
            hint: "; give the pod another name, or build it with --install-dir".into(),
        }),
        None => Ok(()),
    }
}

/// The registry of user-namespace ranges of the host at `root`.
fn userns_registry(root: &Root) -> PathBuf {
    use crate::launch::userns;
    match root.0 == Path::new("/") {
        true => userns::registry(),
        false => root.path(userns::REGISTRY),
    }
}

// --- status -------------------------------------------------------------------------------
