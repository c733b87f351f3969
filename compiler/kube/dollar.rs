//! Kubernetes' `$(VAR)` references in a container's `command`, `args` and `env` values: the
//! kubelet replaces `$(NAME)` by the value of a variable the container defines (one defined
//! earlier, in `env`), turns `$$` into `$`, and leaves everything else, an unknown `$(NAME)`
//! included, as written. podc passes a command line to the program as written, so import
//! expands what Kubernetes would ([`expand`]) and `podc kube` writes a command line so that
//! Kubernetes expands nothing in it ([`escape`]) but the variables podc reads at launch. The
//! syntax is [`crate::manifest::expand`]'s, which a manifest's `{expand: ...}` word shares.

use crate::manifest::expand::{pieces, Piece};

/// What a `$(NAME)` refers to.
pub enum Var<'a> {
    /// A value known when the pod is built.
    Known(&'a str),
    /// A variable whose value is read at launch (a secret, a host file): it cannot be
    /// written into the command line when the pod is built.
    AtLaunch,
    Undefined,
}

/// `text` as the kubelet expands it, with `lookup` for the container's variables; the name of
/// a variable read at launch that it refers to is the error.
pub fn expand<'a>(text: &str, lookup: impl Fn(&str) -> Var<'a>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(name) => match lookup(name) {
                Var::Known(v) => out.push_str(v),
                Var::AtLaunch => return Err(name.to_string()),
                Var::Undefined => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            },
        }
    }
    Ok(out)
}

/// `text` written so that the kubelet's expansion gives it back: a `$` before `$` or `(` is
/// doubled.
pub fn escape(text: &str) -> String {
    crate::manifest::expand::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Var<'static> {
        match name {
            "GREETING" => Var::Known("Warm greetings to"),
            "EMPTY" => Var::Known(""),
            "TOKEN" => Var::AtLaunch,
            _ => Var::Undefined,
        }
    }

    #[test]
    fn the_kubelets_expansion() {
        let e = |s: &str| expand(s, vars).unwrap();
        assert_eq!(e("echo $(GREETING) you"), "echo Warm greetings to you");
        assert_eq!(e("$(EMPTY)x"), "x");
        assert_eq!(e("$(NOPE) stays"), "$(NOPE) stays");
        assert_eq!(e("$$(GREETING) is escaped"), "$(GREETING) is escaped");
        assert_eq!(e("$$$$ two"), "$$ two");
        assert_eq!(e("$HOME ${X} $"), "$HOME ${X} $");
        assert_eq!(e("$( unclosed"), "$( unclosed");
        assert_eq!(e("$()"), "$()");
        assert_eq!(
            e("a$(GREETING)$(GREETING)"),
            "aWarm greetings toWarm greetings to"
        );
        assert_eq!(expand("x $(TOKEN)", vars), Err("TOKEN".to_string()));
    }

    #[test]
    fn escaped_text_expands_to_itself() {
        for text in [
            "plain",
            "$(GREETING)",
            "$$(GREETING)",
            "$$",
            "$",
            "a $ b $$ c $( d $() e $(TOKEN)",
            "echo \"$HOME\" 100% ${X}",
            "$$$(",
        ] {
            let escaped = escape(text);
            assert_eq!(expand(&escaped, vars).unwrap(), text, "{escaped}");
        }
    }
}
