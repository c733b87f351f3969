//! `podc probe-https`: one HTTP GET over TLS as Kubernetes' `httpGet` probe with `scheme:
//! HTTPS` makes it (the kubelet's pkg/probe/http on Go's net/http client), run by the health
//! script of a pod with such a probe (the launcher binds podc into the pod for it, as for a
//! gRPC probe, so it runs in the pod's network).
//!
//! - **Any certificate.** The kubelet does not verify the server's certificate
//!   (`InsecureSkipVerify`): whoever issued it, for whatever name, expired or not, it is
//!   accepted. What TLS itself asks is still checked: the handshake's signature must be made
//!   by the certificate's key. TLS 1.2 or 1.3 (rustls with ring, already in podc for `podc
//!   image pull`; its cipher suites leave out the CBC ones Go still offers). No SNI: the host is
//!   an IP address, which neither Go nor rustls names there.
//! - **The request.** `GET` of the path over HTTP/1.1 with `Host: HOST:PORT` (a `Host` header
//!   replaces it), `User-Agent: podc-health` and `Accept: */*` (a header of either name
//!   replaces it; given empty, it leaves it out, as the kubelet does), the probe's other
//!   headers, and `Connection: close`. The path is escaped as Go escapes it ([`url`]).
//! - **Redirects.** An answer 301, 302, 303, 307 or 308 with a `Location` on the same host
//!   name (http or https, any port) is followed, with the headers again and a `Referer`; the
//!   tenth redirect fails ("stopped after 10 redirects", Go's limit). A redirect to another
//!   host is not followed: its 3xx answer is the probe's, and passes.
//! - **The answer.** A status from 200 to 399 passes, once up to 10 KiB of its body are read
//!   (the kubelet reads that much too); any other status fails, and so does a body that does
//!   not arrive in time.
//! - **One deadline** for everything: connecting, the handshake, each read and write, each hop.

#[cfg(test)]
mod tests;
mod url;
mod verify;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

pub use url::Url;

/// The bytes of an answer's head read at most.
const MAX_HEAD: usize = 64 * 1024;
/// The header lines of an answer read at most.
const MAX_HEADERS: usize = 128;
/// The bytes of the last answer's body read (the kubelet's `maxRespBodyLength`).
const MAX_BODY: u64 = 10 * 1024;
/// The bytes of a redirect's body read before the next request (Go's `maxBodySlurpSize`).
const REDIRECT_BODY: u64 = 2 * 1024;
/// The requests of one probe: Go's client fails at the tenth redirect.
const MAX_REQUESTS: usize = 10;
/// The statuses whose `Location` Go's client follows.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];
/// Header names Go writes itself or never writes from the request's headers.
const NOT_SENT: [&str; 5] = [
    "host",
    "user-agent",
    "content-length",
    "transfer-encoding",
    "trailer",
];

/// One probe: where, what, and the headers as given (name, value).
#[derive(Debug, Clone)]
pub struct Probe<'a> {
    pub host: IpAddr,
    pub port: u16,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection was refused or could not be made.
    Connect(String),
    /// The deadline passed.
    Timeout(Duration),
    /// The TLS handshake failed (a server without TLS, or one that broke it).
    Tls(String),
    /// The server closed the connection before the answer.
    Closed,
    /// A read or write failed otherwise.
    Io(String),
    /// What answered is not an HTTP/1 answer.
    NotHttp(String),
    /// The answer's status line, whose status is not 200..399.
    Status(String),
    /// A tenth redirect.
    Redirects,
    /// A `Location` that is not a URL.
    Location(String, String),
    /// A redirect to a scheme other than http and https.
    Scheme(String),
    /// The body of the answer did not arrive whole.
    Body(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            Failure::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Failure::Closed => f.write_str("the server closed the connection without an answer"),
            Failure::Io(e) => f.write_str(e),
            Failure::NotHttp(e) => write!(f, "not an HTTP answer: {e}"),
            Failure::Status(line) => write!(f, "answered: {line}"),
            Failure::Redirects => f.write_str("stopped after 10 redirects"),
            Failure::Location(loc, e) => write!(f, "cannot follow the redirect to {loc:?}: {e}"),
            Failure::Scheme(s) => write!(f, "redirected to the unsupported scheme {s:?}"),
            Failure::Body(e) => write!(f, "the answer's body: {e}"),
        }
    }
}

