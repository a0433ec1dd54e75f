//! The label values of iorelay's metrics: each a closed set, so no label can grow with the
//! number of clients, rooms or users.

use prometheus_client::encoding::EncodeLabelSet;

/// How a client is connected, as the `transport` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportLabel {
    /// Engine.IO long-polling.
    Polling,
    /// Engine.IO over WebSocket.
    Websocket,
    /// The plain WebSocket endpoint.
    Plain,
}

impl TransportLabel {
    /// Every transport, in the order of the per-transport handles.
    pub const ALL: [TransportLabel; 3] = [
        TransportLabel::Polling,
        TransportLabel::Websocket,
        TransportLabel::Plain,
    ];

    /// The label value.
    pub const fn name(self) -> &'static str {
        match self {
            TransportLabel::Polling => "polling",
            TransportLabel::Websocket => "websocket",
            TransportLabel::Plain => "plain",
        }
    }
}

/// Which handler took an event, as the `event` label says it: a built-in event's name, or one
/// value for all the events that go to the app and one for those nobody handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventLabel {
    /// `message`.
    Message,
    /// `echo`.
    Echo,
    /// `join`.
    Join,
    /// `leave`.
    Leave,
    /// `chat`.
    Chat,
    /// Any event forwarded to the app's webhook.
    Webhook,
    /// Any event without a handler.
    Unhandled,
}

impl EventLabel {
    /// Every event label, in the order of the per-event handles.
    pub const ALL: [EventLabel; 7] = [
        EventLabel::Message,
        EventLabel::Echo,
        EventLabel::Join,
        EventLabel::Leave,
        EventLabel::Chat,
        EventLabel::Webhook,
        EventLabel::Unhandled,
    ];

    /// The label value.
    pub const fn name(self) -> &'static str {
        match self {
            EventLabel::Message => "message",
            EventLabel::Echo => "echo",
            EventLabel::Join => "join",
            EventLabel::Leave => "leave",
            EventLabel::Chat => "chat",
            EventLabel::Webhook => "webhook",
            EventLabel::Unhandled => "unhandled",
        }
    }
}

/// Why a handshake was refused, as the `cause` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCause {
    /// The page's origin is not allowed.
    Origin,
    /// The credentials are missing or wrong.
    Auth,
    /// The node is full (`--max-connections`, descriptors, per-address limit).
    Capacity,
    /// The request is not a valid handshake.
    BadRequest,
    /// The app's connect webhook refused it, or could not be asked.
    App,
}

impl RefusalCause {
    /// Every cause, in the order of the per-cause handles.
    pub const ALL: [RefusalCause; 5] = [
        RefusalCause::Origin,
        RefusalCause::Auth,
        RefusalCause::Capacity,
        RefusalCause::BadRequest,
        RefusalCause::App,
    ];

    /// The label value.
    pub const fn name(self) -> &'static str {
        match self {
            RefusalCause::Origin => "origin",
            RefusalCause::Auth => "auth",
            RefusalCause::Capacity => "capacity",
            RefusalCause::BadRequest => "bad_request",
            RefusalCause::App => "app",
        }
    }
}

/// The label value of a disconnect reason, from its name as Node socket.io says it (the
/// names the app's disconnect webhook gets): the same words in snake case.
pub fn disconnect_reason(node_name: &str) -> &'static str {
    match node_name {
        "transport close" => "transport_close",
        "transport error" => "transport_error",
        "parse error" => "parse_error",
        "ping timeout" => "ping_timeout",
        "client namespace disconnect" => "client_namespace_disconnect",
        "server namespace disconnect" => "server_namespace_disconnect",
        "server shutting down" => "server_shutting_down",
        _ => "other",
    }
}

/// `{namespace, transport}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct NamespaceTransport {
    pub namespace: String,
    pub transport: &'static str,
}

/// `{namespace, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct NamespaceReason {
    pub namespace: String,
    pub reason: &'static str,
}

/// `{namespace, event}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct NamespaceEvent {
    pub namespace: String,
    pub event: &'static str,
}

/// `{namespace}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct NamespaceOnly {
    pub namespace: String,
}

/// `{cause}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Cause {
    pub cause: &'static str,
}

/// `{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Reason {
    pub reason: &'static str,
}

/// `{transport}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Transport {
    pub transport: &'static str,
}

/// `{type}` (the webhook call's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct CallType {
    pub r#type: &'static str,
}

/// `{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Version {
    pub version: &'static str,
}
