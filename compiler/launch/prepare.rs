//! Preparing a launch (pure): the stage1 root, one function per plan step kind, and the
//! nspawn command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::action::*;
use super::host::*;
use super::items::*;
use super::paths::*;
use super::users::*;
use crate::image::defaults;
use crate::manifest::{Egress, HostType, Network};
use crate::systemd::argv::words_args;
use crate::tree::layout::{
    app_root, image_drop_in_dir, IMAGE_DROP_IN, PLAN, POD_TARGET, PROBE_PROGRAM, ROOTFS, STATE,
    VOLUMES,
};
use crate::tree::plan::{Controller, MountPlan, Step};

// The item steps (config items and secrets), in a file of their own.
#[path = "prepare_items.rs"]
mod item_steps;
// A pod of its own user namespace.
#[path = "prepare_userns.rs"]
mod userns_steps;
pub use userns_steps::nspawn_user_namespace;

/// The launcher's actions and nspawn command line for a tree; pure.
pub fn prepare(tree: &Path, plan: MountPlan, host: &Host) -> Result<Launch, LaunchError> {
    // Published ports first: a port another process holds stops the launch before anything
    // is mounted.
    let actions = match host.listen_fds {
        Some(n) if n == plan.listen.len() => Vec::new(),
        Some(n) => {
            return Err(LaunchError::HandedSockets {
                handed: n,
                planned: plan.listen.len(),
            })
        }
        None => plan.listen.iter().cloned().map(Action::Listen).collect(),
    };
    let mut p = Prep {
        tree,
        root: tree.join(ROOTFS),
        volumes: tree.join(VOLUMES),
        host,
        actions,
        sources: Vec::new(),
        missing_images: Vec::new(),
        nspawn_mounts: Vec::new(),
        volumes_mounted: false,
        volume_sources: BTreeMap::new(),
        image_volumes: BTreeMap::new(),
        image_roots: image_roots(&plan, host),
        items: Vec::new(),
        projected: BTreeMap::new(),
        private_users: plan.user_namespace == crate::manifest::UserNamespace::Private,
    };
    p.actions.push(Action::Unshare);
    p.stage1(&plan);
    for step in &plan.steps {
        p.step(step, &plan)?;
    }
    p.actions.extend(env_actions(tree, &plan.pod, &p.items));
    if plan.egress == Egress::Nat || !plan.networks.is_empty() || loopback_only(&plan) {
        // Last: nothing after it can fail and leave a lease behind before nspawn starts.
        p.actions.push(Action::Network {
            pod: plan.pod.clone(),
            way_out: plan.egress == Egress::Nat,
            networks: plan.networks.clone(),
            allow_host: plan.allow_host.clone(),
            low_ports: false,
        });
    }
    let argv = nspawn_argv(
        &plan,
        host,
        p.root.as_path(),
        std::mem::take(&mut p.nspawn_mounts),
    );
    let mut actions = p.actions;
    userns_steps::with_user_namespace(&mut actions, &plan, tree, &p.root);
    let mut seen = std::collections::BTreeSet::new();
    actions.retain(|a| !matches!(a, Action::Mkdir(p) if !seen.insert(p.clone())));
    Ok(Launch {
        plan,
        actions,
        argv,
        sources: p.sources,
        missing_images: p.missing_images,
        items: p.items,
    })
}

/// A launch being prepared: what the steps of the plan add up to.
pub(super) struct Prep<'a> {
    tree: &'a Path,
    /// The pod's root (the tree's `rootfs`).
    root: PathBuf,
    /// Where the pod's empty volumes are made (the tree's `volumes`).
    volumes: PathBuf,
    host: &'a Host,
    actions: Vec<Action>,
    sources: Vec<PathBuf>,
    missing_images: Vec<MissingImage>,
    nspawn_mounts: Vec<String>,
    volumes_mounted: bool,
    /// The host directory of each volume that is not on the volumes tmpfs (persistent ones).
    volume_sources: BTreeMap<String, PathBuf>,
    /// Each image volume's root in the image store (`None`: the store lacks it, and the
    /// launch stops).
    image_volumes: BTreeMap<String, Option<PathBuf>>,
    /// Each app's image root on the host, read once from the plan: `None` for an image the
    /// store lacks (reported as missing by its own step).
    image_roots: BTreeMap<String, Option<PathBuf>>,
    /// The apps' uses of config items and secrets.
    items: Vec<ItemUse>,
    /// Each projected volume made so far, with its files' mode, uid and gid.
    projected: BTreeMap<String, (u32, u32, u32)>,
    /// The pod runs in a user namespace of its own (`userNamespace: private`).
    private_users: bool,
}

