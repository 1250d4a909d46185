//! A source whose consumer does not keep up drops its oldest frames (and counts them) instead of
//! queueing: the channel never holds more than its capacity and what is left is the newest.

use std::time::Duration;

use media::{AudioSource, Silence, TestPattern, VideoSource, read_pattern_stamp};

#[test]
fn slow_video_consumer_gets_the_newest_frames_and_a_drop_count() {
    let capture = TestPattern::new(64, 48, 200).start(3).expect("start");
    // Wait until the source has produced well over the capacity, without consuming.
    while capture.stats().sent() < 30 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        capture.receiver().len() <= 3,
        "bounded: {}",
        capture.receiver().len()
    );
    assert!(capture.stats().dropped() >= 20, "{:?}", capture.stats());
    let sent_before = capture.stats().sent();
    let first = capture
        .recv_timeout(Duration::from_secs(1))
        .expect("a queued frame");
    let counter = read_pattern_stamp(&first).expect("stamp").counter;
    assert!(
        u64::from(counter) + 4 >= sent_before,
        "oldest queued frame {counter} is not among the newest of {sent_before}"
    );
    // Consuming again, frames keep coming in order.
    let next = capture.recv_timeout(Duration::from_secs(1)).expect("frame");
    assert!(read_pattern_stamp(&next).expect("stamp").counter > counter);
    assert!(!capture.is_finished());
    capture.stop().expect("clean stop");
}

#[test]
fn slow_audio_consumer_also_drops_instead_of_queueing() {
    let capture = Silence { channels: 2 }.start(2).expect("start");
    while capture.stats().dropped() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(capture.receiver().len() <= 2);
    let frame = capture
        .recv_timeout(Duration::from_secs(1))
        .expect("a frame");
    assert_eq!(frame.channels(), 2);
    assert_eq!(frame.samples().len(), 2 * media::SAMPLES_PER_FRAME);
    drop(capture); // stops and joins the thread
}
