//! Escaping of values for the unit-file directives they land in.
//!
//! systemd reads a directive's value in stages, and each stage has its own special characters:
//! first `%` specifiers are expanded over the whole value (`%%` is a literal `%`); then, for
//! word lists such as `ExecStart=` and `Environment=`, words are split and unquoted with C
//! escapes (`\\`, `\"`, `\n`, `\xNN`); finally `ExecStart=` arguments get `$VAR`/`${VAR}`
//! substitution at run time (`$$` is a literal `$`). The functions here undo all three, so that
//! what a process sees is byte for byte what the manifest said. They are total: values systemd
//! cannot carry at all (NUL bytes, `$` in an executable path, line breaks in a path) are
//! refused earlier, by [`crate::resolve`], with a diagnostic.

use std::fmt::Write;

use super::argv::{Arg, Part};

/// Characters no value can carry: systemd's C unescaping rejects `\0`.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// Control characters (including line breaks), which break a line-based unit file unless
/// quoted and escaped.
pub fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Quotes one word for a word-list directive: specifiers, quotes, backslashes and control
/// characters escaped; `$` too when `dollar` (for `ExecStart=`, which substitutes variables).
fn quote(s: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_quoted(&mut out, s, dollar);
    out.push('"');
    out
}

/// What [`quote`] writes between the quotes.
fn push_quoted(out: &mut String, s: &str, dollar: bool) {
    // Runs of bytes that need no escape are copied whole (most text is such a run).
    let plain = |b: u8| {
        (0x20..0x7f).contains(&b) && !matches!(b, b'%' | b'\\' | b'"') && !(dollar && b == b'$')
    };
    let mut rest = s;
    while !rest.is_empty() {
        let run = rest.bytes().position(|b| !plain(b)).unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        rest = &rest[c.len_utf8()..];
        match c {
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // Other control characters (C1, U+0080..U+009F) as \u escapes.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The value of `ExecStart=`: every argument quoted and escaped.
pub fn exec_line(argv: &[String]) -> String {
    let mut line = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&quote(a, true));
    }
    line
}

/// The value of `ExecStart=` for arguments with variables: each argument quoted, its text
/// escaped as [`exec_line`] escapes it and each variable `${NAME}`, which systemd replaces by
/// the value when it starts the program (one argument, whatever the value holds). The
/// program, `argv[0]`, has no variable (`resolve` refuses one: systemd does not substitute
/// there).
pub fn exec_args_line(argv: &[Arg]) -> String {
    let mut line = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push('"');
        for p in a.parts() {
            match p {
                Part::Text(t) => push_quoted(&mut line, t, true),
                Part::Var(name) => {
                    debug_assert!(is_env_name(name));
                    line.push_str("${");
                    line.push_str(name);
                    line.push('}');
                }
            }
        }
        line.push('"');
    }
    line
}

/// Reads back a line of double-quoted words as [`exec_line`] (`dollar`: `ExecStart=`) or
/// [`env_assignment`] writes them, the way systemd reads them (systemd.syntax(7),
/// systemd.service(5)): `%%` is `%`, each word is double-quoted with C escapes (`\\`, `\"`,
/// `\n`, `\t`, `\r`, `\xHH`, `\uHHHH`), and with `dollar` `$$` is `$`. `None` for anything
/// podc does not write: a lone `%` or `$`, an unquoted word, a raw control character, another
/// escape. The one decoder of this syntax: the host commands read a unit's `ExecStart=` with
/// it, and the tests hold the escaping to it.
pub fn decode_words(line: &str, dollar: bool) -> Option<Vec<String>> {
    decode(line, dollar, false)?
        .into_iter()
        .map(|a| a.as_text().map(str::to_string))
        .collect()
}

/// Reads back a line [`exec_args_line`] writes, as [`decode_words`] does, and with `${NAME}`
/// a variable.
pub fn decode_args(line: &str) -> Option<Vec<Arg>> {
    decode(line, true, true)
}

