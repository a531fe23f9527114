//! The video floor. Video pauses only once the link has lost packets. Without loss
//! a low estimate comes from the delay signal alone, which a busy receiver's timing
//! or jitter can drive far below what the link carries (and which then stays low,
//! since a paused link sends little to measure): there the lowest layers keep
//! flowing, and loss, if the link really is that thin, soon shows it. After such
//! loss (above [`AdaptConfig::video_floor_max_loss`]) the floor stays off until the
//! relay has resumed every track by the estimate itself, so a collapsed link is not
//! overfilled again and again (the voice shares it).

use crate::adapt::AdaptConfig;

/// Whether the lowest layers are kept flowing below the budget.
#[derive(Debug, Default)]
pub(super) struct VideoFloor {
    /// The link lost packets and has not carried the lowest layers by its estimate
    /// since: no floor.
    lossy: bool,
    /// The worst loss reported since the last evaluation.
    worst: Option<f32>,
}

impl VideoFloor {
    /// A report's loss. Reports arrive where the configuration is not at hand, so
    /// the worst of them is judged at the next evaluation, before anything reads
    /// `lossy`.
    pub(super) fn note_loss(&mut self, loss: Option<f32>) {
        if let Some(l) = loss {
            self.worst = Some(self.worst.map_or(l, |w| w.max(l)));
        }
    }

    /// The video budget to allocate: `raw`, or `lowest` (every track's lowest
    /// layer) when that is more, the link has not lost packets and no loss cap
    /// holds (`capped`).
    pub(super) fn video_budget(
        &mut self,
        raw: u64,
        lowest: u64,
        capped: bool,
        ac: &AdaptConfig,
    ) -> u64 {
        if self
            .worst
            .take()
            .is_some_and(|l| l > ac.video_floor_max_loss)
        {
            self.lossy = true;
        }
        if !self.lossy && !capped && raw < lowest {
            lowest
        } else {
            raw
        }
    }

    /// After the layers are chosen: when every track is forwarded and the `raw`
    /// budget itself carries the `lowest` layers, the floor is back.
    pub(super) fn settle(&mut self, all_forwarded: bool, raw: u64, lowest: u64) {
        if self.lossy && all_forwarded && raw >= lowest {
            self.lossy = false;
        }
    }
}
