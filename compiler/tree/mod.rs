//! The contract between `podc build`, `podc launch` and the host commands: what a built tree
//! holds and where ([`layout`]), the mount plan the launcher follows ([`plan`], with the
//! rules of its cgroup steps in `cgroup` and of its items in `item_rules`), and the record of
//! the images it runs ([`images`]). It knows the
//! manifest's words, systemd's syntax and podc's bounds, and nothing of how a tree is made.

mod cgroup;
pub mod images;
mod item_rules;
pub mod layout;
pub mod plan;
mod plan_rules;
