//! `podc image …`: the operator's commands on the image store (`pull`, `import`, `ls`, `rm`,
//! `gc`).
//!
//! Each handler opens the store ([`super::store::default_dir`]), does one thing and prints
//! one line per image. Installed pods keep their images: `rm` and `gc` read every installed
//! pod's `mounts.toml` (found through the host units, as `podc uninstall` finds them), collect
//! each string field named `reference`, and read the digests its record pins them to
//! (`state/images.toml`). Running pods keep theirs through the store's leases and mounts
//! ([`Store::running`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::exit::Exit;
use crate::host::{install_dir_of, Root};
use crate::image::archive::Archive;
use crate::image::progress::Line;
use crate::image::registry::{pull_timeout, Credentials, Options, Registry, MAX_PULL_JOBS};
use crate::image::store::{default_dir, Listed, Store};
use crate::image::{Digest, ImageError, Reference};

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
    /// Remove image names, then free what nothing uses any more (as gc); refused for an
    /// image a pod uses.
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
        /// Remove a name even though an installed pod uses its image (the image itself stays
        /// while a pod recorded it); never for an image a running pod uses.
        #[arg(long)]
        force: bool,
        /// Find installed pods below DIR instead of `/`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Remove every image and blob no name, no installed pod and no running pod uses.
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
            check_rm(&store, &refs, &in_use, force)?;
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

