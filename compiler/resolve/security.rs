//! Identity and confinement: user and groups, the capability bounding set, the system call
//! filter, the calls the kernel logs and the ABIs an app may use.

use super::checker::*;
use crate::diag::codes;
use crate::diag::nearest;
use crate::manifest::linux;
use crate::manifest::{self, IdOrName, SyscallArch};
use crate::parse::source::{join_index, join_key};
use crate::pod::{Filter, Seccomp};
use crate::systemd::escape;
use crate::systemd::target::{self, Feature, Target};

/// User, group, supplementary groups and working directory, with their defaults.
pub(super) fn resolve_identity(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
) -> (IdOrName, IdOrName, Vec<IdOrName>, String) {
    let user = a.user.clone().unwrap_or(IdOrName::Id(0));
    check_id(c, &join_key(path, "user"), "user", &user);
    let group = a.group.clone().unwrap_or(IdOrName::Id(0));
    check_id(c, &join_key(path, "group"), "group", &group);
    let supplementary_groups = a.supplementary_groups.clone().unwrap_or_default();
    for (i, g) in supplementary_groups.iter().enumerate() {
        check_id(
            c,
            &join_index(&join_key(path, "supplementaryGroups"), i),
            "group",
            g,
        );
    }

    let working_directory = a.working_directory.clone().unwrap_or_else(|| "/".into());
    let wd_path = join_key(path, "workingDirectory");
    if c.abs_path(&wd_path, "working directory", &working_directory) {
        if working_directory.contains('\\') {
            c.value(
                codes::PATH_UNWRITABLE,
                &wd_path,
                "a working directory with `\\` cannot be written to a unit file verbatim",
            );
        } else if escape::loses_trailing_space(&working_directory) {
            c.value(
                codes::PATH_UNWRITABLE,
                &wd_path,
                format!(
                    "working directory {} ends with white space, which systemd strips",
                    show(&working_directory)
                ),
            );
        }
    }
    (user, group, supplementary_groups, working_directory)
}

/// `isolators.capabilities`: known names, `retain` or `remove`.
pub(super) fn resolve_capabilities(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
) -> Option<Filter> {
    iso.capabilities.as_ref().and_then(|s| {
        let p = join_key(iso_path, "capabilities");
        let f = one_of(
            c,
            &p,
            "capabilities",
            s.retain.as_ref(),
            s.remove.as_ref(),
            true,
        )?;
        let (key, names) = filter_parts(&f);
        let mut ok = true;
        for (i, n) in names.iter().enumerate() {
            if !linux::CAPABILITIES.contains(&n.as_str()) {
                ok = false;
                c.value(
                    codes::UNKNOWN_CAPABILITY,
                    &join_index(&join_key(&p, key), i),
                    format!("unknown capability {}", show(n)),
                )
                .help = Some(capability_help(n));
            }
        }
        ok.then_some(f)
    })
}

/// `isolators.seccomp`: known system calls and groups the target has, the errno, and
/// `exact` (an allow list only, which may then be empty).
pub(super) fn resolve_seccomp(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
    t: Target,
) -> Option<Seccomp> {
    iso.seccomp.as_ref().and_then(|s| {
        let p = join_key(iso_path, "seccomp");
        let exact = s.exact.unwrap_or(false);
        if exact && s.retain.is_none() && s.remove.is_some() {
            c.value(
                codes::SECCOMP_EXACT,
                &join_key(&p, "exact"),
                "`exact` applies to an allow list (`retain`); a deny list denies exactly its calls already",
            );
            return None;
        }
        let f = one_of(
            c,
            &p,
            "seccomp",
            s.retain.as_ref(),
            s.remove.as_ref(),
            exact,
        )?;
        let (key, names) = filter_parts(&f);
        let mut ok = syscall_names(c, &join_key(&p, key), names, t, "seccomp");
        // systemd adds @default to every allow list; `exact` takes it out again.
        if exact {
            ok &= require(c, &join_key(&p, "exact"), t, Feature::SyscallGroup("@default"), "`exact`");
        }
        let errno = s.errno.clone();
        if let Some(e) = &errno {
            if !linux::ERRNO.contains(&e.as_str()) {
                ok = false;
                c.value(codes::UNKNOWN_ERRNO,
                    &join_key(&p, "errno"),
                    format!("unknown errno name {}", show(e)),
                )
                .help = Some(match nearest(e, linux::ERRNO) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "errno names are uppercase, such as EPERM or EACCES (see errno(3))"
                        .into(),
                });
            }
        }
        ok.then_some(Seccomp { filter: f, errno, exact })
    })
}

/// `isolators.syscallLog`: a non-empty list of known calls and groups, on a systemd that
/// logs.
pub(super) fn resolve_syscall_log(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
    t: Target,
) -> Option<Filter> {
    let s = iso.syscall_log.as_ref()?;
    let p = join_key(iso_path, "syscallLog");
    // An empty deny list would log every call, but systemd reads it as no logging at all.
    let f = one_of(
        c,
        &p,
        "syscallLog",
        s.retain.as_ref(),
        s.remove.as_ref(),
        false,
    )?;
    let (key, names) = filter_parts(&f);
    let mut ok = require(c, &p, t, Feature::SyscallLog, "syscallLog");
    ok &= syscall_names(c, &join_key(&p, key), names, t, "syscallLog");
    ok.then_some(f)
}

