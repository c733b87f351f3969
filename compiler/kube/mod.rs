//! Kubernetes, both directions: a podc pod written as Kubernetes YAML, and a Kubernetes Pod
//! (or a Deployment's pod template) read as a podc manifest.
//!
//! podc's own manifest stays the primary format; Kubernetes is a bridge. What the two formats
//! share maps field for field; whatever has no Kubernetes equivalent travels in the
//! annotations `podc/pod` and `podc/apps`, so that podc → Kubernetes → podc gives the same
//! units. This folder never touches the file system: text in, text or a manifest out.

pub mod import;

/// The annotation holding pod-level settings Kubernetes cannot carry (JSON, keys sorted).
pub const POD_ANNOTATION: &str = "podc/pod";
/// The annotation holding per-app settings Kubernetes cannot carry: a JSON object keyed by app
/// name.
pub const APPS_ANNOTATION: &str = "podc/apps";
