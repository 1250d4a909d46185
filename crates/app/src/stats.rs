//! The stats overlay: the latest numbers and small live plots of the last minute (bitrate,
//! frame rate, round-trip time, loss).

use std::collections::VecDeque;

use call::CallStats;
use egui_plot::{Line, Plot, PlotPoints};

/// How many one-second samples the plots keep.
pub const HISTORY_LEN: usize = 60;

/// The last minute of stats.
#[derive(Debug, Default)]
pub struct StatsHistory {
    samples: VecDeque<CallStats>,
}

impl StatsHistory {
    /// Adds the newest snapshot, forgetting the oldest beyond [`HISTORY_LEN`].
    pub fn push(&mut self, stats: CallStats) {
        if self.samples.len() == HISTORY_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(stats);
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&CallStats> {
        self.samples.back()
    }

    fn series(&self, value: impl Fn(&CallStats) -> Option<f64>) -> PlotPoints<'static> {
        self.samples
            .iter()
            .filter_map(|s| value(s).map(|v| [s.elapsed_s, v]))
            .collect::<Vec<_>>()
            .into()
    }

    /// Draws the overlay's content.
    pub fn ui(&self, ui: &mut egui::Ui) {
        let Some(s) = self.latest() else {
            ui.label("No numbers yet.");
            return;
        };
        egui::Grid::new("stats-numbers")
            .num_columns(2)
            .spacing([12.0, 2.0])
            .show(ui, |ui| {
                let mut row = |name: &str, value: String| {
                    ui.label(name);
                    ui.monospace(value);
                    ui.end_row();
                };
                row(
                    "Sending",
                    format!(
                        "{}×{} {:.0} fps {:.0} kbit/s",
                        s.send_resolution.0,
                        s.send_resolution.1,
                        s.send_fps,
                        s.send_video_bps / 1000.0
                    ),
                );
                row(
                    "Receiving",
                    format!(
                        "{}×{} {:.0} fps {:.0} kbit/s",
                        s.recv_resolution.0,
                        s.recv_resolution.1,
                        s.recv_fps,
                        s.recv_video_bps / 1000.0
                    ),
                );
                row(
                    "Round trip",
                    s.rtt_ms.map_or("–".into(), |v| format!("{v:.1} ms")),
                );
                row(
                    "Loss / jitter",
                    format!("{:.1} % / {:.1} ms", s.loss_percent, s.jitter_ms),
                );
                row(
                    "Target / rung",
                    format!(
                        "{:.0} kbit/s / {}",
                        s.target_bitrate_bps / 1000.0,
                        rung_name(s.video_rung, s.video_fps_halved)
                    ),
                );
                row(
                    "Video packets",
                    format!(
                        "{} lost, {} recovered",
                        s.video_packets_lost.max(0),
                        s.video_packets_recovered
                    ),
                );
                row(
                    "Frames",
                    format!(
                        "{} lost, {} concealed, {} PLIs sent",
                        s.video_frames_lost, s.video_frames_concealed, s.plis_sent
                    ),
                );
                row(
                    "Freezes",
                    format!(
                        "{} ({:.1} s in all, longest {:.1} s)",
                        s.freeze_count,
                        s.freeze_total_ms / 1000.0,
                        s.freeze_longest_ms / 1000.0
                    ),
                );
                row(
                    "Audio buffer",
                    format!(
                        "{:.0} ms (target {:.0} ms)",
                        s.audio_jitter_delay_ms, s.audio_jitter_target_ms
                    ),
                );
                row(
                    "Encode / decode",
                    format!("{:.1} ms / {:.1} ms", s.encode_ms, s.decode_ms),
                );
                if !s.codecs.is_empty() {
                    row("Codecs", s.codecs.clone());
                }
            });
        ui.add_space(4.0);
        let plot = |ui: &mut egui::Ui, id: &str, title: &str, lines: Vec<Line<'static>>| {
            ui.small(title);
            Plot::new(id)
                .height(48.0)
                .width(260.0)
                .show_axes([false, true])
                .y_axis_min_width(28.0)
                .include_y(0.0)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .allow_boxed_zoom(false)
                .show(ui, |plot_ui| {
                    for line in lines {
                        plot_ui.line(line);
                    }
                });
        };
        plot(
            ui,
            "plot-bitrate",
            "Bitrate (kbit/s): sent, received",
            vec![
                Line::new("sent", self.series(|s| Some(s.send_video_bps / 1000.0))),
                Line::new("received", self.series(|s| Some(s.recv_video_bps / 1000.0))),
            ],
        );
        plot(
            ui,
            "plot-fps",
            "Frames per second: sent, received",
            vec![
                Line::new("sent", self.series(|s| Some(s.send_fps))),
                Line::new("received", self.series(|s| Some(s.recv_fps))),
            ],
        );
        plot(
            ui,
            "plot-rtt",
            "Round trip (ms)",
            vec![Line::new("rtt", self.series(|s| s.rtt_ms))],
        );
        plot(
            ui,
            "plot-loss",
            "Packet loss (%)",
            vec![Line::new("loss", self.series(|s| Some(s.loss_percent)))],
        );
    }
}

/// The sender's ladder rung as a user reads it: each rung halves the configured size, and
/// the last one (with `fps_halved`) keeps the size of the one before and halves the frame rate.
fn rung_name(rung: u64, fps_halved: bool) -> String {
    let halvings = if fps_halved {
        rung.saturating_sub(1)
    } else {
        rung
    };
    let size = match halvings {
        0 => "full size".into(),
        1 => "half size".into(),
        n => format!("1/{} size", 1u64 << n.min(16)),
    };
    if fps_halved {
        format!("{size}, half frame rate")
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_read_as_sizes() {
        assert_eq!(rung_name(0, false), "full size");
        assert_eq!(rung_name(1, false), "half size");
        assert_eq!(rung_name(2, false), "1/4 size");
        assert_eq!(rung_name(3, true), "1/4 size, half frame rate");
        assert_eq!(rung_name(1, true), "full size, half frame rate");
        assert_eq!(rung_name(u64::MAX, false), "1/65536 size");
    }

    #[test]
    fn keeps_one_minute() {
        let mut h = StatsHistory::default();
        for i in 0..100 {
            h.push(CallStats {
                elapsed_s: f64::from(i),
                ..CallStats::default()
            });
        }
        assert_eq!(h.samples.len(), HISTORY_LEN);
        assert_eq!(h.latest().map(|s| s.elapsed_s), Some(99.0));
    }
}
