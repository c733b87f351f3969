//! A pull: an image from a source (a registry) into the store under its reference, with one
//! updating progress line (bytes of the layers done / total) on stderr when asked for
//! (`podc image pull` asks on a terminal).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::store::Store;
use super::{Digest, ImageError, Reference, Source};

/// Ingests `reference` from `source` into `store` under its own name; with `progress`, shows
/// the layers' bytes on stderr.
pub fn pull(
    store: &Store,
    reference: &Reference,
    source: impl Source,
    progress: bool,
) -> Result<Digest, ImageError> {
    let line = Rc::new(RefCell::new(Line {
        on: progress,
        label: reference.to_string(),
        layers: Vec::new(),
        before: 0,
        current: 0,
        shown: false,
        last: None,
    }));
    let mut source = Progress {
        inner: source,
        line: line.clone(),
    };
    let result = store.ingest_with(
        &mut source,
        reference.manifest_reference(),
        Some(reference),
        &mut |m| {
            if m == "unpacking" {
                line.borrow_mut().unpacking();
            }
        },
    );
    line.borrow_mut().clear();
    result
}

/// A source that counts the bytes of the layers it hands out, for the progress line.
struct Progress<S> {
    inner: S,
    line: Rc<RefCell<Line>>,
}

impl<S: Source> Source for Progress<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn manifest(&mut self, reference: &str) -> Result<(String, Vec<u8>), ImageError> {
        let (mt, bytes) = self.inner.manifest(reference)?;
        // An image manifest (not an index) says what the layers are.
        if let Ok(m) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) {
            let mut line = self.line.borrow_mut();
            line.layers = m
                .layers()
                .iter()
                .map(|l| (l.digest().to_string(), l.size()))
                .collect();
            line.draw(true);
        }
        Ok((mt, bytes))
    }

    fn blob(&mut self, digest: &Digest, size: u64) -> Result<Box<dyn Read + '_>, ImageError> {
        {
            // The store fetches layers in order, skipping those it has: every layer before
            // this one is done.
            let mut line = self.line.borrow_mut();
            if let Some(i) = line.layers.iter().position(|(d, _)| d == digest.as_str()) {
                line.before = line.layers[..i].iter().map(|(_, s)| s).sum();
                line.current = 0;
            } else {
                return self.inner.blob(digest, size);
            }
        }
        let line = self.line.clone();
        let inner = self.inner.blob(digest, size)?;
        Ok(Box::new(Counted { inner, line }))
    }
}

struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    line: Rc<RefCell<Line>>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut line = self.line.borrow_mut();
        line.current += n as u64;
        line.draw(false);
        Ok(n)
    }
}

struct Line {
    on: bool,
    label: String,
    /// The layers of the last image manifest seen, in order: (digest, size).
    layers: Vec<(String, u64)>,
    /// Bytes of the layers before the one being read (fetched now or already stored).
    before: u64,
    current: u64,
    shown: bool,
    last: Option<Instant>,
}

impl Line {
    fn total(&self) -> u64 {
        self.layers.iter().map(|(_, s)| s).sum()
    }

    fn draw(&mut self, force: bool) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{}: {:.1}/{:.1} MiB",
            self.label,
            mib(self.before + self.current),
            mib(self.total())
        );
        self.shown = true;
    }

    fn unpacking(&mut self) {
        if self.on {
            self.before = self.total();
            self.current = 0;
            self.draw(true);
            let _ = write!(std::io::stderr(), ", unpacking");
        }
    }

    fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }
}
