//! The session's side of the owner's channels: events out (stats may be dropped, states and
//! warnings never are), commands in, the two frame slots and the waker.

use super::*;

/// How long an important event (a state change, a warning) may wait for room in a full event
/// channel before it is dropped; stats are dropped at once instead.
const EVENT_WAIT: Duration = Duration::from_millis(250);

/// What the session needs from its owner.
pub struct SessionIo {
    /// Events out (bounded; a full channel drops stats, never blocks).
    pub events: crossbeam_channel::Sender<Event>,
    /// Commands in.
    pub commands: mpsc::Receiver<Command>,
    /// Latest local preview frame.
    pub local: Arc<FrameSlot>,
    /// Latest remote frame.
    pub remote: Arc<FrameSlot>,
    /// Wakes the display.
    pub wake: Waker,
    /// States and warnings the owner had no room for yet, oldest first; they go out before
    /// anything newer (at most [`BACKLOG_LIMIT`]).
    pub(crate) backlog: Mutex<VecDeque<Event>>,
}

/// The most states and warnings kept for an owner that is behind. Past it the oldest warning
/// goes (a state is never dropped while a warning is there to drop instead).
const BACKLOG_LIMIT: usize = 256;

impl SessionIo {
    /// Stats are dropped when the owner is behind (the next second brings new ones). States and
    /// warnings wait up to [`EVENT_WAIT`] for room, and are then kept in the backlog and sent,
    /// in order, as soon as there is room: a `Failed` is never lost.
    pub(super) fn emit(&self, event: Event) {
        use crossbeam_channel::TrySendError;
        let mut backlog = lock(&self.backlog);
        while let Some(older) = backlog.pop_front() {
            match self.events.try_send(older) {
                Ok(()) => {}
                Err(TrySendError::Full(older)) => {
                    backlog.push_front(older);
                    break;
                }
                // The owner is gone: nobody will read any of it.
                Err(TrySendError::Disconnected(_)) => backlog.clear(),
            }
        }
        match event {
            Event::Stats(_) => {
                if backlog.is_empty() && self.events.try_send(event).is_err() {
                    tracing::debug!("event channel full; stats dropped");
                }
            }
            other if !backlog.is_empty() => backlog.push_back(other),
            other => {
                if let Err(crossbeam_channel::SendTimeoutError::Timeout(other)) =
                    self.events.send_timeout(other, EVENT_WAIT)
                {
                    backlog.push_back(other);
                }
            }
        }
        while backlog.len() > BACKLOG_LIMIT {
            let oldest_warning = backlog.iter().position(|e| matches!(e, Event::Warning(_)));
            backlog.remove(oldest_warning.unwrap_or(0));
        }
        drop(backlog);
        (self.wake)();
    }

    /// At the end of the session: what is still in the backlog, each waiting up to
    /// [`EVENT_WAIT`].
    pub(super) fn flush_backlog(&self) {
        let pending: Vec<Event> = lock(&self.backlog).drain(..).collect();
        for event in pending {
            if self.events.send_timeout(event, EVENT_WAIT).is_err() {
                break;
            }
        }
        (self.wake)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(capacity: usize) -> (SessionIo, crossbeam_channel::Receiver<Event>) {
        let (events, rx) = crossbeam_channel::bounded(capacity);
        let (_commands_tx, commands) = mpsc::channel(1);
        let io = SessionIo {
            events,
            commands,
            local: Arc::default(),
            remote: Arc::default(),
            wake: Arc::new(|| {}),
            backlog: Mutex::default(),
        };
        (io, rx)
    }

    fn important(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::State(s) => Some(format!("{s:?}")),
                Event::Warning(w) => Some(w.clone()),
                Event::Stats(_) => None,
            })
            .collect()
    }

    #[test]
    fn states_and_warnings_wait_for_a_slow_owner_and_are_never_dropped() {
        let (io, rx) = io(1);
        io.emit(Event::State(CallState::Connecting)); // fills the channel
        io.emit(Event::Warning("camera lost".into())); // no room: kept
        io.emit(Event::Stats(Box::default())); // behind important ones: dropped
        io.emit(Event::State(CallState::Failed("ICE failed".into())));
        let mut got = Vec::new();
        for _ in 0..10 {
            if let Ok(e) = rx.recv_timeout(Duration::from_millis(50)) {
                got.push(e);
            }
            io.emit(Event::Stats(Box::default())); // each emit sends what waits, in order
        }
        assert_eq!(
            important(&got),
            ["Connecting", "camera lost", "Failed(\"ICE failed\")"]
        );
    }

    #[test]
    fn the_backlog_is_bounded_and_drops_warnings_before_states() {
        let (io, _rx) = io(1);
        io.emit(Event::State(CallState::Connecting)); // fills the channel; nobody reads
        io.emit(Event::State(CallState::Reconnecting)); // kept
        for i in 0..BACKLOG_LIMIT {
            io.emit(Event::Warning(format!("w{i}")));
        }
        io.emit(Event::State(CallState::Ended));
        let backlog = important(&lock(&io.backlog).iter().cloned().collect::<Vec<_>>());
        assert_eq!(backlog.len(), BACKLOG_LIMIT);
        assert_eq!(backlog.first().map(String::as_str), Some("Reconnecting"));
        assert_eq!(backlog.last().map(String::as_str), Some("Ended"));
        assert!(
            !backlog.iter().any(|w| w == "w0"),
            "the oldest warning went"
        );
    }
}
