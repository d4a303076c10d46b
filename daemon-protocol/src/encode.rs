use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, HEADER_LEN, RequestHead, kind};

/// For a body frame (`RequestBody`, `ResponseBody`): its header and payload, so the sender can
/// write both with one vectored write instead of copying the payload into a buffer.
pub fn body_frame_parts(frame: &Frame) -> Option<([u8; HEADER_LEN], &Bytes)> {
    let data = match frame {
        Frame::RequestBody(data) | Frame::ResponseBody(data) => data,
        _ => return None,
    };
    Some((body_frame_header(frame.kind(), data.len()), data))
}

/// The header of a `ResponseBody` frame carrying `len` bytes, for a sender that writes the
/// bytes from where they are (borrowed from the application) rather than from a `Frame`.
pub fn response_body_header(len: usize) -> [u8; HEADER_LEN] {
    body_frame_header(kind::RESPONSE_BODY, len)
}

fn body_frame_header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind;
    header[4..8].copy_from_slice(
        &u32::try_from(len)
            .expect("body piece over 4 GiB")
            .to_le_bytes(),
    );
    header
}

/// Appends `frame` to `out`. Encoding cannot fail: the sender is responsible for staying within
/// the peer's [`crate::Limits`] (body pieces are split by the code that produces them).
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    let start = begin_frame(out);
    match frame {
        Frame::Hello { version, token } => {
            out.put_u16_le(*version);
            out.put_slice(token);
        }
        Frame::RequestHead(head) => put_request_head(out, head),
        Frame::UpgradableRequest { head, protocols } => {
            put_request_head(out, head);
            put_bytes(out, protocols);
        }
        Frame::UserQuery(query) => {
            put_request_head(out, &query.head);
            out.put_u8(query.question);
            put_bytes(out, &query.user);
            put_bytes(out, &query.secret);
        }
        Frame::UserAnswer { code, values } => {
            out.put_i32_le(*code);
            out.put_u32_le(u32::try_from(values.len()).expect("over 4 billion values"));
            for value in values {
                put_bytes(out, value);
            }
        }
        Frame::RequestBody(data) | Frame::ResponseBody(data) => out.put_slice(data),
        Frame::RequestBodyEnd
        | Frame::Cancel
        | Frame::Flush
        | Frame::ResponseEnd
        | Frame::Goodbye
        | Frame::Switched => {}
        Frame::RequestBodyFailed { status } => out.put_u16_le(*status),
        Frame::RequestBodyFile { length } => out.put_u64_le(*length),
        Frame::Welcome { pid } => out.put_u32_le(*pid),
        Frame::ReadBody { max } => out.put_u32_le(*max),
        Frame::ResponseHead { status, headers } => {
            out.put_u16_le(*status);
            put_pairs(out, headers);
        }
        Frame::RequestTrailers(fields) | Frame::ResponseTrailers(fields) => put_pairs(out, fields),
        Frame::ResponseAbort { reason } => put_bytes(out, reason),
        Frame::Failed { status, reason } => {
            out.put_u16_le(*status);
            put_bytes(out, reason);
        }
        Frame::Log { level, message } => {
            out.put_u8(*level);
            put_bytes(out, message);
        }
    }
    end_frame(out, start, frame.kind());
}

/// A request head's single fields, borrowed from wherever the sender keeps them (see
/// [`RequestHead`] for what each is).
pub struct HeadFields<'a> {
    pub app: u32,
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub protocol: &'a [u8],
    pub script_name: &'a [u8],
    pub path_info: &'a [u8],
    pub query_string: &'a [u8],
    pub content_length: i64,
    pub idle_timeout_ms: u32,
    pub sent_at_us: u64,
    pub body_follows: bool,
}

/// Appends one list of name/value pairs; the count goes in front when the list ends.
pub struct PairWriter<'a> {
    out: &'a mut BytesMut,
    count: u32,
}

