//! The bounds podc keeps to, so that any input is handled in bounded time and memory.
//! YAML documents are also bounded by serde-saphyr's budget (events, aliases, nesting).

/// The largest manifest podc reads; larger files are refused after reading this much.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
/// The most apps, and the most volumes, one pod may have.
pub const MAX_ITEMS: usize = 1000;
/// The most documents podc reads in one file (each Pod or Deployment of it is read in a pass
/// over all of them, so the bound keeps a file's reading linear in practice).
pub const MAX_DOCUMENTS: usize = 100;
/// systemd's longest unit-file line (LONG_LINE_MAX): a longer one is not read at all.
pub const MAX_UNIT_LINE: usize = 1 << 20;
/// The most entries of a `dir` config item's or secret's directory the launcher reads (its
/// keys, and what it skips).
pub const MAX_DIR_KEYS: usize = 1000;
/// The most bytes the launcher reads from one item taken with `environmentFrom`, as systemd
/// passes at most this much of credentials to one app.
pub const MAX_ENV_FROM_BYTES: usize = 1 << 20;
/// The most bytes the launcher copies from one source of a projected volume: a Kubernetes
/// ConfigMap or Secret holds at most this much.
pub const MAX_PROJECTED_BYTES: usize = 1 << 20;
