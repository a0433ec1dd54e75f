//! What is checked before a plain WebSocket is accepted: origin, subprotocol, token, capacity.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::metrics::RefusalCause;
use crate::relay::auth::AuthError;

/// A subprotocol entry that carries the client's token instead of naming a protocol, for
/// browsers, whose `WebSocket` cannot set headers: `new WebSocket(url, ["token.<token>"])`.
pub const TOKEN_PREFIX: &str = "token.";

/// Why a plain WebSocket handshake was refused; the text is the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The `Origin` is not on the allow-list.
    #[error("origin not allowed")]
    Origin,
    /// Every subprotocol the client asked for is unknown.
    #[error("unsupported subprotocol: this server speaks {0}")]
    Subprotocol(String),
    /// Missing or invalid credentials.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The node holds its maximum number of connections.
    #[error("server at capacity")]
    AtCapacity,
}

impl Refusal {
    /// The `cause` it is counted under in `iorelay_handshakes_refused_total`.
    pub fn cause(&self) -> RefusalCause {
        match self {
            Refusal::Origin => RefusalCause::Origin,
            Refusal::Subprotocol(_) => RefusalCause::BadRequest,
            Refusal::Auth(_) => RefusalCause::Auth,
            Refusal::AtCapacity => RefusalCause::Capacity,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::Origin => StatusCode::FORBIDDEN,
            Refusal::Subprotocol(_) => StatusCode::BAD_REQUEST,
            Refusal::Auth(_) => StatusCode::UNAUTHORIZED,
            Refusal::AtCapacity => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, self.to_string()).into_response()
    }
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
pub fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The subprotocols the client offers, in its order of preference.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Picks the subprotocol to answer with: the client's first that the server speaks.
///
/// Token entries are not protocols; but a client that offers nothing else still needs an answer
/// (browsers fail a handshake whose answer names none of the offered protocols), so it gets its
/// token entry back. A client offering only unknown protocols is refused.
pub fn select_protocol<'a>(
    offered: &'a [String],
    accepted: &[String],
) -> Result<Option<&'a str>, Refusal> {
    let mut protocols = offered.iter().filter(|p| !p.starts_with(TOKEN_PREFIX));
    let Some(first) = protocols.next() else {
        return Ok(offered.first().map(String::as_str));
    };
    std::iter::once(first)
        .chain(protocols)
        .find(|p| accepted.contains(p))
        .map(|p| Some(p.as_str()))
        .ok_or_else(|| {
            let spoken = if accepted.is_empty() {
                "no subprotocol".to_owned()
            } else {
                accepted.join(", ")
            };
            Refusal::Subprotocol(spoken)
        })
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The client's token: `?token=` in the URL, else a `token.<token>` subprotocol entry.
pub fn token(uri: &Uri, offered: &[String]) -> Option<String> {
    Query::<TokenQuery>::try_from_uri(uri)
        .ok()
        .and_then(|query| query.0.token)
        .filter(|token| !token.is_empty())
        .or_else(|| {
            offered
                .iter()
                .find_map(|p| p.strip_prefix(TOKEN_PREFIX))
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_clients_first_known_protocol_wins() {
        let accepted = list(&["echo-protocol", "chat"]);
        let offered = list(&["x", "chat", "echo-protocol"]);
        assert_eq!(select_protocol(&offered, &accepted), Ok(Some("chat")));
        assert_eq!(select_protocol(&[], &accepted), Ok(None));
        assert!(matches!(
            select_protocol(&list(&["graphql-ws"]), &accepted),
            Err(Refusal::Subprotocol(_))
        ));
        assert!(select_protocol(&list(&["chat"]), &[]).is_err());
    }

    #[test]
    fn token_entries_are_not_protocols() {
        let accepted = list(&["echo-protocol"]);
        let offered = list(&["token.abc", "echo-protocol"]);
        assert_eq!(
            select_protocol(&offered, &accepted),
            Ok(Some("echo-protocol"))
        );
        let alone = list(&["token.abc"]);
        assert_eq!(select_protocol(&alone, &accepted), Ok(Some("token.abc")));
    }

    #[test]
    fn the_token_comes_from_the_query_or_the_protocols() {
        let uri: Uri = "/ws?token=a%20b".parse().expect("uri");
        assert_eq!(token(&uri, &[]).as_deref(), Some("a b"));
        let bare: Uri = "/ws".parse().expect("uri");
        let offered = list(&["echo-protocol", "token.xyz"]);
        assert_eq!(token(&bare, &offered).as_deref(), Some("xyz"));
        assert_eq!(token(&bare, &[]), None);
    }

    #[test]
    fn headers_are_read_as_lists() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            "a, b".parse().expect("value"),
        );
        headers.append(header::SEC_WEBSOCKET_PROTOCOL, "c".parse().expect("value"));
        headers.insert(header::UPGRADE, "WebSocket".parse().expect("value"));
        assert_eq!(offered_protocols(&headers), ["a", "b", "c"]);
        assert!(wants_websocket(&headers));
    }
}
