//! A [`Source`] that speaks the OCI distribution API to one registry: `podc image pull`.
//!
//! What it guarantees, before any byte reaches the store (which verifies digests itself):
//! - **Transport.** HTTPS (rustls, certificates checked against the system's roots). Plain
//!   HTTP only when the registry is on loopback *and* the caller asked for it
//!   (`--plain-http`); a plain-HTTP request to anything else is refused by [`Registry::new`]
//!   before any connection exists, and every URL (redirects, token realms) is checked again
//!   by [`Registry::check_url`] before it is requested.
//! - **Authorization.** Anonymous first; on `401` from the registry itself, a `Bearer`
//!   challenge is answered with a token from the challenge's realm (`service`,
//!   `scope=repository:<name>:pull`) and a `Basic` one with the credentials, and the request
//!   is repeated. The credentials ([`auth`](super::auth): `PODC_REGISTRY_CREDS` or the auth
//!   file's entry for this registry) go only to the registry's own origin (scheme, host and
//!   port) and to a token realm at that same origin; a realm anywhere else (another host, or
//!   another port of the same host: another service) is asked for a token anonymously, so a
//!   registry cannot hand them to a third party. Docker Hub is the one exception, fixed here
//!   and never taken from a challenge: its token service `https://auth.docker.io`. Docker
//!   sends credentials to any realm; podc does not. The registry's `Authorization` header
//!   (its token) also goes only to its own origin: a redirect to another host (blob storage)
//!   drops it.
//! - **Time.** Each connection, response and read has its timeout, and the whole pull a
//!   deadline ([`Options::timeout`], `PODC_PULL_TIMEOUT`): every request is sent with what is
//!   left of it as ureq's global timeout (which covers its body too), and every read of a blob
//!   checks it, so a registry that trickles a byte a minute fails the pull once it passes.
//! - **Sizes.** Manifests are read up to 4 MiB, error bodies and tokens up to 64 KiB, and a
//!   blob never beyond its descriptor's size: a body that is longer or shorter is an error.
//! - **Digests.** A manifest asked for by digest must have it (and the `Docker-Content-Digest`
//!   header, where given, must name it); a blob's `Docker-Content-Digest`, where given, must
//!   be the digest asked for.
//!
//! Redirects are followed here (at most 10), not by the HTTP client, so each hop is checked.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::http::{header, Response, Uri};
use ureq::typestate::WithoutBody;
use ureq::{Body, RequestBuilder};

pub use super::auth::{Credentials, CREDENTIALS_ENV};
use super::challenge::{parse_challenges, Challenge};
use super::{media, Blobs, Digest, ImageError, Reference, Source};

/// The largest manifest or index podc reads (as containerd and distribution do).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest error body or token response podc reads.
const MAX_SMALL_BODY: u64 = 64 << 10;
const MAX_REDIRECTS: usize = 10;

/// The environment variable holding a pull's deadline in seconds.
pub const PULL_TIMEOUT_ENV: &str = "PODC_PULL_TIMEOUT";
/// How long a whole pull may take unless [`PULL_TIMEOUT_ENV`] says otherwise.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How many blobs a pull fetches at once unless told otherwise (as skopeo does).
pub const PULL_JOBS: usize = 6;
/// The most blobs a pull fetches at once.
pub const MAX_PULL_JOBS: usize = 16;

/// Docker Hub's API host and its token service, the one realm off the registry's origin that
/// gets its credentials (as every Docker client sends them there).
const DOCKER_HUB: (&str, &str) = ("registry-1.docker.io", "auth.docker.io");

/// A pull's deadline: [`PULL_TIMEOUT_ENV`] in seconds, else [`PULL_TIMEOUT`].
pub fn pull_timeout() -> Result<Duration, String> {
    parse_timeout(std::env::var(PULL_TIMEOUT_ENV).ok().as_deref())
}

fn parse_timeout(value: Option<&str>) -> Result<Duration, String> {
    match value {
        None => Ok(PULL_TIMEOUT),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{PULL_TIMEOUT_ENV}={v:?} is not a number of seconds above 0")),
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Speak plain HTTP (only to a loopback registry).
    pub plain_http: bool,
    /// The credentials for this registry ([`Credentials::for_reference`]): they go to it and
    /// to a token realm of its own origin only.
    pub credentials: Option<Credentials>,
    /// How long everything the pull asks of the network may take in all, from
    /// [`Registry::new`] on (default [`PULL_TIMEOUT`]).
    pub timeout: Duration,
    /// How many blobs to fetch at once, each on a connection of its own (default
    /// [`PULL_JOBS`], at most [`MAX_PULL_JOBS`]; 1 fetches them one after another).
    pub jobs: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            plain_http: false,
            credentials: None,
            timeout: PULL_TIMEOUT,
            jobs: PULL_JOBS,
        }
    }
}

