//! Reading the small files a server is configured with (certificates,
//! keys, tokens): regular files only, and never more than the caller's
//! bound, so a path such as /dev/zero is an error, not a hang.

use std::io::{self, Read};
use std::path::Path;

/// The whole of the regular file at `path` if it holds at most `max`
/// bytes.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    // Checked before the open: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let mut text = Vec::new();
    file.take(max + 1).read_to_end(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {max} bytes"),
        ));
    }
    Ok(text)
}
