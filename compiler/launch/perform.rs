//! Performing a launch: the mounts in a private mount namespace, the published ports'
//! sockets handed to nspawn, and nspawn itself.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};

use super::action::*;
use super::host::*;
use super::paths::*;
use super::supervise;
use super::users::*;
use crate::manifest::Protocol;
use crate::tree::plan::Listen;

/// Performs the actions and runs nspawn: execs it, or under a manager that waits for readiness
/// (`NOTIFY_SOCKET`) stays its parent ([`super::supervise`]) and returns how it ended.
/// What the launcher has to say (skipped keys of items, by name) goes to `log`.
///
/// `lease` is the launch's lease on its images in the store (`image::store::Lease`): held
/// here while the actions mount them, and handed on to nspawn, which keeps descriptors it is
/// given but not told about (only `LISTEN_FDS` of them go on to the container), so it lasts as
/// long as the pod's nspawn and goes with it.
pub fn execute(
    launch: &Launch,
    nspawn: &Path,
    lease: Option<OwnedFd>,
    log: &mut dyn std::io::Write,
) -> Result<ExitStatus, LaunchError> {
    let (sockets, joined, users) = perform(&launch.actions, log)?;
    let made = !sockets.is_empty();
    // The lease goes above the descriptors nspawn takes as sockets (3, 4, …), where handing
    // them over cannot close it.
    let above = 3 + sockets.len().max(handed_fds().unwrap_or(0));
    let lease = lease
        .map(|fd| rustix::io::fcntl_dupfd_cloexec(&fd, above as i32))
        .transpose()
        .map_err(|e| io_err("keep the image lease", Path::new("/"))(e.into()))?;
    if made {
        hand_over(sockets).map_err(io_err("hand over sockets", Path::new("/")))?;
    }
    let mut args = launch.argv[1..].to_vec();
    if let Some(range) = users {
        // The range is known only now; nspawn is told it beside its --directory.
        let at = args
            .iter()
            .position(|a| a.starts_with("--directory="))
            .map_or(0, |i| i + 1);
        args.splice(at..at, super::prepare::nspawn_user_namespace(range.base));
    }
    let args = &args[..];
    let manager = supervise::manager_socket();
    // Sockets for nspawn at descriptors 3, …: made above, or handed to podc by systemd.
    let handed = made || handed_fds().is_some();
    // podc stays nspawn's parent under a manager, and to take a pod's way out down again.
    let stays = manager.is_some() || joined.is_some();
    let mut cmd = match stays {
        true if handed => supervise::with_listen_pid(nspawn, args),
        _ => {
            let mut cmd = Command::new(nspawn);
            cmd.arg0("systemd-nspawn").args(args);
            cmd
        }
    };
    if let Some(fd) = &lease {
        hand_on(&mut cmd, fd.as_raw_fd());
    }
    if made {
        cmd.env("LISTEN_FDS", launch.plan.listen.len().to_string())
            .env_remove("LISTEN_FDNAMES");
    }
    if let Some(joined) = joined {
        // A pod with a way out: podc stays nspawn's parent, to take the way out down again.
        let status = supervise::supervise(cmd, manager.as_deref(), supervise::Cgroup::unified());
        if let Err(e) = joined.leave() {
            let _ = writeln!(log, "warning: {e}");
        }
        return status.map_err(|source| LaunchError::Io {
            what: "supervise",
            path: nspawn.to_path_buf(),
            source,
        });
    }
    let Some(manager) = manager else {
        if made {
            // nspawn is exec'd: the pid stays ours.
            cmd.env("LISTEN_PID", std::process::id().to_string());
        }
        return Err(LaunchError::Io {
            what: "exec",
            path: nspawn.to_path_buf(),
            source: cmd.exec(),
        });
    };
    supervise::supervise(cmd, Some(&manager), supervise::Cgroup::unified()).map_err(|source| {
        LaunchError::Io {
            what: "supervise",
            path: nspawn.to_path_buf(),
            source,
        }
    })
}

/// Keeps descriptor `fd` open across the exec of `cmd` (in the child, or in this process when
/// it execs in place), for nspawn to hold.
fn hand_on(cmd: &mut Command, fd: RawFd) {
    // SAFETY: fcntl(2) is async-signal-safe, and `fd` stays open in this process (and so in a
    // forked child) until the command has been run.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Into::into)
        });
    }
}

