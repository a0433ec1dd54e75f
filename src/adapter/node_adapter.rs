//! The adapter of `--redis-protocol node`: socketioxide-redis's adapter, except that
//! broadcasts, room changes and disconnections travel in Node's format ([`node_encoding`]), so
//! Node servers on the same Redis act on them and iorelay nodes read them as Node's.
//!
//! Requests that wait for answers (room members, fetched sockets, broadcasts with acks) keep
//! socketioxide-redis's format: iorelay nodes answer them, Node servers ignore them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use socketioxide_core::adapter::errors::{AdapterError, BroadcastError};
use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
    RemoteSocketData, Room, RoomParam, SocketEmitter, Spawnable,
};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, Error as RedisError, InitError, RedisAdapterCtr};

use super::node_encoding::{self, selection};
use super::node_protocol::Selection;
use crate::relay::payload::EventArgs;

/// What every namespace's adapter shares: socketioxide-redis's state, and where Node-format
/// messages are published.
pub struct NodeAdapterState<D> {
    /// socketioxide-redis's adapter state, for the requests that keep its format.
    pub inner: RedisAdapterCtr<D>,
    /// The link to publish on.
    pub link: D,
    /// The channels' prefix (`--redis-key-prefix`).
    pub prefix: String,
}

/// socketioxide-redis's adapter speaking Node's format for what Node servers act on.
pub struct NodeFormatAdapter<E, D> {
    /// Shared with the task that reads its subscriptions.
    inner: Arc<CustomRedisAdapter<E, D>>,
    link: D,
    prefix: String,
    /// This server's adapter id, as a string: the `uid` of its messages.
    uid: String,
    /// `{prefix}-request#{namespace}#`.
    request_channel: String,
}

impl<E, D> DefinedAdapter for NodeFormatAdapter<E, D> {}

impl<E: SocketEmitter, D: Driver> NodeFormatAdapter<E, D> {
    /// The event and arguments of an event `packet`, or `None` for another packet type.
    fn event_of(&self, packet: &Packet) -> Option<(String, Vec<rmpv::Value>)> {
        let (PacketData::Event(value, _) | PacketData::BinaryEvent(value, _)) = &packet.inner
        else {
            return None;
        };
        let parser = self.get_local().parser();
        let event = parser.read_event(value).ok()?.to_owned();
        // Decoding takes binary attachments out of the value; the local delivery needs them.
        let mut value = value.clone();
        let EventArgs(args) = parser.decode_value(&mut value, true).ok()?;
        Some((event, args))
    }

    /// Publishes `payload` on `channel`; the link counts and logs what Redis does not take.
    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), RedisError<D>> {
        self.link
            .publish(channel, payload)
            .await
            .map_err(RedisError::Driver)
    }

    /// Makes the sockets `opts` picks on every node join (`join`) or leave `rooms`.
    async fn change_rooms(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
        join: bool,
    ) -> Result<(), RedisError<D>> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        if let Some(to) = self.remote_selection(&opts) {
            let names: Vec<String> = rooms.iter().map(ToString::to_string).collect();
            let payload = node_encoding::rooms_request(&self.uid, &to, &names, join);
            self.publish(self.request_channel.clone(), payload).await?;
        }
        if join {
            self.get_local().add_sockets(opts, rooms);
        } else {
            self.get_local().del_sockets(opts, rooms);
        }
        Ok(())
    }

    fn remote_selection(&self, opts: &BroadcastOptions) -> Option<Selection> {
        if opts.is_local(self.inner.get_local().server_id()) {
            return None;
        }
        selection(opts)
    }
}

impl<E: SocketEmitter, D: Driver> CoreAdapter<E> for NodeFormatAdapter<E, D> {
    type Error = <CustomRedisAdapter<E, D> as CoreAdapter<E>>::Error;
    type State = NodeAdapterState<D>;
    type AckStream = <CustomRedisAdapter<E, D> as CoreAdapter<E>>::AckStream;
    type InitRes = NodeInitRes<D>;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let uid = local.server_id().to_string();
        let request_channel = format!("{}-request#{}#", state.prefix, local.path());
        Self {
            inner: Arc::new(CustomRedisAdapter::new(&state.inner, local)),
            link: state.link.clone(),
            prefix: state.prefix.clone(),
            uid,
            request_channel,
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        let inner = self.inner.clone().init(on_success);
        let link = self.link.clone();
        // Node servers answer requests on the namespace's response channel, not on the asking
        // server's own (`publishOnSpecificResponseChannel` is off by default).
        let channel = format!("{}-response#{}#", self.prefix, self.get_local().path());
        NodeInitRes(Box::pin(async move {
            let unread = link
                .subscribe(channel.clone(), ANSWER_BUFFER)
                .await
                .map_err(InitError::Driver)?;
            tokio::spawn(pass_over(channel, unread));
            inner.await
        }))
    }

    async fn close(&self) -> Result<(), Self::Error> {
        self.inner.close().await
    }

    async fn server_count(&self) -> Result<u16, Self::Error> {
        self.inner.server_count().await
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        if let Some(to) = self.remote_selection(&opts) {
            let Some((event, args)) = self.event_of(&packet) else {
                return self.inner.broadcast(packet, opts).await;
            };
            let (channel, payload) = node_encoding::broadcast(
                &self.prefix,
                &self.uid,
                self.get_local().path(),
                &event,
                args,
                &to,
                opts.has_flag(BroadcastFlags::Volatile),
            );
            self.publish(channel, payload)
                .await
                .map_err(AdapterError::from)?;
        }
        self.get_local().broadcast(packet, opts)?;
        Ok(())
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        self.inner.broadcast_with_ack(packet, opts, timeout).await
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        if let Some(to) = self.remote_selection(&opts) {
            let payload = node_encoding::disconnect_request(&self.uid, &to, false);
            self.publish(self.request_channel.clone(), payload)
                .await
                .map_err(AdapterError::from)?;
        }
        self.get_local()
            .disconnect_socket(opts)
            .map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Self::Error> {
        self.inner.rooms(opts).await
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        self.change_rooms(opts, rooms, true).await
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        self.change_rooms(opts, rooms, false).await
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, Self::Error> {
        self.inner.fetch_sockets(opts).await
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        self.inner.get_local()
    }
}

/// Messages on a namespace's response channel that the Node listener does not take.
const ANSWER_BUFFER: usize = 64;

/// Reads what reaches `channel` and is not an answer in JSON: Node servers' answers to one
/// another's broadcasts with acks, in MessagePack, none of them for this node.
async fn pass_over(channel: String, mut unread: MessageStream<ChanItem>) {
    while let Some((_, payload)) = unread.next().await {
        tracing::trace!(
            channel,
            bytes = payload.len(),
            "a Node server's answer to another"
        );
    }
}

/// The adapter's initialisation: its subscriptions, then socketioxide-redis's.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct NodeInitRes<D: Driver>(BoxFuture<'static, Result<(), InitError<D>>>);

impl<D: Driver> Future for NodeInitRes<D> {
    type Output = Result<(), InitError<D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<D: Driver> Spawnable for NodeInitRes<D> {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(error) = self.0.await {
                tracing::error!(%error, "a namespace could not subscribe to Redis");
            }
        });
    }
}
