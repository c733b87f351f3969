//! `podc probe-grpc`: one call of the gRPC Health Checking Protocol
//! (`grpc.health.v1.Health/Check`) as Kubernetes' `grpc` probe makes it, run by the health
//! script of a pod with a gRPC probe (the launcher binds podc into the pod for it, so it runs
//! in the pod's network).
//!
//! Just enough HTTP/2 for one unary call over plaintext TCP with prior knowledge (h2c): the
//! client preface and a SETTINGS frame, one HEADERS frame of literal fields (HPACK without
//! indexing and without Huffman coding, so there is no table to keep), one DATA frame with the
//! request and END_STREAM. Then it reads frames: it acknowledges the server's SETTINGS,
//! answers PING, and ignores everything else until the DATA of its stream, whose
//! `HealthCheckResponse.status` decides: SERVING passes, anything else fails. Nothing of the
//! answer's headers is decoded. Every read and write is bounded by one deadline, every frame by
//! the protocol's default maximum size.
//!
//! std only: the Rust gRPC clients bring an async runtime (tonic: tokio, hyper, h2, tower,
//! prost) or gRPC's C++ core (grpcio), and `h2` alone needs tokio.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The method a probe calls.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame payload a peer may send (SETTINGS_MAX_FRAME_SIZE's initial value, which
/// podc never raises).
const MAX_FRAME: usize = 16_384;
/// The largest answer read: a HealthCheckResponse is two bytes.
const MAX_MESSAGE: usize = 4096;
/// The stream of the call: a client's first.
const STREAM: u32 = 1;
/// `HealthCheckResponse.status` SERVING.
pub const SERVING: u64 = 1;

// Frame types and flags (RFC 9113, 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
/// SETTINGS_ENABLE_PUSH: podc takes no pushed streams.
const ENABLE_PUSH: u16 = 0x2;

/// Why a check failed; shown after the address by [`describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection was refused or could not be made.
    Connect(String),
    /// The deadline passed (connecting, or waiting for the answer).
    Timeout(Duration),
    /// The server closed the connection before the answer.
    Closed,
    /// A read or write failed otherwise.
    Io(String),
    /// What answered is not an HTTP/2 server without TLS.
    NotHttp2(&'static str),
    /// The server broke the protocol.
    Protocol(String),
    /// RST_STREAM of the call, with its error code.
    Reset(u32),
    /// GOAWAY before the call was answered, with its error code.
    GoAway(u32),
    /// The call ended without a health status (a server without the health service answers
    /// with trailers only, UNIMPLEMENTED).
    NoStatus,
    /// The answer's status, not SERVING.
    Status(u64),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            Failure::Closed => f.write_str("the server closed the connection without an answer"),
            Failure::Io(e) => write!(f, "{e}"),
            Failure::NotHttp2(what) => write!(
                f,
                "not a gRPC server without TLS (plaintext HTTP/2): {what}"
            ),
            Failure::Protocol(what) => write!(f, "HTTP/2 protocol error: {what}"),
            Failure::Reset(code) => write!(f, "the server reset the call ({})", error_name(*code)),
            Failure::GoAway(code) => write!(
                f,
                "the server closed the connection before answering (GOAWAY {})",
                error_name(*code)
            ),
            Failure::NoStatus => f.write_str(
                "the call ended without a health status (does the server serve grpc.health.v1.Health?)",
            ),
            Failure::Status(s) => write!(f, "answered {}", status_name(*s)),
        }
    }
}

/// The name of a `HealthCheckResponse.ServingStatus`.
pub fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        // An enum is an int32 on the wire: a negative one is 10 bytes of varint.
        n => format!("status {}", n as i64 as i32),
    }
}

/// The name of an HTTP/2 error code (RFC 9113, 7).
fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    match NAMES.get(code as usize) {
        Some(name) => (*name).to_string(),
        None => format!("error code {code:#x}"),
    }
}

/// A failed check in one line: `gRPC health check of 127.0.0.1:7070: answered NOT_SERVING`,
/// the service named when there is one.
pub fn describe(addr: SocketAddr, service: &str, failure: &Failure) -> String {
    if service.is_empty() {
        format!("gRPC health check of {addr}: {failure}")
    } else {
        format!("gRPC health check of {addr} for service {service:?}: {failure}")
    }
}

