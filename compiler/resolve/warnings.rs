//! Warnings: settings that pass every rule but are most likely not what was meant.

use super::checker::*;
use crate::diag::codes;
use crate::manifest::reference::Reference;
use crate::manifest::{self, IdOrName, Manifest};
use crate::parse::source::{join_index, join_key};
use crate::pod::{self, Limits, Pod};

/// Memory limits below this are almost surely a number written without its suffix
/// (`memory: 128` is 128 bytes): no program runs in 1 MiB, and systemd itself needs more.
pub(super) const MIN_SENSIBLE_MEMORY: u64 = 1 << 20;

/// CPU limits above this many CPUs are more than a host has: a two-socket server of 2026 has at
/// most 768 hardware threads (two 192-core CPUs, two threads a core); the rare larger
/// single-system machines are not where pods run, and a pod limit is meant to be below the
/// host's size.
pub(super) const MAX_HOST_CPUS: u64 = 1024;

/// A bare cpu number of at least this many CPUs is more likely millicores without their `m`
/// (`cpu: 500` meant as `500m`) than a limit anyone needs.
pub(super) const BARE_CPU_SUSPECT: u64 = 100;

/// Tasks a pod needs before its apps run: nspawn's own process, systemd as the pod's init,
/// systemd-journald and the stop command of podc-exit.service.
pub(super) const POD_BASE_TASKS: u64 = 4;

/// Warnings: what is legal, but almost surely not what the author meant. They are looked for
/// only in a manifest without errors, so that they speak about a whole, resolved pod, and they
/// never change it.
pub(super) fn check_warnings(c: &mut Checker, m: &Manifest, pod: &Pod) {
    super::items::unused_items(c, m, pod);
    volume_image_warnings(c, m, pod);
    let pod_written = m.isolators.as_ref();
    limit_warnings(
        c,
        "isolators",
        &pod.limits,
        pod_written.and_then(|i| i.cpu.as_ref()),
        pod_written.and_then(|i| i.memory.as_ref()),
    );
    for (i, (app, written)) in pod.apps.iter().zip(&m.apps).enumerate() {
        let path = join_index("apps", i);
        let iso = join_key(&path, "isolators");
        let written_iso = written.isolators.as_ref();
        limit_warnings(
            c,
            &iso,
            &app.limits,
            written_iso.and_then(|i| i.cpu.as_ref()),
            written_iso.and_then(|i| i.memory.as_ref()),
        );
        // An app's limit above the pod's is capped by the pod's: the number written is not
        // what the app gets.
        let above = |key: &str, app: Option<u64>, pod: Option<u64>| match (app, pod) {
            (Some(a), Some(p)) if a > p => Some(key.to_string()),
            _ => None,
        };
        let checks = [
            above("memory", app.limits.memory_bytes, pod.limits.memory_bytes),
            above("cpu", app.limits.cpu_millis, pod.limits.cpu_millis),
            above("tasks", app.limits.tasks, pod.limits.tasks),
        ];
        for key in checks.into_iter().flatten() {
            let text = |i: Option<&manifest::AppIsolators>, p: Option<&manifest::PodIsolators>| {
                match key.as_str() {
                    "memory" => i
                        .and_then(|i| i.memory.as_ref())
                        .or(p.and_then(|p| p.memory.as_ref()))
                        .map(|q| q.text.clone()),
                    "cpu" => i
                        .and_then(|i| i.cpu.as_ref())
                        .or(p.and_then(|p| p.cpu.as_ref()))
                        .map(|q| q.text.clone()),
                    _ => i
                        .and_then(|i| i.tasks)
                        .or(p.and_then(|p| p.tasks))
                        .map(|t| t.to_string()),
                }
                .unwrap_or_default()
            };
            let (app_text, pod_text) = (text(written_iso, None), text(None, pod_written));
            c.value(
                codes::APP_ABOVE_POD,
                &join_key(&iso, &key),
                format!(
                    "app {} has {key} {app_text}, above the pod's {key} {pod_text}, which caps it",
                    show(&app.name)
                ),
            )
            .help = Some(format!(
                "lower the app's {key} to at most the pod's, or raise the pod's"
            ));
        }
        image_warnings(c, &path, app, written);
        low_ports_warning(c, &iso, pod, app);
        let root = matches!(&app.user, IdOrName::Id(0))
            || matches!(&app.user, IdOrName::Name(n) if n == "root");
        if root && !app.relax.is_empty() {
            let parts: Vec<String> = app.relax.iter().map(|r| kebab(&format!("{r:?}"))).collect();
            c.key(
                codes::ROOT_RELAXED,
                &join_key(&iso, "relax"),
                format!(
                    "app {} runs as root and relaxes its sandbox ({}): root without these \
                     protections reaches much more of the pod and the host",
                    show(&app.name),
                    parts.join(", ")
                ),
            )
            .help = Some(
                "give the app a `user` other than root, or keep the sandbox (drop `relax`)".into(),
            );
        }
    }
    if let Some(tasks) = pod.limits.tasks {
        let needed = POD_BASE_TASKS + pod.apps.len() as u64;
        if tasks < needed {
            c.value(
                codes::POD_TASKS_LOW,
                "isolators.tasks",
                format!(
                    "the pod's tasks limit {tasks} leaves no room to start it: nspawn, systemd, \
                     systemd-journald and podc's stop command take {POD_BASE_TASKS} tasks, and \
                     each of its {} apps at least one more",
                    pod.apps.len()
                ),
            )
            .help = Some(format!(
                "allow at least {needed} tasks, and more for apps that fork or use threads"
            ));
        }
    }
    memory_volume_warnings(c, pod);
    host_ids_warning(c, pod);
}

