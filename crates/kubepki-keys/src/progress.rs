//! A hook for showing progress while a long command runs, without the libraries printing.
//!
//! A program that wants to show progress (the CLI draws it on a terminal) runs the library
//! call inside [`observe`], with its [`Progress`] observer. While the call runs, the kubepki
//! libraries report what they do as [`Event`]s: how many keys a batch generates and each key
//! generated ([`crate::generate_many`], from its worker threads), each certificate a CA signs
//! (`kubepki_ca`'s one signing function), each batch of files about to be written
//! (`kubepki_files::FileBatch`). The libraries count; the observer only shows.
//!
//! The observer is scoped to the calling thread and to the threads the libraries start for
//! that call, as `tracing`'s `with_default` scopes a subscriber: no library function grows a
//! parameter for it, and every command that reaches those three places reports through the
//! same hook. Without an observer an event costs one thread-local read. See
//! docs/architecture.md, "Progress".
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use kubepki_keys::progress::{Event, Progress, observe};
//! use kubepki_keys::{KeyAlgorithm, generate_many};
//!
//! #[derive(Default)]
//! struct Log(Mutex<Vec<String>>);
//! impl Progress for Log {
//!     fn event(&self, event: Event) {
//!         if let Ok(mut log) = self.0.lock() {
//!             log.push(format!("{event:?}"));
//!         }
//!     }
//! }
//!
//! let log = Arc::new(Log::default());
//! let keys = observe(log.clone(), || generate_many(&[KeyAlgorithm::EcdsaP256; 2]))?;
//! assert_eq!(keys.len(), 2);
//! let seen = log.0.lock().map(|l| l.clone()).unwrap_or_default();
//! assert_eq!(seen[0], "KeysStarted { total: 2 }");
//! assert_eq!(seen.len(), 3);
//! # Ok::<(), kubepki_keys::Error>(())
//! ```

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a library reports while it works. New kinds of events may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A batch of `total` new keys starts.
    KeysStarted {
        /// How many keys the batch generates.
        total: usize,
    },
    /// One more key of the batch is generated: `done` of `total` (in the order they finish,
    /// from any of the batch's threads; `done` counts up to `total` exactly once each).
    KeyGenerated {
        /// Keys generated so far in this batch, this one included.
        done: usize,
        /// How many keys the batch generates.
        total: usize,
    },
    /// A CA signed one more certificate: `done` certificates signed since [`observe`] began.
    Signed {
        /// Certificates signed so far in this observed call, this one included.
        done: usize,
    },
    /// A batch of `files` files is about to be made durable and moved into place.
    Writing {
        /// How many files the batch writes.
        files: usize,
    },
}

/// Receives the [`Event`]s of an observed call. It is called from several threads at once
/// (keys are generated in parallel), so it must be `Send + Sync`; it should return quickly.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// The observer of one [`observe`] call and what the libraries counted for it.
struct Scope {
    observer: Arc<dyn Progress>,
    signed: AtomicUsize,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Runs `f` with `observer` receiving the events of the kubepki libraries on this thread (and
/// on the threads they start for it). The previous observer, if any, is back when `f` returns
/// or unwinds.
pub fn observe<R>(observer: Arc<dyn Progress>, f: impl FnOnce() -> R) -> R {
    let scope = Arc::new(Scope {
        observer,
        signed: AtomicUsize::new(0),
    });
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(scope))));
    f()
}

struct Restore(Option<Arc<Scope>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The observer of the current thread, to hand to threads a library starts ([`Observer::emit`]).
#[derive(Clone)]
pub(crate) struct Observer(Option<Arc<Scope>>);

impl Observer {
    /// The current thread's observer (none outside [`observe`]).
    pub(crate) fn current() -> Self {
        Observer(CURRENT.with(|c| c.borrow().clone()))
    }

    /// Reports `event`, if there is an observer.
    pub(crate) fn emit(&self, event: Event) {
        if let Some(s) = &self.0 {
            s.observer.event(event);
        }
    }
}

/// Reports that a CA signed one more certificate (for `kubepki_ca`'s signing function).
pub fn certificate_signed() {
    let Some(scope) = CURRENT.with(|c| c.borrow().clone()) else {
        return;
    };
    let done = scope.signed.fetch_add(1, Ordering::Relaxed) + 1;
    scope.observer.event(Event::Signed { done });
}

/// Reports that a batch of `files` files is about to be written (for `kubepki_files`'s
/// `FileBatch`): [`Event::Writing`] to the current thread's observer, if any.
pub fn writing(files: usize) {
    Observer::current().emit(Event::Writing { files });
}