/// The host directory each app's image step binds at the app's root.
pub(super) fn image_roots(plan: &MountPlan, host: &Host) -> BTreeMap<String, Option<PathBuf>> {
    let mut roots = BTreeMap::new();
    for app in &plan.apps {
        let image_root = app_root(app);
        let found = plan.steps.iter().find_map(|s| match s {
            Step::BindHost { source, target, .. } | Step::Overlay { source, target, .. }
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
        });
        if let Some(found) = found {
            roots.insert(app.clone(), found);
        }
    }
    roots
}

impl Prep<'_> {
    /// What one step of the plan adds to the launch.
    fn step(&mut self, step: &Step, plan: &MountPlan) -> Result<(), LaunchError> {
        match step {
            Step::Overlay {
                app,
                source,
                target,
            } => self.overlay(app, source, target)?,
            Step::Image { .. } => self.image_step(step)?,
            Step::BindHost {
                source,
                target,
                read_only,
                host_type,
                sub_path,
                make_missing,
            } => {
                let sub = sub_path.as_deref().map(|s| (s, *make_missing));
                self.bind_host(source, target, *read_only, *host_type, sub)
            }
            Step::MakeVolume {
                volume,
                mode,
                uid,
                gid,
            } => self.make_volume(volume, mode, *uid, *gid)?,
            Step::PersistentVolume {
                volume,
                mode,
                uid,
                gid,
            } => self.persistent_volume(&plan.pod, volume, mode, *uid, *gid)?,
            Step::MemoryVolume {
                volume,
                size,
                mode,
                uid,
                gid,
            } => self.memory_volume(volume, *size, mode, *uid, *gid)?,
            Step::ProjectedVolume {
                volume,
                mode,
                uid,
                gid,
            } => self.projected_volume(volume, mode, *uid, *gid)?,
            Step::Project { .. } => self.project(&plan.pod, step)?,
            Step::ImageVolume { volume, reference } => self.image_volume(volume, reference),
            Step::BindVolume {
                volume,
                target,
                read_only,
                sub_path,
                make_missing,
            } => self.bind_volume(
                volume,
                target,
                *read_only,
                sub_path.as_deref(),
                *make_missing,
            ),
            Step::Names { app, users, groups } => self.names(app, users, groups)?,
            Step::Tmpfs { target } => self.nspawn_mounts.push(format!("--tmpfs={target}")),
            Step::BindPodc => self.bind_podc()?,
            // A condition on the host (preflight), nothing to mount.
            Step::WritableCgroup { .. } => {}
            Step::CgroupDir { controller, path } => self.cgroup_dir(*controller, path)?,
            Step::CgroupBind {
                controller,
                path,
                target,
                read_only,
            } => self.cgroup_bind(*controller, path, target, *read_only)?,
            Step::Credential {
                kind,
                name,
                source,
                host,
                divisor,
                apps,
            } => {
                let counted = self.counted(&plan.pod, apps, *kind, name, *host, *divisor)?;
                self.credential(*kind, name, source.as_deref(), counted, apps)
            }
            Step::Env {
                app,
                variable,
                kind,
                name,
                source,
                host,
                divisor,
                key,
            } => {
                let apps = std::slice::from_ref(app);
                let counted = self.counted(&plan.pod, apps, *kind, name, *host, *divisor)?;
                let taken = Taken::Variable {
                    name: variable.to_string(),
                    key: key.clone(),
                };
                self.env(app, *kind, name, source.as_deref(), counted, taken)
            }
            Step::EnvAll { .. } => self.env_all(step),
        }
        Ok(())
    }

    /// An `image` step: the app's image root, and what its config supplies.
    fn image_step(&mut self, step: &Step) -> Result<(), LaunchError> {
        let Step::Image {
            app,
            reference,
            target,
            read_only,
            given,
            environment,
            exec,
            args,
            expand,
        } = step
        else {
            return Ok(());
        };
        let has = |key: &str| given.iter().any(|g| g == key);
        let (exec, args) = (words_args(exec, expand), words_args(args, expand));
        let command = if has("exec") {
            defaults::Command::InUnit
        } else if !exec.is_empty() {
            defaults::Command::LookUp(&exec)
        } else if !args.is_empty() {
            defaults::Command::Args(&args)
        } else {
            defaults::Command::Image
        };
        let given = defaults::Given {
            command,
            working_directory: has("workingDirectory"),
            user: has("user"),
            environment,
        };
        self.image(app, reference, target, *read_only, given)
    }

    /// The stage1 root: mount points, the merged-/usr links, a user database to start from,
    /// and a machine id.
    fn stage1(&mut self, plan: &MountPlan) {
        let (tree, host) = (self.tree, self.host);
        // The stage1 root: mount points, the merged-/usr links, a user database to start from, and
        // a machine id (written before boot, or systemd treats the boot as its first and writes
        // presets into /etc). The id is the same at every launch of one installed tree: it names the
        // pod's journal directory and its boots, so one installed pod keeps one continuous history
        // instead of a new directory per run.
        for d in [
            "usr", "proc", "sys", "dev", "run", "tmp", "var", "root", "etc",
        ] {
            self.actions.push(Action::Mkdir(self.root.join(d)));
        }
        // The pod's journal is kept in its tree (persistent from the first boot: journald in the
        // pod flushes there before its tmpfiles would create the directory), one history per
        // installed pod across runs and reboots. It is not linked into the host's
        // /var/log/journal: nspawn 257 mounts that link idmapped, and root in the pod could not
        // write it (measured: the pod's journal then stayed in its /run and was lost at every stop).
        self.actions
            .push(Action::Mkdir(self.root.join("var/log/journal")));
        for d in ["bin", "lib", "lib64", "sbin"] {
            self.actions.push(Action::Symlink {
                link: self.root.join(d),
                target: format!("usr/{d}"),
            });
        }
        self.actions.push(Action::Seed {
            path: self.root.join("etc/passwd"),
            content: "root:x:0:0:root:/root:/bin/sh\n".into(),
        });
        self.actions.push(Action::Seed {
            path: self.root.join("etc/group"),
            content: "root:x:0:\n".into(),
        });
        self.actions.push(Action::MachineId {
            path: self.root.join("etc/machine-id"),
            id: host
                .machine_id
                .as_deref()
                .map(|host_id| pod_machine_id(host_id, tree, &plan.pod)),
        });
    }

    /// An `overlay` step: a path image under a writable layer of the pod's own.
    fn overlay(&mut self, app: &str, source: &str, target: &str) -> Result<(), LaunchError> {
        let state = self.tree.join(STATE).join(app);
        if !crate::systemd::escape::overlay_safe(&state.to_string_lossy()) {
            return Err(LaunchError::BadPlan {
                path: self.tree.join(PLAN),
                message: format!("the pod's state directory {} has a `,`, `:` or `\\`, which overlayfs cannot be given", state.display()),
            });
        }
        let target = inside(&self.root, target);
        self.sources.push(PathBuf::from(source));
        for d in ["upper", "work"] {
            self.actions.push(Action::Mkdir(state.join(d)));
        }
        self.actions.push(Action::Mkdir(target.clone()));
        self.actions.push(Action::Overlay {
            lower: source.into(),
            upper: state.join("upper"),
            work: state.join("work"),
            target,
        });
        Ok(())
    }

    /// An `image` step: an image of the store at the app's root (read-only or under an
    /// overlay), and the drop-in of what its config supplies.
    fn image(
        &mut self,
        app: &str,
        reference: &str,
        target: &str,
        read_only: bool,
        given: defaults::Given<'_>,
    ) -> Result<(), LaunchError> {
        let Some(image) = self.host.images.found.get(reference) else {
            let missing = self.host.images.missing(format!("app {app}"), reference);
            self.missing_images.push(missing);
            return Ok(());
        };
        let state = self.tree.join(STATE).join(app);
        // The state directory is named in overlayfs options and in nspawn's
        // `--bind-ro=SOURCE:TARGET`, the image's root in the overlay's.
        for (what, p) in [
            ("the pod's state directory", &state),
            ("the image's root", &image.root),
        ] {
            if !crate::systemd::escape::overlay_safe(&p.to_string_lossy()) {
                return Err(LaunchError::BadPlan {
                    path: self.tree.join(PLAN),
                    message: format!("app {app}: {what} {} has a `,`, `:` or `\\`, which overlayfs and nspawn cannot be given", p.display()),
                });
            }
        }
        let target = inside(&self.root, target);
        self.sources.push(image.root.clone());
        if read_only {
            self.actions.push(Action::Mkdir(target.clone()));
            self.actions.push(Action::Bind {
                source: image.root.clone(),
                target,
                read_only: true,
            });
        } else {
            for d in ["upper", "work"] {
                self.actions.push(Action::Mkdir(state.join(d)));
            }
            self.actions.push(Action::Mkdir(target.clone()));
            self.actions.push(Action::Overlay {
                lower: image.root.clone(),
                upper: state.join("upper"),
                work: state.join("work"),
                target,
            });
        }
        let drop = defaults::drop_in(app, reference, &image.digest, &image.defaults, given)
            .map_err(|message| LaunchError::ImageConfig {
                app: app.to_string(),
                reference: reference.to_string(),
                message,
            })?;
        // A drop-in for the app's unit in the pod's /run (nspawn's tmpfs), where
        // systemd reads drop-ins too: the tree's rootfs stays as it was built.
        let dir = state.join("image");
        self.actions.push(Action::Mkdir(dir.clone()));
        self.actions.push(Action::Write {
            path: dir.join(IMAGE_DROP_IN),
            content: drop.text,
            what: format!("the defaults app {app} takes from its image"),
        });
        let at = image_drop_in_dir(app, self.private_users);
        if self.private_users {
            let target = inside(&self.root, &at);
            self.actions.push(Action::Mkdir(target.clone()));
            self.actions.push(Action::Bind {
                source: dir,
                target,
                read_only: true,
            });
        } else {
            self.nspawn_mounts
                .push(format!("--bind-ro={}:{at}", dir.display()));
        }
        if !drop.users.is_empty() || !drop.groups.is_empty() {
            self.actions.push(Action::Names {
                app: app.to_string(),
                image: image.root.clone(),
                etc: self.root.join("etc"),
                users: drop.users,
                groups: drop.groups,
            });
        }
        if drop.uid.is_some() || drop.gid.is_some() {
            self.actions.push(Action::Ids {
                etc: self.root.join("etc"),
                uid: drop.uid,
                gid: drop.gid,
            });
        }
        Ok(())
    }

    /// A `bind-host` step: a host path (or a path inside it) bound into the pod.
    /// Its `type` made or checked first; `sub`: the `subPath` and whether it is made.
    fn bind_host(
        &mut self,
        source: &str,
        target: &str,
        read_only: bool,
        host_type: HostType,
        sub: Option<(&str, bool)>,
    ) {
        let target = inside(&self.root, target);
        let source = PathBuf::from(source);
        if matches!(
            host_type,
            HostType::Directory | HostType::File | HostType::Socket
        ) {
            self.sources.push(source.clone());
        }
        if host_type != HostType::Directory {
            self.actions.push(Action::HostPath {
                path: source.clone(),
                host_type,
            });
        }
        let dir = matches!(host_type, HostType::Directory | HostType::DirectoryOrCreate);
        if dir || sub.is_some() {
            let (sub, make) = sub.unzip();
            return self.bind(source, target, read_only, sub, make.unwrap_or(false));
        }
        self.actions.push(Action::MountPoint {
            source: source.clone(),
            target: target.clone(),
        });
        self.actions.push(Action::Bind {
            source,
            target,
            read_only,
        });
    }

    /// A volume's directory, or the path `sub` inside it (made if missing, with `make`),
    /// bound at `target`.
    fn bind(
        &mut self,
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        sub: Option<&str>,
        make: bool,
    ) {
        let Some(sub) = sub else {
            self.actions.push(Action::Mkdir(target.clone()));
            self.actions.push(Action::Bind {
                source,
                target,
                read_only,
            });
            return;
        };
        self.actions.push(Action::BindWithin {
            base: source,
            sub: sub.to_string(),
            target,
            read_only,
            make,
            noexec: false,
        });
    }

    /// A `bind-podc` step: this program, read-only on the pod's /run (nspawn's tmpfs, so the
    /// tree is not touched), for the health script's gRPC probes.
    fn bind_podc(&mut self) -> Result<(), LaunchError> {
        let exe = self.host.podc.as_ref().ok_or_else(|| LaunchError::BadPlan {
            path: self.tree.join(PLAN),
            message: "the pod has a gRPC probe, which runs podc, but the kernel does not say where podc's executable is".into(),
        })?;
        // nspawn splits `--bind-ro=` at `:` (and reads `\` as an escape).
        if !crate::systemd::escape::overlay_safe(&exe.to_string_lossy()) {
            return Err(LaunchError::BadPlan {
                path: self.tree.join(PLAN),
                message: format!("the pod has a gRPC probe, which runs podc, but podc's executable {} has a `,`, `:` or `\\`, which nspawn cannot be given", exe.display()),
            });
        }
        self.sources.push(exe.clone());
        if self.private_users {
            self.nspawn_mounts.push(userns_steps::probe_tmpfs());
        }
        self.nspawn_mounts
            .push(format!("--bind-ro={}:{PROBE_PROGRAM}", exe.display()));
        Ok(())
    }

    /// The tmpfs at the tree's `volumes`, where empty and memory volumes are made, once.
    fn volumes_tmpfs(&mut self) {
        if !self.volumes_mounted {
            self.actions.push(Action::Mkdir(self.volumes.clone()));
            self.actions.push(Action::Tmpfs(self.volumes.clone()));
            self.volumes_mounted = true;
        }
    }

    /// A volume's octal mode from the plan.
    fn mode(&self, volume: &str, mode: &str) -> Result<u32, LaunchError> {
        u32::from_str_radix(mode, 8).map_err(|_| LaunchError::BadPlan {
            path: self.tree.join(PLAN),
            message: format!("volume {volume}: mode {mode:?} is not octal"),
        })
    }

    /// A `make-volume` step: an empty volume on the pod's volume tmpfs.
    fn make_volume(
        &mut self,
        volume: &str,
        mode: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), LaunchError> {
        self.volumes_tmpfs();
        let mode = self.mode(volume, mode)?;
        self.actions.push(Action::Volume {
            path: self.volumes.join(volume),
            mode,
            uid,
            gid,
        });
        Ok(())
    }

    /// A `persistent-volume` step: the pod's own directory below the host's volumes root.
    fn persistent_volume(
        &mut self,
        pod: &str,
        volume: &str,
        mode: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), LaunchError> {
        let mode = self.mode(volume, mode)?;
        let root = self.host.volumes.clone();
        self.volume_sources
            .insert(volume.to_string(), root.join(pod).join(volume));
        self.actions.push(Action::PersistentVolume {
            root,
            pod: pod.to_string(),
            volume: volume.to_string(),
            mode,
            uid,
            gid,
        });
        Ok(())
    }

    /// A `memory-volume` step: a tmpfs of its own, on the pod's volume tmpfs.
    fn memory_volume(
        &mut self,
        volume: &str,
        size: u64,
        mode: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), LaunchError> {
        self.volumes_tmpfs();
        let mode = self.mode(volume, mode)?;
        self.actions.push(Action::MemoryVolume {
            path: self.volumes.join(volume),
            size,
            mode,
            uid,
            gid,
        });
        Ok(())
    }

    /// A `projected-volume` step: an empty volume, whose files the `project` steps copy.
    fn projected_volume(
        &mut self,
        volume: &str,
        mode: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), LaunchError> {
        self.make_volume(volume, mode, uid, gid)?;
        // Its files: the volume's bits without execute (and without set-id, sticky).
        let files = self.mode(volume, mode)? & 0o666;
        self.projected.insert(volume.to_string(), (files, uid, gid));
        Ok(())
    }

    /// A `project` step: a source's files copied into a projected volume made before.
    fn project(&mut self, pod: &str, step: &Step) -> Result<(), LaunchError> {
        let Step::Project {
            volume,
            kind,
            name,
            dir,
            optional,
            apps,
        } = step
        else {
            return Ok(());
        };
        let Some(&(mode, uid, gid)) = self.projected.get(volume) else {
            return Err(LaunchError::BadPlan {
                path: self.tree.join(PLAN),
                message: format!(
                    "volume {volume}: project into a volume no projected-volume step made"
                ),
            });
        };
        self.items.extend(apps.iter().map(|app| ItemUse {
            app: app.clone(),
            kind: *kind,
            name: name.clone(),
            path: PathBuf::from(dir),
            counted: None,
            taken: Taken::Project {
                optional: *optional,
            },
        }));
        self.actions.push(Action::Project(Project {
            pod: pod.to_string(),
            volume: volume.clone(),
            apps: apps.clone(),
            kind: *kind,
            name: name.clone(),
            dir: PathBuf::from(dir),
            optional: *optional,
            target: self.volumes.join(volume),
            mode,
            uid,
            gid,
        }));
        Ok(())
    }

    /// A `bind-volume` step: a volume of the pod (or a path inside it) bound into an app.
    fn bind_volume(
        &mut self,
        volume: &str,
        target: &str,
        read_only: bool,
        sub: Option<&str>,
        make: bool,
    ) {
        let target = inside(&self.root, target);
        if let Some(root) = self.image_volumes.get(volume) {
            // The image's root, shared by every pod: read-only and noexec, whatever the plan
            // says, as Kubernetes mounts an image volume; nothing is made in it.
            if let Some(base) = root.clone() {
                self.actions.push(Action::BindWithin {
                    base,
                    sub: sub.unwrap_or_default().to_string(),
                    target,
                    read_only: true,
                    make: false,
                    noexec: true,
                });
            }
            return;
        }
        let source = match self.volume_sources.get(volume) {
            Some(dir) => dir.clone(),
            None => self.volumes.join(volume),
        };
        self.bind(source, target, read_only, sub, make);
    }

    /// An `image-volume` step: the root of an image of the store (the launch stops where the
    /// store lacks it).
    fn image_volume(&mut self, volume: &str, reference: &str) {
        let root = self
            .host
            .images
            .found
            .get(reference)
            .map(|i| i.root.clone());
        match &root {
            Some(root) => self.sources.push(root.clone()),
            None => self.missing_images.push(
                self.host
                    .images
                    .missing(format!("volume {volume}"), reference),
            ),
        }
        self.image_volumes.insert(volume.to_string(), root);
    }

    /// A `names` step: the user and group names an app runs as, from its image.
    fn names(&mut self, app: &str, users: &[String], groups: &[String]) -> Result<(), LaunchError> {
        let image = self
            .image_roots
            .get(app)
            .cloned()
            .ok_or_else(|| LaunchError::BadPlan {
                path: self.tree.join(PLAN),
                message: format!("app {app}: names, but no image is bound for it"),
            })?;
        // An image the store lacks is reported as such.
        let Some(image) = image else { return Ok(()) };
        self.actions.push(Action::Names {
            app: app.to_string(),
            image,
            etc: self.root.join("etc"),
            users: users.to_vec(),
            groups: groups.to_vec(),
        });
        Ok(())
    }

    /// A `cgroup-dir` step: an app's directory in the pod's v1 hierarchy.
    fn cgroup_dir(&mut self, controller: Controller, path: &str) -> Result<(), LaunchError> {
        let base = self
            .host
            .cgroups
            .get(controller.name())
            .ok_or_else(|| LaunchError::MissingController(controller.to_string()))?;
        self.actions.push(Action::Cgroup(base.join(path)));
        Ok(())
    }

    /// A `cgroup-bind` step: a file or directory of the pod's v1 hierarchy, for nspawn to bind.
    fn cgroup_bind(
        &mut self,
        controller: Controller,
        path: &str,
        target: &str,
        read_only: bool,
    ) -> Result<(), LaunchError> {
        let base = self
            .host
            .cgroups
            .get(controller.name())
            .ok_or_else(|| LaunchError::MissingController(controller.to_string()))?;
        let source = if path.is_empty() {
            base.clone()
        } else {
            base.join(path)
        };
        let flag = if read_only { "--bind-ro" } else { "--bind" };
        if !read_only && self.private_users {
            // systemd in the pod writes its limits there as the pod's root.
            self.actions.push(Action::OwnCgroup(source.clone()));
        }
        let target = host_hierarchy_target(target, controller.name(), base);
        self.nspawn_mounts
            .push(format!("{flag}={}:{target}", source.display()));
        Ok(())
    }
}

