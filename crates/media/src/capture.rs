//! Delivery of captured frames: a named OS thread produces, a bounded channel carries, and when
//! the consumer falls behind the *oldest* queued frame is dropped and counted, so the consumer
//! always gets the freshest picture or sound and memory never grows.
//!
//! [`Capture`] is the consumer's handle (stop on drop); `FrameSender` is the producer side used by
//! the sources in this crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::{AudioFrame, Error, VideoFrame};

/// Counters shared between a producer thread and its consumer.
#[derive(Debug, Default)]
pub struct CaptureStats {
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl CaptureStats {
    /// Frames put into the channel (including ones later dropped).
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Frames dropped because the consumer was slow.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

/// A video source: something that, once started, delivers [`VideoFrame`]s from its own thread.
pub trait VideoSource: Send + 'static {
    /// A human-readable name for menus and logs.
    fn name(&self) -> String;

    /// Starts producing frames on a named thread into a channel holding at most `capacity`
    /// frames (at least 1). Errors that can be detected up front (no such camera, bad size) are
    /// returned here; later failures end the stream and are returned by [`Capture::stop`].
    ///
    /// # Errors
    /// Source-specific: see [`TestPattern`](crate::TestPattern) and [`Camera`](crate::Camera).
    fn start(self, capacity: usize) -> Result<Capture<VideoFrame>, Error>
    where
        Self: Sized;
}

/// A running video source.
pub type VideoCapture = Capture<VideoFrame>;
/// A running audio source.
pub type AudioCapture = Capture<AudioFrame>;

/// The consumer side of a running source. Dropping it stops the source and joins its thread.
pub struct Capture<T> {
    rx: Receiver<T>,
    stats: Arc<CaptureStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Error>>>,
    /// Disconnected (or sent to) when the thread's body has returned.
    done: Receiver<()>,
    name: String,
}

/// How long stopping a source waits for its thread. A device that vanished can leave the
/// audio backend blocked in its stream teardown for half a minute (measured with PulseAudio
/// after `unload-module`); past this the thread is left to finish on its own rather than
/// hanging whoever stops it.
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl<T> std::fmt::Debug for Capture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<T> Capture<T> {
    /// The channel frames arrive on; disconnected once the source has ended.
    #[must_use]
    pub fn receiver(&self) -> &Receiver<T> {
        &self.rx
    }

    /// Waits up to `timeout` for the next frame. `None` on timeout or when the source has ended
    /// (check [`Capture::is_finished`] and [`Capture::stop`] for the reason).
    #[must_use]
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Counters: frames sent and frames dropped because this consumer was slow.
    #[must_use]
    pub fn stats(&self) -> &Arc<CaptureStats> {
        &self.stats
    }

    /// True once the producing thread has ended (stopped, device lost, or error).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the source, joins its thread and returns how it ended: `Ok` for a normal stop, the
    /// device error otherwise.
    ///
    /// # Errors
    /// The error that ended the source (for example an unplugged device).
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(handle) = self.thread.take() else {
            return Ok(());
        };
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => handle
                .join()
                .map_err(|_| Error::ThreadPanicked(self.name.clone()))?,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    source = %self.name,
                    "the source did not stop within {STOP_TIMEOUT:?}; left to finish on its own"
                );
                drop(handle);
                Ok(())
            }
        }
    }
}

impl<T> Drop for Capture<T> {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(source = %self.name, %error, "media source ended with an error");
        }
    }
}

/// The producer side: pushes into the bounded channel, evicting the oldest frame when full.
pub(crate) struct FrameSender<T> {
    tx: Sender<T>,
    evict: Receiver<T>,
    stats: Arc<CaptureStats>,
    stop: Arc<AtomicBool>,
}

impl<T> FrameSender<T> {
    /// Queues `item`, dropping the oldest queued item if the consumer is behind. Returns `false`
    /// when the producer should stop (stop requested).
    pub(crate) fn push(&self, item: T) -> bool {
        if self.should_stop() {
            return false;
        }
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(item)) => {
                if self.evict.try_recv().is_ok() {
                    self.stats.add_dropped(1);
                }
                if self.tx.try_send(item).is_err() {
                    self.stats.add_dropped(1);
                }
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// True once the consumer asked the source to stop.
    pub(crate) fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> &Arc<CaptureStats> {
        &self.stats
    }
}

/// Runs `body` on a thread called `name`, handing it the producer side of a fresh channel.
pub(crate) fn spawn_named<T, F>(name: &str, capacity: usize, body: F) -> Result<Capture<T>, Error>
where
    T: Send + 'static,
    F: FnOnce(FrameSender<T>) -> Result<(), Error> + Send + 'static,
{
    let (tx, rx) = bounded(capacity.max(1));
    let stats = Arc::new(CaptureStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sender = FrameSender {
        tx,
        evict: rx.clone(),
        stats: Arc::clone(&stats),
        stop: Arc::clone(&stop),
    };
    let (done_tx, done) = bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = body(sender);
            let _ = done_tx.send(());
            result
        })
        .map_err(|source| Error::Thread {
            name: name.to_owned(),
            source,
        })?;
    Ok(Capture {
        rx,
        stats,
        stop,
        thread: Some(thread),
        done,
        name: name.to_owned(),
    })
}
