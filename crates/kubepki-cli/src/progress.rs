//! The progress display of the commands that generate several keys (docs/certs.md,
//! "Progress"): one line on standard error, redrawn while keys are generated, certificates
//! signed and files written, and wiped before the command prints its report, so the report is
//! exactly what it is without a terminal. The libraries count and name the steps
//! ([`kubepki_keys::progress`]); this module only draws them.
//!
//! Nothing is drawn unless standard error is a terminal that can redraw a line (`TERM` set and
//! not `dumb`), the command's output is text (`-o json` and the like stay free of it), and
//! `--quiet` was not given. Standard output is never touched.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kubepki_keys::progress::{Event, Progress, observe};

/// `--quiet`: set once from the command line, before any command runs.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Runs `work` (a library call that generates keys, signs or writes a tree) with the progress
/// display when it is wanted: `text_output` is whether the command's report is text.
pub fn during<R>(text_output: bool, work: impl FnOnce() -> R) -> R {
    if !text_output || !drawable() {
        return work();
    }
    let display = Arc::new(Display::new());
    let result = observe(display.clone(), work);
    display.bar.finish_and_clear();
    result
}

/// Whether standard error is a terminal that can redraw a line and `--quiet` was not given.
fn drawable() -> bool {
    !QUIET.load(Ordering::Relaxed)
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_some_and(|t| !t.is_empty() && t != "dumb")
}

/// One spinner line on standard error.
struct Display {
    bar: ProgressBar,
}

impl Display {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // ASCII, so that it draws the same under any locale.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style.tick_chars("|/-\\ "));
        }
        bar.set_message("preparing");
        // A spinner that moves while one slow key (RSA-4096: seconds) is being generated.
        bar.enable_steady_tick(Duration::from_millis(100));
        Display { bar }
    }
}

impl Progress for Display {
    fn event(&self, event: Event) {
        let msg = match event {
            Event::KeysStarted { total } => format!("generating keys: 0 of {total}"),
            Event::KeyGenerated { done, total } => format!("generating keys: {done} of {total}"),
            Event::Signed { done: 1 } => "signing: 1 certificate".to_owned(),
            Event::Signed { done } => format!("signing: {done} certificates"),
            Event::Writing { files: 1 } => "writing 1 file".to_owned(),
            Event::Writing { files } => format!("writing {files} files"),
            _ => return,
        };
        self.bar.set_message(msg);
    }
}
