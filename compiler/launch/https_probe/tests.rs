//! The probe against the tests' HTTPS server (tests/common/tls.rs), whose certificate is
//! self-signed, for another name and expired: what it sends, and what it makes of every way a
//! server answers. Every address is on 127.0.0.1 (or `localhost`, which is another host name
//! to the probe and is never connected to).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;

#[path = "../../../tests/common/tls.rs"]
mod tls;

use tls::{answer, Reply, Server};

const SECOND: Duration = Duration::from_secs(1);
const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn probe_of(server: &Server, path: &str, headers: &[(&str, &str)]) -> Result<u16, Failed> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let p = Probe {
        host: LOOPBACK,
        port: server.addr.port(),
        path,
        headers: &headers,
    };
    check(&p, 3 * SECOND)
}

fn ok() -> Reply {
    answer("200 OK", &[], "fine")
}

#[test]
fn any_certificate_passes_and_the_request_is_the_kubelets() {
    let server = Server::https(|_| ok());
    assert_eq!(probe_of(&server, "/healthz?full=1", &[]), Ok(200));
    let [r] = &server.requests()[..] else {
        panic!("{:?}", server.requests())
    };
    assert!(r.tls);
    assert_eq!(r.line, "GET /healthz?full=1 HTTP/1.1");
    let host = server.addr.to_string();
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("Host", host.as_str()),
            ("User-Agent", "podc-health"),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ]
    );
    // No server name for an address, and HTTP/1.1 the only protocol offered.
    assert_eq!(r.sni, None);
    assert_eq!(r.alpn.as_deref(), Some("http/1.1"));
    // TLS 1.2 too.
    let server = Server::https_tls12(|_| ok());
    assert_eq!(probe_of(&server, "/", &[]), Ok(200));
}

#[test]
fn headers_go_as_given_and_replace_podcs_own() {
    let server = Server::https(|_| ok());
    let headers = [
        ("Host", "web.example"),
        ("user-agent", "kube-probe/1.37"),
        ("X-Token", "  a b  "),
        ("Accept", ""),
        ("Content-Length", "5"),
    ];
    assert_eq!(probe_of(&server, "/", &headers), Ok(200));
    let r = &server.requests()[0];
    assert_eq!(r.header("Host"), Some("web.example"));
    assert_eq!(r.header("User-Agent"), Some("kube-probe/1.37"));
    assert_eq!(r.header("X-Token"), Some("a b"));
    // An empty Accept leaves it out; Go never writes a Content-Length of the headers.
    assert_eq!(r.header("Accept"), None);
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(
        r.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .count(),
        1
    );
    // An empty User-Agent is left out too.
    let server = Server::https(|_| ok());
    assert_eq!(probe_of(&server, "/", &[("User-Agent", "")]), Ok(200));
    assert_eq!(server.requests()[0].header("User-Agent"), None);
}

#[test]
fn statuses_from_200_to_399_pass_and_others_fail() {
    for (status, passes) in [
        ("200 OK", true),
        ("204 No Content", true),
        ("302 Found", true), // without a Location: the probe's answer
        ("304 Not Modified", true),
        ("399 Odd", true),
        ("101 Switching Protocols", false),
        ("400 Bad Request", false),
        ("404 Not Found", false),
        ("503 Service Unavailable", false),
    ] {
        let reply = answer(status, &[], "");
        let server = Server::https(move |_| reply.clone());
        let code: u16 = status[..3].parse().unwrap();
        let got = probe_of(&server, "/healthz", &[]);
        if passes {
            assert_eq!(got, Ok(code), "{status}");
        } else {
            let failed = got.unwrap_err();
            assert_eq!(failed.why, Failure::Status(format!("HTTP/1.1 {status}")));
            assert_eq!(
                failed.to_string(),
                format!(
                    "HTTPS probe GET https://{}/healthz: answered: HTTP/1.1 {status}",
                    server.addr
                )
            );
        }
    }
}

