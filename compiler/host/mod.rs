//! Operator commands on a systemd host: `podc install`, `uninstall`, `status` and `logs`.
//!
//! Everything these commands learn about a pod comes from what `podc build` wrote: the pod's
//! name and apps from the tree's `mounts.toml`, its install directory from the host unit's
//! `ExecStart=<podc> launch <dir>` (the unit is what systemd runs, so it is the truth), whether
//! it has published ports from the presence of `podc-<pod>.socket`. Nothing is guessed.
//!
//! systemd is driven through `systemctl` behind the [`Systemd`] trait, so the file work (the
//! atomic copy and swap, the units) is tested on this machine against a temporary root with a
//! recording stand-in, and the parsing and formatting of `systemctl show` and cgroup files are
//! pure functions tested with fixtures of real file contents. The VM hosts (tests/vm/guest.sh)
//! prove the real thing.

mod data;
mod exec;
mod install;
mod logs;
mod marker;
mod running;
mod status;
mod systemd;
mod tree;
mod units;
mod usage;

pub use data::{persistent_volumes, volumes_of, VolumeStatus, MAX_COUNTED};
pub use exec::*;
pub use install::*;
pub use logs::*;
pub use running::*;
pub use status::*;
pub use systemd::*;
pub use tree::*;
pub use units::check_tree;
pub use usage::*;
