//! Per-socket event order.
//!
//! socketioxide runs each event handler as its own task, so two events from one socket can be
//! handled, and their broadcasts sent, in either order. Node handles a socket's events one after
//! the other, and clients rely on it (a `join` before a `chat`, chat lines in the order typed).
//! Extractors run synchronously in arrival order before the task is spawned, so [`InOrder`]
//! takes a ticket there and the handler waits for its turn.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use socketioxide::adapter::Adapter;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
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
    fn issue(&self) -> u64 {
        let mut state = self.lock();
        let ticket = state.issued;
        state.issued += 1;
        ticket
    }

    async fn wait_for(&self, ticket: u64) {
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

    fn finish(&self, ticket: u64) {
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

/// An extractor that holds an event's place in its socket's order; put it last in a handler's
/// arguments so that no later extractor can fail after the ticket is taken.
#[derive(Debug)]
pub struct InOrder {
    turnstile: Option<Arc<Turnstile>>,
    ticket: u64,
}

impl InOrder {
    /// Waits until every earlier event of this socket has been handled.
    pub async fn wait(&self) {
        if let Some(turnstile) = &self.turnstile {
            turnstile.wait_for(self.ticket).await;
        }
    }
}

impl Drop for InOrder {
    fn drop(&mut self) {
        if let Some(turnstile) = &self.turnstile {
            turnstile.finish(self.ticket);
        }
    }
}

impl<A: Adapter> FromMessageParts<A> for InOrder {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let turnstile = socket.extensions.get::<Arc<Turnstile>>();
        let ticket = turnstile.as_ref().map_or(0, |t| t.issue());
        Ok(InOrder { turnstile, ticket })
    }
}

/// Gives a socket its turnstile; call before any handler can run.
pub fn install<A: Adapter>(socket: &Socket<A>) {
    socket.extensions.insert(Arc::new(Turnstile::default()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_follow_ticket_order_whatever_the_task_order() {
        let turnstile = Arc::new(Turnstile::default());
        let tickets: Vec<u64> = (0..5).map(|_| turnstile.issue()).collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Start the tasks in reverse: the turnstile must still serve 0, 1, 2, 3, 4.
        for ticket in tickets.into_iter().rev() {
            let turn = InOrder {
                turnstile: Some(turnstile.clone()),
                ticket,
            };
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                turn.wait().await;
                order.lock().expect("lock").push(ticket);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*order.lock().expect("lock"), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_turn_dropped_early_does_not_block_the_rest() {
        let turnstile = Arc::new(Turnstile::default());
        let first = InOrder {
            turnstile: Some(turnstile.clone()),
            ticket: turnstile.issue(),
        };
        let second = InOrder {
            turnstile: Some(turnstile.clone()),
            ticket: turnstile.issue(),
        };
        let third = InOrder {
            turnstile: Some(turnstile.clone()),
            ticket: turnstile.issue(),
        };
        drop(second);
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), third.wait())
            .await
            .expect("third's turn");
    }
}
