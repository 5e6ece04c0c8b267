//! End-to-end tests of the `floodgate` binary: real processes on loopback.
//! One module per subcommand; `util` starts and stops the processes,
//! `schema` checks JSON output against the committed schemas.

mod architecture;
mod check;
mod compare;
mod flags;
mod hostile;
mod hostile_access;
mod load;
mod probe;
mod render;
mod report;
mod run;
mod run_secured;
mod schema;
mod serve;
mod shard;
mod tls;
mod util;
