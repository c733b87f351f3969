//! OCI image references: `registry.example[:port]/path/name[:tag][@sha256:<hex>]`.
//!
//! The grammar is the distribution project's (`docker/distribution/reference`). A name whose
//! first component is not a registry (it has no `.` or `:` and is not `localhost`) is a short
//! name, and [`Reference::parse_normalized`] reads it as Docker and Kubernetes' runtimes
//! (containerd, CRI-O with `docker.io` as its registry) do: `nginx` is
//! `docker.io/library/nginx:latest`, `team/app` is `docker.io/team/app:latest`. What a manifest
//! or a command line says goes through it; the resolver warns about a short name (P1008), since a
//! reviewed manifest should say which registry it trusts. [`Reference::parse`] takes only a full
//! reference: what podc wrote itself (a plan, a store's name) and an archive's own names (an OCI
//! layout's `latest` is a tag, not an image named `latest`).

use std::fmt;

/// A digest of the one algorithm podc accepts: `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(match s.split_once(':') {
                Some((alg, _)) => {
                    format!("digest algorithm `{alg}` is not supported (only sha256)")
                }
                None => "a digest is `sha256:` and 64 hex digits".into(),
            });
        };
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("a sha256 digest has 64 lowercase hex digits".into());
        }
        Ok(Digest(s.to_string()))
    }
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_hasher(sha2::Sha256::new_with_prefix(bytes))
    }
    /// The digest a finished hasher holds.
    pub fn from_hasher(h: sha2::Sha256) -> Digest {
        use sha2::Digest as _;
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in h.finalize() {
            s.push_str(&format!("{b:02x}"));
        }
        Digest(s)
    }
    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The hex digits alone (a file name in the store).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed image reference. At least one of `tag` and `digest` is set: a reference with
/// neither means `:latest`, and [`Reference::parse`] says so by setting `tag`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `host`, `host:port`, `localhost`, `localhost:5000`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/nginx`, `team/app` (no registry, no tag).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Longest repository name (registry included), as distribution allows.
const MAX_NAME: usize = 255;

/// The registry a short name means: Docker Hub, as Docker and Kubernetes' runtimes read one.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The repository namespace of Docker Hub's official images (`nginx` is `library/nginx`).
const OFFICIAL_NAMESPACE: &str = "library";

impl Reference {
    /// Parses a full reference (its registry named), or says what is wrong with it (and, for
    /// a short name, the full form meant).
    pub fn parse(s: &str) -> Result<Reference, String> {
        match Reference::parse_any(s)? {
            (r, false) => Ok(r),
            (r, true) => Err(format!(
                "image reference {s:?} does not name its registry (did you mean \"{r}\"?)"
            )),
        }
    }

    /// Parses a reference that may be a short name, normalised as Docker and Kubernetes'
    /// runtimes do: no registry means [`DEFAULT_REGISTRY`], a single component is in
    /// `library/`, no tag and no digest means `:latest`. `true` with it says it was short.
    pub fn parse_normalized(s: &str) -> Result<(Reference, bool), String> {
        Reference::parse_any(s)
    }

    /// A full reference, or a short name made full; `true` says it was short.
    fn parse_any(s: &str) -> Result<(Reference, bool), String> {
        if s.is_empty() {
            return Err("an image reference cannot be empty".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("an image reference cannot contain {c:?}"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(format!(
                    "tag {t:?} is not valid: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
                ));
            }
        }
        if name.len() > MAX_NAME {
            return Err(format!("an image name is at most {MAX_NAME} characters"));
        }
        let full;
        let (registry, repository, was_short) =
            match name.split_once('/').filter(|(r, _)| is_registry(r)) {
                Some((registry, repository)) => (registry, repository, false),
                None => {
                    full = if name.contains('/') {
                        name.to_string()
                    } else {
                        format!("{OFFICIAL_NAMESPACE}/{name}")
                    };
                    if DEFAULT_REGISTRY.len() + 1 + full.len() > MAX_NAME {
                        return Err(format!(
                            "an image name is at most {MAX_NAME} characters, with the \
                             `{DEFAULT_REGISTRY}/` a short name means"
                        ));
                    }
                    (DEFAULT_REGISTRY, full.as_str(), true)
                }
            };
        check_registry(registry)?;
        for component in repository.split('/') {
            if !is_path_component(component) {
                return Err(format!(
                    "{component:?} is not a valid part of a repository name: lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
                ));
            }
        }
        let r = Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: match (tag, &digest) {
                (Some(t), _) => Some(t.to_string()),
                (None, Some(_)) => None,
                (None, None) => Some("latest".into()),
            },
            digest,
        };
        Ok((r, was_short))
    }

