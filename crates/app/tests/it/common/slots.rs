//! How many real calls the app's tests run at once.
//!
//! A test that runs real calls (lab calls, loopback calls, browsers) takes a [`Slot`] first.
//! One duet ↔ duet call, both encoders and decoders, with the lab around it, keeps this 2-core
//! machine about 20 % busy, and most of a lab test is waiting on the call's seconds, not
//! computing; so three run side by side (`DUET_TEST_CALLS`, default 3; 1 is one at a time).
//! A call with a browser (Chromium or Firefox beside a `duet call`) keeps it up to 44 % busy
//! and counts as one and a half ([`browser_call_slot`]): two of them run together, or one
//! beside a duet ↔ duet call, never two beside a third call. (With three of any kind at once,
//! a clean CI run saw duet's picture come back up more slowly than the browser step test
//! allows.) Measured: docs/benchmarks.md, "Build and test times".
//! A test that measures something shared by the whole machine (the one sound server, say)
//! takes [`whole_machine`]: it waits for the running calls and keeps new ones out.
//! Waiting is first come, first served, so such a test is not starved. (Letting a call go
//! ahead of a waiting browser call that did not fit yet, with eight test threads, finished
//! the binary no sooner: 273 s against 271 s.)

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Calls that may run at once unless `DUET_TEST_CALLS` says otherwise.
const DEFAULT_CALLS: usize = 3;
/// Shares of the capacity: a duet ↔ duet call takes two per call allowed, a browser call
/// three.
const CALL_SHARES: usize = 2;
const BROWSER_CALL_SHARES: usize = 3;

/// A counting semaphore with first-come-first-served waiting; one instance, [`SLOTS`], is
/// shared by the tests of this binary.
pub struct Slots {
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    /// Shares taken by running tests.
    taken: usize,
    /// Tickets of waiting tests, in arrival order.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

static SLOTS: Slots = Slots::new();

/// How many duet ↔ duet calls may run at once: `DUET_TEST_CALLS` (1 to 8), else 3.
pub fn calls() -> usize {
    match std::env::var("DUET_TEST_CALLS") {
        Err(_) => DEFAULT_CALLS,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n @ 1..=8) => n,
            _ => panic!("DUET_TEST_CALLS must be a number from 1 to 8, not {text:?}"),
        },
    }
}

/// The capacity in shares.
fn capacity() -> usize {
    calls() * CALL_SHARES
}

/// Held while a test runs its calls; gives its slots back when dropped (a failing test too).
#[must_use = "the slots are given back when this is dropped"]
pub struct Slot<'a> {
    slots: &'a Slots,
    weight: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.lock().taken -= self.weight;
        self.slots.freed.notify_all();
    }
}

impl Slots {
    pub const fn new() -> Self {
        Slots {
            state: Mutex::new(State {
                taken: 0,
                queue: VecDeque::new(),
                next_ticket: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for its turn and for `weight` of `capacity` shares to be free, then takes them.
    pub fn take(&self, weight: usize, capacity: usize) -> Slot<'_> {
        assert!(
            (1..=capacity).contains(&weight),
            "{weight} of {capacity} shares"
        );
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(ticket);
        while state.queue.front() != Some(&ticket) || state.taken + weight > capacity {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.queue.pop_front();
        state.taken += weight;
        // The next in line may fit too.
        self.freed.notify_all();
        Slot {
            slots: self,
            weight,
        }
    }
}

/// One duet ↔ duet call's slot (see the module documentation).
pub fn call_slot() -> Slot<'static> {
    SLOTS.take(CALL_SHARES, capacity())
}

/// One browser call's slot: one and a half calls' (with `DUET_TEST_CALLS=1`, the one slot).
pub fn browser_call_slot() -> Slot<'static> {
    let capacity = capacity();
    SLOTS.take(BROWSER_CALL_SHARES.min(capacity), capacity)
}

/// Every slot: no other test's calls run until this is dropped.
pub fn whole_machine() -> Slot<'static> {
    let capacity = capacity();
    SLOTS.take(capacity, capacity)
}

#[cfg(test)]
mod tests {
    use super::{BROWSER_CALL_SHARES, CALL_SHARES, Slots};
    use std::sync::mpsc;
    use std::time::Duration;

