//! Every unit podc generates from every good fixture passes `systemd-analyze verify` without a
//! single line of output. Its exit status alone proves little: it exits 0 on unknown keys and
//! bad values, so any warning is a failure here.

mod common;

#[test]
fn generated_units_verify_without_warnings() {
    if !common::systemd_analyze() {
        return;
    }
    let mut failures = Vec::new();
    let fixtures = common::fixtures("good");
    assert!(
        fixtures.len() >= 15,
        "the good corpus shrank to {}",
        fixtures.len()
    );
    for path in fixtures {
        let pod = common::pod(&path).expect("good fixtures compile");
        if let Err(text) = common::verify_tree(&pod) {
            failures.push(format!("{}:\n{text}", common::display_name(&path)));
        }
    }
    assert!(
        failures.is_empty(),
        "systemd-analyze verify complained:\n{}",
        failures.join("\n")
    );
}
