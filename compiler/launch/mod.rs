//! Launch: a built pod tree to a running pod, by way of `systemd-nspawn --boot`.
//!
//! [`prepare`] turns the tree's [`MountPlan`] and what it knows about the host ([`Host`]) into
//! a list of [`Action`]s and the exact nspawn command line; it touches nothing, so `--dry-run`
//! and the tests can show it. [`preflight`] checks what must exist on the host. [`execute`]
//! performs the actions in a private mount namespace (so every mount vanishes with the pod)
//! and then *execs* nspawn, which under the host wrapper unit becomes the main process that
//! reports readiness. The exit status of the pod is nspawn's.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::defaults::{self, Defaults};
use crate::manifest::CgroupVersion;
use crate::manifest::{Network, Protocol};
use crate::tree::layout::GENERATED;
use crate::tree::layout::{image_drop_in_dir, IMAGE_DROP_IN, POD_TARGET};
use crate::tree::plan::{Listen, MountPlan, Step};

/// What the launcher knows about the host it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// For each cgroup v1 controller: the directory of this process's own cgroup (the pod's,
    /// under the host wrapper unit), e.g. `/sys/fs/cgroup/memory/machine.slice/podc-web.service`.
    pub cgroups: BTreeMap<String, PathBuf>,
    /// Whether the host runs systemd as PID 1 (then nspawn registers with machined and uses the
    /// host's journal; otherwise it must not try).
    pub systemd: bool,
    /// The host's own machine id (`/etc/machine-id`), from which each pod's is derived.
    pub machine_id: Option<String>,
    /// How many listening sockets the caller handed this process (`LISTEN_FDS`, when
    /// `LISTEN_PID` is ours): systemd does, starting the host unit through the pod's socket.
    pub listen_fds: Option<usize>,
    /// The host's image store, and the images of the plan's `image` steps found in it.
    pub images: Images,
}

/// The images a plan names by reference, as the host's image store holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Images {
    /// The store (named in the error for an image it lacks).
    pub store: PathBuf,
    /// Each reference (as the plan writes it) the store has.
    pub found: BTreeMap<String, StoreImage>,
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
    /// Looks up every reference of the plan's `image` steps in the store at `store`. A store
    /// that does not exist holds nothing (it is not made: `--check` changes nothing); an image
    /// it lacks is left out, and reported for its app by [`prepare`].
    pub fn look_up(plan: &MountPlan, store: &Path) -> Result<Images, LaunchError> {
        let mut images = Images {
            store: store.to_path_buf(),
            found: BTreeMap::new(),
        };
        let references: Vec<&String> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Image { reference, .. } => Some(reference),
                _ => None,
            })
            .collect();
        if references.is_empty() || !store.is_dir() {
            return Ok(images);
        }
        let fail = |reference: &str, e: String| LaunchError::Image {
            reference: reference.to_string(),
            message: e,
        };
        // Whoever owns the store could swap a root under every pod: root's (or, for a
        // `--check` by another user, that user's own) only, as `Store::open` insists.
        if let Ok(m) = fs::symlink_metadata(store) {
            use std::os::unix::fs::MetadataExt;
            let me = crate::sys::effective_uid();
            if m.uid() != 0 && m.uid() != me {
                return Err(fail(
                    references[0],
                    format!(
                        "image store {}: owned by uid {}, not by root; refusing to run images from it",
                        store.display(),
                        m.uid()
                    ),
                ));
            }
        }
        let opened = crate::image::store::Store::read_only(store);
        for r in references {
            let parsed = crate::manifest::reference::Reference::parse(r).map_err(|e| fail(r, e))?;
            match opened.resolve(&parsed) {
                Ok(image) => {
                    let defaults = Defaults::read(&image.config, &image.root);
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
}

/// An app whose image the store lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImage {
    pub app: String,
    pub reference: String,
    pub store: PathBuf,
}

impl fmt::Display for MissingImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "app {}: image {} is not in the image store ({}); fetch it with: podc image pull {}",
            self.app,
            self.reference,
            self.store.display(),
            self.reference
        )
    }
}

impl Host {
    /// Reads the host: `/proc/self/cgroup` and `/run/systemd/system`.
    pub fn detect() -> Host {
        let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Host {
            cgroups: parse_proc_cgroup(&text, Path::new("/sys/fs/cgroup")),
            systemd: Path::new("/run/systemd/system").is_dir(),
            machine_id: fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|t| t.trim_end().to_string())
                .filter(|t| is_machine_id(t)),
            listen_fds: handed_fds(),
            images: Images {
                store: crate::image::store::default_dir(),
                found: BTreeMap::new(),
            },
        }
    }
}

