//! What a hook answers Apache: typed, so that no code above this layer handles `c_int` codes.

use std::ffi::c_int;

use super::sys;

/// An HTTP status a hook answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HttpStatus(u16);

impl HttpStatus {
    pub(crate) const BAD_REQUEST: HttpStatus = HttpStatus(400);
    pub(crate) const NOT_FOUND: HttpStatus = HttpStatus(404);
    pub(crate) const METHOD_NOT_ALLOWED: HttpStatus = HttpStatus(405);
    pub(crate) const INTERNAL_SERVER_ERROR: HttpStatus = HttpStatus(500);
    pub(crate) const BAD_GATEWAY: HttpStatus = HttpStatus(502);
    pub(crate) const SERVICE_UNAVAILABLE: HttpStatus = HttpStatus(503);
    pub(crate) const GATEWAY_TIME_OUT: HttpStatus = HttpStatus(504);

    pub(crate) fn code(self) -> u16 {
        self.0
    }

    /// A status Apache's own functions chose (304 Not Modified, 412, ...): 300–599 as given,
    /// anything else 500.
    pub(crate) fn from_apache(code: u16) -> HttpStatus {
        if (300..=599).contains(&code) {
            HttpStatus(code)
        } else {
            HttpStatus::INTERNAL_SERVER_ERROR
        }
    }

    /// An error status that came from somewhere not trusted (a daemon, an input filter): a
    /// 4xx or 5xx as given, anything else `otherwise`.
    pub(crate) fn error_or(code: u16, otherwise: HttpStatus) -> HttpStatus {
        if (400..=599).contains(&code) {
            HttpStatus(code)
        } else {
            otherwise
        }
    }
}

impl std::fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A request hook's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookStatus {
    /// Handled (or, for `translate_name`/`map_to_storage`, claimed).
    Ok,
    /// Not this module's request.
    Declined,
    /// Apache answers with its error page for this status.
    Error(HttpStatus),
}

impl From<HttpStatus> for HookStatus {
    fn from(status: HttpStatus) -> HookStatus {
        HookStatus::Error(status)
    }
}

impl HookStatus {
    pub(super) fn raw(self) -> c_int {
        match self {
            HookStatus::Ok => sys::OK,
            HookStatus::Declined => sys::DECLINED,
            HookStatus::Error(status) => c_int::from(status.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_error_statuses_are_taken_from_outside() {
        assert_eq!(
            HttpStatus::error_or(413, HttpStatus::BAD_GATEWAY),
            HttpStatus(413)
        );
        for code in [0, 200, 302, 600] {
            assert_eq!(
                HttpStatus::error_or(code, HttpStatus::BAD_GATEWAY),
                HttpStatus::BAD_GATEWAY
            );
        }
    }
}
