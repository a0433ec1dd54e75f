//! The queue of packets waiting to be written to one session's transport.
//!
//! It replaces a `tokio::sync::mpsc` channel plus a `watch` channel for volatile packets. Both
//! allocate when the session is created: the mpsc channel a first block of 32 slots of
//! `PacketBuf` (about 5.4 KiB), the watch channel its shared state. An idle session never
//! needs either, so this queue keeps its state inline in the socket and allocates only when
//! packets are waiting, giving the memory back once a burst has been written.
//!
//! There is one consumer at a time: whoever holds the socket's `internal_rx` lock (the
//! WebSocket writer task or one polling request).
use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc::error::TrySendError};

use crate::outgoing::Outgoing;

/// A queue that grew beyond this many slots shrinks back to it once drained, so a burst does
/// not leave its peak allocation behind for the session's lifetime (2 KiB at most stay).
const RETAINED_SLOTS: usize = 64;

/// Size of the cache line a prefetch loads.
const CACHE_LINE: usize = 64;

/// Asks the CPU to start loading the cache line that holds `address`, so that the code that
/// touches it a little later does not wait for memory. A hint: it never faults, whatever the
/// address, and does nothing on other architectures.
#[inline(always)]
pub fn prefetch<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache; it reads nothing and cannot fault, even for an
    // address that is not mapped.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Bounded queue of [`Outgoing`] entries from any number of producers to one consumer.
pub(crate) struct PacketQueue {
    inner: Mutex<Inner>,
    /// Packets buffered plus permits handed out and not yet used.
    taken: AtomicUsize,
    capacity: usize,
    closed: AtomicBool,
    consumer: AtomicWaker,
    on_close: Notify,
    /// Where the next buffered entry will be written, kept up to date under the lock so that
    /// [`prefetch_next_slot`](Self::prefetch_next_slot) can read it without taking it.
    next_slot: AtomicPtr<Outgoing>,
}

#[derive(Default)]
struct Inner {
    buffered: VecDeque<Outgoing>,
    /// The latest volatile entry: it replaces any earlier one that was not written yet.
    volatile: Option<Outgoing>,
}

/// A reserved place in the queue for one [`Outgoing`] entry.
pub(crate) struct QueuePermit<'a> {
    queue: &'a PacketQueue,
}

impl QueuePermit<'_> {
    /// Queues `packets` in the reserved place.
    pub(crate) fn send(self, packets: Outgoing) {
        let queue = self.queue;
        std::mem::forget(self);
        queue.push(packets);
    }
}

