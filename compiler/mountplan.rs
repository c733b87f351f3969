//! The mount plan: everything the launcher must mount, in order, as data.
//!
//! The compiler writes it to `mounts.toml`; `podc launch` reads it back through the same
//! types, so there is one definition of the format. Container paths are absolute paths inside
//! the pod's root; cgroup paths are relative to the pod's own cgroup on the host, which the
//! launcher learns from `/proc/self/cgroup` when it runs.

use serde::{Deserialize, Serialize};

use crate::manifest::CgroupVersion;

/// Format version of `mounts.toml`.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MountPlan {
    pub format: u32,
    pub pod: String,
    pub cgroup: CgroupVersion,
    /// The apps, in manifest order (their units are `<app>.service`).
    pub apps: Vec<String>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "do",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Step {
    /// Make a fresh, empty directory for an empty volume, for this run of the pod.
    MakeVolume {
        volume: String,
        /// Octal permission bits, e.g. "0755".
        mode: String,
        uid: u32,
        gid: u32,
    },
    /// Bind a host path into the pod's root before nspawn starts.
    BindHost {
        source: String,
        target: String,
        read_only: bool,
    },
    /// Bind an empty volume's directory into the pod's root before nspawn starts.
    BindVolume {
        volume: String,
        target: String,
        read_only: bool,
    },
    /// A tmpfs inside the container (an nspawn `--tmpfs`).
    Tmpfs { target: String },
    /// Create a directory below the pod's cgroup in one controller's hierarchy.
    CgroupDir { controller: String, path: String },
    /// Bind a cgroup directory or file of the pod into the container (an nspawn `--bind`);
    /// `path` is relative to the pod's cgroup, empty for the pod's cgroup itself.
    CgroupBind {
        controller: String,
        path: String,
        target: String,
        read_only: bool,
    },
}

impl MountPlan {
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a mount plan always serializes")
    }

    pub fn from_toml(text: &str) -> Result<MountPlan, toml::de::Error> {
        toml::from_str(text)
    }
}
