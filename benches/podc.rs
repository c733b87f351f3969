//! `cargo bench`: what `podc build` costs, in wall time against the I/O floor and in
//! instructions per app.
//!
//! Workloads (from `workload.rs`): one pod of 1, 10, 100 and 1000 apps, and 1000 pods of 5 apps
//! in one call. For each it reports
//! - wall time of `podc build` (median of several runs) next to `cp -r` of the tree it wrote,
//!   run alternately in the same loop so that both see the same machine, and their ratio;
//! - with valgrind installed, instructions counted by callgrind, which hold under load where
//!   wall time does not, and from them the instructions per extra app.
//!
//! Options after `--`: `--podc PATH` measures another build of podc (for before/after figures
//! taken side by side), `--runs N` sets the wall-time repetitions (default 7), `--quick` skips
//! the 1000-pod workload.

#[path = "workload.rs"]
mod workload;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Workload {
    name: String,
    apps: usize,
    manifests: Vec<PathBuf>,
}

fn workloads(dir: &Path, quick: bool) -> Vec<Workload> {
    let mut out = Vec::new();
    for apps in [1, 10, 100, 1000] {
        let path = dir.join(format!("pod{apps}.yaml"));
        fs::write(&path, workload::pod("bench", apps)).unwrap();
        out.push(Workload {
            name: format!("1 pod × {apps} apps"),
            apps,
            manifests: vec![path],
        });
    }
    if !quick {
        let many = dir.join("many");
        fs::create_dir(&many).unwrap();
        let manifests = workload::write_pods(&many, 1000, 5);
        out.push(Workload {
            name: "1000 pods × 5 apps".into(),
            apps: 5000,
            manifests,
        });
    }
    out
}

fn build(podc: &Path, w: &Workload, out: &Path) -> Command {
    let mut cmd = Command::new(podc);
    cmd.arg("build").args(&w.manifests).arg("-o").arg(out);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd.status().expect("the command runs");
    let took = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut podc = PathBuf::from(env!("CARGO_BIN_EXE_podc"));
    let mut runs = 7;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--podc" => podc = args.next().expect("--podc PATH").into(),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--quick" => quick = true,
            "--bench" => {} // cargo bench passes it
            other => panic!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let work = workloads(dir.path(), quick);
    let have_valgrind = workload::have_valgrind();
    println!("podc: {}", podc.display());
    println!(
        "{:<22} {:>10} {:>10} {:>8} {:>15} {:>13}",
        "workload", "build ms", "cp -r ms", "ratio", "instructions", "per app"
    );
    let mut counts: Vec<(usize, Option<u64>)> = Vec::new();
    for w in &work {
        let out = dir.path().join("out");
        let copy = dir.path().join("copy");
        let (mut b, mut c) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let _ = fs::remove_dir_all(&out);
            let _ = fs::remove_dir_all(&copy);
            b.push(timed(build(&podc, w, &out)));
            let mut cp = Command::new("cp");
            cp.arg("-r").arg(&out).arg(&copy);
            c.push(timed(cp));
        }
        let (b, c) = (median(b), median(c));
        let count = if have_valgrind {
            let _ = fs::remove_dir_all(&out);
            workload::instructions(&build(&podc, w, &out))
        } else {
            None
        };
        // Per extra app: the slope from the previous single-pod workload; for many pods, the
        // whole count less one app's pod, over the apps added.
        let per_app = match (count, counts.last()) {
            (Some(n), Some((apps, Some(prev)))) if w.manifests.len() == 1 => {
                Some((n - prev) / (w.apps - apps) as u64)
            }
            (Some(n), _) if w.manifests.len() > 1 => {
                let one = counts.first().and_then(|c| c.1).unwrap_or(0);
                Some((n - one) / (w.apps - 1) as u64)
            }
            _ => None,
        };
        if w.manifests.len() == 1 {
            counts.push((w.apps, count));
        }
        let show = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        println!(
            "{:<22} {:>10} {:>10} {:>8.2} {:>15} {:>13}",
            w.name,
            ms(b),
            ms(c),
            b.as_secs_f64() / c.as_secs_f64(),
            show(count),
            show(per_app)
        );
    }
    if !have_valgrind {
        println!("(valgrind is not installed: no instruction counts)");
    }
}
