//! What a run measures, per thread then merged: HDR histograms in
//! microseconds (1 µs to 60 s, 3 significant digits, constant memory however
//! long the run) and the outcome counts. Response time runs from each
//! request's intended send time, service time from the actual send, connect
//! time per connect, and generator lag is kept apart from all three. A run
//! of phases keeps one `Recorder` per phase; each also keeps a time series
//! (`Series`: a coarser histogram and the outcome counts per second of its
//! phase), for thresholds judged on every window of a phase.

use std::sync::LazyLock;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::malformed::MalformedRecorder;
use crate::outcome::{Outcome, OutcomeCounts};

/// Highest trackable value: 60 s in µs.
pub const MAX_US: u64 = 60_000_000;

/// A new histogram with the run's bounds.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// The length of one interval of a [`Series`].
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A histogram for one interval: 2 significant digits (1%).
pub fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("valid histogram bounds")
}

/// An empty interval histogram, whose buckets [`Times`] uses.
static INTERVAL_BUCKETS: LazyLock<Histogram<u64>> = LazyLock::new(interval_histogram);

/// The response times of one interval, in the buckets of
/// [`interval_histogram`] but only those that hold a value: each bucket's
/// lowest value and its count, sorted. A histogram's counts array is 20 KB
/// whatever it holds; a second of requests fills tens to a few hundred
/// buckets, so a long phase's series costs kilobytes a second, not tens.
///
/// An interval the run has moved past is [`Times::pack`]ed: the buckets
/// as LEB128 varints of (gap from the previous bucket, count), a few bytes
/// each, so an hour of seconds costs a few megabytes at most. A late
/// response for a packed interval unpacks it first: nothing is lost.
#[derive(Debug, Clone, Default)]
pub struct Times {
    buckets: Vec<(u64, u64)>,
    packed: Vec<u8>,
}

impl PartialEq for Times {
    fn eq(&self, other: &Times) -> bool {
        self.pairs().eq(other.pairs())
    }
}

impl Eq for Times {}

impl Times {
    /// Records a duration in µs, clamped into the histogram's range.
    pub fn record(&mut self, d: Duration) {
        self.add(INTERVAL_BUCKETS.lowest_equivalent(micros(d)), 1);
    }

    fn add(&mut self, bucket: u64, n: u64) {
        self.unpack();
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (bucket, n)),
        }
    }

    /// Adds another thread's times of the same interval.
    pub fn merge(&mut self, other: &Times) {
        for (bucket, n) in other.pairs() {
            self.add(bucket, n);
        }
    }

    /// How many times were recorded.
    pub fn count(&self) -> u64 {
        self.pairs().map(|(_, n)| n).sum()
    }

    /// The times as an interval histogram: the same one recording each
    /// duration there would have given.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = interval_histogram();
        for (bucket, n) in self.pairs() {
            h.saturating_record_n(bucket, n);
        }
        h
    }

    /// Packs the buckets into varints and frees the vector.
    pub fn pack(&mut self) {
        if self.buckets.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut self.packed);
        let mut prev = 0;
        for &(bucket, n) in &self.buckets {
            leb128(&mut out, bucket - prev);
            leb128(&mut out, n);
            prev = bucket;
        }
        out.shrink_to_fit();
        self.packed = out;
        self.buckets = Vec::new();
    }

    fn unpack(&mut self) {
        if !self.packed.is_empty() {
            let pairs: Vec<(u64, u64)> = self.pairs().collect();
            self.packed = Vec::new();
            self.buckets = pairs;
        }
    }

    /// Every (bucket, count), sorted by bucket, packed or not.
    fn pairs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut bytes = self.packed.as_slice();
        let mut prev = 0;
        let packed = std::iter::from_fn(move || {
            let gap = read_leb128(&mut bytes)?;
            let n = read_leb128(&mut bytes)?;
            prev += gap;
            Some((prev, n))
        });
        self.buckets.iter().copied().chain(packed)
    }

    /// Heap bytes held, for the memory test.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<(u64, u64)>() + self.packed.capacity()
    }
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One interval of a phase: the requests that became due in it (the
/// offered load), and the response times and outcomes of requests intended
/// in it.
#[derive(Debug, Clone, Default)]
pub struct Interval {
    pub response: Times,
    /// Requests due in the interval (open loop) or started in it (closed
    /// loop).
    pub offered: u64,
    /// The outcomes of requests intended in the interval.
    pub outcomes: OutcomeCounts,
}

impl Interval {
    /// Adds another thread's share of the same interval.
    pub fn merge(&mut self, other: &Interval) {
        self.response.merge(&other.response);
        self.offered += other.offered;
        self.outcomes.merge(&other.outcomes);
    }
}

/// A phase's measurements per [`INTERVAL`], from the phase's start, for
/// at most [`MAX_INTERVALS`] intervals: requests intended past them count
/// in the phase's books but in no interval.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub intervals: Vec<Interval>,
    /// Intervals before this one are packed.
    packed_to: usize,
}

