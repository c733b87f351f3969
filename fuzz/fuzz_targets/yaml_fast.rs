//! The fast YAML reader against serde-saphyr: wherever `yaml_fast::read` takes a text, serde-
//! saphyr must read the same text to the very same value (`tests/yaml_fast.rs` checks the kept
//! corpus and generated documents; this searches for the rest).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(fast) = podc::yaml_fast::read(source) {
        match podc::parse::slow_value(source) {
            Ok(slow) => assert_eq!(fast, slow, "the readers disagree on {source:?}"),
            Err(e) => panic!("the fast reader took what serde-saphyr refuses ({e}): {source:?}"),
        }
    }
});
