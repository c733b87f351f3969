//! Generated manifests for the benchmark (`cargo bench`) and the instruction guard
//! (`tests/perf.rs`): one shape of app, repeated, so that cost per app is a slope.
//!
//! Each app uses what a real one does: an image, a command with arguments, a user and group,
//! environment, CPU, memory and task limits, a volume mount and an ordering edge.

use std::fmt::Write;

/// One pod named `name` with `apps` apps, as YAML.
pub fn pod(name: &str, apps: usize) -> String {
    let mut s = format!(
        "podc: 1\nname: {name}\ntarget:\n  cgroup: v2\n  systemd: 252\n\
         isolators:\n  cpu: \"4\"\n  memory: 8Gi\n  tasks: 4096\n\
         volumes:\n  - name: data\n    kind: host\n    source: /srv/{name}/data\n    readOnly: true\n\
         apps:\n"
    );
    for i in 0..apps {
        let _ = write!(
            s,
            "  - name: app{i}\n    image: /var/lib/podc/images/app{i}\n    \
             exec: [\"/usr/bin/server\", \"--port\", \"{port}\", \"--name\", \"app {i}\"]\n    \
             user: 1000\n    group: 1000\n    \
             environment:\n      MODE: production\n      INDEX: \"{i}\"\n    \
             isolators:\n      cpu: 250m\n      memory: 64Mi\n      tasks: 32\n    \
             mounts:\n      - volume: data\n        path: /data\n",
            port = 8000 + i
        );
        if i > 0 {
            s.push_str("    after: [app0]\n");
        }
    }
    s
}
