//! Render: a [`UnitTree`] to file contents, through the templates in `templates/`.
//!
//! The templates are embedded in the binary and run with strict undefined behaviour, so a typo
//! in a template is an error rather than an empty string. They lay text out and decide nothing.
//! The result is a sorted map from paths relative to the pod directory to file contents.

pub mod podmd;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Object, Serde};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::lower::{UnitTree, HALT_TARGETS};
use crate::tree::layout::{
    EXIT_SCRIPT, EXIT_UNIT, HEALTH_SCRIPT, POD_TARGET, POD_UNIT_DIR, RESULT_SCRIPT, RESULT_UNIT,
};

/// Generated files: relative path → content.
pub type Files = BTreeMap<String, String>;

/// `(name, source)` of a file in `templates/`, embedded at compile time.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "header.j2",
    "host.service.j2",
    "pod.target.j2",
    "app.service.j2",
    "exit.service.j2",
    "result.service.j2",
    "halt.target.j2",
    "podc.conf.j2",
    "mounts.toml.j2",
    "sysusers.conf.j2",
    "host.socket.j2",
    "pod.socket.j2",
    "proxy.service.j2",
    "health.ready.j2",
    "health.timer.j2",
    "health.service.j2",
    "sockets.conf.j2",
];

/// templates/result.sh, exit.sh and health.sh, which the result, exit and health units run.
const SCRIPTS: [&str; 3] = [
    include_str!("../../templates/result.sh"),
    include_str!("../../templates/exit.sh"),
    include_str!("../../templates/health.sh"),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_auto_escape_callback(|_| AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e:#}"));
        }
        env
    })
}

fn render_one(name: &str, ctx: Value) -> String {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| panic!("template {name} failed: {e:#}"))
}

/// What a template sees: `pod`, `manifest_file`, `annotations`, `header` (header.j2 laid out
/// for the pod, which every file starts with), and under `name` the part of the tree it lays
/// out. Looked up by name rather than built as a map for every file.
#[derive(Debug)]
struct Context {
    pod: Value,
    manifest_file: Value,
    annotations: Value,
    header: Value,
    name: &'static str,
    part: Value,
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "pod" => Some(self.pod.clone()),
            "manifest_file" => Some(self.manifest_file.clone()),
            "annotations" => Some(self.annotations.clone()),
            "header" if !self.header.is_undefined() => Some(self.header.clone()),
            key if key == self.name => Some(self.part.clone()),
            _ => None,
        }
    }
}

/// The files of a pod's tree: its units, scripts and mount plan from `tree`, and POD.md with
/// `doc` (made from the pod by [`podmd::pod_md`]) after its header.
pub fn render(tree: &UnitTree, doc: &str) -> Files {
    let r = Renderer::new(tree);
    let mut files = Files::new();
    pod_units(tree, &r, &mut files);
    socket_units(tree, &r, &mut files);
    scripts(tree, &r, &mut files);
    pod_md(&r, doc, &mut files);
    files.insert(
        "mounts.toml".into(),
        render_one(
            "mounts.toml.j2",
            r.ctx("plan", Value::from(tree.plan.to_toml())),
        ),
    );
    // Configuration as the manifest gave it: the bytes the app reads, so no header.
    files.extend(tree.config_texts.clone());
    files
}

/// What every template sees (the pod's name, the manifest's file name, the annotations and
/// the header every file starts with), plus the one part of the tree it lays out.
struct Renderer {
    pod: Value,
    manifest_file: Value,
    annotations: Value,
    header: Value,
}

impl Renderer {
    fn new(tree: &UnitTree) -> Renderer {
        let mut r = Renderer {
            pod: Value::from(tree.pod.as_str()),
            manifest_file: Value::from(tree.manifest_file.as_str()),
            annotations: Value::from(Serde(&tree.annotations)),
            header: Value::UNDEFINED,
        };
        // The header every file starts with, laid out once for the pod.
        r.header = Value::from(render_one("header.j2", r.ctx("header", Value::UNDEFINED)));
        r
    }

    fn ctx(&self, name: &'static str, part: Value) -> Value {
        Value::from_object(Context {
            pod: self.pod.clone(),
            manifest_file: self.manifest_file.clone(),
            annotations: self.annotations.clone(),
            header: self.header.clone(),
            name,
            part,
        })
    }

    fn header(&self) -> &str {
        self.header.as_str().unwrap_or_default()
    }
}

