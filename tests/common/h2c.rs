//! A tiny gRPC health server over plaintext HTTP/2 (h2c), std only, on a free loopback port:
//! what podc's gRPC probe talks to in the tests. `compiler/launch/grpc_probe/tests.rs` includes
//! this file too, so the unit tests and the end-to-end test share one server. It reads the
//! client's frames (decoding only the HPACK podc writes: literal fields without indexing or
//! Huffman coding), records each call, and answers as its current [`Answer`] says.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// HEADERS, a HealthCheckResponse with this status in one DATA frame, then trailers.
    Status(u64),
    /// The same status the hard way: after a PING, which the client must answer before the
    /// server goes on, with SETTINGS carrying a parameter, a WINDOW_UPDATE, a frame of an
    /// unknown type, a graceful GOAWAY covering the call, and the message padded and split
    /// over two DATA frames.
    Awkward(u64),
    /// Closes the connection once the call was read.
    Close,
    /// Reads the call and never answers.
    Silent,
    /// RST_STREAM of the call with this error code.
    Reset(u32),
    /// GOAWAY with this error code and no stream processed.
    GoAway(u32),
    /// Trailers only (grpc-status 12, UNIMPLEMENTED), as a server without the health service
    /// answers.
    TrailersOnly,
    /// An HTTP/1.1 server's `400 Bad Request`.
    Http1,
}

/// What a client sent on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    /// The request's header fields, in order.
    pub headers: Vec<(String, String)>,
    /// `HealthCheckRequest.service`.
    pub service: String,
    /// The raw gRPC message of the request (prefix included).
    pub message: Vec<u8>,
    /// The client's frames as `(type, flags)`, in order.
    pub frames: Vec<(u8, u8)>,
    /// What went wrong reading the client, if anything did.
    pub problem: Option<String>,
}