#[test]
fn informational_answers_are_passed_over() {
    let server = Server::https(|_| {
        Reply::Bytes(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
    });
    let failed = probe_of(&server, "/", &[]).unwrap_err();
    assert_eq!(failed.why, Failure::Status("HTTP/1.1 500 Oops".into()));
}

#[test]
fn bodies_are_read_by_their_framing() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n3;x=y\r\n!!!\r\n0\r\n\r\n";
    let server = Server::https(|_| Reply::Bytes(chunked.to_vec()));
    assert_eq!(probe_of(&server, "/", &[]), Ok(200));
    // HTTP/1.0 without a length: until the end, which may come without TLS's close_notify.
    for reply in [Reply::Bytes, Reply::Abrupt] {
        let server = Server::https(move |_| reply(b"HTTP/1.0 200 ok\r\n\r\nall of it".to_vec()));
        assert_eq!(probe_of(&server, "/", &[]), Ok(200));
    }
    // A body shorter than its Content-Length fails.
    let short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec();
    let server = Server::https(move |_| Reply::Bytes(short.clone()));
    let failed = probe_of(&server, "/", &[]).unwrap_err();
    assert!(matches!(failed.why, Failure::Body(_)), "{failed}");
    // A body past 10 KiB is not waited for: the kubelet reads 10 KiB of it.
    let big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 10 * 1024))
        .collect::<Vec<u8>>();
    let server = Server::https(move |_| Reply::Stall(big.clone()));
    assert_eq!(probe_of(&server, "/", &[]), Ok(200));
}

#[test]
fn a_stalled_answer_fails_at_the_deadline() {
    for reply in [
        Reply::Stall(Vec::new()),
        Reply::Stall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome".to_vec()),
        Reply::Stall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec()),
    ] {
        let server = Server::https(move |_| reply.clone());
        let p = Probe {
            host: LOOPBACK,
            port: server.addr.port(),
            path: "/",
            headers: &[],
        };
        let start = Instant::now();
        let failed = check(&p, Duration::from_millis(400)).unwrap_err();
        let took = start.elapsed();
        assert_eq!(failed.why, Failure::Timeout(Duration::from_millis(400)));
        assert!(
            took >= Duration::from_millis(400) && took < 2 * SECOND,
            "{took:?}"
        );
        assert!(
            failed.to_string().ends_with("no answer within 400 ms"),
            "{failed}"
        );
    }
}

#[test]
fn a_server_without_tls_or_without_its_key_fails_the_handshake() {
    let plain = Server::http(|_| ok());
    let failed = probe_of(&plain, "/", &[]).unwrap_err();
    assert!(matches!(failed.why, Failure::Tls(_)), "{failed}");
    assert!(
        failed.to_string().contains(": TLS handshake failed: "),
        "{failed}"
    );
    // Any certificate, but the server must hold its key: the handshake's signature is checked,
    // in TLS 1.3 and 1.2.
    for tls12 in [false, true] {
        let impostor = Server::https_with_another_key(tls12, |_| ok());
        let failed = probe_of(&impostor, "/", &[]).unwrap_err();
        assert!(matches!(failed.why, Failure::Tls(_)), "{failed}");
        assert!(impostor.requests().is_empty());
    }
    // Nobody there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Probe {
        host: LOOPBACK,
        port,
        path: "/",
        headers: &[],
    };
    let failed = check(&p, SECOND).unwrap_err();
    assert!(matches!(failed.why, Failure::Connect(_)), "{failed}");
}

#[test]
fn what_answers_in_something_else_than_http_fails() {
    for bytes in [
        &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..],
        b"",
        b"HTTP/1.1 200 OK\r\nX",
    ] {
        let server = Server::https(move |_| Reply::Bytes(bytes.to_vec()));
        let failed = probe_of(&server, "/", &[]).unwrap_err();
        assert!(
            matches!(failed.why, Failure::NotHttp(_) | Failure::Closed),
            "{bytes:?}: {failed}"
        );
    }
}

