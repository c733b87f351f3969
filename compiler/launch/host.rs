//! What the launcher knows of the host: its cgroup hierarchies, systemd, machine id,
//! handed sockets, and the images of the store a plan names (by the digests the tree
//! recorded, under a lease for a launch).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::action::*;
use crate::image::defaults::Defaults;
use crate::image::store::Lease;
use crate::image::Digest;
use crate::manifest::HostResource;
use crate::tree::images::ImageRecord;
use crate::tree::layout::PERSISTENT_VOLUMES;
use crate::tree::plan::{MountPlan, Step};

/// What the launcher knows about the host it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// For each cgroup v1 controller: the directory of this process's own cgroup (the pod's,
    /// under the host wrapper unit), e.g. `/sys/fs/cgroup/memory/machine.slice/podc-web.service`.
    pub cgroups: BTreeMap<String, PathBuf>,
    /// Whether the host runs systemd as PID 1 (then nspawn registers with machined and uses the
    /// host's journal; otherwise it must not try).
    pub systemd: bool,
    /// Whether a service manager waits for the pod to be ready (`NOTIFY_SOCKET`: the host
    /// unit's `Type=notify`); then nspawn reports readiness through podc.
    pub notify: bool,
    /// The host's own machine id (`/etc/machine-id`), from which each pod's is derived.
    pub machine_id: Option<String>,
    /// How many listening sockets the caller handed this process (`LISTEN_FDS`, when
    /// `LISTEN_PID` is ours): systemd does, starting the host unit through the pod's socket.
    pub listen_fds: Option<usize>,
    /// The host's image store, and the images of the plan's `image` steps found in it.
    pub images: Images,
    /// Where persistent volumes live (`<volumes>/<pod>/<volume>`): [`volumes_dir`].
    pub volumes: PathBuf,
    /// This program (`/proc/self/exe` as a path), which a plan's `bind-podc` step binds into
    /// the pod for its gRPC probes; `None` where the kernel does not say.
    pub podc: Option<PathBuf>,
    /// What the host has of the resources a `host` config item counts.
    pub resources: HostResources,
    /// Whether cgroup2 is mounted at /sys/fs/cgroup with `nsdelegate` (systemd mounts it so on
    /// a cgroup v2 host), which a plan's `writable-cgroup` step needs.
    pub nsdelegate: bool,
}

/// The host's CPUs, memory and storage, as Kubernetes' node allocatable counts them for a
/// container without a limit (podc reserves nothing for the system, and evicts nothing):
/// each `None` where the host does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResources {
    /// Online CPUs ([`CPUS_ONLINE`]).
    pub cpus: Option<u64>,
    /// `MemTotal` of [`MEMINFO`], in bytes.
    pub memory: Option<u64>,
    /// The size of the file system of the pod's tree, in bytes.
    pub storage: Option<u64>,
}

/// The kernel's list of online CPUs (`0-3,6`).
pub const CPUS_ONLINE: &str = "/sys/devices/system/cpu/online";
/// The kernel's memory counters.
pub const MEMINFO: &str = "/proc/meminfo";

impl HostResources {
    /// Reads the host's; `tree` is the pod's tree, whose file system's size is its storage.
    pub fn read(tree: &Path) -> HostResources {
        let storage = rustix::fs::statvfs(tree)
            .ok()
            .and_then(|s| s.f_blocks.checked_mul(s.f_frsize));
        HostResources {
            cpus: fs::read_to_string(CPUS_ONLINE)
                .ok()
                .and_then(|t| count_cpus(&t)),
            memory: fs::read_to_string(MEMINFO).ok().and_then(|t| mem_total(&t)),
            storage,
        }
    }

    /// The resource's amount divided by `divisor` (millicores for CPU, else bytes), rounded
    /// up, as the kubelet rounds a `resourceFieldRef`; with where it was counted, or why not.
    pub fn count(
        &self,
        resource: HostResource,
        divisor: u64,
        tree: &Path,
    ) -> (PathBuf, Result<String, String>) {
        let (amount, from, what) = match resource {
            HostResource::Cpu => (
                self.cpus.and_then(|n| n.checked_mul(1000)),
                PathBuf::from(CPUS_ONLINE),
                "the host's online CPUs",
            ),
            HostResource::Memory => (self.memory, PathBuf::from(MEMINFO), "the host's MemTotal"),
            HostResource::EphemeralStorage => (
                self.storage,
                tree.to_path_buf(),
                "the size of the pod tree's file system",
            ),
        };
        let n = match amount {
            Some(a) if divisor > 0 => Ok(a.div_ceil(divisor).to_string()),
            _ => Err(format!("cannot count {what}")),
        };
        (from, n)
    }
}

