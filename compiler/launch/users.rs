//! The pod's user database and machine id: names an app runs as, found in its image and
//! written into the pod's /etc.

use std::fs;
use std::path::Path;

use super::action::*;
use super::paths::*;

/// The machine id of the pod at `tree` on the host whose machine id is `host_id`: the first 128
/// bits of SHA-256 over a podc label, the host's id, the tree's path and the pod's name, shaped
/// as a version 4 UUID, as systemd derives application-specific ids from the machine id
/// (`sd_id128_get_machine_app_specific`). The same installed pod gets the same id at every
/// launch and after a reinstall at the same path, and no state has to be kept for it; pods on
/// different hosts or at different paths get different ones, and the host's id cannot be read
/// back from it.
pub fn pod_machine_id(host_id: &str, tree: &Path, pod: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"podc pod machine id\0");
    h.update(host_id.as_bytes());
    h.update(b"\0");
    h.update(tree.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(pod.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The users and then the groups of one `names` step into the pod's `etc/passwd` and
/// `etc/group` (or only checked, without `write`): the problem of each, if any.
pub(super) fn names_into_pod(
    app: &str,
    image: &Path,
    etc: &Path,
    users: &[String],
    groups: &[String],
    write: bool,
) -> [Option<LaunchError>; 2] {
    let passwd = etc.join("passwd");
    let group = etc.join("group");
    [
        add_names(app, image, &passwd, "user", "etc/passwd", users, write).err(),
        add_names(app, image, &group, "group", "etc/group", groups, write).err(),
    ]
}

/// Copies the entries of `names` from the image's database file `file` (`etc/passwd` or
/// `etc/group`, read without following links out of the image) into the pod's `db`, with the
/// image's ids: the pod's systemd resolves `User=`/`Group=` names against its own database.
/// With `write` false it only checks (for `podc launch --check`).
pub(super) fn add_names(
    app: &str,
    image: &Path,
    db: &Path,
    kind: &'static str,
    file: &str,
    names: &[String],
    write: bool,
) -> Result<(), LaunchError> {
    if names.is_empty() {
        return Ok(());
    }
    let source = image.join(file);
    refuse_symlinks(image, &source)?;
    if fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(LaunchError::Symlink(source));
    }
    let image_db = fs::read_to_string(&source).unwrap_or_default();
    let mut pod_db = if db.exists() {
        fs::read_to_string(db).map_err(io_err("read", db))?
    } else {
        String::new()
    };
    let pod_db_before = pod_db.clone();
    // name:x:id:... in both files (the id is the third field of passwd and group alike).
    let find = |text: &str, name: &str| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name).then(|| (l.to_string(), f[2].parse::<u32>().ok()))
        })
    };
    for name in names {
        let unknown = || LaunchError::UnknownName {
            app: app.to_string(),
            kind,
            name: name.clone(),
            file: source.clone(),
        };
        let Some((line, id)) = find(&image_db, name) else {
            // A name the image lacks but the pod's database has (root, seeded above) is fine.
            if find(&pod_db, name).is_some() || name == "root" {
                continue;
            }
            return Err(unknown());
        };
        let image_id = id.ok_or_else(unknown)?;
        match find(&pod_db, name) {
            Some((_, Some(pod_id))) if pod_id != image_id => {
                return Err(LaunchError::NameConflict {
                    app: app.to_string(),
                    kind,
                    name: name.clone(),
                    image_id,
                    pod_id,
                })
            }
            Some(_) => {}
            None => {
                let entry = if kind == "user" {
                    let gid: u32 = line
                        .split(':')
                        .nth(3)
                        .and_then(|g| g.parse().ok())
                        .ok_or_else(unknown)?;
                    format!("{name}:x:{image_id}:{gid}::/:/usr/sbin/nologin\n")
                } else {
                    format!("{name}:x:{image_id}:\n")
                };
                if !pod_db.is_empty() && !pod_db.ends_with('\n') {
                    pod_db.push('\n');
                }
                pod_db.push_str(&entry);
            }
        }
    }
    if write && pod_db != pod_db_before {
        fs::write(db, pod_db).map_err(io_err("write", db))?;
    }
    Ok(())
}

/// Adds `podc-uid-N`/`podc-gid-N` entries (as the tree's sysusers.d does for the manifest's ids)
/// for a numeric uid and gid the pod's `etc/passwd` and `etc/group` lack.
pub(super) fn add_ids(
    etc: &Path,
    uid: Option<(u32, u32)>,
    gid: Option<u32>,
) -> Result<(), LaunchError> {
    let has_id = |text: &str, id: u32| {
        text.lines()
            .any(|l| l.split(':').nth(2).and_then(|f| f.parse::<u32>().ok()) == Some(id))
    };
    let add = |file: &str, id: u32, entry: String| -> Result<(), LaunchError> {
        let path = etc.join(file);
        let mut text = fs::read_to_string(&path).unwrap_or_default();
        if has_id(&text, id) {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&entry);
        fs::write(&path, text).map_err(io_err("write", &path))
    };
    let groups = gid.into_iter().chain(uid.map(|(_, g)| g));
    for g in groups {
        add("group", g, format!("podc-gid-{g}:x:{g}:\n"))?;
    }
    if let Some((u, g)) = uid {
        add(
            "passwd",
            u,
            format!("podc-uid-{u}:x:{u}:{g}:podc app user:/:/usr/sbin/nologin\n"),
        )?;
    }
    Ok(())
}
