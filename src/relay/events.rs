//! The one table of built-in namespaces and events.
//!
//! Handler registration (`socketio`), the packet inspection path that the fuzz target drives,
//! the plain WebSocket frame parser and README's contract table all read it, so an event is
//! added or removed here once. Which handler takes an event is one lookup: [`Namespace::route`].

use crate::metrics::EventLabel;

/// An event iorelay answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinEvent {
    /// `message`: the arguments come back to the sender as `message`.
    Message,
    /// `echo`: the arguments come back in the acknowledgement.
    Echo,
    /// `join`: the client joins a room.
    Join,
    /// `leave`: the client leaves a room.
    Leave,
    /// `chat`: a message to a room, or to the whole namespace.
    Chat,
}

impl BuiltinEvent {
    /// Every built-in event.
    pub const ALL: [BuiltinEvent; 5] = [
        BuiltinEvent::Message,
        BuiltinEvent::Echo,
        BuiltinEvent::Join,
        BuiltinEvent::Leave,
        BuiltinEvent::Chat,
    ];

    /// The event's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            BuiltinEvent::Message => "message",
            BuiltinEvent::Echo => "echo",
            BuiltinEvent::Join => "join",
            BuiltinEvent::Leave => "leave",
            BuiltinEvent::Chat => "chat",
        }
    }

    /// The built-in event of that name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.name() == name)
    }
}

/// A namespace of the default profile and what iorelay does on it.
#[derive(Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Its path, as clients connect to it.
    pub path: &'static str,
    /// The events its handlers answer.
    pub events: &'static [BuiltinEvent],
    /// Whether a socket is greeted with the welcome `message` and receives the ticker.
    pub welcome: bool,
    /// Whether room members are told `presence` on every join, leave and disconnect.
    pub presence: bool,
    /// Whether its rooms are shared with plain WebSocket clients.
    pub shares_plain_rooms: bool,
}

/// Who takes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One of iorelay's own handlers.
    Builtin(BuiltinEvent),
    /// The app, through the event webhook.
    Webhook,
    /// No handler: the event is counted against the rate limit and otherwise ignored.
    Unhandled,
}

impl Route {
    /// The `event` label the route is counted under in `iorelay_events_received_total`.
    pub const fn metric_label(self) -> EventLabel {
        match self {
            Route::Builtin(BuiltinEvent::Message) => EventLabel::Message,
            Route::Builtin(BuiltinEvent::Echo) => EventLabel::Echo,
            Route::Builtin(BuiltinEvent::Join) => EventLabel::Join,
            Route::Builtin(BuiltinEvent::Leave) => EventLabel::Leave,
            Route::Builtin(BuiltinEvent::Chat) => EventLabel::Chat,
            Route::Webhook => EventLabel::Webhook,
            Route::Unhandled => EventLabel::Unhandled,
        }
    }
}

impl Namespace {
    /// Which handler takes `event` on this namespace.
    pub fn route(&self, event: &str) -> Route {
        match BuiltinEvent::from_name(event) {
            Some(builtin) if self.events.contains(&builtin) => Route::Builtin(builtin),
            _ => Route::Unhandled,
        }
    }
}

/// The namespaces of the default profile; any other is refused with `Invalid namespace`.
pub const NAMESPACES: &[Namespace] = &[
    Namespace {
        path: "/",
        events: &[
            BuiltinEvent::Message,
            BuiltinEvent::Echo,
            BuiltinEvent::Join,
            BuiltinEvent::Leave,
            BuiltinEvent::Chat,
        ],
        welcome: true,
        presence: false,
        shares_plain_rooms: true,
    },
    Namespace {
        path: "/chat",
        events: &[BuiltinEvent::Join, BuiltinEvent::Leave, BuiltinEvent::Chat],
        welcome: false,
        presence: true,
        shares_plain_rooms: false,
    },
];

/// The routes of this node: the built-in events that stay on (`--builtin-events`), whether the
/// others go to the app (`--webhook-url`), and the namespaces whose events all go there
/// (`--namespace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRoutes {
    builtin: Vec<BuiltinEvent>,
    webhook: bool,
    app_namespaces: Vec<String>,
}

impl EventRoutes {
    /// Routes with `builtin` on; with `webhook`, the rest and `app_namespaces` go to the app.
    pub fn new(builtin: Vec<BuiltinEvent>, webhook: bool, app_namespaces: Vec<String>) -> Self {
        EventRoutes {
            builtin,
            webhook,
            app_namespaces,
        }
    }

    /// Whether a built-in event's handler is on.
    pub fn is_on(&self, event: BuiltinEvent) -> bool {
        self.builtin.contains(&event)
    }

    /// Whether events reach the app.
    pub fn has_webhook(&self) -> bool {
        self.webhook
    }

    /// Who takes `event` on a socket of `namespace` (`None` for a namespace of the app).
    pub fn route(&self, namespace: Option<&Namespace>, event: &str) -> Route {
        match namespace.map(|ns| ns.route(event)) {
            Some(Route::Builtin(builtin)) if self.is_on(builtin) => Route::Builtin(builtin),
            _ if self.webhook => Route::Webhook,
            _ => Route::Unhandled,
        }
    }

