//! Volumes of the pod and the mounts of each app.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::*;
use super::items::mount_item;
use crate::diag::codes;
use crate::manifest::reference::Reference;
use crate::manifest::{self, quantity, ItemKind, Manifest};
use crate::parse::source::{join_index, join_key};
use crate::pod::{self, AppFile, AppMount, Volume};
use crate::systemd::escape;
use crate::tree::layout::under_api_mount;

/// The pod's volumes, and each name with what its mounts need to know of it.
pub(super) fn resolve_volumes(
    c: &mut Checker,
    m: &Manifest,
) -> (Vec<Volume>, BTreeMap<String, Declared>) {
    let mut volumes = Vec::new();
    let mut volume_names = BTreeMap::new();
    for (i, v) in m.volumes.iter().enumerate() {
        let path = join_index("volumes", i);
        let declared = Declared {
            // An image or projected volume is read-only, whatever a mount of it says.
            read_only: v.read_only.unwrap_or(false)
                || matches!(
                    v.kind,
                    manifest::VolumeKind::Image | manifest::VolumeKind::Projected
                ),
            file: v.kind == manifest::VolumeKind::Host
                && v.host_type.is_some_and(manifest::HostType::is_file),
        };
        // A volume with problems still exists for its mounts, so they get no errors of their own.
        if volume_names.insert(v.name.clone(), declared).is_some() {
            c.value(
                codes::VOLUME_DUPLICATE,
                &join_key(&path, "name"),
                format!("volume {} is defined twice", show(&v.name)),
            );
        }
        if let Some(v) = resolve_volume(c, &path, v) {
            volumes.push(v);
        }
    }
    (volumes, volume_names)
}

/// Keys of one kind of volume on another: `image`, `size`, `type`.
fn misplaced_keys(c: &mut Checker, path: &str, v: &manifest::Volume) {
    if v.image.is_some() && v.kind != manifest::VolumeKind::Image {
        c.key(
            codes::IMAGE_VOLUME,
            &join_key(path, "image"),
            "`image` applies only to image volumes (`kind: image`), whose root filesystem it names",
        );
    }
    if v.size.is_some() && v.kind != manifest::VolumeKind::Memory {
        c.key(
            codes::SIZE_NOT_MEMORY,
            &join_key(path, "size"),
            "`size` applies only to memory volumes (`kind: memory`), whose tmpfs it limits",
        );
    }
    if v.host_type.is_some() && v.kind != manifest::VolumeKind::Host {
        c.key(
            codes::HOST_TYPE,
            &join_key(path, "type"),
            "`type` applies only to host volumes (`kind: host`), whose path it checks",
        );
    }
}

pub(super) fn resolve_volume(c: &mut Checker, path: &str, v: &manifest::Volume) -> Option<Volume> {
    let named = c.name(&join_key(path, "name"), "volume", &v.name);
    let read_only = v.read_only.unwrap_or(false) || v.kind == manifest::VolumeKind::Image;
    misplaced_keys(c, path, v);
    let kind = match v.kind {
        manifest::VolumeKind::Host => {
            for (key, present) in [
                ("mode", v.mode.is_some()),
                ("uid", v.uid.is_some()),
                ("gid", v.gid.is_some()),
            ] {
                if present {
                    c.key(codes::HOST_VOLUME_OWNERSHIP, &join_key(path, key), format!("`{key}` applies only to empty, persistent and memory volumes; a host volume keeps its directory's own"));
                }
            }
            match &v.source {
                None => {
                    c.key(
                        codes::HOST_VOLUME_SOURCE,
                        &join_key(path, "kind"),
                        format!("host volume {} needs a `source` directory", show(&v.name)),
                    );
                    None
                }
                Some(s) => c
                    .abs_path(&join_key(path, "source"), "volume source", s)
                    .then(|| pod::VolumeKind::Host {
                        source: s.clone(),
                        host_type: v.host_type.unwrap_or_default(),
                    }),
            }
        }
        manifest::VolumeKind::Empty => {
            if v.source.is_some() {
                c.key(
                    codes::EMPTY_VOLUME_SOURCE,
                    &join_key(path, "source"),
                    "an empty volume has no `source`: podc makes a fresh directory for each run",
                );
            }
            volume_mode(c, path, v).map(|mode| pod::VolumeKind::Empty {
                mode,
                uid: v.uid.unwrap_or(0),
                gid: v.gid.unwrap_or(0),
            })
        }
        manifest::VolumeKind::Persistent => {
            no_source(
                c,
                path,
                v,
                "podc keeps its directory in /var/lib/podc/volumes/<pod>/<name>",
            );
            volume_mode(c, path, v).map(|mode| pod::VolumeKind::Persistent {
                mode,
                uid: v.uid.unwrap_or(0),
                gid: v.gid.unwrap_or(0),
            })
        }
        manifest::VolumeKind::Projected => {
            no_source(c, path, v, "its files are those of its `sources`");
            let sources = projected_sources(c, path, v);
            match (volume_mode(c, path, v), sources) {
                (Some(mode), Some(sources)) => Some(pod::VolumeKind::Projected {
                    sources,
                    mode,
                    uid: v.uid.unwrap_or(0),
                    gid: v.gid.unwrap_or(0),
                }),
                _ => None,
            }
        }
        manifest::VolumeKind::Memory => {
            no_source(c, path, v, "podc mounts a fresh tmpfs for each run");
            let size = memory_size(c, path, v);
            match (volume_mode(c, path, v), size) {
                (Some(mode), Some((size, written))) => Some(pod::VolumeKind::Memory {
                    size,
                    written,
                    mode,
                    uid: v.uid.unwrap_or(0),
                    gid: v.gid.unwrap_or(0),
                }),
                _ => None,
            }
        }
        manifest::VolumeKind::Image => image_volume(c, path, v),
    };
    if v.sources.is_some() && v.kind != manifest::VolumeKind::Projected {
        c.key(
            codes::PROJECTED_SOURCES,
            &join_key(path, "sources"),
            "`sources` applies only to projected volumes (`kind: projected`), which hold their files",
        );
    }
    // A projected volume's files are the launcher's copies: always read-only, as on Kubernetes.
    let read_only = read_only || matches!(kind, Some(pod::VolumeKind::Projected { .. }));
    match (named, kind) {
        (true, Some(kind)) => Some(Volume {
            name: v.name.clone(),
            kind,
            read_only,
        }),
        _ => None,
    }
}

