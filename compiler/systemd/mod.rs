//! What systemd accepts: how a value is written in a unit file so that systemd reads it back
//! exactly ([`escape`]), and which directive each systemd version and cgroup layout has
//! ([`target`]).

pub mod argv;
pub mod escape;
pub mod resources;
pub mod target;
