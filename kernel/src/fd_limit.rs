//! The process's descriptor limit: raising the soft RLIMIT_NOFILE, for the
//! load generator's thousands of connections and the probe's burst. Children
//! started afterwards inherit it.

use std::io;

/// Raises the soft RLIMIT_NOFILE and returns the soft limit now in force.
///
/// - `None`: to the hard limit, so thousands of connections do not hit
///   EMFILE at the usual soft limit of 1024.
/// - `Some(n)`: to at least `n`, leaving a soft limit already that high
///   alone; an error of kind `InvalidInput` if the hard limit is below `n`.
pub fn raise_fd_limit(wanted: Option<u64>) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = match wanted {
        None => lim.rlim_max,
        Some(n) if lim.rlim_cur >= n => return Ok(lim.rlim_cur),
        Some(n) if lim.rlim_max < n => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the hard limit is {}", lim.rlim_max),
            ));
        }
        Some(n) => n,
    };
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: setrlimit reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> (u64, u64) {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the rlimit we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        (lim.rlim_cur, lim.rlim_max)
    }

    /// One test, so no other test of this binary races it on the limit.
    #[test]
    fn raises_to_what_is_asked_or_to_the_hard_limit() {
        let (soft, hard) = limits();
        // What is already allowed changes nothing.
        assert_eq!(raise_fd_limit(Some(soft.min(8))).unwrap(), soft);
        assert_eq!(limits().0, soft);
        // Above the hard limit cannot be had, and says why.
        if hard < u64::MAX {
            let e = raise_fd_limit(Some(hard + 1)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(&hard.to_string()), "{e}");
        }
        // Some(n) raises to n, not beyond; None to the hard limit.
        let wanted = hard.min(soft + 16);
        assert_eq!(raise_fd_limit(Some(wanted)).unwrap(), wanted);
        assert_eq!(limits().0, wanted);
        assert_eq!(raise_fd_limit(None).unwrap(), hard);
        assert_eq!(limits(), (hard, hard));
    }
}
