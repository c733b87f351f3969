//! What an image's config supplies where the manifest is silent (#13), and the systemd drop-in
//! the launcher writes for it.
//!
//! Exactly these, each only where the manifest leaves it out:
//! - the command: `Entrypoint` + `Cmd` (when the manifest has no `exec`; an `exec` given is the
//!   whole command line, as `podman run --entrypoint` with arguments and rkt behave), or
//!   `Entrypoint` + the manifest's `args` (Kubernetes' `args` without `command`); and the path
//!   of a bare program the manifest's `exec` names, found in the image's `PATH`;
//! - the environment: the image's `Env`, for every name the manifest does not set;
//! - the working directory: `WorkingDir` (else `/`);
//! - user and group: `User` (`uid`, `uid:gid`, `name`, `name:group`, `uid:group`, `name:gid`),
//!   when the manifest sets neither `user` nor `group` (else root).
//!
//! An image config is hostile input: every value is held to the rules a manifest's value is
//! held to ([`crate::resolve`], [`crate::systemd::escape`]'s validators) and written with the same
//! escapers; what cannot be written exactly is refused, naming the value. [`Defaults::read`]
//! reads an image once (it looks a relative entrypoint up in the image's `PATH` inside its
//! root, and a bare uid's group in its `/etc/passwd`, never following a link out of the
//! root, as it does each bare program name an app's `exec` or `args` names); [`drop_in`] is then
//! a pure function of the defaults and the manifest's choices.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::expand::Piece;
use crate::manifest::IdOrName;
use crate::systemd::argv::{Arg, Part};
use crate::systemd::escape;

/// The `PATH` an image without one gets (Docker's and runc's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An image config's defaults, each checked on its own: a value that cannot be used is an
/// error only for an app that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// `Entrypoint` + `Cmd`, the program an absolute path; or why there is none to use.
    pub command: Result<Vec<Arg>, String>,
    /// `Entrypoint` alone (empty when the image has none), the program an absolute path; or
    /// why it cannot be used.
    pub entrypoint: Result<Vec<Arg>, String>,
    /// The `PATH` bare names are looked up in: the image's `Env`, else [`DEFAULT_PATH`].
    pub path: String,
    /// The bare program names asked for (by an app's `exec` or `args`), each with the absolute
    /// path found in the image's `PATH`, or `None`.
    pub programs: BTreeMap<String, Option<String>>,
    /// `Env` by name (a later entry of one name wins, as in Docker); or why an entry cannot be
    /// used.
    pub environment: BTreeMap<String, Result<String, String>>,
    /// `WorkingDir` in normal form, `/` when the image has none.
    pub working_directory: Result<String, String>,
    /// `User`; `None` when the image has none (root).
    pub user: Result<Option<User>, String>,
}

/// An image's `User`, parsed. `group` is `None` for a bare name: systemd then uses the user's
/// primary group, as the pod's user database (copied from the image) gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user: IdOrName,
    pub group: Option<IdOrName>,
}

/// The command line the manifest chose.
#[derive(Debug, Clone, Copy)]
pub enum Command<'a> {
    /// `exec` with an absolute program: the unit has it, and the image gives no command.
    InUnit,
    /// `exec` whose program is a bare name, looked up in the image's `PATH`.
    LookUp(&'a [Arg]),
    /// The image's `Entrypoint` with these arguments in place of its `Cmd` (no Entrypoint:
    /// these alone, their first a program as in `exec`).
    Args(&'a [Arg]),
    /// The image's `Entrypoint` and `Cmd`.
    Image,
}

/// What the manifest gave itself, so that the image does not supply it.
#[derive(Debug, Clone, Copy)]
pub struct Given<'a> {
    pub command: Command<'a>,
    pub working_directory: bool,
    pub user: bool,
    /// The environment names the manifest sets.
    pub environment: &'a [String],
}

/// The drop-in for one app, and what the pod's user database needs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    /// The text of `50-image.conf`.
    pub text: String,
    /// User and group names the image's `User` names: copied from the image's own database.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// A numeric uid (with its primary gid) and gid the app runs as, which the pod's database
    /// must know (systemd refuses to run a unit as a uid it cannot look up).
    pub uid: Option<(u32, u32)>,
    pub gid: Option<u32>,
}