impl PairWriter<'_> {
    pub fn pair(&mut self, name: &[u8], value: &[u8]) {
        put_bytes(self.out, name);
        put_bytes(self.out, value);
        self.count += 1;
    }
}

/// Appends a `RequestHead` frame, or an `UpgradableRequest` when `upgrade` holds the offered
/// protocols, encoded straight from the sender's own data: the bytes [`encode`] gives for the
/// same frame, without building it (no copy of each header and variable first).
pub fn encode_request_head(
    out: &mut BytesMut,
    fields: &HeadFields<'_>,
    headers: impl FnOnce(&mut PairWriter<'_>),
    vars: impl FnOnce(&mut PairWriter<'_>),
    upgrade: Option<&[u8]>,
) {
    let start = begin_frame(out);
    put_head_fields(out, fields);
    put_pair_list(out, headers);
    put_pair_list(out, vars);
    let frame_kind = match upgrade {
        Some(protocols) => {
            put_bytes(out, protocols);
            kind::UPGRADABLE_REQUEST
        }
        None => kind::REQUEST_HEAD,
    };
    end_frame(out, start, frame_kind);
}

/// Reserves a frame header; returns where it starts.
fn begin_frame(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_bytes(0, HEADER_LEN);
    start
}

/// Fills in the header reserved at `start` for the payload written since.
fn end_frame(out: &mut BytesMut, start: usize, frame_kind: u8) {
    let payload_len =
        u32::try_from(out.len() - start - HEADER_LEN).expect("frame payload over 4 GiB");
    let header = &mut out[start..start + HEADER_LEN];
    header[0] = frame_kind;
    header[4..8].copy_from_slice(&payload_len.to_le_bytes());
}

impl RequestHead {
    /// Its single fields, borrowed, for [`encode_request_head`].
    pub fn fields(&self) -> HeadFields<'_> {
        HeadFields {
            app: self.app,
            method: &self.method,
            uri: &self.uri,
            protocol: &self.protocol,
            script_name: &self.script_name,
            path_info: &self.path_info,
            query_string: &self.query_string,
            content_length: self.content_length,
            idle_timeout_ms: self.idle_timeout_ms,
            sent_at_us: self.sent_at_us,
            body_follows: self.body_follows,
        }
    }
}

fn put_request_head(out: &mut BytesMut, head: &RequestHead) {
    put_head_fields(out, &head.fields());
    put_pair_list(out, |list| {
        head.headers.iter().for_each(|(n, v)| list.pair(n, v))
    });
    put_pair_list(out, |list| {
        head.vars.iter().for_each(|(n, v)| list.pair(n, v))
    });
}

fn put_head_fields(out: &mut BytesMut, fields: &HeadFields<'_>) {
    out.put_u32_le(fields.app);
    for field in [
        fields.method,
        fields.uri,
        fields.protocol,
        fields.script_name,
        fields.path_info,
        fields.query_string,
    ] {
        put_bytes(out, field);
    }
    out.put_i64_le(fields.content_length);
    out.put_u32_le(fields.idle_timeout_ms);
    out.put_u64_le(fields.sent_at_us);
    out.put_u8(u8::from(fields.body_follows));
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32_le(u32::try_from(bytes.len()).expect("string over 4 GiB"));
    out.put_slice(bytes);
}

fn put_pairs(out: &mut BytesMut, pairs: &[(Bytes, Bytes)]) {
    put_pair_list(out, |list| {
        for (name, value) in pairs {
            list.pair(name, value);
        }
    });
}

/// Appends the count and the pairs `fill` writes.
fn put_pair_list(out: &mut BytesMut, fill: impl FnOnce(&mut PairWriter<'_>)) {
    let at = out.len();
    out.put_u32_le(0);
    let mut list = PairWriter { out, count: 0 };
    fill(&mut list);
    let count = list.count;
    out[at..at + 4].copy_from_slice(&count.to_le_bytes());
}