/// The number of CPUs in a kernel CPU list (`0-3,6` is 5); `None` for anything else.
pub fn count_cpus(list: &str) -> Option<u64> {
    let mut n = 0u64;
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
        n += b.checked_sub(a)? + 1;
    }
    (n > 0).then_some(n)
}

/// `MemTotal:  16318904 kB` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kb.checked_mul(1024)
}

/// The root of persistent volumes: `PODC_VOLUMES_DIR` if set (tests; hosts that keep them
/// elsewhere), else [`PERSISTENT_VOLUMES`]. Read by the launcher, `podc status` and
/// `podc uninstall --delete-data` alike.
pub fn volumes_dir() -> PathBuf {
    std::env::var_os("PODC_VOLUMES_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PERSISTENT_VOLUMES))
}

/// The images a plan names by reference, as the host's image store holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Images {
    /// The store (named in the error for an image it lacks).
    pub store: PathBuf,
    /// Each reference (as the plan writes it) the store has.
    pub found: BTreeMap<String, StoreImage>,
    /// Each reference the tree's record pins (as the plan writes it) → the pinned reference
    /// that was looked up instead (`name@sha256:…`): what the tree ran before, whatever the
    /// name means now.
    pub pinned: BTreeMap<String, String>,
}

/// One image of the store, read for the launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreImage {
    /// The digest of its manifest.
    pub digest: String,
    /// Its unpacked root, shared read-only by every pod that runs it.
    pub root: PathBuf,
    /// What its config supplies where a manifest is silent.
    pub defaults: Defaults,
}

impl Images {
    /// Looks up every reference of the plan's `image` and `image-volume` steps in the store at
    /// `store`, a reference `record` has by its recorded digest. A store
    /// that does not exist holds nothing (it is not made: `--check` changes nothing); an image
    /// it lacks is left out, and reported for its app by [`prepare`].
    pub fn look_up(
        plan: &MountPlan,
        store: &Path,
        record: &ImageRecord,
    ) -> Result<Images, LaunchError> {
        let mut images = Images {
            store: store.to_path_buf(),
            found: BTreeMap::new(),
            pinned: BTreeMap::new(),
        };
        // Each reference once, with the bare program names its apps' `exec` and `args` name
        // (the first word of args is a program when the image has no Entrypoint).
        let mut wanted: BTreeMap<&String, Vec<&str>> = BTreeMap::new();
        for s in &plan.steps {
            // An image volume's reference is resolved as an app's, with no program to find.
            if let Step::ImageVolume { reference, .. } = s {
                wanted.entry(reference).or_default();
            }
            if let Step::Image {
                reference,
                exec,
                args,
                ..
            } = s
            {
                let names = wanted.entry(reference).or_default();
                names.extend(
                    exec.first()
                        .or(args.first())
                        .filter(|p| !p.contains('/'))
                        .map(String::as_str),
                );
            }
        }
        let references: Vec<&String> = wanted.keys().copied().collect();
        if references.is_empty() || !store.is_dir() {
            return Ok(images);
        }
        let fail = |reference: &str, e: String| LaunchError::Image {
            reference: reference.to_string(),
            message: e,
        };
        check_store_owner(store, references[0])?;
        let opened = crate::image::store::Store::read_only(store);
        for r in references {
            let parsed = match record.pinned(r) {
                Some(pinned) => {
                    images.pinned.insert(r.clone(), pinned.to_string());
                    pinned
                }
                None => crate::manifest::reference::Reference::parse(r).map_err(|e| fail(r, e))?,
            };
            match opened.resolve(&parsed) {
                Ok(image) => {
                    // A root changed since it was unpacked is not the image its digest names.
                    opened
                        .check_root(&image.manifest, crate::image::store::Depth::Quick)
                        .map_err(|e| fail(r, e.to_string()))?;
                    let defaults = Defaults::read(&image.config, &image.root, &wanted[r]);
                    images.found.insert(
                        r.clone(),
                        StoreImage {
                            digest: image.manifest.to_string(),
                            root: image.root,
                            defaults,
                        },
                    );
                }
                Err(crate::image::ImageError::NotFound(_)) => {}
                Err(e) => {
                    let hint = if crate::sys::effective_uid() != 0 {
                        " (the image store is readable by root only)"
                    } else {
                        ""
                    };
                    return Err(fail(r, format!("{e}{hint}")));
                }
            }
        }
        Ok(images)
    }

