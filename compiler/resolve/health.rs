//! An app's health probe: one kind, a command or an address podc can reach (with the headers
//! of an HTTP probe), and its times.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::checker::*;
use crate::diag::codes;
use crate::limits;
use crate::manifest;
use crate::parse::source::{join_index, join_key};
use crate::pod::{Health, Probe};
use crate::systemd::escape;

/// The longest duration a probe takes: a day.
const MAX_MS: u64 = 24 * 3600 * 1000;

/// The longest gRPC service name a probe asks for, in bytes (the request stays one small
/// HTTP/2 frame).
pub const MAX_GRPC_SERVICE: usize = 1024;

/// The app's probe at `path` (its `health` key), checked; `None` where it is broken.
pub(super) fn resolve_health(c: &mut Checker, path: &str, h: &manifest::Health) -> Option<Health> {
    let kinds = [
        h.exec.is_some().then_some("exec"),
        h.http.is_some().then_some("http"),
        h.tcp.is_some().then_some("tcp"),
        h.grpc.is_some().then_some("grpc"),
    ];
    let given: Vec<&str> = kinds.into_iter().flatten().collect();
    if given.len() != 1 {
        let found = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(" and ")
        };
        c.key(
            codes::HEALTH_KIND,
            path,
            format!(
                "a health probe is exactly one of exec, http, tcp and grpc; this one gives {found}"
            ),
        );
        return None;
    }
    let probe = resolve_probe(c, path, h);
    let interval_ms = duration(
        c,
        path,
        "interval",
        &h.interval,
        Health::DEFAULT_INTERVAL_MS,
    );
    let timeout_ms = duration(c, path, "timeout", &h.timeout, Health::DEFAULT_TIMEOUT_MS);
    let start_period_ms = duration(
        c,
        path,
        "startPeriod",
        &h.start_period,
        Health::DEFAULT_START_PERIOD_MS,
    );
    let failures = h.failures.unwrap_or(Health::DEFAULT_FAILURES);
    if !(1..=1000).contains(&failures) {
        c.value(
            codes::HEALTH_VALUE,
            &join_key(path, "failures"),
            format!("failures {failures} is out of range 1..1000"),
        );
    }
    Some(Health {
        probe: probe?,
        interval_ms: interval_ms?,
        timeout_ms: timeout_ms?,
        failures,
        start_period_ms: start_period_ms?,
    })
}

fn resolve_probe(c: &mut Checker, path: &str, h: &manifest::Health) -> Option<Probe> {
    if let Some(argv) = &h.exec {
        let p = join_key(path, "exec");
        let Some(program) = argv.first() else {
            c.value(codes::HEALTH_VALUE, &p, "the probe's exec names no program");
            return None;
        };
        // A bare name is looked up on PATH in the app's root, as Kubernetes does; a path must
        // be absolute.
        let program_ok = (!program.is_empty() && !program.contains('/'))
            || c.abs_path(&join_index(&p, 0), "the probe's program", program);
        for (i, a) in argv.iter().enumerate() {
            if a.contains('\0') {
                c.value(
                    codes::NUL,
                    &join_index(&p, i),
                    "a probe argument contains NUL",
                );
                return None;
            }
        }
        return program_ok.then(|| Probe::Exec(argv.clone()));
    }
    if let Some(http) = &h.http {
        let p = join_key(path, "http");
        let port = port(c, &p, http.port);
        let host = host(c, &p, &http.host);
        let url_path = http.path.clone().unwrap_or_else(|| "/".into());
        if !url_path.starts_with('/')
            || url_path.len() > 2048
            || url_path
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control())
        {
            c.value(
                codes::HEALTH_VALUE,
                &join_key(&p, "path"),
                format!(
                    "path {} is not what an HTTP request line can carry",
                    show(&url_path)
                ),
            )
            .help = Some(
                "a path starts with `/` and has no spaces or control characters (percent-encode them)"
                    .into(),
            );
            return None;
        }
        let headers = headers(c, &p, &http.headers, &url_path);
        return Some(Probe::Http {
            scheme: http.scheme.unwrap_or_default(),
            host: host?,
            port: port?,
            path: url_path,
            headers: headers?,
        });
    }
    if let Some(grpc) = &h.grpc {
        return resolve_grpc(c, &join_key(path, "grpc"), grpc);
    }
    let tcp = h.tcp.as_ref()?;
    let p = join_key(path, "tcp");
    let port = port(c, &p, tcp.port);
    let host = host(c, &p, &tcp.host);
    Some(Probe::Tcp {
        host: host?,
        port: port?,
    })
}