impl Defaults {
    /// Reads the defaults of `config`, the config of the image unpacked at `root`, and looks
    /// each of `programs` (bare names) up in its `PATH`.
    pub fn read(
        config: &oci_spec::image::ImageConfiguration,
        root: &Path,
        programs: &[&str],
    ) -> Defaults {
        let c = config.config().clone().unwrap_or_default();
        let mut environment = BTreeMap::new();
        for entry in c.env().iter().flatten() {
            let (name, value) = match entry.split_once('=') {
                Some((n, v)) => (n, Ok(v.to_string())),
                None => (
                    entry.as_str(),
                    Err(format!("Env entry {entry:?} has no `=`")),
                ),
            };
            let value = value.and_then(|v| env_problem(name, &v).map_or(Ok(v), Err));
            environment.insert(name.to_string(), value);
        }
        let path = match environment.get("PATH") {
            Some(Ok(p)) => p.clone(),
            _ => DEFAULT_PATH.to_string(),
        };
        let find = |name: &str| look_up(name, &path, root);
        let entrypoint = c.entrypoint().as_deref().unwrap_or_default();
        let cmd = c.cmd().as_deref().unwrap_or_default();
        Defaults {
            command: if entrypoint.is_empty() && cmd.is_empty() {
                Err("the image's config has no Entrypoint and no Cmd".into())
            } else {
                checked(
                    entrypoint.iter().chain(cmd).map(Arg::text),
                    "the image's",
                    &path,
                    find,
                )
            },
            entrypoint: if entrypoint.is_empty() {
                Ok(Vec::new())
            } else {
                checked(entrypoint.iter().map(Arg::text), "the image's", &path, find)
            },
            programs: programs.iter().map(|p| (p.to_string(), find(p))).collect(),
            path,
            environment,
            working_directory: working_directory(c.working_dir().as_deref()),
            user: user(c.user().as_deref(), root),
        }
    }
}

/// Why `NAME=value` cannot be passed as written, if it cannot.
fn env_problem(name: &str, value: &str) -> Option<String> {
    if !escape::is_env_name(name) {
        return Some(format!("Env name {name:?} is not ^[A-Za-z_][A-Za-z0-9_]*$"));
    }
    if escape::has_nul(value) {
        return Some(format!("Env {name} holds a NUL character"));
    }
    if name.len() + 1 + escape::exec_string_bytes(value) > escape::MAX_ARG_STRLEN {
        return Some(format!(
            "Env {name} is longer than the kernel passes ({} bytes)",
            escape::MAX_ARG_STRLEN - 1
        ));
    }
    if escape::env_assignment(name, value).len() + "Environment=".len()
        >= crate::limits::MAX_UNIT_LINE
    {
        return Some(format!("Env {name} is too long for a unit file line"));
    }
    None
}

