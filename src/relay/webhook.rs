//! The webhook client: iorelay POSTs `connect`, `event` and `disconnect` to the app and applies
//! its answer, so an express app keeps its logic while iorelay holds the sockets.
//!
//! Every call is signed (`X-Iorelay-Signature: sha256=<HMAC of the body>`), bounded in time
//! (`--webhook-timeout-ms`) and in number (`--webhook-concurrency` in flight per node), and its
//! answer in size (`--max-http-buffer-size`). Connections to the app are kept alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::{WebhookCallLabel, WebhookFailure, WebhookMetrics};

/// Why a webhook call produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The app could not be reached, or closed the connection.
    #[error("the app is unreachable: {0}")]
    Unreachable(String),
    /// No answer (or no free slot to call) within `--webhook-timeout-ms`.
    #[error("the app did not answer within {0} ms")]
    Timeout(u64),
    /// The app answered with a status other than 2xx.
    #[error("the app answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The `message` of the answer's JSON body, if any.
        message: Option<String>,
    },
    /// The answer is not the JSON iorelay expects, or is too large.
    #[error("the app's answer is unreadable: {0}")]
    Unreadable(String),
}

impl WebhookError {
    /// The `cause` it is counted under in `iorelay_webhook_failures_total`.
    fn metric_label(&self) -> WebhookFailure {
        match self {
            WebhookError::Unreachable(_) => WebhookFailure::Unreachable,
            WebhookError::Timeout(_) => WebhookFailure::Timeout,
            WebhookError::Status { .. } => WebhookFailure::Status,
            WebhookError::Unreadable(_) => WebhookFailure::Unreadable,
        }
    }
}

/// What a webhook is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallType {
    /// A socket asks to join a namespace; the answer admits or refuses it.
    Connect,
    /// An event no built-in handler takes.
    Event,
    /// A socket has left; nothing waits on the answer.
    Disconnect,
}

/// The body of a webhook.
#[derive(Debug, Serialize)]
pub struct Call<'a> {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: CallType,
    /// The namespace it happened on.
    pub namespace: &'a str,
    /// The socket, as the app's handlers would see it.
    pub socket: SocketView,
    /// `event`: its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    /// `event`: the client's arguments, binary as `{ "_binary": base64 }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Json>>,
    /// `event`: whether the client waits for an acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<bool>,
    /// `disconnect`: Socket.IO's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A socket as webhooks and `GET /api/sockets` show it.
#[derive(Debug, Clone, Serialize)]
pub struct SocketView {
    /// The socket id.
    pub id: String,
    /// Its rooms, its own id room included, as in Socket.IO.
    pub rooms: Vec<String>,
    /// `socket.data`, as the app's answers have set it.
    pub data: Map<String, Json>,
    /// The JWT `sub`, when authentication says who.
    pub user: Option<String>,
    /// `polling`, `websocket` or `plain-websocket`.
    pub transport: &'static str,
    /// The handshake, as `socket.handshake` has it.
    pub handshake: Handshake,
}

/// What a client sent when it connected.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Handshake {
    /// The CONNECT packet's `auth` payload.
    pub auth: Json,
    /// The query string of the connection's first request.
    pub query: HashMap<String, String>,
    /// `user-agent`, `origin` and `cookie`, when sent.
    pub headers: HashMap<String, String>,
    /// The client's address.
    pub address: String,
    /// When the client connected, Unix milliseconds.
    pub time: u64,
}

/// The app's answer; every field is optional and they apply in this order whatever the order
/// of the keys: `data`, `join`, `leave`, `emit`, `ack`, `disconnect`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Answer {
    /// Shallow-merged into `socket.data`.
    pub data: Option<Map<String, Json>>,
    /// Rooms the socket joins.
    pub join: Vec<String>,
    /// Rooms the socket leaves.
    pub leave: Vec<String>,
    /// Events to send, in Socket.IO's words.
    pub emit: Vec<EmitItem>,
    /// The acknowledgement's arguments.
    pub ack: Option<Vec<Json>>,
    /// Whether to disconnect the socket.
    pub disconnect: bool,
}

/// One event an answer sends.
#[derive(Debug, Clone, Deserialize)]
pub struct EmitItem {
    /// The event name.
    pub event: String,
    /// Its arguments, binary as `{ "_binary": base64 }`.
    #[serde(default)]
    pub args: Vec<Json>,
    /// Rooms (or socket ids) to send to; the sender is left out unless `include_self`.
    #[serde(default)]
    pub to: Option<Vec<String>>,
    /// Send to the whole namespace; the sender is left out unless `include_self`.
    #[serde(default)]
    pub broadcast: bool,
    /// Include the sender in a `to` or `broadcast` emit.
    #[serde(default)]
    pub include_self: bool,
    /// Rooms whose members are left out.
    #[serde(default)]
    pub except: Vec<String>,
}

/// The app behind `--webhook-url`, and how calls to it have gone.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    node: String,
    timeout: Duration,
    max_answer: usize,
    slots: Semaphore,
    reachable: AtomicBool,
    /// Calls, failures (which `/healthz` sums) and latency.
    metrics: WebhookMetrics,
}

// The secret must never reach logs.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("reachable", &self.reachable())
            .finish_non_exhaustive()
    }
}

