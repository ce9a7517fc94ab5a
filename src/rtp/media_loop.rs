//! The media loop: one thread owns every RTP socket of the process. It sends each session's
//! 20 ms packet in the session's slot of the period, at the same point of every period, and reads
//! every packet the moment it arrives.
//!
//! Why one thread, and not a task per session on the runtime: at a thousand calls a task per
//! session meant 100,000 task wake-ups a second on the runtime that also serves HTTP and SIP,
//! each session's sending drifting with the scheduler and tokio's millisecond timer wheel, and a
//! DTMF packet waiting behind a run queue of audio packets (p99 several ms). Here the slots have
//! absolute deadlines, the thread asks for real-time scheduling (falling back to a high nice
//! level, then to none, where the system refuses), and sockets are read in `epoll` order as
//! they become ready. Like tokio's timer driver the loop serves the whole process (a fleet's
//! devices share it); it sleeps while no session exists. Sessions join when their call is
//! answered and leave when it ends (their socket closes at their next slot).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::session::{Inbound, Outbound};

/// Packetization time of every session.
pub const PACKET_TIME: Duration = Duration::from_millis(20);

/// The token of the loop's waker; sessions use their index.
const WAKE: Token = Token(usize::MAX);

/// A session handed to the loop: its socket and both sides.
pub(super) struct Joining {
    pub(super) socket: UdpSocket,
    pub(super) outbound: Arc<Outbound>,
    pub(super) inbound: Inbound,
}

/// Sessions handed to the loop, and whether it must be woken to take them.
#[derive(Default)]
struct Handover {
    /// Sessions handed over since the loop last looked.
    waiting: Vec<Joining>,
    /// Where the loop is.
    loop_is: LoopIs,
}

/// Where the loop is, for a joining session.
#[derive(Debug, Clone, Copy, Default)]
enum LoopIs {
    /// Running: it takes the waiting sessions before it sleeps again.
    #[default]
    Awake,
    /// Asleep until a session joins.
    Idle,
    /// Asleep until its next slot is due.
    AsleepUntil(Instant),
}

/// A session joining a running loop is taken at its next slot unless that is further off than
/// this (the loop skips empty slots); one wake a batch, not one a session, when calls come by
/// the thousand a second.
const JOIN_WITHIN: Duration = Duration::from_millis(2);

/// The process's media loop.
pub struct MediaLoop {
    /// Sessions handed over, and the loop's state for waking it.
    handover: Mutex<Handover>,
    /// Wakes the loop when a session joins.
    waker: Waker,
    /// How late the slots were visited.
    lateness: Lateness,
}

impl MediaLoop {
    /// The loop, its thread started on first use; None when the system refused the thread or
    /// its poller (logged).
    pub(super) fn get() -> Option<&'static MediaLoop> {
        static LOOP: OnceLock<Option<MediaLoop>> = OnceLock::new();
        LOOP.get_or_init(|| {
            let started = Poll::new().and_then(|poll| {
                let waker = Waker::new(poll.registry(), WAKE)?;
                std::thread::Builder::new().name("doorsim-media".into()).spawn(move || {
                    if let Some(media) = MediaLoop::get() {
                        media.run(poll);
                    }
                })?;
                Ok(MediaLoop { handover: Mutex::default(), waker, lateness: Lateness::default() })
            });
            started.map_err(|e| tracing::error!(error = %e, "cannot start the media loop: no RTP")).ok()
        })
        .as_ref()
    }

    /// Adds a session to the slot with the fewest: its first packet goes out when that slot
    /// next comes round, then one every 20 ms until it is stopped.
    pub(super) fn join(&self, session: Joining) {
        let mut handover = self.handover();
        handover.waiting.push(session);
        let wake = match handover.loop_is {
            LoopIs::Awake => false,
            LoopIs::Idle => true,
            LoopIs::AsleepUntil(due) => due > Instant::now() + JOIN_WITHIN,
        };
        if !wake {
            return;
        }
        handover.loop_is = LoopIs::Awake; // one wake is enough
        drop(handover);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "cannot wake the media loop");
        }
    }

    /// How late the loop has visited its slots since the process started: the part of the
    /// media's timing that is the device's own (what the peer sees adds the network stack).
    pub fn lateness() -> LatenessFigures {
        Self::get().map(|m| m.lateness.figures()).unwrap_or_default()
    }

    fn handover(&self) -> std::sync::MutexGuard<'_, Handover> {
        self.handover.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, mut poll: Poll) {
        raise_priority();
        let mut events = Events::with_capacity(1024);
        let mut streams = Streams::default();
        let mut at = Position { cycle: Instant::now(), slot: 0 };
        let mut buf = vec![0u8; 2048];
        let mut packet = Vec::with_capacity(super::HEADER_LEN + 4 * super::session::FRAME);
        loop {
            let joined = std::mem::take(&mut self.handover().waiting);
            if streams.is_empty() && !joined.is_empty() {
                at = Position { cycle: Instant::now(), slot: 0 };
            }
            for session in joined {
                streams.add(session, poll.registry());
            }
            // Idle: no tick at all until a session joins.
            let due = (!streams.is_empty()).then(|| at.due());
            {
                let mut handover = self.handover();
                if !handover.waiting.is_empty() {
                    continue; // joined meanwhile, and nobody woke us for it
                }
                handover.loop_is = due.map_or(LoopIs::Idle, LoopIs::AsleepUntil);
            }
            let timeout = due.map(|due| due.saturating_duration_since(Instant::now()));
            let polled = poll.poll(&mut events, timeout);
            self.handover().loop_is = LoopIs::Awake;
            if let Err(e) = polled {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "media loop poll failed");
                    std::thread::sleep(PACKET_TIME);
                }
                continue;
            }
            // Sending comes first: a burst of arrivals must not push the slots back.
            streams.send_due(&mut at, poll.registry(), &mut packet, &self.lateness);
            for (i, event) in events.iter().enumerate() {
                if let Some(stream) = streams.get_mut(event.token()) {
                    stream.read_all(&mut buf);
                }
                if i % READS_BETWEEN_CLOCK_CHECKS == READS_BETWEEN_CLOCK_CHECKS - 1 {
                    streams.send_due(&mut at, poll.registry(), &mut packet, &self.lateness);
                }
            }
        }
    }
}

