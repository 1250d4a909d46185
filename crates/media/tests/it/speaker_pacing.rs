//! The speaker paces the playout: the call's pacing (`media::Pace`) asked before each 20 ms
//! frame plays exactly as fast as a private PulseAudio null sink takes
//! audio, with the queue ahead of it held near `Speaker::lead`; when the sink is suspended
//! (`pactl suspend-sink`: the device stops asking) the wall clock takes over, so the playout
//! does not freeze; when it is resumed the device leads again.
//!
//! Needs a PulseAudio server (see `common::pulse`).

use crate::common::pulse::{PrivateSink, RAN, pactl, with_pulse};

use std::time::{Duration, Instant};

use media::{AudioSink, Demand, Pace, Speaker, Tone};

#[test]
fn the_speaker_paces_the_playout() {
    with_pulse(module_path!(), "the_speaker_paces_the_playout", pacing);
}

/// What a stretch of playout did.
#[derive(Debug, Default)]
struct Stretch {
    /// Frames given on the device's demand.
    by_device: u64,
    /// Frames given by the wall clock (no device demand).
    by_clock: u64,
    /// The most audio seen queued ahead of the device.
    max_queued: Duration,
    /// What the speaker answered last.
    last: Option<Demand>,
}

impl Stretch {
    fn frames(&self) -> u64 {
        self.by_device + self.by_clock
    }

    fn device_share(&self) -> f64 {
        self.by_device as f64 / self.frames().max(1) as f64
    }
}

/// The call's playout loop: a frame whenever `Pace` grants a slot.
struct Playout {
    speaker: Speaker,
    tone: Tone,
    played: u64,
    pace: Pace,
}

impl Playout {
    fn run(&mut self, length: Duration) -> Stretch {
        let end = Instant::now() + length;
        let mut stretch = Stretch::default();
        while Instant::now() < end {
            stretch.max_queued = stretch.max_queued.max(self.speaker.queued());
            let granted = self.pace.step(&self.speaker);
            stretch.last = Some(granted.unwrap_or_else(|| self.speaker.demand()));
            match granted {
                None => continue,
                Some(Demand::Clock) => stretch.by_clock += 1,
                Some(_) => stretch.by_device += 1,
            }
            self.speaker
                .play(&self.tone.frame(self.played, 0))
                .expect("play");
            self.played += 1;
        }
        stretch
    }

    /// Plays until the device has led for a whole second, at most `limit`; returns how long.
    fn until_the_device_leads(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            let second = self.run(Duration::from_secs(1));
            if second.by_clock == 0 && second.by_device > 0 {
                return start.elapsed();
            }
        }
        panic!("the device did not lead within {limit:?}");
    }
}

fn pacing() {
    let sink = PrivateSink::load("pacing", &[]);
    let speaker = Speaker::open(Some(&sink.description)).expect("speaker");
    let stats = speaker.stats();
    let mut playout = Playout {
        speaker,
        tone: Tone::new(440.0),
        played: 0,
        pace: Pace::new(Instant::now()),
    };
    // A fresh null sink asks for nothing for about 2 s (it plays out what it rendered ahead).
    let warmed_in = playout.until_the_device_leads(Duration::from_secs(8));
    let lead = playout.speaker.lead();

    let dropped = stats.dropped();
    let steady = playout.run(Duration::from_secs(3));
    eprintln!("warm-up {warmed_in:?}; lead {lead:?}; steady: {steady:?}");
    assert!(
        steady.device_share() > 0.9,
        "the device paced {:.0} % of the frames",
        steady.device_share() * 100.0
    );
    // It takes audio at its own rate (50 frames a second) and no faster or slower.
    assert!(
        (135..=165).contains(&steady.frames()),
        "{} frames in 3 s",
        steady.frames()
    );
    assert!(
        steady.max_queued <= lead + Duration::from_millis(25),
        "queued up to {:?} with a lead of {lead:?}",
        steady.max_queued
    );
    assert_eq!(stats.dropped(), dropped, "frames dropped at a full queue");

    pactl(&["suspend-sink", &sink.name, "1"]).expect("suspend the sink");
    let _settle = playout.run(Duration::from_millis(500));
    let suspended = playout.run(Duration::from_secs(2));
    eprintln!("suspended: {suspended:?}");
    assert_eq!(
        suspended.last,
        Some(Demand::Clock),
        "a silent device still leads"
    );
    assert!(
        (85..=115).contains(&suspended.by_clock),
        "the clock gave {} frames in 2 s",
        suspended.by_clock
    );

    pactl(&["suspend-sink", &sink.name, "0"]).expect("resume the sink");
    let back_in = playout.until_the_device_leads(Duration::from_secs(8));
    let resumed = playout.run(Duration::from_secs(2));
    eprintln!("resumed after {back_in:?}: {resumed:?}");
    assert!(resumed.device_share() > 0.9, "{resumed:?}");
    assert!(resumed.max_queued <= playout.speaker.lead() + Duration::from_millis(25));
    println!(
        "{RAN} device-paced playout: {} frames in 3 s steady, {} by the clock while suspended",
        steady.frames(),
        suspended.by_clock
    );
}
