//! The structured input of the `http_sequence` harness: a [`Sequence`] of
//! requests and other steps, as `Arbitrary` decodes it from the fuzzer's
//! bytes.

use arbitrary::{Arbitrary, Unstructured};

/// Bytes taken from the input in one contiguous run (a length, then the
/// bytes), unlike `Vec<u8>`, whose `Arbitrary` puts a "one more?" byte before
/// every element. Contiguous bytes let libFuzzer's dictionary and
/// comparison-guided mutations write whole tokens (`chunked`, a header
/// value) into a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Octets(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Octets {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Octets(<&[u8]>::arbitrary(u)?.to_vec()))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Octets(<&[u8]>::arbitrary_take_rest(u)?.to_vec()))
    }

    fn size_hint(depth: usize) -> (usize, Option<usize>) {
        <&[u8]>::size_hint(depth)
    }
}

impl std::ops::Deref for Octets {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// A connection's life built from parts: requests, pauses, reads of the
/// output, shutdown and half-close.
#[derive(Debug, Arbitrary)]
pub struct Sequence {
    pub limits: u8,
    pub steps: Vec<Step>,
    /// Whether the peer half-closes once every step has run.
    pub half_close: bool,
}

#[derive(Debug, Arbitrary)]
pub enum Step {
    Request(Box<Request>),
    /// A short pause, in milliseconds; deadlines that fall due fire.
    Pause(u8),
    /// Time jumps to the next deadline, which fires.
    UntilDeadline,
    /// Time moves on by whole seconds.
    Wait(u8),
    /// The peer reads everything written so far.
    ReadAll,
    /// The peer reads this many bytes.
    ReadSome(u16),
    Shutdown,
    HalfClose,
}

#[derive(Debug, Arbitrary)]
pub struct Request {
    pub method: Method,
    pub target: Target,
    pub version: Version,
    pub headers: Vec<Header>,
    pub connection: ConnectionHeader,
    pub body: Body,
    pub corruption: Option<Corruption>,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    /// A well-formed method no server here supports.
    Brew,
    /// `get`: methods are case-sensitive.
    Lowercase,
}

#[derive(Debug, Arbitrary)]
pub enum Target {
    Root,
    Health,
    Stats,
    /// `/bytes/{n}` with `n` = [`bytes_len`] of this: mostly small, up to 64 KiB.
    Bytes(u16),
    Delay(u16),
    Echo,
    PauseAccept(u16),
    /// A path that does not exist.
    Missing(u8),
    /// `/?` with a query.
    Query(u8),
    /// Absolute form: `http://fuzz/`.
    Absolute,
    Asterisk,
    /// Anything at all, made printable unless a corruption says otherwise.
    Raw(Octets),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Version {
    Http11,
    Http10,
}

#[derive(Debug, Arbitrary)]
pub struct Header {
    pub name: HeaderName,
    pub value: Octets,
}

#[derive(Debug, Arbitrary)]
pub enum HeaderName {
    Accept,
    UserAgent,
    RequestId,
    Cookie,
    /// Any token; names the model must control (framing, connection) are
    /// renamed so that they cannot change framing by accident.
    Custom(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum ConnectionHeader {
    Absent,
    Close,
    KeepAlive,
}

#[derive(Debug, Arbitrary)]
pub enum Body {
    None,
    Length(Octets),
    Chunked {
        chunks: Vec<Octets>,
        uppercase_hex: bool,
        leading_zeros: bool,
        extension: bool,
    },
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Corruption {
    /// A head far over `max_head_bytes`.
    OversizedHead(u16),
    /// More header fields than `max_headers`.
    TooManyHeaders(u8),
    /// A Content-Length one past `max_body_bytes`.
    BodyTooLarge,
    /// A Content-Length that differs from the body sent.
    LengthLie(i8),
    /// Both Content-Length and chunked: the smuggling classic.
    ContentLengthAndChunked,
    /// Two different Content-Length values.
    DuplicateContentLength(u8),
    /// A transfer coding the server does not know.
    UnknownCoding(u8),
    /// A chunk-size line that is not a chunk size.
    BadChunkSize(u8),
    /// A chunk's data not followed by CRLF.
    MissingChunkCrlf,
    /// A NUL byte in a header value.
    Nul(u16),
    /// Bytes that are not UTF-8 in a header value.
    InvalidUtf8(u16),
    /// Lines ended by CR alone.
    BareCr,
    /// Lines ended by LF alone.
    BareLf,
    /// `Name : value`.
    SpaceBeforeColon,
    /// A header continued on the next line (obsolete folding).
    ObsFold,
    /// `HTTP/0.9`, `HTTP/2.0`, ...
    BadVersion(u8),
    /// A control byte in the method.
    BadMethod(u8),
}

#[derive(Debug, Arbitrary)]
pub enum Delivery {
    Whole,
    /// Sent in the same read as the next request: pipelining.
    WithNext,
    /// Sent in pieces of these sizes (0 counts as 1), the rest in one piece.
    Split(Octets),
    /// The first [`BYTE_AT_A_TIME_MAX`] bytes one at a time, then the rest.
    ByteAtATime,
}

/// How many bytes [`Delivery::ByteAtATime`] sends singly.
pub(super) const BYTE_AT_A_TIME_MAX: usize = 256;

/// The `/bytes/{n}` size for a fuzzed `u16`: quadratic, so that most
/// responses are small (and runs fast) while 64 KiB ones still occur.
pub(super) fn bytes_len(v: u16) -> u64 {
    (u64::from(v) * u64::from(v)) >> 16
}