/// One repository of one registry, as a [`Source`].
pub struct Registry {
    /// As the reference names it (for messages).
    registry: String,
    /// Where its API is ([`api_host`]).
    host: String,
    /// `scheme://host/`: the registry's origin.
    origin: Uri,
    repository: String,
    scheme: &'static str,
    plain_http: bool,
    /// The registry is on loopback (`Reference::is_loopback`).
    loopback: bool,
    credentials: Option<Credentials>,
    /// The `Authorization` value for the registry's own requests, once a challenge asked
    /// (shared by the threads fetching blobs at once).
    auth: Mutex<Option<String>>,
    agent: ureq::Agent,
    /// When the pull must be done, and how long it was given (for the message).
    deadline: Instant,
    timeout: Duration,
    /// How many blobs at once ([`Options::jobs`]).
    jobs: usize,
}

impl Registry {
    /// A client for the registry and repository of `reference`. Refuses plain HTTP to a
    /// registry that is not on loopback here, before anything touches the network.
    pub fn new(reference: &Reference, options: Options) -> Result<Registry, ImageError> {
        let loopback = reference.is_loopback();
        if options.plain_http && !loopback {
            return Err(ImageError::Registry(format!(
                "registry {}: --plain-http is only for registries on this host's loopback (localhost, 127.0.0.0/8, [::1]); others are reached over HTTPS only",
                reference.registry
            )));
        }
        if !(1..=MAX_PULL_JOBS).contains(&options.jobs) {
            return Err(ImageError::Registry(format!(
                "registry {}: {} blobs at once: give 1 to {MAX_PULL_JOBS}",
                reference.registry, options.jobs
            )));
        }
        let crypto = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(crypto)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .https_only(!options.plain_http)
            // A loopback registry is this host's: never through a proxy.
            .proxy(if loopback {
                None
            } else {
                ureq::Proxy::try_from_env()
            })
            .user_agent(concat!("podc/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            // One connection per blob fetched at once, kept for the next blob.
            .max_idle_connections_per_host(options.jobs.max(3))
            .build();
        let scheme = if options.plain_http { "http" } else { "https" };
        let host = api_host(&reference.registry).to_string();
        let origin = format!("{scheme}://{host}/")
            .parse()
            .map_err(|e| ImageError::Registry(format!("registry {}: {e}", reference.registry)))?;
        Ok(Registry {
            registry: reference.registry.clone(),
            host,
            origin,
            repository: reference.repository.clone(),
            scheme,
            plain_http: options.plain_http,
            loopback,
            credentials: options.credentials,
            auth: Mutex::new(None),
            agent: config.into(),
            deadline: Instant::now() + options.timeout,
            timeout: options.timeout,
            jobs: options.jobs,
        })
    }

    /// Whether `url` may be requested: HTTPS anywhere, plain HTTP only to a loopback host and
    /// only with `--plain-http`. Gives the parsed URL.
    fn check_url(&self, url: &str) -> Result<Uri, ImageError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| self.error(format!("bad URL {url:?}: {e}")))?;
        let host = uri.host().unwrap_or("");
        match uri.scheme_str() {
            Some("https") if !host.is_empty() => Ok(uri),
            Some("http") if self.plain_http && host_is_loopback(host) => Ok(uri),
            Some("http") => Err(self.error(format!(
                "refusing plain HTTP to {url:?}: plain HTTP is only for loopback registries, with --plain-http"
            ))),
            _ => Err(self.error(format!("refusing URL {url:?}: not an https URL"))),
        }
    }

    fn error(&self, msg: String) -> ImageError {
        ImageError::Registry(format!("registry {}: {msg}", self.registry))
    }

    /// Whether `uri` is the registry itself (its origin: scheme, host and port), the only place
    /// its `Authorization` goes.
    fn is_registry(&self, uri: &Uri) -> bool {
        same_origin(uri, &self.origin)
    }

    /// Whether a token realm at `uri` may have the credentials: the registry's own origin, or
    /// Docker Hub's token service for Docker Hub.
    fn realm_gets_credentials(&self, uri: &Uri) -> bool {
        let hub = format!("https://{}/", DOCKER_HUB.1);
        self.is_registry(uri)
            || self.host == DOCKER_HUB.0 && hub.parse().is_ok_and(|h| same_origin(uri, &h))
    }

