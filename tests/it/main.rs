//! End-to-end tests of the `floodgate` binary: real processes on loopback.
//! One module per subcommand; `util` starts and stops the processes.

mod load;
mod probe;
mod serve;
mod util;
