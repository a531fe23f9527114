//! The teacher's voice as real Opus: a generated speech-like signal encoded once
//! per process with libopus (in-band FEC on, as a browser enables it on a lossy
//! link), and the classroom's playout, which decodes every frame with libopus the
//! way a receiver does: the packet itself when it came in time, its in-band FEC copy
//! from the next packet when only that came, packet-loss concealment otherwise.

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One Opus frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// The teacher's microphone rate (WebRTC's Opus clock).
const RATE: u32 = 48_000;
/// Seconds of generated speech the teacher loops over.
const LOOP_SECONDS: usize = 30;
/// What the classroom decodes to. Opus decodes any stream at any of its rates, and
/// 16 kHz (wideband) holds the speech band at a third of the 48 kHz cost.
const DECODE_RATE: u32 = 16_000;
const DECODE_SAMPLES: usize = (DECODE_RATE / 50) as usize;
/// The teacher's encoder settings: libwebrtc's defaults for a mono voice.
const BITRATE: i32 = 32_000;
const EXPECTED_LOSS_PCT: i32 = 10;

/// How long the receiver's jitter buffer remembers delay.
pub const JITTER_MEMORY: Duration = Duration::from_secs(1);
/// What it holds beyond the worst delay it remembers.
pub const JITTER_MARGIN: Duration = Duration::from_millis(40);

/// A speech-like signal at 48 kHz: syllables of a glottal pulse train through three
/// formant resonators, some fricative noise, pauses between words and phrases.
/// Not speech, but it has speech's pitch, spectrum and on/off rhythm, which is what
/// the encoder's mode, rate and FEC decisions depend on.
pub fn speech(seconds: usize, seed: u64) -> Vec<i16> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = seconds * RATE as usize;
    let mut out = Vec::with_capacity(n);
    let mut res = [Resonator::default(); 3];
    let mut glottis = 0.0f32;
    let mut phase = 0.0f32;
    while out.len() < n {
        let voiced = rng.f32() < 0.8;
        let len = RATE as usize * (if voiced { 120 } else { 60 } + rng.usize(0..150)) / 1000;
        let f0 = 100.0 + rng.f32() * 120.0;
        let formants = [
            300.0 + rng.f32() * 500.0,
            900.0 + rng.f32() * 1400.0,
            2400.0 + rng.f32() * 600.0,
        ];
        for (r, (f, bw)) in res
            .iter_mut()
            .zip(formants.iter().zip([80.0, 110.0, 160.0]))
        {
            r.tune(*f, bw);
        }
        let level = 4000.0 + rng.f32() * 6000.0;
        for i in 0..len {
            let env = (i.min(len - i) as f32 / (RATE as f32 * 0.02)).min(1.0);
            // Pitch glides a little over the syllable.
            let f = f0 * (1.0 - 0.1 * i as f32 / len as f32);
            let x = if voiced {
                phase += f / RATE as f32;
                let pulse = if phase >= 1.0 {
                    phase -= 1.0;
                    1.0
                } else {
                    0.0
                };
                glottis = 0.9 * glottis + pulse;
                glottis
            } else {
                (rng.f32() - 0.5) * 0.3
            };
            let y: f32 = res.iter_mut().map(|r| r.step(x)).sum();
            out.push((y * level * env).clamp(-32000.0, 32000.0) as i16);
        }
        // A short gap after most syllables, a phrase pause after some.
        let gap_ms = match rng.u8(0..10) {
            0..=5 => 20 + rng.usize(0..60),
            6..=8 => 80 + rng.usize(0..120),
            _ => 300 + rng.usize(0..400),
        };
        out.extend(std::iter::repeat_n(0, RATE as usize * gap_ms / 1000));
    }
    out.truncate(n);
    out
}

#[derive(Debug, Default, Clone, Copy)]
struct Resonator {
    a: f32,
    b1: f32,
    b2: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn tune(&mut self, freq: f32, bandwidth: f32) {
        let fs = RATE as f32;
        let r = (-std::f32::consts::PI * bandwidth / fs).exp();
        self.b1 = 2.0 * r * (2.0 * std::f32::consts::PI * freq / fs).cos();
        self.b2 = -r * r;
        self.a = 1.0 - r;
    }

