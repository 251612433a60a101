//! Stopping a run from outside it: a front end (Ctrl-C in a notebook, a UI's stop button)
//! cancels, the supervisor kills the worker in progress and starts no other, and what was
//! measured so far is kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a supervisor waiting on a worker looks at its [`Cancel`].
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// A cancellation flag shared by clones: set once, never cleared.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Sets the flag: the worker in progress is killed within [`POLL`], no other starts.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