    /// Who takes a plain WebSocket frame's `event`.
    pub fn plain_route(&self, event: &str) -> Route {
        match plain_event(event) {
            Some(builtin) if self.is_on(builtin) => Route::Builtin(builtin),
            _ if self.webhook => Route::Webhook,
            _ => Route::Unhandled,
        }
    }

    /// The namespaces of the app (`--namespace`), served only when events can reach it.
    pub fn app_namespaces(&self) -> &[String] {
        if self.webhook {
            &self.app_namespaces
        } else {
            &[]
        }
    }
}

/// The namespace served at `path`, if any.
pub fn namespace(path: &str) -> Option<&'static Namespace> {
    NAMESPACES.iter().find(|namespace| namespace.path == path)
}

/// The events a plain WebSocket client may send as `{"event": ...}` frames. They act on the
/// rooms of `/`; a plain client has no `message` event because every non-request frame is
/// already echoed.
pub const PLAIN_EVENTS: &[BuiltinEvent] = &[
    BuiltinEvent::Join,
    BuiltinEvent::Leave,
    BuiltinEvent::Chat,
    BuiltinEvent::Echo,
];

/// The built-in plain WebSocket event of that name, if any.
pub fn plain_event(name: &str) -> Option<BuiltinEvent> {
    BuiltinEvent::from_name(name).filter(|event| PLAIN_EVENTS.contains(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// README's section on one namespace: from its heading to the next one.
    fn readme_section(namespace: &str) -> &'static str {
        let readme = include_str!("../../README.md");
        let heading = format!("### Namespace `{namespace}`");
        let start = readme
            .find(&heading)
            .unwrap_or_else(|| panic!("README has no section {heading}"));
        let rest = &readme[start + heading.len()..];
        &rest[..rest.find("\n#").unwrap_or(rest.len())]
    }

    /// The names between backticks in `text`.
    fn quoted_names(text: &str) -> BTreeSet<&str> {
        text.split('`').skip(1).step_by(2).collect()
    }

    fn table_names(namespace: &str) -> BTreeSet<&'static str> {
        namespace_named(namespace)
            .events
            .iter()
            .map(|event| event.name())
            .collect()
    }

    fn namespace_named(path: &str) -> &'static Namespace {
        namespace(path).unwrap_or_else(|| panic!("{path} is served"))
    }

    #[test]
    fn readme_lists_the_events_of_the_table() {
        // `/`: the event column of every client → server row of the contract table.
        let documented: BTreeSet<&str> = readme_section("/")
            .lines()
            .filter(|line| line.starts_with("| client → server |"))
            .filter_map(|line| line.split('|').nth(2))
            .flat_map(|cell| quoted_names(cell).into_iter().next())
            .collect();
        assert_eq!(documented, table_names("/"));
        // `/chat`: "`/chat` has the same `join`, `leave` and `chat` events."
        let sentence = readme_section("/chat")
            .split(". ")
            .find(|sentence| sentence.contains("has the same"))
            .expect("README names the events of /chat");
        let mut documented = quoted_names(sentence);
        documented.remove("/chat");
        assert_eq!(documented, table_names("/chat"));
        assert_eq!(
            readme_section("/chat").contains("`presence`"),
            namespace_named("/chat").presence
        );
    }

    #[test]
    fn each_event_is_found_by_its_name() {
        for event in BuiltinEvent::ALL {
            assert_eq!(BuiltinEvent::from_name(event.name()), Some(event));
        }
        assert_eq!(BuiltinEvent::from_name("presence"), None);
    }

    #[test]
    fn disabled_events_and_others_go_to_the_app() {
        let root = namespace("/");
        let routes = EventRoutes::new(vec![BuiltinEvent::Join], true, vec!["/orders".into()]);
        assert_eq!(
            routes.route(root, "join"),
            Route::Builtin(BuiltinEvent::Join)
        );
        assert_eq!(routes.route(root, "chat"), Route::Webhook);
        assert_eq!(routes.route(None, "join"), Route::Webhook);
        assert_eq!(routes.plain_route("typing"), Route::Webhook);
        assert_eq!(routes.app_namespaces(), ["/orders"]);
        let closed = EventRoutes::new(vec![], false, vec!["/orders".into()]);
        assert_eq!(closed.route(root, "chat"), Route::Unhandled);
        assert!(
            closed.app_namespaces().is_empty(),
            "refused as without a webhook"
        );
    }

    #[test]
    fn routes_follow_the_namespace() {
        let root = namespace("/").expect("served");
        let chat = namespace("/chat").expect("served");
        assert_eq!(root.route("echo"), Route::Builtin(BuiltinEvent::Echo));
        assert_eq!(chat.route("echo"), Route::Unhandled);
        assert_eq!(chat.route("join"), Route::Builtin(BuiltinEvent::Join));
        assert_eq!(root.route("typing"), Route::Unhandled);
        assert!(namespace("/nowhere").is_none());
        assert_eq!(plain_event("message"), None);
        assert_eq!(plain_event("chat"), Some(BuiltinEvent::Chat));
    }
}
