//! An HTTP proxy on 127.0.0.1 in front of a test registry that asks for a bearer token (the
//! distribution token flow, RFC 6750) and serves that token itself at `/token` (or names another
//! realm); what it forwards it may corrupt (one byte of a blob), trickle (one byte a second) or
//! hold back (every blob answer a while, as a registry across the world or behind a CDN
//! answers). Every request is logged. Stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub const TOKEN: &str = "t0k3n-for-podc";

/// One request the proxy saw: request line and `Authorization` value.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub authorization: Option<String>,
}

/// What the proxy does besides forwarding to `upstream`.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub upstream: u16,
    /// Flip the last byte of this blob (`sha256:…`).
    pub corrupt_blob: Option<String>,
    /// `user:password` the token endpoint wants.
    pub basic: Option<String>,
    /// Answer blob requests with `307` to this base URL (`http://localhost:PORT`).
    pub redirect_blobs: Option<String>,
    /// Ask for no token: forward everything.
    pub open: bool,
    /// The challenge's realm, instead of this proxy's own `/token` (`http://localhost:PORT/token`).
    pub realm: Option<String>,
    /// Send this blob (`sha256:…`) one byte a second after its headers, until the client goes.
    pub trickle_blob: Option<String>,
    /// Answer every blob request this long after it came (each on its own: requests that
    /// come together are answered together).
    pub delay_blobs: Option<std::time::Duration>,
}

pub struct AuthProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    pub log: Arc<Mutex<Vec<Seen>>>,
    accept: Option<JoinHandle<()>>,
}

impl AuthProxy {
    /// Forwards to the registry on 127.0.0.1:`upstream`; with `corrupt_blob` (a digest), flips
    /// the last byte of that blob's body; with `basic` (`user:password`), the token endpoint
    /// wants those credentials.
    pub fn start(upstream: u16, corrupt_blob: Option<String>, basic: Option<String>) -> AuthProxy {
        AuthProxy::with(Behaviour {
            upstream,
            corrupt_blob,
            basic,
            ..Behaviour::default()
        })
    }

    pub fn with(b: Behaviour) -> AuthProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, b) = (log.clone(), b.clone());
                    std::thread::spawn(move || {
                        let _ = serve(conn, port, &b, &log);
                    });
                }
            })
        };
        AuthProxy {
            port,
            stop,
            log,
            accept: Some(accept),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The blobs (`sha256:…`) asked for since the log was last cleared, and clears it.
    pub fn take_blobs(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
            .iter()
            .filter_map(|s| s.target.split("/blobs/").nth(1))
            .filter_map(|t| t.split(' ').next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, port: u16, b: &Behaviour, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    let (upstream, corrupt, basic) = (b.upstream, b.corrupt_blob.as_deref(), b.basic.as_deref());
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    // A TLS handshake (skopeo tries HTTPS first): refused at once, as an HTTP server refuses
    // it, so that the client falls back to HTTP instead of waiting for its handshake timeout.
    if reader.fill_buf()?.first() == Some(&0x16) {
        return conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
    }
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        headers.push(h.trim_end().to_string());
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let authorization = header("authorization");
    log.lock().unwrap().push(Seen {
        target: target.clone(),
        authorization: authorization.clone(),
    });
    let path = target.split(' ').nth(1).unwrap_or("/").to_string();
    if path.starts_with("/token") {
        if let Some(b) = basic {
            let want = format!("Basic {}", base64(b.as_bytes()));
            if authorization.as_deref() != Some(want.as_str()) {
                return respond(&mut conn, "401 Unauthorized", &[], b"{}");
            }
        }
        let body = format!("{{\"access_token\":\"{TOKEN}\",\"expires_in\":300}}");
        return respond(
            &mut conn,
            "200 OK",
            &["Content-Type: application/json"],
            body.as_bytes(),
        );
    }
    if !b.open && authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split("/manifests/").next())
            .and_then(|p| p.split("/blobs/").next())
            .unwrap_or("");
        let realm = b
            .realm
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}/token"));
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"t\",scope=\"repository:{repo}:pull,push\""
        );
        return respond(
            &mut conn,
            "401 Unauthorized",
            &[&challenge, "Content-Type: application/json"],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    if let Some(base) = b
        .redirect_blobs
        .as_deref()
        .filter(|_| path.contains("/blobs/"))
    {
        let location = format!("Location: {base}{path}");
        return respond(&mut conn, "307 Temporary Redirect", &[&location], b"");
    }
    if let Some(d) = b.delay_blobs.filter(|_| path.contains("/blobs/")) {
        std::thread::sleep(d);
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    write!(
        up,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{upstream}\r\nConnection: close\r\n"
    )?;
    if let Some(a) = header("accept") {
        write!(up, "Accept: {a}\r\n")?;
    }
    write!(up, "\r\n")?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    if corrupt.is_some_and(|d| path.ends_with(&format!("/blobs/{d}"))) {
        if let Some(last) = response.last_mut() {
            *last ^= 0x55;
        }
    }
    if b.trickle_blob
        .as_deref()
        .is_some_and(|d| path.ends_with(&format!("/blobs/{d}")))
    {
        let head = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |i| i + 4);
        conn.write_all(&response[..head])?;
        for byte in &response[head..] {
            conn.write_all(std::slice::from_ref(byte))?;
            conn.flush()?;
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        return Ok(());
    }
    conn.write_all(&response)?;
    conn.flush()
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )?;
    for h in headers {
        write!(conn, "{h}\r\n")?;
    }
    write!(conn, "\r\n")?;
    conn.write_all(body)?;
    conn.flush()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            out.push(if k <= chunk.len() {
                A[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}
