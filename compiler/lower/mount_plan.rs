//! The mount plan: what the launcher binds, overlays and makes before the pod boots.

use super::limits::*;
use crate::manifest::{CgroupVersion, HostType, HttpScheme, IdOrName};
use crate::pod::{App, Command, Image, Pod, Probe, Projected, Source, VolumeKind};
use crate::tree::layout::{api_bind_source, app_root, under_api_mount};
use crate::tree::plan::{self, Controller, MountPlan, Step};

pub(super) fn plan(pod: &Pod) -> MountPlan {
    let mut steps = vec![Step::BindHost {
        source: "/usr".into(),
        target: "/usr".into(),
        read_only: true,
        host_type: HostType::Directory,
        sub_path: None,
        make_missing: false,
    }];
    // A gRPC or HTTPS probe runs podc itself (`podc probe-grpc`, `probe-https`), which the
    // pod's /usr need not have.
    let podc = |a: &App| {
        matches!(
            a.health.as_ref().map(|h| &h.probe),
            Some(
                Probe::Grpc { .. }
                    | Probe::Http {
                        scheme: HttpScheme::Https,
                        ..
                    }
            )
        )
    };
    if pod.apps.iter().any(podc) {
        steps.push(Step::BindPodc);
    }
    steps.extend(
        pod.apps
            .iter()
            .filter(|a| a.cgroup_writable)
            .map(|a| Step::WritableCgroup {
                app: a.name.clone(),
            }),
    );
    for v in &pod.volumes {
        let volume = v.name.clone();
        steps.push(match &v.kind {
            VolumeKind::Host { .. } => continue,
            VolumeKind::Projected {
                sources,
                mode,
                uid,
                gid,
            } => {
                steps.push(Step::ProjectedVolume {
                    volume,
                    mode: format!("{mode:04o}"),
                    uid: *uid,
                    gid: *gid,
                });
                steps.extend(project_steps(pod, &v.name, sources));
                continue;
            }
            VolumeKind::Image { ref reference } => Step::ImageVolume {
                volume,
                reference: reference.to_string(),
            },
            VolumeKind::Empty { mode, uid, gid } => Step::MakeVolume {
                volume,
                mode: format!("{mode:04o}"),
                uid: *uid,
                gid: *gid,
            },
            VolumeKind::Persistent { mode, uid, gid } => Step::PersistentVolume {
                volume,
                mode: format!("{mode:04o}"),
                uid: *uid,
                gid: *gid,
            },
            VolumeKind::Memory {
                size,
                mode,
                uid,
                gid,
                ..
            } => Step::MemoryVolume {
                volume,
                size: *size,
                mode: format!("{mode:04o}"),
                uid: *uid,
                gid: *gid,
            },
        });
    }
    for a in &pod.apps {
        steps.push(image_step(a));
        steps.extend(names_step(a));
        mount_steps(pod, a, &mut steps);
    }
    steps.extend(super::items::item_steps(pod));
    if pod.target.cgroup == CgroupVersion::V1 {
        cgroup_v1_steps(pod, &mut steps);
    }
    MountPlan {
        format: plan::FORMAT,
        pod: pod.name.clone(),
        cgroup: pod.target.cgroup,
        systemd: Some(pod.target.systemd),
        apps: pod.apps.iter().map(|a| a.name.clone()).collect(),
        network: pod.network,
        egress: pod.egress,
        networks: pod.networks.clone(),
        allow_host: pod.allow_host.clone(),
        user_namespace: pod.user_namespace,
        listen: pod
            .ports()
            .map(|(_, p)| plan::Listen {
                protocol: p.protocol,
                address: p.listen(),
            })
            .collect(),
        steps,
    }
}

/// A projected volume's `project` steps: each source's directory, with the apps that mount
/// the volume (named in the launcher's errors).
fn project_steps(pod: &Pod, volume: &str, sources: &[Projected]) -> Vec<Step> {
    let apps: Vec<String> = pod
        .apps
        .iter()
        .filter(|a| a.mounts.iter().any(|m| m.volume == volume))
        .map(|a| a.name.clone())
        .collect();
    if apps.is_empty() {
        // Nothing mounts it: nothing to fill.
        return Vec::new();
    }
    sources
        .iter()
        .filter_map(|s| match pod.item(&s.item).map(|i| &i.source) {
            Some(Source::Dir(dir)) => Some(Step::Project {
                volume: volume.to_string(),
                kind: s.item.kind,
                name: s.item.name.clone(),
                dir: dir.clone(),
                optional: s.optional,
                apps: apps.clone(),
            }),
            // resolve refuses any other source.
            _ => None,
        })
        .collect()
}

