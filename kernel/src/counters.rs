//! The TCP counters of `/proc/net/netstat` (TcpExt) and `/proc/net/snmp`
//! (Tcp) that explain listen-queue overflows, a snapshot of them, and the
//! difference between two snapshots.
//!
//! The files hold pairs of lines, a header line of names and a line of
//! values, each starting with the same `Prefix:`. The counters are per
//! network namespace and cumulative since the namespace was created, so a run
//! is always described by a [`CounterDelta`], never by absolute values.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why the counters could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: line {line}: {what}")]
    Malformed {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

pub use floodgate_reports::evidence::{CounterDelta, Counters};

/// Reads the counters of the calling thread's network namespace.
pub fn read_counters() -> Result<Counters, CountersError> {
    CounterFiles::open()?.read()
}

/// Sets the counters found in the text of `/proc/net/netstat` or
/// `/proc/net/snmp` (read from `path`, for errors), scanning it in place
/// for the 13 counters wanted, without building a table of all ~150.
fn scan(c: &mut Counters, text: &str, path: &Path) -> Result<(), CountersError> {
    parse_pairs(text, path, |prefix, name, value| {
        // Only the kept counters' values are parsed.
        if let Some(field) = field(c, prefix, name) {
            if let Ok(v) = value.parse() {
                *field = v;
            }
        }
    })
}

/// The counter `prefix: name`, if floodgate keeps it.
fn field<'a>(c: &'a mut Counters, prefix: &str, name: &str) -> Option<&'a mut u64> {
    Some(match (prefix, name) {
        ("TcpExt", "ListenOverflows") => &mut c.listen_overflows,
        ("TcpExt", "ListenDrops") => &mut c.listen_drops,
        ("TcpExt", "TCPReqQFullDoCookies") => &mut c.tcp_req_q_full_do_cookies,
        ("TcpExt", "TCPReqQFullDrop") => &mut c.tcp_req_q_full_drop,
        ("TcpExt", "SyncookiesSent") => &mut c.syncookies_sent,
        ("TcpExt", "SyncookiesRecv") => &mut c.syncookies_recv,
        ("TcpExt", "SyncookiesFailed") => &mut c.syncookies_failed,
        ("TcpExt", "EmbryonicRsts") => &mut c.embryonic_rsts,
        ("TcpExt", "TCPSynRetrans") => &mut c.tcp_syn_retrans,
        ("Tcp", "ActiveOpens") => &mut c.active_opens,
        ("Tcp", "PassiveOpens") => &mut c.passive_opens,
        ("Tcp", "AttemptFails") => &mut c.attempt_fails,
        ("Tcp", "OutRsts") => &mut c.out_rsts,
        _ => return None,
    })
}

/// Picks floodgate's counters out of parsed `/proc/net/netstat` and
/// `/proc/net/snmp` tables.
pub fn from_tables(netstat: &Table, snmp: &Table) -> Counters {
    let mut c = Counters::default();
    for ((prefix, name), &v) in netstat.values.iter().chain(&snmp.values) {
        if let Some(field) = field(&mut c, prefix, name) {
            *field = v;
        }
    }
    c
}

/// The two counter files, held open for a sampler that reads them many
/// times a second: a read is then a seek and a read, without the path
/// lookup, open and close (and the procfs inode they create and destroy)
/// that made up about half of the evidence thread's time.
///
/// The files belong to the network namespace of the thread that opened
/// them, for as long as they stay open.
pub(crate) struct CounterFiles {
    netstat: CounterFile,
    snmp: CounterFile,
    /// One file's text, reused between reads.
    text: String,
}

struct CounterFile {
    file: File,
    path: PathBuf,
}

impl CounterFiles {
    /// Opens the files of the calling thread's network namespace.
    pub(crate) fn open() -> Result<CounterFiles, CountersError> {
        // `/proc/net` follows the process's main thread; `thread-self`
        // follows the caller, which matters when a thread has entered
        // another namespace (setns or unshare).
        let dir = if Path::new("/proc/thread-self/net/netstat").exists() {
            "/proc/thread-self/net"
        } else {
            "/proc/net"
        };
        let open = |name: &str| {
            let path = Path::new(dir).join(name);
            match File::open(&path) {
                Ok(file) => Ok(CounterFile { file, path }),
                Err(error) => Err(CountersError::Read { path, error }),
            }
        };
        Ok(CounterFiles {
            netstat: open("netstat")?,
            snmp: open("snmp")?,
            text: String::new(),
        })
    }

    /// Every counter, from both files.
    pub(crate) fn read(&mut self) -> Result<Counters, CountersError> {
        let mut c = Counters::default();
        for f in [&mut self.netstat, &mut self.snmp] {
            f.read_into(&mut self.text)?;
            scan(&mut c, &self.text, &f.path)?;
        }
        Ok(c)
    }

    /// Refreshes the TcpExt counters of `c` from `/proc/net/netstat` alone,
    /// leaving the Tcp ones (from `/proc/net/snmp`) as they were: what a
    /// listener sample needs, for half the kernel's formatting work.
    pub(crate) fn refresh_tcp_ext(&mut self, c: &mut Counters) -> Result<(), CountersError> {
        self.netstat.read_into(&mut self.text)?;
        scan(c, &self.text, &self.netstat.path)
    }
}

impl CounterFile {
    /// The file's whole text now: procfs regenerates it from the start
    /// after a seek to 0.
    fn read_into(&mut self, text: &mut String) -> Result<(), CountersError> {
        text.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(text))
            .map(drop)
            .map_err(|error| CountersError::Read {
                path: self.path.clone(),
                error,
            })
    }
}

/// A parsed `/proc/net/netstat` or `/proc/net/snmp`: `(prefix, name) ->
/// value`, for example `("TcpExt", "ListenOverflows") -> 16`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    values: BTreeMap<(String, String), u64>,
}

