//! Kubernetes quantities: as a manifest writes them ([`Quantity`]), and parsed exactly
//! ([`Exact`]).
//!
//! A quantity is a decimal number with an optional suffix: `m` (milli), `k M G T P E` (powers
//! of 1000) or `Ki Mi Gi Ti Pi Ei` (powers of 1024). It is kept as an exact fraction
//! `digits / 10^scale * multiplier`, and converted to the integer unit a directive needs only
//! when that conversion is exact: podc never rounds silently.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A Kubernetes quantity as written ("500m", "1Gi", 2, 0.5), parsed by [`bytes`] and
/// [`millicores`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    /// The quantity's text.
    pub text: String,
    /// Read as a floating-point number, whose value may already be rounded: [`crate::parse`]
    /// then puts the scalar's own text in its place.
    pub via_float: bool,
}

impl Quantity {
    fn new(text: String, via_float: bool) -> Quantity {
        Quantity { text, via_float }
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Kubernetes quantity: a positive integer or decimal with an optional suffix m, k, M, G, T, P, E (powers of 1000) or Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024).",
            "anyOf": [
                { "type": "string", "pattern": r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$" },
                { "type": "number", "exclusiveMinimum": 0 }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"500m\", \"1Gi\" or 2")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string(), false))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string(), false))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                // A stand-in: an f64 holds 53 bits, so 9007199254740993.0 arrives here as
                // ...992. The parser replaces it with the scalar's text from the source.
                Ok(Quantity::new(format!("{v}"), true))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string(), false))
            }
        }
        d.deserialize_any(V)
    }
}

/// A parsed quantity: `digits / 10^frac_digits * factor`, where `factor` is `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    digits: u128,
    frac_digits: u32,
    num: u128,
    den: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    Syntax,
    Negative,
    Zero,
    TooLarge,
    /// The value is not a whole number of the unit (the unit's name is given).
    NotWhole(&'static str),
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantityError::Syntax => f.write_str(
                "is not a quantity: expected a number with an optional suffix \
                 m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi or Ei",
            ),
            QuantityError::Negative => f.write_str("must not be negative"),
            QuantityError::Zero => f.write_str("must be greater than zero"),
            QuantityError::TooLarge => f.write_str("is too large"),
            QuantityError::NotWhole(unit) => {
                write!(f, "is not a whole number of {unit}; podc does not round")
            }
        }
    }
}

/// More digits than this cannot be exact in 128 bits once multiplied; nobody writes them.
const MAX_DIGITS: usize = 30;

impl Exact {
    pub fn parse(text: &str) -> Result<Exact, QuantityError> {
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(QuantityError::Syntax);
        }
        let (num, den): (u128, u128) = match suffix {
            "" => (1, 1),
            "m" => (1, 1000),
            "k" => (1000, 1),
            "M" => (1000u128.pow(2), 1),
            "G" => (1000u128.pow(3), 1),
            "T" => (1000u128.pow(4), 1),
            "P" => (1000u128.pow(5), 1),
            "E" => (1000u128.pow(6), 1),
            "Ki" => (1 << 10, 1),
            "Mi" => (1 << 20, 1),
            "Gi" => (1 << 30, 1),
            "Ti" => (1 << 40, 1),
            "Pi" => (1 << 50, 1),
            "Ei" => (1 << 60, 1),
            _ => return Err(QuantityError::Syntax),
        };
        let all = format!("{int_part}{frac_part}");
        let significant = all.trim_start_matches('0');
        if significant.len() > MAX_DIGITS {
            return Err(QuantityError::TooLarge);
        }
        let digits: u128 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| QuantityError::Syntax)?
        };
        if digits == 0 {
            return Err(QuantityError::Zero);
        }
        if negative {
            return Err(QuantityError::Negative);
        }
        Ok(Exact {
            digits,
            frac_digits: frac_part.len() as u32,
            num,
            den,
        })
    }

    /// The value in units of `1/per` (e.g. `per = 1000` gives millis), if it is a whole number.
    pub fn in_units(&self, per: u128, unit: &'static str) -> Result<u128, QuantityError> {
        let scale = 10u128
            .checked_pow(self.frac_digits)
            .ok_or(QuantityError::NotWhole(unit))?;
        let numerator = self
            .digits
            .checked_mul(self.num)
            .and_then(|v| v.checked_mul(per))
            .ok_or(QuantityError::TooLarge)?;
        let denominator = scale
            .checked_mul(self.den)
            .ok_or(QuantityError::NotWhole(unit))?;
        if numerator % denominator != 0 {
            return Err(QuantityError::NotWhole(unit));
        }
        Ok(numerator / denominator)
    }
}

/// Memory in bytes, at most `i64::MAX` (the kernel's own limit for a cgroup v1 memory limit).
pub fn bytes(text: &str) -> Result<u64, QuantityError> {
    let v = Exact::parse(text)?.in_units(1, "bytes")?;
    if v > i64::MAX as u128 {
        return Err(QuantityError::TooLarge);
    }
    Ok(v as u64)
}

/// CPU in millicores.
pub fn millicores(text: &str) -> Result<u64, QuantityError> {
    let v = Exact::parse(text)?.in_units(1000, "millicores")?;
    u64::try_from(v).map_err(|_| QuantityError::TooLarge)
}

/// The number and the rest of a quantity-like text (`"128 MB"` → `("128", "MB")`), white
/// space between them dropped; `None` when it does not start with a plain number.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    let ok = !number.is_empty() && number.bytes().any(|b| b.is_ascii_digit());
    ok.then_some((number, rest.trim()))
}

