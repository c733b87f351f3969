//! `--configmap` and `--secret`: the ConfigMaps and Secrets a Kubernetes pod takes that are not
//! in its file. A ConfigMap's text is read here (it may go into the tree); of a Secret only the
//! names of its key files are, never their contents. `--seccomp-dir`: where the import reads a
//! `Localhost` seccomp profile, through [`read_profile`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::args::ObjectArgs;
use super::Fatal;
use crate::kube::import::{config_maps_file, ConfigMap, Objects, SeccompDir, Secret};

/// The most of a seccomp profile podc reads (Docker's default profile is about 20 KiB).
const MAX_PROFILE_BYTES: u64 = 1 << 20;

pub(super) fn objects(args: &ObjectArgs) -> Result<Objects, Fatal> {
    let mut objects = Objects {
        seccomp: Some(SeccompDir {
            dir: args.seccomp_dir.clone(),
            read: read_profile,
        }),
        ..Objects::default()
    };
    for path in &args.config_maps {
        let shown = path.display();
        if path.is_dir() {
            let name = dir_name(path, "--configmap")?;
            let mut data = BTreeMap::new();
            for key in keys(path, "--configmap")? {
                let text = std::fs::read_to_string(path.join(&key))
                    .map_err(|e| Fatal(format!("--configmap {shown}: {key}: {e}")))?;
                data.insert(key, text);
            }
            add(&mut objects.config_maps, name, ConfigMap { data }, path)?;
        } else {
            let source = std::fs::read_to_string(path)
                .map_err(|e| Fatal(format!("--configmap {shown}: {e}")))?;
            let maps = config_maps_file(&source).map_err(|d| {
                let at = d.span.map(|s| {
                    let (line, col) = crate::diag::line_col(&source, s.start);
                    format!("{line}:{col}: ")
                });
                Fatal(format!(
                    "--configmap {shown}:{} {}",
                    at.unwrap_or_default(),
                    d.message
                ))
            })?;
            for (name, map) in maps {
                add(&mut objects.config_maps, name, map, path)?;
            }
        }
    }
    for arg in &args.secrets {
        let (name, dir) = match arg.split_once('=') {
            Some((n, d)) => (n.to_string(), Path::new(d)),
            None => (
                dir_name(Path::new(arg), "--secret")?,
                Path::new(arg.as_str()),
            ),
        };
        if !dir.is_absolute() || !dir.is_dir() {
            return Err(Fatal(format!(
                "--secret {arg}: give an absolute path of a directory of the host, whose files are the Secret's keys"
            )));
        }
        let keys: BTreeSet<String> = keys(dir, "--secret")?.into_iter().collect();
        let secret = Secret {
            keys,
            dir: dir.display().to_string().trim_end_matches('/').to_string(),
        };
        add(&mut objects.secrets, name, secret, dir)?;
    }
    Ok(objects)
}

fn add<T>(map: &mut BTreeMap<String, T>, name: String, v: T, from: &Path) -> Result<(), Fatal> {
    if map.insert(name.clone(), v).is_some() {
        return Err(Fatal(format!(
            "{}: `{name}` is given twice on the command line",
            from.display()
        )));
    }
    Ok(())
}

fn dir_name(path: &Path, flag: &str) -> Result<String, Fatal> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Fatal(format!(
                "{flag} {}: the directory has no name",
                path.display()
            ))
        })
}

/// The regular files of `dir` that are keys (names of letters, digits, `-`, `_` and `.`, as
/// Kubernetes takes them), sorted; hidden files are left out.
fn keys(dir: &Path, flag: &str) -> Result<Vec<String>, Fatal> {
    let shown = dir.display();
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Fatal(format!("{flag} {shown}: {e}")))? {
        let entry = entry.map_err(|e| Fatal(format!("{flag} {shown}: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file = entry.file_type().is_ok_and(|t| t.is_file());
        let key = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if file && key {
            keys.push(name);
        }
    }
    keys.sort();
    Ok(keys)
}

/// A seccomp profile's text, up to [`MAX_PROFILE_BYTES`].
fn read_profile(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB, the most podc reads",
            MAX_PROFILE_BYTES >> 20
        )));
    }
    Ok(text)
}
