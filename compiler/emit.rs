//! Emit: the only code that writes generated files.
//!
//! A pod's tree is written into a fresh directory beside its destination and then swapped in
//! with one atomic `renameat2(RENAME_EXCHANGE)`, so a reader (or a crash) sees either the
//! complete old tree or the complete new one; all trees of one build are flushed to disk with
//! one `syncfs` before the first swap; builds into one output directory take turns (a lock on
//! the directory); files the new build no longer produces go away with the old tree. A destination podc did not create is never replaced. `--check` compares
//! instead of writing.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::render::Files;
use crate::tree::layout::GENERATED;

/// The mode of every generated file, whatever the umask: part of the output `--check` compares.
pub const FILE_MODE: u32 = 0o644;
/// The mode of every generated directory.
pub const DIR_MODE: u32 = 0o755;

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: exists and was not created by podc (no podc mounts.toml in it); refusing to replace it")]
    Foreign(PathBuf),
    #[error("{0}: exists and is not a directory; refusing to replace it")]
    NotADirectory(PathBuf),
    #[error("{0}: the output directory is a symbolic link; give its target instead")]
    Symlink(PathBuf),
    #[error("{0}: another podc build is writing here now; run again when it is done")]
    Busy(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmitError + '_ {
    move |source| EmitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` may be replaced: it does not exist, is empty, or holds a podc tree.
fn check_replaceable(dir: &Path) -> Result<bool, EmitError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(dir)(e)),
    };
    if !meta.is_dir() {
        return Err(EmitError::NotADirectory(dir.to_path_buf()));
    }
    if fs::read_dir(dir).map_err(io_err(dir))?.next().is_none() {
        return Ok(true);
    }
    let plan = dir.join("mounts.toml");
    match fs::read_to_string(&plan) {
        Ok(text) if text.starts_with(GENERATED) => Ok(true),
        _ => Err(EmitError::Foreign(dir.to_path_buf())),
    }
}

/// Writes `files` as the tree `out/<pod>`, replacing an earlier podc tree atomically.
pub fn write_tree(out: &Path, pod: &str, files: &Files) -> Result<(), EmitError> {
    let mut writer = Writer::open(out, &[pod])?;
    writer.stage(pod, files)?;
    writer.commit()
}

/// Writes the trees of one build: [`Writer::open`] checks every destination and takes the
/// output directory's lock, [`Writer::stage`] writes each pod's tree beside its destination,
/// and [`Writer::commit`] makes them all durable at once and swaps them in.
///
/// Durability costs one `syncfs` for the whole build rather than one fsync per file: the staged
/// files are written, the file system is flushed, and only then is each tree exchanged with its
/// destination, so after a crash (or a power loss) every pod directory holds the complete old
/// tree or the complete new one. An error before the swaps leaves every old tree in place and
/// no staging behind.
pub struct Writer {
    out: PathBuf,
    /// The output directory, open and locked for this build.
    dir: fs::File,
    /// Pods that may be replaced: their destination exists (with a podc tree) or not.
    exists: std::collections::BTreeMap<String, bool>,
    staged: Vec<(String, tempfile::TempDir)>,
    /// Whether the umask takes bits from files' and directories' modes, so that they must be
    /// set again after creation (with the usual umask 022 they need not be: two system calls a
    /// file fewer).
    fix_modes: (bool, bool),
}

/// Whether the process's umask takes bits from `FILE_MODE` and from `DIR_MODE`.
fn umask_strips() -> (bool, bool) {
    use rustix::fs::Mode;
    // Reading the umask means setting it; it is put back at once (podc has one thread here).
    let mask = rustix::process::umask(Mode::empty());
    rustix::process::umask(mask);
    let mask = mask.bits();
    (FILE_MODE & mask != 0, DIR_MODE & mask != 0)
}

impl Writer {
    /// Takes the lock on `out` (made if missing) and checks that each pod's destination may be
    /// replaced; removes staging directories that killed builds left behind.
    pub fn open(out: &Path, pods: &[&str]) -> Result<Writer, EmitError> {
        if fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(EmitError::Symlink(out.to_path_buf()));
        }
        fs::create_dir_all(out).map_err(io_err(out))?;
        // One build at a time per output directory: the lock is on the directory itself (no
        // lock file), and the kernel drops it when the process ends, however it ends.
        let dir = fs::File::open(out).map_err(io_err(out))?;
        match dir.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(EmitError::Busy(out.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(out)(e)),
        }
        let mut exists = std::collections::BTreeMap::new();
        for pod in pods {
            exists.insert(pod.to_string(), check_replaceable(&out.join(pod))?);
        }
        remove_stale_staging(out)?;
        Ok(Writer {
            out: out.to_path_buf(),
            dir,
            exists,
            staged: Vec::new(),
            fix_modes: umask_strips(),
        })
    }

    /// Writes `files` into a fresh staging directory for `pod` (one of those given to `open`).
    pub fn stage(&mut self, pod: &str, files: &Files) -> Result<(), EmitError> {
        assert!(self.exists.contains_key(pod), "pod {pod} was not opened");
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{pod}{STAGING}"))
            .tempdir_in(&self.out)
            .map_err(io_err(&self.out))?;
        let root = staging.path();
        // Directories first, each once, with the usual permissions rather than the temporary
        // directory's 0700 or whatever the umask leaves; `files` is sorted, so parents come
        // before their children.
        set_mode(root, DIR_MODE)?;
        let mut made: Vec<&str> = Vec::new();
        for rel in files.keys() {
            let mut end = 0;
            while let Some(i) = rel[end..].find('/') {
                end += i;
                let dir = &rel[..end];
                if !made.contains(&dir) {
                    let path = root.join(dir);
                    fs::DirBuilder::new()
                        .mode(DIR_MODE)
                        .create(&path)
                        .map_err(io_err(&path))?;
                    if self.fix_modes.1 {
                        set_mode(&path, DIR_MODE)?;
                    }
                    made.push(dir);
                }
                end += 1;
            }
        }
        for (rel, content) in files {
            let path = root.join(rel);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(FILE_MODE)
                .open(&path)
                .map_err(io_err(&path))?;
            if self.fix_modes.0 {
                f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
                    .map_err(io_err(&path))?;
            }
            f.write_all(content.as_bytes()).map_err(io_err(&path))?;
        }
        self.staged.push((pod.to_string(), staging));
        Ok(())
    }

    /// Flushes every staged tree to disk, then swaps each in for its destination.
    pub fn commit(self) -> Result<(), EmitError> {
        let out = &self.out;
        rustix::fs::syncfs(&self.dir).map_err(|e| io_err(out)(e.into()))?;
        for (pod, staging) in self.staged {
            let dest = out.join(&pod);
            if self.exists[&pod] {
                crate::sys::exchange(staging.path(), &dest).map_err(io_err(&dest))?;
                // `staging` now holds the old tree and is removed here.
                staging.close().map_err(io_err(out))?;
            } else {
                let tmp = staging.keep();
                fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
            }
        }
        self.dir.sync_all().map_err(io_err(out))?;
        Ok(())
    }
}

/// What a staging directory's name holds after `.<pod>`.
const STAGING: &str = ".podc-new.";

/// Staging directories that killed builds left behind (we hold the lock, so none is in use),
/// found in one pass over the output directory whatever the number of pods.
fn remove_stale_staging(out: &Path) -> Result<(), EmitError> {
    for entry in fs::read_dir(out).map_err(io_err(out))? {
        let entry = entry.map_err(io_err(out))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && name.starts_with('.') && name.contains(STAGING) {
            fs::remove_dir_all(entry.path()).map_err(io_err(&entry.path()))?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EmitError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Reads an existing tree as relative path → content (invalid UTF-8 shown lossily), and the
/// paths whose permissions are not the ones podc writes (directories as `path/`), with them.
fn read_tree(dir: &Path) -> Result<(Files, Modes), EmitError> {
    let mut files = Files::new();
    let mut modes = Modes::new();
    if fs::symlink_metadata(dir).is_err() {
        return Ok((files, modes));
    }
    fn walk(
        root: &Path,
        dir: &Path,
        files: &mut Files,
        modes: &mut Modes,
    ) -> Result<(), EmitError> {
        let mode = fs::metadata(dir).map_err(io_err(dir))?.permissions().mode() & 0o7777;
        if mode != DIR_MODE {
            let rel = dir
                .strip_prefix(root)
                .expect("below the root")
                .to_string_lossy();
            modes.insert(format!("{rel}/"), mode);
        }
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io_err(&path))?;
            let rel = path
                .strip_prefix(root)
                .expect("entries are below the root")
                .to_string_lossy()
                .into_owned();
            if ty.is_dir() {
                walk(root, &path, files, modes)?;
            } else if ty.is_symlink() {
                files.insert(
                    rel,
                    format!(
                        "(symbolic link to {:?})\n",
                        fs::read_link(&path).map_err(io_err(&path))?
                    ),
                );
            } else {
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                let mode = entry
                    .metadata()
                    .map_err(io_err(&path))?
                    .permissions()
                    .mode()
                    & 0o7777;
                if mode != FILE_MODE {
                    modes.insert(rel.clone(), mode);
                }
                files.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(())
    }
    walk(dir, dir, &mut files, &mut modes)?;
    Ok((files, modes))
}

/// Paths of a tree whose permission bits are not podc's, with the bits.
type Modes = std::collections::BTreeMap<String, u32>;

/// How a tree on disk differs from the one podc would write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Every path that differs (added, removed, changed, or of another mode), as
    /// `<pod>/<path>`, sorted.
    pub changed: Vec<String>,
    /// The unified diff, and a line for each mode.
    pub diff: String,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

/// How the tree at `out/<pod>` differs from `files`; empty when they are the same.
/// The tree is checked as `build` would find it: a symbolic link (as the output directory or as
/// the pod's directory), a file, or a directory podc did not make is an error there and here.
/// Permission bits are part of the output: a file or directory whose mode is not podc's counts
/// as drift.
pub fn diff_tree(out: &Path, pod: &str, files: &Files) -> Result<Drift, EmitError> {
    if fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(EmitError::Symlink(out.to_path_buf()));
    }
    let dest = out.join(pod);
    check_replaceable(&dest)?;
    let (old, modes) = read_tree(&dest)?;
    let mut paths: Vec<&String> = old.keys().chain(files.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out_text = String::new();
    let mut changed = Vec::new();
    for (rel, mode) in &modes {
        let want = if rel.ends_with('/') {
            DIR_MODE
        } else {
            FILE_MODE
        };
        let shown = rel.trim_start_matches('/');
        out_text.push_str(&format!(
            "mode of {pod}/{shown}: {mode:04o}, podc writes {want:04o}\n"
        ));
        changed.push(format!("{pod}/{shown}"));
    }
    for rel in paths {
        let (a, b) = (old.get(rel), files.get(rel));
        if a == b {
            continue;
        }
        let shown = format!("{pod}/{rel}");
        changed.push(shown.clone());
        let a_name = if a.is_some() {
            format!("a/{shown}")
        } else {
            "/dev/null".into()
        };
        let b_name = if b.is_some() {
            format!("b/{shown}")
        } else {
            "/dev/null".into()
        };
        let (a, b) = (a.map_or("", String::as_str), b.map_or("", String::as_str));
        let diff = TextDiff::from_lines(a, b);
        out_text.push_str(&format!("--- {a_name}\n+++ {b_name}\n"));
        for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
            let text = hunk.to_string();
            out_text.push_str(&text);
            if !text.ends_with('\n') {
                out_text.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    changed.sort();
    changed.dedup();
    Ok(Drift {
        changed,
        diff: out_text,
    })
}
