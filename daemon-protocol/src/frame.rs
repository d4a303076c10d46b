use bytes::Bytes;

use crate::pairs::Pairs;

/// Bumped on any incompatible change; both sides of a connection must agree.
pub const PROTOCOL_VERSION: u16 = 5;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 8;
/// Bytes in the secret token that proves a connection comes from this Apache.
pub const TOKEN_LEN: usize = 32;

/// A request as the daemon's application sees it: what `rustapp::abi::RequestV1` and the host's
/// lookups give an embedded application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// Which of the group's applications (index in the group's alias list).
    pub app: u32,
    pub method: Bytes,
    /// The request target as the client sent it.
    pub uri: Bytes,
    pub protocol: Bytes,
    pub script_name: Bytes,
    pub path_info: Bytes,
    pub query_string: Bytes,
    /// The declared body length, or -1.
    pub content_length: i64,
    /// How long the response may wait with nothing to send, in milliseconds (the URL's
    /// `stream-idle-timeout`); 0 for the group's `request-timeout`.
    pub idle_timeout_ms: u32,
    /// When the Apache child sent it: microseconds on the machine's monotonic clock
    /// (`CLOCK_MONOTONIC`, shared by all its processes), so that the daemon knows how long it
    /// waited for a thread (`queue-timeout`). 0 when unknown.
    pub sent_at_us: u64,
    /// The whole request body follows this frame unasked (it was small, and all there):
    /// `RequestBody` frames, `RequestTrailers` if any, then `RequestBodyEnd`. The daemon sends
    /// no `ReadBody` for it.
    pub body_follows: bool,
    /// Request headers in arrival order (already filtered: no `Authorization` unless allowed).
    pub headers: Pairs,
    /// CGI-style variables (`REMOTE_ADDR`, `HTTPS`, `SetEnv` values, ...).
    pub vars: Pairs,
}

/// A question to an application's user store, asked while Apache authenticates a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// The request being authenticated (`app` names the application; no `Authorization`).
    pub head: RequestHead,
    /// Which question (the host's numbering: password, groups, realm hash).
    pub question: u8,
    pub user: Bytes,
    /// The password, or the realm, or empty.
    pub secret: Bytes,
}

/// One frame. Child-to-daemon kinds are below 0x80, daemon-to-child kinds from 0x80.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    // ---- child to daemon ----
    /// First frame of a connection.
    Hello {
        version: u16,
        token: [u8; TOKEN_LEN],
    },
    RequestHead(Box<RequestHead>),
    /// Request body bytes, answering one `ReadBody`.
    RequestBody(Bytes),
    /// The request body has ended (answering one `ReadBody`).
    RequestBodyEnd,
    /// The trailers the client sent after its body; comes right before `RequestBodyEnd`, when
    /// there are any.
    RequestTrailers(Vec<(Bytes, Bytes)>),
    /// Answering one `ReadBody`: the next `length` bytes of the request body are in the file
    /// whose descriptor is attached (`SCM_RIGHTS`), from its start: a body Apache read whole
    /// before asking (spooled), which the daemon reads itself rather than through the
    /// connection. More `ReadBody` continue after those bytes.
    RequestBodyFile {
        length: u64,
    },
    /// Apache could not read the request body; the status it chose (413, 400, ...).
    RequestBodyFailed {
        status: u16,
    },
    /// The client went away: stop producing this response (the child does not use the
    /// connection again).
    Cancel,
    /// Asks the application's user store; answered by `UserAnswer` (or `Failed`).
    UserQuery(Box<UserQuery>),
    /// A request that offers to switch its connection to one of `protocols` (its `Upgrade`
    /// header): answered like `RequestHead`, or by a 101 `ResponseHead` and `Switched`.
    UpgradableRequest {
        head: Box<RequestHead>,
        protocols: Bytes,
    },

    // ---- daemon to child ----
    /// The daemon accepted the connection.
    Welcome {
        pid: u32,
    },
    /// The application wants up to `max` more bytes of request body.
    ReadBody {
        max: u32,
    },
    ResponseHead {
        status: u16,
        headers: Vec<(Bytes, Bytes)>,
    },
    ResponseBody(Bytes),
    /// Trailers to send after the body; comes before `ResponseEnd`.
    ResponseTrailers(Vec<(Bytes, Bytes)>),
    /// Send what was written so far to the client now.
    Flush,
    ResponseEnd,
    /// The response body broke off; the client must see it as incomplete.
    ResponseAbort {
        reason: Bytes,
    },
    /// No response head will come: answer `status` (500 when the application failed, 503 when
    /// it is unavailable), and log `reason`.
    Failed {
        status: u16,
        reason: Bytes,
    },
    /// A log line for the request's virtual host (levels as in `rustapp::abi::LOG_*`).
    Log {
        level: u8,
        message: Bytes,
    },
    /// The user store's answer: its result code and the strings it gave (a canonical user name,
    /// groups, a realm hash).
    UserAnswer {
        code: i32,
        values: Vec<Bytes>,
    },
    /// The daemon is closing this idle connection: it did not read, and will not read, any
    /// request sent on it, so the child may send that request again elsewhere.
    Goodbye,
    /// Follows a 101 `ResponseHead`, with a descriptor attached (`SCM_RIGHTS`): a stream
    /// socket connected to the application, which the Apache child relays to the client. The
    /// connection carries nothing more; the child closes it when the tunnel ends.
    Switched,
}

