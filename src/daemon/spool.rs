//! In an Apache child: a request body read from the client whole before the daemon is asked,
//! so that a slow upload costs an Apache thread, not a daemon's. Kept in memory up to a limit,
//! then in an unnamed temporary file.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use crate::ffi::HttpStatus;
use crate::host::Exchange;

/// Bytes of a body kept in memory before the rest goes to a temporary file.
pub(crate) const IN_MEMORY: usize = 256 * 1024;

pub(crate) struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    /// Where the next read starts, in the memory part and then the file.
    position: usize,
    /// Whether the whole body is here (else the rest is still the client's to send).
    complete: bool,
}

impl Spool {
    /// Reads the body of `exchange`, whole or (a chunked one larger than `limit`) its first
    /// part; `Err` is the status to answer when that fails (413 beyond `LimitRequestBody`, 400
    /// for a malformed body, 500 without a temporary file).
    pub(crate) fn fill(exchange: &Exchange<'_>, limit: u64) -> Result<Spool, HttpStatus> {
        let mut spool = Spool {
            memory: Vec::new(),
            file: None,
            position: 0,
            complete: false,
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut kept: u64 = 0;
        loop {
            if kept >= limit {
                break; // the rest streams
            }
            let n = match exchange.read_body(&mut buf) {
                Some(0) => {
                    spool.complete = true;
                    break;
                }
                Some(n) => n,
                None => {
                    let status = exchange.body_failure_status().unwrap_or(400);
                    return Err(HttpStatus::error_or(status, HttpStatus::BAD_REQUEST));
                }
            };
            spool.append(&buf[..n]).map_err(|e| {
                log::error!("cannot keep a request body in a temporary file: {e}; answering 500");
                HttpStatus::INTERNAL_SERVER_ERROR
            })?;
            kept += n as u64;
        }
        if let Some(file) = &mut spool.file {
            file.rewind()
                .map_err(|_| HttpStatus::INTERNAL_SERVER_ERROR)?;
        }
        Ok(spool)
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + data.len() <= IN_MEMORY {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile()?),
        };
        file.write_all(data)
    }

    /// Whether the whole body was read into the spool.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// The next bytes kept: a count, 0 when they are all read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position < self.memory.len() {
            let n = buf.len().min(self.memory.len() - self.position);
            buf[..n].copy_from_slice(&self.memory[self.position..self.position + n]);
            self.position += n;
            return Ok(n);
        }
        match &mut self.file {
            Some(file) => file.read(buf),
            None => Ok(0),
        }
    }
}