/// What the probe's unit lines hold besides its path and headers, with room to spare: the
/// shell, the script and its mode, the app's name, the times, the host and the port, each
/// quoted (under 300 bytes); or, in the comment above the app's `Wants=`, podc's words.
const PROBE_LINE_RESERVE: usize = 512;

/// Whether `b` may be in a header name: a `tchar` of RFC 7230.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The probe's headers at `path` (its `http` key): names that are tokens, each once (without
/// case), values of one line that the script's arguments and the unit's lines can carry.
fn headers(
    c: &mut Checker,
    path: &str,
    given: &BTreeMap<String, String>,
    url_path: &str,
) -> Option<BTreeMap<String, String>> {
    let p = join_key(path, "headers");
    let before = c.errors.len();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in given {
        let at = join_key(&p, name);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            c.key(
                codes::HEADER_NAME,
                &at,
                format!("header name {} is not a token", show(name)),
            )
            .help = Some(
                "a header name has letters, digits and ! # $ % & ' * + - . ^ _ ` | ~, and no spaces or `:`"
                    .into(),
            );
        } else if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
            c.key(
                codes::HEADER_TWICE,
                &at,
                format!(
                    "header {} is given twice (also as {})",
                    show(name),
                    show(first)
                ),
            )
            .help = Some("header names are compared without case; give each once".into());
        }
        if value.contains(['\r', '\n', '\0']) {
            c.value(
                codes::HEADER_VALUE,
                &at,
                format!(
                    "the value of header {} has a line break or NUL, which would end the header",
                    show(name)
                ),
            );
        }
        for s in [name, value] {
            if escape::exec_string_bytes(s) > escape::MAX_ARG_STRLEN {
                c.value(codes::ARG_TOO_LONG, &at, format!("header {} takes {} bytes: the kernel passes at most {} bytes per argument to the probe's script (MAX_ARG_STRLEN)", show(name), s.len(), escape::MAX_ARG_STRLEN - 1));
            }
        }
    }
    if c.errors.len() > before {
        return None;
    }
    // The path and the headers are words of the script's `ExecStart=` lines and, quoted, of
    // the comment that describes the probe; quoting at most sextuples a byte, so only lines
    // that might be too long are built to measure.
    let words = || {
        std::iter::once(url_path).chain(given.iter().flat_map(|(n, v)| [n.as_str(), v.as_str()]))
    };
    let bound: usize = words().map(|w| 6 * w.len() + 4).sum();
    if bound + PROBE_LINE_RESERVE >= limits::MAX_UNIT_LINE {
        let argv: Vec<String> = words().map(str::to_string).collect();
        let comment: usize = given
            .iter()
            .map(|(n, v)| escape::comment_text(&format!("{n}: {v}")).len() + 2)
            .sum::<usize>()
            + url_path.len();
        if escape::exec_line(&argv).len().max(comment) + PROBE_LINE_RESERVE >= limits::MAX_UNIT_LINE
        {
            c.value(codes::LINE_TOO_LONG, &p, format!("the headers are too long for a unit file: systemd reads lines of at most {} bytes", limits::MAX_UNIT_LINE));
            return None;
        }
    }
    Some(given.clone())
}