    /// A GET of `url` (already checked) with what is left of the pull's time as its whole
    /// budget, body included; the deadline's error if nothing is left.
    fn request(&self, url: &str, what: &str) -> Result<RequestBuilder<WithoutBody>, ImageError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.late(what));
        }
        Ok(self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(left))
            .build())
    }

    /// The pull's deadline passed (while doing `what`).
    fn late(&self, what: &str) -> ImageError {
        self.error(format!("{what}: {}", late_message(self.timeout)))
    }

    /// An error reading the body of `what`: the deadline's, if it passed.
    fn body_error(&self, what: &str, e: String) -> ImageError {
        if Instant::now() >= self.deadline {
            self.late(what)
        } else {
            self.error(format!("{what}: {e}"))
        }
    }

    /// GET `path` of the registry, following redirects and answering one authentication
    /// challenge; a response with a 2xx status, and whether it came from the registry itself.
    fn get(
        &self,
        path: &str,
        accept: &str,
        what: &str,
    ) -> Result<(Response<Body>, bool), ImageError> {
        let mut url = format!("{}://{}{path}", self.scheme, self.host);
        let mut challenged = false;
        for _ in 0..=MAX_REDIRECTS {
            let uri = self.check_url(&url)?;
            let own = self.is_registry(&uri);
            let mut request = self.request(&url, what)?.header(header::ACCEPT, accept);
            if own {
                if let Some(auth) = self.authorization() {
                    request = request.header(header::AUTHORIZATION, auth);
                }
            }
            let response = request.call().map_err(|e| self.transport(what, &url, e))?;
            let status = response.status();
            if status.is_success() {
                return Ok((response, own));
            }
            if status.is_redirection() && status.as_u16() != 304 {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        self.error(format!("{what}: {status} without a usable Location"))
                    })?;
                url = join_url(&uri, location);
                continue;
            }
            if status.as_u16() == 401 && own && !challenged {
                challenged = true;
                let challenges: Vec<String> = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect();
                self.authenticate(&challenges, what)?;
                continue;
            }
            return Err(self.status_error(what, response));
        }
        Err(self.error(format!(
            "{what}: more than {MAX_REDIRECTS} redirects, last to {url}"
        )))
    }

    /// The `Authorization` value for the registry's own requests, if a challenge asked for one.
    fn authorization(&self) -> Option<String> {
        self.auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_authorization(&self, value: String) {
        *self.auth.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }

    /// Answers a `401`: a bearer token from the realm, or basic auth with the credentials.
    fn authenticate(&self, headers: &[String], what: &str) -> Result<(), ImageError> {
        let challenges: Vec<Challenge> = headers.iter().flat_map(|h| parse_challenges(h)).collect();
        if let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        {
            let token = self.token(bearer)?;
            self.set_authorization(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
        {
            let Some(creds) = &self.credentials else {
                return Err(self.error(format!(
                    "{what}: the registry asks for a user name and password (log in to it with podman or docker, or set {CREDENTIALS_ENV}=USER:PASSWORD)"
                )));
            };
            self.set_authorization(creds.basic());
            return Ok(());
        }
        Err(self.error(format!(
            "{what}: 401 Unauthorized without a Bearer or Basic challenge ({:?})",
            headers.join(", ")
        )))
    }

    /// Fetches a pull token from a bearer challenge's realm.
    fn token(&self, challenge: &Challenge) -> Result<String, ImageError> {
        let Some(realm) = challenge.param("realm") else {
            return Err(self.error("a Bearer challenge without a realm".into()));
        };
        let uri = self.check_url(realm)?;
        let what = format!("token from {realm}");
        let scope = format!("repository:{}:pull", self.repository);
        let mut request = self.request(realm, &what)?;
        if let Some(service) = challenge.param("service") {
            request = request.query("service", service);
        }
        request = request.query("scope", &scope);
        if let Some(creds) = &self.credentials {
            // Another origin's token service is asked anonymously: the credentials are this
            // registry's, not whoever it names.
            if self.realm_gets_credentials(&uri) {
                request = request.header(header::AUTHORIZATION, creds.basic());
            }
        }
        let response = request
            .call()
            .map_err(|e| self.transport(&what, realm, e))?;
        if !response.status().is_success() {
            return Err(self.status_error(&what, response));
        }
        let body = read_capped(response.into_body(), MAX_SMALL_BODY)
            .map_err(|e| self.body_error(&what, e))?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("{what}: not a token response: {e}")))?;
        let token = t
            .token
            .filter(|t| !t.is_empty())
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error(format!("{what}: the response has no token")))?;
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.error(format!(
                "{what}: the token is not printable ASCII without spaces"
            )));
        }
        Ok(token)
    }

    fn transport(&self, what: &str, url: &str, e: ureq::Error) -> ImageError {
        if matches!(e, ureq::Error::Timeout(ureq::Timeout::Global))
            || Instant::now() >= self.deadline
        {
            return self.late(&format!("{what}: GET {url}"));
        }
        let hint = if !self.plain_http && self.loopback {
            " (a plain HTTP registry on loopback needs --plain-http)"
        } else {
            ""
        };
        self.error(format!("{what}: GET {url}: {e}{hint}"))
    }

    /// An error for a non-2xx answer, with the distribution error codes of its body.
    fn status_error(&self, what: &str, response: Response<Body>) -> ImageError {
        let status = response.status();
        let detail = read_capped(response.into_body(), MAX_SMALL_BODY)
            .ok()
            .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok())
            .map(|b| {
                b.errors
                    .iter()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|d| !d.is_empty())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        self.error(format!("{what}: {status}{detail}"))
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Source for Registry {
    fn describe(&self) -> String {
        format!("registry {}", self.registry)
    }

    fn manifest(&mut self, reference: &str) -> Result<(String, Vec<u8>), ImageError> {
        let pinned = if reference.contains(':') {
            Some(Digest::parse(reference).map_err(ImageError::Reference)?)
        } else if reference.is_empty()
            || reference.len() > 128
            || !reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            // It goes into a URL path: a tag's characters only.
            return Err(ImageError::Reference(format!(
                "{reference:?} is neither a tag nor a digest"
            )));
        } else {
            None
        };
        let what = format!("manifest {}:{reference}", self.repository);
        let accept = [
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            media::DOCKER_LIST,
            media::DOCKER_MANIFEST,
        ]
        .join(", ");
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let (response, own) = self.get(&path, &accept, &what)?;
        let header_digest = own
            .then(|| header_str(&response, "docker-content-digest"))
            .flatten();
        let content_type = header_str(&response, "content-type");
        if let Some(n) = response.body().content_length() {
            if n > MAX_MANIFEST {
                return Err(self.error(format!(
                    "{what}: {n} bytes, more than a manifest may have ({MAX_MANIFEST})"
                )));
            }
        }
        let bytes = read_capped(response.into_body(), MAX_MANIFEST)
            .map_err(|e| self.body_error(&what, e))?;
        if let Some(want) = &pinned {
            if let Some(h) = header_digest.as_deref().filter(|h| *h != want.as_str()) {
                return Err(self.error(format!("{what}: the registry says its digest is {h}")));
            }
            let actual = Digest::of(&bytes);
            if &actual != want {
                return Err(ImageError::Digest {
                    what: format!("{} {what}", self.describe()),
                    expected: want.clone(),
                    actual,
                });
            }
        }
        let media_type = media_type_of(content_type.as_deref(), &bytes).ok_or_else(|| {
            self.error(format!(
                "{what}: no media type (neither Content-Type nor mediaType names one)"
            ))
        })?;
        Ok((media_type, bytes))
    }

    fn blob(&mut self, digest: &Digest, size: u64) -> Result<Box<dyn Read + '_>, ImageError> {
        Ok(self.fetch(digest, size)?)
    }

    fn concurrent(&self) -> Option<(&dyn Blobs, usize)> {
        Some((self, self.jobs))
    }
}

