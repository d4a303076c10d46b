//! In an Apache child: a request body read from the client whole before the daemon is asked,
//! so that a slow upload costs an Apache thread, not a daemon's. Kept in memory up to a limit,
//! then (all of it) in an unnamed temporary file, which the daemon is given to read itself.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

use crate::ffi::{HttpStatus, ReadNow};
use crate::host::Exchange;

/// Bytes of a body kept in memory before the rest goes to a temporary file.
pub(crate) const IN_MEMORY: usize = 256 * 1024;

/// The most one read asks Apache for.
const READ_SIZE: usize = 64 * 1024;

/// How much one read asks for, `length` bytes into a body that declared `declared`: what is
/// left of it and one more (to see its end), else a first small piece for a body of unknown
/// length (most are small), and at most `READ_SIZE`.
fn read_room(declared: Option<u64>, length: u64) -> usize {
    let wanted = match declared {
        Some(declared) => declared.saturating_sub(length).saturating_add(1),
        None if length == 0 => 16 * 1024,
        None => READ_SIZE as u64,
    };
    usize::try_from(wanted).map_or(READ_SIZE, |wanted| wanted.min(READ_SIZE))
}

pub(crate) struct Spool {
    /// The body while it fits in memory; empty once it went to `file`.
    memory: Vec<u8>,
    file: Option<File>,
    /// Bytes kept, in memory or in the file.
    length: u64,
    /// Where the next read of the memory starts.
    position: usize,
    /// Whether the whole body is here (else the rest is still the client's to send).
    complete: bool,
}

impl Spool {
    /// Reads the body of `exchange`, whole or (a chunked one larger than `limit`) its first
    /// part; `Err` is the status to answer when that fails (413 beyond `LimitRequestBody`, 400
    /// for a malformed body, 500 without a temporary file).
    pub(crate) fn fill(exchange: &Exchange<'_>, limit: u64) -> Result<Spool, HttpStatus> {
        Spool::fill_with(exchange, limit, true)
    }

    /// As `fill`, but only with what the client sent already: the rest of the body is read
    /// as the application asks for it.
    pub(crate) fn fill_now(exchange: &Exchange<'_>, limit: u64) -> Result<Spool, HttpStatus> {
        Spool::fill_with(exchange, limit, false)
    }

    fn fill_with(exchange: &Exchange<'_>, limit: u64, wait: bool) -> Result<Spool, HttpStatus> {
        let mut spool = Spool {
            memory: Vec::new(),
            file: None,
            length: 0,
            position: 0,
            complete: false,
        };
        // Where reads land once the body went to the file.
        let mut to_file = Vec::new();
        let declared = u64::try_from(exchange.content_length()).ok();
        loop {
            if spool.length >= limit {
                break; // the rest streams
            }
            // Read straight into the memory while the body fits there: most bodies are small,
            // and neither a buffer to zero nor a copy is then needed.
            let into = if spool.file.is_none() {
                &mut spool.memory
            } else {
                &mut to_file
            };
            let read = exchange.read_body_appending(into, read_room(declared, spool.length), wait);
            match read {
                ReadNow::Read(0) => {
                    spool.complete = true;
                    break;
                }
                ReadNow::Read(n) => spool.length += n as u64,
                ReadNow::NotYet => break,
                ReadNow::Failed => {
                    let status = exchange.body_failure_status().unwrap_or(400);
                    return Err(HttpStatus::error_or(status, HttpStatus::BAD_REQUEST));
                }
            }
            spool.spill(&mut to_file).map_err(|e| {
                log::error!("cannot keep a request body in a temporary file: {e}; answering 500");
                HttpStatus::INTERNAL_SERVER_ERROR
            })?;
        }
        Ok(spool)
    }

    /// Moves the body to the file once it outgrew the memory, and what was read for the file
    /// since into it.
    fn spill(&mut self, to_file: &mut Vec<u8>) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None if self.memory.len() <= IN_MEMORY => return Ok(()),
            None => {
                // The whole body goes to the file, so that the daemon can be given it alone.
                let mut file = tempfile::tempfile()?;
                file.write_all(&self.memory)?;
                self.memory = Vec::new();
                self.file.insert(file)
            }
        };
        file.write_all(to_file)?;
        to_file.clear();
        Ok(())
    }

    /// The whole body, when it was all read and is in memory, at most `limit` bytes: taken
    /// (what is left to read is then nothing).
    pub(crate) fn take_whole(&mut self, limit: usize) -> Option<Vec<u8>> {
        if !self.complete || self.file.is_some() || self.memory.len() > limit {
            return None;
        }
        self.position = 0;
        Some(std::mem::take(&mut self.memory))
    }

    /// Whether the whole body was read into the spool.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// The next bytes kept in memory: a count, 0 when they are all read (or the body is in a
    /// file, which is handed over instead).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.memory.len() - self.position);
        buf[..n].copy_from_slice(&self.memory[self.position..self.position + n]);
        self.position += n;
        n
    }

    /// The file the body is in, opened again for reading only, and how many bytes of it are
    /// the body: for the daemon, which reads it itself (no copy through the connection, no
    /// round trip per piece). `None` when the body is in memory or the file went already.
    pub(crate) fn hand_over(&mut self) -> Option<(File, u64)> {
        let file = self.file.take()?;
        // The daemon gets a descriptor that can only read, where /proc allows (the file has
        // no name of its own).
        let reader = File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or(file);
        Some((reader, self.length))
    }
}

#[cfg(test)]
mod tests {
    use super::{READ_SIZE, read_room};

    #[test]
    fn a_read_asks_for_what_is_left_and_one_more_within_the_read_size() {
        assert_eq!(read_room(Some(14), 0), 15);
        assert_eq!(read_room(Some(14), 14), 1);
        assert_eq!(read_room(Some(0), 0), 1);
        assert_eq!(read_room(Some(1 << 30), 0), READ_SIZE);
        assert_eq!(read_room(None, 0), 16 * 1024);
        assert_eq!(read_room(None, 1), READ_SIZE);
    }
}