    /// How long a test watches for something that must not happen.
    const QUIET: Duration = Duration::from_millis(300);
    const DEADLINE: Duration = Duration::from_secs(10);

    /// Takes `weight` of 2 shares on a new thread, holds them until told, and says when it has
    /// them.
    fn taker(slots: &'static Slots, weight: usize) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        taker_of(slots, weight, 2)
    }

    /// Takes `weight` of `capacity` shares on a new thread, as [`taker`].
    fn taker_of(
        slots: &'static Slots,
        weight: usize,
        capacity: usize,
    ) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (got_tx, got) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _slot = slots.take(weight, capacity);
            got_tx.send(()).expect("test listens");
            let _ = release_rx.recv();
        });
        (got, release)
    }

    #[test]
    fn two_calls_run_together_and_a_third_waits_for_one_to_end() {
        static SLOTS: Slots = Slots::new();
        let (first, end_first) = taker(&SLOTS, 1);
        let (second, _end_second) = taker(&SLOTS, 1);
        first.recv_timeout(DEADLINE).expect("first call runs");
        second
            .recv_timeout(DEADLINE)
            .expect("second call runs beside it");
        let (third, _end_third) = taker(&SLOTS, 1);
        assert!(third.recv_timeout(QUIET).is_err(), "a third call waits");
        end_first.send(()).expect("first is running");
        third
            .recv_timeout(DEADLINE)
            .expect("the third runs once one ends");
    }

    #[test]
    fn the_whole_machine_waits_for_running_calls_and_keeps_later_ones_out() {
        static SLOTS: Slots = Slots::new();
        let (call, end_call) = taker(&SLOTS, 1);
        call.recv_timeout(DEADLINE).expect("a call runs");
        let (whole, end_whole) = taker(&SLOTS, 2);
        assert!(
            whole.recv_timeout(QUIET).is_err(),
            "waits for the running call"
        );
        // Arrives later: waits its turn although one slot is free.
        let (later, _end_later) = taker(&SLOTS, 1);
        assert!(later.recv_timeout(QUIET).is_err(), "no overtaking");
        end_call.send(()).expect("the call is running");
        whole
            .recv_timeout(DEADLINE)
            .expect("the whole machine once the call ends");
        assert!(
            later.recv_timeout(QUIET).is_err(),
            "nothing beside the whole machine"
        );
        end_whole.send(()).expect("it is running");
        later
            .recv_timeout(DEADLINE)
            .expect("the later call runs after it");
    }

    #[test]
    fn a_browser_call_runs_beside_one_call_and_a_second_call_waits() {
        static SLOTS: Slots = Slots::new();
        let capacity = 3 * CALL_SHARES;
        let (browser, end_browser) = taker_of(&SLOTS, BROWSER_CALL_SHARES, capacity);
        browser
            .recv_timeout(DEADLINE)
            .expect("the browser call runs");
        let (call, _end_call) = taker_of(&SLOTS, CALL_SHARES, capacity);
        call.recv_timeout(DEADLINE).expect("a call runs beside it");
        let (second, _end_second) = taker_of(&SLOTS, CALL_SHARES, capacity);
        assert!(
            second.recv_timeout(QUIET).is_err(),
            "a second call waits beside a browser call and a call"
        );
        end_browser.send(()).expect("the browser call is running");
        second
            .recv_timeout(DEADLINE)
            .expect("the second call runs once the browser call ends");
    }

    #[test]
    fn two_browser_calls_run_together_and_nothing_beside_them() {
        static SLOTS: Slots = Slots::new();
        let capacity = 3 * CALL_SHARES;
        let (first, end_first) = taker_of(&SLOTS, BROWSER_CALL_SHARES, capacity);
        let (second, _end_second) = taker_of(&SLOTS, BROWSER_CALL_SHARES, capacity);
        first.recv_timeout(DEADLINE).expect("a browser call runs");
        second
            .recv_timeout(DEADLINE)
            .expect("a second browser call runs beside it");
        let (call, _end_call) = taker_of(&SLOTS, CALL_SHARES, capacity);
        assert!(
            call.recv_timeout(QUIET).is_err(),
            "a call waits beside two browser calls"
        );
        end_first.send(()).expect("the first is running");
        call.recv_timeout(DEADLINE)
            .expect("the call runs once a browser call ends");
    }
}
