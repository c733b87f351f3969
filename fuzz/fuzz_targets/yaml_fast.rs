//! The fast YAML reader against serde-saphyr: wherever a stage of `yaml_fast` (the line reader,
//! the event reader, or both chained as the compiler uses them) takes a text, serde-saphyr must
//! read the same text to the very same value (`tests/yaml_fast.rs` checks the kept corpus and
//! generated documents; this searches for the rest).

#![no_main]

use libfuzzer_sys::fuzz_target;
use podc::parse::yaml_fast::{read, read_events, read_lines};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    for (stage, fast) in [
        ("line reader", read_lines(source)),
        ("event reader", read_events(source)),
        ("fast reader", read(source)),
    ] {
        let Some(fast) = fast else { continue };
        match podc::parse::slow_value(source) {
            Ok(slow) => assert_eq!(fast, slow, "the {stage} disagrees on {source:?}"),
            Err(e) => panic!("the {stage} took what serde-saphyr refuses ({e}): {source:?}"),
        }
    }
});
