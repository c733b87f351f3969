use serde_json::json;

use super::resources::{millis_quantity, plain_quantity};
use super::*;
use crate::kube::{shares_to_millis, RUNTIME_CAPABILITIES};
use crate::pod::{CpuWeight, Filter};

fn names(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

/// A pod of apps given as `name restart after...` lines; the restart `init` is an init app
/// (that restarts `no`).
fn pod(apps: &[&str]) -> Pod {
    let mut yaml = String::from("podc: 1\nname: p\napps:\n");
    for a in apps {
        let mut words = a.split(' ');
        let (name, restart) = (words.next().unwrap(), words.next().unwrap());
        let (restart, init) = match restart {
            "init" => ("no", true),
            r => (r, false),
        };
        let after: Vec<&str> = words.collect();
        yaml += &format!(
            "  - {{name: {name}, image: r.example/x@sha256:{}, restart: \"{restart}\", init: {init}, after: [{}]}}\n",
            "0".repeat(64),
            after.join(", ")
        );
    }
    let input = crate::Input {
        display: "p.yaml",
        file_name: "p.yaml",
        source: &yaml,
        format: crate::parse::Format::Yaml,
        workload: 0,
        side: crate::kube::import::Objects::none(),
    };
    crate::check(&input, crate::resolve::Overrides::default()).unwrap()
}

fn init_names(apps: &[&str]) -> Vec<String> {
    let p = pod(apps);
    init_apps(&p)
        .into_iter()
        .map(|i| p.apps[i].name.clone())
        .collect()
}

#[test]
fn init_apps_are_init_containers_in_dependency_order() {
    // seed is listed first but waits for migrate.
    assert_eq!(
        init_names(&[
            "web always migrate seed",
            "seed init migrate",
            "migrate init"
        ]),
        names(&["migrate", "seed"])
    );
    // An app that restarts `no` and that a service waits for is a container like any other.
    assert!(init_names(&["migrate no", "web always migrate"]).is_empty());
    // An init app no app waits for, or one that waits for a service, is one all the same.
    assert_eq!(
        init_names(&["report init", "web always"]),
        names(&["report"])
    );
    assert_eq!(
        init_names(&["db always", "seed init db", "web always seed"]),
        names(&["seed"])
    );
}

/// Kubernetes needs a container: a pod of init apps only is refused, located at `apps`.
#[test]
fn a_pod_of_init_apps_only_has_no_kubernetes_form() {
    let errors = to_kube(&pod(&["a init", "b init a"]), &KubeOptions::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, crate::diag::codes::KUBE_ONLY_INIT);
    assert_eq!(errors[0].path.as_deref(), Some("apps"));
}

#[test]
fn an_allow_list_drops_all_and_adds_it() {
    let f = Filter::Retain(names(&["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]));
    let (add, drop) = capabilities(&f);
    assert_eq!(add, names(&["NET_BIND_SERVICE", "CHOWN"]));
    assert_eq!(drop, names(&["ALL"]));
    assert_eq!(capabilities_back(&add, &drop), f);
}

#[test]
fn a_deny_list_adds_what_is_not_default_and_drops_the_rest() {
    let f = Filter::Remove(names(&["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_MKNOD"]));
    let (add, drop) = capabilities(&f);
    assert_eq!(drop, names(&["NET_RAW", "MKNOD"]));
    assert!(add.contains(&"NET_ADMIN".to_string()));
    assert!(!add.contains(&"SYS_ADMIN".to_string()));
    assert!(!add
        .iter()
        .any(|c| RUNTIME_CAPABILITIES.contains(&["CAP_", c].concat().as_str())));
    assert_eq!(
        add.len() + RUNTIME_CAPABILITIES.len() + 1,
        crate::manifest::linux::CAPABILITIES.len()
    );
    // The same set comes back, the non-default names after the default ones.
    let Filter::Remove(back) = capabilities_back(&add, &drop) else {
        panic!("a deny list")
    };
    assert_eq!(back, names(&["CAP_NET_RAW", "CAP_MKNOD", "CAP_SYS_ADMIN"]));
}

#[test]
fn weights_become_requests_through_systemds_mapping() {
    assert_eq!(shares_to_millis(CpuWeight::Weight(100).shares()), 1000);
    assert_eq!(shares_to_millis(CpuWeight::Weight(1).shares()), 10);
    assert_eq!(shares_to_millis(CpuWeight::Weight(3).shares()), 29); // 30 shares
    assert_eq!(
        shares_to_millis(CpuWeight::Weight(10_000).shares()),
        100_000
    );
}

#[test]
fn relax_words_are_the_manifests() {
    // Every word the manifest reads back as the same part.
    for w in [
        "tmp",
        "devices",
        "kernel-tunables",
        "kernel-modules",
        "kernel-logs",
        "control-groups",
        "clock",
        "hostname",
        "proc",
        "proc-masks",
        "namespaces",
        "realtime",
        "personality",
    ] {
        let r: crate::manifest::Relax = serde_json::from_value(json!(w)).unwrap();
        assert_eq!(r.name(), w);
    }
}

#[test]
fn annotation_keys_kubernetes_takes() {
    for k in [
        "owner",
        "example.com/owner",
        "a",
        "A_b.c-9",
        "podc/pod",
        "x.y-z.io/N.1",
    ] {
        assert!(qualified_name(k), "{k}");
    }
    for k in [
        "",
        "my key",
        "-a",
        "a-",
        "Example.com/x",
        "a/b/c",
        "/x",
        "x/",
        "ü",
    ] {
        assert!(!qualified_name(k), "{k}");
    }
    assert!(qualified_name(&"a".repeat(63)));
    assert!(!qualified_name(&"a".repeat(64)));
}

#[test]
fn plain_quantities_are_kept() {
    for q in ["500m", "1", "1.5", "128Mi", "1G", "0.25"] {
        assert!(plain_quantity(q), "{q}");
    }
    for q in ["+1", ".5", "1.", "1e3", "1 Gi", "", "Mi"] {
        assert!(!plain_quantity(q), "{q}");
    }
    assert_eq!(millis_quantity(2000), "2");
    assert_eq!(millis_quantity(1500), "1500m");
}

#[test]
fn a_key_named_like_its_secret_is_refused_on_kubernetes() {
    let yaml = "podc: 1\nname: p\nsecrets:\n  - {name: db, file: /etc/db}\napps:\n  - name: a\n    image: r.example/x:1\n    environment:\n      A: {secret: db, key: db}\n      B: {secret: db, key: password}\n";
    let input = crate::Input {
        display: "p.yaml",
        file_name: "p.yaml",
        source: yaml,
        format: crate::parse::Format::Yaml,
        workload: 0,
        side: crate::kube::import::Objects::none(),
    };
    let pod = crate::check(&input, crate::resolve::Overrides::default()).unwrap();
    let errors = to_kube(&pod, &KubeOptions::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code.code, "P0646");
    assert_eq!(errors[0].path.as_deref(), Some("apps[0].environment.A.key"));
}

#[test]
fn config_texts_beyond_what_annotations_hold_are_refused() {
    let text = "x".repeat(300 * 1024);
    let yaml = format!("podc: 1\nname: p\nconfig:\n  - {{name: big, text: {text}}}\napps:\n  - name: a\n    image: r.example/x:1\n    mounts:\n      - {{config: big, path: /etc/big}}\n");
    let input = crate::Input {
        display: "p.yaml",
        file_name: "p.yaml",
        source: &yaml,
        format: crate::parse::Format::Yaml,
        workload: 0,
        side: crate::kube::import::Objects::none(),
    };
    let pod = crate::check(&input, crate::resolve::Overrides::default()).unwrap();
    let errors = to_kube(&pod, &KubeOptions::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code.code, "P0110");
    assert_eq!(errors[0].path.as_deref(), Some("config"));
}

#[test]
fn every_key_of_a_file_also_taken_whole_is_refused_on_kubernetes() {
    let check = |extra: &str| {
        let yaml = format!("podc: 1\nname: p\nsecrets:\n  - {{name: db, file: /etc/db}}\n  - {{name: creds, dir: /etc/podc/secrets/creds}}\napps:\n  - name: a\n    image: r.example/x:1\n    environment:\n      A: {{secret: db}}\n    environmentFrom:\n      - {{secret: creds, prefix: C_}}\n{extra}");
        let input = crate::Input {
            display: "p.yaml",
            file_name: "p.yaml",
            source: &yaml,
            format: crate::parse::Format::Yaml,
            workload: 0,
            side: crate::kube::import::Objects::none(),
        };
        let pod = crate::check(&input, crate::resolve::Overrides::default()).unwrap();
        to_kube(&pod, &KubeOptions::default())
    };
    // `db` is also a variable name: envFrom would take the whole file as `db`.
    let errors = check("      - {secret: db}\n").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code.code, "P0646");
    assert_eq!(
        errors[0].path.as_deref(),
        Some("apps[0].environmentFrom[1]")
    );
    // With a prefix that makes no variable name of it (`1db`), and a dir, it maps.
    let kube = check("").unwrap();
    assert!(
        kube.yaml
            .contains("envFrom:\n    - prefix: C_\n      secretRef:\n        name: creds\n"),
        "{}",
        kube.yaml
    );
}

/// Kubernetes' `cgroupOptions.mountMode: ReadWrite` (the documentation's example Pod) builds for
/// systemd 257 as `cgroupMount: read-write`; `podc kube` keeps it in `podc/apps`, since the API
/// it writes for has no such field, and the result reads back as the same pod.
#[test]
fn a_writable_cgroup_comes_back_through_the_annotation() {
    let source = include_str!(
        "../../../tests/fixtures/kube-corpus/k8s-website/pods-security-security-context-7.yaml"
    );
    let input = |source: &'static str| crate::Input {
        display: "k.yaml",
        file_name: "k.yaml",
        source,
        format: crate::parse::Format::Yaml,
        workload: 0,
        side: crate::kube::import::Objects::none(),
    };
    let overrides = crate::resolve::Overrides {
        systemd: Some(257),
        ..Default::default()
    };
    let pod = crate::check(&input(source), overrides).unwrap();
    assert!(pod.apps[0].cgroup_writable);
    let kube = to_kube(&pod, &Default::default()).unwrap();
    assert!(!kube.yaml.contains("cgroupOptions"), "{}", kube.yaml);
    assert!(
        kube.yaml
            .contains(r#"podc/apps: "{\"sec-ctx-7\":{\"cgroupMount\":\"read-write\"}}""#),
        "{}",
        kube.yaml
    );
    let yaml: &'static str = Box::leak(kube.yaml.into_boxed_str());
    let back = crate::check(&input(yaml), Default::default()).unwrap();
    assert_eq!(back, pod);
}

/// `hostUsers` is always written but where Kubernetes cannot take it: `false` for a pod of
/// its own user namespace on a network of its own, `true` for the host's ids, and nothing (the
/// choice in podc/pod) for a pod of its own user namespace on the host's network.
#[test]
fn host_users_says_whose_ids_a_pod_has() {
    use crate::manifest::UserNamespace;
    let mut p = pod(&["a no"]);
    assert_eq!(p.user_namespace, UserNamespace::Private, "podc's default");
    assert_eq!(p.network, Network::Host);
    assert_eq!(host_users(&p), None);
    p.network = Network::Private;
    assert_eq!(host_users(&p), Some(false));
    p.user_namespace = UserNamespace::Host;
    assert_eq!(host_users(&p), Some(true));
    p.network = Network::Host;
    assert_eq!(host_users(&p), Some(true));
}