/// The host unit and the units inside the pod: its target, the apps, how it ends, the
/// manager's settings and the users it makes.
fn pod_units(tree: &UnitTree, r: &Renderer, files: &mut Files) {
    files.insert(
        tree.host.file.clone(),
        render_one(
            "host.service.j2",
            r.ctx("host", Value::from(Serde(&tree.host))),
        ),
    );
    files.insert(
        format!("{POD_UNIT_DIR}/{POD_TARGET}"),
        render_one(
            "pod.target.j2",
            r.ctx("target", Value::from(Serde(&tree.target))),
        ),
    );
    for app in &tree.apps {
        files.insert(
            [POD_UNIT_DIR, "/", &app.name, ".service"].concat(),
            render_one("app.service.j2", r.ctx("app", Value::from(Serde(app)))),
        );
    }
    for h in &tree.health {
        let ctx = r.ctx("health", Value::from(Serde(h)));
        files.insert(
            [POD_UNIT_DIR, "/", &h.ready].concat(),
            render_one("health.ready.j2", ctx.clone()),
        );
        files.insert(
            [POD_UNIT_DIR, "/", &h.name, ".timer"].concat(),
            render_one("health.timer.j2", ctx.clone()),
        );
        files.insert(
            [POD_UNIT_DIR, "/", &h.name, ".service"].concat(),
            render_one("health.service.j2", ctx),
        );
    }
    files.insert(
        format!("{POD_UNIT_DIR}/{EXIT_UNIT}"),
        render_one(
            "exit.service.j2",
            r.ctx("exit", Value::from(Serde(&tree.exit))),
        ),
    );
    files.insert(
        format!("{POD_UNIT_DIR}/{RESULT_UNIT}"),
        render_one(
            "result.service.j2",
            r.ctx("result", Value::from(Serde(&tree.result))),
        ),
    );
    // One text for both names.
    let halt = render_one(
        "halt.target.j2",
        r.ctx("halt", Value::from(Serde(&tree.halt))),
    );
    for name in HALT_TARGETS {
        files.insert([POD_UNIT_DIR, "/", name].concat(), halt.clone());
    }
    files.insert(
        "rootfs/etc/systemd/system.conf.d/podc.conf".into(),
        render_one(
            "podc.conf.j2",
            r.ctx("manager", Value::from(crate::lower::text(&tree.manager))),
        ),
    );
    files.insert(
        "rootfs/etc/sysusers.d/podc.conf".into(),
        render_one(
            "sysusers.conf.j2",
            r.ctx("sysusers", Value::from(Serde(&tree.sysusers))),
        ),
    );
}

/// Published ports: the host's socket, the pod's sockets and proxies, and the drop-in that
/// makes sockets.target want the pod's sockets.
fn socket_units(tree: &UnitTree, r: &Renderer, files: &mut Files) {
    if let Some(socket) = &tree.socket {
        files.insert(
            socket.file.clone(),
            render_one(
                "host.socket.j2",
                r.ctx("socket", Value::from(Serde(socket))),
            ),
        );
    }
    for socket in &tree.sockets {
        files.insert(
            [POD_UNIT_DIR, "/", &socket.name].concat(),
            render_one("pod.socket.j2", r.ctx("socket", Value::from(Serde(socket)))),
        );
    }
    for proxy in &tree.proxies {
        files.insert(
            [POD_UNIT_DIR, "/", &proxy.name].concat(),
            render_one(
                "proxy.service.j2",
                r.ctx("proxy", Value::from(Serde(proxy))),
            ),
        );
    }
    if !tree.sockets.is_empty() {
        let wants: Vec<&str> = tree.sockets.iter().map(|s| s.name.as_str()).collect();
        files.insert(
            [POD_UNIT_DIR, "/sockets.target.d/podc.conf"].concat(),
            render_one(
                "sockets.conf.j2",
                r.ctx(
                    "sockets",
                    Value::from(["Wants=", &wants.join(" "), "\n"].concat()),
                ),
            ),
        );
    }
}

/// The exit-status scripts.
fn scripts(tree: &UnitTree, r: &Renderer, files: &mut Files) {
    // The exit-status scripts are the same for every pod: no template, only the header. (They
    // are shell, where `{#` and `{{` mean something else.)
    for (path, script) in [(RESULT_SCRIPT, SCRIPTS[0]), (EXIT_SCRIPT, SCRIPTS[1])] {
        files.insert(["rootfs", path].concat(), [r.header(), script].concat());
    }
    // Only pods with a probe carry the health script.
    if !tree.health.is_empty() {
        files.insert(
            ["rootfs", HEALTH_SCRIPT].concat(),
            [r.header(), SCRIPTS[2]].concat(),
        );
    }
}

/// POD.md: the header sentence as an HTML comment, then `doc`.
fn pod_md(r: &Renderer, doc: &str, files: &mut Files) {
    // The same header sentence, as an HTML comment: a `#` line would be a heading. Nothing in
    // the comment may end it early (`--` is what can), whatever the manifest's file name is.
    let mut sentence = r.header().trim_start_matches("# ").trim_end().to_string();
    while sentence.contains("--") {
        sentence = sentence.replace("--", "- -");
    }
    files.insert(
        "POD.md".into(),
        ["<!-- ", &sentence, " -->\n", doc].concat(),
    );
}
