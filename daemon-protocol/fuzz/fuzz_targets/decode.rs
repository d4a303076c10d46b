//! Arbitrary bytes from a peer never make the decoder panic or loop, and every frame it accepts
//! re-encodes to the same frame.
//!
//!     cd daemon-protocol && RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time=60
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rustapp_daemon_protocol::fuzz_decode(data);
});
