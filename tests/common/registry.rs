//! A throwaway distribution registry (Debian's `docker-registry`) on 127.0.0.1 at a port the
//! test picked, its storage in a temp dir; killed and reaped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether docker-registry runs here (in CI it must).
#[track_caller]
pub fn tool() -> bool {
    super::tool("docker-registry", "docker-registry")
}

pub struct TestRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry and waits until `/v2/` answers.
    pub fn start() -> TestRegistry {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let mut reg = TestRegistry {
                child,
                port,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if reg.child.try_wait().unwrap().is_some() {
                    break;
                }
                if get(port, "/v2/").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last = std::fs::read_to_string(reg._dir.path().join("log")).unwrap_or_default();
        }
        panic!("docker-registry did not start: {last}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (bound to 127.0.0.1:0 and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain `GET` to 127.0.0.1:`port`, the whole response as text.
pub fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Copies `layout:tag` to `out:tag` with every layer recompressed as zstd.
pub fn to_zstd(layout: &Path, tag: &str, out: &Path) {
    super::images::skopeo(&[
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("oci:{}:{tag}", out.display()),
    ]);
}

/// Pushes `layout:tag` to `dest` (`127.0.0.1:PORT/name:tag`) over plain HTTP, layers as they are.
pub fn push(layout: &Path, tag: &str, dest: &str) {
    assert!(
        dest.starts_with("127.0.0.1:"),
        "tests push to loopback only"
    );
    super::images::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{dest}"),
    ]);
}

/// Pseudo-random bytes (xorshift), so a layer does not compress away.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
