//! floodgate's run model and what is made of it: [`Run`], the one model of
//! what a load run did, which a result file round-trips through without
//! loss (`run`), the checked and bounded reader of such files (`read`), the
//! one histogram codec (`histogram`), the outcome taxonomy (`outcome`), the
//! kernel's evidence as data (`evidence`), the verdict drawn from it all
//! (`verdict`), the backlog probe's report (`probe`), the time series and its windows
//! (`series`), the report of a scenario run (`scenario`) and its summary (`summary`), the text renderers
//! (`text`), and HdrHistogram's own formats of a scenario report's latency
//! (`hdrlog`: the interval log, `.hlog`; `hgrm`: the percentile
//! distribution, `latency.hgrm`), each a function over `W: Write`. The JSON Schemas of the files
//! live in `reports/schema/`.
//!
//! **reports knows nothing of sockets, plans, threads or runtimes**: it
//! depends on serde, hdrhistogram and their codecs only (CI checks the
//! dependency list), so anything that reads or renders a result can use it
//! alone. No renderer computes a figure the model lacks.

pub mod compare;
pub mod evidence;
pub mod hdrlog;
pub mod hgrm;
pub mod histogram;
pub mod outcome;
pub mod probe;
pub mod read;
pub mod run;
#[cfg(test)]
mod sample;
pub mod scenario;
pub mod series;
pub mod summary;
pub mod text;
pub mod verdict;

pub use outcome::{Outcome, OutcomeCounts};
pub use probe::ProbeReport;
pub use read::{ReadError, read};
pub use run::Run;
pub use verdict::Verdict;