/// What `/healthz` shows of the webhook.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WebhookHealth {
    /// Whether the last call got an answer.
    pub reachable: bool,
    /// Calls that failed since startup.
    pub failures: u64,
}

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook client: {0}")]
pub struct WebhookSetupError(#[from] reqwest::Error);

impl CallType {
    /// The `type` label the call is counted under.
    fn metric_label(self) -> WebhookCallLabel {
        match self {
            CallType::Connect => WebhookCallLabel::Connect,
            CallType::Event => WebhookCallLabel::Event,
            CallType::Disconnect => WebhookCallLabel::Disconnect,
        }
    }
}

impl Webhook {
    /// The webhook `config` names, if any, calling as node `node`.
    pub fn from_config(
        config: &Config,
        node: &str,
        metrics: &WebhookMetrics,
    ) -> Result<Option<Self>, WebhookSetupError> {
        let (Some(url), Some(secret)) = (&config.webhook_url, &config.webhook_secret) else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(config.webhook_concurrency)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // Redirects would send signed bodies somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Webhook {
            client,
            url: url.clone(),
            secret: secret.expose().as_bytes().to_vec(),
            node: node.to_owned(),
            timeout: config.webhook_timeout(),
            max_answer: usize::try_from(config.max_http_buffer_size).unwrap_or(usize::MAX),
            slots: Semaphore::new(config.webhook_concurrency),
            reachable: AtomicBool::new(true),
            metrics: metrics.clone(),
        }))
    }

    /// Whether the last call got an answer.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The numbers `/healthz` shows.
    pub fn health(&self) -> WebhookHealth {
        WebhookHealth {
            reachable: self.reachable(),
            failures: self.metrics.failures_total(),
        }
    }

    /// POSTs `call` and reads the app's answer. The wait for a free slot counts against the
    /// same timeout as the call itself.
    pub async fn call(&self, call: &Call<'_>) -> Result<Answer, WebhookError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.send(call)).await;
        let result = result.unwrap_or_else(|_| {
            Err(WebhookError::Timeout(
                u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            ))
        });
        let failure = match &result {
            // A refused connection is the app's answer, not a failure of the app.
            Ok(_) | Err(WebhookError::Status { .. }) if call.kind == CallType::Connect => None,
            Ok(_) => None,
            Err(error) => Some(error.metric_label()),
        };
        self.metrics
            .call(call.kind.metric_label(), started.elapsed(), failure);
        match &result {
            Ok(_) | Err(WebhookError::Status { .. }) if call.kind == CallType::Connect => {
                // A refused connection is the app's answer, not a failure of the app.
                self.reachable.store(true, Ordering::Relaxed);
            }
            Ok(_) => self.reachable.store(true, Ordering::Relaxed),
            Err(error) => {
                let failures = self.metrics.failures_total();
                self.reachable.store(false, Ordering::Relaxed);
                tracing::warn!(
                    kind = ?call.kind,
                    namespace = call.namespace,
                    sid = %call.socket.id,
                    event = call.event,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    failures,
                    %error,
                    "webhook failed"
                );
            }
        }
        result
    }

    async fn send(&self, call: &Call<'_>) -> Result<Answer, WebhookError> {
        let body = serde_json::to_vec(call)
            .map_err(|error| WebhookError::Unreadable(error.to_string()))?;
        let signature = self.sign(&body);
        // The semaphore is never closed: a permit always comes, at worst at the timeout.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|error| WebhookError::Unreachable(error.to_string()))?;
        let mut response = self
            .client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-iorelay-signature", signature)
            .header("x-iorelay-node", &self.node)
            .body(body)
            .send()
            .await
            .map_err(|error| WebhookError::Unreachable(without_url(&error)))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| WebhookError::Unreachable(without_url(&error)))?
        {
            if bytes.len() + chunk.len() > self.max_answer {
                return Err(WebhookError::Unreadable(format!(
                    "larger than {} bytes",
                    self.max_answer
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<Json>(&bytes)
                .ok()
                .and_then(|body| {
                    body.get("message")
                        .and_then(Json::as_str)
                        .map(str::to_owned)
                });
            return Err(WebhookError::Status {
                status: status.as_u16(),
                message,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Answer::default());
        }
        serde_json::from_slice(&bytes).map_err(|error| WebhookError::Unreadable(error.to_string()))
    }

    fn sign(&self, body: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            // HMAC takes keys of any length.
            Err(_) => return String::new(),
        };
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut signature = String::with_capacity(7 + digest.len() * 2);
        signature.push_str("sha256=");
        for byte in digest {
            signature.push_str(&format!("{byte:02x}"));
        }
        signature
    }
}

/// A transport error without the URL, which may carry credentials in its user info.
fn without_url(error: &reqwest::Error) -> String {
    let mut error = error.to_string();
    if let Some(at) = error.find(" for url (") {
        error.truncate(at);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_read_every_field_in_any_order() {
        let answer: Answer = serde_json::from_value(json!({
            "disconnect": true,
            "emit": [{ "event": "login", "args": [1], "to": ["r"], "include_self": true }],
            "ack": ["ok"],
            "leave": ["b"],
            "join": ["a"],
            "data": { "name": "ann" }
        }))
        .expect("valid answer");
        assert!(answer.disconnect);
        assert_eq!(answer.join, ["a"]);
        assert_eq!(answer.leave, ["b"]);
        assert_eq!(answer.ack, Some(vec![json!("ok")]));
        assert_eq!(answer.emit[0].to.as_deref(), Some(&["r".to_owned()][..]));
        assert!(answer.emit[0].include_self);
        assert!(serde_json::from_value::<Answer>(json!({ "join": "a" })).is_err());
        assert!(serde_json::from_value::<Answer>(json!({ "emit": [{ "args": [] }] })).is_err());
    }

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        let config = Config::parse_from_args([
            "iorelay",
            "--webhook-url",
            "http://127.0.0.1:1/hook",
            "--webhook-secret",
            "key",
        ])
        .expect("parse")
        .validated()
        .expect("valid");
        let metrics = crate::metrics::Metrics::new(["/"]);
        let webhook = Webhook::from_config(&config, "node", metrics.webhook())
            .expect("client")
            .expect("configured");
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a published vector.
        assert_eq!(
            webhook.sign(b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
