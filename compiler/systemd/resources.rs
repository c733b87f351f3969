//! How systemd writes a resource limit.

/// `CPUQuota=` value: thousandths of a core as a percentage of one CPU.
pub fn cpu_percent(millis: u64) -> String {
    if millis.is_multiple_of(10) {
        format!("{}%", millis / 10)
    } else {
        format!("{}.{}%", millis / 10, millis % 10)
    }
}