/// How many ready sockets are read before the loop looks at the clock again.
const READS_BETWEEN_CLOCK_CHECKS: usize = 16;

/// Upper bounds of the lateness histogram's buckets: 100 µs wide up to 10 ms, then one for the rest.
const LATENESS_BUCKET: Duration = Duration::from_micros(100);
const LATENESS_BUCKETS: usize = 101;

/// A histogram of slot lateness, written by the loop and read by anyone.
struct Lateness {
    buckets: [AtomicU64; LATENESS_BUCKETS],
}

impl Default for Lateness {
    fn default() -> Self {
        Self { buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl Lateness {
    fn record(&self, late: Duration) {
        let bucket = (late.as_nanos() / LATENESS_BUCKET.as_nanos()).min(LATENESS_BUCKETS as u128 - 1) as usize;
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn figures(&self) -> LatenessFigures {
        LatenessFigures { counts: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect() }
    }
}

/// Slot visits counted by lateness, in 100 µs buckets (the last: 10 ms or more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatenessFigures {
    counts: Vec<u64>,
}

impl LatenessFigures {
    /// The visits since `earlier` was taken.
    pub fn since(&self, earlier: &LatenessFigures) -> LatenessFigures {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(earlier.counts.get(i).copied().unwrap_or(0)))
            .collect();
        LatenessFigures { counts }
    }

    /// Slot visits counted.
    pub fn visits(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The highest lateness seen (to the bucket's upper bound; 10 ms or more shows as 10.1 ms).
    pub fn worst(&self) -> Duration {
        self.counts.iter().rposition(|c| *c > 0).map_or(Duration::ZERO, |i| LATENESS_BUCKET * (i as u32 + 1))
    }

    /// The lateness that fraction `p` of the visits did not exceed (to the bucket's upper bound).
    pub fn percentile(&self, p: f64) -> Duration {
        let wanted = (self.visits() as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= wanted.max(1) {
                return LATENESS_BUCKET * (i as u32 + 1);
            }
        }
        Duration::ZERO
    }
}

/// Asks for real-time scheduling (a low SCHED_FIFO priority, as audio servers use), or failing
/// that the highest nice level allowed: the loop's deadlines are the media's timing.
fn raise_priority() {
    use thread_priority::{
        set_current_thread_priority, set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    };
    let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    let low = ThreadPriorityValue::try_from(10u8).map(ThreadPriority::Crossplatform);
    match low.map(|p| set_thread_priority_and_policy(thread_native_id(), p, fifo)) {
        Ok(Ok(())) => tracing::debug!("media loop runs with real-time scheduling"),
        _ => match set_current_thread_priority(ThreadPriority::Max) {
            Ok(()) => tracing::info!("media loop: real-time scheduling refused; runs at the highest nice level"),
            Err(e) => {
                tracing::info!(error = ?e, "media loop: real-time scheduling and nice refused; RTP timing may suffer under load")
            }
        },
    }
}

/// One session as the loop holds it.
struct Stream {
    socket: UdpSocket,
    outbound: Arc<Outbound>,
    inbound: Inbound,
}

impl Stream {
    /// Reads until the socket is empty (readiness is edge-triggered).
    fn read_all(&mut self, buf: &mut [u8]) {
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => self.inbound.packet(&buf[..n], from, &self.outbound),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "RTP receive failed");
                    return;
                }
            }
        }
    }
}

/// The sessions, indexed by their token, and which slot each sends in.
#[derive(Default)]
struct Streams {
    entries: Vec<Option<Stream>>,
    /// Indexes of `entries` free for reuse.
    free: Vec<usize>,
    slots: [Vec<usize>; SLOTS],
}

impl Streams {
    fn is_empty(&self) -> bool {
        self.slots.iter().all(Vec::is_empty)
    }