/// Calls `grpc.health.v1.Health/Check` for `service` ("" asks for the whole server) at `addr`
/// within `timeout` (at least a millisecond): `Ok` when the answer is SERVING.
pub fn check(addr: SocketAddr, service: &str, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout(timeout),
        _ => Failure::Connect(e.to_string()),
    })?;
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        deadline,
        timeout,
    };
    conn.write(&request(addr, service))?;
    match conn.answer()? {
        SERVING => Ok(()),
        status => Err(Failure::Status(status)),
    }
}

/// Everything the client sends before it reads: the preface, its SETTINGS, the call's HEADERS
/// and its one DATA frame.
pub fn request(addr: SocketAddr, service: &str) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let mut settings = ENABLE_PUSH.to_be_bytes().to_vec();
    settings.extend(0u32.to_be_bytes());
    frame(&mut out, SETTINGS, 0, 0, &settings);
    let authority = addr.to_string();
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", HEALTH_CHECK_PATH),
        (":authority", authority.as_str()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        // A literal field without indexing, its name a literal too (RFC 7541, 6.2.2).
        block.push(0x00);
        hpack_string(&mut block, name);
        hpack_string(&mut block, value);
    }
    frame(&mut out, HEADERS, END_HEADERS, STREAM, &block);
    // HealthCheckRequest: field 1 (`service`, a string), left out when empty as proto3 does.
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        varint(&mut message, service.len() as u64);
        message.extend(service.as_bytes());
    }
    // The gRPC message prefix: not compressed, then the length.
    let mut data = vec![0];
    data.extend((message.len() as u32).to_be_bytes());
    data.extend(message);
    frame(&mut out, DATA, END_STREAM, STREAM, &data);
    out
}

/// Appends a frame: its 9-byte header, then `payload`.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_FRAME);
    out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend((stream & 0x7fff_ffff).to_be_bytes());
    out.extend(payload);
}

/// An HPACK string literal without Huffman coding: its length (a 7-bit prefix integer), then
/// its bytes.
fn hpack_string(out: &mut Vec<u8>, s: &str) {
    const PREFIX: usize = 0x7f;
    let mut n = s.len();
    if n < PREFIX {
        out.push(n as u8);
    } else {
        out.push(PREFIX as u8);
        n -= PREFIX;
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    out.extend(s.as_bytes());
}

/// A protobuf varint.
fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A received frame.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The connection, and the deadline of the whole check.
struct Conn {
    stream: TcpStream,
    deadline: Instant,
    timeout: Duration,
}

impl Conn {
    /// What is left of the time, or the failure that none is.
    fn left(&self) -> Result<Duration, Failure> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(Failure::Timeout(self.timeout))
        } else {
            Ok(left)
        }
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
        let left = self.left()?;
        let _ = self.stream.set_write_timeout(Some(left));
        self.stream.write_all(bytes).map_err(|e| self.failure(e))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Failure> {
        let mut done = 0;
        while done < buf.len() {
            let left = self.left()?;
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf[done..]) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failure(e)),
            }
        }
        Ok(())
    }

    /// The next frame; the server's first must be its SETTINGS.
    fn read_frame(&mut self, first: bool) -> Result<Frame, Failure> {
        let mut head = [0u8; 9];
        self.read_exact(&mut head)?;
        if first && head.starts_with(b"HTTP/") {
            return Err(Failure::NotHttp2("it answered in HTTP/1"));
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        if first && (kind != SETTINGS || len > MAX_FRAME) {
            return Err(Failure::NotHttp2("its first frame is not SETTINGS"));
        }
        if len > MAX_FRAME {
            return Err(Failure::Protocol(format!(
                "a frame of {len} bytes, over the {MAX_FRAME} allowed"
            )));
        }
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        self.read_exact(&mut payload)?;
        Ok(Frame {
            kind,
            flags,
            stream,
            payload,
        })
    }

    /// Reads frames until the call's answer, answering SETTINGS and PING on the way: the
    /// answer's status.
    fn answer(&mut self) -> Result<u64, Failure> {
        let mut message = Vec::new();
        let mut first = true;
        loop {
            let f = self.read_frame(std::mem::take(&mut first))?;
            let ours = f.stream == STREAM;
            match f.kind {
                SETTINGS if f.flags & ACK == 0 => {
                    if f.stream != 0 || f.payload.len() % 6 != 0 {
                        return Err(Failure::Protocol("a malformed SETTINGS frame".into()));
                    }
                    let mut ack = Vec::new();
                    frame(&mut ack, SETTINGS, ACK, 0, &[]);
                    self.write(&ack)?;
                }
                PING if f.flags & ACK == 0 => {
                    if f.stream != 0 || f.payload.len() != 8 {
                        return Err(Failure::Protocol("a malformed PING frame".into()));
                    }
                    let mut pong = Vec::new();
                    frame(&mut pong, PING, ACK, 0, &f.payload);
                    self.write(&pong)?;
                }
                RST_STREAM if ours => return Err(Failure::Reset(error_code(&f.payload, 0)?)),
                GOAWAY => {
                    let last = error_code(&f.payload, 0)? & 0x7fff_ffff;
                    let code = error_code(&f.payload, 4)?;
                    // A graceful GOAWAY that covers the call still answers it.
                    if code != 0 || last < STREAM {
                        return Err(Failure::GoAway(code));
                    }
                }
                PUSH_PROMISE => {
                    return Err(Failure::Protocol(
                        "PUSH_PROMISE, which podc's SETTINGS turned off".into(),
                    ))
                }
                DATA if ours => {
                    message.extend_from_slice(unpadded(&f)?);
                    if let Some(status) = health_status(&message)? {
                        return Ok(status);
                    }
                    if f.flags & END_STREAM != 0 {
                        return Err(Failure::NoStatus);
                    }
                }
                // Trailers without a message: the call failed (UNIMPLEMENTED, most likely).
                HEADERS if ours && f.flags & END_STREAM != 0 => return Err(Failure::NoStatus),
                // WINDOW_UPDATE, PRIORITY, the answer's HEADERS and CONTINUATION, ACKs, other
                // streams and unknown frame types.
                _ => {}
            }
        }
    }
}