/// Frame kinds on the wire.
pub(crate) mod kind {
    pub const HELLO: u8 = 0x01;
    pub const REQUEST_HEAD: u8 = 0x02;
    pub const REQUEST_BODY: u8 = 0x03;
    pub const REQUEST_BODY_END: u8 = 0x04;
    pub const REQUEST_BODY_FAILED: u8 = 0x05;
    pub const CANCEL: u8 = 0x06;
    pub const USER_QUERY: u8 = 0x07;
    pub const UPGRADABLE_REQUEST: u8 = 0x08;
    pub const REQUEST_BODY_FILE: u8 = 0x09;
    pub const REQUEST_TRAILERS: u8 = 0x0a;
    pub const WELCOME: u8 = 0x81;
    pub const READ_BODY: u8 = 0x82;
    pub const RESPONSE_HEAD: u8 = 0x83;
    pub const RESPONSE_BODY: u8 = 0x84;
    pub const FLUSH: u8 = 0x85;
    pub const RESPONSE_END: u8 = 0x86;
    pub const RESPONSE_ABORT: u8 = 0x87;
    pub const FAILED: u8 = 0x88;
    pub const LOG: u8 = 0x89;
    pub const GOODBYE: u8 = 0x8a;
    pub const USER_ANSWER: u8 = 0x8b;
    pub const SWITCHED: u8 = 0x8c;
    pub const RESPONSE_TRAILERS: u8 = 0x8d;
}

impl Frame {
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Frame::Hello { .. } => kind::HELLO,
            Frame::RequestHead(_) => kind::REQUEST_HEAD,
            Frame::RequestBody(_) => kind::REQUEST_BODY,
            Frame::RequestBodyEnd => kind::REQUEST_BODY_END,
            Frame::RequestTrailers(_) => kind::REQUEST_TRAILERS,
            Frame::ResponseTrailers(_) => kind::RESPONSE_TRAILERS,
            Frame::RequestBodyFile { .. } => kind::REQUEST_BODY_FILE,
            Frame::RequestBodyFailed { .. } => kind::REQUEST_BODY_FAILED,
            Frame::Cancel => kind::CANCEL,
            Frame::UserQuery(_) => kind::USER_QUERY,
            Frame::UpgradableRequest { .. } => kind::UPGRADABLE_REQUEST,
            Frame::Welcome { .. } => kind::WELCOME,
            Frame::ReadBody { .. } => kind::READ_BODY,
            Frame::ResponseHead { .. } => kind::RESPONSE_HEAD,
            Frame::ResponseBody(_) => kind::RESPONSE_BODY,
            Frame::Flush => kind::FLUSH,
            Frame::ResponseEnd => kind::RESPONSE_END,
            Frame::ResponseAbort { .. } => kind::RESPONSE_ABORT,
            Frame::Failed { .. } => kind::FAILED,
            Frame::Log { .. } => kind::LOG,
            Frame::Goodbye => kind::GOODBYE,
            Frame::UserAnswer { .. } => kind::USER_ANSWER,
            Frame::Switched => kind::SWITCHED,
        }
    }
}

/// The largest payloads a side accepts, by what they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request and response heads (all headers and variables together).
    pub max_head: u32,
    /// One piece of body.
    pub max_body_chunk: u32,
    /// Log lines and failure reasons.
    pub max_message: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // Apache's own default limits allow 100 header lines of 8 KiB each.
            max_head: 1 << 20,
            max_body_chunk: 1 << 20,
            max_message: 64 << 10,
        }
    }
}

impl Limits {
    /// The largest payload a frame of `kind` may have, or `None` for an unknown kind.
    pub(crate) fn for_kind(&self, k: u8) -> Option<u32> {
        use kind::*;
        Some(match k {
            HELLO => 2 + TOKEN_LEN as u32,
            REQUEST_HEAD | RESPONSE_HEAD | USER_QUERY | USER_ANSWER | UPGRADABLE_REQUEST
            | REQUEST_TRAILERS | RESPONSE_TRAILERS => self.max_head,
            REQUEST_BODY | RESPONSE_BODY => self.max_body_chunk,
            REQUEST_BODY_END | CANCEL | FLUSH | RESPONSE_END | GOODBYE | SWITCHED => 0,
            REQUEST_BODY_FAILED => 2,
            REQUEST_BODY_FILE => 8,
            WELCOME | READ_BODY => 4,
            RESPONSE_ABORT => 4 + self.max_message,
            FAILED => 2 + 4 + self.max_message,
            LOG => 1 + 4 + self.max_message,
            _ => return None,
        })
    }
}
