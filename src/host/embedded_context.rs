//! The embedded host: applications running inside Apache's own processes, served through the
//! generic host table over the request's [`Exchange`].

use rustapp::abi::{HostV1, RequestV1};

use super::exchange::Exchange;
use super::head::ResponseHead;
use super::host_table::{InstanceContext, RequestState, abi_level, apache_level, host_table};
use crate::ffi::{ApacheLevel, ReadNow, Server, log_main, log_request, log_server};

/// An embedded instance's context: the server (virtual host) whose error log it writes to.
pub(crate) struct AppContext {
    pub(crate) server: Server<'static>,
}

pub(crate) static HOST_V1: HostV1 = host_table::<Exchange<'static>, AppContext>();

impl InstanceContext for AppContext {
    fn log(&self, level: u32, message: &str) {
        log_server(self.server, apache_level(level), message);
    }

    fn max_log_level(&self) -> u32 {
        abi_level(self.server.log_level())
    }

    fn log_unattributed(level: u32, message: &str) {
        log_main(apache_level(level), message);
    }

    fn max_log_level_unattributed() -> u32 {
        abi_level(ApacheLevel::WARNING)
    }
}

impl<'r> RequestState for Exchange<'r> {
    type WholeBody = &'r [u8];

    fn abi_request(&self) -> RequestV1 {
        Exchange::abi_request(self)
    }

    fn finish_head(&self) -> Result<ResponseHead, String> {
        Exchange::finish_head(self)
    }

    fn body_failure_status(&self) -> Option<u16> {
        Exchange::body_failure_status(self)
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        Exchange::header(self, name)
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        self.each_header(visit);
    }

    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        Exchange::var(self, name)
    }

    fn for_each_var(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        self.each_var(visit);
    }

    fn read_body(&self, buf: &mut [u8]) -> Option<usize> {
        Exchange::read_body(self, buf)
    }

    fn read_body_now(&self, buf: &mut [u8]) -> ReadNow {
        Exchange::read_body_now(self, buf)
    }

    fn for_each_trailer(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        self.each_trailer(visit);
    }

    fn add_trailer(&self, name: &[u8], value: &[u8]) -> bool {
        Exchange::add_trailer(self, name, value)
    }

    fn input_fd(&self) -> Option<std::os::fd::RawFd> {
        self.request().input_fd()
    }

    fn set_status(&self, status: u32) -> bool {
        Exchange::set_status(self, status)
    }

    fn add_header(&self, name: &[u8], value: &[u8]) -> bool {
        Exchange::add_header(self, name, value)
    }

    fn set_body(&self, body: &[u8]) -> bool {
        Exchange::set_body(self, body)
    }

    fn take_whole_body(&self) -> Option<&'r [u8]> {
        Exchange::take_whole_body(self)
    }

    fn log(&self, level: u32, message: &[u8]) {
        log_request(
            self.request(),
            apache_level(level),
            &String::from_utf8_lossy(message),
        );
    }

    fn withdraw_upgrade_offer(&self) {
        Exchange::withdraw_upgrade_offer(self);
    }

    fn accept_upgrade(&self) -> Option<std::os::fd::OwnedFd> {
        Exchange::accept_upgrade(self)
    }
}
