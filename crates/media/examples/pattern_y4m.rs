//! Writes the test pattern as a Y4M video, for Chromium's
//! `--use-file-for-fake-video-capture`, so a browser sends a picture whose frame counters the
//! native side can read back.
//!
//! `cargo run -p media --example pattern_y4m -- OUT.y4m [WIDTH HEIGHT FRAMES FPS]`

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .ok_or("usage: pattern_y4m OUT.y4m [WIDTH HEIGHT FRAMES FPS]")?;
    let num = |i: usize, default: u32| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (width, height, frames, fps) = (num(2, 320), num(3, 240), num(4, 450), num(5, 30));
    let pattern = media::TestPattern::new(width, height, fps);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(
        file,
        "YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg"
    )?;
    for counter in 0..frames {
        let frame = pattern.render(counter, u64::from(counter) * 1_000_000 / u64::from(fps))?;
        file.write_all(b"FRAME\n")?;
        file.write_all(frame.y())?;
        file.write_all(frame.u())?;
        file.write_all(frame.v())?;
    }
    file.flush()?;
    Ok(())
}
