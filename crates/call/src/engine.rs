//! The engine handle: runs a call session on its own thread and tokio runtime, so a UI thread
//! only ever does non-blocking things with it — send a command, drain events, read the newest
//! frames.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tokio::sync::mpsc;

use crate::config::CallConfig;
use crate::error::CallError;
use crate::events::{CallState, Command, Event, FrameSlot};
use crate::media_io::Waker;
use crate::session::{self, SessionIo};

/// A running call. Dropping it hangs up and waits for the engine thread.
pub struct Engine {
    commands: mpsc::Sender<Command>,
    events: Receiver<Event>,
    local: Arc<FrameSlot>,
    remote: Arc<FrameSlot>,
    thread: Option<JoinHandle<CallState>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts a call. `wake` is called whenever there is something new to show (events or
    /// frames); a UI passes its `request_repaint`.
    pub fn start(config: CallConfig, wake: Option<Waker>) -> Result<Self, CallError> {
        let (command_tx, command_rx) = mpsc::channel(64);
        let (event_tx, event_rx) = crossbeam_channel::bounded(1024);
        let local = Arc::new(FrameSlot::default());
        let remote = Arc::new(FrameSlot::default());
        let wake = wake.unwrap_or_else(|| Arc::new(|| {}));
        let io = SessionIo {
            events: event_tx,
            commands: command_rx,
            local: local.clone(),
            remote: remote.clone(),
            wake,
            backlog: Default::default(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("duet-rt")
            .enable_all()
            .build()
            .map_err(|e| CallError::Engine(std::sync::Arc::new(e)))?;
        let thread = std::thread::Builder::new()
            .name("duet-engine".into())
            .spawn(move || {
                let state = runtime.block_on(session::run(config, io));
                // Tasks of the closed peer connection may linger briefly; don't wait for them.
                runtime.shutdown_timeout(std::time::Duration::from_secs(2));
                state
            })
            .map_err(|e| CallError::Engine(std::sync::Arc::new(e)))?;
        Ok(Self {
            commands: command_tx,
            events: event_rx,
            local,
            remote,
            thread: Some(thread),
        })
    }

    /// Sends a command; `false` if the engine has already ended or is flooded.
    pub fn command(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// Events, to drain with `try_recv` (UI) or `recv_timeout` (headless).
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// The newest local preview frame.
    pub fn local_frames(&self) -> &Arc<FrameSlot> {
        &self.local
    }

    /// The newest remote frame.
    pub fn remote_frames(&self) -> &Arc<FrameSlot> {
        &self.remote
    }

    /// Whether the engine thread has ended (after hang-up or failure).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Hangs up and waits for the engine to finish; returns its final state.
    pub fn hang_up(mut self) -> CallState {
        self.finish()
    }

    fn finish(&mut self) -> CallState {
        // Dropping the command sender also hangs up (the session reads a closed channel as
        // hang-up), and cannot fail the way a send into a full queue can.
        let _ = self.commands.try_send(Command::HangUp);
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.commands, closed));
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| CallState::Failed("the engine thread panicked".into())),
            None => CallState::Ended,
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.finish();
    }
}