    fn busy(&self, slot: usize) -> bool {
        !self.slots[slot].is_empty()
    }

    fn get_mut(&mut self, token: Token) -> Option<&mut Stream> {
        self.entries.get_mut(token.0)?.as_mut()
    }

    /// Registers a session's socket and puts it in the slot with the fewest sessions.
    fn add(&mut self, mut session: Joining, registry: &Registry) {
        let index = self.free.pop().unwrap_or(self.entries.len());
        if let Err(e) = registry.register(&mut session.socket, Token(index), Interest::READABLE) {
            tracing::warn!(error = %e, "cannot register an RTP socket: the call has no media");
            self.free.push(index);
            return;
        }
        let stream = Stream { socket: session.socket, outbound: session.outbound, inbound: session.inbound };
        if index == self.entries.len() {
            self.entries.push(Some(stream));
        } else {
            self.entries[index] = Some(stream);
        }
        if let Some(emptiest) = self.slots.iter_mut().min_by_key(|s| s.len()) {
            emptiest.push(index);
        }
    }

    /// Visits every slot that is due by now, in order, and moves `at` to the next busy one.
    fn send_due(&mut self, at: &mut Position, registry: &Registry, packet: &mut Vec<u8>, lateness: &Lateness) {
        while !self.is_empty() && Instant::now() >= at.due() {
            lateness.record(at.due().elapsed());
            self.visit(at.slot, registry, packet);
            at.advance(|k| self.busy(k), Instant::now());
        }
    }

    /// Sends the packet of each session in `slot`, closes what its DTMF decoder left open too
    /// long, and drops sessions that ended.
    fn visit(&mut self, slot: usize, registry: &Registry, packet: &mut Vec<u8>) {
        let Self { entries, free, slots } = self;
        let now = Instant::now();
        slots[slot].retain(|&index| {
            let Some(stream) = entries.get_mut(index).and_then(Option::as_mut) else { return false };
            if stream.outbound.stopped() {
                if let Some(mut ended) = entries[index].take() {
                    let _ = registry.deregister(&mut ended.socket);
                }
                free.push(index);
                return false;
            }
            stream.outbound.send_next(&stream.socket, packet);
            stream.inbound.poll(now);
            true
        });
    }
}

/// Sessions are spread over this many slots of the 20 ms period, so that each slot's sends
/// (a thousand calls: about 50, a fraction of a millisecond) do not delay one another by more
/// than that, and the peers' receivers get a steady stream rather than one burst a period.
const SLOTS: usize = 20;

/// The time between two slots.
const SLOT_TIME: Duration = Duration::from_millis(1);

/// Where the clock is on its grid: the start of the current period and the slot in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    cycle: Instant,
    slot: usize,
}

impl Position {
    /// When this slot's packets are due.
    fn due(&self) -> Instant {
        // slot < SLOTS = 20
        self.cycle + SLOT_TIME * self.slot as u32
    }

    /// Moves to the next slot for which `busy` holds (at most one whole period on). Whole
    /// periods the clock fell behind `now` (the machine stalled) are skipped, so a stall does
    /// not turn into a burst of catch-up packets; the grid stays where it was.
    fn advance(&mut self, busy: impl Fn(usize) -> bool, now: Instant) {
        for _ in 0..SLOTS {
            self.slot += 1;
            if self.slot == SLOTS {
                self.slot = 0;
                self.cycle += PACKET_TIME;
            }
            if busy(self.slot) {
                break;
            }
        }
        if let Some(behind) = now.checked_duration_since(self.due() + PACKET_TIME) {
            let periods = behind.as_nanos() / PACKET_TIME.as_nanos() + 1;
            // Any stall this process lives through fits in u32 periods.
            self.cycle += PACKET_TIME * u32::try_from(periods).unwrap_or(u32::MAX / 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_visits_busy_slots_in_order_and_keeps_its_grid() {
        let t0 = Instant::now();
        let busy = |k: usize| k == 3 || k == 17;
        let mut at = Position { cycle: t0, slot: 3 };
        at.advance(busy, t0);
        assert_eq!(at, Position { cycle: t0, slot: 17 }, "empty slots are passed over");
        at.advance(busy, t0);
        assert_eq!(at, Position { cycle: t0 + PACKET_TIME, slot: 3 }, "the next period");
        assert_eq!(at.due(), t0 + PACKET_TIME + 3 * SLOT_TIME);
        at.advance(|_| true, t0 + PACKET_TIME + Duration::from_millis(10));
        assert_eq!(at, Position { cycle: t0 + PACKET_TIME, slot: 4 }, "a late slot keeps its place");
        at.advance(|_| true, t0 + Duration::from_millis(115));
        assert_eq!(
            at,
            Position { cycle: t0 + 5 * PACKET_TIME, slot: 5 },
            "a stall skips whole periods: the slot is due after now, on the same grid"
        );
        assert!(at.due() > t0 + Duration::from_millis(115) - PACKET_TIME);
    }
}