/// The number of sockets handed to this process by the `sd_listen_fds` protocol.
fn handed_fds() -> Option<usize> {
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

/// One thing the launcher does before it execs nspawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter a private mount namespace.
    Unshare,
    /// Create a directory (and its parents) if missing.
    Mkdir(PathBuf),
    /// Create a symbolic link if missing.
    Symlink {
        link: PathBuf,
        target: String,
    },
    /// Give the pod its machine id: the one derived from the host's (see [`pod_machine_id`]),
    /// or, on a host without one, the one the pod has, or a fresh one on its first launch.
    MachineId {
        path: PathBuf,
        id: Option<String>,
    },
    /// Write a file if it does not exist yet.
    Seed {
        path: PathBuf,
        content: String,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    Tmpfs(PathBuf),
    /// Mount an overlay: `lower` read-only under `upper` (with its `work` directory) at `target`.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// Add the users and groups an app names to the pod's user database (`etc` is the pod's
    /// `/etc`), with the ids its image's own `/etc/passwd` and `/etc/group` give them.
    Names {
        app: String,
        image: PathBuf,
        etc: PathBuf,
        users: Vec<String>,
        groups: Vec<String>,
    },
    /// Write a file, replacing what is there (the launcher's own files, made anew each launch).
    Write {
        path: PathBuf,
        content: String,
        what: String,
    },
    /// Give the pod's user database a numeric uid (with its primary gid) and a gid an image
    /// says an app runs as, where it lacks them (as systemd-sysusers does for the manifest's).
    Ids {
        etc: PathBuf,
        uid: Option<(u32, u32)>,
        gid: Option<u32>,
    },
    /// Make an empty volume's directory (on the volumes tmpfs).
    Volume {
        path: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Create a cgroup directory on the host.
    Cgroup(PathBuf),
    /// Bind and listen on a published port in the host's network (no socket was handed over),
    /// to hand it to the pod as systemd would.
    Listen(Listen),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Unshare => write!(f, "unshare the mount namespace (private)"),
            Action::Mkdir(p) => write!(f, "mkdir {}", p.display()),
            Action::Symlink { link, target } => write!(f, "symlink {} -> {target}", link.display()),
            Action::MachineId { path, id: Some(id) } => write!(
                f,
                "write {} {id} (the pod's machine id, from the host's, the tree and the pod name)",
                path.display()
            ),
            Action::MachineId { path, id: None } => write!(
                f,
                "write {} (a fresh machine id, unless the pod has one)",
                path.display()
            ),
            Action::Seed { path, .. } => write!(f, "write {} (if missing)", path.display()),
            Action::Bind {
                source,
                target,
                read_only,
            } => write!(
                f,
                "bind {} {} {}",
                if *read_only { "ro" } else { "rw" },
                source.display(),
                target.display()
            ),
            Action::Tmpfs(p) => write!(f, "mount tmpfs {}", p.display()),
            Action::Overlay {
                lower,
                upper,
                target,
                ..
            } => write!(
                f,
                "mount overlay {} (image, unchanged) + {} (the pod's writes) at {}",
                lower.display(),
                upper.display(),
                target.display()
            ),
            Action::Names {
                app,
                image,
                users,
                groups,
                ..
            } => write!(
                f,
                "add app {app}'s users [{}] and groups [{}] with their ids in {}/etc to the pod's user database",
                users.join(" "),
                groups.join(" "),
                image.display()
            ),
            Action::Volume {
                path,
                mode,
                uid,
                gid,
            } => {
                write!(
                    f,
                    "mkdir {} mode {mode:04o} owner {uid}:{gid}",
                    path.display()
                )
            }
            Action::Cgroup(p) => write!(f, "mkdir cgroup {}", p.display()),
            Action::Write {
                path,
                content,
                what,
            } => {
                write!(f, "write {} ({what}):", path.display())?;
                for l in content.lines() {
                    write!(f, "\n    {l}")?;
                }
                Ok(())
            }
            Action::Ids { etc, uid, gid } => {
                write!(f, "add to {}/passwd and group where missing:", etc.display())?;
                if let Some((u, g)) = uid {
                    write!(f, " uid {u} (group {g})")?;
                }
                if let Some(g) = gid {
                    write!(f, " gid {g}")?;
                }
                Ok(())
            }
            Action::Listen(l) => write!(
                f,
                "listen {} {} (no socket was handed over; the pod is handed this one)",
                l.protocol.name(),
                l.address
            ),
        }
    }
}

/// The launcher's whole work: actions, then the nspawn command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub plan: MountPlan,
    pub actions: Vec<Action>,
    pub argv: Vec<String>,
    /// Host paths that must exist before anything is done (images, volume sources).
    pub sources: Vec<PathBuf>,
    /// Apps whose image (by reference) the host's store lacks: nothing is done for them, and
    /// the launch stops (or `--check` reports each).
    pub missing_images: Vec<MissingImage>,
}

