//! URLs as Kubernetes' HTTP probe (Go's `net/url` and `net/http`) reads them: the probe's path
//! made into the request's target, and a redirect's `Location` resolved against the URL that
//! answered. Only what decides a probe is kept: the scheme, the authority (`Host`), the host
//! name that decides whether a redirect is followed, the escaped path and the raw query.

/// A URL the probe may request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Lowercase; `http` and `https` are requested, any other is a failure.
    pub scheme: String,
    /// The host and port as written (`127.0.0.1:8443`, `[::1]:8443`, `127.0.0.1`): the `Host`.
    pub authority: String,
    /// The path as sent: escaped as Go's `URL.EscapedPath` escapes it.
    pub path: String,
    /// The query as written, without its `?`; `Some("")` for a bare `?`.
    pub query: Option<String>,
    /// The fragment, which is never sent (Go drops it from the request too).
    pub fragment: Option<String>,
}

/// A reference as Go's `url.Parse` reads it; `None` parts were not written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Reference {
    scheme: Option<String>,
    /// A scheme without `/` after its `:` (`mailto:x`): a URL without a host.
    opaque: bool,
    authority: Option<String>,
    /// The path as written (escaped); `""` when none was.
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

impl Url {
    /// The first URL of a probe: `scheme://host:port` and the probe's path, which Go parses as a
    /// reference (so its query and fragment are split off, and a path of bad escapes is taken
    /// whole as the path, `%` and `?` escaped: Kubernetes' "legacy prober behavior").
    pub fn probe(scheme: &str, host: std::net::IpAddr, port: u16, path: &str) -> Url {
        let authority = std::net::SocketAddr::new(host, port).to_string();
        match parse(path) {
            Ok(r) => Url {
                scheme: scheme.into(),
                authority,
                path: escaped_path(&r.path).unwrap_or_default(),
                query: r.query,
                fragment: r.fragment,
            },
            Err(_) => Url {
                scheme: scheme.into(),
                authority,
                path: escape(path.as_bytes()),
                query: None,
                fragment: None,
            },
        }
    }

    /// The request's target: the escaped path (`/` for none) and the query.
    pub fn target(&self) -> String {
        let mut t = if self.path.is_empty() {
            "/".to_string()
        } else {
            self.path.clone()
        };
        if let Some(q) = &self.query {
            t.push('?');
            t.push_str(q);
        }
        t
    }

    /// The host name without brackets or port, which decides whether a redirect is followed
    /// (Go's `URL.Hostname`).
    pub fn hostname(&self) -> &str {
        split_host_port(&self.authority).0
    }

    /// The port written, if any (Go's `URL.Port`).
    pub fn port(&self) -> &str {
        split_host_port(&self.authority).1
    }

    /// `Location` resolved against this URL (Go's `URL.Parse`): `Err` with why it does not
    /// parse; `Ok(None)` for a URL without a host (`mailto:x`), which no redirect follows.
    pub fn join(&self, location: &str) -> Result<Option<Url>, String> {
        let r = parse(location)?;
        if r.opaque {
            return Ok(None);
        }
        let scheme = r.scheme.clone().unwrap_or_else(|| self.scheme.clone());
        if r.scheme.is_some() || r.authority.is_some() {
            let path = remove_dots(&escaped_path(&r.path)?);
            return Ok(Some(Url {
                scheme,
                authority: r.authority.unwrap_or_default(),
                path: escaped_path(&path)?,
                query: r.query,
                fragment: r.fragment,
            }));
        }
        let (query, fragment) = if r.path.is_empty() && r.query.is_none() {
            (self.query.clone(), r.fragment.or(self.fragment.clone()))
        } else {
            (r.query, r.fragment)
        };
        let reference = escaped_path(&r.path)?;
        let merged = if reference.is_empty() {
            self.path.clone()
        } else if reference.starts_with('/') {
            reference
        } else {
            let base = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            [base, &reference].concat()
        };
        Ok(Some(Url {
            scheme,
            authority: self.authority.clone(),
            path: escaped_path(&remove_dots(&merged))?,
            query,
            fragment,
        }))
    }
}

impl std::fmt::Display for Url {
    /// `https://127.0.0.1:8443/healthz?x`, as the `Referer` of a redirected request.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.target())?;
        if let Some(frag) = self.fragment.as_ref().filter(|f| !f.is_empty()) {
            write!(f, "#{frag}")?;
        }
        Ok(())
    }
}

/// Whether `location` names a scheme (Go's `URL.IsAbs`).
pub fn has_scheme(location: &str) -> bool {
    parse(location).is_ok_and(|r| r.scheme.is_some())
}