/// The 32-bit number at `at` of a RST_STREAM or GOAWAY payload.
fn error_code(payload: &[u8], at: usize) -> Result<u32, Failure> {
    payload
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| Failure::Protocol("a RST_STREAM or GOAWAY frame too short".into()))
}

/// A DATA frame's data, without its padding.
fn unpadded(f: &Frame) -> Result<&[u8], Failure> {
    if f.flags & PADDED == 0 {
        return Ok(&f.payload);
    }
    let pad = usize::from(*f.payload.first().unwrap_or(&0));
    if f.payload.is_empty() || pad >= f.payload.len() {
        return Err(Failure::Protocol("a DATA frame padded past its end".into()));
    }
    Ok(&f.payload[1..f.payload.len() - pad])
}

/// The status in the call's answer, once all of its first message arrived: a gRPC message
/// (not compressed, a 4-byte length) holding a HealthCheckResponse.
pub fn health_status(data: &[u8]) -> Result<Option<u64>, Failure> {
    let Some(head) = data.get(..5) else {
        return Ok(None);
    };
    if head[0] != 0 {
        return Err(Failure::Protocol(
            "a compressed answer, which podc did not ask for".into(),
        ));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(Failure::Protocol(format!(
            "an answer of {len} bytes, not a HealthCheckResponse"
        )));
    }
    match data.get(5..5 + len) {
        Some(message) => serving_status(message).map(Some),
        None => Ok(None),
    }
}

/// `HealthCheckResponse.status` (field 1, a varint; proto3's default 0, UNKNOWN, when it is
/// left out). Other fields are skipped, as protobuf readers do.
fn serving_status(message: &[u8]) -> Result<u64, Failure> {
    let bad = || Failure::Protocol("the answer is not a HealthCheckResponse".into());
    let mut status = 0;
    let mut at = 0;
    while at < message.len() {
        let key = read_varint(message, &mut at).ok_or_else(bad)?;
        let skip = match key & 7 {
            0 => {
                let value = read_varint(message, &mut at).ok_or_else(bad)?;
                if key >> 3 == 1 {
                    status = value;
                }
                0
            }
            1 => 8,
            2 => read_varint(message, &mut at).ok_or_else(bad)? as usize,
            5 => 4,
            _ => return Err(bad()),
        };
        at = at
            .checked_add(skip)
            .filter(|&a| a <= message.len())
            .ok_or_else(bad)?;
    }
    Ok(status)
}

/// A protobuf varint at `at` (at most 10 bytes), moving `at` past it.
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        n |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests;