fn gc(store: &Store, in_use: &[InstalledUse], out: &mut impl Write) -> Result<Exit, String> {
    let mut refs: Vec<Reference> = in_use.iter().map(|u| u.reference.clone()).collect();
    refs.extend(in_use.iter().filter_map(InstalledUse::pinned));
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
        let _ = out.write_all(table(&list).as_bytes());
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

/// The table of `podc image ls`: reference, the whole manifest digest (what a manifest pins
/// an image by, `REF@sha256:…`: #28, it showed 12 hex digits while the unpinned-image
/// warning asks for the digest), size, created.
fn table(list: &[Listed]) -> String {
    let w = list
        .iter()
        .map(|l| l.reference.len())
        .max()
        .unwrap_or(0)
        .max("REFERENCE".len());
    let mut text = format!(
        "{:w$}  {:71}  {:>10}  CREATED\n",
        "REFERENCE", "MANIFEST", "SIZE"
    );
    for l in list {
        text.push_str(&format!(
            "{:w$}  {}  {:>10}  {}\n",
            l.reference,
            l.manifest.as_str(),
            l.size,
            l.created.as_deref().unwrap_or("-")
        ));
    }
    text
}

/// One image reference of an installed pod.
#[derive(Debug, Clone)]
pub struct InstalledUse {
    /// The pod's host unit (`podc-web.service`).
    pub unit: String,
    /// The reference as its plan names it.
    pub reference: Reference,
    /// The digest its record pins that reference to, if it has one.
    pub recorded: Option<Digest>,
}

impl InstalledUse {
    /// The reference pinned to the recorded digest, if there is one.
    fn pinned(&self) -> Option<Reference> {
        let d = self.recorded.clone()?;
        Some(Reference {
            tag: None,
            digest: Some(d),
            ..self.reference.clone()
        })
    }

    /// Whether it names `name` itself (by tag, unpinned in its plan).
    fn by_name(&self, name: &Reference) -> bool {
        self.reference.digest.is_none()
            && self.reference.tag == name.tag
            && self.reference.name() == name.name()
    }
}

/// Refuses to remove names whose image a pod uses (unless `force`), and a name whose image a
/// running pod uses even with `force`, saying which pods use it; with `force`, warns of each
/// installed pod that uses it. A pod uses the image a name names if its plan names it by that
/// name, or if the name is the image's last one and the pod recorded the image (install or
/// launch) or runs it (a lease, a mount): removing another name of an image changes nothing
/// for the pods that run it.
fn check_rm(
    store: &Store,
    refs: &[Reference],
    in_use: &[InstalledUse],
    force: bool,
) -> Result<(), String> {
    let err = |e: ImageError| e.to_string();
    let mut names = Vec::new();
    for r in refs {
        names.extend(store.matching_refs(r).map_err(err)?);
    }
    let running = store.running().map_err(err)?;
    // The manifest each reference stands for here (what a pod using it runs).
    let manifest = |r: &Reference| store.resolve(r).ok().map(|i| i.manifest);
    let remaining: Vec<Digest> = store
        .refs()
        .map_err(err)?
        .into_iter()
        .filter(|(r, _)| !names.contains(r))
        .filter_map(|(r, _)| manifest(&r))
        .collect();
    for name in &names {
        let image = manifest(name);
        let last = image.as_ref().filter(|d| !remaining.contains(d));
        let mut installed = Vec::new();
        for u in in_use {
            let runs = manifest(&u.pinned().unwrap_or_else(|| u.reference.clone()));
            let keeps = "the image stays in the store for it";
            let why = match (u.by_name(name), &u.recorded) {
                (true, None) => "by this name; it cannot start once the image is gone".into(),
                (true, Some(d)) if runs != image => format!(
                    "by this name; it runs {d}, recorded at install or launch, until it is installed again"
                ),
                (true, Some(_)) => format!("by this name, recorded at install or launch; {keeps}"),
                (false, _) if last.is_none() || runs.as_ref() != last => continue,
                (false, Some(_)) => format!("recorded at install or launch; {keeps}"),
                (false, None) => format!("pinned by digest in its plan; {keeps}"),
            };
            installed.push(format!("the installed pod {} ({why})", u.unit));
        }
        let running = last.map(|d| running.users(d)).unwrap_or_default();
        if !running.is_empty() {
            let also = match force {
                true => "; --force does not remove an image a running pod uses",
                false => "",
            };
            return Err(format!(
                "{name} is used by {}; stop it first{also}",
                [running, installed].concat().join(", ")
            ));
        }
        if installed.is_empty() {
            continue;
        }
        if !force {
            return Err(format!(
                "{name} is used by {}; uninstall it first, or give --force to remove the name",
                installed.join(", ")
            ));
        }
        eprintln!(
            "warning: {name} is used by {}; removing the name",
            installed.join(", ")
        );
    }
    Ok(())
}

/// Every image reference an installed pod names, with the digest its record pins it to. A pod
/// is found by its host unit `/etc/systemd/system/podc-*.service`; its plan `mounts.toml` is
/// read as plain TOML and every string field named `reference` is taken; its record
/// (`state/images.toml`) must read as podc writes it, or nothing is removed.
pub fn installed_references(root: &Root) -> Result<Vec<InstalledUse>, String> {
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
        let dir = root.path(&dir);
        let plan = dir.join("mounts.toml");
        let text = match std::fs::read_to_string(&plan) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", plan.display())),
        };
        let value: toml::Value =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", plan.display()))?;
        let mut found = Vec::new();
        collect_references(&value, &mut found);
        let record = crate::launch::read_record(&dir).map_err(|e| e.to_string())?;
        for r in found {
            let parsed = Reference::parse(&r)
                .map_err(|e| format!("{}: reference {r:?}: {e}", plan.display()))?;
            out.push(InstalledUse {
                unit: unit.clone(),
                reference: parsed,
                recorded: record.images.get(&r).cloned(),
            });
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

    /// #28: the table showed `sha256:` and 12 hex digits, too few to pin an image by.
    #[test]
    fn ls_shows_the_whole_digest_to_pin_by() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let list = [Listed {
            reference: "127.0.0.1:5000/test/web:1".into(),
            manifest: crate::image::Digest::parse(&digest).unwrap(),
            size: 1234,
            created: None,
        }];
        let text = table(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let fields: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            fields,
            ["127.0.0.1:5000/test/web:1", digest.as_str(), "1234", "-"]
        );
        // The header's columns start where the row's do.
        assert_eq!(lines[0].find("MANIFEST"), lines[1].find("sha256:"));
        assert_eq!(lines[0].find("CREATED"), lines[1].rfind('-'));
        // What a manifest pins the image by reads straight from the row.
        let pinned = format!("127.0.0.1:5000/test/web@{}", fields[1]);
        assert!(crate::manifest::reference::Reference::parse(&pinned)
            .unwrap()
            .digest
            .is_some());
    }

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