/// Go's `url.Parse` of a reference, as far as a probe needs it.
fn parse(raw: &str) -> Result<Reference, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("it has a control character".into());
    }
    let mut r = Reference::default();
    let (rest, fragment) = match raw.split_once('#') {
        Some((rest, f)) => (rest, Some(f)),
        None => (raw, None),
    };
    if let Some(f) = fragment {
        unescape(f)?;
        r.fragment = Some(f.to_string());
    }
    let mut rest = rest;
    if let Some((scheme, after)) = scheme(rest)? {
        r.scheme = Some(scheme.to_ascii_lowercase());
        rest = after;
    }
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
        r.query = Some(String::new());
    } else if let Some((before, q)) = rest.split_once('?') {
        r.query = Some(q.to_string());
        rest = before;
    }
    if !rest.starts_with('/') {
        if r.scheme.is_some() {
            r.opaque = true;
            return Ok(r);
        }
        let first = rest.split('/').next().unwrap_or("");
        if first.contains(':') {
            return Err("its first path segment has a colon".into());
        }
    }
    if (r.scheme.is_some() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        // The user information goes no further: a probe sends no credentials of a URL.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_host(host)?;
        r.authority = Some(String::from_utf8_lossy(&unescape(host)?).into_owned());
        rest = &after[end..];
    }
    unescape(rest)?;
    r.path = rest.to_string();
    Ok(r)
}

/// The scheme of `raw` and what follows its `:`, if it starts with one (Go's `getScheme`).
fn scheme(raw: &str) -> Result<Option<(&str, &str)>, String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("it has no scheme before its `:`".into()),
            b':' => return Ok(Some((&raw[..i], &raw[i + 1..]))),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// A host as Go's `parseHost` takes it: `[v6]` with an optional port, or a name whose port,
/// after its last `:`, is digits.
fn check_host(host: &str) -> Result<(), String> {
    let port = if let Some(v6) = host.strip_prefix('[') {
        let Some(end) = v6.find(']') else {
            return Err(format!("host {host:?} has no `]`"));
        };
        &v6[end + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !(port.is_empty() || port.starts_with(':') && digits(&port[1..])) {
        return Err(format!("invalid port {port:?} after host"));
    }
    let allowed =
        |c: u8| c >= 0x80 || c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~%".contains(&c);
    match host.bytes().find(|&c| !allowed(c)) {
        Some(c) => Err(format!("invalid character {:?} in host name", c as char)),
        None => Ok(()),
    }
}

/// `host:port` → (`host`, `port`); brackets of an IPv6 host removed (Go's `splitHostPort`).
fn split_host_port(authority: &str) -> (&str, &str) {
    let (mut host, mut port) = (authority, "");
    if let Some(i) = authority.rfind(':') {
        if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) {
            (host, port) = (&authority[..i], &authority[i + 1..]);
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        host = inner;
    }
    (host, port)
}

/// The bytes of a `%`-escaped text; a `%` without two hex digits is an error.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|&c| (c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
            let mut end = (i + 3).min(s.len());
            while !s.is_char_boundary(end) {
                end += 1;
            }
            return Err(format!("invalid URL escape {:?}", &s[i..end]));
        };
        out.push((high * 16 + low) as u8);
        i += 3;
    }
    Ok(out)
}

/// Whether Go leaves byte `c` of a path as it is (`shouldEscape` in its path mode).
fn path_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&c)
}

/// `s` with every byte a path must not hold as it is `%`-escaped (Go's `escape`).
fn escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if path_byte(c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// A path as written, as Go sends it (`setPath`, then `EscapedPath`): as it is where each byte
/// may be there (`%` escapes included), else unescaped and escaped again.
fn escaped_path(raw: &str) -> Result<String, String> {
    let plain = unescape(raw)?;
    let valid = raw
        .bytes()
        .all(|c| path_byte(c) || b"!'()*[]%".contains(&c));
    Ok(if valid {
        raw.to_string()
    } else {
        escape(&plain)
    })
}

/// `.` and `..` segments removed, the result starting with one `/` (Go's `resolvePath`).
fn remove_dots(full: &str) -> String {
    if full.is_empty() {
        return String::new();
    }
    let mut dst = String::from("/");
    let mut first = true;
    let mut elem = "";
    for e in full.split('/') {
        elem = e;
        match e {
            "." => first = false,
            ".." => match dst[1..].rfind('/') {
                Some(i) => dst.truncate(i + 1),
                None => {
                    dst.truncate(1);
                    first = true;
                }
            },
            _ => {
                if !first {
                    dst.push('/');
                }
                dst.push_str(e);
                first = false;
            }
        }
    }
    if elem == "." || elem == ".." {
        dst.push('/');
    }
    if dst.len() > 1 && dst.as_bytes()[1] == b'/' {
        dst.remove(0);
    }
    dst
}