/// The most intervals a series keeps, the model's limit.
pub const MAX_INTERVALS: usize = floodgate_reports::series::MAX_INTERVALS;

/// Intervals this far behind the newest are packed ([`Times::pack`]); a
/// late response for one unpacks it, and it is packed again as the next
/// interval begins.
const PACK_BEHIND: usize = 10;

impl Series {
    fn at(&mut self, offset: Duration) -> Option<&mut Interval> {
        let i = (offset.as_nanos() / INTERVAL.as_nanos()) as usize;
        if i >= MAX_INTERVALS {
            return None;
        }
        if self.intervals.len() <= i {
            self.intervals.resize_with(i + 1, Interval::default);
            let behind = (i + 1).saturating_sub(PACK_BEHIND);
            for iv in &mut self.intervals[self.packed_to.min(behind)..behind] {
                iv.response.pack();
            }
            self.packed_to = behind;
        } else if i < self.packed_to {
            // A late response: its interval is packed again with the next.
            self.packed_to = i;
        }
        Some(&mut self.intervals[i])
    }

    fn merge(&mut self, other: &Series) {
        if self.intervals.len() < other.intervals.len() {
            self.intervals
                .resize_with(other.intervals.len(), Interval::default);
        }
        for (a, b) in self.intervals.iter_mut().zip(&other.intervals) {
            a.merge(b);
        }
    }
}

/// One thread's measurements (of one phase), merged into the run's at the
/// end.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// From intended send time to complete response.
    pub response: Histogram<u64>,
    /// From actual send to complete response.
    pub service: Histogram<u64>,
    /// From socket creation to established.
    pub connect: Histogram<u64>,
    /// How late an idle connection started a send, past its intended time.
    pub lag: Histogram<u64>,
    pub outcomes: OutcomeCounts,
    /// Requests that became due (open loop) or were started (closed loop).
    pub scheduled: u64,
    /// `scheduled` by request kind (index into `Plan::kinds`).
    pub scheduled_by_kind: Vec<u64>,
    /// Connects attempted.
    pub connects: u64,
    /// Most connections open at once (hold mode's "held").
    pub open_max: u64,
    open_now: u64,
    /// `--malformed`: malformed exchanges, echo probes and, for the
    /// coincidence check, when valid requests failed.
    pub malformed: MalformedRecorder,
    /// The phase's start, from the run's start: offsets passed in count
    /// from the run's start, the series from this.
    pub phase_start: Duration,
    pub series: Series,
    /// The load threads' event loops: time covered, and time spent waiting
    /// in epoll for the network or a timer (summed over threads).
    pub loop_time: Duration,
    pub loop_idle: Duration,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            phase_start: Duration::ZERO,
            series: Series::default(),
            loop_time: Duration::ZERO,
            loop_idle: Duration::ZERO,
            response: histogram(),
            service: histogram(),
            connect: histogram(),
            lag: histogram(),
            outcomes: OutcomeCounts::default(),
            scheduled: 0,
            scheduled_by_kind: Vec::new(),
            connects: 0,
            open_max: 0,
            open_now: 0,
            malformed: MalformedRecorder::default(),
        }
    }
}

