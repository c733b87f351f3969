//! The images a tree runs: the manifest digest each image reference of its plan resolved to,
//! kept in the tree's state ([`IMAGE_RECORD`](super::layout::IMAGE_RECORD)).
//!
//! A reference by tag names whatever the store's name points at when it is read, and a name
//! can be imported again at any time; a pod must not start on another image because of that.
//! So `podc install` records what each reference names when the pod is installed, the first
//! launch that finds an image records it where nothing did, and every later launch runs the
//! recorded digest: only a reinstall (or a fresh build of a tree run in place) changes it.
//! `podc status` shows it, and `podc image gc` and `rm` keep the images installed pods record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::reference::{Digest, Reference};

/// The first line of the record: what it is and who writes it.
const HEADER: &str =
    "# Written by podc launch and podc install: the image each reference of mounts.toml runs.\n";

/// What the record holds, checked: every key a full reference, every value a digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRecord {
    /// Each reference as the plan writes it → the manifest digest it resolved to.
    pub images: BTreeMap<String, Digest>,
}

/// The record as TOML has it, before it is checked.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    images: BTreeMap<String, String>,
}

impl ImageRecord {
    /// Reads the record's text, holding it to what podc writes: a launcher that trusted an
    /// edited record would run whatever digest it names, so each is checked as a plan's is.
    pub fn parse(text: &str) -> Result<ImageRecord, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut images = BTreeMap::new();
        for (reference, digest) in raw.images {
            Reference::parse(&reference).map_err(|e| format!("{reference:?}: {e}"))?;
            let d = Digest::parse(&digest).map_err(|e| format!("{reference:?}: {e}"))?;
            images.insert(reference, d);
        }
        Ok(ImageRecord { images })
    }

    /// The record's text: a header line and one `"reference" = "sha256:…"` line per image.
    pub fn to_text(&self) -> String {
        let raw = Raw {
            images: self
                .images
                .iter()
                .map(|(r, d)| (r.clone(), d.to_string()))
                .collect(),
        };
        let body = toml::to_string(&raw).expect("a map of strings serializes");
        [HEADER, &body].concat()
    }

    /// `reference` pinned to its recorded digest (`name@sha256:…`), if the record has one.
    pub fn pinned(&self, reference: &str) -> Option<Reference> {
        let d = self.images.get(reference)?;
        let mut r = Reference::parse(reference).ok()?;
        r.tag = None;
        r.digest = Some(d.clone());
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_record_reads_back_what_it_wrote() {
        let mut r = ImageRecord::default();
        r.images
            .insert("127.0.0.1:5000/a/b:1".into(), Digest::parse(D).unwrap());
        let text = r.to_text();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.contains(&format!("\"127.0.0.1:5000/a/b:1\" = \"{D}\"")),
            "{text}"
        );
        assert_eq!(ImageRecord::parse(&text).unwrap(), r);
        assert_eq!(
            r.pinned("127.0.0.1:5000/a/b:1").unwrap().to_string(),
            format!("127.0.0.1:5000/a/b@{D}")
        );
        assert!(r.pinned("127.0.0.1:5000/a/b:2").is_none());
        assert_eq!(ImageRecord::parse("").unwrap(), ImageRecord::default());
    }

    #[test]
    fn an_edited_record_is_refused() {
        for (text, says) in [
            (
                "[images]\n\"127.0.0.1:5000/y:1\" = \"sha256:00\"\n",
                "64 lowercase hex",
            ),
            (
                &*format!("[images]\n\"not a ref\" = \"{D}\"\n"),
                "not a ref",
            ),
            ("[images]\n\"127.0.0.1:5000/y:1\" = 3\n", "invalid type"),
            ("other = 1\n", "unknown field"),
        ] {
            let e = ImageRecord::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
