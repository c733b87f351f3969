//! The names Kubernetes takes for keys of labels and annotations, label values and
//! namespaces: a manifest's `labels`, `annotations` and `namespace` are written back into a
//! Kubernetes object by `podc kube`, so they are held to these rules where they are read.

/// Whether Kubernetes takes `key` as a label or annotation key: a qualified name,
/// `[prefix/]name`, the name up to 63 characters of `[A-Za-z0-9_.-]` beginning and ending with
/// a letter or digit, the prefix a DNS subdomain (lowercase, up to 253 characters).
pub fn qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok =
        prefix.is_none_or(|p| (1..=253).contains(&p.len()) && p.split('.').all(is_dns_label));
    label_value(name) && !name.is_empty() && prefix_ok
}

/// Whether Kubernetes takes `value` as a label value: empty, or up to 63 characters of
/// `[A-Za-z0-9_.-]` beginning and ending with a letter or digit.
pub fn label_value(value: &str) -> bool {
    let b = value.as_bytes();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    b.is_empty()
        || (b.len() <= 63
            && b.iter().all(|&c| alnum(c) || b"-_.".contains(&c))
            && alnum(b[0])
            && alnum(b[b.len() - 1]))
}

/// Whether `name` is a DNS label (RFC 1123): up to 63 lowercase letters, digits and `-`,
/// beginning and ending with a letter or digit. A namespace is one.
pub fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