#[test]
fn redirects_to_the_same_host_are_followed() {
    let server = Server::https(|r| match r.line.as_str() {
        "GET /start HTTP/1.1" => answer("302 Found", &["Location: next/../ok?x=1"], ""),
        "GET /ok?x=1 HTTP/1.1" => answer("301 Moved", &["Location: /down"], ""),
        "GET /down HTTP/1.1" => answer("503 Down", &[], ""),
        _ => answer("404 Not Found", &[], ""),
    });
    let failed = probe_of(&server, "/start", &[("X-Token", "t")]).unwrap_err();
    assert_eq!(failed.why, Failure::Status("HTTP/1.1 503 Down".into()));
    assert_eq!(
        failed.url.to_string(),
        format!("{}/down", server.origin(true))
    );
    let requests = server.requests();
    let lines: Vec<&str> = requests.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /start HTTP/1.1",
            "GET /ok?x=1 HTTP/1.1",
            "GET /down HTTP/1.1"
        ]
    );
    // Each with the probe's headers again, and where it came from.
    assert!(requests.iter().all(|r| r.header("X-Token") == Some("t")));
    assert_eq!(requests[0].header("Referer"), None);
    let from = format!("{}/start", server.origin(true));
    assert_eq!(requests[1].header("Referer"), Some(from.as_str()));
}

#[test]
fn a_redirect_may_change_the_scheme_and_port_but_not_the_host() {
    let plain = Server::http(|_| ok());
    let to_plain = format!("Location: {}/plain", plain.origin(false));
    let server = Server::https(move |_| answer("307 Temporary Redirect", &[&to_plain], ""));
    assert_eq!(probe_of(&server, "/", &[("Host", "web.example")]), Ok(200));
    let [r] = &plain.requests()[..] else {
        panic!("{:?}", plain.requests())
    };
    assert!(!r.tls);
    assert_eq!(r.line, "GET /plain HTTP/1.1");
    // An absolute Location names the host; from https to http there is no Referer.
    assert_eq!(r.header("Host"), Some(plain.addr.to_string().as_str()));
    assert_eq!(r.header("Referer"), None);
    // To another host name (`localhost` is not `127.0.0.1`): not followed, and the 3xx passes.
    let elsewhere = format!("Location: https://localhost:{}/x", plain.addr.port());
    let server = Server::https(move |_| answer("302 Found", &[&elsewhere], ""));
    assert_eq!(probe_of(&server, "/", &[]), Ok(302));
    assert_eq!(plain.requests().len(), 1);
}

#[test]
fn a_relative_redirect_keeps_the_host_header() {
    let server = Server::https(|r| match r.line.as_str() {
        "GET / HTTP/1.1" => answer("308 Permanent Redirect", &["Location: /next"], ""),
        _ => ok(),
    });
    assert_eq!(probe_of(&server, "/", &[("Host", "web.example")]), Ok(200));
    let hosts: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("Host").map(str::to_string))
        .collect();
    assert_eq!(
        hosts,
        [Some("web.example".into()), Some("web.example".into())]
    );
}

#[test]
fn the_tenth_redirect_fails() {
    let server = Server::https(|_| answer("302 Found", &["Location: /again"], ""));
    let failed = probe_of(&server, "/", &[]).unwrap_err();
    assert_eq!(failed.why, Failure::Redirects);
    assert_eq!(server.requests().len(), 10);
    // Nine are followed.
    let server = Server::https(|r| {
        let n: usize = r.line[5..].split(' ').next().unwrap().parse().unwrap_or(0);
        match n {
            9 => ok(),
            n => answer("302 Found", &[&format!("Location: /{}", n + 1)], ""),
        }
    });
    assert_eq!(probe_of(&server, "/0", &[]), Ok(200));
    assert_eq!(server.requests().len(), 10);
}

#[test]
fn a_redirect_that_cannot_be_followed_fails() {
    for (location, why) in [
        ("/%zz", "invalid URL escape \"%zz\""),
        ("https://127.0.0.1:x/", "invalid port \":x\" after host"),
        (":nothing", "it has no scheme before its `:`"),
    ] {
        let header = format!("Location: {location}");
        let server = Server::https(move |_| answer("302 Found", &[&header], ""));
        let failed = probe_of(&server, "/", &[]).unwrap_err();
        assert_eq!(
            failed.why,
            Failure::Location(location.into(), why.into()),
            "{location}"
        );
    }
    // Same host, but neither http nor https.
    let server = Server::https(|_| answer("302 Found", &["Location: ftp://127.0.0.1/x"], ""));
    let failed = probe_of(&server, "/", &[]).unwrap_err();
    assert_eq!(failed.why, Failure::Scheme("ftp".into()));
}

