//! The server ticker: the current time, pushed to every socket of `/` at a fixed interval, and
//! to every plain WebSocket client as a text frame.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::relay::payload::now_ms;
use crate::relay::plain_members::PlainMembers;

/// Starts the ticker; it runs until the returned task is aborted.
pub fn spawn<A: Adapter>(
    io: SocketIo<A>,
    plain: Arc<PlainMembers>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        // A stalled runtime should not make up for lost ticks with a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // Every node ticks its own sockets; going through the adapter would repeat each tick
            // once per node.
            let now = now_ms();
            if let Err(error) = io.local().emit("message", &now).await {
                tracing::warn!(%error, "tick not delivered to every socket");
            }
            plain.broadcast_text(now.to_string());
        }
    })
}