/// Records a duration in µs, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(micros(d));
}

/// A duration in µs, clamped into the histograms' range.
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

impl Recorder {
    /// The books of a phase starting `phase_start` into the run.
    pub fn for_phase(phase_start: Duration) -> Recorder {
        Recorder {
            phase_start,
            ..Recorder::default()
        }
    }

    /// Counts the outcome of a request intended `at` into the run.
    pub fn outcome(&mut self, o: Outcome, at: Duration) {
        self.outcomes.add(o, 1);
        if let Some(interval) = self.series.at(at.saturating_sub(self.phase_start)) {
            interval.outcomes.add(o, 1);
        }
    }

    /// Records a request intended `at` into the run: its response time
    /// (from the intended send) and service time (from the actual send).
    pub fn response_time(&mut self, at: Duration, response: Duration, service: Duration) {
        record(&mut self.response, response);
        record(&mut self.service, service);
        if let Some(interval) = self.series.at(at.saturating_sub(self.phase_start)) {
            interval.response.record(response);
        }
    }

    /// Counts one request of kind `kind` due (or started) `at` into the run.
    pub fn schedule(&mut self, kind: usize, at: Duration) {
        self.scheduled += 1;
        if let Some(interval) = self.series.at(at.saturating_sub(self.phase_start)) {
            interval.offered += 1;
        }
        if self.scheduled_by_kind.len() <= kind {
            self.scheduled_by_kind.resize(kind + 1, 0);
        }
        self.scheduled_by_kind[kind] += 1;
    }

    /// Counts one request due (or started) `at` into the run: a valid one
    /// by its kind and in the offered load, or a malformed one in the
    /// malformed books.
    pub fn schedule_slot(&mut self, slot: &crate::schedule::Slot, at: Duration) {
        if slot.malformed {
            self.malformed.scheduled += 1;
        } else {
            self.schedule(slot.kind, at);
        }
    }

    pub fn opened(&mut self) {
        self.open_now += 1;
        self.open_max = self.open_max.max(self.open_now);
    }

    pub fn closed(&mut self) {
        self.open_now = self.open_now.saturating_sub(1);
    }

    /// Adds another thread's measurements. Per-thread `open_max` values add
    /// up to an upper bound, which is exact in hold mode (nothing closes).
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.response.add(&other.response);
        let _ = self.service.add(&other.service);
        let _ = self.connect.add(&other.connect);
        let _ = self.lag.add(&other.lag);
        self.outcomes.merge(&other.outcomes);
        self.scheduled += other.scheduled;
        if self.scheduled_by_kind.len() < other.scheduled_by_kind.len() {
            self.scheduled_by_kind
                .resize(other.scheduled_by_kind.len(), 0);
        }
        for (a, b) in self
            .scheduled_by_kind
            .iter_mut()
            .zip(&other.scheduled_by_kind)
        {
            *a += b;
        }
        self.connects += other.connects;
        self.open_max += other.open_max;
        self.malformed.merge(&other.malformed);
        self.series.merge(&other.series);
        self.loop_time += other.loop_time;
        self.loop_idle += other.loop_idle;
    }

    /// The share of their time the event loops were busy rather than
    /// waiting; `None` before any loop ran.
    pub fn loop_busy(&self) -> Option<f64> {
        (!self.loop_time.is_zero())
            .then(|| 1.0 - self.loop_idle.as_secs_f64() / self.loop_time.as_secs_f64())
    }
}

/// The completed intervals of each phase, published by the load threads
/// while the run goes on, for a caller that judges windows before the run
/// ends (`abort_on_fail`). An interval is complete, and published, once
/// every request intended in it has had its read timeout to finish.
#[derive(Debug)]
pub struct LiveSeries {
    threads: usize,
    /// Per phase, per interval: the threads' intervals merged, and how
    /// many threads have published it.
    phases: std::sync::Mutex<Vec<Vec<(Interval, usize)>>>,
}

impl LiveSeries {
    /// For a run over `threads` threads.
    pub fn new(threads: usize) -> LiveSeries {
        LiveSeries {
            threads: threads.max(1),
            phases: Default::default(),
        }
    }