/// [`decode_words`], and with `vars` `${NAME}` (of a variable name) too.
fn decode(line: &str, dollar: bool, vars: bool) -> Option<Vec<Arg>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        match chars.next() {
            None => return Some(words),
            Some('"') => {}
            Some(_) => return None,
        }
        let mut parts = Vec::new();
        let mut w = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '%' if chars.next()? == '%' => w.push('%'),
                '%' => return None,
                '$' if dollar => match chars.next()? {
                    '$' => w.push('$'),
                    '{' if vars => {
                        let mut name = String::new();
                        loop {
                            match chars.next()? {
                                '}' => break,
                                c => name.push(c),
                            }
                        }
                        if !is_env_name(&name) {
                            return None;
                        }
                        parts.push(Part::Text(std::mem::take(&mut w)));
                        parts.push(Part::Var(name));
                    }
                    _ => return None,
                },
                '\\' => w.push(unescape(&mut chars)?),
                c if c.is_control() => return None,
                c => w.push(c),
            }
        }
        parts.push(Part::Text(w));
        words.push(Arg::from_parts(parts));
    }
}

/// The character a C escape stands for, its backslash already read.
fn unescape(chars: &mut impl Iterator<Item = char>) -> Option<char> {
    let hex = |chars: &mut dyn Iterator<Item = char>, n: usize| -> Option<u32> {
        let h: String = chars.take(n).collect();
        (h.len() == n).then_some(())?;
        u32::from_str_radix(&h, 16).ok()
    };
    Some(match chars.next()? {
        '\\' => '\\',
        '"' => '"',
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'x' => char::from(u8::try_from(hex(chars, 2)?).ok()?),
        'u' => char::from_u32(hex(chars, 4)?)?,
        _ => return None,
    })
}

/// A word of an `Exec*=` line that systemd fills in from one of its own specifiers (`%i`, the
/// instance of a template unit); only podc's fixed specifiers, never manifest text, go here.
pub fn specifier(spec: &'static str) -> String {
    debug_assert!(spec.len() == 2 && spec.starts_with('%'));
    format!("\"{spec}\"")
}

/// One `BindPaths=`/`BindReadOnlyPaths=` entry, `"source":"destination"`: systemd splits the
/// entry at the `:` before it unquotes each part (a quoted `"source:destination"` is taken as
/// one path, measured on 252), so each path is quoted on its own. Neither may hold a `:`;
/// `resolve` refuses those.
pub fn bind_spec(source: &str, destination: &str) -> String {
    format!("{}:{}", quote(source, false), quote(destination, false))
}

/// The value of `BindReadOnlyPaths=` that binds the app's credential `name` (a name checked
/// by `resolve`, `[a-z0-9-]`) at `destination`: `%d` is the unit's credentials directory.
pub fn credential_bind(name: &str, destination: &str) -> String {
    debug_assert!(is_name(name));
    format!("%d/{name}:{}", quote(destination, false))
}

/// One `Environment=` assignment, quoted as a single word. `$` is literal there.
pub fn env_assignment(name: &str, value: &str) -> String {
    quote(&format!("{name}={value}"), false)
}

/// One line of an environment file (`EnvironmentFile=`): `NAME="value"`, the value double-quoted
/// with `\`, `"`, `` ` `` and `$` escaped; a line break inside the quotes is part of the value.
/// `name` is a variable name and `value` passed [`env_file_problem`]. Measured byte-exact on
/// systemd 252 (tab, line break, trailing blanks, quotes, `$`, backslashes, non-ASCII).
pub fn env_file_line(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 4);
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '`' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"\n");
    out
}

/// Why `value` cannot be carried by an environment file, if it cannot: systemd reads them as
/// UTF-8 without NUL, noncharacters and U+FEFF (systemd.exec(5), `EnvironmentFile=`).
pub fn env_file_problem(value: &str) -> Option<&'static str> {
    value.chars().find_map(|c| match c {
        '\0' => Some("a NUL character, which an environment variable cannot hold"),
        '\u{feff}' => {
            Some("a byte order mark (U+FEFF), which systemd does not read in an environment file")
        }
        c if ('\u{fdd0}'..='\u{fdef}').contains(&c) || (c as u32) & 0xfffe == 0xfffe => {
            Some("a Unicode noncharacter, which systemd does not read in an environment file")
        }
        _ => None,
    })
}

/// A value systemd takes verbatim after specifier expansion (paths, descriptions, names).
pub fn verbatim(s: &str) -> String {
    s.replace('%', "%%")
}

// Validators: what each kind of value must be for systemd and the kernel to carry it exactly.
// The escapers above are total; these say, for `resolve`, which values cannot be carried at all.