impl Table {
    /// Parses the header/value line pairs. Values that are not unsigned
    /// integers (Tcp MaxConn is -1) are skipped; a value line whose length
    /// differs from its header's is an error, because then every name after
    /// the first difference would be paired with the wrong number.
    pub fn parse(text: &str, path: &Path) -> Result<Table, CountersError> {
        let mut values = BTreeMap::new();
        parse_pairs(text, path, |prefix, name, value| {
            if let Ok(v) = value.parse() {
                values.insert((prefix.to_owned(), name.to_owned()), v);
            }
        })?;
        Ok(Table { values })
    }

    /// The value of `prefix: name`, if the file had it.
    pub fn get(&self, prefix: &str, name: &str) -> Option<u64> {
        self.values
            .get(&(prefix.to_owned(), name.to_owned()))
            .copied()
    }
}

/// Calls `found(prefix, name, value)` for every value of the
/// header/value line pairs in `text`, checking the pairs as
/// [`Table::parse`] says.
fn parse_pairs(
    text: &str,
    path: &Path,
    mut found: impl FnMut(&str, &str, &str),
) -> Result<(), CountersError> {
    let malformed = |line: usize, what: String| CountersError::Malformed {
        path: path.to_owned(),
        line,
        what,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((header_no, header)) = lines.next() {
        let Some((value_no, value_line)) = lines.next() else {
            return Err(malformed(
                header_no + 1,
                "header line without values".into(),
            ));
        };
        let (Some((prefix, names)), Some((value_prefix, nums))) =
            (header.split_once(':'), value_line.split_once(':'))
        else {
            return Err(malformed(header_no + 1, "expected `Prefix: ...`".into()));
        };
        if prefix != value_prefix {
            return Err(malformed(
                value_no + 1,
                format!("values for `{value_prefix}` follow header `{prefix}`"),
            ));
        }
        let (names_n, nums_n) = (
            names.split_whitespace().count(),
            nums.split_whitespace().count(),
        );
        if names_n != nums_n {
            return Err(malformed(
                value_no + 1,
                format!("{names_n} names but {nums_n} values"),
            ));
        }
        for (name, num) in names.split_whitespace().zip(nums.split_whitespace()) {
            found(prefix, name, num);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured in a fresh network namespace after 10 non-blocking connects to
    // a listener with backlog 1 that never accepted, 1.5 s later: 2 connects
    // fit the queue, the other 8 SYNs were dropped twice each (first send and
    // the retransmit at 1 s).
    const NETSTAT: &str = include_str!("testdata/netstat.txt");
    const SNMP: &str = include_str!("testdata/snmp.txt");

    fn captured() -> Counters {
        let netstat = Table::parse(NETSTAT, Path::new("netstat")).unwrap();
        let snmp = Table::parse(SNMP, Path::new("snmp")).unwrap();
        from_tables(&netstat, &snmp)
    }

    #[test]
    fn captured_overflow_sample_parses_to_the_kernel_arithmetic() {
        let c = captured();
        assert_eq!(c.listen_overflows, 16);
        assert_eq!(c.listen_drops, 16);
        assert_eq!(c.tcp_syn_retrans, 8);
        assert_eq!(c.tcp_req_q_full_do_cookies, 0);
        assert_eq!(c.syncookies_sent, 0);
        assert_eq!(c.embryonic_rsts, 0);
        assert_eq!(c.active_opens, 10);
        assert_eq!(c.passive_opens, 2);
        assert!(!c.no_overflow_signs());
    }

    #[test]
    fn negative_values_are_skipped_not_misaligned() {
        let snmp = Table::parse(SNMP, Path::new("snmp")).unwrap();
        assert_eq!(snmp.get("Tcp", "MaxConn"), None);
        assert_eq!(snmp.get("Tcp", "ActiveOpens"), Some(10));
    }

    #[test]
    fn delta_subtracts_and_saturates() {
        let after = captured();
        let before = Counters {
            listen_overflows: 6,
            tcp_syn_retrans: 100,
            ..Counters::default()
        };
        let d = after.since(&before);
        assert_eq!(d.listen_overflows, 10);
        assert_eq!(d.tcp_syn_retrans, 0);
        assert_eq!(d.listen_drops, 16);
    }

    #[test]
    fn mismatched_value_count_is_an_error_naming_the_line() {
        let err =
            Table::parse("TcpExt: A B\nTcpExt: 1\n", Path::new("/proc/net/netstat")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/proc/net/netstat: line 2: 2 names but 1 values"
        );
    }

    /// `read` scans the files in place; it must pick the same values as
    /// the full table does.
    #[test]
    fn the_in_place_scan_matches_the_table() {
        let mut c = Counters::default();
        scan(&mut c, NETSTAT, Path::new("netstat")).unwrap();
        scan(&mut c, SNMP, Path::new("snmp")).unwrap();
        assert_eq!(c, captured());
    }

    #[test]
    fn live_counters_are_readable() {
        read_counters().unwrap();
    }

    /// The evidence sampler keeps the files open: each read must see the
    /// kernel's values now, not the text of the first read.
    #[test]
    fn held_open_files_read_new_values_and_tcp_ext_alone_leaves_tcp() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let connect = || TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut files = CounterFiles::open().unwrap();
        let before = files.read().unwrap();
        let _first = connect();
        let after = files.read().unwrap();
        assert!(after.active_opens > before.active_opens);

        let _second = connect();
        let mut refreshed = after;
        files.refresh_tcp_ext(&mut refreshed).unwrap();
        assert_eq!(refreshed.active_opens, after.active_opens);
        assert!(files.read().unwrap().active_opens > after.active_opens);
    }
}