    /// [`Images::look_up`] for a launch: with the store's lock held shared, so that no gc or
    /// rm runs between the look-up and the lease, which is then taken on every image found
    /// for `pod` of `tree` (`None` where the plan finds none). The lease must live as long as
    /// the pod: [`super::execute`] hands it on to nspawn.
    pub fn look_up_leased(
        plan: &MountPlan,
        store: &Path,
        record: &ImageRecord,
        tree: &Path,
    ) -> Result<(Images, Option<Lease>), LaunchError> {
        let references = super::record::plan_references(plan);
        let (Some(first), true) = (references.first(), store.is_dir()) else {
            return Ok((Images::look_up(plan, store, record)?, None));
        };
        check_store_owner(store, first)?;
        let fail = |e: crate::image::ImageError| LaunchError::Image {
            reference: first.to_string(),
            message: e.to_string(),
        };
        let opened = crate::image::store::Store::read_only(store);
        let launching = opened.launching().map_err(fail)?;
        let images = Images::look_up(plan, store, record)?;
        if images.found.is_empty() {
            return Ok((images, None));
        }
        let lease = launching
            .lease(&plan.pod, tree, &images.digests())
            .map_err(fail)?;
        Ok((images, Some(lease)))
    }

    /// The manifest digests of the images found, each once.
    pub fn digests(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self
            .found
            .values()
            .filter_map(|i| Digest::parse(&i.digest).ok())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The record of what this launch runs: every reference found, with its digest.
    pub fn record(&self) -> ImageRecord {
        ImageRecord {
            images: self
                .found
                .iter()
                .filter_map(|(r, i)| Some((r.clone(), Digest::parse(&i.digest).ok()?)))
                .collect(),
        }
    }

    /// The report of an image the store lacks, needed by `needed_by` (`app web`): under the
    /// digest the tree recorded, where it recorded one.
    pub fn missing(&self, needed_by: String, reference: &str) -> MissingImage {
        MissingImage {
            needed_by,
            reference: self
                .pinned
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.to_string()),
            recorded_for: self
                .pinned
                .contains_key(reference)
                .then(|| reference.to_string()),
            store: self.store.clone(),
        }
    }
}

/// Refuses a store another user than root (or, for a `--check` by another user, that user
/// himself) owns: its owner could swap a root under every pod, as `Store::open` insists.
fn check_store_owner(store: &Path, reference: &str) -> Result<(), LaunchError> {
    if let Ok(m) = fs::symlink_metadata(store) {
        use std::os::unix::fs::MetadataExt;
        let me = crate::sys::effective_uid();
        if m.uid() != 0 && m.uid() != me {
            return Err(LaunchError::Image {
                reference: reference.to_string(),
                message: format!(
                    "image store {}: owned by uid {}, not by root; refusing to run images from it",
                    store.display(),
                    m.uid()
                ),
            });
        }
    }
    Ok(())
}

impl Host {
    /// Reads the host: `/proc/self/cgroup` and `/run/systemd/system`.
    pub fn detect() -> Host {
        let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Host {
            cgroups: parse_proc_cgroup(&text, Path::new("/sys/fs/cgroup")),
            systemd: Path::new("/run/systemd/system").is_dir(),
            notify: super::supervise::manager_socket().is_some(),
            machine_id: fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|t| t.trim_end().to_string())
                .filter(|t| is_machine_id(t)),
            listen_fds: handed_fds(),
            images: Images {
                store: crate::image::store::default_dir(),
                ..Images::default()
            },
            volumes: volumes_dir(),
            podc: std::env::current_exe().ok(),
            resources: HostResources::default(),
            nsdelegate: nsdelegate(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()),
        }
    }
}

/// Whether `/proc/self/mountinfo` (its text) has cgroup2 at /sys/fs/cgroup with the super block
/// option `nsdelegate`.
pub fn nsdelegate(mountinfo: &str) -> bool {
    mountinfo.lines().any(|l| {
        let Some((mount, fs)) = l.split_once(" - ") else {
            return false;
        };
        let mut fs = fs.split(' ');
        mount.split(' ').nth(4) == Some("/sys/fs/cgroup")
            && fs.next() == Some("cgroup2")
            && fs
                .nth(1)
                .is_some_and(|o| o.split(',').any(|o| o == "nsdelegate"))
    })
}

/// The number of sockets handed to this process by the `sd_listen_fds` protocol.
pub(super) fn handed_fds() -> Option<usize> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    if pid != std::process::id() {
        return None;
    }
    std::env::var("LISTEN_FDS").ok()?.parse().ok()
}

/// `ID:controllers:path` lines of cgroup v1 hierarchies → controller → cgroup directory.
pub fn parse_proc_cgroup(text: &str, root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() || controllers.starts_with("name=") {
            continue;
        }
        let path = path.trim_start_matches('/');
        let mut dir = root.join(controllers);
        if !path.is_empty() {
            dir.push(path);
        }
        for c in controllers.split(',') {
            out.insert(c.to_string(), dir.clone());
        }
    }
    out
}

/// 32 lower-case hexadecimal digits, not all zero: what systemd accepts in /etc/machine-id.
pub(super) fn is_machine_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}
