//! `podc image …`: the operator's commands on the image store (`pull`, `import`, `ls`, `rm`,
//! `gc`).
//!
//! Each handler opens the store ([`super::store::default_dir`]), does one thing and prints
//! one line per image. Installed pods keep their images: `rm` and `gc` read every installed
//! pod's `mounts.toml` (found through the host units, as `podc uninstall` finds them) and
//! collect each string field named `reference`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::exit::Exit;
use crate::host::{install_dir_of, Root};
use crate::image::archive::Archive;
use crate::image::progress::Line;
use crate::image::registry::{pull_timeout, Credentials, Options, Registry, MAX_PULL_JOBS};
use crate::image::store::{default_dir, Store};
use crate::image::{ImageError, Reference};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry (HTTPS; credentials from the auth file podman or docker
    /// login writes, or PODC_REGISTRY_CREDS=USER:PASSWORD; PODC_PULL_TIMEOUT seconds in all,
    /// default 1800) and print its manifest digest.
    Pull {
        /// The image (`registry/repo:tag` or `registry/repo@sha256:<digest>`; a short name
        /// such as `busybox:1.36` is Docker Hub's, `docker.io/library/busybox:1.36`).
        #[arg(value_name = "REF")]
        reference: String,
        /// Speak plain HTTP: only to a registry on this host's loopback (localhost,
        /// 127.0.0.0/8, [::1]); refused for any other.
        #[arg(long)]
        plain_http: bool,
        /// Fetch up to N layers at once, each on a connection of its own (1 to 16; 1 fetches
        /// them one after another). Layers are unpacked in order as they arrive.
        #[arg(long, value_name = "N", default_value_t = crate::image::registry::PULL_JOBS, value_parser = jobs)]
        jobs: usize,
    },
    /// Import an OCI image layout directory or a `docker save`/`podman save` archive.
    Import {
        /// The layout directory or the archive (.tar).
        path: PathBuf,
        /// The name to record (`registry/repo:tag`; a short name is Docker Hub's, as in a
        /// manifest); needed when the archive's own names do not name a registry, and to
        /// choose one image of several.
        #[arg(long, value_name = "REF")]
        name: Option<String>,
    },
    /// List the named images: reference, manifest digest, size, created.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also check the store (every blob re-hashed); exit 1 on a problem.
        #[arg(long)]
        verify: bool,
    },
    /// Remove image names, then free what nothing uses any more (as gc).
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
        /// Remove a name even though an installed pod runs its image by that name.
        #[arg(long)]
        force: bool,
        /// Find installed pods below DIR instead of `/`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Remove every image and blob no name and no installed pod uses.
    Gc {
        /// Find installed pods below DIR instead of `/`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
}

/// Runs one `podc image` command; `Err` is a message for exit status 2.
pub fn run(cmd: ImageCommand, out: &mut impl Write) -> Result<Exit, String> {
    let err = |e: ImageError| e.to_string();
    match cmd {
        ImageCommand::Pull {
            reference,
            plain_http,
            jobs,
        } => pull(&reference, plain_http, jobs, out),
        ImageCommand::Import { path, name } => import(&path, name.as_deref(), out),
        ImageCommand::Ls { json, verify } => {
            let store = Store::open(&default_dir()).map_err(err)?;
            ls(&store, json, verify, out)
        }
        ImageCommand::Rm {
            references,
            force,
            root,
        } => {
            let store = Store::open(&default_dir()).map_err(err)?;
            let root = Root(root.unwrap_or_else(|| "/".into()));
            let mut refs = Vec::new();
            for r in &references {
                refs.push(parse_given(r).map_err(|e| format!("{r}: {e}"))?);
            }
            let in_use = installed_references(&root)?;
            if !force {
                for r in &refs {
                    for name in store.matching_refs(r).map_err(err)? {
                        if let Some((pod, _)) = in_use.iter().find(|(_, u)| {
                            u.digest.is_none() && u.tag == name.tag && u.name() == name.name()
                        }) {
                            return Err(format!(
                                "{name} is used by the installed pod {pod}; uninstall it first, or give --force (the pod then cannot start until the image is back)"
                            ));
                        }
                    }
                }
            }
            store.remove_refs(&refs).map_err(err)?;
            for r in &refs {
                let _ = writeln!(out, "removed {r}");
            }
            gc(&store, &in_use, out)
        }
        ImageCommand::Gc { root } => {
            let store = Store::open(&default_dir()).map_err(err)?;
            let in_use = installed_references(&Root(root.unwrap_or_else(|| "/".into())))?;
            gc(&store, &in_use, out)
        }
    }
}

