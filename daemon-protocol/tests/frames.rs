//! The protocol's frames survive any split of the byte stream, and anything that is not a
//! valid frame is refused with a reason before it can make the receiver allocate.

use bytes::{Bytes, BytesMut};
use rustapp_daemon_protocol::{
    DecodeError, Decoder, Frame, HEADER_LEN, Limits, PROTOCOL_VERSION, RequestHead, TOKEN_LEN,
    UserQuery, encode, encode_request_head, fuzz_decode,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn every_kind() -> Vec<Frame> {
    vec![
        Frame::Hello {
            version: PROTOCOL_VERSION,
            token: [7; TOKEN_LEN],
        },
        Frame::RequestHead(Box::new(RequestHead {
            app: 3,
            method: b("POST"),
            uri: b("/shop/items%20x?id=3"),
            protocol: b("HTTP/1.1"),
            script_name: b("/shop"),
            path_info: b("/items x"),
            query_string: b("id=3"),
            content_length: -1,
            idle_timeout_ms: 90_000,
            sent_at_us: 1_234_567_890_123,
            body_follows: true,
            headers: [
                (b("Host"), b("shop.example")),
                (b("X-Bin"), Bytes::from_static(b"\xff\x00\x01")),
            ]
            .into_iter()
            .collect(),
            vars: [
                (b("REMOTE_ADDR"), b("127.0.0.1")),
                (b("EMPTY"), Bytes::new()),
            ]
            .into_iter()
            .collect(),
        })),
        Frame::RequestHead(Box::default()),
        Frame::RequestBody(Bytes::from(vec![42u8; 100_000])),
        Frame::RequestBody(Bytes::new()),
        Frame::RequestBodyEnd,
        Frame::RequestTrailers(vec![(b("checksum"), b("abc"))]),
        Frame::RequestTrailers(vec![]),
        Frame::RequestBodyFailed { status: 413 },
        Frame::RequestBodyFile { length: 64 << 20 },
        Frame::Cancel,
        Frame::Welcome { pid: 4242 },
        Frame::ReadBody { max: 65536 },
        Frame::ResponseHead {
            status: 201,
            headers: vec![
                (b("Content-Type"), b("text/plain")),
                (b("Set-Cookie"), b("a=1")),
            ],
        },
        Frame::ResponseHead {
            status: 204,
            headers: vec![],
        },
        Frame::ResponseBody(b("Hello World!")),
        Frame::ResponseTrailers(vec![
            (b("grpc-status"), b("3")),
            (b("grpc-message"), b("bad%20name")),
        ]),
        Frame::Flush,
        Frame::ResponseEnd,
        Frame::ResponseAbort {
            reason: b("the body failed after 3 chunks"),
        },
        Frame::Failed {
            status: 503,
            reason: b("application unavailable"),
        },
        Frame::Log {
            level: 2,
            message: b("careful"),
        },
        Frame::Goodbye,
        Frame::UpgradableRequest {
            head: Box::new(RequestHead {
                method: b("GET"),
                headers: [("Upgrade", "websocket")].into_iter().collect(),
                ..RequestHead::default()
            }),
            protocols: b("websocket"),
        },
        Frame::Switched,
        Frame::UserQuery(Box::new(UserQuery {
            head: RequestHead {
                app: 2,
                method: b("GET"),
                vars: [("REMOTE_ADDR", "127.0.0.1")].into_iter().collect(),
                ..RequestHead::default()
            },
            question: 1,
            user: b("alice"),
            secret: b("s3cret"),
        })),
        Frame::UserAnswer {
            code: 0,
            values: vec![b("staff"), b("users")],
        },
        Frame::UserAnswer {
            code: -2,
            values: vec![],
        },
    ]
}

fn stream_of(frames: &[Frame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        encode(frame, &mut out);
    }
    out
}

fn decode_all(decoder: &mut Decoder) -> Vec<Frame> {
    std::iter::from_fn(|| decoder.next_frame().expect("valid frames")).collect()
}

#[test]
fn every_frame_kind_round_trips() {
    let frames = every_kind();
    let mut decoder = Decoder::new(Limits::default());
    decoder.extend(&stream_of(&frames));
    assert_eq!(decode_all(&mut decoder), frames);
}

#[test]
fn request_heads_encoded_from_their_fields_are_the_frames_encode_gives() {
    for frame in every_kind() {
        let (head, upgrade) = match &frame {
            Frame::RequestHead(head) => (head, None),
            Frame::UpgradableRequest { head, protocols } => (head, Some(&protocols[..])),
            _ => continue,
        };
        let mut direct = BytesMut::new();
        encode_request_head(
            &mut direct,
            &head.fields(),
            |list| head.headers.iter().for_each(|(n, v)| list.pair(n, v)),
            |list| head.vars.iter().for_each(|(n, v)| list.pair(n, v)),
            upgrade,
        );
        assert_eq!(direct, stream_of(std::slice::from_ref(&frame)), "{frame:?}");
    }
}

#[test]
fn body_frames_written_in_two_parts_decode_like_encoded_ones() {
    let frame = Frame::ResponseBody(b("vectored"));
    let (header, data) = rustapp_daemon_protocol::body_frame_parts(&frame).unwrap();
    let mut decoder = Decoder::new(Limits::default());
    decoder.extend(&header);
    decoder.extend(data);
    assert_eq!(decoder.next_frame().unwrap(), Some(frame.clone()));
    assert_eq!(
        stream_of(std::slice::from_ref(&frame))[..HEADER_LEN],
        header
    );
    assert_eq!(
        rustapp_daemon_protocol::response_body_header(data.len()),
        header
    );
    assert!(rustapp_daemon_protocol::body_frame_parts(&Frame::Flush).is_none());
}

#[test]
fn frames_split_at_every_byte_still_decode() {
    let frames = every_kind();
    let stream = stream_of(&frames);
    let mut decoder = Decoder::new(Limits::default());
    let mut decoded = Vec::new();
    for byte in stream.iter() {
        decoder.extend(&[*byte]);
        while let Some(frame) = decoder.next_frame().unwrap() {
            decoded.push(frame);
        }
    }
    assert_eq!(decoded, frames);
}

fn header(kind: u8, flags: u8, len: u32) -> Vec<u8> {
    let mut h = vec![kind, flags, 0, 0];
    h.extend_from_slice(&len.to_le_bytes());
    h
}

fn decode_bytes(bytes: &[u8], limits: Limits) -> Result<Option<Frame>, DecodeError> {
    let mut decoder = Decoder::new(limits);
    decoder.extend(bytes);
    decoder.next_frame()
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    let limits = Limits {
        max_body_chunk: 1024,
        ..Limits::default()
    };
    // Only the 8-byte header has arrived: the refusal comes before any payload is buffered.
    let err = decode_bytes(&header(0x84, 0, 1025), limits).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            kind: 0x84,
            len: 1025,
            limit: 1024
        }
    );
    assert!(err.to_string().contains("over the limit of 1024"), "{err}");
    let err = decode_bytes(&header(0x02, 0, u32::MAX), Limits::default()).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }));
    // Fixed-size kinds accept exactly their size.
    assert!(matches!(
        decode_bytes(&header(0x86, 0, 1), limits),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn unknown_kinds_and_reserved_bits_are_refused() {
    let err = decode_bytes(&header(0x7f, 0, 0), Limits::default()).unwrap_err();
    assert_eq!(err, DecodeError::UnknownKind(0x7f));
    assert!(err.to_string().contains("different mod_rustapp version"));
    assert_eq!(
        decode_bytes(&header(0x86, 1, 0), Limits::default()).unwrap_err(),
        DecodeError::ReservedBits { kind: 0x86 }
    );
}

#[test]
fn malformed_payloads_say_what_is_wrong() {
    // A string whose length runs past the payload.
    let mut abort = header(0x87, 0, 6);
    abort.extend_from_slice(&100u32.to_le_bytes());
    abort.extend_from_slice(b"ab");
    let err = decode_bytes(&abort, Limits::default()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Malformed {
            kind: 0x87,
            problem: "it ends inside a field"
        }
    );

    // Bytes after the last field.
    let mut welcome = header(0x81, 0, 4);
    welcome.extend_from_slice(&1u32.to_le_bytes());
    assert!(decode_bytes(&welcome, Limits::default()).unwrap().is_some());
    let mut head = header(0x83, 0, 2 + 4 + 1);
    head.extend_from_slice(&200u16.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.push(9);
    assert_eq!(
        decode_bytes(&head, Limits::default()).unwrap_err(),
        DecodeError::Malformed {
            kind: 0x83,
            problem: "it has bytes after its last field"
        }
    );

    // A pair count the payload cannot hold is refused before allocating for it.
    let mut greedy = header(0x83, 0, 2 + 4 + 8);
    greedy.extend_from_slice(&200u16.to_le_bytes());
    greedy.extend_from_slice(&u32::MAX.to_le_bytes());
    greedy.extend_from_slice(&[0; 8]);
    assert_eq!(
        decode_bytes(&greedy, Limits::default()).unwrap_err(),
        DecodeError::Malformed {
            kind: 0x83,
            problem: "it claims more pairs than it holds"
        }
    );
}

#[test]
fn an_incomplete_frame_waits_for_more_bytes() {
    let mut stream = BytesMut::new();
    encode(&Frame::ResponseBody(b("0123456789")), &mut stream);
    let mut decoder = Decoder::new(Limits::default());
    decoder.extend(&stream[..HEADER_LEN + 5]);
    assert_eq!(decoder.next_frame().unwrap(), None);
    decoder.extend(&stream[HEADER_LEN + 5..]);
    assert_eq!(
        decoder.next_frame().unwrap(),
        Some(Frame::ResponseBody(b("0123456789")))
    );
    assert_eq!(decoder.next_frame().unwrap(), None);
}

/// The fuzz target's body over deterministic mutations of valid streams (CI runs this; the
/// open-ended search runs with `cargo fuzz run decode`, see daemon-protocol/fuzz).
#[test]
fn the_fuzz_check_holds_on_mutated_streams() {
    let valid = stream_of(&every_kind());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    fuzz_decode(&valid);
    for _ in 0..2_000 {
        let mut data = valid.to_vec();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % data.len();
            data[at] = next() as u8;
        }
        data.truncate((next() as usize) % (data.len() + 1));
        fuzz_decode(&data);
    }
    for len in 0..64 {
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        fuzz_decode(&noise);
    }
}
