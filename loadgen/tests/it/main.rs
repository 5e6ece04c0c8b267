//! Integration tests of floodgate-loadgen against small std::net servers on
//! loopback that misbehave on purpose (stall once, corrupt an echo, never
//! accept). One test binary; `util` holds the servers.

mod lab;
mod load;
mod phases;
mod util;
