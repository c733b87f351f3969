//! `MountPlan::to_toml` lays the plan out by hand for speed; it must stay byte for byte what
//! the toml crate's serializer makes of the same plan, and read back to the same plan. Checked
//! over every good fixture's plan and over a plan with every kind of step and strings that
//! TOML must quote or escape.

mod common;

use std::collections::BTreeSet;

use podc::manifest::{CgroupVersion, Egress, Network, Protocol, UserNamespace};
use podc::tree::plan::{Controller, HostPort, Listen, MountPlan, Step};

fn same_as_serde(plan: &MountPlan, name: &str) {
    let by_hand = plan.to_toml();
    let by_serde = toml::to_string(plan).unwrap();
    assert_eq!(
        by_hand, by_serde,
        "{name}: to_toml differs from the toml crate"
    );
    assert_eq!(
        &MountPlan::from_toml(&by_hand).unwrap(),
        plan,
        "{name}: to_toml does not read back"
    );
}

#[test]
fn every_fixture_plan_is_laid_out_as_serde_would() {
    let mut kinds = BTreeSet::new();
    let fixtures = common::fixtures("good");
    assert!(fixtures.len() > 30);
    for path in fixtures {
        let files = common::compile(&path, None).unwrap();
        let text = &files["mounts.toml"];
        let plan = MountPlan::from_toml(text).unwrap();
        same_as_serde(&plan, &common::display_name(&path));
        assert!(text.ends_with(&plan.to_toml()));
        kinds.extend(plan.steps.iter().map(Step::kind));
    }
    // Every kind but the cgroup ones (v1 targets only) shows up in the fixtures; the test below
    // has them all.
    assert!(kinds.len() >= 6, "the fixtures have only {kinds:?}");
}

#[test]
fn every_step_and_awkward_strings_are_laid_out_as_serde_would() {
    let awkward = [
        "",
        "plain",
        "/a b/c",
        "quote\"inside",
        "back\\slash",
        "it's",
        "'''",
        "\"\"\"",
        "tab\there",
        "new\nline",
        "cr\rhere",
        "bell\u{7}",
        "del\u{7f}",
        "é ü ✓",
        "trailing\\",
        "\\\"'",
    ];
    for (i, s) in awkward.iter().enumerate() {
        let s = s.to_string();
        for cgroup in [CgroupVersion::V1, CgroupVersion::V2] {
            let plan = MountPlan {
                format: 1,
                pod: s.clone(),
                cgroup,
                systemd: (i % 2 == 1).then_some(230 + i as u32),
                apps: vec![s.clone(), "web".into()],
                network: if i % 2 == 0 {
                    Network::Private
                } else {
                    Network::Host
                },
                egress: if i % 4 == 0 {
                    Egress::Nat
                } else {
                    Egress::None
                },
                networks: if i % 3 == 0 {
                    vec![s.clone(), "backend".into()]
                } else {
                    vec![]
                },
                allow_host: if i % 5 < 2 {
                    vec![
                        HostPort {
                            protocol: Protocol::Tcp,
                            port: 5432,
                        },
                        HostPort {
                            protocol: Protocol::Udp,
                            port: u16::MAX,
                        },
                    ]
                } else {
                    vec![]
                },
                user_namespace: if i % 3 == 1 {
                    UserNamespace::Private
                } else {
                    UserNamespace::Host
                },
                listen: vec![
                    Listen {
                        protocol: Protocol::Tcp,
                        address: s.clone(),
                    },
                    Listen {
                        protocol: Protocol::Udp,
                        address: "[::1]:53".into(),
                    },
                ],
                steps: vec![
                    Step::MakeVolume {
                        volume: s.clone(),
                        mode: "0755".into(),
                        uid: 0,
                        gid: u32::MAX,
                    },
                    Step::Overlay {
                        app: s.clone(),
                        source: s.clone(),
                        target: s.clone(),
                    },
                    Step::BindHost {
                        source: s.clone(),
                        target: s.clone(),
                        read_only: true,
                        host_type: [
                            podc::manifest::HostType::Directory,
                            podc::manifest::HostType::FileOrCreate,
                            podc::manifest::HostType::Any,
                        ][i % 3],
                        sub_path: (i % 2 == 0).then(|| s.clone()),
                        make_missing: i % 4 == 0,
                    },
                    Step::BindVolume {
                        volume: s.clone(),
                        target: s.clone(),
                        read_only: false,
                        sub_path: (i % 2 == 1).then(|| s.clone()),
                        make_missing: i % 4 == 1,
                    },
                    Step::Names {
                        app: s.clone(),
                        users: vec![s.clone(), "nobody".into()],
                        groups: vec![],
                    },
                    Step::Tmpfs { target: s.clone() },
                    Step::BindPodc,
                    Step::CgroupDir {
                        controller: Controller::ALL[i % 3],
                        path: s.clone(),
                    },
                    Step::CgroupBind {
                        controller: Controller::ALL[(i + 1) % 3],
                        path: s.clone(),
                        target: s.clone(),
                        read_only: i % 2 == 0,
                    },
                    Step::EnvAll {
                        app: s.clone(),
                        kind: podc::manifest::ItemKind::Secret,
                        name: s.clone(),
                        source: (i % 2 == 0).then(|| s.clone()),
                        dir: (i % 2 == 1).then(|| s.clone()),
                        prefix: s.clone(),
                        given: vec![s.clone(), "B".into()],
                    },
                ],
            };
            same_as_serde(&plan, &format!("{s:?}"));
        }
    }
    let empty = MountPlan {
        format: 1,
        pod: "p".into(),
        cgroup: CgroupVersion::V2,
        systemd: None,
        apps: vec![],
        network: Network::Host,
        egress: Egress::None,
        networks: vec![],
        allow_host: vec![],
        user_namespace: UserNamespace::Host,
        listen: vec![],
        steps: vec![],
    };
    same_as_serde(&empty, "no apps, no steps");
}
