//! The decoder thread: [`DecodeWorker`] (access units in → frames out) on a named OS thread
//! between bounded channels. (The encoder runs on the call's video-send thread, which owns the
//! rate and keyframe decisions, so it needs no worker of its own.)
//!
//! Dropping policy: the decoder's output keeps only the newest frames; if its input is full
//! the access unit is dropped, counted, and the decoder waits for a keyframe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::{Error, VideoCodec, VideoDecoder, VideoFrame};

const POLL: Duration = Duration::from_millis(100);

/// Counters of a [`DecodeWorker`].
#[derive(Debug, Default)]
pub struct WorkerStats {
    processed: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    concealed: AtomicU64,
}

impl WorkerStats {
    /// Access units decoded.
    #[must_use]
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    /// Access units or frames dropped because a consumer was slow.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Codec errors (each logged at debug level).
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Of the pictures decoded, those concealed: built on a lost or broken reference while
    /// the decoder waited for a keyframe.
    #[must_use]
    pub fn concealed(&self) -> u64 {
        self.concealed.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Error>>>,
    name: &'static str,
}

impl Worker {
    fn spawn(
        name: &'static str,
        body: impl FnOnce(Arc<AtomicBool>) -> Result<(), Error> + Send + 'static,
    ) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(flag))
            .map_err(|source| Error::Thread {
                name: name.into(),
                source,
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            name,
        })
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::ThreadPanicked(self.name.into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(worker = self.name, %error, "codec worker ended with an error");
        }
    }
}

/// Video decoding (any [`VideoCodec`]) on the `duet-video-dec` thread.
pub struct DecodeWorker {
    input: Sender<Vec<u8>>,
    output: Receiver<VideoFrame>,
    needs_keyframe: Arc<AtomicBool>,
    loss: Arc<AtomicBool>,
    stats: Arc<WorkerStats>,
    worker: Worker,
}

impl std::fmt::Debug for DecodeWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeWorker")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DecodeWorker {
    /// Starts a `codec` decoder thread with room for `capacity` access units in and
    /// `capacity` frames out.
    ///
    /// # Errors
    /// [`Error::Decoder`] if the codec fails to initialise, [`Error::Thread`] if the thread
    /// cannot start.
    pub fn spawn(codec: VideoCodec, capacity: usize) -> Result<Self, Error> {
        let mut decoder = VideoDecoder::new(codec)?;
        let capacity = capacity.max(1);
        let (input, input_rx) = bounded::<Vec<u8>>(capacity);
        let (out_tx, output) = bounded::<VideoFrame>(capacity);
        let evict = output.clone();
        let needs_keyframe = Arc::new(AtomicBool::new(true));
        let loss = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WorkerStats::default());
        let (nk, lost, counters) = (
            Arc::clone(&needs_keyframe),
            Arc::clone(&loss),
            Arc::clone(&stats),
        );
        let worker = Worker::spawn("duet-video-dec", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                let au = match input_rx.recv_timeout(POLL) {
                    Ok(au) => au,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
                };
                if lost.swap(false, Ordering::Relaxed) {
                    decoder.report_loss();
                }
                match decoder.decode(&au) {
                    Ok(Some(frame)) => {
                        WorkerStats::add(&counters.processed);
                        if let Err(TrySendError::Full(frame)) = out_tx.try_send(frame) {
                            if evict.try_recv().is_ok() {
                                WorkerStats::add(&counters.dropped);
                            }
                            if out_tx.try_send(frame).is_err() {
                                WorkerStats::add(&counters.dropped);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        WorkerStats::add(&counters.errors);
                        tracing::debug!(%error, %codec, "decode error; waiting for a keyframe");
                    }
                }
                nk.store(decoder.needs_keyframe(), Ordering::Relaxed);
                counters
                    .concealed
                    .store(decoder.concealed_frames(), Ordering::Relaxed);
            }
            Ok(())
        })?;
        Ok(Self {
            input,
            output,
            needs_keyframe,
            loss,
            stats,
            worker,
        })
    }

    /// Queues an access unit. If the queue is full it is dropped (returns `false`), counted, and
    /// the decoder asks for the next keyframe (concealing meanwhile, for H.264).
    pub fn push(&self, access_unit: Vec<u8>) -> bool {
        match self.input.try_send(access_unit) {
            Ok(()) => true,
            Err(_) => {
                WorkerStats::add(&self.stats.dropped);
                self.report_loss();
                false
            }
        }
    }

    /// Tells the decoder that data was lost upstream (RTP gap): it asks for the next keyframe,
    /// concealing the loss until then (H.264) or showing nothing (VP8).
    pub fn report_loss(&self) {
        self.loss.store(true, Ordering::Relaxed);
        self.needs_keyframe.store(true, Ordering::Relaxed);
    }

    /// True while the decoder cannot show new pictures without a keyframe: send PLI.
    #[must_use]
    pub fn needs_keyframe(&self) -> bool {
        self.needs_keyframe.load(Ordering::Relaxed)
    }

    /// Decoded frames (only the newest few are kept).
    #[must_use]
    pub fn output(&self) -> &Receiver<VideoFrame> {
        &self.output
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Stops the thread.
    ///
    /// # Errors
    /// Only if the thread panicked.
    pub fn stop(mut self) -> Result<(), Error> {
        self.worker.shutdown()
    }
}