/// The longest name of one path component Linux file systems take (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// The longest single argument or environment string the kernel passes to a program
/// (MAX_ARG_STRLEN: 32 pages, its terminating NUL included); a longer one fails exec with E2BIG.
pub const MAX_ARG_STRLEN: usize = 128 * 1024;
/// The most bytes of arguments and environment together that podc lets an app have. The kernel
/// allows a quarter of the stack limit (2 MiB with the usual 8 MiB) for these strings, their
/// pointers and what systemd adds; 1 MiB leaves room for that and for a smaller stack limit.
pub const MAX_ARGS_TOTAL: usize = 1 << 20;

/// The longest name of a pod, an app or a volume.
pub const MAX_NAME: usize = 63;

/// The Name rule: `^[a-z0-9]+(-[a-z0-9]+)*$`, 1 to [`MAX_NAME`] characters. Such a name is safe
/// as a file name, a unit name, a machine name and one word of a command line.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A user or group name systemd and the pod's user database take: letters, digits, `_`, `-`
/// and `.`, starting with a letter or `_`, at most 31 characters.
pub fn is_user_name(n: &str) -> bool {
    n.len() <= 31
        && n.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// An environment variable name podc writes: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_env_name(k: &str) -> bool {
    k.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a path can be named in overlayfs's mount options, which `,` separates, `:` joins
/// lower layers in, and `\` escapes.
pub fn overlay_safe(path: &str) -> bool {
    !path.contains([',', ':', '\\'])
}

/// `/a//b/./c/` → `/a/b/c`.
pub fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Whether an absolute path is already what [`normalize`] makes of it: no empty or `.`
/// components and no trailing `/` (except `/` itself).
pub fn is_normalized(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && path[1..].split('/').all(|c| !c.is_empty() && c != "."))
}

/// An absolute path in normal form, without `..`, control characters or over-long components.
pub fn is_normal_abs_path(path: &str) -> bool {
    plain_abs_path(path)
        || (path.starts_with('/')
            && !has_control(path)
            && !path.split('/').any(|c| c == "..")
            && long_component(path).is_none()
            && is_normalized(path))
}

/// The common case of [`is_normal_abs_path`] in one pass: printable ASCII, `/` and then
/// components that are neither empty, `.`, `..` nor longer than [`NAME_MAX`]. `false` says
/// only that the slower checks must decide (and name the problem).
pub fn plain_abs_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    if bytes.len() == 1 {
        return true;
    }
    let mut start = 1;
    for i in 1..=bytes.len() {
        if i == bytes.len() || bytes[i] == b'/' {
            let c = &bytes[start..i];
            if c.is_empty() || c == b"." || c == b".." || c.len() > NAME_MAX {
                return false;
            }
            start = i + 1;
        } else if !(b' '..=b'~').contains(&bytes[i]) {
            return false;
        }
    }
    true
}

/// A path relative to a directory, in normal form and staying below it (cgroup paths in the
/// mount plan); empty means the directory itself.
pub fn is_normal_rel_path(path: &str) -> bool {
    path.is_empty() || (!path.starts_with('/') && is_normal_abs_path(&format!("/{path}")))
}

/// The first component of `path` longer than [`NAME_MAX`] bytes, if any.
pub fn long_component(path: &str) -> Option<&str> {
    path.split('/').find(|c| c.len() > NAME_MAX)
}

/// Why systemd would refuse `path` as the program of an `Exec*=` line, if it would. It refuses
/// quotes and backslashes in the executable name ("Executable name contains special
/// characters", measured on 252) and does not unescape `$` there.
pub fn exec_path_problem(path: &str) -> Option<&'static str> {
    if path.contains(['\'', '"', '\\']) {
        Some("contains a quote or backslash, which systemd refuses in an executable name")
    } else if path.contains('$') {
        Some("contains `$`, which systemd cannot pass literally in an executable path")
    } else if path == "/" {
        Some("is the root directory, not a program")
    } else {
        None
    }
}

/// Why systemd would refuse `id` as a numeric `User=`/`Group=`, if it would: (uid_t)-1 means
/// "no user", and 65535 is the 16-bit -1 that systemd refuses too.
pub fn id_problem(id: u32) -> Option<&'static str> {
    match id {
        u32::MAX => Some("means \"no user or group\" to the kernel and systemd"),
        0xFFFF => Some("is the 16-bit -1, which systemd refuses"),
        _ => None,
    }
}

