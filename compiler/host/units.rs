//! The host units of a tree, held to what `podc build` writes before `podc install` copies
//! them into /etc/systemd/system: a tree can be edited after review, and an edited host unit
//! would run as root on the host. Each line must be one podc writes: a comment, a section
//! podc writes, or a key of that section with a value of the form podc gives it (the program
//! of `ExecStart=` named `podc`, limits from the limits table with numeric values, the pod's
//! own unit names). The tree's top level may hold only the files a build makes.

use std::fs;
use std::path::Path;

use super::systemd::{io_err, OpError};
use crate::systemd::escape::{decode_words, is_normal_abs_path};
use crate::systemd::resources::LIMITS;
use crate::tree::layout::{INSTALL_MARKER, PLAN, POD_OWNED, ROOTFS, STATE, VOLUMES};

/// Checks the host service unit (and socket unit, if `socket`) of pod `pod` in `tree`, and
/// the names at the tree's top level.
pub fn check_tree(tree: &Path, pod: &str, socket: bool) -> Result<(), OpError> {
    let service = format!("podc-{pod}.service");
    let socket_unit = format!("podc-{pod}.socket");
    for e in fs::read_dir(tree).map_err(io_err(tree))? {
        let name = e.map_err(io_err(tree))?.file_name();
        let name = name.to_string_lossy();
        let known = [
            PLAN,
            ROOTFS,
            "POD.md",
            service.as_str(),
            socket_unit.as_str(),
        ];
        // What a pod writes into its own installed tree may be there too, and the marker of
        // an installed tree (install makes its own; it is never copied).
        let pod_owned = [STATE, VOLUMES, INSTALL_MARKER].contains(&name.as_ref())
            || POD_OWNED.iter().any(|p| *p == name);
        if !known.contains(&name.as_ref()) && !pod_owned {
            return Err(OpError::EditedTree {
                path: tree.join(name.as_ref()),
                reason: "a file `podc build` does not write".into(),
            });
        }
    }
    let path = tree.join(&service);
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    check_unit(&text, &service_rules(pod, socket)).map_err(|(line, reason)| {
        OpError::EditedTree {
            path: path.clone(),
            reason: format!("line {line}: {reason}"),
        }
    })?;
    if socket {
        let path = tree.join(&socket_unit);
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        check_unit(&text, &socket_rules(pod)).map_err(|(line, reason)| OpError::EditedTree {
            path: path.clone(),
            reason: format!("line {line}: {reason}"),
        })?;
    }
    Ok(())
}

/// A key a section may have, and whether a value is one podc writes for it.
type Rule = (&'static str, &'static str, Box<dyn Fn(&str) -> bool>);

fn exact(v: String) -> Box<dyn Fn(&str) -> bool> {
    Box::new(move |s| s == v)
}

fn service_rules(pod: &str, socket: bool) -> Vec<Rule> {
    let socket_unit = format!("podc-{pod}.socket");
    let mut rules: Vec<Rule> = vec![
        ("Unit", "Description", exact(format!("podc pod {pod}"))),
        ("Service", "Type", exact("notify".into())),
        // A pod with init apps: it has started once they have completed.
        ("Service", "TimeoutStartSec", exact("infinity".into())),
        ("Service", "ExecStart", Box::new(launch_line)),
        ("Service", "KillMode", exact("mixed".into())),
        ("Service", "Delegate", exact("yes".into())),
        ("Service", "Slice", exact("machine.slice".into())),
        // A pod whose apps all restart (`Pod::restarts`).
        ("Service", "Restart", exact("on-failure".into())),
        ("Install", "WantedBy", exact("machines.target".into())),
    ];
    if socket {
        rules.push(("Unit", "Requires", exact(socket_unit.clone())));
        rules.push(("Unit", "After", exact(socket_unit.clone())));
        rules.push(("Install", "Also", exact(socket_unit)));
    }
    // The pod's limits: the directives of the limits table, with numbers (a CPU quota as a
    // percentage).
    for r in &LIMITS {
        for key in [r.unified, r.legacy] {
            rules.push(("Service", key, Box::new(limit_value)));
        }
    }
    rules
}