/// A gRPC probe at `p`: an address like a TCP probe's, and the service asked for, which goes
/// into the request and a unit's command line as it is (printable, bounded).
fn resolve_grpc(c: &mut Checker, p: &str, grpc: &manifest::GrpcProbe) -> Option<Probe> {
    let port = port(c, p, grpc.port);
    let host = host(c, p, &grpc.host);
    let service = grpc.service.clone().unwrap_or_default();
    if service.len() > MAX_GRPC_SERVICE || service.chars().any(char::is_control) {
        c.value(
            codes::HEALTH_VALUE,
            &join_key(p, "service"),
            format!(
                "service {} is not a gRPC service name a probe can ask for",
                show(&service)
            ),
        )
        .help = Some(format!(
            "a service name has no control characters and at most {MAX_GRPC_SERVICE} bytes, e.g. `grpc.health.v1.Health`; leave it out to ask for the whole server"
        ));
        return None;
    }
    Some(Probe::Grpc {
        host: host?,
        port: port?,
        service,
    })
}
fn port(c: &mut Checker, path: &str, v: u32) -> Option<u16> {
    match u16::try_from(v) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            c.value(
                codes::HEALTH_VALUE,
                &join_key(path, "port"),
                format!("port {v} is out of range 1..65535"),
            );
            None
        }
    }
}

fn host(c: &mut Checker, path: &str, v: &Option<String>) -> Option<IpAddr> {
    match v {
        None => Some(IpAddr::from([127, 0, 0, 1])),
        Some(s) => match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                c.value(
                    codes::HEALTH_VALUE,
                    &join_key(path, "host"),
                    format!("host {} is not an IP address", show(s)),
                )
                .help = Some(
                    "the probe runs in the pod's network; the app is at 127.0.0.1 (the default)"
                        .into(),
                );
                None
            }
        },
    }
}

fn duration(
    c: &mut Checker,
    path: &str,
    key: &str,
    v: &Option<String>,
    default: u64,
) -> Option<u64> {
    let Some(s) = v else { return Some(default) };
    match parse_duration(s) {
        Some(ms) if (1..=MAX_MS).contains(&ms) => Some(ms),
        _ => {
            c.value(
                codes::DURATION,
                &join_key(path, key),
                format!("{key} {} is not a duration from 1ms to 24h", show(s)),
            )
            .help = Some("a number with a unit: `500ms`, `10s`, `2m`, `1h`, or `1m30s`".into());
            None
        }
    }
}