/// `isolators.syscallArchitectures`: the native ABI is among them (systemd always allows it);
/// duplicates dropped, x86-64 first. Every ABI of the host is no restriction at all.
pub(super) fn resolve_syscall_architectures(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
) -> Vec<SyscallArch> {
    let Some(list) = &iso.syscall_architectures else {
        return Vec::new();
    };
    if !list.contains(&SyscallArch::X86_64) {
        c.value(
            codes::SYSCALL_ARCH_NATIVE,
            &join_key(iso_path, "syscallArchitectures"),
            "`syscallArchitectures` must list `x86-64`: systemd always allows the native ABI",
        )
        .help = Some("list `x86-64`, and `x86` or `x32` for the other ABIs the app may use".into());
        return Vec::new();
    }
    let mut archs = vec![SyscallArch::X86_64];
    for a in [SyscallArch::X86, SyscallArch::X32] {
        if list.contains(&a) {
            archs.push(a);
        }
    }
    archs
}

/// System call names and `@groups` of a filter at `p` (`...retain`): each known, each group
/// one the target has.
fn syscall_names(c: &mut Checker, p: &str, names: &[String], t: Target, why: &str) -> bool {
    let mut ok = true;
    for (i, n) in names.iter().enumerate() {
        let np = join_index(p, i);
        if n.starts_with('@') {
            match target::syscall_group_since(n) {
                None => {
                    ok = false;
                    let groups: Vec<&str> = target::syscall_groups().collect();
                    c.value(
                        codes::UNKNOWN_SYSCALL_GROUP,
                        &np,
                        format!("unknown system call group {}", show(n)),
                    )
                    .help = Some(match nearest(n, &groups) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("known groups: {}", groups.join(" ")),
                    });
                }
                Some(_) => {
                    let g = target::syscall_groups().find(|g| g == n).unwrap();
                    ok &= require(c, &np, t, Feature::SyscallGroup(g), why);
                }
            }
        } else if linux::SYSCALLS.binary_search(&n.as_str()).is_err() {
            // systemd would only warn and leave the call out of the filter.
            ok = false;
            let help = match nearest(n, linux::SYSCALLS) {
                Some(near) => format!("did you mean `{near}`?"),
                None => "system calls are lowercase names such as `mount` (see syscalls(2)); groups start with `@`".into(),
            };
            c.value(
                codes::UNKNOWN_SYSCALL,
                &np,
                format!("unknown system call {}", show(n)),
            )
            .help = Some(help);
        }
    }
    ok
}

/// `isolators.cgroupMount`: whether the app gets its own cgroup, writable. That needs a cgroup
/// namespace of its own (so that the kernel's `nsdelegate` keeps its own limits out of its
/// reach, as Kubernetes relies on): cgroup v2, and systemd 257's `ProtectControlGroups=private`.
pub(super) fn resolve_cgroup_mount(
    c: &mut Checker,
    iso_path: &str,
    iso: &manifest::AppIsolators,
    t: Target,
) -> bool {
    if iso.cgroup_mount != Some(manifest::CgroupMount::ReadWrite) {
        return false;
    }
    let p = join_key(iso_path, "cgroupMount");
    if t.cgroup == manifest::CgroupVersion::V1 {
        let flag = if c.flags.cgroup.is_some() {
            " (--cgroup v1)"
        } else {
            ""
        };
        c.value(
            codes::CGROUP_MOUNT_V1,
            &p,
            format!("cgroupMount: read-write needs cgroup v2, and the target is cgroup v1{flag}: there an app cannot be given its own cgroup without every cgroup of the pod (Kubernetes refuses it on cgroup v1 too)"),
        )
        .help = Some("target cgroup v2 with systemd 257 or newer, or leave cgroupMount out".into());
        return false;
    }
    if iso.relax.contains(&manifest::Relax::ControlGroups) {
        c.key(
            codes::CGROUP_MOUNT_RELAXED,
            &p,
            "cgroupMount: read-write gives the app its own cgroup, and relax: [control-groups] every cgroup of the pod, writable",
        )
        .help = Some("give one of them: cgroupMount: read-write is what Kubernetes' cgroupOptions.mountMode: ReadWrite means".into());
        return false;
    }
    let ok = require(
        c,
        &p,
        t,
        Feature::ProtectControlGroupsPrivate,
        "cgroupMount: read-write (the app's own cgroup namespace)",
    );
    if !ok {
        c.errors.last_mut().expect("require reported it").help = Some(
            "on a host with systemd 257 or newer (Debian 13), target it: `target: {systemd: 257}` or `--systemd 257`; systemd 252 has no way to give one service a cgroup namespace".into(),
        );
    }
    ok
}