fn socket_rules(pod: &str) -> Vec<Rule> {
    vec![
        (
            "Unit",
            "Description",
            exact(format!("podc pod {pod}: published ports")),
        ),
        ("Socket", "ListenStream", Box::new(listen_value)),
        ("Socket", "ListenDatagram", Box::new(listen_value)),
        ("Install", "WantedBy", exact("sockets.target".into())),
    ]
}

/// `ExecStart="<dir>/podc" "launch" "<install dir>"`, both paths absolute and normal.
fn launch_line(v: &str) -> bool {
    match decode_words(v, true).as_deref() {
        Some([program, launch, dir]) => {
            is_normal_abs_path(program)
                && Path::new(program).file_name().is_some_and(|n| n == "podc")
                && launch == "launch"
                && is_normal_abs_path(dir)
        }
        _ => false,
    }
}

/// A limit's value: digits, or digits with a fraction and `%` (CPUQuota=).
fn limit_value(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match v.strip_suffix('%') {
        Some(p) => match p.split_once('.') {
            Some((a, b)) => digits(a) && digits(b),
            None => digits(p),
        },
        None => digits(v),
    }
}

/// A socket's listen address: `port`, `address:port` or `[address]:port`.
fn listen_value(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_hexdigit() || b":.[]".contains(&b))
        && !v.is_empty()
}

/// Checks each line of `text` against `rules`: the number of the first line that is not one
/// podc writes, and why.
fn check_unit(text: &str, rules: &[Rule]) -> Result<(), (usize, String)> {
    let mut section = "";
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !rules.iter().any(|(sec, _, _)| *sec == s) {
                return Err((n, format!("section [{s}] is not one podc writes here")));
            }
            section = rules.iter().find(|(sec, _, _)| *sec == s).unwrap().0;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((n, "not a comment, a section or a `Key=value` line".into()));
        };
        match rules
            .iter()
            .find(|(sec, k, _)| *sec == section && *k == key)
        {
            Some((_, _, ok)) if ok(value) => {}
            Some(_) => return Err((n, format!("{key}={value} is not what podc writes"))),
            None => {
                return Err((
                    n,
                    format!("{key}= in [{section}] is not a directive podc writes"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_podc_writes_pass_and_edits_do_not() {
        let good = "# Generated by podc\n\n[Unit]\nDescription=podc pod web\nRequires=podc-web.socket\nAfter=podc-web.socket\n\n[Service]\nType=notify\nTimeoutStartSec=infinity\nExecStart=\"/usr/bin/podc\" \"launch\" \"/var/lib/podc/web\"\nKillMode=mixed\nDelegate=yes\nSlice=machine.slice\nMemoryMax=268435456\nCPUQuota=50.5%\n\n[Install]\nWantedBy=machines.target\nAlso=podc-web.socket\n";
        assert_eq!(check_unit(good, &service_rules("web", true)), Ok(()));
        for (edit, line) in [
            (
                "Slice=machine.slice\n",
                "Slice=machine.slice\nExecStartPre=/bin/sh -c true\n",
            ),
            ("\"/usr/bin/podc\"", "\"/bin/sh\""),
            ("MemoryMax=268435456", "MemoryMax=1; rm"),
            ("TimeoutStartSec=infinity", "TimeoutStartSec=1us"),
            ("[Install]", "[X-Evil]"),
            ("Description=podc pod web", "Description=podc pod other"),
        ] {
            let bad = good.replace(edit, line);
            assert!(
                check_unit(&bad, &service_rules("web", true)).is_err(),
                "{line}"
            );
        }
        // Without a socket, the socket's lines are not podc's.
        assert!(check_unit(good, &service_rules("web", false)).is_err());
        let socket = "[Unit]\nDescription=podc pod web: published ports\n\n[Socket]\nListenStream=8080\nListenDatagram=[::1]:53\n\n[Install]\nWantedBy=sockets.target\n";
        assert_eq!(check_unit(socket, &socket_rules("web")), Ok(()));
        assert!(check_unit(&socket.replace("8080", "/run/x.sock"), &socket_rules("web")).is_err());
    }
}
