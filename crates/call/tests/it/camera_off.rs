//! "Camera off" releases the video source, so a real camera's light goes off and nothing is
//! captured or decoded meanwhile: the engine closes the source (its stats say so), the other
//! side stops receiving pictures of it, and "camera on" opens it again and pictures resume.
use crate::common;

use std::time::Duration;

use call::Command;

#[test]
fn camera_off_closes_the_source_and_camera_on_reopens_it() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let (a, mut sa, b, mut sb, up) = common::two_engines(
        &url,
        "camoff",
        550.0,
        Duration::from_secs(20),
        common::media_flowing(10, 1),
    );
    assert!(up, "the call never came up");
    assert!(
        common::watch(&a, &mut sa, Duration::from_secs(3), |s| s
            .stats
            .video_source_open),
        "the source is open during the call"
    );

    assert!(a.command(Command::SetCameraEnabled(false)));
    assert!(
        common::watch(&a, &mut sa, Duration::from_secs(5), |s| !s
            .stats
            .video_source_open),
        "camera off must close the source: {:?}",
        sa.stats
    );
    // Let what was in flight arrive, then B must see no more of A's pictures.
    assert!(!common::watch(&b, &mut sb, Duration::from_secs(1), |_| {
        false
    }));
    let frozen = sb.stats.pattern_frames;
    assert!(!common::watch(&b, &mut sb, Duration::from_secs(2), |_| {
        false
    }));
    assert!(
        sb.stats.pattern_frames <= frozen + 2,
        "B still receives A's pictures with the camera off: {frozen} then {}",
        sb.stats.pattern_frames
    );

    assert!(a.command(Command::SetCameraEnabled(true)));
    assert!(
        common::watch(&a, &mut sa, Duration::from_secs(5), |s| s
            .stats
            .video_source_open),
        "camera on must open the source again"
    );
    assert!(
        common::watch(&b, &mut sb, Duration::from_secs(10), |s| s
            .stats
            .pattern_frames
            >= frozen + 30),
        "pictures must resume: {} after {frozen}",
        sb.stats.pattern_frames
    );
}
