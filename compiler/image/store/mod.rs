//! The image store (`/var/lib/podc/images`): content-addressed, verified, shared, immutable.
//!
//! Layout (ARCHITECTURE.md, "The image store"), every directory 0700 and root's:
//! - `blobs/sha256/<hex>`: verified blobs (indexes, manifests, configs, layers), read-only.
//! - `roots/<manifest hex>/`: one unpacked root per image manifest (`rootfs/`) and its `seal`
//!   (what it held when it was unpacked, `seal.rs`: a root changed afterwards is refused rather
//!   than run), made once in `tmp/` and renamed here whole; never written after it is visible.
//! - `refs/<percent-encoded name>`: `registry/repo:tag` → `sha256:<manifest hex>\n`, written
//!   last (temporary file and rename), only once the root it names is complete.
//! - `tmp/`: work in progress; each entry is held with `flock` by the process making it, and
//!   an entry nobody holds is stale and removed by the next ingest or gc.
//! - `lock`: ingests and launches (while they resolve and take their lease) hold it shared,
//!   gc and rm exclusive, so gc never removes what an ingest is about to name or a launch is
//!   about to mount.
//! - `leases/`: one file per running launch, held with a shared `flock` by the launcher and its
//!   nspawn, naming the roots the pod runs (`lease.rs`); gc keeps those, and every root some
//!   mount namespace of the host has mounted.
//!
//! A `kill -9` at any moment leaves only complete, verified blobs in `blobs/`, complete roots
//! in `roots/` and refs to complete roots: everything becomes visible by one `rename`.

mod documents;
mod fetch;
mod files;
mod ingest;
mod layout;
mod lease;
mod query;
mod seal;
#[cfg(test)]
mod tests;

pub use documents::{host_arch, layer_compression, pick_platform, MAX_DOCUMENT};
pub use fetch::Event;
pub use layout::{default_dir, ref_file_name, ref_of_file_name, Collected, Image, Listed, Store};
pub use lease::{Holder, Launching, Lease, Running};
pub use query::names_by_digest;
pub use seal::Depth;