impl Drop for QueuePermit<'_> {
    fn drop(&mut self) {
        self.queue.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PacketQueue {
    /// An empty queue that holds at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            taken: AtomicUsize::new(0),
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
            consumer: AtomicWaker::new(),
            on_close: Notify::new(),
            next_slot: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Reserves a place, or says why there is none.
    pub(crate) fn try_reserve(&self) -> Result<QueuePermit<'_>, TrySendError<()>> {
        if self.is_closed() {
            return Err(TrySendError::Closed(()));
        }
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.capacity).then_some(taken + 1)
            })
            .map_err(|_| {
                crate::traffic::queue_full();
                TrySendError::Full(())
            })?;
        Ok(QueuePermit { queue: self })
    }

    /// Queues `packets` if there is a free place.
    #[cfg(test)]
    pub(crate) fn try_send(&self, packets: Outgoing) -> Result<(), TrySendError<Outgoing>> {
        match self.try_reserve() {
            Ok(permit) => {
                permit.send(packets);
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(TrySendError::Full(packets)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(packets)),
        }
    }

    /// Queues a transport control packet even when the queue is full: there is at most one per
    /// transport change, and the change cannot complete without it. False once the queue is
    /// closed.
    pub(crate) fn push_control(&self, packets: Outgoing) -> bool {
        if self.is_closed() {
            return false;
        }
        self.taken.fetch_add(1, Ordering::AcqRel);
        self.push(packets);
        true
    }

    /// Replaces the pending volatile packet; false once the queue is closed.
    pub(crate) fn send_volatile(&self, packets: Outgoing) -> bool {
        if self.is_closed() {
            return false;
        }
        self.lock().volatile = Some(packets);
        self.consumer.wake();
        true
    }

    fn push(&self, packets: Outgoing) {
        let mut inner = self.lock();
        // Most sessions have one entry waiting at a time; the default first growth is to four.
        if inner.buffered.capacity() == 0 {
            inner.buffered.reserve_exact(1);
        }
        inner.buffered.push_back(packets);
        self.note_next_slot(&inner.buffered);
        drop(inner);
        self.consumer.wake();
    }

    /// Takes the next entry without waiting: buffered ones first, then the volatile one.
    pub(crate) fn try_recv(&self) -> Option<Outgoing> {
        let mut next = None;
        self.try_recv_many(|packets| {
            next = Some(packets);
            false
        });
        next
    }

    /// Hands waiting entries to `take` under one lock, buffered ones first, then the volatile
    /// one, until it returns false or none is left; returns how many it took.
    ///
    /// A writer woken for many entries pays for the lock and the count once, not per entry.
    pub(crate) fn try_recv_many(&self, mut take: impl FnMut(Outgoing) -> bool) -> usize {
        let mut inner = self.lock();
        let mut buffered = 0;
        let mut wants_more = true;
        while wants_more {
            let Some(packets) = inner.buffered.pop_front() else {
                break;
            };
            buffered += 1;
            wants_more = take(packets);
        }
        Self::after_taking(&mut inner.buffered);
        self.note_next_slot(&inner.buffered);
        let volatile = if wants_more && inner.buffered.is_empty() {
            inner.volatile.take()
        } else {
            None
        };
        drop(inner);
        if buffered > 0 {
            self.taken.fetch_sub(buffered, Ordering::AcqRel);
        }
        match volatile {
            Some(packets) => {
                take(packets);
                buffered + 1
            }
            None => buffered,
        }
    }

    /// Polls for the next entry; `None` once the queue is closed and drained.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        if let Some(packets) = self.try_recv() {
            return Poll::Ready(Some(packets));
        }
        self.consumer.register(cx.waker());
        // A producer may have pushed between the first look and the registration.
        if let Some(packets) = self.try_recv() {
            return Poll::Ready(Some(packets));
        }
        if self.is_closed() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// Waits for the next entry; `None` once the queue is closed and drained.
    pub(crate) async fn recv(&self) -> Option<Outgoing> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Refuses new packets; those already queued can still be taken.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.on_close.notify_waiters();
        self.consumer.wake();
    }

    /// True once [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Waits until the queue is closed.
    pub(crate) async fn closed(&self) {
        let notified = self.on_close.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    /// Starts loading the queue's own memory: what reserving a place and queueing touch.
    pub(crate) fn prefetch(&self) {
        let start = (self as *const Self).cast::<u8>();
        for offset in (0..size_of::<Self>()).step_by(CACHE_LINE) {
            prefetch(start.wrapping_add(offset));
        }
    }

    /// Starts loading the place the next buffered entry will be written to.
    pub(crate) fn prefetch_next_slot(&self) {
        prefetch(self.next_slot.load(Ordering::Relaxed));
    }

    /// Shrinks a drained buffer that grew past [`RETAINED_SLOTS`] back to that size, rather than
    /// freeing it: a busy session would otherwise grow it again from one slot, reallocating
    /// and copying at each doubling. A drained buffer starts again at its first slot, so the
    /// next entries land in memory the last ones used.
    fn after_taking(buffered: &mut VecDeque<Outgoing>) {
        if !buffered.is_empty() {
            return;
        }
        buffered.clear();
        if buffered.capacity() > RETAINED_SLOTS {
            buffered.shrink_to(RETAINED_SLOTS);
        }
    }

    /// Records where the entry after the last buffered one goes. When the buffer is full, or
    /// its entries end at the end of its memory, the next entry lands elsewhere and the hint
    /// is merely useless.
    fn note_next_slot(&self, buffered: &VecDeque<Outgoing>) {
        let (front, back) = buffered.as_slices();
        let last = if back.is_empty() { front } else { back };
        let next = last.as_ptr().wrapping_add(last.len()).cast_mut();
        self.next_slot.store(next, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A producer cannot panic while holding the lock (it only pushes or takes), so a poisoned
        // lock still holds a consistent queue.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for PacketQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketQueue")
            .field("taken", &self.taken.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engineioxide_core::Packet;

    fn ping() -> Outgoing {
        Outgoing::packet(Packet::Ping)
    }

    fn first_packet(outgoing: Option<Outgoing>) -> Packet {
        outgoing.expect("an entry").into_packets().remove(0)
    }

    #[test]
    fn refuses_beyond_capacity_until_a_packet_is_taken() {
        let queue = PacketQueue::new(2);
        queue.try_send(ping()).unwrap();
        let permit = queue.try_reserve().unwrap();
        assert!(matches!(queue.try_send(ping()), Err(TrySendError::Full(_))));
        drop(permit);
        queue.try_send(ping()).unwrap();
        assert!(queue.try_recv().is_some());
        queue.try_send(ping()).unwrap();
        assert!(matches!(queue.try_reserve(), Err(TrySendError::Full(()))));
    }

    #[test]
    fn buffered_packets_come_before_the_latest_volatile_one() {
        let queue = PacketQueue::new(4);
        assert!(queue.send_volatile(Outgoing::packet(Packet::Pong)));
        assert!(queue.send_volatile(Outgoing::packet(Packet::Noop)));
        queue.try_send(ping()).unwrap();
        assert!(matches!(first_packet(queue.try_recv()), Packet::Ping));
        assert!(matches!(first_packet(queue.try_recv()), Packet::Noop));
        assert!(queue.try_recv().is_none());
    }

    #[test]
    fn many_are_taken_in_order_until_the_taker_is_full() {
        let queue = PacketQueue::new(4);
        assert!(queue.send_volatile(Outgoing::packet(Packet::Noop)));
        queue.try_send(ping()).unwrap();
        queue.try_send(Outgoing::packet(Packet::Pong)).unwrap();
        queue.try_send(ping()).unwrap();
        let mut taken = Vec::new();
        let count = queue.try_recv_many(|outgoing| {
            taken.push(first_packet(Some(outgoing)));
            taken.len() < 2
        });
        assert_eq!(count, 2);
        assert!(matches!(taken[..], [Packet::Ping, Packet::Pong]));
        // The two places taken are free again; the third entry and the volatile one wait.
        for _ in 0..3 {
            queue.try_send(ping()).unwrap();
        }
        assert!(matches!(queue.try_reserve(), Err(TrySendError::Full(()))));
        taken.clear();
        let count = queue.try_recv_many(|outgoing| {
            taken.push(first_packet(Some(outgoing)));
            true
        });
        assert_eq!(count, 5);
        assert!(matches!(
            taken[..],
            [
                Packet::Ping,
                Packet::Ping,
                Packet::Ping,
                Packet::Ping,
                Packet::Noop
            ]
        ));
        assert_eq!(queue.try_recv_many(|_| true), 0);
    }

    #[test]
    fn the_next_slot_hint_is_where_the_next_entry_lands() {
        let queue = PacketQueue::new(16);
        // Room enough that no push below moves the buffer.
        queue.lock().buffered.reserve_exact(8);
        let lands_at_hint = |queue: &PacketQueue| {
            let hint = queue.next_slot.load(Ordering::Relaxed).cast_const();
            queue.try_send(ping()).unwrap();
            let inner = queue.lock();
            let (front, back) = inner.buffered.as_slices();
            let newest = back.last().or(front.last()).expect("an entry");
            std::ptr::eq(hint, newest)
        };
        queue.try_send(ping()).unwrap();
        assert!(lands_at_hint(&queue), "after a push");
        assert!(lands_at_hint(&queue), "after a second push");
        assert!(queue.try_recv().is_some());
        assert!(lands_at_hint(&queue), "after a take");
        assert_eq!(queue.try_recv_many(|_| true), 3);
        assert!(lands_at_hint(&queue), "after the queue was drained");
    }

    #[test]
    fn a_drained_burst_gives_back_what_it_grew_beyond_the_retained_slots() {
        let queue = PacketQueue::new(1024);
        for _ in 0..1000 {
            queue.try_send(ping()).unwrap();
        }
        assert!(queue.lock().buffered.capacity() >= 1000);
        while queue.try_recv().is_some() {}
        let capacity = queue.lock().buffered.capacity();
        assert!(
            (1..=RETAINED_SLOTS).contains(&capacity),
            "capacity {capacity} after the drain"
        );
    }

    #[tokio::test]
    async fn closing_refuses_new_packets_and_ends_the_consumer_after_the_queued_ones() {
        let queue = PacketQueue::new(4);
        queue.try_send(ping()).unwrap();
        queue.close();
        queue.closed().await;
        assert!(matches!(
            queue.try_send(ping()),
            Err(TrySendError::Closed(_))
        ));
        assert!(!queue.send_volatile(ping()));
        assert!(queue.recv().await.is_some());
        assert!(queue.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_a_packet() {
        let queue = std::sync::Arc::new(PacketQueue::new(4));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.recv().await }
        });
        tokio::task::yield_now().await;
        queue.try_send(ping()).unwrap();
        assert!(consumer.await.unwrap().is_some());
    }
}
