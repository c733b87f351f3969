//! Which roots running pods use: the leases launchers hold, and the roots some mount namespace
//! of the host has mounted.
//!
//! A launcher resolves its references and takes its lease while it holds the store's lock
//! shared ([`Store::launching`]); gc and rm hold that lock exclusively, so they see neither the
//! resolution nor the lease, or both. A lease is a file `leases/<pid>-<nanos>-<n>` naming the
//! pod, its tree and the manifest digests it runs, held with a shared `flock` on a descriptor
//! the launcher keeps and passes on to systemd-nspawn: it lasts while either of them runs and
//! goes with the last of them however it ends (`kill -9` too), as the kernel drops the lock
//! with the last descriptor. A lease file nobody holds is stale; gc removes it.
//!
//! The pod's mounts live in its own mount namespace, which the host's mount table does not
//! show, and a container can outlive its nspawn (one killed with SIGKILL outside a service
//! manager, which would have killed the whole cgroup): the lease is gone then, the mounts are
//! not. So gc also reads the mount table of every mount namespace on the host (one process's
//! `/proc/PID/mountinfo` each) and keeps every root mounted somewhere, as an overlay's lower
//! layer or as a bind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use super::files::*;
use super::layout::Store;
use crate::image::{Digest, ImageError};
use crate::tree::images::ImageRecord;
use crate::tree::layout::{IMAGE_RECORD, STATE};

/// The longest lease file read (a pod's name, its tree's path and its images' digests).
const MAX_LEASE: u64 = 64 * 1024;

/// A launch's hold on the store's lock (shared): while it lives, no gc or rm runs, so what
/// [`Store::resolve`] answers stays true until the lease is taken.
pub struct Launching<'a> {
    store: &'a Store,
    _lock: File,
}

/// A held lease: the open lease file, locked shared. It lets go when its last descriptor
/// closes (this process's and any copy handed on, such as nspawn's).
#[derive(Debug)]
pub struct Lease {
    file: File,
}

impl Lease {
    /// The descriptor (close-on-exec), for the launcher to keep and hand on to nspawn.
    pub fn into_fd(self) -> OwnedFd {
        self.file.into()
    }
}

/// What a lease says: the pod that holds it, its tree, and the images (manifest digests) it
/// runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pod: String,
    pub tree: PathBuf,
    pub images: Vec<Digest>,
}

/// A lease file's text (JSON), before it is checked.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHolder {
    pod: String,
    tree: PathBuf,
    images: Vec<String>,
}

/// The images running pods use now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// The held leases, in file name order.
    pub holders: Vec<Holder>,
    /// The manifest digests of the roots some mount namespace of this host has mounted.
    pub mounted: BTreeSet<Digest>,
}

impl Running {
    /// Every image a running pod uses.
    pub fn digests(&self) -> BTreeSet<Digest> {
        let mut all = self.mounted.clone();
        for h in &self.holders {
            all.extend(h.images.iter().cloned());
        }
        all
    }

    /// Who uses `d`: each lease's pod and tree, and a mount whose launcher is gone.
    pub fn users(&self, d: &Digest) -> Vec<String> {
        let mut out: Vec<String> = self
            .holders
            .iter()
            .filter(|h| h.images.contains(d))
            .map(|h| format!("the running pod {} ({})", h.pod, h.tree.display()))
            .collect();
        if out.is_empty() && self.mounted.contains(d) {
            out.push("a running container whose launcher is gone (it has the root mounted)".into());
        }
        out
    }
}

