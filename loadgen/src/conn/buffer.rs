//! A connection's read buffer: bytes read but not yet parsed, compacted or
//! grown in place. Reading into it and parsing out of it is done by the
//! request code (`exchange`, `keepalive`), not here.

/// The read buffer of one connection; it grows only for long heads or
/// delimited replies.
pub(super) struct Buffer {
    data: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Buffer {
    const INITIAL: usize = 16 * 1024;

    pub(super) fn new() -> Buffer {
        Buffer {
            data: vec![0; Buffer::INITIAL],
            start: 0,
            end: 0,
        }
    }

    /// A buffer without storage, left behind while another owner has the
    /// real one.
    pub(super) fn moved() -> Buffer {
        Buffer {
            data: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    pub(super) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    /// Free space at the end, after compacting or growing if there is none.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.data.len() * 2;
                self.data.resize(len, 0);
            }
        }
        &mut self.data[self.end..]
    }
}
