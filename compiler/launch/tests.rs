use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

#[test]
fn pod_machine_ids_are_stable_and_distinct() {
    let host = "3d1219c7c4c5404aaa1f6d2a48adfda4";
    let tree = Path::new("/var/lib/podc/web");
    let id = pod_machine_id(host, tree, "web");
    assert!(is_machine_id(&id), "{id}");
    assert_eq!(&id[12..13], "4", "a version 4 UUID: {id}");
    assert_eq!(id, pod_machine_id(host, tree, "web"));
    let others = [
        pod_machine_id("0123456789abcdef0123456789abcdef", tree, "web"),
        pod_machine_id(host, Path::new("/srv/web"), "web"),
        pod_machine_id(host, tree, "web2"),
    ];
    for o in &others {
        assert!(is_machine_id(o));
        assert_ne!(&id, o);
    }
}

#[test]
fn machine_ids_are_kept_only_when_valid() {
    assert!(is_machine_id("0123456789abcdef0123456789abcdef"));
    for bad in [
        "",
        "uninitialized",
        "00000000000000000000000000000000",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
    ] {
        assert!(!is_machine_id(bad), "{bad:?}");
    }
}

#[test]
fn mount_points_through_symlinks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    fs::create_dir_all(root.join("opt/stage2/a/rootfs/var")).unwrap();
    symlink("/etc", root.join("opt/stage2/a/rootfs/var/www")).unwrap();
    let bad = root.join("opt/stage2/a/rootfs/var/www/data");
    assert!(
        matches!(refuse_symlinks(&root, &bad), Err(LaunchError::Symlink(p)) if p.ends_with("var/www"))
    );
    let good = root.join("opt/stage2/a/rootfs/var/lib/data");
    assert!(refuse_symlinks(&root, &good).is_ok());
}

/// nsdelegate is read from the cgroup2 mount at /sys/fs/cgroup only: a systemd host's pure v2
/// mount has it; a hybrid host's unified mount elsewhere, or one without the option, has not.
#[test]
fn nsdelegate_is_the_cgroup2_mounts_at_sys_fs_cgroup() {
    let v2 = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
    assert!(nsdelegate(v2));
    assert!(!nsdelegate(&v2.replace("rw,nsdelegate,", "rw,")));
    assert!(!nsdelegate(
        &v2.replace("/sys/fs/cgroup ", "/sys/fs/cgroup/unified ")
    ));
    assert!(!nsdelegate(
        &v2.replace("- cgroup2 cgroup2", "- tmpfs tmpfs")
    ));
    assert!(!nsdelegate(
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    ));
    assert!(!nsdelegate(""));
}

#[test]
fn proc_cgroup_lines_map_controllers_to_directories() {
    let text = "12:pids:/a.service\n4:cpu,cpuacct:/a.service\n3:memory:/user.slice/x\n1:name=systemd:/a\n0::/a\n";
    let m = parse_proc_cgroup(text, Path::new("/sys/fs/cgroup"));
    assert_eq!(
        m["memory"],
        PathBuf::from("/sys/fs/cgroup/memory/user.slice/x")
    );
    assert_eq!(
        m["cpu"],
        PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a.service")
    );
    assert_eq!(m["cpuacct"], m["cpu"]);
    assert_eq!(m["pids"], PathBuf::from("/sys/fs/cgroup/pids/a.service"));
    assert_eq!(m.len(), 4);
}

#[test]
fn the_hosts_resources_are_counted_as_the_kubelet_rounds_them() {
    assert_eq!(count_cpus("0-3\n"), Some(4));
    assert_eq!(count_cpus("0,2-3,7"), Some(4));
    assert_eq!(count_cpus("0"), Some(1));
    for bad in ["", "a", "3-1", "0-"] {
        assert_eq!(count_cpus(bad), None, "{bad:?}");
    }
    let meminfo = "MemTotal:        2030940 kB\nMemFree:          120964 kB\n";
    assert_eq!(mem_total(meminfo), Some(2030940 * 1024));
    assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    use crate::manifest::HostResource::*;
    let r = HostResources {
        cpus: Some(2),
        memory: Some(3 << 30),
        storage: None,
    };
    let tree = Path::new("/var/lib/podc/web");
    let count = |res, divisor| r.count(res, divisor, tree).1;
    // Cores by default (1 = 1000 millicores), millicores with 1m; bytes, rounded up.
    assert_eq!(count(Cpu, 1000), Ok("2".into()));
    assert_eq!(count(Cpu, 1), Ok("2000".into()));
    assert_eq!(count(Cpu, 3000), Ok("1".into()));
    assert_eq!(count(Memory, 1 << 20), Ok("3072".into()));
    assert_eq!(count(Memory, 1_000_000_000), Ok("4".into()));
    let (from, n) = r.count(EphemeralStorage, 1, tree);
    assert_eq!(from, tree);
    assert_eq!(
        n,
        Err("cannot count the size of the pod tree's file system".into())
    );
    assert_eq!(r.count(Cpu, 1, tree).0, PathBuf::from(CPUS_ONLINE));
}
