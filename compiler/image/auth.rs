//! Which user name and password a pull may use, and for which registry.
//!
//! Credentials belong to one registry: `PODC_REGISTRY_CREDS` to the registry of the reference
//! being pulled, an auth file's entry to the registry (or repository) its key names. The
//! [`Registry`](super::registry::Registry) then sends them to that registry's own scheme, host
//! and port only, and to a token realm there (registry.rs says exactly where).
//!
//! The auth file is the one docker, podman and skopeo already write on `login`, the first of:
//! `$REGISTRY_AUTH_FILE` (if set, and only it), `$XDG_RUNTIME_DIR/containers/auth.json` (if it
//! exists), `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`). Only its `auths` are
//! read: an entry's `auth` (base64 of `USER:PASSWORD`) or its `username` and `password`.
//! Credential helpers (`credsStore`, `credHelpers`) are never run: an entry they keep is
//! empty here, and the pull is anonymous.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::prelude::{Engine as _, BASE64_STANDARD};

use super::Reference;

/// The environment variable holding `USER:PASSWORD` for the registry being pulled from (its
/// token service, or its basic auth). An environment variable rather than a flag: a command
/// line is visible to every user of the host in `ps`.
pub const CREDENTIALS_ENV: &str = "PODC_REGISTRY_CREDS";
/// The environment variable naming an auth file to read instead of the usual ones.
pub const AUTH_FILE_ENV: &str = "REGISTRY_AUTH_FILE";

/// A user name and password for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub(super) user: String,
    pub(super) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <password>)", self.user)
    }
}

impl Credentials {
    /// `USER:PASSWORD` (the password may contain `:`).
    pub fn parse(s: &str) -> Result<Credentials, String> {
        split(s).ok_or_else(|| {
            format!("{CREDENTIALS_ENV} must be USER:PASSWORD (a non-empty user, then `:`)")
        })
    }

    /// The credentials in [`CREDENTIALS_ENV`], if it is set.
    pub fn from_env() -> Result<Option<Credentials>, String> {
        match std::env::var(CREDENTIALS_ENV) {
            Ok(s) => Credentials::parse(&s).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("{CREDENTIALS_ENV} is not valid UTF-8"))
            }
        }
    }

    /// The credentials for pulling `reference`: [`CREDENTIALS_ENV`] if set, else the entry of
    /// the auth file for its registry and repository, else none.
    pub fn for_reference(reference: &Reference) -> Result<Option<Credentials>, String> {
        if let Some(c) = Credentials::from_env()? {
            return Ok(Some(c));
        }
        let Some(path) = auth_file(&|name| std::env::var_os(name), &|p| p.exists()) else {
            return Ok(None);
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        lookup(&bytes, &reference.registry, &reference.repository)
            .map_err(|e| format!("auth file {}: {e}", path.display()))
    }

    pub(super) fn basic(&self) -> String {
        format!(
            "Basic {}",
            BASE64_STANDARD.encode(format!("{}:{}", self.user, self.password))
        )
    }
}

fn split(s: &str) -> Option<Credentials> {
    match s.split_once(':') {
        Some((user, password)) if !user.is_empty() => Some(Credentials {
            user: user.to_string(),
            password: password.to_string(),
        }),
        _ => None,
    }
}

/// The auth file to read, from the environment (`env`) and what exists (`exists`).
fn auth_file(
    env: &dyn Fn(&str) -> Option<OsString>,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var(AUTH_FILE_ENV) {
        return Some(p);
    }
    if let Some(p) = var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")) {
        if exists(&p) {
            return Some(p);
        }
    }
    var("DOCKER_CONFIG")
        .or_else(|| var("HOME").map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"))
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credentials an auth file (`doc`) holds for `repository` of `registry`: those of the
/// longest key that names the registry, or a repository path of it that holds `repository`
/// (podman's `quay.io/team`). None when no key matches, or the entry holds no password here
/// (a credential helper keeps it).
fn lookup(doc: &[u8], registry: &str, repository: &str) -> Result<Option<Credentials>, String> {
    let file: AuthFile =
        serde_json::from_slice(doc).map_err(|e| format!("not an auth file: {e}"))?;
    let want = format!("{}/{repository}", canonical_host(registry));
    let best = file
        .auths
        .iter()
        .map(|(key, entry)| (key, normalize_key(key), entry))
        .filter(|(_, n, _)| want == *n || want.starts_with(&format!("{n}/")))
        // The longest key; of two that mean the same, the one written as it means.
        .max_by_key(|(key, n, _)| (n.len(), *key == n));
    let Some((key, _, entry)) = best else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = BASE64_STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("auths[{key:?}].auth is not base64 of UTF-8 text"))?;
        return split(&decoded)
            .map(Some)
            .ok_or_else(|| format!("auths[{key:?}].auth is not USER:PASSWORD"));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) if !user.is_empty() => Ok(Some(Credentials {
            user: user.clone(),
            password: password.clone(),
        })),
        _ => Ok(None),
    }
}

