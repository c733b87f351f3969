//! The rules a mount plan read back from disk is held to, step kind by step kind: what
//! `resolve` and `lower` made it with. A tree can be edited after review, and the launcher runs
//! it as root, so every path, name and list of a step is checked here before anything is done.

use super::cgroup::{app_cgroup, cgroup_bind_step};
use super::item_rules::{host_count, item_source};
use super::plan::{MountPlan, Step, FORMAT, GIVEN};
use crate::manifest::{Egress, Network};
use crate::systemd::argv::words_args;
use crate::systemd::escape;

/// A `bind-host` or `bind-volume` step: a host path in normal form, or a volume made before;
/// a target below `/`; a `subPath` that is a relative path in normal form, never empty
/// (absent means the whole volume), so that it cannot name anything outside the volume;
/// `makeMissing` only with a `subPath`.
pub(super) fn bind_step(step: &Step, volumes: &[&str]) -> Result<(), String> {
    let (target, sub_path, make_missing) = match step {
        Step::BindHost {
            source,
            target,
            sub_path,
            make_missing,
            ..
        } => {
            if !escape::is_normal_abs_path(source) {
                return Err(format!(
                    "source {source:?} is not an absolute path in normal form"
                ));
            }
            (target, sub_path, make_missing)
        }
        Step::BindVolume {
            volume,
            target,
            sub_path,
            make_missing,
            ..
        } => {
            if !volumes.contains(&volume.as_str()) {
                return Err(format!("volume {volume:?} is not made by an earlier step"));
            }
            (target, sub_path, make_missing)
        }
        _ => unreachable!("only bind-host and bind-volume steps"),
    };
    if !escape::is_normal_abs_path(target) || target == "/" {
        return Err(format!(
            "target {target:?} is not an absolute path in normal form below /"
        ));
    }
    match sub_path {
        Some(sub) if sub.is_empty() || !escape::is_normal_rel_path(sub) => Err(format!(
            "subPath {sub:?} is not a relative path in normal form"
        )),
        None if *make_missing => Err("makeMissing without a subPath".into()),
        _ => Ok(()),
    }
}

/// An `image-volume` step: a volume name not made before, and an image reference.
pub(super) fn image_volume_step(
    volume: &str,
    reference: &str,
    volumes: &[&str],
) -> Result<(), String> {
    if !escape::is_name(volume) {
        return Err(format!("volume {volume:?} is not a volume name"));
    }
    if volumes.contains(&volume) {
        return Err(format!(
            "volume {volume:?} is made by an earlier step already"
        ));
    }
    crate::manifest::reference::Reference::parse(reference)
        .map_err(|e| format!("reference {reference:?}: {e}"))?;
    Ok(())
}

impl MountPlan {
    /// Checks a plan read back from disk by the rules `resolve` and `lower` made it with: a tree
    /// can be edited after review, and the launcher runs it as root. The error names the step.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not one this podc reads (it reads {FORMAT})",
                self.format
            ));
        }
        if !escape::is_name(&self.pod) || self.pod.len() > crate::tree::layout::MAX_POD_NAME {
            return Err(format!("pod {:?} is not a pod name", self.pod));
        }
        if let Some(a) = self.apps.iter().find(|a| !escape::is_name(a)) {
            return Err(format!("app {a:?} is not an app name"));
        }
        self.validate_network()?;
        for (i, l) in self.listen.iter().enumerate() {
            if l.parse().is_none() {
                return Err(format!(
                    "listen {}: address {:?} is not a port, address:port or [address]:port",
                    i + 1,
                    l.address
                ));
            }
        }
        let mut volumes = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            step.validate(&self.apps, &volumes)
                .map_err(|e| format!("step {} ({}): {e}", i + 1, step.kind()))?;
            if let Some(volume) = step.made_volume() {
                volumes.push(volume);
            }
        }
        Ok(())
    }
}

impl MountPlan {
    /// The private network's parts: only with `network = "private"`; network names as the
    /// manifest allows them (each becomes an interface name and a file name of the launcher's);
    /// allowed host ports only where the pod has a bridge to the host, none of them 0.
    fn validate_network(&self) -> Result<(), String> {
        let private = self.network == Network::Private;
        if !private && (self.egress != Egress::None || !self.networks.is_empty()) {
            return Err("egress and networks are for a pod with network = \"private\"".into());
        }
        for (i, n) in self.networks.iter().enumerate() {
            if !crate::tree::layout::is_network_name(n) || self.networks[..i].contains(n) {
                return Err(format!(
                    "network {} {n:?} is not a network name, or is named twice",
                    i + 1
                ));
            }
        }
        if !self.allow_host.is_empty() && self.egress == Egress::None && self.networks.is_empty() {
            return Err(
                "allowHost needs a bridge to the host: egress = \"nat\" or networks".into(),
            );
        }
        for (i, h) in self.allow_host.iter().enumerate() {
            if h.port == 0 || self.allow_host[..i].contains(h) {
                return Err(format!(
                    "allowHost {}: port {h} is not 1 to 65535, or is named twice",
                    i + 1
                ));
            }
        }
        Ok(())
    }
}

