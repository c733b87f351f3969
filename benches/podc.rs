//! `cargo bench`: what `podc build` costs, in wall time against the I/O floor and in
//! instructions per app.
//!
//! Workloads (from `workload.rs`): one pod of 1, 10, 100 and 1000 apps and 1000 pods of 5 apps
//! in one call, with the full shape of app; then one pod of 1000 and 1000 pods of 5 with the
//! small shape. For each it reports
//! - wall time of `podc build` (median of several runs) next to `cp -r` of the tree it wrote,
//!   run alternately in the same loop so that both see the same machine, and their ratio;
//! - with valgrind installed, instructions counted by callgrind (they hold under load, where
//!   wall time does not), and from them the instructions per extra app: the slope from the
//!   previous single-pod workload of the same shape, or for many pods the count less that of a
//!   one-app pod, over the apps added.
//!
//! Options after `--`: `--podc PATH` measures another build of podc; `--baseline PATH` also
//! measures PATH in the same loop and prints each figure's ratio to it (before/after figures
//! taken side by side); `--runs N` sets the wall-time repetitions (default 7); `--quick` skips
//! the 1000-pod workloads.

#[path = "workload.rs"]
mod workload;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use workload::Shape;

struct Workload {
    name: String,
    shape: Shape,
    apps: usize,
    manifests: Vec<PathBuf>,
}

fn workloads(dir: &Path, quick: bool) -> Vec<Workload> {
    let mut out = Vec::new();
    let sizes: &[(Shape, &[usize])] = &[
        (Shape::Full, &[1, 10, 100, 1000]),
        (Shape::Small, &[1, 1000]),
    ];
    for (shape, sizes) in sizes {
        for &apps in *sizes {
            let path = dir.join(format!("{}{apps}.yaml", shape.name()));
            fs::write(&path, workload::pod_of(*shape, "bench", apps)).unwrap();
            out.push(Workload {
                name: format!("1 pod × {apps} {}", shape.name()),
                shape: *shape,
                apps,
                manifests: vec![path],
            });
        }
        if !quick {
            let many = dir.join(format!("many-{}", shape.name()));
            fs::create_dir(&many).unwrap();
            out.push(Workload {
                name: format!("1000 pods × 5 {}", shape.name()),
                shape: *shape,
                apps: 5000,
                manifests: workload::write_pods(*shape, &many, 1000, 5),
            });
        }
    }
    out
}

fn build(podc: &Path, w: &Workload, out: &Path) -> Command {
    let mut cmd = Command::new(podc);
    cmd.arg("build").args(&w.manifests).arg("-o").arg(out);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// Wall time of a command that must succeed. Dirty pages are written back first, so that a
/// run does not pay for the previous one's writes (podc's one `syncfs` would).
fn timed(mut cmd: Command) -> Duration {
    let _ = Command::new("sync").status();
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

/// One binary's figures for one workload.
struct Figures {
    wall: Duration,
    instructions: Option<u64>,
    per_app: Option<u64>,
}

/// Per-app instructions from a count and the earlier single-pod counts of the same shape.
fn per_app(
    w: &Workload,
    count: Option<u64>,
    earlier: &[(Shape, usize, Option<u64>)],
) -> Option<u64> {
    let count = count?;
    let same: Vec<_> = earlier.iter().filter(|e| e.0 == w.shape).collect();
    if w.manifests.len() == 1 {
        let (_, apps, prev) = same.last()?;
        Some((count - (*prev)?) / (w.apps - apps) as u64)
    } else {
        let (_, _, one) = same.first()?;
        Some((count - (*one)?) / (w.apps - 1) as u64)
    }
}

fn main() {
    let mut podc = PathBuf::from(env!("CARGO_BIN_EXE_podc"));
    let mut baseline: Option<PathBuf> = None;
    let mut runs = 7;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--podc" => podc = args.next().expect("--podc PATH").into(),
            "--baseline" => baseline = Some(args.next().expect("--baseline PATH").into()),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--quick" => quick = true,
            "--bench" => {} // cargo bench passes it
            other => panic!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let work = workloads(dir.path(), quick);
    let have_valgrind = workload::have_valgrind();
    let binaries: Vec<&Path> = std::iter::once(podc.as_path())
        .chain(baseline.as_deref())
        .collect();
    println!("podc: {}", podc.display());
    if let Some(b) = &baseline {
        println!("baseline: {} (× columns: podc / baseline)", b.display());
    }
    print!(
        "{:<24} {:>9} {:>9} {:>6} {:>13} {:>9}",
        "workload", "build ms", "cp -r ms", "ratio", "instructions", "per app"
    );
    if baseline.is_some() {
        print!(" {:>9} {:>7} {:>7}", "base ms", "wall ×", "instr ×");
    }
    println!();
    let mut earlier: Vec<Vec<(Shape, usize, Option<u64>)>> = vec![Vec::new(); binaries.len()];
    for w in &work {
        let out = dir.path().join("out");
        let copy = dir.path().join("copy");
        let mut walls = vec![Vec::new(); binaries.len()];
        let mut copies = Vec::new();
        for _ in 0..runs {
            for (b, podc) in binaries.iter().enumerate() {
                let _ = fs::remove_dir_all(&out);
                walls[b].push(timed(build(podc, w, &out)));
            }
            let _ = fs::remove_dir_all(&copy);
            let mut cp = Command::new("cp");
            cp.arg("-r").arg(&out).arg(&copy);
            copies.push(timed(cp));
        }
        let cp = median(copies);
        let figures: Vec<Figures> = binaries
            .iter()
            .enumerate()
            .map(|(b, podc)| {
                let instructions = have_valgrind
                    .then(|| {
                        let _ = fs::remove_dir_all(&out);
                        workload::instructions(&build(podc, w, &out))
                    })
                    .flatten();
                let per_app = per_app(w, instructions, &earlier[b]);
                if w.manifests.len() == 1 {
                    earlier[b].push((w.shape, w.apps, instructions));
                }
                Figures {
                    wall: median(walls[b].clone()),
                    instructions,
                    per_app,
                }
            })
            .collect();
        let show = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let f = &figures[0];
        print!(
            "{:<24} {:>9} {:>9} {:>6.2} {:>13} {:>9}",
            w.name,
            ms(f.wall),
            ms(cp),
            f.wall.as_secs_f64() / cp.as_secs_f64(),
            show(f.instructions),
            show(f.per_app)
        );
        if let Some(base) = figures.get(1) {
            let ratio = match (f.instructions, base.instructions) {
                (Some(a), Some(b)) => format!("{:.3}", a as f64 / b as f64),
                _ => "-".into(),
            };
            print!(
                " {:>9} {:>7.3} {:>7}",
                ms(base.wall),
                f.wall.as_secs_f64() / base.wall.as_secs_f64(),
                ratio
            );
        }
        println!();
    }
    if have_valgrind {
        // `podc check` per app: the slope from 100 to 1000 apps of the full shape.
        for podc in &binaries {
            let count = |apps: usize| {
                let w = work
                    .iter()
                    .find(|w| w.shape == Shape::Full && w.apps == apps && w.manifests.len() == 1)
                    .expect("the workload exists");
                let mut cmd = Command::new(podc);
                cmd.arg("check").args(&w.manifests);
                workload::instructions(&cmd)
            };
            if let (Some(a), Some(b)) = (count(100), count(1000)) {
                println!(
                    "podc check, per app (full): {} ({})",
                    (b - a) / 900,
                    podc.display()
                );
            }
        }
    } else {
        println!("(valgrind is not installed: no instruction counts)");
    }
}
