//! The probe against the tests' h2c server (tests/common/h2c.rs): what it sends, and what it
//! makes of every way a server answers.

use std::time::{Duration, Instant};

use super::*;

#[path = "../../../tests/common/h2c.rs"]
mod h2c;

use h2c::{Answer, Server};

const SECOND: Duration = Duration::from_secs(1);

fn probe(answer: Answer, service: &str) -> (Result<(), Failure>, h2c::Call) {
    let server = Server::start(answer);
    let result = check(server.addr, service, 3 * SECOND);
    // The server records the call once the client has gone.
    let deadline = Instant::now() + 5 * SECOND;
    let call = loop {
        if let Some(c) = server.calls().pop() {
            break c;
        }
        assert!(Instant::now() < deadline, "the server recorded no call");
        std::thread::sleep(Duration::from_millis(10));
    };
    (result, call)
}

#[test]
fn serving_passes_and_the_request_is_the_standard_one() {
    let (result, call) = probe(Answer::Status(1), "");
    assert_eq!(result, Ok(()));
    assert_eq!(call.problem, None);
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let authority = call.headers[3].1.clone();
    assert!(authority.starts_with("127.0.0.1:"), "{authority}");
    assert_eq!(
        headers,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    );
    // An empty service is left out: the message is empty.
    assert_eq!(call.message, [0, 0, 0, 0, 0]);
    assert_eq!(call.service, "");
    // SETTINGS, HEADERS with END_HEADERS, DATA with END_STREAM, then the ACK of the
    // server's SETTINGS.
    assert_eq!(call.frames, [(4, 0), (1, 4), (0, 1), (4, 1)]);
}

#[test]
fn the_service_is_asked_for_by_name() {
    let (result, call) = probe(Answer::Status(1), "hipstershop.CartService");
    assert_eq!(result, Ok(()));
    assert_eq!(call.service, "hipstershop.CartService");
    // A name longer than a one-byte length.
    let long = "s".repeat(300);
    let (result, call) = probe(Answer::Status(1), &long);
    assert_eq!(result, Ok(()));
    assert_eq!(call.service, long);
    assert_eq!(call.problem, None);
}

#[test]
fn every_other_status_fails_by_name() {
    for (status, said) in [
        (0, "answered UNKNOWN"),
        (2, "answered NOT_SERVING"),
        (3, "answered SERVICE_UNKNOWN"),
        (7, "answered status 7"),
    ] {
        let (result, _) = probe(Answer::Status(status), "");
        assert_eq!(result, Err(Failure::Status(status)));
        assert_eq!(Failure::Status(status).to_string(), said);
    }
}

#[test]
fn ping_settings_goaway_padding_and_split_data_are_handled() {
    let (result, call) = probe(Answer::Awkward(1), "");
    assert_eq!(result, Ok(()), "{call:?}");
    assert_eq!(call.problem, None);
    // The PING came back as an ACK with its payload, as did the SETTINGS.
    assert!(call.frames.contains(&(6, 1)), "{:?}", call.frames);
    assert!(call.frames.contains(&(4, 1)), "{:?}", call.frames);
    let (result, _) = probe(Answer::Awkward(2), "");
    assert_eq!(result, Err(Failure::Status(2)));
}

#[test]
fn broken_calls_fail_with_a_reason() {
    let cases = [
        (Answer::Close, Failure::Closed),
        (Answer::Reset(7), Failure::Reset(7)),
        (Answer::GoAway(11), Failure::GoAway(11)),
        (Answer::TrailersOnly, Failure::NoStatus),
        (Answer::Http1, Failure::NotHttp2("it answered in HTTP/1")),
    ];
    for (answer, want) in cases {
        let (result, _) = probe(answer.clone(), "");
        assert_eq!(result, Err(want), "{answer:?}");
    }
    assert_eq!(
        Failure::Reset(7).to_string(),
        "the server reset the call (REFUSED_STREAM)"
    );
    assert_eq!(
        Failure::GoAway(11).to_string(),
        "the server closed the connection before answering (GOAWAY ENHANCE_YOUR_CALM)"
    );
}

#[test]
fn a_silent_server_times_out_and_a_closed_port_is_refused() {
    let server = Server::start(Answer::Silent);
    let started = Instant::now();
    let result = check(server.addr, "", Duration::from_millis(300));
    let took = started.elapsed();
    assert_eq!(result, Err(Failure::Timeout(Duration::from_millis(300))));
    assert!(took < 2 * SECOND, "{took:?}");
    assert_eq!(
        describe(server.addr, "", &result.unwrap_err()),
        format!(
            "gRPC health check of {}: no answer within 300 ms",
            server.addr
        )
    );
    // A port nothing listens on: bind one, note it, let it go.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let result = check(addr, "cart", SECOND);
    let Err(Failure::Connect(e)) = &result else {
        panic!("{result:?}")
    };
    assert!(e.contains("refused"), "{e}");
    assert!(
        describe(addr, "cart", &result.unwrap_err()).starts_with(&format!(
            "gRPC health check of {addr} for service \"cart\": cannot connect: "
        ))
    );
}

#[test]
fn the_request_is_byte_exact() {
    let addr: SocketAddr = "[::1]:7070".parse().unwrap();
    let bytes = request(addr, "a");
    let (preface, rest) = bytes.split_at(24);
    assert_eq!(preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // SETTINGS: ENABLE_PUSH 0.
    assert_eq!(&rest[..15], [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
    let rest = &rest[15..];
    let len = usize::from(rest[2]);
    assert_eq!(&rest[3..9], [1, 4, 0, 0, 0, 1]);
    let block = &rest[9..9 + len];
    assert!(block
        .windows(b"[::1]:7070".len())
        .any(|w| w == b"[::1]:7070"));
    // DATA, END_STREAM, stream 1: the message `0a 01 61` behind its prefix.
    assert_eq!(
        &rest[9 + len..],
        [0, 0, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0x0a, 1, b'a']
    );
    // A name of 127 bytes or more takes HPACK's multi-byte length.
    let mut out = Vec::new();
    hpack_string(&mut out, &"x".repeat(300));
    assert_eq!(&out[..3], [0x7f, 0xad, 0x01]);
}

#[test]
fn answers_are_read_as_protobuf() {
    // Other fields before the status are skipped; a missing status is UNKNOWN.
    let message = |body: &[u8]| {
        let mut m = vec![0];
        m.extend((body.len() as u32).to_be_bytes());
        m.extend(body);
        m
    };
    assert_eq!(
        health_status(&message(&[0x12, 2, b'h', b'i', 0x08, 1])),
        Ok(Some(1))
    );
    assert_eq!(health_status(&message(&[])), Ok(Some(0)));
    assert_eq!(health_status(&message(&[0x08, 2])[..6]), Ok(None));
    assert!(health_status(&message(&[0x08])).is_err());
    assert!(health_status(&message(&[0x0f])).is_err());
    assert!(health_status(&[1, 0, 0, 0, 0]).is_err());
    assert!(health_status(&[0, 0, 1, 0, 0]).is_err());
    // A negative enum value: ten bytes of varint.
    let mut negative = vec![0x08];
    negative.extend([0xff; 9]);
    negative.push(0x01);
    let status = health_status(&message(&negative)).unwrap().unwrap();
    assert_eq!(status_name(status), "status -1");
}