    fn step(&mut self, x: f32) -> f32 {
        let y = self.a * x + self.b1 * self.y1 + self.b2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// The teacher's Opus packets: [`LOOP_SECONDS`] of [`speech`], encoded once per
/// process. Packet `i` of the lesson is `packets()[i % len]`.
pub fn packets() -> &'static [Vec<u8>] {
    static PACKETS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PACKETS.get_or_init(|| encode(&speech(LOOP_SECONDS, 1)).expect("libopus encodes"))
}

/// Encode 48 kHz mono PCM into 20 ms Opus packets as a browser's voice encoder
/// would: VoIP mode, 32 kbit/s, in-band FEC on.
pub fn encode(pcm: &[i16]) -> Result<Vec<Vec<u8>>, opus::Error> {
    let mut enc = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)?;
    enc.set_bitrate(opus::Bitrate::Bits(BITRATE))?;
    enc.set_inband_fec(true)?;
    enc.set_packet_loss_perc(EXPECTED_LOSS_PCT)?;
    let frame = (RATE / 50) as usize;
    let mut buf = [0u8; 1500];
    pcm.chunks_exact(frame)
        .map(|f| enc.encode(f, &mut buf).map(|n| buf[..n].to_vec()))
        .collect()
}

/// How one classroom's playout went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Playout {
    /// Frames from the first to the last packet that arrived.
    pub expected: u64,
    /// Decoded from their own packet, in time.
    pub decoded: u64,
    /// Rebuilt from the in-band FEC copy in the next packet.
    pub fec: u64,
    /// Synthesised by the decoder's packet-loss concealment (lost or too late).
    pub concealed: u64,
    /// Packets the decoder refused (counted as concealed too).
    pub errors: u64,
}

impl Playout {
    pub fn concealed_pct(&self) -> f64 {
        if self.expected == 0 {
            return 100.0;
        }
        100.0 * self.concealed as f64 / self.expected as f64
    }
}

/// One audio packet as it arrived: sequence number, time, Opus payload.
pub type AudioRx = (u64, Instant, Vec<u8>);

