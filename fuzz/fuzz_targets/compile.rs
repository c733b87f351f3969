//! The whole path from bytes to rendered files: UTF-8 input is checked as a YAML manifest and
//! as a TOML manifest; a manifest that passes is lowered and rendered, one that fails has its
//! diagnostics rendered. Nothing may panic, and every diagnostic must point at a position
//! (`--> file:line:col`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use podc::lower::Install;
use podc::parse::Format;
use podc::resolve::Overrides;
use podc::Input;

/// Larger inputs only slow the fuzzer down; the format has nothing that needs them.
const MAX_LEN: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_LEN {
        return;
    }
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    for (format, name) in [(Format::Yaml, "pod.yaml"), (Format::Toml, "pod.toml")] {
        compile(source, format, name);
    }
});

fn compile(source: &str, format: Format, name: &str) {
    let input = Input {
        display: name,
        file_name: name,
        source,
        format,
    };
    let (pod, report) = podc::check_all(&input, Overrides::default());
    // Warnings point at a position too, and come only with a pod.
    for d in &report.diagnostics {
        assert!(d.span.is_some(), "{name}: a diagnostic without a position: {d:?}\n{report}");
    }
    match pod.ok_or(report) {
        Ok(pod) => {
            let install = Install {
                dir: format!("/var/lib/podc/{}", pod.name),
                podc: "/usr/bin/podc".into(),
            };
            let files = podc::generate(&pod, &install);
            assert!(!files.is_empty(), "{name}: compiled to no files");
        }
        Err(report) => {
            let text = report.to_string();
            assert!(
                !report.diagnostics.is_empty(),
                "{name}: an error report without a diagnostic:\n{text}"
            );
            for d in &report.diagnostics {
                assert!(
                    d.span.is_some(),
                    "{name}: a diagnostic without a position: {d:?}\n{text}"
                );
            }
            assert!(
                text.contains("-->"),
                "{name}: a report without `-->`:\n{text}"
            );
        }
    }
}
