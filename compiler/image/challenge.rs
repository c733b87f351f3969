//! `WWW-Authenticate` headers (RFC 9110 §11.6.1) as a registry's `401` sends them: which
//! scheme (`Bearer`, `Basic`) it asks for, with which parameters (`realm`, `service`, `scope`).
//! Parsed by hand, since the values are quoted strings that may hold commas.

/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1): a scheme and its
/// parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value: challenges separated by commas, each a scheme then
/// `name=value` parameters whose values are tokens or quoted strings (which may hold commas,
/// `=` and backslash escapes). What cannot be read is skipped, never a panic.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c);
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= b.len() {
            return out;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip to the next comma.
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            continue;
        }
        let word = &header[start..i];
        let after_ws = {
            let mut j = i;
            skip_ws(&mut j);
            j
        };
        if after_ws < b.len() && b[after_ws] == b'=' && !out.is_empty() {
            // A parameter of the current challenge (token68 `abc==` is taken as a name too,
            // and its value as empty: podc uses no token68).
            i = after_ws + 1;
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = header[i..].chars().next().unwrap_or(' ');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1; // the closing quote, if any
                v
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                header[s..i].to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.push((word.to_ascii_lowercase(), value));
            }
        } else {
            out.push(Challenge {
                scheme: word.to_string(),
                params: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn challenges_parse_with_quoted_commas_and_escapes() {
        for (header, want) in [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:samalba/my-app:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="a, b", Bearer realm="http://127.0.0.1:1/t?x=1", service=t"#,
                vec![
                    ch("Basic", &[("realm", "a, b")]),
                    ch(
                        "Bearer",
                        &[("realm", "http://127.0.0.1:1/t?x=1"), ("service", "t")],
                    ),
                ],
            ),
            (
                r#"bearer  Realm = "q\"uo\\te" ,error="invalid_token""#,
                vec![ch(
                    "bearer",
                    &[("realm", r#"q"uo\te"#), ("error", "invalid_token")],
                )],
            ),
            (
                r#"Bearer realm="unterminated"#,
                vec![ch("Bearer", &[("realm", "unterminated")])],
            ),
            ("", vec![]),
            (",,, =x, \"", vec![]),
            ("Negotiate", vec![ch("Negotiate", &[])]),
        ] {
            assert_eq!(parse_challenges(header), want, "{header}");
        }
    }
}