fn gc(store: &Store, in_use: &[(String, Reference)], out: &mut impl Write) -> Result<Exit, String> {
    let refs: Vec<Reference> = in_use.iter().map(|(_, r)| r.clone()).collect();
    let done = store.gc(&refs).map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "gc: removed {} image root(s) and {} blob(s), {} bytes",
        done.roots.len(),
        done.blobs.len(),
        done.bytes
    );
    Ok(Exit::Ok)
}

fn import(path: &Path, name: Option<&str>, out: &mut impl Write) -> Result<Exit, String> {
    let name = name
        .map(|n| parse_given(n).map_err(|e| format!("--name {n}: {e}")))
        .transpose()?;
    let mut archive = Archive::open(path).map_err(|e| e.to_string())?;
    let entries = archive.entries().to_vec();
    let shown = path.display();
    let chosen = match name {
        Some(n) => {
            let tag = n.tag.clone().unwrap_or_default();
            let hit = match entries.as_slice() {
                [one] => Some(one.clone()),
                _ => entries
                    .iter()
                    // A name of the archive's picks it when it means `--name` (`busybox:1`
                    // in a docker archive is docker.io/library/busybox:1), or is its tag.
                    .find(|e| {
                        e.names
                            .iter()
                            .any(|x| parse_given(x).ok().as_ref() == Some(&n) || *x == tag)
                    })
                    .cloned(),
            };
            let Some(e) = hit else {
                return Err(format!(
                    "{shown} holds {} images and none is named {n} or {tag}; its names: {}",
                    entries.len(),
                    all_names(&entries)
                ));
            };
            vec![(e, n)]
        }
        None => {
            let mut v = Vec::new();
            for e in &entries {
                let parsed = e.names.iter().find_map(|x| Reference::parse(x).ok());
                match parsed {
                    Some(r) => v.push((e.clone(), r)),
                    None => {
                        let why = match e.names.first() {
                            Some(x) => match Reference::parse(x) {
                                Err(m) => format!("its name {x:?} cannot be used: {m}"),
                                Ok(_) => unreachable!("no name parsed"),
                            },
                            None => "it has no name".to_string(),
                        };
                        return Err(format!(
                            "{shown}: image {}: {why}; give the name to record with --name REF",
                            e.digest
                        ));
                    }
                }
            }
            v
        }
    };
    let store = Store::open(&default_dir()).map_err(|e| e.to_string())?;
    for (e, n) in chosen {
        let line = Line::new(n.to_string(), std::io::stderr().is_terminal());
        let result = store.ingest_with(&mut archive, e.digest.as_str(), Some(&n), &|e| {
            line.event(e)
        });
        line.clear();
        let d = result.map_err(|e| e.to_string())?;
        let _ = writeln!(out, "imported {n} {d}");
    }
    Ok(Exit::Ok)
}

