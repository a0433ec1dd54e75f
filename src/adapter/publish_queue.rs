//! Cross-node publishing off the broadcast path.
//!
//! socketioxide's adapter awaits its driver's `publish` inside every broadcast, and a socket's
//! events are handled one after another, so a publisher that waited for Redis's answer would
//! send one message per round trip to Redis. The drivers hand each message to a
//! [`PublishQueue`] instead, and one task per link publishes the queue in order, many messages
//! per round trip. A message that cannot be published (a full queue, Redis unreachable or
//! failing) is counted and logged, as before.

use std::future::Future;

use tokio::sync::mpsc;

use super::link_status::RedisStatus;

/// A message for the other nodes: its channel and payload.
pub type Outgoing = (String, Vec<u8>);

/// Most messages waiting to be published; past it, new ones are dropped and counted.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Most messages published in one batch.
const BATCH: usize = 256;

/// Where the queue's task publishes.
pub trait BatchSink: Send + 'static {
    /// Publishes `batch` in order, counting and logging in `health` what it could not.
    fn publish(
        &mut self,
        batch: &[Outgoing],
        health: &RedisStatus,
    ) -> impl Future<Output = ()> + Send;
}

/// The sending end of a link's publishing task.
#[derive(Clone)]
pub struct PublishQueue {
    queue: mpsc::Sender<Outgoing>,
    health: RedisStatus,
}

impl PublishQueue {
    /// Starts the task that publishes through `sink`.
    pub fn start(sink: impl BatchSink, health: RedisStatus) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(publish_in_order(sink, waiting, health.clone()));
        PublishQueue { queue, health }
    }

    /// Queues `payload` for `channel` without waiting; drops and counts it when the queue is
    /// full.
    pub fn push(&self, channel: String, payload: Vec<u8>) {
        if let Err(error) = self.queue.try_send((channel, payload)) {
            let (channel, _) = error.into_inner();
            self.health
                .drop_message(&channel, &"the queue of messages to publish is full");
        }
    }
}

async fn publish_in_order(
    mut sink: impl BatchSink,
    mut waiting: mpsc::Receiver<Outgoing>,
    health: RedisStatus,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        sink.publish(&batch, &health).await;
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Semaphore;

    use super::*;

    /// Records what it publishes; publishes nothing until `open` has permits.
    struct Recorder {
        published: Arc<Mutex<Vec<String>>>,
        open: Arc<Semaphore>,
    }

    impl BatchSink for Recorder {
        async fn publish(&mut self, batch: &[Outgoing], _health: &RedisStatus) {
            if let Ok(permit) = self.open.acquire().await {
                permit.forget();
            }
            let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
            published.extend(batch.iter().map(|(channel, _)| channel.clone()));
        }
    }

    #[tokio::test]
    async fn messages_go_out_in_order_and_overflow_is_counted() {
        let published = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Semaphore::new(0));
        let health = RedisStatus::default();
        let queue = PublishQueue::start(
            Recorder {
                published: published.clone(),
                open: open.clone(),
            },
            health.clone(),
        );
        // The task takes the first batch and waits in the sink; the queue then fills up.
        queue.push("0".into(), Vec::new());
        tokio::task::yield_now().await;
        let pushed = QUEUE_CAPACITY + 10;
        for index in 1..=pushed {
            queue.push(index.to_string(), Vec::new());
        }
        assert_eq!(health.dropped_messages(), 10);
        open.add_permits(usize::MAX >> 4);
        let expected: Vec<String> = (0..=QUEUE_CAPACITY).map(|i| i.to_string()).collect();
        for _ in 0..1_000 {
            if published.lock().map(|p| p.len()).unwrap_or(0) >= expected.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let published = published.lock().map(|p| p.clone()).unwrap_or_default();
        assert_eq!(published, expected);
    }
}
