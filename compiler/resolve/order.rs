//! `after`: the apps an app starts after exist, and their order has no cycle; `init`: what an
//! app that runs to completion before others may be.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::*;
use crate::diag::{codes, nearest};
use crate::manifest::{self, Restart};
use crate::parse::source::{join_index, join_key};
use crate::systemd::target::{Feature, Target};

/// Every `after` names another app of the pod, and the graph has no cycle.
pub(super) fn check_after(c: &mut Checker, apps: &[manifest::App]) {
    let index: BTreeMap<&str, usize> = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); apps.len()];
    for (i, a) in apps.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for (j, dep) in a.after.iter().enumerate() {
            let p = join_index(&join_key(&join_index("apps", i), "after"), j);
            if !seen.insert(dep) {
                c.value(
                    codes::AFTER_TWICE,
                    &p,
                    format!("{} is listed twice", show(dep)),
                );
            } else if dep == &a.name {
                c.value(
                    codes::AFTER_SELF,
                    &p,
                    format!("app {} cannot start after itself", show(dep)),
                );
            } else if let Some(&k) = index.get(dep.as_str()) {
                edges[i].push((k, j));
            } else {
                let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
                // The suggestion is never the app itself, which cannot start after itself
                // (#28); the list of the pod's apps, where nothing is near, is the whole pod.
                let others: Vec<&str> = names.iter().copied().filter(|n| *n != a.name).collect();
                let help = match nearest(dep, &others) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("this pod's apps: {}", names.join(", ")),
                };
                c.value(
                    codes::AFTER_UNKNOWN,
                    &p,
                    format!("no app named {} in this pod", show(dep)),
                )
                .help = Some(help);
            }
        }
    }
    // Depth-first search; report each cycle once, at the edge that closes it.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    let mut state = vec![State::New; apps.len()];
    fn visit(
        n: usize,
        edges: &[Vec<(usize, usize)>],
        state: &mut [State],
        stack: &mut Vec<usize>,
        c: &mut Checker,
        apps: &[manifest::App],
    ) {
        state[n] = State::Active;
        stack.push(n);
        for &(m, j) in &edges[n] {
            match state[m] {
                State::Active => {
                    let start = stack.iter().position(|&x| x == m).unwrap();
                    let mut names: Vec<&str> = stack[start..]
                        .iter()
                        .map(|&x| apps[x].name.as_str())
                        .collect();
                    names.push(&apps[m].name);
                    let p = join_index(&join_key(&join_index("apps", n), "after"), j);
                    c.value(
                        codes::AFTER_CYCLE,
                        &p,
                        format!(
                            "apps wait for each other in a cycle: {}",
                            names.join(" after ")
                        ),
                    );
                }
                State::New => visit(m, edges, state, stack, c, apps),
                State::Done => {}
            }
        }
        stack.pop();
        state[n] = State::Done;
    }
    for n in 0..apps.len() {
        if state[n] == State::New {
            visit(n, &edges, &mut state, &mut Vec::new(), c, apps);
        }
    }
}

/// An init app runs once to completion, which its unit says with `Type=oneshot`: it cannot
/// restart `always` (nor would it ever complete), it restarts `on-failure` only where the
/// apps after it keep waiting through the retries (`RestartMode=direct`), and it has nothing
/// to probe or serve.
pub(super) fn check_init(c: &mut Checker, apps: &[manifest::App], t: Target) {
    for (i, a) in apps
        .iter()
        .enumerate()
        .filter(|(_, a)| a.init == Some(true))
    {
        let path = join_index("apps", i);
        let restart = join_key(&path, "restart");
        match a.restart {
            Some(Restart::Always) => {
                c.value(
                    codes::INIT_RESTART_ALWAYS,
                    &restart,
                    format!(
                        "init app {} restarts `always`, so it would never complete",
                        show(&a.name)
                    ),
                )
                .help = Some(
                    "an init app restarts `no` (the default) or `on-failure` (retried until it \
                     succeeds); an app that keeps running is not an init app"
                        .into(),
                );
            }
            Some(Restart::OnFailure) => {
                if !require(
                    c,
                    &restart,
                    t,
                    Feature::RestartModeDirect,
                    "an init app that restarts `on-failure`",
                ) {
                    c.errors.last_mut().unwrap().help = Some(
                        "without it the apps after it would fail at its first failure rather \
                         than wait for a retry; give it `restart: no`, or target systemd 254 or \
                         newer"
                            .into(),
                    );
                }
            }
            Some(Restart::No) | None => {}
        }
        if a.health.is_some() {
            c.key(
                codes::INIT_HEALTH,
                &join_key(&path, "health"),
                format!(
                    "init app {} has a health probe, but it runs to completion: the apps after \
                     it wait for it to exit 0, not for a probe",
                    show(&a.name)
                ),
            )
            .help = Some("remove `health`, or `init` if the app keeps running".into());
        }
        if !a.ports.is_empty() {
            c.key(
                codes::INIT_PORTS,
                &join_key(&path, "ports"),
                format!(
                    "init app {} publishes ports, but it runs to completion before the apps \
                     after it start: a connection would start it again",
                    show(&a.name)
                ),
            )
            .help = Some("publish the port on the app that serves it".into());
        }
        if a.hooks.is_some() {
            c.key(
                codes::INIT_HOOKS,
                &join_key(&path, "hooks"),
                format!(
                    "init app {} has lifecycle hooks, but it runs to completion: systemd would \
                     skip a preStop hook, and Kubernetes allows an init container none",
                    show(&a.name)
                ),
            )
            .help = Some("run the commands in the app's own command line".into());
        }
    }
}