/// A pod that opts out of its own user namespace: root in it is root on the host, held back
/// only by the sandbox, and its files on the host's volumes are owned by the ids it names.
fn host_ids_warning(c: &mut Checker, pod: &Pod) {
    if pod.user_namespace != manifest::UserNamespace::Host {
        return;
    }
    c.value(
        codes::HOST_IDS,
        "userNamespace",
        "the pod runs with the host's ids: root in it is root on the host, held back only by \
         its sandbox",
    )
    .help = Some(
        "unless the pod truly needs the host's ids (a port below 1024 on the host's network, a \
         host volume whose files must keep their owners), give it a user namespace of its own: \
         remove `userNamespace: host` (in a Kubernetes file, write `hostUsers: false`)"
            .into(),
    );
}

/// An app that keeps CAP_NET_BIND_SERVICE by name in a pod of its own user namespace on the
/// host's network: the host's network belongs to the host's user namespace, where the pod's
/// root holds no capability, so no app of the pod can bind a port below 1024 there (nspawn
/// drops the capability from the bounding set). The pod stays in its user namespace: what it
/// protects matters most on the host's network, and a low port still reaches the app as a
/// socket the launcher binds (`activation: socket`).
fn low_ports_warning(c: &mut Checker, iso: &str, pod: &Pod, app: &pod::App) {
    let keeps = matches!(&app.capabilities, Some(pod::Filter::Retain(names))
        if names.iter().any(|n| n == "CAP_NET_BIND_SERVICE"));
    if !keeps
        || pod.network != manifest::Network::Host
        || pod.user_namespace != manifest::UserNamespace::Private
    {
        return;
    }
    c.value(
        codes::LOW_PORTS_OWN_USERS,
        &join_key(&join_key(iso, "capabilities"), "retain"),
        format!(
            "app {} keeps CAP_NET_BIND_SERVICE, but in a user namespace of its own on the \
             host's network no app of the pod can bind a port below 1024: the host's network \
             is the host's user namespace's, where the pod's root holds no capability",
            show(&app.name)
        ),
    )
    .help = Some(
        "publish the port with `activation: socket` (the launcher binds it on the host and \
         hands the app the socket), give the pod `network: private` and publish the port, or \
         set `userNamespace: host`"
            .into(),
    );
}

