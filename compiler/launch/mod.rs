//! Launch: a built pod tree to a running pod, by way of `systemd-nspawn --boot`.
//!
//! [`prepare`] turns the tree's [`MountPlan`] and what it knows about the host ([`Host`]) into
//! a list of [`Action`]s and the exact nspawn command line; it touches nothing, so `--dry-run`
//! and the tests can show it. [`preflight`] checks what must exist on the host. [`execute`]
//! performs the actions in a private mount namespace (so every mount vanishes with the pod)
//! and then *execs* nspawn; under a service manager that waits for readiness (the host
//! wrapper unit) it stays nspawn's parent instead and passes its readiness on
//! ([`supervise`]). The exit status of the pod is nspawn's. Images by reference are looked
//! up by the digests the tree recorded ([`read_record`]; what was not recorded is, before
//! anything is mounted), under a lease in the image store that the launcher and then nspawn
//! hold for as long as the pod runs ([`Images::look_up_leased`]), so that `podc image gc`
//! leaves them alone. A pod with a gRPC or HTTPS probe gets
//! the launcher's own executable, whose `probe-grpc` ([`grpc_probe`]) or `probe-https`
//! ([`https_probe`]) command makes the call.

mod action;
mod checks;
pub mod grpc_probe;
mod host;
mod host_paths;
pub mod https_probe;
mod items;
pub mod network;
mod paths;
mod perform;
mod plan_read;
mod prepare;
mod project;
mod record;
mod supervise;
pub mod target_check;
#[cfg(test)]
mod tests;
pub mod userns;
mod users;
mod volume_shift;
mod volumes;
mod within;

pub use action::*;
pub use checks::*;
pub use host::*;
pub use items::{check_items, env_text, env_value, read_every, Every, MAX_CREDENTIAL_BYTES};
pub use paths::*;
pub use perform::*;
pub use plan_read::*;
pub use prepare::*;
pub use project::{read_files, Files};
pub use record::*;
pub use supervise::{exit_code, manager_socket, NOTIFY_ENV};
pub use users::*;
pub use volumes::check_persistent;