/// Milliseconds of `1m30s`, `500ms`, `10s`: numbers each with a unit (h, m, s, ms), largest
/// first, each unit once.
pub fn parse_duration(s: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (i, factor) = UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| *u == &rest[..unit])
            .map(|(i, (_, f))| (i, *f))?;
        if last.is_some_and(|l| i <= l) {
            return None;
        }
        last = Some(i);
        total = total.checked_add(n.checked_mul(factor)?)?;
        rest = &rest[unit..];
    }
    last.map(|_| total)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{parse_duration, MAX_GRPC_SERVICE};
    use crate::parse::Format;
    use crate::pod::Probe;
    use crate::resolve::{resolve, Overrides};

    /// An app probed over HTTP with `headers` (a YAML flow map's inside): the headers of its
    /// probe, or the code and path of each diagnostic.
    fn headers(headers: &str) -> Result<BTreeMap<String, String>, Vec<(String, String)>> {
        let yaml = format!(
            "podc: 1\nname: p\napps:\n  - name: web\n    image: /i\n    exec: [/bin/web]\n    \
             health: {{http: {{port: 80, headers: {{{headers}}}}}}}\n"
        );
        let parsed = crate::read(&yaml, Format::Yaml).expect("the manifest parses");
        match resolve(&parsed, "p.yaml", Overrides::default()) {
            Ok(pod) => match &pod.apps[0].health.as_ref().unwrap().probe {
                Probe::Http { headers, .. } => Ok(headers.clone()),
                p => panic!("{p:?}"),
            },
            Err(ds) => Err(ds
                .iter()
                .map(|d| (d.code.code.to_string(), d.path.clone().unwrap_or_default()))
                .collect()),
        }
    }

    fn err(code: &str, path: &str) -> Vec<(String, String)> {
        vec![(code.into(), format!("apps[0].health.http.headers.{path}"))]
    }

    #[test]
    fn headers_are_kept_as_given() {
        let got = headers(
            r#"Host: example.com, X-Token: "a \"b\" %n $HOME \\ \t", "!#$%&'*+-.^_`|~09az": """#,
        )
        .unwrap();
        let want: BTreeMap<String, String> = [
            ("!#$%&'*+-.^_`|~09az", ""),
            ("Host", "example.com"),
            ("X-Token", "a \"b\" %n $HOME \\ \t"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(headers("").unwrap(), BTreeMap::new());
    }

    #[test]
    fn header_names_are_tokens() {
        for name in [
            "X Bad",
            "X:Y",
            "\"\"",
            "Ä",
            "X(1)",
            "\"a\\tb\"",
            "X@Y",
            "\"X/Y\"",
        ] {
            let shown = serde_saphyr::from_str::<String>(name).unwrap_or_else(|_| name.into());
            assert_eq!(
                headers(&format!("{name}: v")),
                Err(err("P0463", &shown)),
                "{name}"
            );
        }
    }

    #[test]
    fn header_values_are_one_line_without_nul() {
        for value in [
            r#""a\rb""#,
            r#""a\nb""#,
            r#""a\u0000b""#,
            r#""\r\nX-Evil: 1""#,
        ] {
            assert_eq!(
                headers(&format!("X-A: {value}")),
                Err(err("P0464", "X-A")),
                "{value}"
            );
        }
    }

    #[test]
    fn a_header_is_given_once_whatever_its_case() {
        assert_eq!(
            headers("Host: a, host: b, HOST: c"),
            Err([err("P0465", "Host"), err("P0465", "host")].concat())
        );
        assert_eq!(headers("X-A: \"1\", X-B: \"1\"").map(|h| h.len()), Ok(2));
    }

    #[test]
    fn headers_fit_an_argument_and_a_unit_line() {
        let big = "v".repeat(128 * 1024);
        assert_eq!(headers(&format!("X-A: {big}")), Err(err("P0403", "X-A")));
        // Nine arguments of 120 KiB each: each fits, the line does not.
        let value = "v".repeat(120 * 1024);
        let list: Vec<String> = (0..9).map(|i| format!("X-{i}: {value}")).collect();
        assert_eq!(
            headers(&list.join(", ")),
            Err(vec![("P0404".into(), "apps[0].health.http.headers".into())])
        );
        let list: Vec<String> = (0..7).map(|i| format!("X-{i}: {value}")).collect();
        assert_eq!(headers(&list.join(", ")).map(|h| h.len()), Ok(7));
    }

    /// A gRPC service name is taken up to its bound, in bytes, and refused past it.
    #[test]
    fn grpc_service_names_are_bounded() {
        let resolve = |service: &str| {
            let yaml = format!(
                "podc: 1\nname: p\napps:\n  - name: a\n    image: /i\n    exec: [/bin/x]\n    health: {{grpc: {{port: 7070, service: \"{service}\"}}}}\n"
            );
            let parsed = crate::read(&yaml, crate::parse::Format::Yaml).unwrap();
            crate::resolve::resolve(&parsed, "p.yaml", Default::default())
        };
        let pod = resolve(&"é".repeat(MAX_GRPC_SERVICE / 2)).unwrap();
        let probe = &pod.apps[0].health.as_ref().unwrap().probe;
        assert!(
            matches!(probe, crate::pod::Probe::Grpc { service, port: 7070, .. } if service.len() == MAX_GRPC_SERVICE)
        );
        let errors = resolve(&"s".repeat(MAX_GRPC_SERVICE + 1)).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|d| d.code.code).collect();
        assert_eq!(codes, ["P0462"], "{errors:?}");
    }

    #[test]
    fn durations() {
        for (s, ms) in [
            ("10s", Some(10_000)),
            ("500ms", Some(500)),
            ("1m30s", Some(90_000)),
            ("2h", Some(7_200_000)),
            ("1h1m1s1ms", Some(3_661_001)),
            ("", None),
            ("10", None),
            ("s", None),
            ("1s1m", None),
            ("1s1s", None),
            ("1.5s", None),
            ("-1s", None),
            ("10 s", None),
            ("1d", None),
        ] {
            assert_eq!(parse_duration(s), ms, "{s:?}");
        }
    }
}
