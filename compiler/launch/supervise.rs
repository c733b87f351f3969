//! Launching under a service manager that waits for the pod to be ready.
//!
//! The host unit is `Type=notify`: systemd counts the pod started when nspawn passes on the
//! `READY=1` that systemd in the pod sends once it has started every app. A pod whose apps all
//! end at once (a job) never sends it: its systemd is told to exit before it has finished
//! starting. systemd 252 then fails the host unit with `Result=protocol` although the pod
//! succeeded (257 lets a clean exit before readiness pass).
//!
//! So where `NOTIFY_SOCKET` is set, podc does not become nspawn: it stays nspawn's parent (the
//! host unit's main process), gives nspawn a notification socket of its own, passes its
//! `READY=1` and `STATUS=` on to the manager, passes on the signals that stop a service, and
//! ends as nspawn ended. A pod that ended with 0 before it was ready is reported ready first,
//! and podc waits until the manager has read that (a `BARRIER=1`), so the unit ends as a job
//! that did its work: inactive, `Result=success`. A pod that failed before it was ready ends
//! the unit with its status, as before.

use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// The environment variable of the readiness protocol (`sd_notify(3)`).
pub const NOTIFY_ENV: &str = "NOTIFY_SOCKET";

/// The signals a service manager stops a service with, passed on to nspawn: it turns them
/// into an orderly shutdown of the pod.
const FORWARDED: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];

/// How long podc waits for the manager to read the readiness it sends for a pod that ended.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// The manager's notification socket, when there is one to report to.
pub fn manager_socket() -> Option<String> {
    std::env::var(NOTIFY_ENV).ok().filter(|s| !s.is_empty())
}

/// nspawn's command line, run by a shell that sets `LISTEN_PID` to its own pid before it
/// execs nspawn in its place: nspawn takes the handed sockets only when `LISTEN_PID` names it,
/// and the child's pid is known only once it runs.
pub(super) fn with_listen_pid(nspawn: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
        .arg(nspawn)
        .args(args);
    cmd
}