/// The warnings about one set of limits: a memory limit too small to be meant, a cpu limit
/// larger than any host or a bare number that reads like millicores without `m`.
pub(super) fn limit_warnings(
    c: &mut Checker,
    base: &str,
    l: &Limits,
    cpu_text: Option<&manifest::Quantity>,
    memory_text: Option<&manifest::Quantity>,
) {
    if let Some(bytes) = l.memory_bytes.filter(|b| *b < MIN_SENSIBLE_MEMORY) {
        let bare = memory_text.is_some_and(|q| q.text.bytes().all(|b| b.is_ascii_digit()));
        c.value(
            codes::MEMORY_TINY,
            &join_key(base, "memory"),
            format!("memory limit of {bytes} bytes is less than 1 MiB; no program runs in that"),
        )
        .help = Some(if bare {
            format!("memory without a suffix is in bytes: did you mean `{bytes}Mi` or `{bytes}M`?")
        } else {
            "give the limit in Mi or Gi (powers of 1024) or M or G (powers of 1000)".into()
        });
    }
    if let (Some(millis), Some(q)) = (l.cpu_millis, cpu_text) {
        let bare = q.text.bytes().all(|b| b.is_ascii_digit());
        let help = || {
            bare.then(|| {
                format!(
                    "did you mean `{}m` ({} CPUs)?",
                    q.text,
                    cpu_fraction(millis)
                )
            })
        };
        if millis > MAX_HOST_CPUS * 1000 {
            c.value(
                codes::CPU_HUGE,
                &join_key(base, "cpu"),
                format!(
                    "cpu {} is {} CPUs, more than a host has (podc warns above {MAX_HOST_CPUS})",
                    show(&q.text),
                    millis / 1000
                ),
            )
            .help = help();
        } else if bare && millis >= BARE_CPU_SUSPECT * 1000 {
            c.value(
                codes::CPU_BARE_LARGE,
                &join_key(base, "cpu"),
                format!(
                    "cpu {} is {} whole CPUs; a cpu limit without a suffix counts CPUs, not millicores",
                    show(&q.text),
                    millis / 1000
                ),
            )
            .help = help();
        }
    }
}