/// A failed probe: the URL asked for last, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub url: String,
    pub why: Failure,
}

impl std::fmt::Display for Failed {
    /// `HTTPS probe GET https://127.0.0.1:8443/healthz: answered: HTTP/1.1 503 Unavailable`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTPS probe GET {}: {}", self.url, self.why)
    }
}

/// Makes the probe within `timeout` (at least a millisecond): the status of the answer that
/// passed.
pub fn check(p: &Probe, timeout: Duration) -> Result<u16, Failed> {
    let deadline = Instant::now() + timeout;
    let first = Url::probe("https", p.host, p.port, p.path);
    let given = |name: &str| {
        p.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim(v))
    };
    // Go's client sends the first request's `Host` again only to a relative `Location`.
    let custom_host = given("host").filter(|h| !h.is_empty() && *h != first.authority);
    let mut host = custom_host.unwrap_or(&first.authority).to_string();
    let mut referer = None;
    let mut url = first.clone();
    let config = tls_config();
    let mut requests = 0;
    loop {
        requests += 1;
        let failed = |why| Failed {
            url: url.to_string(),
            why,
        };
        let mut conn = Conn::open(&url, p.host, &config, deadline, timeout).map_err(failed)?;
        let request = request(&url, &host, p.headers, referer.as_deref());
        conn.write(request.as_bytes()).map_err(failed)?;
        let head = conn.head().map_err(failed)?;
        let location = head.location.as_deref().filter(|l| !l.is_empty());
        if let (true, Some(loc)) = (REDIRECTS.contains(&head.status), location) {
            let next = url
                .join(loc)
                .map_err(|e| failed(Failure::Location(loc.into(), e)))?;
            if let Some(next) = next.filter(|n| n.hostname() == first.hostname()) {
                if requests >= MAX_REQUESTS {
                    return Err(failed(Failure::Redirects));
                }
                // Go reads a little of it, and whatever happens to the read does not matter.
                let _ = conn.body(&head, REDIRECT_BODY);
                let absolute = url::has_scheme(loc);
                host = match custom_host {
                    Some(h) if !absolute => h.to_string(),
                    _ => next.authority.clone(),
                };
                let downgrade = url.scheme == "https" && next.scheme == "http";
                referer = (given("referer").is_none() && !downgrade).then(|| url.to_string());
                url = next;
                continue;
            }
        }
        conn.body(&head, MAX_BODY).map_err(failed)?;
        return if (200..400).contains(&head.status) {
            Ok(head.status)
        } else {
            Err(failed(Failure::Status(head.line)))
        };
    }
}

/// A header's value as Go writes it: without white space around it.
fn trim(v: &str) -> &str {
    v.trim_matches([' ', '\t', '\r', '\n'])
}

/// The request for `url`, as the kubelet's Go client writes it.
pub fn request(
    url: &Url,
    host: &str,
    headers: &[(String, String)],
    referer: Option<&str>,
) -> String {
    let given = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim(v))
    };
    let mut lines = vec![
        format!("GET {} HTTP/1.1", url.target()),
        format!("Host: {host}"),
    ];
    match given("user-agent") {
        None => lines.push("User-Agent: podc-health".into()),
        Some("") => {}
        Some(ua) => lines.push(format!("User-Agent: {ua}")),
    }
    if given("accept").is_none() {
        lines.push("Accept: */*".into());
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let empty_accept = lower == "accept" && trim(value).is_empty();
        if !NOT_SENT.contains(&lower.as_str()) && !empty_accept {
            lines.push(format!("{name}: {}", trim(value)));
        }
    }
    if let Some(r) = referer {
        lines.push(format!("Referer: {r}"));
    }
    if given("connection").is_none() {
        lines.push("Connection: close".into());
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n\r\n");
    out
}

