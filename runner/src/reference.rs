//! Starting floodgate's reference server for a run that names no target,
//! on 127.0.0.1 (port chosen by the kernel), stopped when the run is done:
//! in this process ([`InProcess`], for load), or as a child process
//! ([`Child`], for the probe, which stops its subject with SIGSTOP).

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

/// A `floodgate serve` child on 127.0.0.1:0 (the probe pauses it with
/// SIGSTOP, which must not stop the probe itself); killed by its own PID
/// when dropped, and by the kernel if this process dies first (PDEATHSIG).
pub struct Child {
    child: std::process::Child,
    addr: SocketAddr,
}

/// Why a reference server child did not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("finding the floodgate executable: {0}")]
    Exe(std::io::Error),
    #[error("starting {exe} serve: {error}")]
    Spawn { exe: String, error: std::io::Error },
    #[error("floodgate serve exited before printing `listening on ADDR`")]
    Exited,
    #[error("floodgate serve printed no `listening on ADDR` within 10 s")]
    Silent,
}

impl Child {
    /// Starts `floodgate serve --listen 127.0.0.1:0` with these extra
    /// arguments (e.g. `--backlog 128`) from the running executable, and
    /// waits (at most 10 s) for its `listening on ADDR` line.
    pub fn start(extra_args: &[String]) -> Result<Child, ChildError> {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};

        let exe = std::env::current_exe().map_err(ChildError::Exe)?;
        let mut cmd = Command::new(&exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // this child if floodgate dies, so a SIGSTOPped server is never left
        // behind.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|error| ChildError::Spawn {
            exe: exe.display().to_string(),
            error,
        })?;
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let mut server = Child {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        // Read the `listening on ADDR` line on a thread, so a server that
        // hangs before printing it cannot hang the caller.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("floodgate-serve-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
                    line.strip_prefix("listening on ")
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                });
                let _ = tx.send(addr);
                // Keep draining, so the server never blocks on a full pipe.
                for _ in lines {}
            })
            .map_err(|error| ChildError::Spawn {
                exe: exe.display().to_string(),
                error,
            })?;
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Some(addr)) => server.addr = addr,
            Ok(None) => return Err(ChildError::Exited),
            Err(_) => return Err(ChildError::Silent),
        }
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