/// The app's image at its root: read-only as it is, or under an overlay of the pod's.
fn image_step(a: &App) -> Step {
    let root = app_root(&a.name);
    let no_args = Vec::new();
    let (words, expand) = crate::systemd::argv::args_words(match &a.command {
        Command::LookUp(argv) | Command::Args(argv) => argv,
        _ => &no_args,
    });
    // The image itself never changes: read-only as it is, or with an overlay of the pod's.
    match &a.image {
        Image::Reference(r) => Step::Image {
            app: a.name.clone(),
            reference: r.to_string(),
            target: root.clone(),
            read_only: a.read_only_rootfs,
            given: [
                (a.command.in_unit(), "exec"),
                (a.given.working_directory, "workingDirectory"),
                (a.given.user, "user"),
            ]
            .into_iter()
            .filter(|(given, _)| *given)
            .map(|(_, key)| key.to_string())
            .collect(),
            environment: {
                let mut names: Vec<String> = a.environment.keys().cloned().collect();
                names.extend(a.env_from.keys().cloned());
                names.sort();
                names
            },
            exec: match &a.command {
                Command::LookUp(_) => words.clone(),
                _ => Vec::new(),
            },
            args: match &a.command {
                Command::Args(_) => words,
                _ => Vec::new(),
            },
            expand,
        },
        Image::Path(source) if a.read_only_rootfs => Step::BindHost {
            source: source.clone(),
            target: root.clone(),
            read_only: true,
            host_type: HostType::Directory,
            sub_path: None,
            make_missing: false,
        },
        Image::Path(source) => Step::Overlay {
            app: a.name.clone(),
            source: source.clone(),
            target: root.clone(),
        },
    }
}

/// The user and group names the app runs as, for the launcher to find in its image.
fn names_step(a: &App) -> Option<Step> {
    let names = |ids: &mut dyn Iterator<Item = &IdOrName>| -> Vec<String> {
        let mut v: Vec<String> = ids
            .filter_map(|i| match i {
                IdOrName::Name(n) => Some(n.clone()),
                IdOrName::Id(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let users = names(&mut std::iter::once(&a.user));
    let groups = names(&mut std::iter::once(&a.group).chain(&a.supplementary_groups));
    (!users.is_empty() || !groups.is_empty()).then(|| Step::Names {
        app: a.name.clone(),
        users,
        groups,
    })
}

/// The app's mounts, parents before children.
fn mount_steps(pod: &Pod, a: &App, steps: &mut Vec<Step>) {
    let root = app_root(&a.name);
    // Parents before children, so that a nested mount is not hidden by its parent's.
    let mut mounts: Vec<_> = a.mounts.iter().collect();
    mounts.sort_by_key(|m| m.path.matches('/').count());
    for m in mounts {
        let target = if under_api_mount(&m.path) {
            api_bind_source(&a.name, &m.path)
        } else {
            [root.as_str(), &m.path].concat()
        };
        let volume = pod.volumes.iter().find(|v| v.name == m.volume);
        // A missing subPath is made as the kubelet makes it, but not in a read-only volume.
        let make_missing = m.sub_path.is_some() && volume.is_some_and(|v| !v.read_only);
        steps.push(match volume.map(|v| &v.kind) {
            Some(VolumeKind::Host { source, host_type }) => Step::BindHost {
                source: source.clone(),
                target,
                read_only: m.read_only,
                host_type: *host_type,
                sub_path: m.sub_path.clone(),
                make_missing,
            },
            _ => Step::BindVolume {
                volume: m.volume.clone(),
                target,
                read_only: m.read_only,
                sub_path: m.sub_path.clone(),
                make_missing,
            },
        });
    }
}

/// On cgroup v1: a tmpfs at /sys/fs/cgroup and, for each controller a limit uses, the pod's
/// hierarchy and the knob files systemd inside must be able to write.
fn cgroup_v1_steps(pod: &Pod, steps: &mut Vec<Step>) {
    steps.push(Step::Tmpfs {
        target: "/sys/fs/cgroup".into(),
    });
    for controller in Controller::ALL {
        if !pod.apps.iter().any(|a| uses(&a.limits, controller)) {
            continue;
        }
        let base = format!("/sys/fs/cgroup/{controller}");
        let bind = |path: &str, read_only: bool| Step::CgroupBind {
            controller,
            path: path.to_string(),
            target: if path.is_empty() {
                base.clone()
            } else {
                [base.as_str(), "/", path].concat()
            },
            read_only,
        };
        steps.push(bind("", true));
        steps.push(bind("cgroup.procs", false));
        for a in &pod.apps {
            let dir = ["system.slice/", &a.name, ".service"].concat();
            steps.push(Step::CgroupDir {
                controller,
                path: dir.clone(),
            });
            steps.push(bind(&[&dir, "/cgroup.procs"].concat(), false));
            if uses(&a.limits, controller) {
                for knob in controller.knobs() {
                    steps.push(bind(&[&dir, "/", knob].concat(), false));
                }
            }
        }
    }
}
