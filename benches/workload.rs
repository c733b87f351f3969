//! Generated manifests for the benchmark (`cargo bench`) and the instruction guard
//! (`tests/perf.rs`), one shape of app repeated so that cost per app is a slope; and the
//! instruction count both take with callgrind.
//!
//! Two shapes of app: [`Shape::Full`] uses what a busy real one does (an image, a command with
//! four arguments, a user and group, two environment variables, CPU, memory and task limits, a
//! volume mount and an ordering edge: about 350 bytes of YAML); [`Shape::Small`] is a plain
//! service (an image, a command with two arguments, a user and group, a memory limit: about 160
//! bytes).

#![allow(dead_code)] // each includer uses part

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Full,
    Small,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Full => "full",
            Shape::Small => "small",
        }
    }
}

/// One pod named `name` with `apps` apps of the full shape, as YAML.
pub fn pod(name: &str, apps: usize) -> String {
    pod_of(Shape::Full, name, apps)
}

/// One pod named `name` with `apps` apps of `shape`, as YAML.
pub fn pod_of(shape: Shape, name: &str, apps: usize) -> String {
    let mut s = format!(
        "podc: 1\nname: {name}\ntarget:\n  cgroup: v2\n  systemd: 252\n\
         isolators:\n  cpu: \"4\"\n  memory: 8Gi\n  tasks: 4096\n\
         volumes:\n  - name: data\n    kind: host\n    source: /srv/{name}/data\n    readOnly: true\n\
         apps:\n"
    );
    for i in 0..apps {
        let port = 8000 + i;
        let _ = match shape {
            Shape::Full => write!(
                s,
                "  - name: app{i}\n    image: /var/lib/podc/images/app{i}\n    \
                 exec: [\"/usr/bin/server\", \"--port\", \"{port}\", \"--name\", \"app {i}\"]\n    \
                 user: 1000\n    group: 1000\n    \
                 environment:\n      MODE: production\n      INDEX: \"{i}\"\n    \
                 isolators:\n      cpu: 250m\n      memory: 64Mi\n      tasks: 32\n    \
                 mounts:\n      - volume: data\n        path: /data\n"
            ),
            Shape::Small => write!(
                s,
                "  - name: app{i}\n    image: /var/lib/podc/images/app\n    \
                 exec: [/usr/bin/server, --port, \"{port}\"]\n    \
                 user: 1000\n    group: 1000\n    \
                 isolators:\n      memory: 64Mi\n"
            ),
        };
        if i > 0 && shape == Shape::Full {
            s.push_str("    after: [app0]\n");
        }
    }
    s
}

/// `pods` manifests `pod<i>.yaml` of `apps` apps of `shape` each, written into `dir`.
pub fn write_pods(shape: Shape, dir: &Path, pods: usize, apps: usize) -> Vec<PathBuf> {
    (0..pods)
        .map(|i| {
            let path = dir.join(format!("pod{i}.yaml"));
            std::fs::write(&path, pod_of(shape, &format!("pod{i}"), apps)).unwrap();
            path
        })
        .collect()
}

/// Instructions a command executes, counted by callgrind (which holds under load, where wall
/// time does not); `None` without valgrind or if the command fails.
pub fn instructions(cmd: &Command) -> Option<u64> {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// Whether valgrind can be run.
pub fn have_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
