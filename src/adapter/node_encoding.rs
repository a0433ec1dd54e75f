//! This node's own messages in Node socket.io's format, as `@socket.io/redis-adapter` 8.x
//! writes them: broadcasts packed with notepack-compatible MessagePack on the namespace's (or
//! the single room's) channel, room changes and disconnections as JSON requests.
//!
//! Node servers and other iorelay nodes read them alike. One field is iorelay's own: a
//! broadcast's `opts.socketsOnly` tells iorelay nodes that the sender already reached the plain
//! WebSocket members of every node; Node's adapter ignores fields it does not know.

use rmpv::Value;
use serde_json::json;
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions};

use super::node_protocol::{EVENT, REMOTE_DISCONNECT, REMOTE_JOIN, REMOTE_LEAVE, Selection};

/// The sockets `opts` picks, in Node's terms, or `None` when it picks none: the sender `sid`
/// of a broadcast is one more exception; without the broadcast flag and rooms, `sid` alone is
/// picked, by the room named after it.
pub fn selection(opts: &BroadcastOptions) -> Option<Selection> {
    let mut rooms: Vec<String> = opts.rooms.iter().map(ToString::to_string).collect();
    let mut except: Vec<String> = opts.except.iter().map(ToString::to_string).collect();
    if opts.has_flag(BroadcastFlags::Broadcast) {
        except.extend(opts.sid.map(|sid| sid.to_string()));
    } else if rooms.is_empty() {
        rooms.push(opts.sid?.to_string());
    }
    Some(Selection { rooms, except })
}

/// A broadcast of `event` with `args` to the sockets `to` picks in `namespace`: its channel and
/// its payload, `[uid, packet, opts]`.
pub fn broadcast(
    prefix: &str,
    uid: &str,
    namespace: &str,
    event: &str,
    args: Vec<Value>,
    to: &Selection,
    volatile: bool,
) -> (String, Vec<u8>) {
    // Node's adapter publishes a single room's broadcast on that room's channel.
    let channel = match to.rooms.as_slice() {
        [room] => format!("{prefix}#{namespace}#{room}#"),
        _ => format!("{prefix}#{namespace}#"),
    };
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(Value::from(event));
    data.extend(args);
    let packet = Value::Map(vec![
        (Value::from("type"), Value::from(EVENT)),
        (Value::from("data"), Value::Array(data)),
        (Value::from("nsp"), Value::from(namespace)),
    ]);
    let mut flags = Vec::new();
    if volatile {
        flags.push((Value::from("volatile"), Value::from(true)));
    }
    let opts = Value::Map(vec![
        (Value::from("rooms"), strings(&to.rooms)),
        (Value::from("except"), strings(&to.except)),
        (Value::from("flags"), Value::Map(flags)),
        (Value::from("socketsOnly"), Value::from(true)),
    ]);
    let message = Value::Array(vec![Value::from(uid), packet, opts]);
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut bytes, &message);
    (channel, bytes)
}

/// The request making the sockets `to` picks join (`join`) or leave `rooms`.
pub fn rooms_request(uid: &str, to: &Selection, rooms: &[String], join: bool) -> Vec<u8> {
    json!({
        "uid": uid,
        "type": if join { REMOTE_JOIN } else { REMOTE_LEAVE },
        "opts": { "rooms": to.rooms, "except": to.except },
        "rooms": rooms,
    })
    .to_string()
    .into_bytes()
}

/// The request disconnecting the sockets `to` picks; `close` also closes their connection.
pub fn disconnect_request(uid: &str, to: &Selection, close: bool) -> Vec<u8> {
    json!({
        "uid": uid,
        "type": REMOTE_DISCONNECT,
        "opts": { "rooms": to.rooms, "except": to.except },
        "close": close,
    })
    .to_string()
    .into_bytes()
}