/// "Did you mean" for a memory value podc refused: a suffix in another spelling (`128MB`,
/// `256mi`, `1 Gi`, `100m` meaning mega) gets the decimal and binary suffixes it may have
/// meant.
pub fn suggest_memory(text: &str) -> Option<String> {
    let (number, suffix) = split_number(text)?;
    // A quantity spelt right (too large, zero, not whole) needs no other spelling, except `m`:
    // milli, which in a memory value is almost surely meant as mega.
    if !matches!(Exact::parse(text), Err(QuantityError::Syntax)) && suffix != "m" {
        return None;
    }
    // Bytes spelt out: `512B`, `512 bytes`.
    if matches!(suffix.to_ascii_lowercase().as_str(), "b" | "byte" | "bytes") {
        return Some(format!("did you mean `{number}` (bytes)?"));
    }
    // `MB`, `Mb`, `MiB`, `mi`, `m`, `g`, `K`, `kB` ... → the letter's two quantities.
    let stem = suffix
        .strip_suffix(['B', 'b'])
        .unwrap_or(suffix)
        .trim_end_matches(['i', 'I']);
    let letter = match stem.to_ascii_uppercase().as_str() {
        "K" => 'K',
        "M" => 'M',
        "G" => 'G',
        "T" => 'T',
        "P" => 'P',
        "E" => 'E',
        _ => return None,
    };
    let decimal = if letter == 'K' { 'k' } else { letter };
    Some(format!(
        "did you mean `{number}{decimal}` (powers of 1000) or `{number}{letter}i` (powers of 1024)?"
    ))
}

/// "Did you mean" for a cpu value podc refused: a percentage (`50%` is `500m`), or cores spelt
/// out (`2 cores`, `2cpu`).
pub fn suggest_cpu(text: &str) -> Option<String> {
    let (number, suffix) = split_number(text)?;
    let suffix = suffix.to_ascii_lowercase();
    if suffix == "%" {
        // n% of one CPU is n*10 millicores, exactly when n has at most one decimal.
        let millis = Exact::parse(number).ok()?.in_units(10, "").ok()?;
        return Some(format!(
            "a cpu limit is a number of CPUs: did you mean `{millis}m` ({number}% of one CPU)?"
        ));
    }
    if matches!(
        suffix.as_str(),
        "c" | "cpu" | "cpus" | "core" | "cores" | "vcpu" | "vcpus"
    ) {
        return Some(format!("did you mean `{number}` (CPUs)?"));
    }
    if matches!(suffix.as_str(), "mc" | "millicores" | "millicpu" | "millis") {
        return Some(format!("did you mean `{number}m` (millicores)?"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_suffixes_are_exact() {
        let cases = [
            ("1", 1),
            ("1k", 1000),
            ("1Ki", 1024),
            ("1G", 1_000_000_000),
            ("1Gi", 1_073_741_824),
            ("1.5Gi", 1_610_612_736),
            ("256Mi", 268_435_456),
            ("0.5Ki", 512),
            ("1000m", 1),
            ("+2M", 2_000_000),
            ("007", 7),
            ("1E", 1_000_000_000_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(bytes(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn cpu_in_millicores() {
        let cases = [
            ("500m", 500),
            ("2", 2000),
            ("0.5", 500),
            ("2.25", 2250),
            ("1.001", 1001),
        ];
        for (text, want) in cases {
            assert_eq!(millicores(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn suggestions_for_other_spellings() {
        let near = |s: Option<String>, want: &str| {
            let s = s.unwrap_or_default();
            assert!(s.contains(want), "{s:?} lacks {want:?}");
        };
        near(
            suggest_memory("128MB"),
            "`128M` (powers of 1000) or `128Mi`",
        );
        near(
            suggest_memory("256mi"),
            "`256M` (powers of 1000) or `256Mi`",
        );
        near(suggest_memory("1 Gi"), "`1G` (powers of 1000) or `1Gi`");
        near(suggest_memory("4kb"), "`4k` (powers of 1000) or `4Ki`");
        near(suggest_memory("512 bytes"), "`512` (bytes)");
        near(suggest_cpu("50%"), "`500m`");
        near(suggest_cpu("12.5%"), "`125m`");
        near(suggest_cpu("2 cores"), "`2` (CPUs)");
        near(suggest_memory("100m"), "`100M` (powers of 1000) or `100Mi`");
        assert_eq!(suggest_memory("10XB"), None);
        assert_eq!(suggest_memory("16Ei"), None);
        assert_eq!(suggest_memory("0Mi"), None);
        assert_eq!(suggest_cpu("two cores"), None);
        assert_eq!(suggest_cpu("0.05%"), None);
    }

    #[test]
    fn bad_quantities_are_refused_not_rounded() {
        use QuantityError::*;
        let cases = [
            ("", Syntax),
            (".", Syntax),
            ("1.2.3", Syntax),
            ("10XB", Syntax),
            ("1 Gi", Syntax),
            ("1e3", Syntax),
            ("Gi", Syntax),
            ("0", Zero),
            ("0.000", Zero),
            ("-1", Negative),
            ("-0", Zero),
            ("0.5", NotWhole("bytes")),
            ("100m", NotWhole("bytes")),
            ("99999999999Ei", TooLarge),
            ("8Ei", TooLarge),
            ("1234567890123456789012345678901", TooLarge),
        ];
        for (text, want) in cases {
            assert_eq!(bytes(text), Err(want), "{text:?}");
        }
        assert_eq!(millicores("0.0001"), Err(NotWhole("millicores")));
    }
}
