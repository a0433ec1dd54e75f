//! Per-client event order.
//!
//! socketioxide runs each event handler as its own task, so two events from one socket could be
//! handled, and their broadcasts sent, in either order. Node handles a socket's events one after
//! the other, and clients rely on it (a `join` before a `chat`, chat lines in the order typed).
//! Each event takes a ticket in arrival order and its handler waits for its turn here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Serves one socket's events in the order they arrived.
#[derive(Debug, Default)]
pub struct Turnstile {
    state: Mutex<TurnState>,
}

#[derive(Debug, Default)]
struct TurnState {
    issued: u64,
    serving: u64,
    /// Tickets finished ahead of their turn (a handler that returned without waiting).
    finished_early: BTreeSet<u64>,
    /// Handlers waiting for their turn, woken one by one rather than all at every turn.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Turnstile {
    /// Takes the next ticket.
    pub fn issue(&self) -> u64 {
        let mut state = self.lock();
        let ticket = state.issued;
        state.issued += 1;
        ticket
    }

    /// Waits until every ticket before `ticket` is finished.
    pub async fn wait_for(&self, ticket: u64) {
        let turn = {
            let mut state = self.lock();
            if state.serving >= ticket {
                return;
            }
            let (tx, rx) = oneshot::channel();
            state.waiting.insert(ticket, tx);
            rx
        };
        // A dropped sender means the turnstile is gone with its socket: nothing to wait for.
        let _ = turn.await;
    }

    /// Marks `ticket` as handled, whether or not it waited for its turn.
    pub fn finish(&self, ticket: u64) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if ticket == state.serving {
            state.serving += 1;
            while state.finished_early.remove(&state.serving) {
                state.serving += 1;
            }
        } else {
            state.finished_early.insert(ticket);
        }
        let still_waiting = state.waiting.split_off(&(state.serving + 1));
        for (_, turn) in std::mem::replace(&mut state.waiting, still_waiting) {
            let _ = turn.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