/// Puts listening sockets at descriptors 3, 4, … (as `sd_listen_fds` expects) and keeps them
/// open across exec.
pub(super) fn hand_over(sockets: Vec<std::os::fd::OwnedFd>) -> io::Result<()> {
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
pub(super) fn listen(l: &Listen) -> Result<std::os::fd::OwnedFd, LaunchError> {
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

/// The listening sockets [`perform`] made, in order, the pod's way out if it set one up, and
/// the range of the pod's own user namespace if it has one.
type Performed = (
    Vec<std::os::fd::OwnedFd>,
    Option<super::network::Joined>,
    Option<super::userns::IdRange>,
);

/// A pod's own user namespace while its mounts are made: its range and a namespace of it.
type Users = Option<(super::userns::IdRange, std::os::fd::OwnedFd)>;

/// Performs the actions.
pub(super) fn perform(
    actions: &[Action],
    log: &mut dyn std::io::Write,
) -> Result<Performed, LaunchError> {
    let mut sockets = Vec::new();
    let mut joined = None;
    let mut users: Users = None;
    for action in actions {
        match action {
            Action::UserNamespace { .. }
            | Action::IdmappedBind { .. }
            | Action::IdmapRoot(_)
            | Action::Overlay { .. } => users_action(action, &mut users)?,
            Action::Listen(l) => sockets.push(listen(l)?),
            Action::Unshare => {
                crate::sys::private_mount_namespace().map_err(io_err("unshare", Path::new("/")))?
            }
            Action::Mkdir(p) => {
                refuse_symlinks(root_of(actions), p)?;
                fs::create_dir_all(p).map_err(io_err("mkdir", p))?
            }
            Action::Cgroup(p) => fs::create_dir_all(p).map_err(io_err("mkdir", p))?,
            Action::OwnCgroup(p) => own_cgroup(p)?,
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
            Action::MachineId { path: p, id } => machine_id(p, id.as_deref())?,
            Action::Bind {
                source,
                target,
                read_only,
            } => crate::sys::bind(source, target, *read_only).map_err(io_err("bind", target))?,
            Action::HostPath { .. } | Action::MountPoint { .. } | Action::BindWithin { .. } => {
                volume_action(action, root_of(actions))?
            }
            Action::Tmpfs(p) => crate::sys::tmpfs(p).map_err(io_err("mount tmpfs", p))?,
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
            Action::PersistentVolume {
                root,
                pod,
                volume,
                mode,
                uid,
                gid,
            } => super::volumes::make_persistent(root, pod, volume, *mode, *uid, *gid, log)?,
            Action::MemoryVolume {
                path,
                size,
                mode,
                uid,
                gid,
            } => fs::create_dir(path)
                .and_then(|()| {
                    use super::userns::host_id;
                    crate::sys::tmpfs_sized(path, *size, *mode, host_id(*uid), host_id(*gid))
                })
                .map_err(io_err("mount tmpfs", path))?,
            Action::Env {
                pod,
                app,
                path,
                vars,
                every,
            } => super::items::write_env(pod, app, path, vars, every, log)?,
            Action::Network {
                pod,
                way_out,
                networks,
                allow_host,
                low_ports,
            } => {
                if *way_out || !networks.is_empty() {
                    let low_ports = *low_ports;
                    joined = Some(super::network::join(
                        pod, *way_out, networks, allow_host, low_ports,
                    )?)
                } else {
                    super::network::loopback_only()?
                }
            }
            Action::Project(p) => super::project::fill(p, log)?,
            Action::Volume {
                path,
                mode,
                uid,
                gid,
            } => empty_volume(path, *mode, *uid, *gid)?,
        }
    }
    Ok((sockets, joined, users.map(|(range, _)| range)))
}

/// The actions of a pod's own user namespace, and overlays (whose lower layer is idmapped in
/// one): its range taken, idmapped binds, the pod's root idmapped.
fn users_action(action: &Action, users: &mut Users) -> Result<(), LaunchError> {
    use super::userns;
    use std::os::fd::AsFd;
    match (action, &*users) {
        (Action::UserNamespace { tree }, _) => {
            let state = tree.join(crate::tree::layout::STATE);
            let range = userns::allocate(tree, &state, &userns::registry())
                .map_err(io_err("allocate a range of ids", &state))?;
            let ns = userns::namespace(range).map_err(io_err(
                "make a user namespace",
                Path::new("/proc/self/ns/user"),
            ))?;
            userns::shift_owners(range.base);
            *users = Some((range, ns));
        }
        (
            Action::IdmappedBind {
                source,
                target,
                read_only,
            },
            Some((_, ns)),
        ) => userns::idmapped_bind(source, target, ns.as_fd(), *read_only)
            .map_err(io_err("bind", target))?,
        (Action::IdmapRoot(root), Some((_, ns))) => {
            userns::idmapped_top(root, ns.as_fd()).map_err(io_err("idmap", root))?
        }
        (
            Action::Overlay {
                lower,
                upper,
                work,
                target,
            },
            Some((range, ns)),
        ) => {
            // The image as the pod's ids own it, beside the pod's writes; its upper layer's
            // root owned as the image's root is, so the pod may write where the image lets it.
            let seen = upper.with_file_name("lower");
            fs::create_dir_all(&seen).map_err(io_err("mkdir", &seen))?;
            userns::idmapped_bind(lower, &seen, ns.as_fd(), true).map_err(io_err("bind", &seen))?;
            let image_root = fs::metadata(&seen).map_err(io_err("stat", &seen))?;
            let on_upper = fs::metadata(upper).map_err(io_err("stat", upper))?;
            use std::os::unix::fs::MetadataExt;
            if on_upper.uid() < range.base {
                chown(upper, Some(image_root.uid()), Some(image_root.gid()))
                    .map_err(io_err("chown", upper))?;
            }
            crate::sys::overlay(&seen, upper, work, target)
                .map_err(io_err("mount overlay", target))?
        }
        (
            Action::Overlay {
                lower,
                upper,
                work,
                target,
            },
            None,
        ) => crate::sys::overlay(lower, upper, work, target)
            .map_err(io_err("mount overlay", target))?,
        (
            Action::IdmappedBind {
                source,
                target,
                read_only,
            },
            None,
        ) => crate::sys::bind(source, target, *read_only).map_err(io_err("bind", target))?,
        (Action::IdmapRoot(_), None) => {}
        _ => unreachable!("only the actions of a user namespace, and overlays"),
    }
    Ok(())
}

/// Gives the pod its machine id at `p`: `id` if given, else the one it has, else a fresh one.
fn machine_id(p: &Path, id: Option<&str>) -> Result<(), LaunchError> {
    let current = fs::read_to_string(p).ok();
    let current = current.as_deref().map(|t| t.trim_end_matches('\n'));
    if let Some(id) = id {
        if current != Some(id) {
            fs::write(p, format!("{id}\n")).map_err(io_err("write", p))?;
        }
        return Ok(());
    }
    if current.is_some_and(is_machine_id) {
        return Ok(());
    }
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(io_err("read", Path::new("/proc/sys/kernel/random/uuid")))?;
    let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    fs::write(p, format!("{id}\n")).map_err(io_err("write", p))
}

/// A host path made or checked, a mount point made as its source is, or a bind of a path
/// inside a volume (below the pod's `root`).
fn volume_action(action: &Action, root: &Path) -> Result<(), LaunchError> {
    match action {
        Action::HostPath { path, host_type } => {
            super::host_paths::host_path(path, *host_type, true)?
        }
        Action::MountPoint { source, target } => {
            let dir = fs::metadata(source)
                .map_err(io_err("stat", source))?
                .is_dir();
            super::within::mount_point(root, target, dir)?
        }
        Action::BindWithin {
            base,
            sub,
            target,
            read_only,
            make,
            noexec,
        } => super::within::bind_within(
            root,
            &super::within::Within {
                base,
                sub,
                target,
                read_only: *read_only,
                make: *make,
                noexec: *noexec,
            },
        )?,
        _ => unreachable!("only host paths, mount points and binds within volumes"),
    }
    Ok(())
}

/// Gives the pod's root the cgroup directory `p` (or file) and the files in it.
fn own_cgroup(p: &Path) -> Result<(), LaunchError> {
    let root = super::userns::host_id(0);
    chown(p, Some(root), Some(root)).map_err(io_err("chown", p))?;
    if p.is_dir() {
        for e in fs::read_dir(p).map_err(io_err("read", p))?.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                chown(e.path(), Some(root), Some(root)).map_err(io_err("chown", &e.path()))?;
            }
        }
    }
    Ok(())
}

/// An empty volume's directory, with its owner and mode.
fn empty_volume(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), LaunchError> {
    fs::create_dir_all(path).map_err(io_err("mkdir", path))?;
    use super::userns::host_id;
    chown(path, Some(host_id(uid)), Some(host_id(gid))).map_err(io_err("chown", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}
