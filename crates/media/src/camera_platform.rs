//! What the platform camera APIs need before nokhwa may use them, read from nokhwa 0.10.11's
//! sources (this machine has neither platform, so it is compiled and reviewed, not run here):
//!
//! - **macOS** (AVFoundation): `nokhwa_initialize` must be called first; it asks the user for
//!   camera access and answers through a callback. Without it the first query fails or finds
//!   nothing. [`prepare`] asks once (or sees access already granted) and waits for the answer;
//!   a refusal becomes a clear error pointing at System Settings.
//! - **Windows** (Media Foundation): nokhwa's `initialize_mf` calls `CoInitializeEx` only the
//!   first time in the process (a global flag), on whichever thread gets there first, but COM
//!   is initialised per thread: the device scan ran on one thread and the camera was opened on
//!   another, which Media Foundation then used without COM. [`prepare`] initialises COM on the
//!   calling thread in the mode nokhwa uses (apartment-threaded, OLE1 DDE off), so every thread
//!   that touches nokhwa has it. It is not uninitialised: nokhwa itself calls `CoUninitialize`
//!   when its last camera closes, so the counts would not match; the thread's apartment goes
//!   with the thread.
//! - **Linux** (V4L2): nothing is needed.

use crate::Error;

/// How long the macOS permission prompt may stay unanswered.
#[cfg(any(target_os = "macos", target_os = "ios"))]
const PERMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Makes nokhwa usable on the calling thread; call it before any nokhwa call on a thread.
///
/// # Errors
/// [`Error::Camera`] when camera access is refused (macOS) or COM cannot start (Windows).
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn prepare() -> Result<(), Error> {
    if nokhwa::nokhwa_check() {
        return Ok(());
    }
    let (tx, rx) = crossbeam_channel::bounded::<bool>(1);
    nokhwa::nokhwa_initialize(move |granted| {
        let _ = tx.try_send(granted);
    });
    let refused = |reason: &str| Error::Camera {
        index: 0,
        reason: reason.to_owned(),
    };
    match rx.recv_timeout(PERMISSION_WAIT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused(
            "camera access is not allowed for duet: turn it on in System Settings → \
             Privacy & Security → Camera",
        )),
        Err(_) => Err(refused("the camera permission prompt was not answered")),
    }
}

/// Makes nokhwa usable on the calling thread; call it before any nokhwa call on a thread.
///
/// # Errors
/// [`Error::Camera`] when camera access is refused (macOS) or COM cannot start (Windows).
#[cfg(target_os = "windows")]
#[allow(unsafe_code)]
pub fn prepare() -> Result<(), Error> {
    use windows::Win32::System::Com::{
        COINIT_APARTMENTTHREADED, COINIT_DISABLE_OLE1DDE, CoInitializeEx,
    };
    // SAFETY: CoInitializeEx has no memory-safety preconditions (the reserved pointer must be
    // null, which `None` gives). S_OK and S_FALSE (already initialised on this thread in the
    // same mode) are both success; RPC_E_CHANGED_MODE (another mode) is reported.
    let result = unsafe { CoInitializeEx(None, COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE) };
    result.ok().map_err(|e| Error::Camera {
        index: 0,
        reason: format!("COM cannot start on this thread: {e}"),
    })
}

/// Makes nokhwa usable on the calling thread: nothing to do on this platform.
///
/// # Errors
/// Never here; on macOS and Windows see their versions.
#[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "windows")))]
#[allow(clippy::unnecessary_wraps)]
pub fn prepare() -> Result<(), Error> {
    Ok(())
}
