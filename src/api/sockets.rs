//! `socketsJoin`, `socketsLeave`, `disconnectSockets`, `fetchSockets()` and the room list, over
//! HTTP. `to` names rooms or socket ids; without it a call acts on the whole namespace.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;

use super::{ApiError, ApiState, body, root};
use crate::relay::client::{ClientState, socket_view};
use crate::relay::membership::{Picked, RoomChange};
use crate::relay::webhook::SocketView;

/// `POST /api/sockets/join` and `/leave`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomsRequest {
    #[serde(default = "root")]
    namespace: String,
    #[serde(default)]
    to: Vec<String>,
    rooms: Vec<String>,
}

/// `POST /api/sockets/disconnect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisconnectRequest {
    #[serde(default = "root")]
    namespace: String,
    #[serde(default)]
    to: Vec<String>,
    /// Node's `disconnectSockets(close)`; see `docs/webhooks-and-api.md` for what it does here.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as Node takes it; sockets are disconnected either way"
    )]
    close: bool,
}

/// `GET /api/sockets` and `GET /api/rooms` queries.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default = "root")]
    namespace: String,
    room: Option<String>,
}

impl<A: Adapter> ApiState<A> {
    /// The sockets `to` names in `namespace` (all of them when empty), on every node.
    fn targets(&self, namespace: &str, to: &[String]) -> Result<BroadcastOperators<A>, ApiError> {
        let sockets = self
            .io
            .of(namespace)
            .ok_or_else(|| ApiError::UnknownNamespace(namespace.to_owned()))?;
        Ok(if to.is_empty() {
            sockets
        } else {
            sockets.within(to.to_vec())
        })
    }
}

pub(crate) async fn join<A: Adapter>(
    State(api): State<ApiState<A>>,
    request: Result<Json<RoomsRequest>, JsonRejection>,
) -> Result<Json<Json_>, ApiError> {
    change_rooms(api, body(request)?, RoomChange::Join).await
}

pub(crate) async fn leave<A: Adapter>(
    State(api): State<ApiState<A>>,
    request: Result<Json<RoomsRequest>, JsonRejection>,
) -> Result<Json<Json_>, ApiError> {
    change_rooms(api, body(request)?, RoomChange::Leave).await
}

async fn change_rooms<A: Adapter>(
    api: ApiState<A>,
    request: RoomsRequest,
    change: RoomChange,
) -> Result<Json<Json_>, ApiError> {
    api.relay
        .change_rooms(
            &api.io,
            &request.namespace,
            Picked::everywhere(&request.to),
            &request.rooms,
            change,
        )
        .await?;
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn disconnect<A: Adapter>(
    State(api): State<ApiState<A>>,
    request: Result<Json<DisconnectRequest>, JsonRejection>,
) -> Result<Json<Json_>, ApiError> {
    let request = body(request)?;
    api.relay
        .disconnect_sockets(&api.io, &request.namespace, Picked::everywhere(&request.to))
        .await?
        .or_else(super::error::partial_delivery)?;
    Ok(Json(json!({ "ok": true })))
}

/// A socket in `GET /api/sockets`: what this node knows in full; for a socket of another server,
/// its id and rooms and, in Node's format, its data, user and handshake as that server
/// answered (socketioxide-redis's format carries nothing more than id and rooms).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Listed {
    Local(SocketView),
    Remote {
        id: String,
        rooms: Vec<String>,
        data: Option<Json_>,
        user: Option<String>,
        handshake: Option<Json_>,
    },
}

pub(crate) async fn list<A: Adapter>(
    State(api): State<ApiState<A>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Json_>, ApiError> {
    let room: Vec<String> = query.room.into_iter().collect();
    let targets = api.targets(&query.namespace, &room)?;
    let remote = api.relay.remote_members.get();
    // In Node's format, the other servers (Node's too) answer for their own sockets.
    let targets = if remote.is_some() {
        targets.local()
    } else {
        targets
    };
    let sockets = targets
        .fetch_sockets()
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    let local = api.io.of(&query.namespace);
    let mut listed = Vec::with_capacity(sockets.len());
    for socket in sockets {
        let id = socket.data().id;
        let here = local.as_ref().and_then(|ns| ns.get_socket(id));
        let client = here
            .as_ref()
            .and_then(|socket| socket.extensions.get::<std::sync::Arc<ClientState>>());
        match (here, client) {
            (Some(socket), Some(client)) => {
                listed.push(Listed::Local(socket_view(&socket, &client)))
            }
            _ => listed.push(Listed::Remote {
                id: id.to_string(),
                rooms: socket
                    .rooms()
                    .await
                    .map(|rooms| rooms.into_iter().map(|room| room.to_string()).collect())
                    .unwrap_or_default(),
                data: None,
                user: None,
                handshake: None,
            }),
        }
    }
    if let Some(remote) = remote {
        let fetched = remote.fetch(&query.namespace, &room).await;
        listed.extend(fetched.into_iter().filter_map(fetched_socket));
    }
    Ok(Json(json!({ "sockets": listed })))
}

/// A socket another server listed, as Node's `fetchSockets()` answers carry it; `None` without
/// an id.
fn fetched_socket(mut socket: Json_) -> Option<Listed> {
    let id = socket.get("id")?.as_str()?.to_owned();
    let rooms = socket
        .get("rooms")
        .and_then(Json_::as_array)
        .map(|rooms| {
            rooms
                .iter()
                .filter_map(|room| room.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut field = |name: &str| socket.get_mut(name).map(Json_::take);
    Some(Listed::Remote {
        id,
        rooms,
        data: field("data"),
        user: field("user").and_then(|user| user.as_str().map(str::to_owned)),
        handshake: field("handshake"),
    })
}

pub(crate) async fn rooms<A: Adapter>(
    State(api): State<ApiState<A>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Json_>, ApiError> {
    let mut namespace = api.targets(&query.namespace, &[])?;
    let remote = api.relay.remote_members.get();
    // In Node's format, the other servers (Node's too) answer for their own sockets.
    if remote.is_some() {
        namespace = namespace.local();
    }
    let unavailable = |error: A::Error| ApiError::Unavailable(error.to_string());
    let mut ids: HashSet<String> = namespace
        .clone()
        .fetch_sockets()
        .await
        .map_err(unavailable)?
        .iter()
        .map(|socket| socket.data().id.to_string())
        .collect();
    let mut names: Vec<String> = namespace
        .clone()
        .rooms()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|room| room.to_string())
        .collect();
    if let Some(remote) = remote {
        let (remote_ids, remote_rooms) = tokio::join!(
            remote.socket_ids(&query.namespace, &[]),
            remote.all_rooms(&query.namespace)
        );
        ids.extend(remote_ids);
        names.extend(remote_rooms);
    }
    let shares_plain_rooms = query.namespace == "/";
    if shares_plain_rooms {
        names.extend(api.relay.plain.room_names());
    }
    // Rooms named after a socket's id are that socket, not a room anyone joined.
    names.retain(|name| !ids.contains(name));
    let mut sizes = BTreeMap::new();
    for name in names {
        if sizes.contains_key(&name) {
            continue;
        }
        let size = api
            .relay
            .room_size(&api.io, &query.namespace, shares_plain_rooms, &name)
            .await;
        sizes.insert(name, size);
    }
    let rooms: Vec<Json_> = sizes
        .into_iter()
        .map(|(name, size)| json!({ "name": name, "size": size }))
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}