    /// Whether the registry is on this host's loopback: `localhost`, `127.x.y.z` or `[::1]`,
    /// with any port. Only such registries may be spoken to over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => self.registry.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `registry/repository` (no tag or digest).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether the first component of a name is a registry (as distribution decides: it has a
/// `.` or a `:`, or is `localhost`).
fn is_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

fn check_registry(r: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{r:?} is not a valid registry host (a host name or address, optionally with `:port`)"
        ))
    };
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return bad();
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return bad();
        }
        match after {
            "" => (h, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad(),
            },
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) || p.starts_with('0') {
            return bad();
        }
    }
    if r.starts_with('[') {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return bad();
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for (s, reg, repo, tag, dig) in [
            ("docker.io/library/nginx:1.25", "docker.io", "library/nginx", Some("1.25"), false),
            ("localhost:5000/a/b", "localhost:5000", "a/b", Some("latest"), false),
            ("127.0.0.1:5000/busy_box@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "127.0.0.1:5000", "busy_box", None, true),
            ("quay.io/x/y-z:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "quay.io", "x/y-z", Some("v1"), true),
            ("[::1]:5000/a:t", "[::1]:5000", "a", Some("t"), false),
        ] {
            let r = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref(), r.digest.is_some()), (reg, repo, tag, dig), "{s}");
            if !s.ends_with("/a/b") {
                assert_eq!(r.to_string(), s);
            }
        }
    }

    #[test]
    fn short_names_mean_docker_hub() {
        let pin = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for (s, full) in [
            ("nginx", "docker.io/library/nginx:latest".to_string()),
            ("busybox:1.28", "docker.io/library/busybox:1.28".into()),
            ("bitnami/redis", "docker.io/bitnami/redis:latest".into()),
            ("a/b/c:v1", "docker.io/a/b/c:v1".into()),
            (
                &format!("nginx@{pin}"),
                format!("docker.io/library/nginx@{pin}"),
            ),
            (
                &format!("nginx:1.27@{pin}"),
                format!("docker.io/library/nginx:1.27@{pin}"),
            ),
            // `localhost` alone is a name; with a path after it, a registry.
            ("localhost", "docker.io/library/localhost:latest".into()),
        ] {
            let (r, short) = Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(short, "{s}");
            assert_eq!(r.to_string(), full, "{s}");
            // The full name is what it means: it parses to itself, not short.
            assert_eq!(
                Reference::parse_normalized(&full).unwrap(),
                (r.clone(), false)
            );
            assert_eq!(Reference::parse(&full).unwrap(), r);
            // The strict parser refuses the short name, naming the full one.
            let e = Reference::parse(s).unwrap_err();
            assert!(e.contains(&format!("did you mean \"{full}\"")), "{s}: {e}");
        }
        // A first component with `.` or `:`, or `localhost`, is a registry, as before.
        for s in [
            "localhost/a",
            "localhost:5000/a:1",
            "registry.example/a",
            "host:5000/a",
        ] {
            let (r, short) = Reference::parse_normalized(s).unwrap();
            assert!(!short, "{s}");
            assert_eq!(r, Reference::parse(s).unwrap());
        }
        // What is wrong with a short name is wrong with its full form too.
        for (s, want) in [
            ("Nginx", "not a valid part"),
            ("nginx:-x", "tag"),
            ("team//app", "not a valid part"),
            (&"a".repeat(240), "at most 255"),
        ] {
            let e = Reference::parse_normalized(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_a_reason() {
        for (s, want) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("team/app", "docker.io/team/app:latest"),
            ("docker.io/Nginx", "not a valid part"),
            ("docker.io/a:", "tag"),
            ("docker.io/a:-x", "tag"),
            ("docker.io/a@sha512:00", "only sha256"),
            ("docker.io/a@sha256:ABC", "64 lowercase"),
            ("docker.io/a//b", "not a valid part"),
            ("docker.io:0/a", "registry host"),
            ("-x.io/a", "registry host"),
            ("a.io/b c", "cannot contain"),
            ("", "empty"),
        ] {
            let e = Reference::parse(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn loopback_registries_are_told_apart() {
        for (s, lo) in [
            ("localhost/a", true),
            ("localhost:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("127.1.2.3/a", true),
            ("[::1]:5000/a", true),
            ("10.0.0.1:5000/a", false),
            ("localhost.example.com/a", false),
            ("docker.io/a", false),
        ] {
            assert_eq!(Reference::parse(s).unwrap().is_loopback(), lo, "{s}");
        }
    }

    #[test]
    fn digests_are_computed_and_checked() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.hex().len(), 64);
    }
}
