//! How a command ended: the process's exit status.

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Input = 1,
    Usage = 2,
}