/// Play `rx` out as a receiver would, decoding every frame with libopus.
///
/// The jitter buffer adapts: it holds as much delay as the worst packet of the
/// last [`JITTER_MEMORY`] needed, plus [`JITTER_MARGIN`]; a packet later than that
/// missed its turn (like a late packet in WebRTC's NetEq). A missing frame whose
/// successor came at least a frame ahead of its own turn is rebuilt from the
/// successor's FEC data; the decoder conceals the rest.
pub fn play(rx: &[AudioRx]) -> Playout {
    let mut first_seen: BTreeMap<u64, (Instant, &[u8])> = BTreeMap::new();
    for (s, at, p) in rx {
        first_seen.entry(*s).or_insert((*at, p.as_slice()));
    }
    let (Some(&first), Some(&last)) = (first_seen.keys().next(), first_seen.keys().next_back())
    else {
        return Playout::default();
    };
    let t0 = first_seen.values().map(|v| v.0).min().expect("not empty");
    // Delay of each packet against its place in the 20 ms grid (an unknown constant
    // apart from the true delay, which cancels out). A packet's slack is how far
    // before its turn it arrived, by the delay the buffer held when it came.
    let rel = |s: u64, at: Instant| {
        at.saturating_duration_since(t0).as_secs_f64() - (s - first) as f64 * FRAME.as_secs_f64()
    };
    let mut by_arrival: Vec<(Instant, u64)> = first_seen.iter().map(|(s, v)| (v.0, *s)).collect();
    by_arrival.sort();
    let mut window: VecDeque<(Instant, f64)> = VecDeque::new();
    let mut slack: BTreeMap<u64, f64> = BTreeMap::new();
    for (at, s) in by_arrival {
        while window
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > JITTER_MEMORY)
        {
            window.pop_front();
        }
        let d = rel(s, at);
        // The first packet of a window sets the delay; it is never late.
        slack.insert(
            s,
            if window.is_empty() {
                JITTER_MARGIN.as_secs_f64()
            } else {
                window.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max)
                    + JITTER_MARGIN.as_secs_f64()
                    - d
            },
        );
        window.push_back((at, d));
    }
    let mut dec = opus::Decoder::new(DECODE_RATE, opus::Channels::Mono).expect("libopus decoder");
    let mut pcm = [0i16; DECODE_SAMPLES];
    let mut out = Playout {
        expected: last - first + 1,
        ..Playout::default()
    };
    let frame = FRAME.as_secs_f64();
    for s in first..=last {
        let own = first_seen.get(&s).filter(|_| slack[&s] >= 0.0);
        let next = first_seen
            .get(&(s + 1))
            .filter(|_| slack.get(&(s + 1)).is_some_and(|&k| k >= frame));
        let ok = match (own, next) {
            (Some((_, p)), _) => {
                out.decoded += 1;
                dec.decode(p, &mut pcm, false)
            }
            (None, Some((_, p))) => {
                out.fec += 1;
                dec.decode(p, &mut pcm, true)
            }
            (None, None) => {
                out.concealed += 1;
                dec.decode(&[], &mut pcm, false)
            }
        };
        if ok.is_err() {
            out.errors += 1;
            out.concealed += 1;
            let _ = dec.decode(&[], &mut pcm, false);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(n: u64, lost: impl Fn(u64) -> bool) -> Vec<AudioRx> {
        let t0 = Instant::now();
        let p = packets();
        (0..n)
            .filter(|s| !lost(*s))
            .map(|s| {
                (
                    s,
                    t0 + FRAME * s as u32 + Duration::from_millis(30),
                    p[s as usize % p.len()].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn speech_has_pauses_and_voice_and_encodes_like_a_voice() {
        let pcm = speech(10, 3);
        let frames: Vec<f64> = pcm
            .chunks(960)
            .map(|f| (f.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / 960.0).sqrt())
            .collect();
        let silent = frames.iter().filter(|&&e| e < 10.0).count();
        let loud = frames.iter().filter(|&&e| e > 300.0).count();
        assert!(silent > 20 && loud > 200, "silent {silent}, loud {loud}");
        let enc = encode(&pcm).unwrap();
        assert_eq!(enc.len(), 500);
        let kbps = enc.iter().map(|p| p.len()).sum::<usize>() as f64 * 8.0 / 10.0 / 1000.0;
        assert!((10.0..45.0).contains(&kbps), "{kbps} kbit/s");
        // Speech frames are bigger than silence (a variable bit rate encoder).
        let (lo, hi) = enc.iter().fold((usize::MAX, 0), |(a, b), p| {
            (a.min(p.len()), b.max(p.len()))
        });
        assert!(hi > 2 * lo, "{lo}..{hi} bytes");
    }

    /// The teacher's packets really carry FEC: rebuilding a lost frame from its
    /// successor comes closer to the frame than the decoder's concealment does.
    #[test]
    fn fec_copy_is_in_the_packets() {
        let p = packets();
        let (mut better, mut voiced) = (0, 0);
        for k in (20..1400).step_by(37) {
            let mut d =
                [0, 1, 2].map(|_| opus::Decoder::new(DECODE_RATE, opus::Channels::Mono).unwrap());
            let mut out = [[0i16; DECODE_SAMPLES]; 3];
            for pkt in &p[k - 20..k] {
                for (dec, o) in d.iter_mut().zip(out.iter_mut()) {
                    dec.decode(pkt, o, false).unwrap();
                }
            }
            d[0].decode(&p[k], &mut out[0], false).unwrap();
            d[1].decode(&p[k + 1], &mut out[1], true).unwrap();
            d[2].decode(&[], &mut out[2], false).unwrap();
            let err = |o: &[i16]| -> f64 {
                o.iter()
                    .zip(out[0].iter())
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum()
            };
            let energy: f64 = out[0].iter().map(|&x| (x as f64).powi(2)).sum();
            if energy > 1e6 * DECODE_SAMPLES as f64 / 100.0 {
                voiced += 1;
                better += usize::from(err(&out[1]) < err(&out[2]));
            }
        }
        assert!(
            voiced > 10 && better * 10 >= voiced * 8,
            "FEC better in {better} of {voiced}"
        );
    }

    #[test]
    fn clean_path_decodes_every_frame() {
        let p = play(&arrivals(500, |_| false));
        assert_eq!(
            p,
            Playout {
                expected: 500,
                decoded: 500,
                ..Playout::default()
            }
        );
    }

    #[test]
    fn single_losses_come_back_from_fec_and_runs_are_concealed() {
        // Every 10th packet lost alone: FEC in the next one rebuilds it.
        let p = play(&arrivals(500, |s| s % 10 == 5));
        assert_eq!((p.fec, p.concealed), (50, 0), "{p:?}");
        // A run of 5: the last of the run comes from FEC, 4 are concealed.
        let p = play(&arrivals(500, |s| (100..105).contains(&s)));
        assert_eq!((p.decoded, p.fec, p.concealed), (495, 1, 4), "{p:?}");
        assert!((p.concealed_pct() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_late_packet_is_concealed_and_the_buffer_then_waits_longer() {
        let mut rx = arrivals(300, |_| false);
        // Packet 100 arrives 200 ms late; its successor is on time, so FEC covers it.
        rx[100].1 += Duration::from_millis(200);
        let p = play(&rx);
        assert_eq!((p.fec, p.concealed), (1, 0), "{p:?}");
        // A late burst of 4: the buffer learns from the first, so only it is lost.
        let mut rx = arrivals(300, |_| false);
        for r in &mut rx[150..154] {
            r.1 += Duration::from_millis(200);
        }
        let p = play(&rx);
        assert_eq!(p.concealed + p.fec, 1, "{p:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut rx = arrivals(50, |_| false);
        rx[10].2 = vec![0xff; 3];
        let p = play(&rx);
        assert!(
            p.errors <= 1 && p.decoded + p.fec + p.concealed - p.errors == 50,
            "{p:?}"
        );
    }
}