/// `words` as a command line: its program resolved (a bare name through `find`, in `path`),
/// every word what systemd and the kernel can carry. `whose` says in a message where the
/// command came from.
fn checked(
    words: impl Iterator<Item = Arg>,
    whose: &str,
    path: &str,
    find: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Arg>, String> {
    let mut argv: Vec<Arg> = words.collect();
    if let Some(a) = argv.iter().find(|a| a.text_contains('\0')) {
        return Err(format!(
            "{whose} command holds a NUL character: {:?}",
            crate::manifest::expand::write(a.parts().iter().map(|p| match p {
                Part::Text(t) => Piece::Text(t),
                Part::Var(n) => Piece::Ref(n),
            }))
        ));
    }
    let program = match argv.first().map(Arg::as_text) {
        Some(Some(p)) if !p.is_empty() => p.to_string(),
        Some(Some(_)) | None => return Err(format!("{whose} command names no program")),
        Some(None) => {
            return Err(format!(
                "{whose} program refers to a variable; systemd puts variables into the arguments, never into the program"
            ))
        }
    };
    if !program.starts_with('/') {
        if program.contains('/') {
            return Err(format!(
                "{whose} program {program:?} is a relative path; podc looks up only a bare name, in the image's PATH"
            ));
        }
        argv[0] = Arg::text(find(&program).ok_or_else(|| {
            format!(
                "{whose} program {program:?} is not in the image's PATH ({path}) inside the image"
            )
        })?);
    }
    let program = argv[0].as_text().unwrap_or_default();
    if let Some(problem) = escape::exec_path_problem(program) {
        return Err(format!("{whose} program {program:?} {problem}"));
    }
    if !escape::is_normal_abs_path(program) || program.ends_with('/') {
        return Err(format!(
            "{whose} program {program:?} is not an absolute path in normal form"
        ));
    }
    if let Some(a) = argv
        .iter()
        .find(|a| a.text_len() + 1 > escape::MAX_ARG_STRLEN)
    {
        return Err(format!(
            "an argument of {whose} command has {} bytes; the kernel passes at most {}",
            a.text_len(),
            escape::MAX_ARG_STRLEN - 1
        ));
    }
    if escape::exec_args_line(&argv).len() + "ExecStart=".len() >= crate::limits::MAX_UNIT_LINE {
        return Err(format!("{whose} command is too long for a unit file line"));
    }
    Ok(argv)
}

/// The first `dir/name` of `path`'s absolute directories that is an executable regular file in
/// the image, resolving links as the app will (inside its root: a link cannot lead out).
fn look_up(name: &str, path: &str, root: &Path) -> Option<String> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return None;
    }
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let flags = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        let candidate = escape::normalize(&candidate);
        let Ok(fd) = rustix::fs::openat2(
            &root_fd,
            candidate.trim_start_matches('/'),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            flags,
        ) else {
            continue;
        };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            continue;
        };
        let regular = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
        if regular && st.st_mode & 0o111 != 0 {
            return Some(candidate);
        }
    }
    None
}

/// `WorkingDir`: absolute, normalized (`/app/` is `/app`), and what systemd can carry.
fn working_directory(dir: Option<&str>) -> Result<String, String> {
    let dir = match dir {
        None | Some("") => return Ok("/".into()),
        Some(d) => d,
    };
    if !dir.starts_with('/') {
        return Err(format!("the image's WorkingDir {dir:?} is not absolute"));
    }
    if escape::has_control(dir) {
        return Err(format!(
            "the image's WorkingDir {dir:?} holds a control character"
        ));
    }
    if dir.split('/').any(|c| c == "..") {
        return Err(format!("the image's WorkingDir {dir:?} contains `..`"));
    }
    let dir = escape::normalize(dir);
    if dir.contains('\\') || escape::loses_trailing_space(&dir) {
        return Err(format!(
            "the image's WorkingDir {dir:?} has a `\\` or ends with white space, which systemd cannot carry"
        ));
    }
    if escape::long_component(&dir).is_some() {
        return Err(format!(
            "the image's WorkingDir {dir:?} has a component longer than {} bytes",
            escape::NAME_MAX
        ));
    }
    Ok(dir)
}

/// One side of `User`: a number or a name podc can write.
fn id_or_name(s: &str, what: &str) -> Result<IdOrName, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let id: u32 = s
            .parse()
            .map_err(|_| format!("the image's User has {what} id {s}, which is out of range"))?;
        if let Some(problem) = escape::id_problem(id) {
            return Err(format!(
                "the image's User has {what} id {id}, which {problem}"
            ));
        }
        return Ok(IdOrName::Id(id));
    }
    if escape::is_user_name(s) && !s.is_empty() {
        return Ok(IdOrName::Name(s.to_string()));
    }
    Err(format!(
        "the image's User has {what} {s:?}, neither an id nor a valid name"
    ))
}