/// An auth file key as `host[:port][/path]`: a URL's scheme and path go (docker's
/// `https://index.docker.io/v1/`), a bare key keeps its repository path (podman's), Docker
/// Hub's names are one.
fn normalize_key(key: &str) -> String {
    let rest = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or(""),
        None => key.trim_end_matches('/'),
    };
    match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", canonical_host(host)),
        None => canonical_host(rest),
    }
}

/// A registry's host as auth file keys name it: lowercase, and Docker Hub's names
/// (`docker.io`, `index.docker.io`, its API host `registry-1.docker.io`) as `docker.io`.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_user_colon_password() {
        let c = Credentials::parse("u:p:q").unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u", "p:q"));
        assert!(Credentials::parse(":p").is_err());
        assert!(Credentials::parse("up").is_err());
        assert!(!format!("{c:?}").contains("p:q"));
    }

    #[test]
    fn base64_is_standard_with_padding() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pa:ss", "dXNlcjpwYTpzcw=="),
        ] {
            assert_eq!(BASE64_STANDARD.encode(i), o);
        }
    }

    fn user(doc: &serde_json::Value, registry: &str, repository: &str) -> Option<String> {
        lookup(doc.to_string().as_bytes(), registry, repository)
            .unwrap()
            .map(|c| format!("{}:{}", c.user, c.password))
    }

    #[test]
    fn the_longest_key_for_the_registry_wins() {
        let b = |s: &str| BASE64_STANDARD.encode(s);
        let doc = serde_json::json!({
            "auths": {
                "quay.io": {"auth": b("all:1")},
                "quay.io/team": {"auth": b("team:2")},
                "quay.io/team/app": {"auth": b("app:3")},
                "https://index.docker.io/v1/": {"auth": b("hub:4")},
                "Registry.Example:5000": {"username": "u", "password": "p:w"},
                "http://other.example/v2/": {"auth": b("other:5")},
                "helper.example": {},
                "gcr.io": {"auth": ""},
            },
            "credsStore": "desktop",
            "credHelpers": {"gcr.io": "gcloud"},
        });
        for (registry, repository, want) in [
            ("quay.io", "team/app", Some("app:3")),
            ("quay.io", "team/app2", Some("team:2")),
            ("quay.io", "team", Some("team:2")),
            ("quay.io", "teams/x", Some("all:1")),
            ("QUAY.IO", "x", Some("all:1")),
            ("docker.io", "library/busybox", Some("hub:4")),
            ("index.docker.io", "x/y", Some("hub:4")),
            ("registry.example:5000", "a", Some("u:p:w")),
            ("registry.example", "a", None),
            ("registry.example:50001", "a", None),
            ("other.example", "team/x", Some("other:5")),
            ("quay.io.evil.example", "team/app", None),
            ("helper.example", "a", None),
            ("gcr.io", "a", None),
            ("ghcr.io", "a", None),
        ] {
            assert_eq!(
                user(&doc, registry, repository).as_deref(),
                want,
                "{registry}/{repository}"
            );
        }
        // Two keys for Docker Hub: the one written as `docker.io` wins over the URL.
        let doc = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b("url:1")},
            "docker.io": {"auth": b("bare:2")},
        }});
        assert_eq!(user(&doc, "docker.io", "a/b").as_deref(), Some("bare:2"));
        assert_eq!(user(&serde_json::json!({}), "docker.io", "a"), None);
    }

    #[test]
    fn a_broken_entry_is_an_error_without_its_secret() {
        for (doc, want) in [
            (r#"{"auths": {"r.example": {"auth": "!!!"}}}"#, "not base64"),
            (
                r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#,
                "not USER:PASSWORD",
            ),
            (r#"{"auths": ["r.example"]}"#, "not an auth file"),
            ("{", "not an auth file"),
        ] {
            let e = lookup(doc.as_bytes(), "r.example", "x").unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
            assert!(!e.contains("nocolon"), "{e}");
        }
    }

    #[test]
    fn the_auth_file_is_the_first_that_applies() {
        let find = |vars: &[(&str, &str)], existing: &[&str]| {
            let env = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            };
            let exists = |p: &Path| existing.iter().any(|e| Path::new(e) == p);
            auth_file(&env, &exists).map(|p| p.display().to_string())
        };
        let all = [
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("XDG_RUNTIME_DIR", "/run/user/0"),
            ("DOCKER_CONFIG", "/d"),
            ("HOME", "/root"),
        ];
        let xdg = "/run/user/0/containers/auth.json";
        assert_eq!(find(&all, &[xdg]).as_deref(), Some("/a.json"));
        assert_eq!(find(&all[1..], &[xdg]).as_deref(), Some(xdg));
        assert_eq!(find(&all[1..], &[]).as_deref(), Some("/d/config.json"));
        assert_eq!(
            find(&all[3..], &[]).as_deref(),
            Some("/root/.docker/config.json")
        );
        assert_eq!(
            find(&[("REGISTRY_AUTH_FILE", ""), ("HOME", "/h")], &[]).as_deref(),
            Some("/h/.docker/config.json")
        );
        assert_eq!(find(&[], &[]), None);
    }
}
