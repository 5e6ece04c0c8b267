//! The `--out` file of `load` and `probe backlog`: opened (so checked
//! writable) before anything starts and written once there is something to
//! write, so that a path that cannot be written costs no run. What goes in
//! it is the caller's.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The `--out` file, opened before the run and written after it. If the
/// run ends without a result, a file this opening created is removed
/// again; one that existed keeps its contents.
pub struct OutFile {
    path: PathBuf,
    file: Option<File>,
    /// Whether this opening created the file, so dropping it unwritten
    /// removes it again.
    created: bool,
}

impl OutFile {
    /// Opens `path` for writing without truncating it (the old contents
    /// stay until there is a result to replace them).
    pub fn open(path: &Path) -> Result<OutFile, (&Path, std::io::Error)> {
        let created = std::fs::symlink_metadata(path).is_err();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| (path, e))?;
        Ok(OutFile {
            path: path.to_path_buf(),
            file: Some(file),
            created,
        })
    }

    /// Replaces the file's contents with what `write` writes.
    pub fn write(
        mut self,
        write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let path = self.path.clone();
        let file = self.file.take().expect("an OutFile is written once");
        // Written (or failed while writing): not removed on drop.
        self.created = false;
        file.set_len(0)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                let mut w = BufWriter::new(file);
                write(&mut w)?;
                Ok(w.flush()?)
            })
            .with_context(|| format!("writing --out {}", path.display()))
    }

    /// Leaves the file as it is, written by someone else (the same command
    /// run inside a lab namespace).
    pub fn keep(mut self) {
        self.created = false;
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