impl Step {
    fn validate(&self, apps: &[String], volumes: &[&str]) -> Result<(), String> {
        let container_path = |what: &str, p: &str| {
            if escape::is_normal_abs_path(p) && p != "/" {
                Ok(())
            } else {
                Err(format!(
                    "{what} {p:?} is not an absolute path in normal form below /"
                ))
            }
        };
        let app_cgroup = |p: &str| app_cgroup(apps, p);
        match self {
            Step::MakeVolume { volume, mode, .. }
            | Step::PersistentVolume { volume, mode, .. }
            | Step::MemoryVolume { volume, mode, .. }
            | Step::ProjectedVolume { volume, mode, .. } => {
                if !escape::is_name(volume) {
                    return Err(format!("volume {volume:?} is not a volume name"));
                }
                if volumes.contains(&volume.as_str()) {
                    return Err(format!(
                        "volume {volume:?} is made by an earlier step already"
                    ));
                }
                let octal = (3..=4).contains(&mode.len())
                    && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
                if !octal {
                    return Err(format!("mode {mode:?} is not 3 or 4 octal digits"));
                }
                if let Step::MemoryVolume { size, .. } = self {
                    // A tmpfs of size 0 has no limit at all.
                    if *size == 0 || *size > i64::MAX as u64 {
                        return Err(format!("size {size} is not 1 to {} bytes", i64::MAX));
                    }
                }
            }
            Step::Overlay {
                app,
                source,
                target,
            } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
                if !escape::is_normal_abs_path(source) || !escape::overlay_safe(source) {
                    return Err(format!(
                        "source {source:?} is not an absolute path in normal form without `,`, `:` or `\\`"
                    ));
                }
                let want = crate::tree::layout::app_root(app);
                if *target != want {
                    return Err(format!("target {target:?} is not {want:?}"));
                }
            }
            Step::Image {
                app,
                reference,
                target,
                given,
                environment,
                exec,
                args,
                expand,
                ..
            } => {
                image_step(apps, app, reference, target, given, environment)?;
                image_command(given, exec, args, expand)?;
            }
            Step::BindHost { .. } | Step::BindVolume { .. } => bind_step(self, volumes)?,
            Step::Project { .. } => project_step(apps, volumes, self)?,
            Step::ImageVolume { volume, reference } => {
                image_volume_step(volume, reference, volumes)?
            }
            Step::WritableCgroup { app } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
            }
            Step::Names { app, users, groups } => {
                if !apps.contains(app) {
                    return Err(format!("app {app:?} is not an app of the pod"));
                }
                if let Some(n) = users
                    .iter()
                    .chain(groups)
                    .find(|n| !escape::is_user_name(n))
                {
                    return Err(format!("{n:?} is not a user or group name"));
                }
            }
            Step::Tmpfs { target } => container_path("target", target)?,
            Step::BindPodc => {}
            Step::CgroupDir { path, .. } => {
                if !app_cgroup(path) {
                    return Err(format!(
                        "path {path:?} is not system.slice/<app>.service of an app of the pod"
                    ));
                }
            }
            Step::CgroupBind {
                controller,
                path,
                target,
                read_only,
            } => cgroup_bind_step(apps, *controller, path, target, *read_only)?,
            Step::Credential { .. } | Step::Env { .. } | Step::EnvAll { .. } => {
                item_step(apps, self)?
            }
        }
        Ok(())
    }
}

