//! A tiny HTTP server over TLS (rustls with ring) or plain TCP on a free loopback port: what
//! podc's HTTPS probe talks to in `compiler/launch/https_probe/tests.rs`, which includes this
//! file. Each connection gets a thread: it reads the request's head, records it with what the
//! TLS handshake said (SNI, ALPN), and answers as the server's reply function says.
//!
//! Its certificate (`tests/fixtures/tls/cert.der`, key `key.der`) is self-signed, for the name
//! `expired.podc-test.invalid`, and valid only in the year 2000: a probe that checked anything
//! of it would fail. It was made with `openssl ca -selfsign -startdate 20000101000000Z
//! -enddate 20010101000000Z` from a P-256 key; `other-key.der` is a second P-256 key, which a
//! server that does not hold its certificate's key signs with.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// What a client sent on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET /healthz HTTP/1.1`.
    pub line: String,
    /// The header lines, in order, as sent.
    pub headers: Vec<(String, String)>,
    /// Over TLS.
    pub tls: bool,
    /// The server name the client sent (SNI).
    pub sni: Option<String>,
    /// The protocol agreed by ALPN (the server offers `h2` first, then `http/1.1`).
    pub alpn: Option<String>,
}

impl Request {
    /// The value of header `name` (without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// These bytes, then TLS's close_notify and the end of the connection.
    Bytes(Vec<u8>),
    /// These bytes, then the end of the TCP connection without close_notify.
    Abrupt(Vec<u8>),
    /// These bytes, then nothing more until the client goes.
    Stall(Vec<u8>),
}

/// `HTTP/1.1 STATUS` with these header lines and `body` (its Content-Length added).
pub fn answer(status: &str, headers: &[&str], body: &str) -> Reply {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Reply::Bytes(text.into_bytes())
}

type ReplyFn = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// An HTTPS server on 127.0.0.1, answering each request with `reply(request)`.
    pub fn https(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        Server::start(Some(tls_config("key.der")), Arc::new(reply))
    }

    /// An HTTPS server of TLS 1.2 only.
    pub fn https_tls12(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        Server::start(Some(tls_config_of("key.der", true)), Arc::new(reply))
    }

    /// An HTTPS server whose handshake is signed with a key that is not its certificate's
    /// (over TLS 1.2 only, if `tls12`).
    pub fn https_with_another_key(
        tls12: bool,
        reply: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::start(Some(tls_config_of("other-key.der", tls12)), Arc::new(reply))
    }

    /// A plain HTTP server on 127.0.0.1.
    pub fn http(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        Server::start(None, Arc::new(reply))
    }

    fn start(tls: Option<Arc<ServerConfig>>, reply: Arc<ReplyFn>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (tls, reply, requests, stop) =
                        (tls.clone(), reply.clone(), requests.clone(), stop.clone());
                    std::thread::spawn(move || serve(conn, tls, &*reply, &requests, &stop));
                }
            });
        }
        Server {
            addr,
            requests,
            stop,
        }
    }

    /// The requests so far, in the order they were read.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// `https://127.0.0.1:PORT` (or `http://`).
    pub fn origin(&self, https: bool) -> String {
        format!("{}://{}", if https { "https" } else { "http" }, self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn tls_config(key: &str) -> Arc<ServerConfig> {
    tls_config_of(key, false)
}

/// The server's TLS: the fixture certificate, the handshake signed with `key`; TLS 1.2 only, or
/// 1.2 and 1.3.
fn tls_config_of(key: &str, tls12: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = CertificateDer::from(std::fs::read(format!("{FIXTURES}/cert.der")).unwrap());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        std::fs::read(format!("{FIXTURES}/{key}")).unwrap(),
    ));
    let signer = provider.key_provider.load_private_key(key).unwrap();
    let certified = Arc::new(CertifiedKey::new(vec![cert], signer));
    let versions: &[&rustls::SupportedProtocolVersion] = match tls12 {
        true => &[&rustls::version::TLS12],
        false => rustls::DEFAULT_VERSIONS,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The one certificate, whatever the client asks for.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn serve(
    tcp: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    reply: &ReplyFn,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Request::default();
    let mut stream: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp.try_clone().unwrap()),
        Some(config) => {
            let mut conn = ServerConnection::new(config).unwrap();
            let mut sock = tcp.try_clone().unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    return;
                }
            }
            request.tls = true;
            request.sni = conn.server_name().map(str::to_string);
            request.alpn = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            Box::new(StreamOwned::new(conn, sock))
        }
    };
    let Some(head) = read_head(&mut *stream) else {
        // What is not HTTP (a TLS handshake, say) gets what web servers answer it.
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        stream.close();
        return;
    };
    let mut lines = head.split("\r\n");
    request.line = lines.next().unwrap_or_default().to_string();
    for l in lines.filter(|l| !l.is_empty()) {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        request
            .headers
            .push((name.to_string(), value.trim().to_string()));
    }
    requests.lock().unwrap().push(request.clone());
    match reply(&request) {
        Reply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes);
            stream.close();
        }
        Reply::Abrupt(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
        }
        Reply::Stall(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
            for _ in 0..100 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let _ = tcp.shutdown(std::net::Shutdown::Both);
}

/// A connection, plain or TLS.
trait ReadWrite: Read + Write {
    /// Ends it cleanly: TLS's close_notify, where there is TLS.
    fn close(&mut self) {
        let _ = self.flush();
    }
}

impl ReadWrite for TcpStream {}

impl ReadWrite for StreamOwned<ServerConnection, TcpStream> {
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }
}

/// The request's head, without its final empty line; `None` for what does not start as one.
fn read_head(stream: &mut dyn ReadWrite) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        if head.is_empty() && !byte[0].is_ascii_uppercase() {
            return None;
        }
        head.push(byte[0]);
    }
    head.truncate(head.len() - 4);
    Some(String::from_utf8_lossy(&head).into_owned())
}
