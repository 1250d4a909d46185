//! Logging refusals without letting a client flood the log.
//!
//! Every refused connection is counted in [`crate::metrics`] by reason; the log gets at most one
//! line per reason per interval, carrying how many were refused since the previous line, and
//! never a client address (those appear only at debug level). Pure: time is passed in.

use std::time::{Duration, Instant};

use crate::metrics::RejectReason;

/// What a refusal (or an accept error) is counted under in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKey {
    /// A connection refused for this reason.
    Refused(RejectReason),
    /// `accept()` itself failed (typically out of file descriptors).
    AcceptFailed,
}

impl LogKey {
    fn index(self) -> usize {
        match self {
            Self::Refused(reason) => reason.index(),
            Self::AcceptFailed => RejectReason::ALL.len(),
        }
    }
}

const KEYS: usize = RejectReason::ALL.len() + 1;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    last_logged: Option<Instant>,
    unlogged: u64,
}

/// Counts refusals per [`LogKey`] and says when a line is due.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    slots: [Slot; KEYS],
}

impl RefusalLog {
    /// At most one line per key per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: [Slot::default(); KEYS],
        }
    }

    /// Records one event; returns the count to log now (this one included) when a line is due.
    pub fn record(&mut self, key: LogKey, now: Instant) -> Option<u64> {
        let slot = &mut self.slots[key.index()];
        slot.unlogged += 1;
        let due = slot
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        if !due {
            return None;
        }
        slot.last_logged = Some(now);
        Some(std::mem::take(&mut slot.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let key = LogKey::Refused(RejectReason::PendingPerIp);
        assert_eq!(log.record(key, t0), Some(1));
        for i in 1..1000 {
            assert_eq!(log.record(key, t0 + Duration::from_millis(i)), None);
        }
        // Other keys have their own interval.
        assert_eq!(log.record(LogKey::AcceptFailed, t0), Some(1));
        assert_eq!(log.record(key, t0 + Duration::from_secs(10)), Some(1000));
        assert_eq!(log.record(key, t0 + Duration::from_secs(11)), None);
    }
}
