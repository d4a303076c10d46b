//! Apache's log levels.

use std::ffi::c_int;

use super::sys;

/// An Apache log level (`APLOG_ERR` ... `APLOG_TRACE1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ApacheLevel(pub c_int);

impl ApacheLevel {
    pub const ERR: ApacheLevel = ApacheLevel(sys::APLOG_ERR);
    pub const WARNING: ApacheLevel = ApacheLevel(sys::APLOG_WARNING);
    pub const INFO: ApacheLevel = ApacheLevel(sys::APLOG_INFO);
    pub const DEBUG: ApacheLevel = ApacheLevel(sys::APLOG_DEBUG);
    pub const TRACE1: ApacheLevel = ApacheLevel(sys::APLOG_TRACE1);
}