/// Runs `cmd` (nspawn) as a child, relaying its readiness to `manager` (if there is one), and
/// returns how it ended. `cgroup` is where nspawn must start (see [`Cgroup`]).
pub(super) fn supervise(
    mut cmd: Command,
    manager: Option<&str>,
    cgroup: Option<Cgroup>,
) -> io::Result<ExitStatus> {
    // Private to root: only nspawn (or root) can tell podc anything.
    let dir = tempfile::Builder::new()
        .prefix("podc-notify-")
        .tempdir_in(runtime_dir())?;
    let path = dir.path().join("notify");
    let relay = UnixDatagram::bind(&path)?;
    relay.set_nonblocking(true)?;
    let mut signals = Vec::with_capacity(FORWARDED.len());
    for sig in FORWARDED {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(sig, write)?;
        signals.push((sig, read));
    }
    if manager.is_some() {
        cmd.env(NOTIFY_ENV, &path);
    }
    if let Some(cg) = &cgroup {
        cg.leave_root()?;
        let procs = cg.root_procs()?;
        // SAFETY: write(2) on a descriptor opened before the fork is async-signal-safe; it
        // moves the child (then nspawn) back into the unit's own cgroup.
        unsafe {
            cmd.pre_exec(move || {
                rustix::io::write(&procs, b"0")
                    .map(drop)
                    .map_err(Into::into)
            });
        }
    }
    let mut child = cmd.spawn()?;
    let pid = rustix::process::Pid::from_child(&child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let mut ready = false;
    let status = loop {
        let mut fds: Vec<PollFd> = vec![
            PollFd::new(&relay, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        fds.extend(signals.iter().map(|(_, s)| PollFd::new(s, PollFlags::IN)));
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(manager) = manager {
            ready |= relay_messages(&relay, manager)?;
        }
        for (sig, read) in &signals {
            let mut byte = [0u8; 16];
            if matches!((&*read).read(&mut byte), Ok(n) if n > 0) {
                let _ = rustix::process::kill_process(pid, signal_of(*sig));
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
    };
    if let Some(manager) = manager {
        ready |= relay_messages(&relay, manager)?;
        if status.success() && !ready {
            notify(manager, "READY=1", None)?;
            barrier(manager)?;
        }
    }
    Ok(status)
}

/// The exit code podc ends with for nspawn's `status`: its own, or 128 + the signal that
/// ended it (as a shell reports it).
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Passes on what nspawn said since the last call: its `READY=1`, `STOPPING=1` and `STATUS=`
/// lines, nothing else (it has no say over the unit's main pid or file descriptor store).
/// Whether it said it is ready.
fn relay_messages(relay: &UnixDatagram, manager: &str) -> io::Result<bool> {
    let mut ready = false;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match relay.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ready),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| *l == "READY=1" || *l == "STOPPING=1" || l.starts_with("STATUS="))
            .collect();
        ready |= kept.contains(&"READY=1");
        if !kept.is_empty() {
            notify(manager, &kept.join("\n"), None)?;
        }
    }
}

/// Sends `text` to the manager's socket (a path, or `@name` in the abstract namespace), with
/// `fd` attached when given.
fn notify(manager: &str, text: &str, fd: Option<&OwnedFd>) -> io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let socket = UnixDatagram::unbound()?;
    match manager.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&addr)?;
        }
        None => socket.connect(manager)?,
    }
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    sendmsg(
        &socket,
        &[IoSlice::new(text.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Waits until the manager has handled every message sent before (`sd_notify_barrier(3)`): it
/// closes the pipe end sent with `BARRIER=1` once it has. A manager that does not know the
/// barrier (older than systemd 246) closes it too, as it drops every descriptor it is sent.
fn barrier(manager: &str) -> io::Result<()> {
    let (read, write) = rustix::pipe::pipe()?;
    notify(manager, "BARRIER=1", Some(&write))?;
    drop(write);
    let timeout = Timespec {
        tv_sec: BARRIER_TIMEOUT.as_secs() as i64,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(&read, PollFlags::HUP)];
    poll(&mut fds, Some(&timeout))?;
    Ok(())
}

fn signal_of(sig: i32) -> rustix::process::Signal {
    // The FORWARDED signals are all standard ones rustix names.
    rustix::process::Signal::from_named_raw(sig).unwrap_or(rustix::process::Signal::TERM)
}

/// The directory for podc's notification socket: the host's `/run`.
fn runtime_dir() -> &'static Path {
    Path::new("/run")
}

/// The unit's own cgroup on a cgroup v2 host. nspawn moves the pod below it and enables the
/// controllers there for the pod's systemd, which the kernel allows only while no process is
/// left in it (the "no internal processes" rule): podc, staying behind as nspawn's parent,
/// moves itself out into `supervisor/` (where nspawn also puts itself), and nspawn starts in
/// the unit's cgroup as it would have had podc become it.
#[derive(Debug, Clone)]
pub(super) struct Cgroup {
    dir: std::path::PathBuf,
}

impl Cgroup {
    /// This process's cgroup, where the host mounts the unified hierarchy alone at
    /// `/sys/fs/cgroup` (on a hybrid host its unified tree has no controllers to enable).
    pub(super) fn unified() -> Option<Cgroup> {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.controllers").is_file() {
            return None;
        }
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let rel = path.trim_start_matches('/');
        (!rel.is_empty()).then(|| Cgroup {
            dir: root.join(rel),
        })
    }

    fn leave_root(&self) -> io::Result<()> {
        let supervisor = self.dir.join("supervisor");
        match std::fs::create_dir(&supervisor) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        std::fs::write(supervisor.join("cgroup.procs"), b"0")
    }

    fn root_procs(&self) -> io::Result<OwnedFd> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))?;
        Ok(f.into())
    }
}
