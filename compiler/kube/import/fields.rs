//! Kubernetes fields podc reads no further, taken out of the object before it is read: what
//! has no meaning on one host is ignored with a warning that says why, what is written with its
//! default value is accepted silently, and what would run differently than written is refused
//! with the reason. A field in none of these lists is read (or is a typo, and said to be).

use serde_json::Value;

use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::parse::source::{join_index, join_key, SourceMap};

/// What podc does with a field it does not read.
#[derive(Clone, Copy)]
enum Rule {
    /// Ignored, with a warning that gives the reason.
    Ignore(&'static str),
    /// Accepted silently with its default value; any other value ignored with a warning.
    DefaultElseIgnore(fn(&Value) -> bool, &'static str),
    /// Accepted silently with its default value; any other value refused, with the reason.
    DefaultElseRefuse(fn(&Value) -> bool, &'static str),
}
use Rule::*;

fn is_true(v: &Value) -> bool {
    v == &Value::Bool(true)
}
fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}
fn is_one(v: &Value) -> bool {
    v.as_u64() == Some(1)
}

const SERVER: &str = "it is set by the Kubernetes API server, not by a file";
const SCHEDULING: &str =
    "it tells a cluster's scheduler where to run the pod; podc runs it on the host it is installed on";
const ROLLOUT: &str =
    "it tells a cluster how to roll out new versions; podc replaces a pod when it is reinstalled";
const ACCOUNT: &str =
    "there is no Kubernetes API on one host, so no service account token is mounted";
const LABELS: &str = "podc sets no SELinux or AppArmor label of its own; its apps are confined by systemd's sandboxing, seccomp and capabilities";
const TERMINAL: &str = "an app has no terminal: its output goes to the journal (`podc logs`)";
const MESSAGE: &str =
    "podc keeps an app's output and exit status in the journal (`podc logs`, `podc status`)";

const TOP: &[(&str, Rule)] = &[("status", Ignore(SERVER))];

const META: &[(&str, Rule)] = &[
    ("uid", Ignore(SERVER)),
    ("resourceVersion", Ignore(SERVER)),
    ("creationTimestamp", Ignore(SERVER)),
    ("deletionTimestamp", Ignore(SERVER)),
    ("deletionGracePeriodSeconds", Ignore(SERVER)),
    ("generation", Ignore(SERVER)),
    ("managedFields", Ignore(SERVER)),
    ("selfLink", Ignore(SERVER)),
    (
        "ownerReferences",
        Ignore("podc has no controllers to own a pod"),
    ),
    (
        "finalizers",
        Ignore("podc has no controllers to finalize a pod"),
    ),
];

const DEPLOYMENT: &[(&str, Rule)] = &[
    (
        "replicas",
        DefaultElseIgnore(
            is_one,
            "podc runs one pod on one host; several copies would compete for the same ports and volumes",
        ),
    ),
    ("strategy", Ignore(ROLLOUT)),
    ("revisionHistoryLimit", Ignore(ROLLOUT)),
    ("minReadySeconds", Ignore(ROLLOUT)),
    ("progressDeadlineSeconds", Ignore(ROLLOUT)),
    ("paused", Ignore(ROLLOUT)),
];

const POD: &[(&str, Rule)] = &[
    ("affinity", Ignore(SCHEDULING)),
    ("tolerations", Ignore(SCHEDULING)),
    ("nodeSelector", Ignore(SCHEDULING)),
    ("nodeName", Ignore(SCHEDULING)),
    ("priorityClassName", Ignore(SCHEDULING)),
    ("priority", Ignore(SCHEDULING)),
    ("preemptionPolicy", Ignore(SCHEDULING)),
    ("schedulerName", Ignore(SCHEDULING)),
    ("topologySpreadConstraints", Ignore(SCHEDULING)),
    ("schedulingGates", Ignore(SCHEDULING)),
    ("readinessGates", Ignore("nothing on one host sets a pod's readiness conditions; podc's readiness is its apps' probes")),
    ("runtimeClassName", Ignore("podc runs every pod with systemd-nspawn")),
    ("overhead", Ignore(SCHEDULING)),
    ("serviceAccountName", Ignore(ACCOUNT)),
    ("serviceAccount", Ignore(ACCOUNT)),
    ("automountServiceAccountToken", DefaultElseIgnore(is_false, ACCOUNT)),
    ("imagePullSecrets", Ignore("podc pulls with the host's registry credentials (`podc image pull` reads the usual auth files)")),
    (
        "dnsPolicy",
        DefaultElseIgnore(
            |v| v != "None",
            "there is no cluster DNS on one host: a pod uses the host's resolvers",
        ),
    ),
    ("dnsConfig", Ignore("there is no cluster DNS on one host: a pod uses the host's resolvers")),
    ("enableServiceLinks", Ignore("there are no Services on one host to make variables of")),
    ("subdomain", Ignore("there is no cluster DNS on one host")),
    ("setHostnameAsFQDN", Ignore("there is no cluster DNS on one host")),
    ("hostname", Ignore("a pod's host name is its name")),
    ("terminationGracePeriodSeconds", Ignore("podc stops an app as systemd does: SIGTERM, then SIGKILL after the unit's stop timeout")),
    ("hostPID", DefaultElseRefuse(is_false, "a pod always has its own process namespace in podc; sharing the host's would let its apps see and signal every process of the host")),
    ("hostIPC", DefaultElseRefuse(is_false, "a pod always has its own IPC namespace in podc")),
    ("shareProcessNamespace", DefaultElseIgnore(is_true, "a pod's apps always share one process namespace in podc (that of the pod's systemd)")),
];

/// Why `imagePullPolicy: Always` (and an image volume's `pullPolicy`) is ignored.
const NEVER_PULLS: &str = "podc runs the image the host's store holds and never pulls at launch; `podc image pull` fetches a newer one";

fn store_policy(v: &Value) -> bool {
    v == "IfNotPresent" || v == "Never"
}

const CONTAINER: &[(&str, Rule)] = &[
    (
        "imagePullPolicy",
        DefaultElseIgnore(store_policy, NEVER_PULLS),
    ),
    (
        "terminationMessagePath",
        DefaultElseIgnore(|v| v == "/dev/termination-log", MESSAGE),
    ),
    (
        "terminationMessagePolicy",
        DefaultElseIgnore(|v| v == "File", MESSAGE),
    ),
    ("stdin", DefaultElseIgnore(is_false, TERMINAL)),
    ("stdinOnce", DefaultElseIgnore(is_false, TERMINAL)),
    ("tty", DefaultElseIgnore(is_false, TERMINAL)),
    (
        "resizePolicy",
        Ignore("podc changes an app's limits when its pod is rebuilt"),
    ),
];

const SECURITY: &[(&str, Rule)] = &[
    ("privileged", DefaultElseRefuse(is_false, "a privileged container gets the host's devices and every capability: podc has no such app; add the capabilities it needs instead")),
    ("procMount", DefaultElseRefuse(|v| v == "Default", "podc mounts /proc as systemd-nspawn does")),
    ("seLinuxOptions", Ignore(LABELS)),
    ("appArmorProfile", Ignore(LABELS)),
    ("seLinuxChangePolicy", Ignore(LABELS)),
    ("windowsOptions", Ignore("it applies to Windows containers only")),
    ("fsGroupChangePolicy", Ignore("podc sets a volume's group when it makes the volume")),
    ("supplementalGroupsPolicy", Ignore("podc adds the groups given to those of the image's user database")),
];

const RESOURCES: &[(&str, Rule)] = &[(
    "ephemeral-storage",
    Ignore("podc does not cap an app's disk use"),
)];

/// An image volume's source, as a container's image.
const IMAGE_VOLUME: &[(&str, Rule)] =
    &[("pullPolicy", DefaultElseIgnore(store_policy, NEVER_PULLS))];

const MOUNT: &[(&str, Rule)] = &[(
    "mountPropagation",
    DefaultElseRefuse(
        |v| v == "None",
        "podc's mounts do not propagate between the pod and the host",
    ),
)];

/// Takes the fields of these lists out of a Pod or Deployment `value`, with a warning for each
/// one ignored; refuses what cannot run as written.
// One diagnostic by value, like a parse error.
#[allow(clippy::result_large_err)]
pub(super) fn prune(
    value: &mut Value,
    deployment: bool,
    doc: &SourceMap,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    let mut p = Pruner { doc, warnings };
    p.apply(TOP, Some(value), "")?;
    p.apply(META, value.get_mut("metadata"), "metadata")?;
    let spec = if deployment {
        p.apply(DEPLOYMENT, value.get_mut("spec"), "spec")?;
        let meta = value.pointer_mut("/spec/template/metadata");
        p.apply(META, meta, "spec.template.metadata")?;
        "spec.template.spec"
    } else {
        "spec"
    };
    let pointer = format!("/{}", spec.replace('.', "/"));
    let Some(pod) = value.pointer_mut(&pointer) else {
        return Ok(());
    };
    p.apply(POD, Some(pod), spec)?;
    p.apply(
        SECURITY,
        pod.get_mut("securityContext"),
        &join_key(spec, "securityContext"),
    )?;
    if let Some(Value::Array(volumes)) = pod.get_mut("volumes") {
        for (i, v) in volumes.iter_mut().enumerate() {
            let path = join_key(&join_index(&join_key(spec, "volumes"), i), "image");
            p.apply(IMAGE_VOLUME, v.get_mut("image"), &path)?;
        }
    }
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = pod.get_mut(list) else {
            continue;
        };
        for (i, c) in containers.iter_mut().enumerate() {
            let path = join_index(&join_key(spec, list), i);
            p.apply(CONTAINER, Some(c), &path)?;
            let security = join_key(&path, "securityContext");
            p.apply(SECURITY, c.get_mut("securityContext"), &security)?;
            for part in ["limits", "requests"] {
                let at = join_key(&join_key(&path, "resources"), part);
                let r = c.get_mut("resources").and_then(|r| r.get_mut(part));
                p.apply(RESOURCES, r, &at)?;
            }
            if let Some(Value::Array(mounts)) = c.get_mut("volumeMounts") {
                for (j, m) in mounts.iter_mut().enumerate() {
                    p.apply(
                        MOUNT,
                        Some(m),
                        &join_index(&join_key(&path, "volumeMounts"), j),
                    )?;
                }
            }
        }
    }
    Ok(())
}

struct Pruner<'a> {
    doc: &'a SourceMap,
    warnings: &'a mut Vec<Diagnostic>,
}