/// Whether systemd would change `value` in a directive it takes verbatim: it strips white
/// space at the end of every value.
pub fn loses_trailing_space(value: &str) -> bool {
    value.ends_with([' ', '\t'])
}

/// The bytes one argument or environment entry takes in a program's exec, its NUL included.
pub fn exec_string_bytes(s: &str) -> usize {
    s.len() + 1
}

/// A line of a comment: the text as a JSON-style quoted string, so that a line break or a
/// trailing backslash cannot end the comment or continue it into the next line.
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters that are not control characters but still move or hide text where a reader
/// looks: line and paragraph separators, zero-width characters, bidirectional overrides and
/// isolates, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Text for a cell of a GitHub-flavoured Markdown table, shown as written: `|` cannot end the
/// cell, `<` and `&` cannot start HTML or an entity, and the characters with inline meaning
/// (`` ` ``, `*`, `[`, `]`, `~`, `$`, `!`, `#`, `\`, and `_` but between letters) are
/// backslash-escaped. A line break, a control character or an invisible one is shown as its
/// escape (`\n`, `\u{202e}`), so a value cannot end the row or hide part of itself.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_markdown_cell(&mut out, s);
    out
}

/// [`markdown_cell`], appended to `out`.
pub fn push_markdown_cell(out: &mut String, s: &str) {
    // The common case, a plain path or word, as it is.
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" /.,:;=+@%'\"()-".contains(&b))
    {
        out.push_str(s);
        return;
    }
    let mut prev = ' ';
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied().unwrap_or(' ');
        let after = std::mem::replace(&mut prev, c);
        match c {
            // Between two letters or digits `_` cannot open or close emphasis (GFM's rule), so
            // CAP_NET_RAW stays as it is.
            '_' if after.is_alphanumeric() && next.is_alphanumeric() => out.push('_'),
            '|' | '`' | '*' | '_' | '[' | ']' | '~' | '$' | '!' | '\\' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("\\\\n"),
            '\t' => out.push_str("\\\\t"),
            '\r' => out.push_str("\\\\r"),
            c if c.is_control() || invisible(c) => {
                let _ = write!(out, "\\\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Text for a Mermaid label written inside `"…"`: letters, digits and a few plain punctuation
/// characters as they are, everything else (quotes, brackets, `#`, `<`, `&`, `|`, `%`,
/// backticks, line breaks, any non-ASCII character) as Mermaid's entity code `#<decimal>;`,
/// which it shows as the character. Nothing in the label can end it, start markup or a comment.
pub fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '/' | '.' | '_' | '-' | ':' | ',' | '=' | '+' | '@' | '(' | ')'
            )
        {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", c as u32);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// [`super::decode_words`], for tests: every line podc writes decodes.
    pub(crate) fn decode_words(line: &str, dollar: bool) -> Vec<String> {
        super::decode_words(line, dollar).unwrap_or_else(|| panic!("{line:?} does not decode"))
    }

    #[test]
    fn the_decoder_refuses_what_podc_does_not_write() {
        assert_eq!(
            super::decode_words(r#""a" "b c""#, true),
            Some(vec!["a".into(), "b c".into()])
        );
        assert_eq!(
            super::decode_words(r#""100%%" "$$x""#, true),
            Some(vec!["100%".into(), "$x".into()])
        );
        assert_eq!(
            super::decode_words(r#""$x""#, false),
            Some(vec!["$x".into()])
        );
        assert_eq!(
            super::decode_words(r#""\x41\u00e9""#, true),
            Some(vec!["Aé".into()])
        );
        for bad in [
            r#"a"#, r#""%h""#, r#""$x""#, r#""\q""#, "\"a\tb\"", r#""open"#, r#""\x4""#,
        ] {
            assert_eq!(super::decode_words(bad, true), None, "{bad:?}");
        }
    }

    pub(crate) const HOSTILE: &[&str] = &[
        "",
        " ",
        "a b",
        "%h",
        "%%",
        "100%",
        "$HOME",
        "${HOME}",
        "$$",
        "a$",
        ";",
        "\\;",
        "'single'",
        "\"double\"",
        "back\\slash",
        "trailing\\",
        "line\nbreak",
        "tab\there",
        "cr\rhere",
        "bell\u{7}",
        "del\u{7f}",
        "c1\u{85}",
        "héllo ✓ 日本",
        "-dash",
        "--flag=x y",
        "\\x41",
        "%%h$$HOME\\\\\"",
    ];

    #[test]
    fn exec_arguments_round_trip() {
        let argv: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
        let line = exec_line(&argv);
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(decode_words(&line, true), argv);
    }

    #[test]
    fn arguments_with_variables_round_trip() {
        let argv = vec![
            Arg::text("/bin/echo"),
            Arg::from_parts([
                Part::Var("A".into()),
                Part::Text(" $ ${B} 100% \"x\"\n".into()),
                Part::Var("_b2".into()),
            ]),
            Arg::from_parts([Part::Var("A".into())]),
            Arg::text(""),
        ];
        let line = exec_args_line(&argv);
        assert_eq!(
            line,
            r#""/bin/echo" "${A} $$ $${B} 100%% \"x\"\n${_b2}" "${A}" """#
        );
        assert_eq!(super::decode_args(&line), Some(argv.clone()));
        // Without variables, the line is exec_line's.
        let plain: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
        let args: Vec<Arg> = plain.iter().map(|s| Arg::text(s.as_str())).collect();
        assert_eq!(exec_args_line(&args), exec_line(&plain));
        // decode_words takes no variable; decode_args no name that is not one.
        assert_eq!(super::decode_words(&line, true), None);
        assert_eq!(super::decode_args(r#""${a-b}""#), None);
        assert_eq!(super::decode_args(r#""${A""#), None);
    }

    #[test]
    fn environment_round_trips_and_keeps_dollar() {
        for v in HOSTILE {
            let word = env_assignment("K", v);
            assert!(!word.contains('\n'));
            assert_eq!(decode_words(&word, false), vec![format!("K={v}")], "{v:?}");
        }
        assert_eq!(env_assignment("A", "$HOME"), "\"A=$HOME\"");
    }

    /// A small deterministic generator (xorshift64*), so the property test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Any string without NUL: specials, ASCII and C1 controls, ASCII, BMP and astral
        /// characters, sometimes empty, sometimes with a leading `-`.
        fn string(&mut self) -> String {
            let len = self.below(12);
            let mut s = String::new();
            if self.below(8) == 0 {
                s.push('-');
            }
            for _ in 0..len {
                let c = match self.below(6) {
                    0 => {
                        let specials = b"%$\\\"';{} \t\n\r#=@+!:~";
                        specials[self.below(specials.len() as u64) as usize] as char
                    }
                    1 => char::from_u32(1 + self.below(31) as u32).unwrap(),
                    2 => char::from_u32(0x7f + self.below(0x21) as u32).unwrap(),
                    3 => char::from_u32(0x20 + self.below(0x5f) as u32).unwrap(),
                    4 => char::from_u32(0xa0 + self.below(0xd000) as u32).unwrap_or('é'),
                    _ => char::from_u32(0x1_0000 + self.below(0x1_0000) as u32).unwrap_or('🚀'),
                };
                s.push(c);
            }
            s
        }
    }

    /// For arbitrary strings, what lands in ExecStart= and Environment= decodes back to the
    /// original under systemd's documented rules, on one line.
    #[test]
    fn escaping_round_trips_for_arbitrary_strings() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let argv: Vec<String> = (0..1 + rng.below(5)).map(|_| rng.string()).collect();
            let line = exec_line(&argv);
            assert!(!line.contains(['\n', '\r']), "{line:?}");
            assert_eq!(decode_words(&line, true), argv);
            let value = rng.string();
            let word = env_assignment("NAME", &value);
            assert!(!word.contains(['\n', '\r']), "{word:?}");
            assert_eq!(decode_words(&word, false), vec![format!("NAME={value}")]);
        }
    }

    #[test]
    fn validators_name_what_systemd_and_the_kernel_refuse() {
        assert_eq!(long_component("/a/b"), None);
        let long = format!("/data/{}/x", "n".repeat(256));
        assert_eq!(long_component(&long).map(str::len), Some(256));
        assert_eq!(long_component(&format!("/{}", "n".repeat(255))), None);
        for bad in ["/bin/it's", "/bin/\"x\"", "/bin/a\\b", "/bin/$x", "/"] {
            assert!(exec_path_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(exec_path_problem("/usr/bin/env"), None);
        assert!(id_problem(65535).is_some() && id_problem(u32::MAX).is_some());
        assert_eq!(id_problem(65534), None);
        assert_eq!(id_problem(65536), None);
        assert!(loses_trailing_space("/data ") && loses_trailing_space("/data\t"));
        assert!(!loses_trailing_space("/data"));
    }

    #[test]
    fn is_normalized_agrees_with_normalize() {
        for p in [
            "/", "//", "/a", "/a/", "/a//b", "/./a", "/a/.", "/a/..", "/.a", "/a.b/c", "a", "",
            "/a/./b", "///", "/.",
        ] {
            assert_eq!(is_normalized(p), normalize(p) == p, "{p:?}");
        }
    }

    #[test]
    fn exec_line_pins_exact_text() {
        let argv = ["/bin/sh", "-c", "echo \"$HOME\" 100%"].map(String::from);
        assert_eq!(
            exec_line(&argv),
            r#""/bin/sh" "-c" "echo \"$$HOME\" 100%%""#
        );
    }

    #[test]
    fn verbatim_escapes_specifiers_only() {
        assert_eq!(verbatim("/srv/100%/a b"), "/srv/100%%/a b");
    }

    #[test]
    fn comments_cannot_break_out() {
        for v in HOSTILE {
            let c = comment_text(v);
            assert!(
                !c.contains('\n') && !c.contains('\r') && c.ends_with('"'),
                "{c}"
            );
        }
    }
}

#[cfg(test)]
mod markdown_tests {
    use super::{markdown_cell, mermaid_label};

    #[test]
    fn markdown_cells_show_text_as_written() {
        assert_eq!(markdown_cell("/var/lib/x"), "/var/lib/x");
        assert_eq!(markdown_cell("CAP_NET_RAW"), "CAP_NET_RAW");
        assert_eq!(markdown_cell("_a_ *b*"), r"\_a\_ \*b\*");
        assert_eq!(markdown_cell("a|b"), r"a\|b");
        assert_eq!(markdown_cell("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(markdown_cell("a\nb\r\t"), r"a\\nb\\r\\t");
        assert_eq!(
            markdown_cell("x\u{202e}y\u{7}\u{feff}"),
            r"x\\u{202e}y\\u{7}\\u{feff}"
        );
        assert_eq!(markdown_cell("日本"), "日本");
    }

    #[test]
    fn mermaid_labels_hold_only_plain_text_and_entity_codes() {
        assert_eq!(mermaid_label("/srv/a b (x)"), "/srv/a b (x)");
        assert_eq!(
            mermaid_label("\"]#<&|%\n`é"),
            "#34;#93;#35;#60;#38;#124;#37;#10;#96;#233;"
        );
    }
}

#[cfg(test)]
mod plain_abs_path_tests {
    use super::*;

    /// Every check `resolve` makes of an absolute path, one by one.
    fn slow(p: &str) -> bool {
        p.starts_with('/')
            && !has_control(p)
            && !p.split('/').any(|c| c == "..")
            && long_component(p).is_none()
            && is_normalized(p)
    }

    #[test]
    fn the_one_pass_check_agrees_with_the_separate_ones() {
        // Every string of up to five characters over an alphabet of path troublemakers, and
        // long components around NAME_MAX.
        let alphabet = ["/", ".", "a", " ", "\u{1}", "\u{7f}", "\u{85}", "é", "%"];
        let mut cases = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            cases.extend(next.iter().cloned());
            frontier = next;
        }
        for n in [254, 255, 256] {
            cases.push(format!("/{}", "x".repeat(n)));
            cases.push(format!("/a/{}/b", "x".repeat(n)));
        }
        let mut plain = 0;
        for p in &cases {
            if plain_abs_path(p) {
                plain += 1;
                assert!(slow(p), "{p:?} passes the one-pass check only");
            } else if slow(p) {
                // Left to the slow checks: only text the one pass does not read.
                assert!(p.bytes().any(|b| !(b' '..=b'~').contains(&b)), "{p:?}");
            }
            assert_eq!(is_normal_abs_path(p), slow(p), "{p:?}");
        }
        assert!(plain > 300, "only {plain} cases pass the one-pass check");
    }
}