    /// One thread's interval `k` of phase `phase`.
    pub(crate) fn publish(&self, phase: usize, k: usize, interval: &Interval) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if phases.len() <= phase {
            phases.resize_with(phase + 1, Vec::new);
        }
        let p = &mut phases[phase];
        if p.len() <= k {
            p.resize_with(k + 1, || (Interval::default(), 0));
        }
        let (merged, n) = &mut p[k];
        merged.merge(interval);
        *n += 1;
    }

    /// The leading intervals of `phase` that every thread has published.
    pub fn complete(&self, phase: usize) -> Vec<Interval> {
        let phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        phases
            .get(phase)
            .map(|p| {
                p.iter()
                    .take_while(|(_, n)| *n >= self.threads)
                    .map(|(i, _)| i.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_the_histogram_that_recording_them_gives() {
        let ds = [3, 3, 70, 1_234, 1_236, 55_000, 2_000_000, 90_000_000];
        let mut times = Times::default();
        let mut h = interval_histogram();
        for us in ds {
            let d = Duration::from_micros(us);
            times.record(d);
            record(&mut h, d);
        }
        let got = times.histogram();
        assert_eq!(got, h);
        assert_eq!(
            (got.min(), got.max(), got.len()),
            (h.min(), h.max(), h.len())
        );
        assert_eq!(times.count(), ds.len() as u64);
        // 1,234 µs and 1,236 µs share a bucket (8 µs wide there); 90 s is
        // clamped to 60 s, a bucket of its own.
        assert_eq!(times.buckets.len(), ds.len() - 2);
        // Two threads' halves merge into the whole.
        let mut a = Times::default();
        let mut b = Times::default();
        for (k, us) in ds.iter().enumerate() {
            let half = if k % 2 == 0 { &mut a } else { &mut b };
            half.record(Duration::from_micros(*us));
        }
        a.merge(&b);
        assert_eq!(a, times);
        // Packed, they are the same times; a late one unpacks them.
        let mut packed = times.clone();
        packed.pack();
        assert!(packed.buckets.is_empty());
        assert_eq!(packed, times);
        assert_eq!(packed.histogram(), h);
        packed.record(Duration::from_micros(3));
        times.record(Duration::from_micros(3));
        assert_eq!(packed, times);
        assert_eq!(packed.count(), ds.len() as u64 + 1);
    }

    #[test]
    fn intervals_the_run_has_left_behind_are_packed_small() {
        // Ten minutes of seconds, each with 300 distinct response times
        // (about 250 buckets), as one thread records them.
        let mut rec = Recorder::for_phase(Duration::ZERO);
        for s in 0..600u64 {
            for k in 0..300u64 {
                let at = Duration::from_millis(s * 1000 + k);
                rec.response_time(at, Duration::from_micros(100 + 37 * k), Duration::ZERO);
            }
        }
        let heap: Vec<usize> = rec
            .series
            .intervals
            .iter()
            .map(|i| i.response.heap_bytes())
            .collect();
        let open: usize = heap[600 - PACK_BEHIND..].iter().sum::<usize>() / PACK_BEHIND;
        let packed: usize = heap[..600 - PACK_BEHIND].iter().sum::<usize>() / (600 - PACK_BEHIND);
        assert!(
            packed * 4 < open,
            "a packed interval holds {packed} bytes, an open one {open}"
        );
        // A late response for a packed second lands in it, and it is packed
        // again once the next second begins.
        rec.response_time(
            Duration::from_millis(5_500),
            Duration::from_micros(7),
            Duration::ZERO,
        );
        assert_eq!(rec.series.intervals[5].response.count(), 301);
        assert!(!rec.series.intervals[5].response.buckets.is_empty());
        rec.response_time(
            Duration::from_millis(600_000),
            Duration::from_micros(7),
            Duration::ZERO,
        );
        assert!(rec.series.intervals[5].response.buckets.is_empty());
        assert_eq!(rec.series.intervals[5].response.count(), 301);
    }
}
