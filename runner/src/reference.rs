//! Starting floodgate's reference server for a run that names no target:
//! in this process on 127.0.0.1 (port chosen by the kernel), stopped when
//! the run is done.

use std::net::SocketAddr;

use floodgate_server::{BindError, Config, Outcome, RunningServer, Server};

/// A reference server started for one run; [`InProcess::stop`] drains it.
pub struct InProcess {
    server: RunningServer,
}

impl InProcess {
    /// Binds `config` (its `listen` replaced by 127.0.0.1:0) and starts
    /// serving on async-std's executor threads.
    pub fn start(config: Config) -> Result<InProcess, BindError> {
        let config = Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..config
        };
        let server = Server::bind(config)?.start();
        tracing::info!(addr = %server.local_addrs()[0], "started the reference server for this run");
        Ok(InProcess { server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addrs()[0]
    }

    /// Stops listening and drains, within the server's shutdown grace.
    pub fn stop(self) -> Outcome {
        let outcome = self.server.shutdown();
        tracing::info!(?outcome, "stopped the reference server");
        outcome
    }
}