/// The TLS client: any certificate, as the kubelet's; the handshake's signatures checked.
fn tls_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(verify::AnyCertificate(provider.clone()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's provider has the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// It has none (204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// When the server closes the connection.
    Close,
}

/// An answer's head.
#[derive(Debug, Clone)]
struct Head {
    status: u16,
    /// `HTTP/1.1 503 Service Unavailable`.
    line: String,
    location: Option<String>,
    framing: Framing,
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A server that closes without TLS's close_notify, as web servers do, has ended
            // (Go reads it so too); rustls says so only with nothing left to read.
            Stream::Tls(t) => match t.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// One request's connection, what was read of it and not used yet, and the probe's deadline.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
}

/// What is left of the time, or the failure that none is.
fn left(deadline: Instant, timeout: Duration) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Failure::Timeout(timeout))
    } else {
        Ok(left)
    }
}

impl Conn {
    /// Connects to `url` at `ip` (its host name is the probe's address), with TLS for https.
    fn open(
        url: &Url,
        ip: IpAddr,
        config: &Arc<ClientConfig>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Conn, Failure> {
        let https = match url.scheme.as_str() {
            "https" => true,
            "http" => false,
            other => return Err(Failure::Scheme(other.into())),
        };
        let port = match url.port() {
            "" if https => 443,
            "" => 80,
            p => p
                .parse::<u16>()
                .map_err(|_| Failure::Connect(format!("invalid port {p:?}")))?,
        };
        let addr = SocketAddr::new(ip, port);
        let tcp =
            TcpStream::connect_timeout(&addr, left(deadline, timeout)?).map_err(|e| {
                match e.kind() {
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                        Failure::Timeout(timeout)
                    }
                    _ => Failure::Connect(format!("{addr}: {e}")),
                }
            })?;
        let _ = tcp.set_nodelay(true);
        let stream = if https {
            Stream::Tls(Box::new(handshake(tcp, ip, config, deadline, timeout)?))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
            deadline,
            timeout,
        })
    }

    fn failure(&self, e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout(self.timeout),
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Failure::Closed,
            _ => Failure::Io(e.to_string()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let left = left(self.deadline, self.timeout)?;
        let _ = self.stream.tcp().set_write_timeout(Some(left));
        let written = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        written.map_err(|e| self.failure(e))
    }

    /// Reads more into `buf`: how much (0 at the end).
    fn fill(&mut self) -> Result<usize, Failure> {
        let mut chunk = [0u8; 8192];
        loop {
            let left = left(self.deadline, self.timeout)?;
            let _ = self.stream.tcp().set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failure(e)),
            }
        }
    }

    /// The answer's head; informational answers (1xx but 101) are passed over, as Go does.
    fn head(&mut self) -> Result<Head, Failure> {
        loop {
            let parsed = parse_head(&self.buf)?;
            let Some((len, head)) = parsed else {
                if self.buf.len() > MAX_HEAD {
                    return Err(Failure::NotHttp(format!(
                        "its head is longer than {} KiB",
                        MAX_HEAD / 1024
                    )));
                }
                if self.fill()? == 0 {
                    return Err(if self.buf.is_empty() {
                        Failure::Closed
                    } else {
                        Failure::NotHttp("it ends inside its head".into())
                    });
                }
                continue;
            };
            self.buf.drain(..len);
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return Ok(head);
        }
    }

    /// Reads up to `limit` bytes of the body of the answer `head` heads.
    fn body(&mut self, head: &Head, limit: u64) -> Result<(), Failure> {
        let short = |what: &str| Failure::Body(format!("it ends {what}"));
        match head.framing {
            Framing::Empty => Ok(()),
            Framing::Length(n) => match self.take(n.min(limit))? || n > limit {
                true => Ok(()),
                false => Err(short("before its Content-Length")),
            },
            Framing::Close => self.take(limit).map(|_| ()),
            Framing::Chunked => self.chunks(limit),
        }
    }

    /// Reads until `buf` holds `n` bytes: whether it does (false: the connection ended).
    fn take(&mut self, n: u64) -> Result<bool, Failure> {
        while (self.buf.len() as u64) < n {
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads chunks until `limit` bytes of data or the last chunk.
    fn chunks(&mut self, limit: u64) -> Result<(), Failure> {
        let short = || Failure::Body("it ends inside a chunk".into());
        let mut data = 0u64;
        while data < limit {
            let (len, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(c)) => break c,
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                        if self.fill()? == 0 {
                            return Err(short());
                        }
                    }
                    _ => return Err(Failure::Body("a chunk's size is not hexadecimal".into())),
                }
            };
            if size == 0 {
                return Ok(());
            }
            self.buf.drain(..len);
            let part = size.min(limit - data);
            if !self.take(part)? {
                return Err(short());
            }
            if part < size {
                return Ok(());
            }
            if !self.take(size + 2)? {
                return Err(short());
            }
            let end = size as usize;
            if &self.buf[end..end + 2] != b"\r\n" {
                return Err(Failure::Body("a chunk does not end with CRLF".into()));
            }
            self.buf.drain(..end + 2);
            data += size;
        }
        Ok(())
    }
}

