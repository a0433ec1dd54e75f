//! Per-socket event order: each event takes its socket's next ticket ([`Turnstile`]).
//!
//! Extractors run synchronously in arrival order before socketioxide spawns the handler's task,
//! so the ticket is taken there (see `request::EventRequest`) and the handler waits for its turn.

use std::sync::Arc;

use crate::relay::client::ClientState;
use crate::relay::turnstile::Turnstile;

/// An event's place in its socket's order, given back when dropped.
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

impl InOrder {
    /// Takes the next ticket of `client`'s turnstile; a socket without state is not ordered.
    pub fn take_ticket(client: Option<&ClientState>) -> Self {
        let turnstile = client.map(|client| client.turn.clone());
        let ticket = turnstile.as_ref().map_or(0, |t| t.issue());
        InOrder { turnstile, ticket }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
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