pub struct Server {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server on 127.0.0.1 and a free port, answering every call with `answer`.
    pub fn start(answer: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answer, calls, stop) = (answer.clone(), calls.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let now = answer.lock().unwrap().clone();
                    let call = serve(conn, &now);
                    calls.lock().unwrap().push(call);
                }
            })
        };
        Server {
            addr,
            answer,
            calls,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers the calls from now on with `answer`.
    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// The calls served so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

fn read_frame(conn: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    conn.read_exact(&mut payload).ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
    Some((head[3], head[4], stream, payload))
}

/// A 7-bit-prefix HPACK integer and the string after it (no Huffman coding).
fn hpack_string(b: &[u8], at: &mut usize) -> Result<String, String> {
    let first = *b.get(*at).ok_or("short header block")?;
    if first & 0x80 != 0 {
        return Err("a Huffman-coded string".into());
    }
    *at += 1;
    let mut len = usize::from(first & 0x7f);
    if len == 0x7f {
        let mut shift = 0;
        loop {
            let byte = *b.get(*at).ok_or("short integer")?;
            *at += 1;
            len += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    let s = b.get(*at..*at + len).ok_or("short string")?;
    *at += len;
    String::from_utf8(s.to_vec()).map_err(|e| e.to_string())
}

/// Literal fields without indexing and with literal names: all the client may send.
fn decode_headers(b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < b.len() {
        if b[at] != 0x00 {
            return Err(format!("HPACK representation {:#04x}", b[at]));
        }
        at += 1;
        let name = hpack_string(b, &mut at)?;
        let value = hpack_string(b, &mut at)?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// `HealthCheckRequest.service` from the request's gRPC message.
fn service_of(message: &[u8]) -> Result<String, String> {
    let body = message.get(5..).ok_or("short message")?;
    let len = u32::from_be_bytes(message[1..5].try_into().unwrap()) as usize;
    if message[0] != 0 || len != body.len() {
        return Err(format!("bad gRPC prefix {:?}", &message[..5]));
    }
    if body.is_empty() {
        return Ok(String::new());
    }
    if body[0] != 0x0a {
        return Err(format!("field key {:#04x}", body[0]));
    }
    // A one- or two-byte varint length: the tests' names are short.
    let (n, at) = if body[1] & 0x80 == 0 {
        (usize::from(body[1]), 2)
    } else {
        (usize::from(body[1] & 0x7f) | usize::from(body[2]) << 7, 3)
    };
    let s = body.get(at..at + n).ok_or("short service")?;
    if at + n != body.len() {
        return Err("bytes after the service".into());
    }
    Ok(String::from_utf8(s.to_vec()).unwrap())
}

/// Reads client frames until `until` says stop (or the client goes), recording them.
fn read_until(
    conn: &mut TcpStream,
    call: &mut Call,
    mut until: impl FnMut(u8, u8) -> bool,
) -> bool {
    while let Some((kind, flags, _, payload)) = read_frame(conn) {
        call.frames.push((kind, flags));
        match kind {
            0x1 => match decode_headers(&payload) {
                Ok(h) => call.headers = h,
                Err(e) => call.problem = Some(e),
            },
            0x0 => call.message.extend(payload),
            _ => {}
        }
        if until(kind, flags) {
            return true;
        }
    }
    false
}

/// The problem of a connection its client closed without sending a byte.
pub const CLOSED_AT_ONCE: &str = "closed before a byte";

/// One connection, answered as `answer` says.
fn serve(mut conn: TcpStream, answer: &Answer) -> Call {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut call = Call::default();
    let mut preface = [0u8; 24];
    // A connection closed before its first byte is told apart: a probe stopped with its app
    // or pod can leave one.
    match conn.read(&mut preface[..1]) {
        Ok(0) => {
            call.problem = Some(CLOSED_AT_ONCE.into());
            return call;
        }
        Ok(_) if conn.read_exact(&mut preface[1..]).is_ok() => {}
        _ => {
            call.problem = Some("no preface".into());
            return call;
        }
    }
    if &preface != b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
        call.problem = Some(format!("preface {preface:?}"));
    }
    if *answer == Answer::Http1 {
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        return call;
    }
    let awkward = matches!(answer, Answer::Awkward(_));
    // Max concurrent streams 100 in the awkward case.
    let settings: &[u8] = if awkward { &[0, 3, 0, 0, 0, 100] } else { &[] };
    let _ = conn.write_all(&frame(0x4, 0, 0, settings));
    // The call: until its DATA with END_STREAM.
    let got = read_until(&mut conn, &mut call, |kind, flags| {
        kind == 0x0 && flags & 0x1 != 0
    });
    if !got {
        call.problem.get_or_insert("the call did not end".into());
        return call;
    }
    match service_of(&call.message) {
        Ok(s) => call.service = s,
        Err(e) => call.problem = Some(e),
    }
    let mut out = Vec::new();
    match answer {
        Answer::Status(status) => out.extend(response(*status, false)),
        Answer::Awkward(status) => {
            let _ = conn.write_all(&frame(0x6, 0, 0, b"podcping"));
            // The client must answer the PING before anything else comes.
            let ponged = read_until(&mut conn, &mut call, |kind, flags| {
                kind == 0x6 && flags & 0x1 != 0
            });
            if !ponged {
                call.problem = Some("no PING ACK".into());
                return call;
            }
            out.extend(frame(0x8, 0, 0, &[0, 0, 0x10, 0]));
            out.extend(frame(0xfa, 0x3, 0, b"unknown"));
            out.extend(frame(0x7, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
            out.extend(response(*status, true));
        }
        Answer::Close | Answer::Http1 => return call,
        Answer::Silent => {
            read_until(&mut conn, &mut call, |_, _| false);
            return call;
        }
        Answer::Reset(code) => out.extend(frame(0x3, 0, 1, &code.to_be_bytes())),
        Answer::GoAway(code) => {
            let mut p = vec![0, 0, 0, 0];
            p.extend(code.to_be_bytes());
            out.extend(frame(0x7, 0, 0, &p));
        }
        Answer::TrailersOnly => {
            // :status 200 (indexed), grpc-status 12: HEADERS with END_STREAM.
            let mut block = vec![0x88, 0x00, 11];
            block.extend(b"grpc-status");
            block.extend([2, b'1', b'2']);
            out.extend(frame(0x1, 0x5, 1, &block));
        }
    }
    let _ = conn.write_all(&out);
    // What the client still sends (its SETTINGS ACK) until it closes.
    read_until(&mut conn, &mut call, |_, _| false);
    call
}

/// HEADERS, the HealthCheckResponse (padded and split in two when `awkward`), trailers.
fn response(status: u64, awkward: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block = vec![0x88, 0x00, 12];
    block.extend(b"content-type");
    block.push(16);
    block.extend(b"application/grpc");
    out.extend(frame(0x1, 0x4, 1, &block));
    // proto3 leaves a field at its default (0, UNKNOWN) out.
    let body: Vec<u8> = if status == 0 {
        Vec::new()
    } else {
        vec![0x08, status as u8]
    };
    let mut message = vec![0];
    message.extend((body.len() as u32).to_be_bytes());
    message.extend(body);
    if awkward {
        let (a, b) = message.split_at(3);
        let mut padded = vec![4];
        padded.extend(a);
        padded.extend([0; 4]);
        out.extend(frame(0x0, 0x8, 1, &padded));
        out.extend(frame(0x0, 0, 1, b));
    } else {
        out.extend(frame(0x0, 0, 1, &message));
    }
    let mut trailers = vec![0x00, 11];
    trailers.extend(b"grpc-status");
    trailers.extend([1, b'0']);
    out.extend(frame(0x1, 0x5, 1, &trailers));
    out
}