impl Blobs for Registry {
    fn fetch(&self, digest: &Digest, size: u64) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let what = format!("blob {digest}");
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let (response, own) = self.get(&path, "*/*", &what)?;
        if own {
            if let Some(h) = header_str(&response, "docker-content-digest") {
                if h != digest.as_str() {
                    return Err(self.error(format!("{what}: the registry says it sent {h}")));
                }
            }
        }
        if let Some(n) = response.body().content_length() {
            if n != size {
                return Err(self.error(format!(
                    "{what}: the registry sends {n} bytes, the descriptor says {size}"
                )));
            }
        }
        Ok(Box::new(Exact {
            inner: response.into_body().into_reader().take(size),
            left: size,
            what: format!("{} {what}", self.describe()),
            deadline: self.deadline,
            timeout: self.timeout,
        }))
    }
}

/// What a pull that ran out of time says.
fn late_message(timeout: Duration) -> String {
    format!(
        "the pull's deadline passed: a pull may take {} s in all ({PULL_TIMEOUT_ENV})",
        timeout.as_secs()
    )
}

/// Reads exactly `left` bytes: an early end is an error, not a short blob; so is a read once
/// the pull's deadline passed.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
    what: String,
    deadline: Instant,
    timeout: Duration,
}

impl<R: Read> Exact<R> {
    /// The deadline's error (whoever reads says what and from where).
    fn late(&self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, late_message(self.timeout))
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if Instant::now() >= self.deadline {
            return Err(self.late());
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(_) if Instant::now() >= self.deadline => return Err(self.late()),
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: the body ended {} bytes early", self.what, self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A body read whole, refusing one longer than `cap`.
fn read_capped(body: Body, cap: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    body.into_reader()
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > cap {
        return Err(format!("longer than {cap} bytes"));
    }
    Ok(out)
}

fn header_str(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The media type of a manifest: the transport's, unless it is a generic one, else the
/// document's own `mediaType`.
fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let transport = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| {
            !c.is_empty()
                && !matches!(
                    c.as_str(),
                    "application/json" | "text/plain" | "application/octet-stream"
                )
        });
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    transport.or_else(|| {
        serde_json::from_slice::<Doc>(bytes)
            .ok()
            .and_then(|d| d.media_type)
    })
}

/// Where a registry's API is: Docker Hub's name `docker.io` (and the older `index.docker.io`)
/// serves none itself; its API is `registry-1.docker.io`, as every Docker client knows.
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

/// Whether `a` and `b` have one origin: scheme, host (in any case) and port (the scheme's
/// default where none is written).
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().or(match u.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
    };
    a.scheme_str().is_some()
        && a.scheme_str() == b.scheme_str()
        && a.host()
            .is_some_and(|h| b.host().is_some_and(|k| h.eq_ignore_ascii_case(k)))
        && port(a) == port(b)
}