/// `User`: `uid`, `uid:gid`, `name`, `name:group` (or mixed). A bare uid's group is its
/// primary group in the image's `/etc/passwd`, else 0, as Docker and runc do.
fn user(spec: Option<&str>, root: &Path) -> Result<Option<User>, String> {
    let spec = match spec {
        None | Some("") => return Ok(None),
        Some(s) => s,
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = id_or_name(u, "user")?;
    let group = match (g, &user) {
        (Some(g), _) => Some(id_or_name(g, "group")?),
        (None, IdOrName::Id(uid)) => Some(IdOrName::Id(primary_gid(root, *uid).unwrap_or(0))),
        (None, IdOrName::Name(_)) => None,
    };
    Ok(Some(User { user, group }))
}

/// The primary gid of `uid` in the image's `/etc/passwd` (read inside the root).
fn primary_gid(root: &Path, uid: u32) -> Option<u32> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &root_fd,
        "etc/passwd",
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() {
        return None;
    }
    let mut text = String::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

fn id_text(v: &IdOrName) -> String {
    match v {
        IdOrName::Id(n) => n.to_string(),
        IdOrName::Name(n) => escape::verbatim(n),
    }
}

impl Defaults {
    /// The app's command line for `ExecStart=`, where the unit has none.
    fn command_for(&self, command: Command<'_>) -> Result<Option<Vec<Arg>>, String> {
        let find = |name: &str| self.programs.get(name).cloned().flatten();
        Ok(Some(match command {
            Command::InUnit => return Ok(None),
            Command::Image => self
                .command
                .clone()
                .map_err(|e| format!("{e}; give the app an exec"))?,
            Command::LookUp(exec) => checked(exec.iter().cloned(), "exec's", &self.path, find)?,
            Command::Args(args) => {
                let entrypoint = self.entrypoint.as_ref().map_err(|e| {
                    format!("{e}; args are passed to it: give the app an exec instead")
                })?;
                // As Docker does: no Entrypoint, and args are the whole command line.
                let words = entrypoint.iter().chain(args).cloned();
                checked(words, "the app's", &self.path, find)?
            }
        }))
    }
}

/// The drop-in `50-image.conf` for app `app` of the image `reference` (whose manifest digest is
/// `digest`): the defaults the manifest leaves to the image, or the first one that cannot be
/// used. `reference` went through [`crate::manifest::reference::Reference::parse`] (no white space or
/// control characters), so it is safe in a comment.
pub fn drop_in(
    app: &str,
    reference: &str,
    digest: &str,
    d: &Defaults,
    given: Given<'_>,
) -> Result<DropIn, String> {
    let mut text = format!(
        "# Written by podc launch: the defaults image {reference} ({digest}) gives app {app}\n\
         # where its manifest is silent. Rewritten at every launch.\n[Service]\n"
    );
    let mut out = DropIn {
        text: String::new(),
        users: Vec::new(),
        groups: Vec::new(),
        uid: None,
        gid: None,
    };
    let mut args_total = 0;
    if let Some(argv) = d.command_for(given.command)? {
        args_total += argv.iter().map(|a| a.text_len() + 1).sum::<usize>();
        let _ = writeln!(text, "ExecStart={}", escape::exec_args_line(&argv));
    }
    if !given.working_directory {
        let dir = d.working_directory.as_ref().map_err(Clone::clone)?;
        let _ = writeln!(text, "WorkingDirectory={}", escape::verbatim(dir));
    }
    if !given.user {
        if let Some(u) = d.user.as_ref().map_err(Clone::clone)? {
            let _ = writeln!(text, "User={}", id_text(&u.user));
            if let Some(g) = &u.group {
                let _ = writeln!(text, "Group={}", id_text(g));
            }
            match (&u.user, &u.group) {
                (IdOrName::Id(uid), Some(IdOrName::Id(gid))) => out.uid = Some((*uid, *gid)),
                (IdOrName::Id(uid), _) => out.uid = Some((*uid, *uid)),
                (IdOrName::Name(n), _) => out.users.push(n.clone()),
            }
            match &u.group {
                Some(IdOrName::Id(gid)) => out.gid = Some(*gid),
                Some(IdOrName::Name(n)) => out.groups.push(n.clone()),
                None => {}
            }
        }
    }
    for (name, value) in &d.environment {
        if given.environment.contains(name) {
            continue;
        }
        let value = value.as_ref().map_err(Clone::clone)?;
        args_total += name.len() + 1 + escape::exec_string_bytes(value);
        let _ = writeln!(text, "Environment={}", escape::env_assignment(name, value));
    }
    if args_total > escape::MAX_ARGS_TOTAL {
        return Err(format!(
            "the image's command and environment take {args_total} bytes; podc allows at most {}",
            escape::MAX_ARGS_TOTAL
        ));
    }
    out.text = text;
    Ok(out)
}

#[cfg(test)]
mod tests;
