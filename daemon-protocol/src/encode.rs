use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, HEADER_LEN, RequestHead};

/// For a body frame (`RequestBody`, `ResponseBody`): its header and payload, so the sender can
/// write both with one vectored write instead of copying the payload into a buffer.
pub fn body_frame_parts(frame: &Frame) -> Option<([u8; HEADER_LEN], &Bytes)> {
    let data = match frame {
        Frame::RequestBody(data) | Frame::ResponseBody(data) => data,
        _ => return None,
    };
    let mut header = [0u8; HEADER_LEN];
    header[0] = frame.kind();
    header[4..8].copy_from_slice(
        &u32::try_from(data.len())
            .expect("body piece over 4 GiB")
            .to_le_bytes(),
    );
    Some((header, data))
}

/// Appends `frame` to `out`. Encoding cannot fail: the sender is responsible for staying within
/// the peer's [`crate::Limits`] (body pieces are split by the code that produces them).
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    let start = out.len();
    out.put_bytes(0, HEADER_LEN);
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
        Frame::Welcome { pid } => out.put_u32_le(*pid),
        Frame::ReadBody { max } => out.put_u32_le(*max),
        Frame::ResponseHead { status, headers } => {
            out.put_u16_le(*status);
            put_pairs(out, headers);
        }
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
    let payload_len =
        u32::try_from(out.len() - start - HEADER_LEN).expect("frame payload over 4 GiB");
    let header = &mut out[start..start + HEADER_LEN];
    header[0] = frame.kind();
    header[4..8].copy_from_slice(&payload_len.to_le_bytes());
}

fn put_request_head(out: &mut BytesMut, head: &RequestHead) {
    out.put_u32_le(head.app);
    for field in [
        &head.method,
        &head.uri,
        &head.protocol,
        &head.script_name,
        &head.path_info,
        &head.query_string,
    ] {
        put_bytes(out, field);
    }
    out.put_i64_le(head.content_length);
    out.put_u32_le(head.idle_timeout_ms);
    put_pairs(out, &head.headers);
    put_pairs(out, &head.vars);
}

fn put_bytes(out: &mut BytesMut, bytes: &Bytes) {
    out.put_u32_le(u32::try_from(bytes.len()).expect("string over 4 GiB"));
    out.put_slice(bytes);
}

fn put_pairs(out: &mut BytesMut, pairs: &[(Bytes, Bytes)]) {
    out.put_u32_le(u32::try_from(pairs.len()).expect("over 4 billion pairs"));
    for (name, value) in pairs {
        put_bytes(out, name);
        put_bytes(out, value);
    }
}