impl fmt::Display for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        writeln!(f, "exec")?;
        for arg in &self.argv {
            writeln!(f, "  {arg}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}: not a podc tree (no mounts.toml written by podc build)")]
    NotATree(PathBuf),
    #[error("{path}: {message}")]
    BadPlan { path: PathBuf, message: String },
    #[error("podc launch must run as root (it mounts, makes cgroups and starts a container)")]
    NotRoot,
    #[error("systemd-nspawn is not installed; install the systemd-container package")]
    NoNspawn,
    #[error("{0}: does not exist (an image or volume source of the pod)")]
    MissingSource(PathBuf),
    #[error("the pod needs the cgroup v1 controller `{0}`, which this host does not have mounted")]
    MissingController(String),
    #[error("podc launch runs in the root `{0}` cgroup; start it from its host unit (podc-<pod>.service) or in a cgroup of its own")]
    RootCgroup(String),
    #[error("{0}: a mount point is reached through this symbolic link; podc mounts only on real directories")]
    Symlink(PathBuf),
    #[error("app {app}: {kind} {name:?} is not in its image's {file}")]
    UnknownName {
        app: String,
        kind: &'static str,
        name: String,
        file: PathBuf,
    },
    #[error("app {app}: {kind} {name:?} has id {image_id} in its image but {pod_id} in the pod's user database (another image gives it that id)")]
    NameConflict {
        app: String,
        kind: &'static str,
        name: String,
        image_id: u32,
        pod_id: u32,
    },
    #[error("cannot listen on {protocol} {address}: {source}{hint}")]
    Listen {
        protocol: &'static str,
        address: String,
        source: io::Error,
        hint: &'static str,
    },
    #[error("{handed} sockets were handed to the launcher, but the pod publishes {planned} (is podc-<pod>.socket from the same build as the tree?)")]
    HandedSockets { handed: usize, planned: usize },
    #[error("{0}")]
    MissingImage(MissingImage),
    #[error("image {reference}: {message}")]
    Image { reference: String, message: String },
    #[error("app {app}: image {reference}: {message}")]
    ImageConfig {
        app: String,
        reference: String,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

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

/// Where `target` (absolute, inside the pod) is below the pod's root directory.
fn inside(root: &Path, target: &str) -> PathBuf {
    root.join(target.trim_start_matches('/'))
}

/// The launcher's actions and nspawn command line for a tree; pure.
pub fn prepare(tree: &Path, plan: MountPlan, host: &Host) -> Result<Launch, LaunchError> {
    let root = tree.join("rootfs");
    let volumes = tree.join("volumes");
    // Published ports first: a port another process holds stops the launch before anything
    // is mounted.
    let mut actions = match host.listen_fds {
        Some(n) if n == plan.listen.len() => Vec::new(),
        Some(n) => {
            return Err(LaunchError::HandedSockets {
                handed: n,
                planned: plan.listen.len(),
            })
        }
        None => plan.listen.iter().cloned().map(Action::Listen).collect(),
    };
    actions.push(Action::Unshare);
    let mut sources = Vec::new();
    let mut missing_images = Vec::new();
    let mut nspawn_mounts = Vec::new();

    // The stage1 root: mount points, the merged-/usr links, a user database to start from, and
    // a machine id (written before boot, or systemd treats the boot as its first and writes
    // presets into /etc). The id is the same at every launch of one installed tree: it names the
    // pod's journal directory and its boots, so one installed pod keeps one continuous history
    // instead of a new directory per run.
    for d in [
        "usr", "proc", "sys", "dev", "run", "tmp", "var", "root", "etc",
    ] {
        actions.push(Action::Mkdir(root.join(d)));
    }
    // The pod's journal is kept in its tree (persistent from the first boot: journald in the
    // pod flushes there before its tmpfiles would create the directory), one history per
    // installed pod across runs and reboots. It is not linked into the host's
    // /var/log/journal: nspawn 257 mounts that link idmapped, and root in the pod could not
    // write it (measured: the pod's journal then stayed in its /run and was lost at every stop).
    actions.push(Action::Mkdir(root.join("var/log/journal")));
    for d in ["bin", "lib", "lib64", "sbin"] {
        actions.push(Action::Symlink {
            link: root.join(d),
            target: format!("usr/{d}"),
        });
    }
    actions.push(Action::Seed {
        path: root.join("etc/passwd"),
        content: "root:x:0:0:root:/root:/bin/sh\n".into(),
    });
    actions.push(Action::Seed {
        path: root.join("etc/group"),
        content: "root:x:0:\n".into(),
    });
    actions.push(Action::MachineId {
        path: root.join("etc/machine-id"),
        id: host
            .machine_id
            .as_deref()
            .map(|host_id| pod_machine_id(host_id, tree, &plan.pod)),
    });

    let mut volumes_mounted = false;
    for step in &plan.steps {
        match step {
            Step::Overlay {
                app,
                source,
                target,
            } => {
                let state = tree.join("state").join(app);
                if !crate::systemd::escape::overlay_safe(&state.to_string_lossy()) {
                    return Err(LaunchError::BadPlan {
                        path: tree.join("mounts.toml"),
                        message: format!("the pod's state directory {} has a `,`, `:` or `\\`, which overlayfs cannot be given", state.display()),
                    });
                }
                let target = inside(&root, target);
                sources.push(PathBuf::from(source));
                for d in ["upper", "work"] {
                    actions.push(Action::Mkdir(state.join(d)));
                }
                actions.push(Action::Mkdir(target.clone()));
                actions.push(Action::Overlay {
                    lower: source.into(),
                    upper: state.join("upper"),
                    work: state.join("work"),
                    target,
                });
            }
            Step::Image {
                app,
                reference,
                target,
                read_only,
                given,
                environment,
            } => {
                let Some(image) = host.images.found.get(reference) else {
                    missing_images.push(MissingImage {
                        app: app.clone(),
                        reference: reference.clone(),
                        store: host.images.store.clone(),
                    });
                    continue;
                };
                let state = tree.join("state").join(app);
                // The state directory is named in overlayfs options and in nspawn's
                // `--bind-ro=SOURCE:TARGET`, the image's root in the overlay's.
                for (what, p) in [
                    ("the pod's state directory", &state),
                    ("the image's root", &image.root),
                ] {
                    if !crate::systemd::escape::overlay_safe(&p.to_string_lossy()) {
                        return Err(LaunchError::BadPlan {
                            path: tree.join("mounts.toml"),
                            message: format!("app {app}: {what} {} has a `,`, `:` or `\\`, which overlayfs and nspawn cannot be given", p.display()),
                        });
                    }
                }
                let target = inside(&root, target);
                sources.push(image.root.clone());
                if *read_only {
                    actions.push(Action::Mkdir(target.clone()));
                    actions.push(Action::Bind {
                        source: image.root.clone(),
                        target,
                        read_only: true,
                    });
                } else {
                    for d in ["upper", "work"] {
                        actions.push(Action::Mkdir(state.join(d)));
                    }
                    actions.push(Action::Mkdir(target.clone()));
                    actions.push(Action::Overlay {
                        lower: image.root.clone(),
                        upper: state.join("upper"),
                        work: state.join("work"),
                        target,
                    });
                }
                let has = |key: &str| given.iter().any(|g| g == key);
                let drop = defaults::drop_in(
                    app,
                    reference,
                    &image.digest,
                    &image.defaults,
                    defaults::Given {
                        exec: has("exec"),
                        working_directory: has("workingDirectory"),
                        user: has("user"),
                        environment,
                    },
                )
                .map_err(|message| LaunchError::ImageConfig {
                    app: app.clone(),
                    reference: reference.clone(),
                    message,
                })?;
                // A drop-in for the app's unit in the pod's /run (nspawn's tmpfs), where
                // systemd reads drop-ins too: the tree's rootfs stays as it was built.
                let dir = state.join("image");
                actions.push(Action::Mkdir(dir.clone()));
                actions.push(Action::Write {
                    path: dir.join(IMAGE_DROP_IN),
                    content: drop.text,
                    what: format!("the defaults app {app} takes from its image"),
                });
                nspawn_mounts.push(format!(
                    "--bind-ro={}:{}",
                    dir.display(),
                    image_drop_in_dir(app)
                ));
                if !drop.users.is_empty() || !drop.groups.is_empty() {
                    actions.push(Action::Names {
                        app: app.clone(),
                        image: image.root.clone(),
                        etc: root.join("etc"),
                        users: drop.users,
                        groups: drop.groups,
                    });
                }
                if drop.uid.is_some() || drop.gid.is_some() {
                    actions.push(Action::Ids {
                        etc: root.join("etc"),
                        uid: drop.uid,
                        gid: drop.gid,
                    });
                }
            }
            Step::BindHost {
                source,
                target,
                read_only,
            } => {
                let target = inside(&root, target);
                sources.push(PathBuf::from(source));
                actions.push(Action::Mkdir(target.clone()));
                actions.push(Action::Bind {
                    source: source.into(),
                    target,
                    read_only: *read_only,
                });
            }
            Step::MakeVolume {
                volume,
                mode,
                uid,
                gid,
            } => {
                if !volumes_mounted {
                    actions.push(Action::Mkdir(volumes.clone()));
                    actions.push(Action::Tmpfs(volumes.clone()));
                    volumes_mounted = true;
                }
                let mode = u32::from_str_radix(mode, 8).map_err(|_| LaunchError::BadPlan {
                    path: tree.join("mounts.toml"),
                    message: format!("volume {volume}: mode {mode:?} is not octal"),
                })?;
                actions.push(Action::Volume {
                    path: volumes.join(volume),
                    mode,
                    uid: *uid,
                    gid: *gid,
                });
            }
            Step::BindVolume {
                volume,
                target,
                read_only,
            } => {
                let target = inside(&root, target);
                actions.push(Action::Mkdir(target.clone()));
                actions.push(Action::Bind {
                    source: volumes.join(volume),
                    target,
                    read_only: *read_only,
                });
            }
            Step::Names { app, users, groups } => {
                let image_root = crate::tree::layout::app_root(app);
                let image = plan
                    .steps
                    .iter()
                    .find_map(|s| match s {
                        Step::BindHost { source, target, .. }
                        | Step::Overlay { source, target, .. }
                            if *target == image_root =>
                        {
                            Some(Some(PathBuf::from(source)))
                        }
                        Step::Image {
                            reference, target, ..
                        } if *target == image_root => {
                            Some(host.images.found.get(reference).map(|i| i.root.clone()))
                        }
                        _ => None,
                    })
                    .ok_or_else(|| LaunchError::BadPlan {
                        path: tree.join("mounts.toml"),
                        message: format!("app {app}: names, but no image is bound for it"),
                    })?;
                // An image the store lacks is reported as such.
                let Some(image) = image else { continue };
                actions.push(Action::Names {
                    app: app.clone(),
                    image,
                    etc: root.join("etc"),
                    users: users.clone(),
                    groups: groups.clone(),
                });
            }
            Step::Tmpfs { target } => nspawn_mounts.push(format!("--tmpfs={target}")),
            Step::CgroupDir { controller, path } => {
                let base = host
                    .cgroups
                    .get(controller.name())
                    .ok_or_else(|| LaunchError::MissingController(controller.to_string()))?;
                actions.push(Action::Cgroup(base.join(path)));
            }
            Step::CgroupBind {
                controller,
                path,
                target,
                read_only,
            } => {
                let base = host
                    .cgroups
                    .get(controller.name())
                    .ok_or_else(|| LaunchError::MissingController(controller.to_string()))?;
                let source = if path.is_empty() {
                    base.clone()
                } else {
                    base.join(path)
                };
                let flag = if *read_only { "--bind-ro" } else { "--bind" };
                let target = host_hierarchy_target(target, controller.name(), base);
                nspawn_mounts.push(format!("{flag}={}:{target}", source.display()));
            }
        }
    }

    let mut argv = vec![
        "systemd-nspawn".to_string(),
        "--quiet".into(),
        format!("--directory={}", root.display()),
        format!("--machine=podc-{}", plan.pod),
        "--boot".into(),
        // Run in the cgroup we were started in: the host wrapper unit's, or the caller's.
        "--keep-unit".into(),
        "--console=pipe".into(),
    ];
    argv.push("--link-journal=no".into());
    if host.systemd {
        // Ready (for the host unit's Type=notify) once systemd in the pod has started every
        // app, not as soon as it is executed.
        argv.push("--notify-ready=yes".into());
    } else {
        // No machined and no host journal to register with.
        argv.push("--register=no".into());
    }
    if plan.network == Network::Private {
        // A network namespace of the pod's own with loopback only; it ends with the pod.
        argv.push("--private-network".into());
    }
    argv.extend(nspawn_mounts);
    argv.push(format!("systemd.unit={POD_TARGET}"));
    let mut seen = std::collections::BTreeSet::new();
    actions.retain(|a| !matches!(a, Action::Mkdir(p) if !seen.insert(p.clone())));
    Ok(Launch {
        plan,
        actions,
        argv,
        sources,
        missing_images,
    })
}

/// The plan names a controller's directory `/sys/fs/cgroup/<controller>`; where the host mounts
/// it together with others (`cpu,cpuacct`), systemd in the container looks for the host's
/// name, so the bind goes there and nspawn adds the `cpu` → `cpu,cpuacct` links around it.
fn host_hierarchy_target(target: &str, controller: &str, base: &Path) -> String {
    let hierarchy = base
        .strip_prefix("/sys/fs/cgroup")
        .ok()
        .and_then(|p| p.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let prefix = format!("/sys/fs/cgroup/{controller}");
    match (hierarchy, target.strip_prefix(&prefix)) {
        (Some(h), Some(rest)) if h != controller => format!("/sys/fs/cgroup/{h}{rest}"),
        _ => target.to_string(),
    }
}

/// Checks what must hold before anything is done: root, nspawn, the plan's host paths and
/// cgroup controllers.
pub fn preflight(launch: &Launch, host: &Host, need_root: bool) -> Result<PathBuf, LaunchError> {
    if need_root && crate::sys::effective_uid() != 0 {
        return Err(LaunchError::NotRoot);
    }
    if let Some(m) = launch.missing_images.first() {
        return Err(LaunchError::MissingImage(m.clone()));
    }
    let nspawn = find_in_path("systemd-nspawn").ok_or(LaunchError::NoNspawn)?;
    for s in &launch.sources {
        if !s.exists() {
            return Err(LaunchError::MissingSource(s.clone()));
        }
    }
    if launch.plan.cgroup == CgroupVersion::V1 {
        for step in &launch.plan.steps {
            if let Step::CgroupDir { controller, .. } | Step::CgroupBind { controller, .. } = step {
                match host.cgroups.get(controller.name()) {
                    Some(dir) if dir.is_dir() => {
                        // The app cgroups go below ours; below the root they would land among
                        // the host's own system.slice.
                        if dir.parent() == Some(Path::new("/sys/fs/cgroup")) {
                            return Err(LaunchError::RootCgroup(controller.to_string()));
                        }
                    }
                    _ => return Err(LaunchError::MissingController(controller.to_string())),
                }
            }
        }
    }
    Ok(nspawn)
}

/// Looks at the host as the launch would, changing nothing and needing no root (`podc launch
/// --check`): what `preflight` checks, every user and group name in its app's image, and every
/// mount point below an app's root against symbolic links in that app's image. Every problem
/// found is returned.
pub fn check_host(launch: &Launch, host: &Host) -> Vec<LaunchError> {
    let mut problems: Vec<LaunchError> = launch
        .missing_images
        .iter()
        .cloned()
        .map(LaunchError::MissingImage)
        .collect();
    match preflight(launch, host, false) {
        Err(LaunchError::MissingImage(_)) => {
            // Listed above; the rest of preflight still applies.
            let rest = Launch {
                missing_images: Vec::new(),
                ..launch.clone()
            };
            problems.extend(preflight(&rest, host, false).err());
        }
        Err(e) => problems.push(e),
        Ok(_) => {}
    }
    // Each app's root in the tree and the image it shows, as the plan binds them.
    let root = root_of(&launch.actions);
    let app_roots: Vec<String> = launch
        .plan
        .apps
        .iter()
        .map(|a| crate::tree::layout::app_root(a))
        .collect();
    let images: Vec<(PathBuf, PathBuf)> = launch
        .plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Overlay { source, target, .. } | Step::BindHost { source, target, .. }
                if app_roots.contains(target) =>
            {
                Some((inside(root, target), PathBuf::from(source)))
            }
            Step::Image {
                reference, target, ..
            } => host
                .images
                .found
                .get(reference)
                .map(|i| (inside(root, target), i.root.clone())),
            _ => None,
        })
        .collect();
    for a in &launch.actions {
        match a {
            Action::Names {
                app,
                image,
                etc,
                users,
                groups,
            } if image.exists() => problems.extend(
                names_into_pod(app, image, etc, users, groups, false)
                    .into_iter()
                    .flatten(),
            ),
            Action::Mkdir(p) => {
                if let Some((root, image)) = images
                    .iter()
                    .find(|(root, _)| p.starts_with(root) && p != root)
                {
                    let rel = p.strip_prefix(root).expect("below the root");
                    if let Err(e) = refuse_symlinks(image, &image.join(rel)) {
                        problems.push(e);
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Performs the actions and execs nspawn. Returns only on failure.
pub fn execute(launch: &Launch, nspawn: &Path) -> LaunchError {
    match perform(&launch.actions) {
        Ok(sockets) => {
            let mut cmd = Command::new(nspawn);
            cmd.arg0("systemd-nspawn").args(&launch.argv[1..]);
            if !sockets.is_empty() {
                if let Err(e) = hand_over(sockets) {
                    return io_err("hand over sockets", Path::new("/"))(e);
                }
                // nspawn is exec'd: the pid stays ours.
                cmd.env("LISTEN_FDS", launch.plan.listen.len().to_string())
                    .env("LISTEN_PID", std::process::id().to_string())
                    .env_remove("LISTEN_FDNAMES");
            }
            let err = cmd.exec();
            LaunchError::Io {
                what: "exec",
                path: nspawn.to_path_buf(),
                source: err,
            }
        }
        Err(e) => e,
    }
}

/// The pod's root directory: the parent of the first directory the actions make.
fn root_of(actions: &[Action]) -> &Path {
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

/// Puts listening sockets at descriptors 3, 4, … (as `sd_listen_fds` expects) and keeps them
/// open across exec.
fn hand_over(sockets: Vec<std::os::fd::OwnedFd>) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // Out of the way first, so that no socket is overwritten by another's move.
    let high: Vec<OwnedFd> = sockets
        .iter()
        .map(|s| rustix::io::fcntl_dupfd_cloexec(s, 1000))
        .collect::<Result<_, _>>()?;
    drop(sockets);
    for (i, fd) in high.iter().enumerate() {
        // SAFETY: descriptor 3 + i is taken over here (whatever had it is replaced, as dup2
        // does) and deliberately leaked below so that it stays open across exec.
        let mut target = unsafe { OwnedFd::from_raw_fd(3 + i as i32) };
        rustix::io::dup2(fd, &mut target)?;
        std::mem::forget(target);
    }
    Ok(())
}

/// A listening socket for `l`, bound as systemd binds a socket unit's listener: every address
/// is `[::]` for IPv4 and IPv6 (or `0.0.0.0` where the host has no IPv6), SO_REUSEADDR.
fn listen(l: &Listen) -> Result<std::os::fd::OwnedFd, LaunchError> {
    use rustix::net::{self, AddressFamily, SocketFlags, SocketType};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let fail = |source: io::Error| LaunchError::Listen {
        protocol: l.protocol.name(),
        address: l.address.clone(),
        hint: if source.kind() == io::ErrorKind::AddrInUse {
            " (another process holds it: another pod, a service of the host, or this pod already running)"
        } else {
            ""
        },
        source,
    };
    let (ip, port) = l
        .parse()
        .ok_or_else(|| fail(io::ErrorKind::InvalidInput.into()))?;
    let kind = match l.protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    let open = |addr: SocketAddr| -> io::Result<std::os::fd::OwnedFd> {
        let family = if addr.is_ipv6() {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        let fd = net::socket_with(family, kind, SocketFlags::CLOEXEC, None)?;
        net::sockopt::set_socket_reuseaddr(&fd, true)?;
        if addr.is_ipv6() && ip.is_none() {
            net::sockopt::set_ipv6_v6only(&fd, false)?;
        }
        net::bind(&fd, &addr)?;
        if l.protocol == Protocol::Tcp {
            net::listen(&fd, 4096)?;
        }
        Ok(fd)
    };
    match ip {
        Some(ip) => open(SocketAddr::new(ip, port)).map_err(fail),
        None => match open(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error()) => {
                open(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).map_err(fail)
            }
            other => other.map_err(fail),
        },
    }
}

/// Performs the actions; the listening sockets it made, in order.
fn perform(actions: &[Action]) -> Result<Vec<std::os::fd::OwnedFd>, LaunchError> {
    let mut sockets = Vec::new();
    for action in actions {
        match action {
            Action::Listen(l) => sockets.push(listen(l)?),
            Action::Unshare => {
                crate::sys::private_mount_namespace().map_err(io_err("unshare", Path::new("/")))?
            }
            Action::Mkdir(p) => {
                refuse_symlinks(root_of(actions), p)?;
                fs::create_dir_all(p).map_err(io_err("mkdir", p))?
            }
            Action::Cgroup(p) => fs::create_dir_all(p).map_err(io_err("mkdir", p))?,
            Action::Symlink { link, target } => {
                if fs::symlink_metadata(link).is_err() {
                    symlink(target, link).map_err(io_err("symlink", link))?;
                }
            }
            Action::Seed { path, content } => {
                if !path.exists() {
                    fs::write(path, content).map_err(io_err("write", path))?;
                }
            }
            Action::MachineId { path: p, id } => {
                let current = fs::read_to_string(p).ok();
                let current = current.as_deref().map(|t| t.trim_end_matches('\n'));
                if let Some(id) = id {
                    if current != Some(id.as_str()) {
                        fs::write(p, format!("{id}\n")).map_err(io_err("write", p))?;
                    }
                    continue;
                }
                if current.is_some_and(is_machine_id) {
                    continue;
                }
                let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")
                    .map_err(io_err("read", Path::new("/proc/sys/kernel/random/uuid")))?;
                let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
                fs::write(p, format!("{id}\n")).map_err(io_err("write", p))?;
            }
            Action::Bind {
                source,
                target,
                read_only,
            } => crate::sys::bind(source, target, *read_only).map_err(io_err("bind", target))?,
            Action::Tmpfs(p) => crate::sys::tmpfs(p).map_err(io_err("mount tmpfs", p))?,
            Action::Overlay {
                lower,
                upper,
                work,
                target,
            } => crate::sys::overlay(lower, upper, work, target)
                .map_err(io_err("mount overlay", target))?,
            Action::Names {
                app,
                image,
                etc,
                users,
                groups,
            } => {
                if let Some(e) = names_into_pod(app, image, etc, users, groups, true)
                    .into_iter()
                    .flatten()
                    .next()
                {
                    return Err(e);
                }
            }
            Action::Write { path, content, .. } => {
                fs::write(path, content).map_err(io_err("write", path))?
            }
            Action::Ids { etc, uid, gid } => add_ids(etc, *uid, *gid)?,
            Action::Volume {
                path,
                mode,
                uid,
                gid,
            } => {
                fs::create_dir_all(path).map_err(io_err("mkdir", path))?;
                chown(path, Some(*uid), Some(*gid)).map_err(io_err("chown", path))?;
                fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                    .map_err(io_err("chmod", path))?;
            }
        }
    }
    Ok(sockets)
}

/// The machine id of the pod at `tree` on the host whose machine id is `host_id`: the first 128
/// bits of SHA-256 over a podc label, the host's id, the tree's path and the pod's name, shaped
/// as a version 4 UUID, as systemd derives application-specific ids from the machine id
/// (`sd_id128_get_machine_app_specific`). The same installed pod gets the same id at every
/// launch and after a reinstall at the same path, and no state has to be kept for it; pods on
/// different hosts or at different paths get different ones, and the host's id cannot be read
/// back from it.
pub fn pod_machine_id(host_id: &str, tree: &Path, pod: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"podc pod machine id\0");
    h.update(host_id.as_bytes());
    h.update(b"\0");
    h.update(tree.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(pod.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The users and then the groups of one `names` step into the pod's `etc/passwd` and
/// `etc/group` (or only checked, without `write`): the problem of each, if any.
fn names_into_pod(
    app: &str,
    image: &Path,
    etc: &Path,
    users: &[String],
    groups: &[String],
    write: bool,
) -> [Option<LaunchError>; 2] {
    let passwd = etc.join("passwd");
    let group = etc.join("group");
    [
        add_names(app, image, &passwd, "user", "etc/passwd", users, write).err(),
        add_names(app, image, &group, "group", "etc/group", groups, write).err(),
    ]
}

/// Copies the entries of `names` from the image's database file `file` (`etc/passwd` or
/// `etc/group`, read without following links out of the image) into the pod's `db`, with the
/// image's ids: the pod's systemd resolves `User=`/`Group=` names against its own database.
/// With `write` false it only checks (for `podc launch --check`).
fn add_names(
    app: &str,
    image: &Path,
    db: &Path,
    kind: &'static str,
    file: &str,
    names: &[String],
    write: bool,
) -> Result<(), LaunchError> {
    if names.is_empty() {
        return Ok(());
    }
    let source = image.join(file);
    refuse_symlinks(image, &source)?;
    if fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(LaunchError::Symlink(source));
    }
    let image_db = fs::read_to_string(&source).unwrap_or_default();
    let mut pod_db = if db.exists() {
        fs::read_to_string(db).map_err(io_err("read", db))?
    } else {
        String::new()
    };
    let pod_db_before = pod_db.clone();
    // name:x:id:... in both files (the id is the third field of passwd and group alike).
    let find = |text: &str, name: &str| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name).then(|| (l.to_string(), f[2].parse::<u32>().ok()))
        })
    };
    for name in names {
        let unknown = || LaunchError::UnknownName {
            app: app.to_string(),
            kind,
            name: name.clone(),
            file: source.clone(),
        };
        let Some((line, id)) = find(&image_db, name) else {
            // A name the image lacks but the pod's database has (root, seeded above) is fine.
            if find(&pod_db, name).is_some() || name == "root" {
                continue;
            }
            return Err(unknown());
        };
        let image_id = id.ok_or_else(unknown)?;
        match find(&pod_db, name) {
            Some((_, Some(pod_id))) if pod_id != image_id => {
                return Err(LaunchError::NameConflict {
                    app: app.to_string(),
                    kind,
                    name: name.clone(),
                    image_id,
                    pod_id,
                })
            }
            Some(_) => {}
            None => {
                let entry = if kind == "user" {
                    let gid: u32 = line
                        .split(':')
                        .nth(3)
                        .and_then(|g| g.parse().ok())
                        .ok_or_else(unknown)?;
                    format!("{name}:x:{image_id}:{gid}::/:/usr/sbin/nologin\n")
                } else {
                    format!("{name}:x:{image_id}:\n")
                };
                if !pod_db.is_empty() && !pod_db.ends_with('\n') {
                    pod_db.push('\n');
                }
                pod_db.push_str(&entry);
            }
        }
    }
    if write && pod_db != pod_db_before {
        fs::write(db, pod_db).map_err(io_err("write", db))?;
    }
    Ok(())
}

/// Adds `podc-uid-N`/`podc-gid-N` entries (as the tree's sysusers.d does for the manifest's ids)
/// for a numeric uid and gid the pod's `etc/passwd` and `etc/group` lack.
fn add_ids(etc: &Path, uid: Option<(u32, u32)>, gid: Option<u32>) -> Result<(), LaunchError> {
    let has_id = |text: &str, id: u32| {
        text.lines()
            .any(|l| l.split(':').nth(2).and_then(|f| f.parse::<u32>().ok()) == Some(id))
    };
    let add = |file: &str, id: u32, entry: String| -> Result<(), LaunchError> {
        let path = etc.join(file);
        let mut text = fs::read_to_string(&path).unwrap_or_default();
        if has_id(&text, id) {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&entry);
        fs::write(&path, text).map_err(io_err("write", &path))
    };
    let groups = gid.into_iter().chain(uid.map(|(_, g)| g));
    for g in groups {
        add("group", g, format!("podc-gid-{g}:x:{g}:\n"))?;
    }
    if let Some((u, g)) = uid {
        add(
            "passwd",
            u,
            format!("podc-uid-{u}:x:{u}:{g}:podc app user:/:/usr/sbin/nologin\n"),
        )?;
    }
    Ok(())
}

/// 32 lower-case hexadecimal digits, not all zero: what systemd accepts in /etc/machine-id.
fn is_machine_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_machine_ids_are_stable_and_distinct() {
        let host = "3d1219c7c4c5404aaa1f6d2a48adfda4";
        let tree = Path::new("/var/lib/podc/web");
        let id = pod_machine_id(host, tree, "web");
        assert!(is_machine_id(&id), "{id}");
        assert_eq!(&id[12..13], "4", "a version 4 UUID: {id}");
        assert_eq!(id, pod_machine_id(host, tree, "web"));
        let others = [
            pod_machine_id("0123456789abcdef0123456789abcdef", tree, "web"),
            pod_machine_id(host, Path::new("/srv/web"), "web"),
            pod_machine_id(host, tree, "web2"),
        ];
        for o in &others {
            assert!(is_machine_id(o));
            assert_ne!(&id, o);
        }
    }

    #[test]
    fn machine_ids_are_kept_only_when_valid() {
        assert!(is_machine_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "uninitialized",
            "00000000000000000000000000000000",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
        ] {
            assert!(!is_machine_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn mount_points_through_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir_all(root.join("opt/stage2/a/rootfs/var")).unwrap();
        symlink("/etc", root.join("opt/stage2/a/rootfs/var/www")).unwrap();
        let bad = root.join("opt/stage2/a/rootfs/var/www/data");
        assert!(
            matches!(refuse_symlinks(&root, &bad), Err(LaunchError::Symlink(p)) if p.ends_with("var/www"))
        );
        let good = root.join("opt/stage2/a/rootfs/var/lib/data");
        assert!(refuse_symlinks(&root, &good).is_ok());
    }

    #[test]
    fn proc_cgroup_lines_map_controllers_to_directories() {
        let text = "12:pids:/a.service\n4:cpu,cpuacct:/a.service\n3:memory:/user.slice/x\n1:name=systemd:/a\n0::/a\n";
        let m = parse_proc_cgroup(text, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            m["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/user.slice/x")
        );
        assert_eq!(
            m["cpu"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a.service")
        );
        assert_eq!(m["cpuacct"], m["cpu"]);
        assert_eq!(m["pids"], PathBuf::from("/sys/fs/cgroup/pids/a.service"));
        assert_eq!(m.len(), 4);
    }
}