impl Store {
    /// Takes the store's lock shared for a launch: resolve the plan's references, then
    /// [`Launching::lease`] what they resolved to.
    pub fn launching(&self) -> Result<Launching<'_>, ImageError> {
        Ok(Launching {
            store: self,
            _lock: self.lock(false)?,
        })
    }

    /// The images running pods use now (the store's lock is taken exclusively to read them).
    pub fn running(&self) -> Result<Running, ImageError> {
        let _lock = self.lock(true)?;
        self.running_locked(false)
    }

    /// [`Store::running`] under the exclusive lock the caller holds; `tidy` removes the lease
    /// files nobody holds. A held lease that does not read as podc writes one stops the caller:
    /// what it protects cannot be known.
    pub(super) fn running_locked(&self, tidy: bool) -> Result<Running, ImageError> {
        let dir = self.dir.join("leases");
        let io = |p: &Path| ImageError::io(format!("reading {}", p.display()));
        let names = if exists(&dir) {
            read_names(&dir)?
        } else {
            Vec::new()
        };
        let mut holders = Vec::new();
        for name in names {
            let p = dir.join(&name);
            let mut f = match File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&p)(e)),
            };
            match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    if tidy {
                        remove_any(&p)
                            .map_err(ImageError::io(format!("removing {}", p.display())))?;
                    }
                    continue;
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => return Err(io(&p)(e.into())),
            }
            let mut text = String::new();
            (&mut f)
                .take(MAX_LEASE)
                .read_to_string(&mut text)
                .map_err(io(&p))?;
            holders.push(parse_holder(&text).map_err(|e| {
                ImageError::Invalid(format!(
                    "{}: held by a running launch, but not a lease podc wrote ({e}); refusing to guess what it keeps",
                    p.display()
                ))
            })?);
        }
        Ok(Running {
            holders,
            mounted: self.mounted()?,
        })
    }

    /// The store's roots that some mount namespace of this host has mounted: an overlay with
    /// one as a lower layer, or a bind of one (or of a path below it); and what the tree of an
    /// overlay whose lower layer is in the tree's `state/` (a pod of its own user namespace
    /// has an idmapped bind of the root there, which its container's table no longer shows)
    /// recorded it runs. One process's mount table is read per namespace; a process that ends
    /// meanwhile is skipped. A record that is there but does not read stops the caller.
    pub(super) fn mounted(&self) -> Result<BTreeSet<Digest>, ImageError> {
        let roots = self.dir.join("roots");
        let mut dirs = vec![roots.clone()];
        if let Ok(real) = fs::canonicalize(&roots) {
            if real != roots {
                dirs.push(real);
            }
        }
        let dev = fs::metadata(&roots)
            .ok()
            .map(|m| (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev())));
        let mut found = Mounted::default();
        let mut seen = BTreeSet::new();
        let Ok(procs) = fs::read_dir("/proc") else {
            return Ok(found.roots);
        };
        for e in procs.flatten() {
            let is_pid = e
                .file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if !is_pid {
                continue;
            }
            let Ok(ns) = fs::read_link(e.path().join("ns/mnt")) else {
                continue;
            };
            if seen.contains(&ns) {
                continue;
            }
            if let Ok(text) = fs::read_to_string(e.path().join("mountinfo")) {
                scan_mountinfo(&text, &dirs, dev, &mut found);
                seen.insert(ns);
            }
        }
        for tree in &found.trees {
            let path = tree.join(IMAGE_RECORD);
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let record = ImageRecord::parse(&text).map_err(|e| {
                ImageError::Invalid(format!(
                    "{}: the record of a running pod's images does not read ({e}); refusing to guess what it runs",
                    path.display()
                ))
            })?;
            found.roots.extend(record.images.into_values());
        }
        Ok(found.roots)
    }
}

/// What the mount tables read so far have mounted.
#[derive(Debug, Default)]
struct Mounted {
    /// Roots of the store, by manifest digest.
    roots: BTreeSet<Digest>,
    /// Trees whose `state/` holds an overlay's lower layer.
    trees: BTreeSet<PathBuf>,
}

