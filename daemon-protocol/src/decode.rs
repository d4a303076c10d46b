use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{Frame, HEADER_LEN, Limits, RequestHead, TOKEN_LEN, UserQuery, kind};
use crate::pairs::{Pairs, Span};

/// Why the bytes from a peer are not a valid frame. After an error the connection is unusable
/// (the stream's framing is lost): close it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnknownKind(u8),
    /// The header's flags or reserved bytes are not zero.
    ReservedBits {
        kind: u8,
    },
    /// The declared payload is larger than this side accepts for that kind.
    TooLarge {
        kind: u8,
        len: u32,
        limit: u32,
    },
    /// The payload does not have the shape its kind requires.
    Malformed {
        kind: u8,
        problem: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownKind(k) => write!(
                f,
                "unknown frame kind 0x{k:02x} (is the peer a different mod_rustapp version?)"
            ),
            DecodeError::ReservedBits { kind } => {
                write!(f, "frame 0x{kind:02x} has non-zero reserved header bits")
            }
            DecodeError::TooLarge { kind, len, limit } => {
                write!(
                    f,
                    "frame 0x{kind:02x} declares {len} bytes, over the limit of {limit}"
                )
            }
            DecodeError::Malformed { kind, problem } => {
                write!(f, "frame 0x{kind:02x} is malformed: {problem}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Turns a byte stream into frames, however the bytes were split by reads.
pub struct Decoder {
    buf: BytesMut,
    limits: Limits,
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            // Grows with use: a peer may hold many connections that wait.
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Adds bytes read from the peer.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read into directly (`BufMut`), avoiding a copy through `extend`.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether a whole frame is buffered (its header's length says the payload is all here).
    pub fn has_frame(&self) -> bool {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return false;
        };
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        self.buf.len() >= HEADER_LEN + len as usize
    }

    /// How many bytes the frame begun in the buffer still lacks: 0 when its header is not
    /// here yet (or it is whole). A reader can take a large frame's rest straight into
    /// [`Decoder::buffer`], which [`Decoder::next_frame`] made room for.
    pub fn missing(&self) -> usize {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return 0;
        };
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        (HEADER_LEN + len as usize).saturating_sub(self.buf.len())
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = &self.buf[..HEADER_LEN];
        let k = header[0];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let limit = self.limits.for_kind(k).ok_or(DecodeError::UnknownKind(k))?;
        if header[1] != 0 || header[2] != 0 || header[3] != 0 {
            return Err(DecodeError::ReservedBits { kind: k });
        }
        if len > limit {
            return Err(DecodeError::TooLarge {
                kind: k,
                len,
                limit,
            });
        }
        let total = HEADER_LEN + len as usize;
        if self.buf.len() < total {
            // Room for the rest of this frame (bounded by the limit checked above).
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len as usize).freeze();
        parse(k, payload).map(Some)
    }
}

fn parse(k: u8, payload: Bytes) -> Result<Frame, DecodeError> {
    let mut r = Reader {
        kind: k,
        data: payload,
    };
    let frame = match k {
        kind::HELLO => {
            let version = r.u16()?;
            let mut token = [0u8; TOKEN_LEN];
            token.copy_from_slice(&r.take(TOKEN_LEN)?);
            Frame::Hello { version, token }
        }
        kind::REQUEST_HEAD => Frame::RequestHead(Box::new(r.request_head()?)),
        kind::UPGRADABLE_REQUEST => Frame::UpgradableRequest {
            head: Box::new(r.request_head()?),
            protocols: r.bytes()?,
        },
        kind::USER_QUERY => Frame::UserQuery(Box::new(UserQuery {
            head: r.request_head()?,
            question: r.u8()?,
            user: r.bytes()?,
            secret: r.bytes()?,
        })),
        kind::USER_ANSWER => Frame::UserAnswer {
            code: r.u32()? as i32,
            values: r.list()?,
        },
        kind::REQUEST_BODY => Frame::RequestBody(r.rest()),
        kind::RESPONSE_BODY => Frame::ResponseBody(r.rest()),
        kind::REQUEST_BODY_END => Frame::RequestBodyEnd,
        kind::CANCEL => Frame::Cancel,
        kind::FLUSH => Frame::Flush,
        kind::RESPONSE_END => Frame::ResponseEnd,
        kind::GOODBYE => Frame::Goodbye,
        kind::SWITCHED => Frame::Switched,
        kind::REQUEST_BODY_FAILED => Frame::RequestBodyFailed { status: r.u16()? },
        kind::REQUEST_BODY_FILE => Frame::RequestBodyFile { length: r.u64()? },
        kind::WELCOME => Frame::Welcome { pid: r.u32()? },
        kind::READ_BODY => Frame::ReadBody { max: r.u32()? },
        kind::RESPONSE_HEAD => Frame::ResponseHead {
            status: r.u16()?,
            headers: r.pairs()?,
        },
        kind::REQUEST_TRAILERS => Frame::RequestTrailers(r.pairs()?),
        kind::RESPONSE_TRAILERS => Frame::ResponseTrailers(r.pairs()?),
        kind::RESPONSE_ABORT => Frame::ResponseAbort { reason: r.bytes()? },
        kind::FAILED => Frame::Failed {
            status: r.u16()?,
            reason: r.bytes()?,
        },
        kind::LOG => Frame::Log {
            level: r.u8()?,
            message: r.bytes()?,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    r.finish()?;
    Ok(frame)
}

/// Reads a payload field by field; every read checks the bytes are there.
struct Reader {
    kind: u8,
    data: Bytes,
}

impl Reader {
    fn malformed(&self, problem: &'static str) -> DecodeError {
        DecodeError::Malformed {
            kind: self.kind,
            problem,
        }
    }

    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.data.len() < n {
            return Err(self.malformed("it ends inside a field"));
        }
        Ok(self.data.split_to(n))
    }

    /// `N` bytes, read in place (no `Bytes` handle: its reference count is not touched).
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes: [u8; N] = self
            .data
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.malformed("it ends inside a field"))?;
        self.data.advance(N);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.fixed()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.fixed()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.fixed()?))
    }

    /// A length-prefixed byte string (zero-copy: a slice of the payload).
    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn request_head(&mut self) -> Result<RequestHead, DecodeError> {
        Ok(RequestHead {
            app: self.u32()?,
            method: self.bytes()?,
            uri: self.bytes()?,
            protocol: self.bytes()?,
            script_name: self.bytes()?,
            path_info: self.bytes()?,
            query_string: self.bytes()?,
            content_length: self.i64()?,
            idle_timeout_ms: self.u32()?,
            sent_at_us: self.u64()?,
            body_follows: self.u8()? != 0,
            headers: self.pairs_in_place()?,
            vars: self.pairs_in_place()?,
        })
    }

    fn list(&mut self) -> Result<Vec<Bytes>, DecodeError> {
        let count = self.u32()? as usize;
        // Each item takes at least its length prefix (see `pairs`).
        if count > self.data.len() / 4 {
            return Err(self.malformed("it claims more items than it holds"));
        }
        (0..count).map(|_| self.bytes()).collect()
    }

    fn pairs(&mut self) -> Result<Vec<(Bytes, Bytes)>, DecodeError> {
        let count = self.pair_count()?;
        let mut pairs = Vec::with_capacity(count);
        for _ in 0..count {
            pairs.push((self.bytes()?, self.bytes()?));
        }
        Ok(pairs)
    }

    /// A request head's pairs: where each lies in the payload, not a handle per name and value.
    fn pairs_in_place(&mut self) -> Result<Pairs, DecodeError> {
        let count = self.pair_count()?;
        let payload = self.data.clone();
        let mut spans = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.span(&payload)?;
            let value = self.span(&payload)?;
            spans.push(Span([name[0], name[1], value[0], value[1]]));
        }
        Ok(Pairs::in_buffer(payload, spans))
    }

    /// A pair count, refused when the payload cannot hold that many: each pair takes at least
    /// its two length prefixes, so nothing is allocated for a count that lies.
    fn pair_count(&mut self) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > self.data.len() / 8 {
            return Err(self.malformed("it claims more pairs than it holds"));
        }
        Ok(count)
    }

    /// A length-prefixed byte string, skipped: where it starts in `payload` (which the reader
    /// started from) and its length.
    fn span(&mut self, payload: &Bytes) -> Result<[u32; 2], DecodeError> {
        let len = self.u32()?;
        if len as usize > self.data.len() {
            return Err(self.malformed("a length runs past its end"));
        }
        // Frames are far below 4 GiB (see `Limits`), so offsets fit.
        let start = (payload.len() - self.data.len()) as u32;
        self.data.advance(len as usize);
        Ok([start, len])
    }

    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.data)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("it has bytes after its last field"))
        }
    }
}
