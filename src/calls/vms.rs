//! Counting the media streams that drive VMS calls (spec: "VMS call configuration").
//!
//! Each stream the device serves holds a [`StreamGuard`] for as long as it flows; dropping the
//! guard (the client went away, the upload ended) lowers the count. The counts are published on
//! a `watch` channel that the call engine follows.

use std::sync::Arc;

use tokio::sync::watch;

use crate::model::VmsCallConfiguration;

/// The three stream counts the spec names, each judged against its own threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Audio from the device (`receive.cgi`).
    AudioFromDevice,
    /// Audio to the device (`transmit.cgi`).
    AudioToDevice,
    /// Video from the device (`mjpg/video.cgi`).
    VideoFromDevice,
}

impl StreamKind {
    /// All kinds, in count-array order.
    pub const ALL: [StreamKind; 3] =
        [StreamKind::AudioFromDevice, StreamKind::AudioToDevice, StreamKind::VideoFromDevice];

    fn index(self) -> usize {
        self as usize
    }

    /// This kind's threshold in `config`; 0 or below means unused.
    pub fn threshold(self, config: &VmsCallConfiguration) -> i32 {
        match self {
            StreamKind::AudioFromDevice => config.audio_from_device_to_network_streams,
            StreamKind::AudioToDevice => config.audio_from_network_to_device_streams,
            StreamKind::VideoFromDevice => config.video_from_device_to_network_streams,
        }
    }
}

/// Open streams per kind.
pub type Counts = [u32; 3];

/// The device's stream counters.
#[derive(Debug)]
pub struct StreamCounts {
    counts: watch::Sender<Counts>,
}

impl Default for StreamCounts {
    fn default() -> Self {
        Self { counts: watch::Sender::new([0; 3]) }
    }
}

impl StreamCounts {
    /// Counts one more open stream of `kind` until the guard is dropped.
    pub fn open(self: &Arc<Self>, kind: StreamKind) -> StreamGuard {
        self.counts.send_modify(|c| c[kind.index()] += 1);
        StreamGuard { counts: self.clone(), kind }
    }

    /// The current counts.
    pub fn current(&self) -> Counts {
        *self.counts.borrow()
    }

    /// The count of one kind in `counts`.
    pub fn of(counts: &Counts, kind: StreamKind) -> u32 {
        counts[kind.index()]
    }

    /// Follows changes of the counts.
    pub fn watch(&self) -> watch::Receiver<Counts> {
        self.counts.subscribe()
    }
}

/// Holds one stream's place in the count.
#[derive(Debug)]
pub struct StreamGuard {
    counts: Arc<StreamCounts>,
    kind: StreamKind,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let i = self.kind.index();
        self.counts.counts.send_modify(|c| c[i] = c[i].saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_they_live() {
        let counts = Arc::new(StreamCounts::default());
        let a = counts.open(StreamKind::AudioToDevice);
        let b = counts.open(StreamKind::AudioToDevice);
        let v = counts.open(StreamKind::VideoFromDevice);
        assert_eq!(counts.current(), [0, 2, 1]);
        drop(a);
        drop(v);
        assert_eq!(counts.current(), [0, 1, 0]);
        drop(b);
        assert_eq!(StreamCounts::of(&counts.current(), StreamKind::AudioToDevice), 0);
    }
}