fn all_names(entries: &[crate::image::archive::Entry]) -> String {
    let v: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.names.iter().map(String::as_str))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn ls(store: &Store, json: bool, verify: bool, out: &mut impl Write) -> Result<Exit, String> {
    let list = store.list().map_err(|e| e.to_string())?;
    if json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|l| {
                serde_json::json!({
                    "reference": l.reference,
                    "manifest": l.manifest.as_str(),
                    "size": l.size,
                    "created": l.created,
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON values serialize")
        );
    } else {
        let w = list
            .iter()
            .map(|l| l.reference.len())
            .max()
            .unwrap_or(0)
            .max("REFERENCE".len());
        let _ = writeln!(
            out,
            "{:w$}  {:19}  {:>10}  CREATED",
            "REFERENCE", "MANIFEST", "SIZE"
        );
        for l in &list {
            let _ = writeln!(
                out,
                "{:w$}  sha256:{}  {:>10}  {}",
                l.reference,
                &l.manifest.hex()[..12],
                l.size,
                l.created.as_deref().unwrap_or("-")
            );
        }
    }
    if verify {
        let problems = store.verify().map_err(|e| e.to_string())?;
        for p in &problems {
            let _ = writeln!(std::io::stderr(), "error: {}: {p}", store.dir().display());
        }
        if !problems.is_empty() {
            return Ok(Exit::Input);
        }
    }
    Ok(Exit::Ok)
}

/// Every image reference an installed pod names: (pod unit, reference). A pod is found by its
/// host unit `/etc/systemd/system/podc-*.service`; its plan `mounts.toml` is read as plain
/// TOML and every string field named `reference` is taken.
pub fn installed_references(root: &Root) -> Result<Vec<(String, Reference)>, String> {
    let units = root.path("/etc/systemd/system");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&units) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("{}: {e}", units.display())),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("podc-") && n.ends_with(".service"))
        .collect();
    names.sort();
    for unit in names {
        let path = units.join(&unit);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(dir) = install_dir_of(&text) else {
            continue;
        };
        let plan = root.path(&dir).join("mounts.toml");
        let text = match std::fs::read_to_string(&plan) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", plan.display())),
        };
        let value: toml::Value =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", plan.display()))?;
        let mut found = Vec::new();
        collect_references(&value, &mut found);
        for r in found {
            let parsed = Reference::parse(&r)
                .map_err(|e| format!("{}: reference {r:?}: {e}", plan.display()))?;
            out.push((unit.clone(), parsed));
        }
    }
    Ok(out)
}

fn collect_references(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v {
                    toml::Value::String(s) if k == "reference" => out.push(s.clone()),
                    _ => collect_references(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// A reference typed on the command line: a short name means what it means in a manifest
/// (Docker Hub's). An archive's own names are not read so: an OCI layout's `latest` is a tag.
fn parse_given(r: &str) -> Result<Reference, String> {
    Reference::parse_normalized(r).map(|(r, _)| r)
}

/// `--jobs`: a whole number from 1 to [`MAX_PULL_JOBS`].
fn jobs(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| (1..=MAX_PULL_JOBS).contains(n))
        .ok_or_else(|| format!("give a number of layers from 1 to {MAX_PULL_JOBS}"))
}

/// Pulls `reference` into the default store, fetching up to `jobs` layers at once, and
/// prints `REF: sha256:…` on `out`.
fn pull(
    reference: &str,
    plain_http: bool,
    jobs: usize,
    out: &mut impl Write,
) -> Result<Exit, String> {
    let r = parse_given(reference).map_err(|e| format!("{reference}: {e}"))?;
    let credentials = Credentials::for_reference(&r)?;
    let registry = Registry::new(
        &r,
        Options {
            plain_http,
            credentials,
            timeout: pull_timeout()?,
            jobs,
        },
    )
    .map_err(|e| e.to_string())?;
    let store = Store::open(&default_dir()).map_err(|e| e.to_string())?;
    let digest = crate::image::pull::pull(&store, &r, registry, std::io::stderr().is_terminal())
        .map_err(|e| format!("pulling {r}: {e}"))?;
    let _ = writeln!(out, "{r}: {digest}");
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_collected_from_any_step() {
        let v: toml::Value = toml::from_str(
            r#"
            version = 1
            [[step]]
            do = "image"
            reference = "127.0.0.1:5000/a:t"
            [[step]]
            do = "bind"
            source = "/x"
            [[step.inner]]
            reference = "localhost/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            "#,
        )
        .unwrap();
        let mut out = Vec::new();
        collect_references(&v, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], "127.0.0.1:5000/a:t");
    }
}