/// A persistent or memory volume has no `source`: `where_instead` says what podc does.
fn no_source(c: &mut Checker, path: &str, v: &manifest::Volume, where_instead: &str) {
    if v.source.is_some() {
        c.key(
            codes::VOLUME_SOURCE,
            &join_key(path, "source"),
            format!(
                "a {} volume has no `source`: {where_instead}",
                kind_word(v.kind)
            ),
        )
        .help = Some("for a directory of the host, use `kind: host`".into());
    }
}

fn kind_word(kind: manifest::VolumeKind) -> &'static str {
    match kind {
        manifest::VolumeKind::Host => "host",
        manifest::VolumeKind::Empty => "empty",
        manifest::VolumeKind::Persistent => "persistent",
        manifest::VolumeKind::Memory => "memory",
        manifest::VolumeKind::Projected => "projected",
        manifest::VolumeKind::Image => "image",
    }
}

/// A projected volume's sources, each naming one item (whether it is a `dir` item of the pod
/// is checked with the items, [`check_projected`]); read-only, as it always is.
fn projected_sources(
    c: &mut Checker,
    path: &str,
    v: &manifest::Volume,
) -> Option<Vec<pod::Projected>> {
    if v.read_only == Some(false) {
        c.value(
            codes::PROJECTED_SOURCES,
            &join_key(path, "readOnly"),
            format!("projected volume {} is read-only: its files are copies the launcher makes at every start", show(&v.name)),
        );
    }
    let list = match &v.sources {
        Some(list) if !list.is_empty() => list,
        _ => {
            c.key(
                codes::PROJECTED_SOURCES,
                &join_key(path, "kind"),
                format!("projected volume {} needs `sources`: the `dir` config items and secrets whose files it holds", show(&v.name)),
            );
            return None;
        }
    };
    let mut sources = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let (kind, name) = match (&s.config, &s.secret) {
            (Some(n), None) => (ItemKind::Config, n),
            (None, Some(n)) => (ItemKind::Secret, n),
            _ => {
                c.value(
                    codes::PROJECTED_SOURCE,
                    &join_index(&join_key(path, "sources"), i),
                    "a source names exactly one of `config` and `secret`",
                );
                continue;
            }
        };
        sources.push(pod::Projected {
            item: pod::ItemRef {
                kind,
                name: name.clone(),
            },
            optional: s.optional.unwrap_or(false),
        });
    }
    (sources.len() == list.len()).then_some(sources)
}