/// `localhost`, `127.x.y.z` or `::1` (with or without brackets).
fn host_is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `location` (absolute, scheme-relative, absolute-path or relative) against `base`.
fn join_url(base: &Uri, location: &str) -> String {
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{scheme}://{authority}{dir}{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_for_remote_registries_before_connecting() {
        for r in [
            "10.255.255.1:5000/x",
            "example.com/x",
            "localhost.example.com/x",
        ] {
            let reference = Reference::parse(r).unwrap();
            let e = Registry::new(
                &reference,
                Options {
                    plain_http: true,
                    ..Options::default()
                },
            )
            .err()
            .expect(r)
            .to_string();
            assert!(
                e.contains("only for registries on this host's loopback"),
                "{e}"
            );
        }
        let reference = Reference::parse("127.0.0.1:5000/x").unwrap();
        let r = Registry::new(
            &reference,
            Options {
                plain_http: true,
                ..Options::default()
            },
        )
        .unwrap();
        for (url, ok) in [
            ("http://127.0.0.1:5000/v2/", true),
            ("http://[::1]:5/v2/", true),
            ("http://localhost/x", true),
            ("https://blobs.example/x", true),
            ("http://blobs.example/x", false),
            ("http://10.0.0.1/x", false),
            ("ftp://127.0.0.1/x", false),
            ("/relative", false),
        ] {
            assert_eq!(r.check_url(url).is_ok(), ok, "{url}");
        }
        let reference = Reference::parse("localhost:5000/x").unwrap();
        let r = Registry::new(&reference, Options::default()).unwrap();
        assert!(r.check_url("http://127.0.0.1:5000/v2/").is_err());
    }

    #[test]
    fn manifest_references_are_tags_or_digests_before_any_request() {
        // Port 9 (discard) on loopback: nothing is asked, the reference is refused first.
        let r = Reference::parse("127.0.0.1:9/x").unwrap();
        let mut src = Registry::new(
            &r,
            Options {
                plain_http: true,
                ..Options::default()
            },
        )
        .unwrap();
        for bad in ["../x", "a/b", "", "t?x", "sha256:00"] {
            let e = src.manifest(bad).unwrap_err();
            assert!(matches!(e, ImageError::Reference(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn docker_hub_is_reached_at_its_api_host() {
        let r = Registry::new(
            &Reference::parse("docker.io/library/busybox:1").unwrap(),
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            (r.registry.as_str(), r.host.as_str()),
            ("docker.io", "registry-1.docker.io")
        );
        assert!(r.is_registry(&"https://registry-1.docker.io/v2/".parse().unwrap()));
        assert!(!r.is_registry(&"https://docker.io/v2/".parse().unwrap()));
        assert_eq!(api_host("quay.io"), "quay.io");
    }

    #[test]
    fn credentials_go_to_a_realm_of_the_registrys_origin_only() {
        let at = |r: &str, plain_http: bool| {
            let options = Options {
                plain_http,
                ..Options::default()
            };
            Registry::new(&Reference::parse(r).unwrap(), options).unwrap()
        };
        let quay = at("quay.io/team/app", false);
        let hub = at("docker.io/library/busybox", false);
        let local = at("127.0.0.1:5000/x", true);
        for (r, realm, ok) in [
            (&quay, "https://quay.io/v2/auth", true),
            (&quay, "https://QUAY.io:443/v2/auth", true),
            (&quay, "https://quay.io:8443/v2/auth", false),
            (&quay, "http://quay.io/v2/auth", false),
            (&quay, "https://auth.quay.io/v2/auth", false),
            (&quay, "https://auth.docker.io/token", false),
            (&hub, "https://auth.docker.io/token", true),
            (&hub, "https://registry-1.docker.io/token", true),
            (&hub, "http://auth.docker.io/token", false),
            (&hub, "https://auth.docker.io:444/token", false),
            (&hub, "https://docker.io/token", false),
            (&local, "http://127.0.0.1:5000/token", true),
            (&local, "http://127.0.0.1:5001/token", false),
            (&local, "http://localhost:5000/token", false),
            (&local, "https://127.0.0.1:5000/token", false),
        ] {
            let uri: Uri = realm.parse().unwrap();
            assert_eq!(r.realm_gets_credentials(&uri), ok, "{} {realm}", r.registry);
        }
    }

    #[test]
    fn the_pull_timeout_is_whole_seconds_above_zero() {
        assert_eq!(parse_timeout(None), Ok(PULL_TIMEOUT));
        assert_eq!(parse_timeout(Some("3")), Ok(Duration::from_secs(3)));
        for bad in ["0", "", "-1", "1.5", "3s", "x"] {
            let e = parse_timeout(Some(bad)).unwrap_err();
            assert!(e.contains("PODC_PULL_TIMEOUT"), "{bad}: {e}");
        }
    }

    #[test]
    fn nothing_is_asked_once_the_deadline_passed() {
        // Port 9 (discard) on loopback, and no time at all: refused before connecting.
        let options = Options {
            plain_http: true,
            timeout: Duration::ZERO,
            ..Options::default()
        };
        let mut src = Registry::new(&Reference::parse("127.0.0.1:9/x").unwrap(), options).unwrap();
        let e = src.manifest("t").unwrap_err().to_string();
        assert!(
            e.starts_with("registry 127.0.0.1:9: manifest x:t: the pull's deadline passed")
                && e.contains("a pull may take 0 s in all (PODC_PULL_TIMEOUT)"),
            "{e}"
        );
        let e = src.blob(&Digest::of(b""), 0).err().unwrap().to_string();
        assert!(e.contains("deadline passed"), "{e}");
    }

    #[test]
    fn redirects_join_like_a_browser() {
        let base: Uri = "https://r.example:5000/v2/a/blobs/x".parse().unwrap();
        for (loc, want) in [
            ("https://s3.example/b?sig=1", "https://s3.example/b?sig=1"),
            ("//cdn.example/b", "https://cdn.example/b"),
            ("/v2/other", "https://r.example:5000/v2/other"),
            ("y", "https://r.example:5000/v2/a/blobs/y"),
        ] {
            assert_eq!(join_url(&base, loc), want);
        }
    }

    #[test]
    fn media_types_come_from_the_transport_or_the_document() {
        let doc = br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        assert_eq!(
            media_type_of(
                Some("application/vnd.oci.image.manifest.v1+json; charset=x"),
                doc
            )
            .as_deref(),
            Some(media::OCI_MANIFEST)
        );
        assert_eq!(
            media_type_of(Some("application/json"), doc).as_deref(),
            Some(media::OCI_INDEX)
        );
        assert_eq!(media_type_of(None, doc).as_deref(), Some(media::OCI_INDEX));
        assert_eq!(media_type_of(None, b"{}"), None);
    }
}
