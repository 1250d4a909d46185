//! [`Pace`]: when a playout loop plays its next 20 ms slot into an [`AudioSink`]. The sink's
//! device leads ([`AudioSink::demand`]); the wall clock, one slot per 20 ms, only paces sinks
//! without a device clock or a device that stopped asking. A slot played on the device's demand
//! moves the clock along, so switching between the two never plays a burst. The decision
//! ([`Pace::next`]) is pure; [`Pace::step`] carries it out against a sink.

use std::time::{Duration, Instant};

use super::{AudioSink, Demand};

/// Longest one [`Pace::step`] waits (for the device, or for the clock), so the loop sees a
/// stop, a device switch or a device event within it.
pub const PACE_SLICE: Duration = Duration::from_millis(10);
/// One playout slot.
const SLOT: Duration = Duration::from_millis(20);
/// A clock this far behind (suspend, debugger) is set to now instead of catching up.
const CLOCK_RESYNC: Duration = Duration::from_millis(200);

/// What the playout loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Play one slot now.
    Play,
    /// The device has enough queued: wait until it takes some.
    WaitForDevice,
    /// Clock-paced: nothing to do for this long.
    Sleep(Duration),
}

/// See the module documentation.
#[derive(Debug)]
pub struct Pace {
    /// When the clock allows the next slot.
    next_tick: Instant,
}

impl Pace {
    #[must_use]
    pub fn new(now: Instant) -> Self {
        Self { next_tick: now }
    }

    /// What to do at `now`, given the sink's `demand`.
    pub fn next(&mut self, demand: Demand, now: Instant) -> Step {
        match demand {
            Demand::Now => {
                self.next_tick = now + SLOT;
                Step::Play
            }
            Demand::Later => Step::WaitForDevice,
            Demand::Clock => {
                if self.next_tick > now {
                    return Step::Sleep((self.next_tick - now).min(PACE_SLICE));
                }
                if now - self.next_tick > CLOCK_RESYNC {
                    self.next_tick = now;
                }
                self.next_tick += SLOT;
                Step::Play
            }
        }
    }

    /// Asks `sink` and either returns at once with what granted a slot ([`Demand::Now`]: the
    /// device, [`Demand::Clock`]: the wall clock), or waits at most [`PACE_SLICE`] and returns
    /// `None` (call again).
    pub fn step(&mut self, sink: &(impl AudioSink + ?Sized)) -> Option<Demand> {
        let demand = sink.demand();
        match self.next(demand, Instant::now()) {
            Step::Play => Some(demand),
            Step::WaitForDevice => {
                sink.wait_for_device(PACE_SLICE);
                None
            }
            Step::Sleep(d) => {
                std::thread::sleep(d);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_leads_and_the_clock_takes_over_only_without_it() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut pace = Pace::new(t0);
        // A device that wants audio gets a slot at once, as often as it asks.
        assert_eq!(pace.next(Demand::Now, ms(0)), Step::Play);
        assert_eq!(pace.next(Demand::Now, ms(1)), Step::Play);
        assert_eq!(pace.next(Demand::Later, ms(2)), Step::WaitForDevice);
        // It stops asking (stalled): the clock goes on from the last slot, 20 ms later, not
        // with a burst for the time the device was followed.
        assert_eq!(
            pace.next(Demand::Clock, ms(5)),
            Step::Sleep(PACE_SLICE),
            "next slot at 21 ms"
        );
        assert_eq!(
            pace.next(Demand::Clock, ms(15)),
            Step::Sleep(Duration::from_millis(6))
        );
        assert_eq!(pace.next(Demand::Clock, ms(21)), Step::Play);
        assert_eq!(pace.next(Demand::Clock, ms(22)), Step::Sleep(PACE_SLICE));
        assert_eq!(pace.next(Demand::Clock, ms(41)), Step::Play);
        // Late by less than the resync bound: catches up one slot at a time.
        assert_eq!(pace.next(Demand::Clock, ms(100)), Step::Play);
        assert_eq!(pace.next(Demand::Clock, ms(100)), Step::Play);
        assert_eq!(
            pace.next(Demand::Clock, ms(100)),
            Step::Sleep(Duration::from_millis(1))
        );
        // Far behind (a suspend): one slot now, then the normal pace, no burst of 50.
        assert_eq!(pace.next(Demand::Clock, ms(1_200)), Step::Play);
        assert_eq!(pace.next(Demand::Clock, ms(1_201)), Step::Sleep(PACE_SLICE));
        assert_eq!(pace.next(Demand::Clock, ms(1_220)), Step::Play);
    }
}