/// What a bare cpu number meant as millicores is in CPUs: `500` read as `500m` is `0.5`.
pub(super) fn cpu_fraction(millis: u64) -> String {
    let written = millis / 1000;
    let text = format!("{}.{:03}", written / 1000, written % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `KernelTunables` → `kernel-tunables`, the manifest's spelling of a sandbox part.
pub(super) fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Memory volumes: a size too small to be meant, and a size above the memory limit of an app
/// that writes the volume (its own, or the pod's if smaller): tmpfs pages count against the
/// memory of the cgroup that writes them, so the app is killed before the volume is full.
fn memory_volume_warnings(c: &mut Checker, pod: &Pod) {
    for (i, v) in pod.volumes.iter().enumerate() {
        let pod::VolumeKind::Memory { size, written, .. } = &v.kind else {
            continue;
        };
        let path = join_key(&join_index("volumes", i), "size");
        if *size < MIN_SENSIBLE_MEMORY {
            let bare = written.bytes().all(|b| b.is_ascii_digit());
            c.value(
                codes::MEMORY_VOLUME_TINY,
                &path,
                format!(
                    "memory volume {} holds {size} bytes, less than 1 MiB",
                    show(&v.name)
                ),
            )
            .help = Some(if bare {
                format!(
                    "a size without a suffix is in bytes: did you mean `{size}Mi` or `{size}M`?"
                )
            } else {
                "give the size in Mi or Gi (powers of 1024) or M or G (powers of 1000)".into()
            });
        }
        for a in &pod.apps {
            let writes = a.mounts.iter().any(|m| m.volume == v.name && !m.read_only);
            let limit = match (a.limits.memory_bytes, pod.limits.memory_bytes) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            let Some(limit) = limit.filter(|l| writes && size > l) else {
                continue;
            };
            let whose = if a.limits.memory_bytes == Some(limit) {
                "its memory limit"
            } else {
                "the pod's memory limit"
            };
            c.value(
                codes::MEMORY_VOLUME_ABOVE_LIMIT,
                &path,
                format!(
                    "memory volume {} holds {} ({size} bytes), but app {} that writes it may use {limit} bytes ({whose}), and the volume's pages count against that",
                    show(&v.name),
                    show(written),
                    show(&a.name)
                ),
            )
            .help = Some(
                "make the volume smaller than the limit, with room for the app itself, or raise the limit".into(),
            );
        }
    }
}

/// An image by reference: a short name (P1008, which also asks for a digest), else one not
/// pinned by digest (P1007).
fn image_warnings(c: &mut Checker, path: &str, app: &pod::App, written: &manifest::App) {
    if let pod::Image::Reference(r) = &app.image {
        reference_warnings(c, &join_key(path, "image"), r, &written.image, "runs");
    }
}

/// An image volume's reference, as an app's.
fn volume_image_warnings(c: &mut Checker, m: &Manifest, pod: &Pod) {
    for (i, (v, written)) in pod.volumes.iter().zip(&m.volumes).enumerate() {
        if let (pod::VolumeKind::Image { reference }, Some(image)) = (&v.kind, &written.image) {
            let path = join_key(&join_index("volumes", i), "image");
            reference_warnings(c, &path, reference, image, "is mounted");
        }
    }
}

/// A reference written as `written` at `path`: P1008 for a short name, else P1007 unless it
/// is pinned. `runs`: what becomes of the image (`runs`, `is mounted`).
fn reference_warnings(c: &mut Checker, path: &str, r: &Reference, written: &str, runs: &str) {
    let short = Reference::parse_normalized(written).is_ok_and(|(_, s)| s);
    if short {
        short_name(c, path, written, r, runs);
    } else if r.digest.is_none() {
        c.value(
            codes::IMAGE_UNPINNED,
            path,
            format!(
                "image {r} is not pinned by digest: what {runs} is whatever the image store \
                 holds for the tag when the pod is installed (or first launched), not what was reviewed"
            ),
        )
        .help = Some(format!(
            "pin it: `{}@sha256:<digest>` (`podc image pull {r}` prints the digest, `podc image ls` shows it)",
            r.name()
        ));
    }
}

/// A short name (P1008): what it was read as, and the full, pinned form to write instead. It
/// stands for P1007 too: it asks for the digest as well.
fn short_name(c: &mut Checker, path: &str, written: &str, r: &Reference, runs: &str) {
    let (what, write) = match (&r.digest, &r.tag) {
        (Some(_), _) => ("", format!("write it in full: `{r}`")),
        (None, tag) => {
            let tagged = format!("{}:{}", r.name(), tag.as_deref().unwrap_or("latest"));
            (
                " and no digest",
                format!(
                    "write it in full and pin it: `{tagged}@sha256:<digest>` \
                     (`podc image pull {tagged}` prints the digest, `podc image ls` shows it)"
                ),
            )
        }
    };
    let runs = match (&r.digest, runs) {
        (Some(_), _) => String::new(),
        (None, "runs") => ", and runs whatever the image store holds for that tag".into(),
        (None, runs) => format!(", and what {runs} is whatever the image store holds for that tag"),
    };
    c.value(
        codes::IMAGE_SHORT_NAME,
        path,
        format!(
            "image {} names no registry{what}: podc reads it as {r} (as Docker and Kubernetes do){runs}",
            show(written)
        ),
    )
    .help = Some(write);
}
