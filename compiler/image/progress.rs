//! The one line a pull or an import redraws on a terminal's stderr while it runs: the
//! layers' bytes in and in all, the layers fetched and unpacked, for the whole image
//! (`127.0.0.1:5000/app:1: 12.5/40.2 MiB, 3/7 layers fetched, 2/7 unpacked`). Nothing is
//! drawn when it is off (stderr is not a terminal). The store's threads tell it what happens
//! ([`Event`]); it redraws at most ten times a second, and at once when a layer is done.
//!
//! The line is written to file descriptor 2 itself, one `write` a frame, not through
//! `std::io::stderr()`: the command line holds that one's lock on its main thread while a
//! command runs, and the threads that fetch and unpack would wait for it for ever.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::store::Event;

/// The progress line of one image.
pub struct Line {
    on: bool,
    label: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    blobs: usize,
    bytes: u64,
    layers: usize,
    received: u64,
    fetched: usize,
    unpacked: usize,
    shown: bool,
    last: Option<Instant>,
}

impl Line {
    /// The line of the image called `label`; drawn only when `on`.
    pub fn new(label: impl Into<String>, on: bool) -> Line {
        Line {
            on,
            label: label.into(),
            state: Mutex::new(State::default()),
        }
    }

    /// Takes in what the ingest did and redraws the line if it is time.
    pub fn event(&self, e: Event) {
        if !self.on {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let force = match e {
            Event::Start {
                blobs,
                bytes,
                layers,
            } => {
                *s = State {
                    blobs,
                    bytes,
                    layers,
                    ..State::default()
                };
                true
            }
            Event::Received(n) => {
                s.received += n;
                false
            }
            Event::Fetched => {
                s.fetched += 1;
                true
            }
            Event::Unpacked => {
                s.unpacked += 1;
                true
            }
        };
        let now = Instant::now();
        if !force && s.last.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        s.last = Some(now);
        s.shown = true;
        draw(&format!("\r\x1b[K{}", render(&self.label, &s)));
    }

    /// Erases the line, if it was drawn (before the command prints its result).
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.shown {
            draw("\r\x1b[K");
            s.shown = false;
        }
    }
}

/// Writes `text` to file descriptor 2 (the caller holds the line's lock: frames do not mix);
/// a failure only loses the frame.
fn draw(text: &str) {
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        match rustix::io::write(rustix::stdio::stderr(), bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// `LABEL: 1.5/3.0 MiB, 1/2 layers fetched, 0/2 unpacked` (without the unpacked part when the
/// store has the root already).
fn render(label: &str, s: &State) -> String {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let mut line = format!(
        "{label}: {:.1}/{:.1} MiB, {}/{} layers fetched",
        mib(s.received),
        mib(s.bytes),
        s.fetched,
        s.blobs
    );
    if s.layers > 0 {
        line.push_str(&format!(", {}/{} unpacked", s.unpacked, s.layers));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_bytes_and_layers_of_the_whole_image() {
        let mut s = State {
            blobs: 7,
            bytes: 7 << 20,
            layers: 7,
            ..State::default()
        };
        assert_eq!(
            render("r/a:1", &s),
            "r/a:1: 0.0/7.0 MiB, 0/7 layers fetched, 0/7 unpacked"
        );
        s.received = 3 << 19;
        s.fetched = 1;
        assert_eq!(
            render("r/a:1", &s),
            "r/a:1: 1.5/7.0 MiB, 1/7 layers fetched, 0/7 unpacked"
        );
        s.layers = 0;
        assert_eq!(
            render("r/a:1", &s),
            "r/a:1: 1.5/7.0 MiB, 1/7 layers fetched"
        );
    }
}
