//! Integration tests of floodgate-runner's public API. One module per
//! area: `scenario` loads the shipped scenario files and checks what they
//! mean, the invalid ones' exact messages, and `--set` overrides.

mod scenario;