/// The nspawn command line: the pod's root, machine name, boot, and its mounts.
pub(super) fn nspawn_argv(
    plan: &MountPlan,
    host: &Host,
    root: &Path,
    nspawn_mounts: Vec<String>,
) -> Vec<String> {
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
    if host.systemd || host.notify {
        // Ready (for the host unit's Type=notify) once systemd in the pod has started every
        // app, not as soon as it is executed.
        argv.push("--notify-ready=yes".into());
    }
    if !host.systemd {
        // No machined and no host journal to register with.
        argv.push("--register=no".into());
    }
    if plan.network == Network::Private {
        if loopback_only(plan) {
            // The launcher made it (see network::loopback_only) and nspawn starts in it.
        } else if plan.egress == Egress::None && plan.networks.is_empty() {
            // A network namespace of the pod's own with loopback only; it ends with the pod.
            argv.push("--private-network".into());
        } else {
            // The launcher made the pod's network namespace and nspawn starts in it (see
            // network/mod.rs); with a way out the pod's DNS servers are the host's, on networks
            // its host names are the other pods'.
            argv.push("--resolv-conf=off".into());
            if plan.egress == Egress::Nat {
                argv.push(format!(
                    "--bind-ro={}:{}",
                    super::network::RESOLV,
                    crate::tree::layout::RESOLV_CONF
                ));
            }
            if !plan.networks.is_empty() || !plan.allow_host.is_empty() {
                argv.push(format!(
                    "--bind-ro={}:{}",
                    super::network::hosts_file(&plan.pod).display(),
                    crate::tree::layout::HOSTS
                ));
            }
        }
    }
    userns_steps::nspawn_no_writes(plan, &mut argv);
    argv.extend(nspawn_mounts);
    argv.push(format!("systemd.unit={POD_TARGET}"));
    argv
}

/// The plan names a controller's directory `/sys/fs/cgroup/<controller>`; where the host mounts
/// it together with others (`cpu,cpuacct`), systemd in the container looks for the host's
/// name, so the bind goes there and nspawn adds the `cpu` → `cpu,cpuacct` links around it.
pub(super) fn host_hierarchy_target(target: &str, controller: &str, base: &Path) -> String {
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

/// Whether the launcher makes the pod's network namespace, with loopback only: a private
/// network without a way out or networks, in the pod's own user namespace (so that every id
/// of the pod may bind a port below 1024 there).
fn loopback_only(plan: &MountPlan) -> bool {
    plan.network == Network::Private
        && plan.egress == Egress::None
        && plan.networks.is_empty()
        && plan.user_namespace == crate::manifest::UserNamespace::Private
}
