//! The object's metadata: the pod's own annotations (checked against what Kubernetes takes)
//! and podc's two, `podc/pod` (the pod-level settings Kubernetes has no field for) and
//! `podc/apps`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Map, Value};

use super::common::{json_text, Out};
use super::resources::plain_quantity;
use crate::diag::codes;
use crate::diag::Diagnostic;
use crate::kube::{APPS_ANNOTATION, POD_ANNOTATION};
use crate::manifest::{Egress, Network, Protocol, Start, UserNamespace};
use crate::pod::{CpuWeight, Pod, Volume, VolumeKind};
use crate::systemd::target::Target;

/// The most bytes of annotation keys and values Kubernetes takes on one object.
pub(super) const MAX_ANNOTATIONS: usize = 256 * 1024;

pub use crate::manifest::kube_names::qualified_name;

/// The pod's annotations as Kubernetes takes them: none named as podc's own, every key a
/// qualified name, all of them within Kubernetes' size.
pub(super) fn check_annotations(pod: &Pod, out: &mut Out) {
    for key in [POD_ANNOTATION, APPS_ANNOTATION] {
        if pod.annotations.contains_key(key) {
            out.errors.push(
                Diagnostic::new(
                    codes::ANNOTATION_RESERVED,
                    format!("annotation {key:?} is the one podc writes on Kubernetes objects"),
                )
                .at(format!("annotations.{key}"), None)
                .help("rename it; podc keeps what Kubernetes cannot say in podc/pod and podc/apps"),
            );
        }
    }
    for key in pod.annotations.keys() {
        if !qualified_name(key) {
            out.errors.push(
                Diagnostic::new(
                    codes::ANNOTATION_KUBERNETES,
                    format!("Kubernetes does not take the annotation key {key:?}"),
                )
                .at(format!("annotations.{key}"), None)
                .help("a key is a name of up to 63 letters, digits, `-`, `_` and `.` (beginning and ending with a letter or digit), optionally after a lowercase DNS prefix and `/`, such as `example.com/owner`"),
            );
        }
    }
    let size: usize = pod.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS {
        out.errors.push(
            Diagnostic::new(
                codes::ANNOTATION_KUBERNETES,
                format!("the annotations hold {size} bytes; Kubernetes takes at most {MAX_ANNOTATIONS} (with podc's own)"),
            )
            .at("annotations", None),
        );
    }
}

/// The pod-level settings: all of them go to `podc/pod`.
pub(super) fn pod_extras(pod: &Pod, out: &mut Out) {
    let l = &pod.limits;
    let mut iso = Map::new();
    if let (Some(_), Some(w)) = (l.cpu_millis, &l.written.cpu) {
        iso.insert("cpu".into(), json!(w));
    }
    if let (Some(_), Some(w)) = (l.memory_bytes, &l.written.memory) {
        iso.insert("memory".into(), json!(w));
    }
    match l.cpu_weight {
        Some(CpuWeight::Shares(s)) => {
            iso.insert("cpuShares".into(), json!(s));
        }
        Some(CpuWeight::Weight(w)) => {
            iso.insert("cpuWeight".into(), json!(w));
        }
        // A request is an app's alone: a pod has none.
        Some(CpuWeight::Request(_)) | None => {}
    }
    if let Some(t) = l.tasks {
        iso.insert("tasks".into(), json!(t));
    }
    if !iso.is_empty() {
        let keys: Vec<&str> = iso.keys().map(String::as_str).collect();
        out.warn(
            codes::KUBE_POD_EXTRA,
            "isolators".into(),
            format!(
                "pod-level limits ({}) have no Kubernetes field (limits are per container); kept in {POD_ANNOTATION}",
                keys.join(", ")
            ),
        );
        out.pod.insert("isolators".into(), Value::Object(iso));
    }
    if pod.start == Start::Connection {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "start".into(),
            format!("`start: connection` has no Kubernetes field; kept in {POD_ANNOTATION}"),
        );
        out.pod.insert("start".into(), json!("connection"));
    }
    if pod.network == Network::Private && pod.egress == Egress::None {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "egress".into(),
            format!("`egress: none` (loopback only) has no field of a pod: every Kubernetes pod can open connections out (a NetworkPolicy that denies egress says it on a cluster); kept in {POD_ANNOTATION}"),
        );
        out.pod.insert("egress".into(), json!("none"));
    }
    if pod.user_namespace == UserNamespace::Private && pod.network == Network::Host {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "userNamespace".into(),
            format!("a user namespace of the pod's own on the host's network has no Kubernetes form (it refuses `hostUsers: false` with `hostNetwork: true`, and runs such a pod with its node's ids); kept in {POD_ANNOTATION}"),
        );
        out.pod.insert("userNamespace".into(), json!("private"));
    }
    if !pod.networks.is_empty() {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "networks".into(),
            format!("`networks` has no field of a pod: Kubernetes pods reach one another through the cluster's network and Services; kept in {POD_ANNOTATION}"),
        );
        out.pod.insert("networks".into(), json!(pod.networks));
    }
    if !pod.allow_host.is_empty() {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "allowHost".into(),
            format!("`allowHost` has no field of a pod: a Kubernetes pod reaches its node's services as any other address (a NetworkPolicy limits that on a cluster); kept in {POD_ANNOTATION}"),
        );
        let ports: Vec<Value> = pod
            .allow_host
            .iter()
            .map(|h| match h.protocol {
                Protocol::Tcp => json!({"port": h.port}),
                Protocol::Udp => json!({"port": h.port, "protocol": "udp"}),
            })
            .collect();
        out.pod.insert("allowHost".into(), Value::Array(ports));
    }
    if pod.target != Target::default() {
        out.warn(
            codes::KUBE_POD_EXTRA,
            "target".into(),
            format!("the target systemd and cgroup hierarchy have no Kubernetes field; kept in {POD_ANNOTATION}"),
        );
        out.pod.insert(
            "target".into(),
            json!({"cgroup": pod.target.cgroup.to_string(), "systemd": pod.target.systemd}),
        );
    }
    let mut volumes = Map::new();
    for (i, v) in pod.volumes.iter().enumerate() {
        if let Some(entry) = volume_extras(i, v, out) {
            volumes.insert(v.name.clone(), Value::Object(entry));
        }
    }
    if !volumes.is_empty() {
        out.pod.insert("volumes".into(), Value::Object(volumes));
    }
}

