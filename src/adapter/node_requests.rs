//! Requests this node asks every other server in Node's format, and their answers: Node's
//! `SOCKETS`, `REMOTE_FETCH` and `ALL_ROOMS`, which Node servers and iorelay nodes on
//! `--redis-protocol node` answer alike, so that room sizes and lists hold the sockets of both.
//!
//! A request waits for as many answers as Redis counts other subscribers of the namespace's
//! request channel, or for the request timeout, whichever comes first; the answers come back
//! on this node's response channel, in JSON, through [`NodeMessages`](super::node_messages).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value as Json, json};
use socketioxide_core::Sid;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::node_protocol::{ALL_ROOMS, REMOTE_FETCH, SOCKETS};
use crate::relay::remote_members::RemoteMembers;

/// Requests waiting for their answers, by request id.
#[derive(Debug, Default)]
pub struct PendingAnswers {
    waiting: Mutex<HashMap<String, mpsc::Sender<Json>>>,
}

impl PendingAnswers {
    /// Hands `answer` to the request `request_id`; `false` when nothing waits for it (it timed
    /// out, or it is not this node's).
    pub fn deliver(&self, request_id: &str, answer: Json) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting
            .get(request_id)
            .is_some_and(|sender| sender.try_send(answer).is_ok())
    }

    fn register(self: &Arc<Self>, request_id: String, sender: mpsc::Sender<Json>) -> Waiting {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.clone(), sender);
        Waiting {
            pending: self.clone(),
            request_id,
        }
    }
}

/// A request's place among the pending ones, given back when it is done or abandoned.
struct Waiting {
    pending: Arc<PendingAnswers>,
    request_id: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.request_id);
    }
}

/// Asks the other servers on `link` in Node's format.
pub struct NodeRequests<D> {
    link: D,
    prefix: String,
    /// This node's adapter id: where the answers go, and how its own request is told apart.
    uid: String,
    pending: Arc<PendingAnswers>,
    timeout: Duration,
}

impl<D> std::fmt::Debug for NodeRequests<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRequests")
            .field("prefix", &self.prefix)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> NodeRequests<D> {
    /// Requests over `link`, under `prefix`, from the node whose adapter id is `uid`, waiting
    /// `timeout` at most; answers arrive through `pending`.
    pub fn new(
        link: D,
        prefix: &str,
        uid: String,
        pending: Arc<PendingAnswers>,
        timeout: Duration,
    ) -> Self {
        NodeRequests {
            link,
            prefix: prefix.to_owned(),
            uid,
            pending,
            timeout,
        }
    }
}

impl<D: Driver> NodeRequests<D> {
    /// Asks every other server on `namespace`'s request channel `request` (given its `uid`,
    /// `requestId` and `type` here) and gathers the answers' `key` arrays.
    fn ask(
        &self,
        namespace: &str,
        kind: u64,
        mut request: Map<String, Json>,
        key: &'static str,
    ) -> BoxFuture<'static, Vec<Json>> {
        let link = self.link.clone();
        let pending = self.pending.clone();
        let channel = format!("{}-request#{namespace}#", self.prefix);
        let request_id = Sid::new().to_string();
        request.insert("uid".into(), self.uid.clone().into());
        request.insert("requestId".into(), request_id.clone().into());
        request.insert("type".into(), kind.into());
        let request = Json::Object(request).to_string().into_bytes();
        let timeout = self.timeout;
        Box::pin(async move {
            let others = match link.num_serv(&channel).await {
                Ok(servers) => usize::from(servers.saturating_sub(1)),
                Err(error) => {
                    tracing::warn!(channel, %error, "could not count the servers to ask");
                    return Vec::new();
                }
            };
            if others == 0 {
                return Vec::new();
            }
            let (sender, mut answers) = mpsc::channel(others);
            let _waiting = pending.register(request_id, sender);
            if let Err(error) = link.publish(channel.clone(), request).await {
                tracing::warn!(channel, %error, "could not ask the other servers");
                return Vec::new();
            }
            let mut items = Vec::new();
            let mut answered = 0;
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            while answered < others {
                tokio::select! {
                    answer = answers.recv() => {
                        let Some(mut answer) = answer else { break };
                        answered += 1;
                        if let Some(Json::Array(found)) = answer.get_mut(key).map(Json::take) {
                            items.extend(found);
                        }
                    }
                    () = &mut deadline => {
                        tracing::debug!(channel, kind, answered, others, "not every server answered in time");
                        break;
                    }
                }
            }
            items
        })
    }
}

impl<D: Driver> RemoteMembers for NodeRequests<D> {
    fn socket_ids(&self, namespace: &str, rooms: &[String]) -> BoxFuture<'static, Vec<String>> {
        let mut request = Map::new();
        request.insert("rooms".into(), json!(rooms));
        let asked = self.ask(namespace, SOCKETS, request, "sockets");
        Box::pin(async move { strings(asked.await) })
    }

    fn fetch(&self, namespace: &str, rooms: &[String]) -> BoxFuture<'static, Vec<Json>> {
        let mut request = Map::new();
        request.insert("opts".into(), json!({ "rooms": rooms, "except": [] }));
        self.ask(namespace, REMOTE_FETCH, request, "sockets")
    }

    fn all_rooms(&self, namespace: &str) -> BoxFuture<'static, Vec<String>> {
        let asked = self.ask(namespace, ALL_ROOMS, Map::new(), "rooms");
        Box::pin(async move { strings(asked.await) })
    }
}

/// The strings among `items` (socket ids, room names).
fn strings(items: Vec<Json>) -> Vec<String> {
    items
        .into_iter()
        .filter_map(|item| match item {
            Json::String(text) => Some(text),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_its_request_until_the_request_is_done() {
        let pending = Arc::new(PendingAnswers::default());
        let (sender, mut received) = mpsc::channel(2);
        let waiting = pending.register("r1".into(), sender);
        let answer = json!({ "requestId": "r1", "sockets": ["a", "b", 3] });
        assert!(pending.deliver("r1", answer.clone()));
        assert!(!pending.deliver("r2", answer.clone()));
        let got = received.try_recv().expect("delivered");
        assert_eq!(
            strings(got["sockets"].as_array().cloned().unwrap_or_default()),
            ["a", "b"]
        );
        drop(waiting);
        assert!(!pending.deliver("r1", answer));
    }
}
