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
    EXIT_SCRIPT, EXIT_UNIT, POD_TARGET, POD_UNIT_DIR, RESULT_SCRIPT, RESULT_UNIT,
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
    "sockets.conf.j2",
];

/// templates/result.sh and templates/exit.sh, which the result and exit units run.
const SCRIPTS: [&str; 2] = [
    include_str!("../../templates/result.sh"),
    include_str!("../../templates/exit.sh"),
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
    // Every template sees the pod's name, the manifest's file name and the annotations, plus
    // the one part of the tree it lays out.
    let (pod, manifest_file, annotations) = (
        Value::from(tree.pod.as_str()),
        Value::from(tree.manifest_file.as_str()),
        Value::from(Serde(&tree.annotations)),
    );
    let ctx = |header: &Value, name: &'static str, part: Value| {
        Value::from_object(Context {
            pod: pod.clone(),
            manifest_file: manifest_file.clone(),
            annotations: annotations.clone(),
            header: header.clone(),
            name,
            part,
        })
    };
    // The header every file starts with, laid out once for the pod.
    let header = Value::from(render_one(
        "header.j2",
        ctx(&Value::UNDEFINED, "header", Value::UNDEFINED),
    ));
    let ctx = |name: &'static str, part: Value| ctx(&header, name, part);
    let mut files = Files::new();
    files.insert(
        tree.host.file.clone(),
        render_one(
            "host.service.j2",
            ctx("host", Value::from(Serde(&tree.host))),
        ),
    );
    files.insert(
        format!("{POD_UNIT_DIR}/{POD_TARGET}"),
        render_one(
            "pod.target.j2",
            ctx("target", Value::from(Serde(&tree.target))),
        ),
    );
    for app in &tree.apps {
        files.insert(
            [POD_UNIT_DIR, "/", &app.name, ".service"].concat(),
            render_one("app.service.j2", ctx("app", Value::from(Serde(app)))),
        );
    }
    files.insert(
        format!("{POD_UNIT_DIR}/{EXIT_UNIT}"),
        render_one(
            "exit.service.j2",
            ctx("exit", Value::from(Serde(&tree.exit))),
        ),
    );
    files.insert(
        format!("{POD_UNIT_DIR}/{RESULT_UNIT}"),
        render_one(
            "result.service.j2",
            ctx("result", Value::from(Serde(&tree.result))),
        ),
    );
    // One text for both names.
    let halt = render_one(
        "halt.target.j2",
        ctx("halt", Value::from(Serde(&tree.halt))),
    );
    for name in HALT_TARGETS {
        files.insert([POD_UNIT_DIR, "/", name].concat(), halt.clone());
    }
    files.insert(
        "rootfs/etc/systemd/system.conf.d/podc.conf".into(),
        render_one(
            "podc.conf.j2",
            ctx("manager", Value::from(crate::lower::text(&tree.manager))),
        ),
    );
    files.insert(
        "rootfs/etc/sysusers.d/podc.conf".into(),
        render_one(
            "sysusers.conf.j2",
            ctx("sysusers", Value::from(Serde(&tree.sysusers))),
        ),
    );
    if let Some(socket) = &tree.socket {
        files.insert(
            socket.file.clone(),
            render_one("host.socket.j2", ctx("socket", Value::from(Serde(socket)))),
        );
    }
    for socket in &tree.sockets {
        files.insert(
            [POD_UNIT_DIR, "/", &socket.name].concat(),
            render_one("pod.socket.j2", ctx("socket", Value::from(Serde(socket)))),
        );
    }
    for proxy in &tree.proxies {
        files.insert(
            [POD_UNIT_DIR, "/", &proxy.name].concat(),
            render_one("proxy.service.j2", ctx("proxy", Value::from(Serde(proxy)))),
        );
    }
    if !tree.sockets.is_empty() {
        let wants: Vec<&str> = tree.sockets.iter().map(|s| s.name.as_str()).collect();
        files.insert(
            [POD_UNIT_DIR, "/sockets.target.d/podc.conf"].concat(),
            render_one(
                "sockets.conf.j2",
                ctx(
                    "sockets",
                    Value::from(["Wants=", &wants.join(" "), "\n"].concat()),
                ),
            ),
        );
    }
    // The exit-status scripts are the same for every pod: no template, only the header. (They
    // are shell, where `{#` and `{{` mean something else.)
    for (path, script) in [(RESULT_SCRIPT, SCRIPTS[0]), (EXIT_SCRIPT, SCRIPTS[1])] {
        files.insert(
            ["rootfs", path].concat(),
            [header.as_str().unwrap_or_default(), script].concat(),
        );
    }
    // The same header sentence, as an HTML comment: a `#` line would be a heading. Nothing in
    // the comment may end it early (`--` is what can), whatever the manifest's file name is.
    let mut sentence = header
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .trim_end()
        .to_string();
    while sentence.contains("--") {
        sentence = sentence.replace("--", "- -");
    }
    files.insert(
        "POD.md".into(),
        ["<!-- ", &sentence, " -->\n", doc].concat(),
    );
    files.insert(
        "mounts.toml".into(),
        render_one(
            "mounts.toml.j2",
            ctx("plan", Value::from(tree.plan.to_toml())),
        ),
    );
    files
}