fn strings(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|item| Value::from(item.as_str()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::node_protocol::{self, NodeMessage};
    use socketioxide_core::Sid;

    fn opts(
        rooms: &[&str],
        except: &[&str],
        sid: Option<Sid>,
        broadcast: bool,
    ) -> BroadcastOptions {
        let mut opts = sid.map(BroadcastOptions::new).unwrap_or_default();
        opts.rooms = rooms.iter().map(|r| (*r).to_owned().into()).collect();
        opts.except = except.iter().map(|r| (*r).to_owned().into()).collect();
        if broadcast {
            opts.add_flag(BroadcastFlags::Broadcast);
        }
        opts
    }

    #[test]
    fn the_sender_of_a_broadcast_is_one_more_exception() {
        let sid = Sid::new();
        let picked = selection(&opts(&["a"], &["b"], Some(sid), true)).expect("picks");
        assert_eq!(picked.rooms, ["a"]);
        assert_eq!(picked.except, ["b".to_owned(), sid.to_string()]);
    }

    #[test]
    fn one_socket_is_picked_by_the_room_named_after_it() {
        let sid = Sid::new();
        let picked = selection(&opts(&[], &[], Some(sid), false)).expect("picks");
        assert_eq!(picked.rooms, [sid.to_string()]);
        assert!(picked.except.is_empty());
        // `within` a room keeps the sender among the members.
        let picked = selection(&opts(&["a"], &[], Some(sid), false)).expect("picks");
        assert_eq!(picked.rooms, ["a"]);
        assert!(picked.except.is_empty());
        assert_eq!(selection(&opts(&[], &[], None, false)), None);
    }

    #[test]
    fn a_broadcast_decodes_as_node_sent_it() {
        let to = Selection {
            rooms: vec!["r1".into()],
            except: vec!["r2".into()],
        };
        let args = vec![Value::from("hi"), Value::Binary(vec![1, 2, 3])];
        let (channel, payload) = broadcast(
            "socket.io",
            "node-a",
            "/chat",
            "chat",
            args.clone(),
            &to,
            true,
        );
        assert_eq!(channel, "socket.io#/chat#r1#");
        let decoded =
            node_protocol::decode("socket.io", &channel, &payload, 1 << 20, Some("other"))
                .expect("decodes");
        assert_eq!(
            decoded,
            NodeMessage::Broadcast {
                namespace: "/chat".into(),
                to,
                event: "chat".into(),
                args,
                volatile: true,
                sockets_only: true,
            }
        );
        assert_eq!(
            node_protocol::decode("socket.io", &channel, &payload, 1 << 20, Some("node-a")),
            Err(node_protocol::RefusedMessage::Own)
        );
        let everyone = Selection::default();
        let (channel, _) = broadcast("p", "u", "/", "e", Vec::new(), &everyone, false);
        assert_eq!(channel, "p#/#");
    }

    #[test]
    fn room_changes_and_disconnections_decode_as_node_sent_them() {
        let to = Selection {
            rooms: vec!["a".into()],
            except: vec![],
        };
        let channel = "socket.io-request#/#";
        let join = rooms_request("node-a", &to, &["b".into()], true);
        assert_eq!(
            node_protocol::decode("socket.io", channel, &join, 1 << 20, Some("other")),
            Ok(NodeMessage::Rooms {
                namespace: "/".into(),
                to: to.clone(),
                rooms: vec!["b".into()],
                join: true,
            })
        );
        let leave = rooms_request("node-a", &to, &["b".into()], false);
        assert!(matches!(
            node_protocol::decode("socket.io", channel, &leave, 1 << 20, Some("other")),
            Ok(NodeMessage::Rooms { join: false, .. })
        ));
        let disconnect = disconnect_request("node-a", &to, true);
        assert_eq!(
            node_protocol::decode("socket.io", channel, &disconnect, 1 << 20, Some("other")),
            Ok(NodeMessage::Disconnect {
                namespace: "/".into(),
                to,
                close: true,
            })
        );
        assert_eq!(
            node_protocol::decode("socket.io", channel, &disconnect, 1 << 20, Some("node-a")),
            Err(node_protocol::RefusedMessage::Own)
        );
    }
}
