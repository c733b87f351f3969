//! The command line as clap reads it: every command and flag, with their help texts (which are
//! also the man pages and shell completions).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::output::MessageFormat;
use crate::manifest::CgroupVersion;
use crate::resolve::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "podc",
    version,
    about = "Compile pod manifests into systemd units for systemd-nspawn"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile manifests into unit trees (one directory per pod under the output directory).
    Build {
        #[command(flatten)]
        args: CompileArgs,
        /// Output directory; each pod's tree is DIR/<pod>.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "DIR",
            default_value = "build"
        )]
        output: PathBuf,
        /// Write nothing; print a diff against the existing trees and exit 1 if they differ.
        #[arg(long)]
        check: bool,
    },
    /// Validate manifests: print diagnostics, set the exit status.
    Check {
        #[command(flatten)]
        args: CompileArgs,
    },
    /// Write manifests as Kubernetes YAML (one document per manifest), with what Kubernetes
    /// cannot say in the podc/pod and podc/apps annotations.
    Kube {
        #[command(flatten)]
        args: KubeArgs,
    },
    /// Run a built pod: mount its plan and exec systemd-nspawn (as root).
    Launch {
        /// The pod's tree (a directory `podc build` wrote, e.g. build/web).
        tree: PathBuf,
        /// Print every step and the nspawn command line, one per line; do nothing.
        #[arg(long, conflicts_with = "check")]
        dry_run: bool,
        /// Look at the host as the launch would (nspawn, images, volume sources, cgroup
        /// controllers, user and group names in the images, mount points, config and secret
        /// files); change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Print the JSON Schema (draft-07) of the manifest.
    Schema,
    /// Install a built tree on this systemd host: its install directory and host unit(s).
    Install {
        /// The pod's tree (a directory `podc build` wrote, e.g. build/web).
        tree: PathBuf,
        /// Enable and start the pod (its socket unit for a `start: connection` pod).
        #[arg(long)]
        now: bool,
        /// Replace a running pod: stop it, swap in the new tree, start it again.
        #[arg(long)]
        restart: bool,
        /// Install into the file system tree DIR (an image being made, a test) instead of this
        /// host: print the systemctl commands instead of running them.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Stop and disable an installed pod, remove its units and its install directory; its
    /// persistent volumes stay unless --delete-data.
    Uninstall {
        pod: String,
        /// Keep the install directory (the pod's journal and state).
        #[arg(long)]
        keep_data: bool,
        /// Remove the pod's persistent volumes too (/var/lib/podc/volumes/POD), which are kept
        /// otherwise; for a pod uninstalled before, remove the volumes it left.
        #[arg(long, conflicts_with = "keep_data")]
        delete_data: bool,
        /// Uninstall from the file system tree DIR instead of this host: print the systemctl
        /// commands instead of running them.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Show an installed pod's host unit, and each app's state, limits and usage.
    Status {
        pod: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an installed pod's journal (journalctl), or one app's.
    Logs {
        pod: String,
        app: Option<String>,
        /// Follow: print new entries as they come.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Run a command in a running pod's app, as the app runs: in its root, namespaces and
    /// cgroups, as its user, with its environment (as root; on any host, with or without
    /// systemd). The exit status is the command's.
    Exec {
        /// The pod: its name, or its tree (a path with a `/`) for a pod launched by hand.
        pod: String,
        /// The app.
        app: String,
        /// The command and its arguments, after `--`; looked up in the app's PATH.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Manage the image store: import, list, remove, collect garbage.
    Image {
        #[command(subcommand)]
        command: crate::cli::image::ImageCommand,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a man page per command into DIR (podc.1, podc-build.1, ...).
    #[command(hide = true)]
    Man { dir: PathBuf },
    /// One gRPC health check (grpc.health.v1.Health/Check over plaintext HTTP/2), for the
    /// health script of a pod with a gRPC probe: exit 0 when the answer is SERVING, else 1 with
    /// the reason.
    #[command(hide = true, name = crate::tree::layout::PROBE_COMMAND)]
    ProbeGrpc {
        host: std::net::IpAddr,
        #[arg(value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// The service asked for; none or "" asks for the whole server.
        service: Option<String>,
        /// How long the whole call may take.
        #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
        timeout_ms: u64,
    },
    /// One HTTPS health check (GET over TLS, any certificate accepted, redirects to the same
    /// host followed), for the health script of a pod with an HTTPS probe: exit 0 on a status
    /// 200..399, else 1 with the reason.
    #[command(hide = true, name = crate::tree::layout::PROBE_HTTPS_COMMAND)]
    ProbeHttps {
        host: std::net::IpAddr,
        #[arg(value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// The path asked for (with its query).
        path: String,
        /// Headers: a name, then its value, for each.
        #[arg(value_name = "NAME VALUE")]
        headers: Vec<String>,
        /// How long the whole probe may take, redirects included.
        #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
        timeout_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CgroupArg {
    V1,
    V2,
}

/// Everything `build` and `check` share, so that both judge a manifest the same way: the
/// manifests, the target, the install paths, and how diagnostics are shown. [`validate`]
/// checks them once for both.
#[derive(Debug, Clone, clap::Args)]
pub struct CompileArgs {
    /// Manifests (.yaml, .yml or .toml); `-` reads one from standard input.
    #[arg(required = true)]
    pub(super) manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub(super) target: TargetArgs,
    #[command(flatten)]
    pub(super) objects: ObjectArgs,
    /// Where the tree is installed on the host [default: /var/lib/podc/<pod>].
    #[arg(long, value_name = "DIR")]
    pub(super) install_dir: Option<String>,
    /// Where podc is installed on the host.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/podc")]
    pub(super) podc_path: String,
    /// Treat warnings as errors: exit 1 and write nothing when there are any.
    #[arg(long)]
    pub(super) deny_warnings: bool,
    /// How diagnostics are written: rustc-style text on stderr, JSON lines or one SARIF 2.1.0
    /// log on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "human")]
    pub(super) message_format: MessageFormat,
    /// The format of a manifest read from standard input (`-`).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "yaml")]
    pub(super) stdin_format: StdinFormat,
}

/// `podc kube`'s flags: the manifests and how they are checked (as `podc check` does), and
/// what to write.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Manifests (.yaml, .yml or .toml); `-` reads one from standard input.
    #[arg(required = true)]
    pub(super) manifests: Vec<PathBuf>,
    /// Write the YAML to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(super) output: Option<PathBuf>,
    /// The object to write: a Pod, or a Deployment of one replica with the pod as template.
    #[arg(long, value_enum, default_value = "Pod")]
    pub(super) kind: KindArg,
    /// The image reference of an app whose image is a root filesystem path (APP=REF); may be
    /// repeated.
    #[arg(long = "image", value_name = "APP=REF")]
    pub(super) images: Vec<String>,
    #[command(flatten)]
    pub(super) target: TargetArgs,
    #[command(flatten)]
    pub(super) objects: ObjectArgs,
    /// Treat warnings as errors: exit 1 and write nothing when there are any.
    #[arg(long)]
    pub(super) deny_warnings: bool,
    /// How diagnostics are written: rustc-style text on stderr, JSON lines or one SARIF 2.1.0
    /// log (on stdout, so give -o with json and sarif).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "human")]
    pub(super) message_format: MessageFormat,
    /// The format of a manifest read from standard input (`-`).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "yaml")]
    pub(super) stdin_format: StdinFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    #[value(name = "Pod")]
    Pod,
    #[value(name = "Deployment")]
    Deployment,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StdinFormat {
    Yaml,
    Toml,
}

/// ConfigMaps and Secrets a Kubernetes pod takes that are not in its file, and where its
/// seccomp profiles are.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ObjectArgs {
    /// A ConfigMap for a Kubernetes pod: a YAML file of ConfigMaps, or a directory whose files
    /// are the keys of a ConfigMap named after it; may be repeated.
    #[arg(long = "configmap", value_name = "FILE|DIR")]
    pub(super) config_maps: Vec<PathBuf>,
    /// A Secret for a Kubernetes pod: a directory of the host whose files are its keys, named
    /// after the directory or NAME. Only the file names are read at build; the values are read
    /// at launch. May be repeated.
    #[arg(long = "secret", value_name = "[NAME=]DIR")]
    pub(super) secrets: Vec<String>,
    /// Where a Kubernetes pod's `Localhost` seccomp profiles are (the kubelet's seccomp root):
    /// `localhostProfile` is a path below it, read when the pod is built.
    #[arg(long = "seccomp-dir", value_name = "DIR", default_value = crate::kube::import::SECCOMP_DIR)]
    pub(super) seccomp_dir: PathBuf,
}

/// The target flags `build` and `check` share, so that both judge a manifest the same way.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// cgroup hierarchy of the target host (overrides the manifest).
    #[arg(long, value_enum)]
    pub(super) cgroup: Option<CgroupArg>,
    /// systemd version of the target (overrides the manifest).
    #[arg(long, value_name = "N")]
    pub(super) systemd: Option<u32>,
}

impl TargetArgs {
    pub(super) fn overrides(&self) -> Overrides {
        Overrides {
            cgroup: self.cgroup.map(|c| match c {
                CgroupArg::V1 => CgroupVersion::V1,
                CgroupArg::V2 => CgroupVersion::V2,
            }),
            systemd: self.systemd,
        }
    }
}
