//! The fast YAML reader against serde-saphyr: wherever `parse/yaml_fast.rs` (the parser's
//! events straight into a value) takes a text, serde-saphyr must read the same text to the very
//! same value (`tests/yaml_fast.rs` checks the kept corpus and generated documents; this
//! searches for the rest).

#![no_main]

use libfuzzer_sys::fuzz_target;
use podc::parse::{fast_value, slow_value};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Some(fast) = fast_value(source) else {
        return;
    };
    match slow_value(source) {
        Ok(slow) => assert_eq!(fast, slow, "the fast reader disagrees on {source:?}"),
        Err(e) => panic!("the fast reader took what serde-saphyr refuses ({e}): {source:?}"),
    }
});