/// Each projected volume's sources are `dir` items of the pod.
pub(super) fn check_projected(c: &mut Checker, m: &Manifest, items: &[pod::Item]) {
    for (i, v) in m.volumes.iter().enumerate() {
        if v.kind != manifest::VolumeKind::Projected {
            continue;
        }
        for (j, s) in v.sources.iter().flatten().enumerate() {
            let (kind, name) = match (&s.config, &s.secret) {
                (Some(n), None) => (ItemKind::Config, n),
                (None, Some(n)) => (ItemKind::Secret, n),
                _ => continue,
            };
            let p = join_key(
                &join_index(&join_key(&join_index("volumes", i), "sources"), j),
                kind.name(),
            );
            let item = items.iter().find(|it| it.kind == kind && &it.name == name);
            let why = match item.map(|it| &it.source) {
                Some(pod::Source::Dir(_)) => continue,
                Some(_) => format!(
                    "{kind} {} is one file, not a directory of files",
                    show(name)
                ),
                None => format!("no {kind} named {} in this pod", show(name)),
            };
            c.value(codes::PROJECTED_SOURCE, &p, format!("a projected volume holds the files of `dir` items: {why}"))
                .help = Some(format!("declare it with `dir: /path/of/its/files` under `{}`, or mount one file with `mounts: [{{{kind}: {name}, path: ...}}]`", match kind { ItemKind::Config => "config", ItemKind::Secret => "secrets" }));
        }
    }
}

/// An image volume: its reference (a short name normalized, and warned of later), read-only,
/// with none of the keys of a directory podc makes.
fn image_volume(c: &mut Checker, path: &str, v: &manifest::Volume) -> Option<pod::VolumeKind> {
    for (key, present) in [
        ("source", v.source.is_some()),
        ("mode", v.mode.is_some()),
        ("uid", v.uid.is_some()),
        ("gid", v.gid.is_some()),
    ] {
        if present {
            c.key(
                codes::IMAGE_VOLUME_KEY,
                &join_key(path, key),
                format!("`{key}` does not apply to an image volume: it is the image's root filesystem as the image store holds it"),
            );
        }
    }
    if v.read_only == Some(false) {
        c.value(
            codes::IMAGE_VOLUME_WRITABLE,
            &join_key(path, "readOnly"),
            "an image volume is always read-only (the image store's root is shared and never written); `readOnly: false` cannot be",
        );
    }
    let Some(image) = &v.image else {
        c.key(
            codes::IMAGE_VOLUME,
            &join_key(path, "kind"),
            format!("image volume {} needs an `image` reference", show(&v.name)),
        )
        .help =
            Some("`image: registry.example/name:tag`, best pinned with `@sha256:<digest>`".into());
        return None;
    };
    match Reference::parse_normalized(image) {
        Ok((reference, _)) => Some(pod::VolumeKind::Image { reference }),
        Err(why) => {
            c.value(
                codes::IMAGE_VOLUME,
                &join_key(path, "image"),
                format!("image {} is not an image reference: {why}", show(image)),
            )
            .help = Some("`registry.example/name:tag`, best pinned with `@sha256:<digest>`".into());
            None
        }
    }
}

/// The permission bits of an empty, persistent or memory volume (default 0755).
fn volume_mode(c: &mut Checker, path: &str, v: &manifest::Volume) -> Option<u32> {
    let Some(m) = &v.mode else {
        return Some(0o755);
    };
    let ok = (3..=5).contains(&m.len()) && m.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let parsed = if ok {
        u32::from_str_radix(m, 8).ok().filter(|v| *v <= 0o7777)
    } else {
        None
    };
    if parsed.is_none() {
        c.value(
            codes::VOLUME_MODE,
            &join_key(path, "mode"),
            format!(
                "mode {} is not an octal permission such as \"0750\"",
                show(m)
            ),
        );
    }
    parsed
}

/// A memory volume's `size`: required, a whole number of bytes; with the text as written.
fn memory_size(c: &mut Checker, path: &str, v: &manifest::Volume) -> Option<(u64, String)> {
    let Some(q) = &v.size else {
        c.key(
            codes::MEMORY_VOLUME_SIZE,
            &join_key(path, "kind"),
            format!(
                "memory volume {} needs a `size`, the most its tmpfs holds (such as \"64Mi\")",
                show(&v.name)
            ),
        );
        return None;
    };
    match quantity::bytes(&q.text) {
        Ok(b) => Some((b, q.text.trim().to_string())),
        Err(e) => {
            let d = c.value(
                codes::VOLUME_SIZE,
                &join_key(path, "size"),
                format!("size {} {e}", show(&q.text)),
            );
            d.help = quantity::suggest_memory(&q.text);
            None
        }
    }
}