impl Launching<'_> {
    /// Takes the lease of `pod` (from `tree`) on `images`, and lets go of the store's lock.
    pub fn lease(self, pod: &str, tree: &Path, images: &[Digest]) -> Result<Lease, ImageError> {
        let dir = self.store.dir.join("leases");
        mkdir_0700(&dir).map_err(ImageError::io(format!("making {}", dir.display())))?;
        let raw = RawHolder {
            pod: pod.to_string(),
            tree: tree.to_path_buf(),
            images: images.iter().map(Digest::to_string).collect(),
        };
        let text = serde_json::to_string(&raw).expect("strings serialize");
        let (path, mut file) = loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!(
                "{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ImageError::io(format!("making {}", path.display()))(e)),
            }
        };
        let fail = |e| ImageError::io(format!("writing {}", path.display()))(e);
        file.write_all(text.as_bytes()).map_err(fail)?;
        rustix::fs::flock(&file, FlockOperation::LockShared).map_err(|e| fail(e.into()))?;
        Ok(Lease { file })
    }
}

/// A lease file's text, checked.
fn parse_holder(text: &str) -> Result<Holder, String> {
    let raw: RawHolder = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let images = raw
        .images
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<_, _>>()?;
    Ok(Holder {
        pod: raw.pod,
        tree: raw.tree,
        images,
    })
}

/// Adds to `found` the roots below one of `dirs` (the store's `roots/`, as given and as the
/// kernel resolves it) that a mount table's text has mounted: an overlay whose `lowerdir`
/// names one, or a mount of the file system `dev` whose root is one or a path below it; and
/// the tree of an overlay whose lower layer is `TREE/state/<app>/<dir>`.
fn scan_mountinfo(text: &str, dirs: &[PathBuf], dev: Option<(u32, u32)>, found: &mut Mounted) {
    for line in text.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let mount: Vec<&str> = mount.split(' ').collect();
        let fs: Vec<&str> = fs.split(' ').collect();
        if fs.first() == Some(&"overlay") {
            let lower = fs
                .get(2)
                .and_then(|o| o.split(',').find_map(|o| o.strip_prefix("lowerdir=")));
            for l in lower.map(crate::sys::unescape_mountinfo).iter() {
                for layer in l.split(':') {
                    let layer = Path::new(layer);
                    found.roots.extend(
                        dirs.iter()
                            .find_map(|d| root_below(layer.strip_prefix(d).ok()?)),
                    );
                    let state = layer.parent().and_then(Path::parent);
                    if let Some(tree) = state
                        .filter(|s| s.file_name().is_some_and(|n| n == STATE))
                        .and_then(Path::parent)
                    {
                        found.trees.insert(tree.to_path_buf());
                    }
                }
            }
            continue;
        }
        let (Some(devno), Some(root), Some(want)) = (mount.get(2), mount.get(3), dev) else {
            continue;
        };
        if *devno != format!("{}:{}", want.0, want.1) {
            continue;
        }
        // The mount's root is a path of its file system, which may be mounted anywhere: it
        // names a root of this store if it is `X/<hex>/rootfs[/…]` where the store's `roots/`
        // ends with X.
        let root = crate::sys::unescape_mountinfo(root);
        let root = Path::new(&root);
        let parts: Vec<_> = root.components().collect();
        for i in 0..parts.len() {
            let head: PathBuf = parts[..i].iter().collect();
            let tail: PathBuf = parts[i..].iter().collect();
            let head = head.strip_prefix("/").unwrap_or(&head).to_path_buf();
            if let Some(d) = root_below(&tail) {
                if dirs.iter().any(|dir| dir.ends_with(&head)) {
                    found.roots.insert(d);
                }
                break;
            }
        }
    }
}

