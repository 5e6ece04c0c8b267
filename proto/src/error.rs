//! `ProtocolError`: which way a request broke the HTTP/1.1 rules or a limit,
//! and the status that answers it. Timeouts and EOF are not protocol errors;
//! they live in the connection.

/// Why a request was refused before it could be routed. Each one is answered
/// with [`ProtocolError::status`] and `Connection: close`, then the
/// connection reads nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The request line and headers exceed `max_head_bytes`.
    #[error("request head too large")]
    TooLargeHead,
    /// More header fields than `max_headers`.
    #[error("too many header fields")]
    TooManyHeaders,
    /// The body (declared or decoded) exceeds `max_body_bytes`.
    #[error("request body too large")]
    BodyTooLarge,
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    #[error("malformed request line")]
    BadRequestLine,
    /// A header field name or value is malformed.
    #[error("malformed header field")]
    BadHeader,
    /// A version other than HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    BadVersion,
    /// Both `Content-Length` and `Transfer-Encoding`: the classic smuggling
    /// ambiguity, refused rather than resolved.
    #[error("both Content-Length and Transfer-Encoding")]
    BothLengthAndChunked,
    /// `Content-Length` is not a plain decimal number that fits in 64 bits.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// More than one `Content-Length` value, even if they agree.
    #[error("duplicate Content-Length")]
    DuplicateContentLength,
    /// A `Transfer-Encoding` other than exactly `chunked`, or any
    /// `Transfer-Encoding` on an HTTP/1.0 request.
    #[error("unsupported Transfer-Encoding")]
    UnknownTransferCoding,
    /// A malformed chunk: size line, data terminator or trailer section.
    #[error("malformed chunked body")]
    BadChunk,
    /// An HTTP/1.1 request without a `Host` header field (RFC 9112 §3.2).
    #[error("missing Host")]
    MissingHost,
    /// More than one `Host` field line (RFC 9112 §3.2).
    #[error("more than one Host")]
    DuplicateHost,
    /// A `Host` that is not `uri-host [":" port]`, or that names another
    /// authority than an absolute-form target (RFC 9112 §3.2, §3.2.2).
    #[error("invalid Host")]
    BadHost,
    /// A request-target in none of the four forms, or in a form its method
    /// does not take: authority-form is for CONNECT only, asterisk-form
    /// for OPTIONS only (RFC 9112 §3.2).
    #[error("invalid request-target")]
    BadTarget,
}

impl ProtocolError {
    /// The status code this error is answered with: 400, 413, 431 or 505.
    pub fn status(self) -> u16 {
        match self {
            ProtocolError::TooLargeHead | ProtocolError::TooManyHeaders => 431,
            ProtocolError::BodyTooLarge => 413,
            ProtocolError::BadVersion => 505,
            ProtocolError::BadRequestLine
            | ProtocolError::BadHeader
            | ProtocolError::BothLengthAndChunked
            | ProtocolError::BadContentLength
            | ProtocolError::DuplicateContentLength
            | ProtocolError::UnknownTransferCoding
            | ProtocolError::BadChunk
            | ProtocolError::MissingHost
            | ProtocolError::DuplicateHost
            | ProtocolError::BadHost
            | ProtocolError::BadTarget => 400,
        }
    }
}