/// The app's mounts: known volumes (and config items and secrets, as files), paths that can
/// carry them, one mount per path.
pub(super) fn resolve_mounts(
    c: &mut Checker,
    path: &str,
    a: &manifest::App,
    volumes: &BTreeMap<String, Declared>,
    items: &BTreeMap<String, ItemKind>,
) -> (Vec<AppMount>, Vec<AppFile>) {
    let mut mounts = Vec::new();
    let mut files = Vec::new();
    let mut mount_paths = BTreeSet::new();
    for (i, m) in a.mounts.iter().enumerate() {
        let p = join_index(&join_key(path, "mounts"), i);
        let item = mount_item(c, &p, m, items);
        let volume = m.volume.as_deref().filter(|_| item == Some(None));
        let declared = match volume.map(|v| (v, volumes.get(v))) {
            None => None,
            Some((_, Some(d))) => Some(*d),
            Some((volume, None)) => {
                let names: Vec<&str> = volumes.keys().map(String::as_str).collect();
                c.value(
                    codes::UNKNOWN_VOLUME,
                    &join_key(&p, "volume"),
                    format!("no volume named {} in this pod", show(volume)),
                )
                .help = Some(known_help(volume, &names, "volumes"));
                None
            }
        };
        // A config item or secret is bound by systemd (BindReadOnlyPaths=), wherever it goes.
        let bound_by_systemd = under_api_mount(&m.path) || matches!(item, Some(Some(_)));
        let mp = join_key(&p, "path");
        let path_ok = c.abs_path(&mp, "mount path", &m.path);
        let api = ["/proc", "/sys"]
            .into_iter()
            .find(|a| m.path == *a || m.path.strip_prefix(*a).is_some_and(|r| r.starts_with('/')));
        if path_ok && m.path == "/" {
            c.value(
                codes::MOUNT_PATH,
                &mp,
                "a volume cannot be mounted over the app's whole root filesystem",
            );
        } else if let (true, Some(api)) = (path_ok, api) {
            let what = if matches!(item, Some(Some(_))) {
                "a file"
            } else {
                "a volume"
            };
            c.value(codes::MOUNT_PATH, &mp, format!("{what} at {} would be hidden by the {api} that systemd mounts over the app's root (MountAPIVFS=)", show(&m.path)))
                .help = Some("mount it somewhere else".into());
        } else if path_ok && m.path == "/dev" {
            c.value(
                codes::MOUNT_PATH,
                &mp,
                "a volume at \"/dev\" would replace the app's devices; mount it below /dev",
            )
            .help = Some(
                "volumes below /dev, such as /dev/shm, are bound again over the /dev systemd makes"
                    .into(),
            );
        } else if path_ok && bound_by_systemd && m.path.contains(':') {
            let by = if matches!(item, Some(Some(_))) {
                "BindReadOnlyPaths= (which binds config and secrets)"
            } else {
                "BindPaths= (used below /run and /dev)"
            };
            c.value(
                codes::PATH_UNWRITABLE,
                &mp,
                format!(
                    "mount path {} has a `:`, which systemd's {by} cannot carry",
                    show(&m.path)
                ),
            );
        } else if path_ok && !mount_paths.insert(m.path.clone()) {
            c.value(
                codes::MOUNT_PATH_TWICE,
                &mp,
                format!("two mounts of this app use the path {}", show(&m.path)),
            );
        }
        let file = matches!(item, Some(Some(_))) || declared.is_some_and(|d| d.file);
        let sub_path = m.sub_path.as_ref().filter(|s| sub_path(c, &p, s, file));
        if let (Some(declared), Some(volume)) = (declared, volume) {
            mounts.push(AppMount {
                volume: volume.to_string(),
                path: m.path.clone(),
                read_only: declared.read_only || m.read_only.unwrap_or(false),
                sub_path: sub_path.cloned(),
            });
        }
        if let Some(Some(item)) = item {
            files.push(AppFile {
                item,
                path: m.path.clone(),
            });
        }
    }
    (mounts, files)
}

/// A mount's `subPath`: a relative path in normal form, of a directory volume (not of a config
/// item or secret, nor of a host volume that is a file or socket: `file`).
fn sub_path(c: &mut Checker, path: &str, sub: &str, file: bool) -> bool {
    let at = join_key(path, "subPath");
    if file {
        c.key(
            codes::SUB_PATH_NOT_DIRECTORY,
            &at,
            "this mount is of one file (a config item, a secret, or a host volume of `type` file, file-or-create or socket), which has no `subPath`",
        );
        return false;
    }
    let normal = !sub.is_empty() && escape::is_normal_rel_path(sub);
    if !normal {
        c.value(
            codes::SUB_PATH,
            &at,
            format!(
                "subPath {} is not a relative path inside the volume (no leading `/`, no empty, `.` or `..` parts, no control characters)",
                show(sub)
            ),
        )
        .help = Some("name a directory or file inside the volume, such as `html` or `conf/app.conf`".into());
    }
    normal
}