/// The TLS handshake on `tcp`, within the deadline.
fn handshake(
    mut tcp: TcpStream,
    ip: IpAddr,
    config: &Arc<ClientConfig>,
    deadline: Instant,
    timeout: Duration,
) -> Result<StreamOwned<ClientConnection, TcpStream>, Failure> {
    let mut tls = ClientConnection::new(config.clone(), ServerName::IpAddress(ip.into()))
        .map_err(|e| Failure::Tls(e.to_string()))?;
    while tls.is_handshaking() {
        let left = left(deadline, timeout)?;
        let _ = tcp.set_read_timeout(Some(left));
        let _ = tcp.set_write_timeout(Some(left));
        tls.complete_io(&mut tcp).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout(timeout),
            io::ErrorKind::UnexpectedEof => Failure::Tls("the server closed the connection".into()),
            io::ErrorKind::ConnectionReset => {
                Failure::Tls("the server reset the connection".into())
            }
            _ => Failure::Tls(e.to_string()),
        })?;
    }
    Ok(StreamOwned::new(tls, tcp))
}

/// The head at the start of `buf`: its length and what matters of it, or `None` while it is
/// incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let first = buf.split(|&b| b == b'\n').next().unwrap_or_default();
            let first = String::from_utf8_lossy(&first[..first.len().min(200)]);
            return Err(Failure::NotHttp(format!("{e}: {:?}", first.trim_end())));
        }
    };
    let status = answer.code.unwrap_or_default();
    let version = answer.version.unwrap_or_default();
    let reason = answer.reason.unwrap_or_default();
    let line = format!("HTTP/1.{version} {status} {reason}")
        .trim_end()
        .to_string();
    let values = |name: &str| {
        answer
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
            .collect::<Vec<_>>()
    };
    let location = values("location").into_iter().next();
    let lengths = values("content-length");
    let encodings = values("transfer-encoding");
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else if !encodings.is_empty() && version == 1 {
        if encodings.len() != 1 || !encodings[0].eq_ignore_ascii_case("chunked") {
            return Err(Failure::NotHttp(format!(
                "unsupported transfer encoding {:?}",
                encodings.join(", ")
            )));
        }
        Framing::Chunked
    } else if let Some(first) = lengths.first() {
        match first.parse::<u64>() {
            Ok(n) if lengths.iter().all(|l| l == first) => Framing::Length(n),
            _ => {
                return Err(Failure::NotHttp(format!(
                    "bad Content-Length {:?}",
                    lengths.join(", ")
                )))
            }
        }
    } else {
        Framing::Close
    };
    Ok(Some((
        len,
        Head {
            status,
            line,
            location,
            framing,
        },
    )))
}
