//! The webhook's families: calls, failures and latency by call type.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A webhook call's type, as the `type` label says it (the call's `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookCallLabel {
    /// `connect`.
    Connect,
    /// `event`.
    Event,
    /// `disconnect`.
    Disconnect,
}

impl WebhookCallLabel {
    const ALL: [WebhookCallLabel; 3] = [
        WebhookCallLabel::Connect,
        WebhookCallLabel::Event,
        WebhookCallLabel::Disconnect,
    ];

    const fn name(self) -> &'static str {
        match self {
            WebhookCallLabel::Connect => "connect",
            WebhookCallLabel::Event => "event",
            WebhookCallLabel::Disconnect => "disconnect",
        }
    }
}

/// Why a call failed, as the `cause` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookFailure {
    /// The app could not be reached.
    Unreachable,
    /// No answer in time.
    Timeout,
    /// An answer with a status other than 2xx (not counted for a refused `connect`).
    Status,
    /// An answer iorelay could not read.
    Unreadable,
}

impl WebhookFailure {
    const ALL: [WebhookFailure; 4] = [
        WebhookFailure::Unreachable,
        WebhookFailure::Timeout,
        WebhookFailure::Status,
        WebhookFailure::Unreadable,
    ];

    const fn name(self) -> &'static str {
        match self {
            WebhookFailure::Unreachable => "unreachable",
            WebhookFailure::Timeout => "timeout",
            WebhookFailure::Status => "status",
            WebhookFailure::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeCause {
    r#type: &'static str,
    cause: &'static str,
}

/// The webhook's handles, resolved at startup.
#[derive(Debug, Clone)]
pub struct WebhookMetrics {
    requests: [Counter; WebhookCallLabel::ALL.len()],
    failures: [[Counter; WebhookFailure::ALL.len()]; WebhookCallLabel::ALL.len()],
    duration: [Histogram; WebhookCallLabel::ALL.len()],
}

impl WebhookMetrics {
    pub(super) fn register(registry: &mut Registry, buckets: [f64; 13]) -> Self {
        let requests = Family::<super::labels::CallType, Counter>::default();
        let failures = Family::<TypeCause, Counter>::default();
        let duration =
            Family::<super::labels::CallType, Histogram, _>::new_with_constructor(move || {
                Histogram::new(buckets)
            });
        let call = |kind: WebhookCallLabel| super::labels::CallType {
            r#type: kind.name(),
        };
        let metrics = WebhookMetrics {
            requests: WebhookCallLabel::ALL.map(|kind| requests.get_or_create(&call(kind)).clone()),
            failures: WebhookCallLabel::ALL.map(|kind| {
                WebhookFailure::ALL.map(|cause| {
                    failures
                        .get_or_create(&TypeCause {
                            r#type: kind.name(),
                            cause: cause.name(),
                        })
                        .clone()
                })
            }),
            duration: WebhookCallLabel::ALL.map(|kind| duration.get_or_create(&call(kind)).clone()),
        };
        registry.register(
            "iorelay_webhook_requests",
            "Calls to the app's webhook, by type",
            requests,
        );
        registry.register(
            "iorelay_webhook_failures",
            "Webhook calls without a usable answer, by type and cause",
            failures,
        );
        registry.register(
            "iorelay_webhook_duration_seconds",
            "Time from a webhook call to its answer (or failure), by type",
            duration,
        );
        metrics
    }

    /// Records a call of type `kind` that took `elapsed` and failed for `failure`, if it did.
    pub fn call(&self, kind: WebhookCallLabel, elapsed: Duration, failure: Option<WebhookFailure>) {
        let kind = kind as usize;
        self.requests[kind].inc();
        self.duration[kind].observe(elapsed.as_secs_f64());
        if let Some(failure) = failure {
            self.failures[kind][failure as usize].inc();
        }
    }

    /// Failed calls since startup, of every type and cause.
    pub fn failures_total(&self) -> u64 {
        self.failures.iter().flatten().map(Counter::get).sum()
    }
}