/// A `credential` step (an item some of the pod's apps take as a file), an `env` step (a
/// variable of one of its apps from an item) or an `env-all` step (every key of an item as
/// variables of one of its apps).
fn item_step(apps: &[String], step: &Step) -> Result<(), String> {
    match step {
        Step::Credential {
            kind,
            name,
            source,
            host,
            divisor,
            apps: takers,
        } => {
            host_count(*kind, source.as_deref(), (*host, *divisor))?;
            item_source(*kind, name, source.as_deref())?;
            if takers.is_empty() {
                return Err("apps lists no app".into());
            }
            if let Some(a) = takers.iter().find(|a| !apps.contains(a)) {
                return Err(format!("app {a:?} is not an app of the pod"));
            }
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
            if !apps.contains(app) {
                return Err(format!("app {app:?} is not an app of the pod"));
            }
            if !escape::is_env_name(variable) {
                return Err(format!("variable {variable:?} is not a variable name"));
            }
            // A host count has no key either.
            host_count(
                *kind,
                source.as_deref().or(key.as_deref()),
                (*host, *divisor),
            )?;
            item_source(*kind, name, source.as_deref())?;
            if let Some(k) = key.as_ref().filter(|k| !escape::is_env_name(k)) {
                return Err(format!("key {k:?} is not a variable name"));
            }
        }
        Step::EnvAll {
            app,
            kind,
            name,
            source,
            dir,
            prefix,
            given,
        } => {
            if !apps.contains(app) {
                return Err(format!("app {app:?} is not an app of the pod"));
            }
            if source.is_some() && dir.is_some() {
                return Err("it has both a source and a dir".into());
            }
            if let Some(d) = dir.as_ref().filter(|d| !escape::is_normal_abs_path(d)) {
                return Err(format!("dir {d:?} is not an absolute path in normal form"));
            }
            item_source(*kind, name, source.as_deref().or(dir.as_deref()))?;
            if !prefix.is_empty() && !escape::is_env_name(prefix) {
                return Err(format!("prefix {prefix:?} cannot start a variable name"));
            }
            if let Some(g) = given.iter().find(|g| !escape::is_env_name(g)) {
                return Err(format!("given {g:?} is not a variable name"));
            }
        }
        _ => unreachable!("only credential and env steps"),
    }
    Ok(())
}

/// An `image` step: an app's image by reference at the app's root, with the manifest's
/// settings named as given.
fn image_step(
    apps: &[String],
    app: &String,
    reference: &str,
    target: &String,
    given: &[String],
    environment: &[String],
) -> Result<(), String> {
    if !apps.contains(app) {
        return Err(format!("app {app:?} is not an app of the pod"));
    }
    crate::manifest::reference::Reference::parse(reference)
        .map_err(|e| format!("reference {reference:?}: {e}"))?;
    let want = crate::tree::layout::app_root(app);
    if *target != want {
        return Err(format!("target {target:?} is not {want:?}"));
    }
    if let Some(g) = given.iter().find(|g| !GIVEN.contains(&g.as_str())) {
        return Err(format!("given {g:?} is not one of {}", GIVEN.join(", ")));
    }
    if let Some(n) = environment.iter().find(|n| !escape::is_env_name(n)) {
        return Err(format!("environment {n:?} is not a variable name"));
    }
    Ok(())
}

/// An `image` step's command: at most one of `exec` given (in the unit), `exec` (its
/// program a bare name) and `args`.
fn image_command(
    given: &[String],
    exec: &[String],
    args: &[String],
    expand: &[String],
) -> Result<(), String> {
    let in_unit = given.iter().any(|g| g == "exec");
    if [in_unit, !exec.is_empty(), !args.is_empty()]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err("more than one of exec given, exec and args".into());
    }
    if let Some(n) = expand.iter().find(|n| !escape::is_env_name(n)) {
        return Err(format!("expand {n:?} is not a variable name"));
    }
    if let Some(word) = exec.first() {
        let arg = &words_args(std::slice::from_ref(word), expand)[0];
        let program = arg
            .as_text()
            .ok_or(format!("exec program {word:?} refers to a variable"))?;
        if program.is_empty() || program == "." || program == ".." || program.contains('/') {
            return Err(format!(
                "exec program {program:?} is not a bare name to look up in the image's PATH"
            ));
        }
    }
    Ok(())
}

/// A `project` step: into a volume made before, from a directory, for apps of the pod.
fn project_step(apps: &[String], volumes: &[&str], step: &Step) -> Result<(), String> {
    let Step::Project {
        volume,
        kind,
        name,
        dir,
        apps: takers,
        ..
    } = step
    else {
        return Ok(());
    };
    if !volumes.contains(&volume.as_str()) {
        return Err(format!("volume {volume:?} is not made by an earlier step"));
    }
    if !escape::is_normal_abs_path(dir) || dir == "/" {
        return Err(format!(
            "dir {dir:?} is not an absolute path in normal form"
        ));
    }
    item_source(*kind, name, Some(dir))?;
    if takers.is_empty() || takers.iter().any(|a| !apps.contains(a)) {
        return Err("apps lists no app, or one that is not an app of the pod".into());
    }
    Ok(())
}