/// What of a volume its Kubernetes volume does not say: read-only (but for a claim, which
/// has the field), the permissions podc makes it with, a memory volume's size as written
/// where Kubernetes would read it otherwise.
fn volume_extras(i: usize, v: &Volume, out: &mut Out) -> Option<Map<String, Value>> {
    let mut entry = Map::new();
    let persistent = matches!(v.kind, VolumeKind::Persistent { .. });
    // A projected or image volume is read-only on Kubernetes too.
    let projected = matches!(v.kind, VolumeKind::Projected { .. });
    let image = matches!(v.kind, VolumeKind::Image { .. });
    if v.read_only && !persistent && !projected && !image {
        // Every mount of it is read-only already; this is for POD.md's list of volumes.
        entry.insert("readOnly".into(), json!(true));
    }
    let (mode, uid, gid, what) = match &v.kind {
        VolumeKind::Host { .. } | VolumeKind::Image { .. } => {
            return (!entry.is_empty()).then_some(entry)
        }
        VolumeKind::Empty { mode, uid, gid } => (*mode, *uid, *gid, "an emptyDir's"),
        VolumeKind::Memory {
            mode,
            uid,
            gid,
            written,
            ..
        } => {
            if !plain_quantity(written) {
                entry.insert("size".into(), json!(written));
            }
            (*mode, *uid, *gid, "an emptyDir's")
        }
        VolumeKind::Persistent { mode, uid, gid } => (*mode, *uid, *gid, "a claim's"),
        VolumeKind::Projected { mode, uid, gid, .. } => (*mode, *uid, *gid, "a projected volume's"),
    };
    // Kubernetes makes an emptyDir world-writable (0777); a claim's volume is the
    // provisioner's, commonly 0755; a projected volume's files are 0644 (podc's default 0755
    // without execute bits).
    let default = if persistent || projected {
        0o755
    } else {
        0o777
    };
    if (mode, uid, gid) != (default, 0, 0) {
        out.warn(
            codes::KUBE_POD_EXTRA,
            format!("volumes[{i}]"),
            format!(
                "volume {:?}: {what} mode, uid and gid have no Kubernetes field; kept in {POD_ANNOTATION}",
                v.name
            ),
        );
        entry.insert("gid".into(), json!(gid));
        entry.insert("mode".into(), json!(format!("{mode:04o}")));
        entry.insert("uid".into(), json!(uid));
    }
    (!entry.is_empty()).then_some(entry)
}

/// The metadata: the pod's annotations and podc's, once every part has added to them.
pub(super) fn object_meta(pod: &Pod, out: &Out) -> ObjectMeta {
    let mut annotations = pod.annotations.clone();
    if !out.pod.is_empty() {
        annotations.insert(
            POD_ANNOTATION.into(),
            json_text(&Value::Object(out.pod.clone())),
        );
    }
    if !out.apps.is_empty() {
        let apps: Map<String, Value> = out
            .apps
            .iter()
            .map(|(k, v)| (k.clone(), Value::Object(v.clone())))
            .collect();
        annotations.insert(APPS_ANNOTATION.into(), json_text(&Value::Object(apps)));
    }
    ObjectMeta {
        annotations: (!annotations.is_empty()).then_some(annotations),
        labels: (!pod.labels.is_empty()).then(|| pod.labels.clone()),
        namespace: pod.namespace.clone(),
        ..Default::default()
    }
}