impl Pruner<'_> {
    /// Applies `rules` to the mapping `value` at `path`; a key whose value is null is unset,
    /// as Kubernetes reads it.
    #[allow(clippy::result_large_err)]
    fn apply(
        &mut self,
        rules: &[(&str, Rule)],
        value: Option<&mut Value>,
        path: &str,
    ) -> Result<(), Diagnostic> {
        let Some(Value::Object(map)) = value else {
            return Ok(());
        };
        map.retain(|_, v| !v.is_null());
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let Some(rule) = rules.iter().find(|(k, _)| *k == key).map(|(_, r)| *r) else {
                continue;
            };
            let at = join_key(path, &key);
            let v = map.get(&key).expect("a key of the map");
            match rule {
                DefaultElseIgnore(default, _) | DefaultElseRefuse(default, _) if default(v) => {}
                Ignore(why) | DefaultElseIgnore(_, why) => {
                    self.warnings.push(
                        Diagnostic::new(codes::KUBE_IGNORED, format!("`{key}` ignored: {why}"))
                            .at(&at, self.doc.key(&at)),
                    );
                }
                DefaultElseRefuse(_, why) => {
                    return Err(refusal(self.doc, &at, &key, v, why));
                }
            }
            map.remove(&key);
        }
        Ok(())
    }
}

fn refusal(doc: &SourceMap, at: &str, key: &str, v: &Value, why: &str) -> Diagnostic {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Diagnostic::new(
        codes::KUBE_UNSUPPORTED,
        format!("`{key}: {shown}` is not supported by podc"),
    )
    .at(at, doc.value(at))
    .help(why.to_string())
}