/// The manifest digest of `<hex>/rootfs[/…]`, a path relative to `roots/`.
fn root_below(rel: &Path) -> Option<Digest> {
    let mut parts = rel.components();
    let hex = parts.next()?.as_os_str().to_str()?;
    if parts.next()?.as_os_str() != "rootfs" {
        return None;
    }
    Digest::parse(&format!("sha256:{hex}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn found(text: &str) -> Vec<String> {
        let dirs = [PathBuf::from("/var/lib/podc/images/roots")];
        let mut f = Mounted::default();
        scan_mountinfo(text, &dirs, Some((254, 0)), &mut f);
        f.roots.iter().map(|d| d.hex().to_string()).collect()
    }

    #[test]
    fn overlays_and_binds_of_roots_are_found() {
        let overlay = format!("1201 1190 0:97 / /tmp/x/rootfs/opt/stage2/web/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/podc/images/roots/{HEX}/rootfs,upperdir=/t/state/web/upper,workdir=/t/state/web/work,uuid=on\n");
        assert_eq!(found(&overlay), [HEX]);
        // The idmapped bind a pod of its own user namespace has as its overlay's lower layer,
        // where the launcher's table shows it; its container's shows only the overlay, whose
        // lower layer is in the tree's state: the tree's record says what it runs.
        let idmapped = format!("1203 1190 254:0 /var/lib/podc/images/roots/{HEX}/rootfs /t/state/web/lower ro,relatime,idmapped - ext4 /dev/vda rw\n");
        assert_eq!(found(&idmapped), [HEX]);
        let dirs = [PathBuf::from("/var/lib/podc/images/roots")];
        let mut f = Mounted::default();
        let mapped = "261 175 0:40 / / rw,relatime shared:36 master:4 - overlay overlay rw,lowerdir=/srv/pods/web/state/web/lower,upperdir=/srv/pods/web/state/web/upper,workdir=/srv/pods/web/state/web/work,uuid=on\n";
        scan_mountinfo(mapped, &dirs, Some((254, 0)), &mut f);
        assert!(f.roots.is_empty());
        assert_eq!(f.trees, [PathBuf::from("/srv/pods/web")].into());
        // A bind of a path below a root, on a file system mounted at /var/lib/podc.
        let bind =
            format!("1202 1190 254:0 /images/roots/{HEX}/rootfs/data /x ro - ext4 /dev/vda rw\n");
        let mut f = Mounted::default();
        scan_mountinfo(&bind, &dirs, Some((254, 0)), &mut f);
        assert_eq!(f.roots.len(), 1);
        // The same path on another file system, another store's root, a root's sibling, or
        // no root at all: none.
        for other in [
            format!("1 1 254:1 /var/lib/podc/images/roots/{HEX}/rootfs /x ro - ext4 /dev/vdb rw"),
            format!("1 1 254:0 /other/store/roots/{HEX}/rootfs /x ro - ext4 /dev/vda rw"),
            format!("1 1 254:0 /var/lib/podc/images/roots/{HEX}/seal /x ro - ext4 /dev/vda rw"),
            format!("1 1 0:9 / /x rw - overlay overlay rw,lowerdir=/other/roots/{HEX}/rootfs,upperdir=/u,workdir=/w"),
            "1 1 254:0 / / rw - ext4 /dev/vda rw".to_string(),
        ] {
            assert!(found(&other).is_empty(), "{other}");
        }
        // A space in the store's path is escaped in the table.
        let dirs = [PathBuf::from("/srv/my images/roots")];
        let mut f = Mounted::default();
        let line = format!("1 1 0:9 / /x rw - overlay overlay rw,lowerdir=/srv/my\\040images/roots/{HEX}/rootfs:/b,upperdir=/u");
        scan_mountinfo(&line, &dirs, None, &mut f);
        assert_eq!(f.roots.len(), 1);
    }

    #[test]
    fn a_lease_reads_back() {
        let h = parse_holder(&format!(
            "{{\"pod\":\"web\",\"tree\":\"/var/lib/podc/web\",\"images\":[\"sha256:{HEX}\"]}}"
        ))
        .unwrap();
        assert_eq!(h.pod, "web");
        assert_eq!(h.images[0].hex(), HEX);
        assert!(parse_holder("{\"pod\":\"web\"}").is_err());
        assert!(parse_holder(&format!(
            "{{\"pod\":\"web\",\"tree\":\"/t\",\"images\":[\"sha256:{HEX}\"],\"x\":1}}"
        ))
        .is_err());
    }
}
