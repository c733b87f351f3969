//! The bridge to Kubernetes: a checked [`crate::pod::Pod`] written as a Kubernetes Pod or
//! Deployment ([`out`]), and a Kubernetes Pod or Deployment read as a manifest ([`import`]).
//!
//! podc's manifest stays the primary format. What Kubernetes has a field for goes into that
//! field; what it has none for goes, as JSON, into two annotations of the object that import
//! reads back (`podc/pod`, `podc/apps`, see [`out`]), and is a warning. This module never
//! reads or writes files: the command line does.

pub mod dollar;
pub mod import;
pub mod out;

use std::collections::BTreeMap;

/// The annotation with the pod-level settings Kubernetes has no field for.
pub const POD_ANNOTATION: &str = "podc/pod";
/// The annotation with the per-app settings Kubernetes has no field for, keyed by app name.
pub const APPS_ANNOTATION: &str = "podc/apps";
/// The label a Deployment selects its pods by.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// Which object `podc kube` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Pod,
    /// An apps/v1 Deployment of one replica whose template is the pod.
    Deployment,
}

/// What `podc kube` is told besides the pod.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    pub kind: Kind,
    /// App name → image reference, for apps whose image is a root filesystem path (and, if
    /// given, in place of an app's own reference).
    pub images: BTreeMap<String, String>,
}

/// The capabilities containerd and CRI-O give a container (and podc an app without a
/// `capabilities` isolator: [`crate::pod::DEFAULT_CAPABILITIES`], the same set).
pub const RUNTIME_CAPABILITIES: &[&str] = crate::pod::DEFAULT_CAPABILITIES;

/// `cpuShares` as a CPU request in millicores: 1024 shares are one CPU, rounded to the
/// nearest millicore (halves up). Import reads a request back as `cpuRequest`, which is
/// weighed otherwise, so `podc kube` keeps the weight itself in `podc/apps` too.
pub fn shares_to_millis(shares: u64) -> u64 {
    (shares * 1000 + 512) / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_millicores() {
        assert_eq!(shares_to_millis(1024), 1000);
        assert_eq!(shares_to_millis(512), 500);
        assert_eq!(shares_to_millis(2), 2);
        assert_eq!(shares_to_millis(100), 98); // 97.66
        assert_eq!(shares_to_millis(262_144), 256_000);
    }
}