#[test]
fn the_request_is_laid_out_as_go_writes_it() {
    let url = Url::probe("https", LOOPBACK, 8443, "/a\"b/é?q=1#frag");
    let headers = [("X-A".to_string(), "1".to_string())];
    assert_eq!(
        request(
            &url,
            "127.0.0.1:8443",
            &headers,
            Some("https://127.0.0.1:8443/")
        ),
        "GET /a%22b/%C3%A9?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nUser-Agent: podc-health\r\n\
         Accept: */*\r\nX-A: 1\r\nReferer: https://127.0.0.1:8443/\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn paths_become_targets_as_kubernetes_makes_them() {
    let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    for (path, target) in [
        ("/healthz", "/healthz"),
        ("", "/"),
        ("/a?b=c&d", "/a?b=c&d"),
        ("/a?", "/a?"),
        ("/a#frag", "/a"),
        ("/a%2Fb", "/a%2Fb"),
        ("/!$&'()*+,;=:@[]", "/!$&'()*+,;=:@[]"),
        ("/a\"b", "/a%22b"),
        ("/{x}|^`\\", "/%7Bx%7D%7C%5E%60%5C"),
        ("/a%22\"", "/a%22%22"),
        // Bad escapes: the whole path taken as it is, and escaped.
        ("/a%zz?q", "/a%25zz%3Fq"),
        ("//other/x", "/x"),
    ] {
        assert_eq!(
            Url::probe("https", LOOPBACK, 1, path).target(),
            target,
            "{path}"
        );
    }
    let url = Url::probe("https", v6, 8443, "/");
    assert_eq!(url.authority, "[::1]:8443");
    assert_eq!(url.hostname(), "::1");
    assert_eq!(url.port(), "8443");
}

#[test]
fn locations_resolve_as_go_resolves_them() {
    let base = Url::probe("https", LOOPBACK, 8443, "/a/b/c?q");
    let join = |loc: &str| base.join(loc).unwrap().map(|u| u.to_string());
    for (location, want) in [
        ("d", "https://127.0.0.1:8443/a/b/d"),
        ("../d", "https://127.0.0.1:8443/a/d"),
        ("../../../../d", "https://127.0.0.1:8443/d"),
        ("./", "https://127.0.0.1:8443/a/b/"),
        ("..", "https://127.0.0.1:8443/a/"),
        ("?x", "https://127.0.0.1:8443/a/b/c?x"),
        ("#f", "https://127.0.0.1:8443/a/b/c?q#f"),
        ("/d/./e/../f", "https://127.0.0.1:8443/d/f"),
        ("//127.0.0.1:9/d", "https://127.0.0.1:9/d"),
        ("HTTP://127.0.0.1/d", "http://127.0.0.1/d"),
        ("https://user:pw@127.0.0.1:1/d", "https://127.0.0.1:1/d"),
        ("https://[::1]:1", "https://[::1]:1/"),
        ("d e", "https://127.0.0.1:8443/a/b/d%20e"),
    ] {
        assert_eq!(join(location).as_deref(), Some(want), "{location}");
    }
    assert_eq!(base.join("mailto:x@y").unwrap(), None);
    assert_eq!(
        base.join("https://[::1]:1/").unwrap().unwrap().hostname(),
        "::1"
    );
    assert_eq!(base.join("https://127.0.0.1/").unwrap().unwrap().port(), "");
    // A scheme without `//`: a URL without a host.
    assert_eq!(base.join("a:b").unwrap(), None);
    for bad in ["1a:b", "http://[::1/", "https://a b/", "/\u{1}"] {
        assert!(base.join(bad).is_err(), "{bad}");
    }
}
