//! HTTP helpers over `ureq`, and raw sockets for what a well-behaved client cannot do
//! (disconnecting midway, inspecting the exact bytes of a broken response).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A whole response.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `name=value` line of a testapp answer.
    pub fn field(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.text()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Result<Reply, String> {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let mut names = response.headers_names();
    names.sort();
    names.dedup(); // a repeated header is listed once per line
    let headers = names
        .iter()
        .flat_map(|n| {
            response
                .all(n)
                .into_iter()
                .map(|v| (n.clone(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(256 << 20)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn try_get(url: &str) -> Result<Reply, String> {
    reply(agent().get(url).call())
}

pub fn get(url: &str) -> Reply {
    try_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A request without a body: `GET`, `HEAD`, ...
pub fn request(method: &str, url: &str) -> Reply {
    reply(agent().request(method, url).call()).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().get(url);
    for (n, v) in headers {
        request = request.set(n, v);
    }
    reply(request.call()).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn post(url: &str, body: &[u8]) -> Reply {
    reply(agent().post(url).send_bytes(body)).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// POSTs a body from a reader with chunked transfer encoding.
pub fn post_chunked(url: &str, body: impl Read) -> Reply {
    reply(agent().post(url).send(body)).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Sends raw request bytes and reads everything until the server closes the connection.
pub fn raw_exchange(port: u16, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// The bytes a generated testapp stream has at offset `i`.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A reader producing `len` pattern bytes without holding them in memory.
pub struct PatternReader {
    pub offset: u64,
    pub len: u64,
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len - self.offset).min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern_byte(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The testapp's checksum of a body (see its `/upload-digest`).
pub fn checksum(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0u64, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// An `Authorization` value for HTTP basic authentication.
pub fn basic_credentials(user: &str, password: &str) -> String {
    // Base64 by hand: a few lines, for the tests' only use of it.
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("Basic ");
    for chunk in format!("{user}:{password}").as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// GET with basic authentication.
pub fn get_as(url: &str, user: &str, password: &str) -> Reply {
    get_with(
        url,
        &[("Authorization", &basic_credentials(user, password))],
    )
}
