//! A connection's pending output: a static response borrowed as is, or one
//! owned buffer when responses pile up or are built at run time, dropped
//! once everything is written.

use std::borrow::Cow;

/// The first allocation for output that is more than one static response.
const OUTPUT_START_CAPACITY: usize = 2048;

/// Pending output: a static response borrowed as is, or an owned buffer.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) data: Cow<'static, [u8]>,
    /// Bytes of `data` already written.
    pub(super) written: usize,
}

impl Output {
    pub(super) fn pending(&self) -> &[u8] {
        self.data.get(self.written..).unwrap_or_default()
    }

    pub(super) fn push_static(&mut self, bytes: &'static [u8]) {
        if self.pending().is_empty() {
            self.data = Cow::Borrowed(bytes);
            self.written = 0;
        } else {
            self.vec().extend_from_slice(bytes);
        }
    }

    /// The owned buffer to append to, with written bytes dropped from its
    /// front.
    pub(super) fn vec(&mut self) -> &mut Vec<u8> {
        let written = std::mem::take(&mut self.written);
        match &mut self.data {
            Cow::Owned(buf) => {
                buf.drain(..written.min(buf.len()));
            }
            Cow::Borrowed(bytes) => {
                let rest: &'static [u8] = bytes.get(written..).unwrap_or_default();
                // Room for a burst of pipelined responses without regrowing.
                let mut buf = Vec::with_capacity(rest.len().max(OUTPUT_START_CAPACITY));
                buf.extend_from_slice(rest);
                self.data = Cow::Owned(buf);
            }
        }
        self.data.to_mut()
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.written = self.written.saturating_add(n).min(self.data.len());
    }

    /// Releases the buffer once everything is written.
    pub(super) fn release_if_empty(&mut self) {
        if self.pending().is_empty() {
            self.data = Cow::Borrowed(&[]);
            self.written = 0;
        }
    }

    pub(super) fn heap_capacity(&self) -> usize {
        match &self.data {
            Cow::Owned(buf) => buf.capacity(),
            Cow::Borrowed(_) => 0,
        }
    }
}
