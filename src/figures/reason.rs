//! Why a daemon process ended, as the figures count it.

/// Why a daemon process ended. The numbers are what the process, and then its supervisor,
/// write into the shared figures; 0 is "not known".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum EndReason {
    MaximumRequests = 1,
    Inactivity = 2,
    LibraryReplaced = 3,
    /// A call into the application ran past its limit and never returned.
    RequestTimeout = 4,
    StartupTimeout = 5,
    GracefulRestart = 6,
    MemoryLimit = 7,
    CpuTimeLimit = 8,
    RestartInterval = 9,
    RestartFile = 10,
    /// The process could not start (become its user, listen, ...).
    StartFailed = 11,
    /// Apache stops: not a recycle.
    Stopping = 12,
    /// Killed by a signal (a crash, or the OOM killer, or an admin's `kill`).
    Signal = 13,
    /// Exited with a status of its own (an application calling `exit`, a failure).
    ExitCode = 14,
    /// An elastic group shrank: the process had no request for its idle-timeout.
    IdleTimeout = 15,
}

impl EndReason {
    pub(crate) const ALL: [EndReason; 15] = [
        EndReason::MaximumRequests,
        EndReason::Inactivity,
        EndReason::LibraryReplaced,
        EndReason::RequestTimeout,
        EndReason::StartupTimeout,
        EndReason::GracefulRestart,
        EndReason::MemoryLimit,
        EndReason::CpuTimeLimit,
        EndReason::RestartInterval,
        EndReason::RestartFile,
        EndReason::StartFailed,
        EndReason::Stopping,
        EndReason::Signal,
        EndReason::ExitCode,
        EndReason::IdleTimeout,
    ];

    /// The reason a number stands for; `None` for anything else (figures a daemon wrote
    /// are not trusted).
    pub(crate) fn from_code(code: u64) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| *r as u64 == code)
    }

    /// Its name in the status page and the metrics' `reason` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EndReason::MaximumRequests => "maximum-requests",
            EndReason::Inactivity => "inactivity-timeout",
            EndReason::LibraryReplaced => "library-replaced",
            EndReason::RequestTimeout => "request-timeout",
            EndReason::StartupTimeout => "startup-timeout",
            EndReason::GracefulRestart => "graceful-restart",
            EndReason::MemoryLimit => "memory-limit",
            EndReason::CpuTimeLimit => "cpu-time-limit",
            EndReason::RestartInterval => "restart-interval",
            EndReason::RestartFile => "restart-file",
            EndReason::StartFailed => "start-failed",
            EndReason::Stopping => "apache-stopping",
            EndReason::Signal => "signal",
            EndReason::ExitCode => "exit-code",
            EndReason::IdleTimeout => "idle-timeout",
        }
    }

    /// Reasons a process gives itself for retiring or failing (a signal or exit status is
    /// only ever what its supervisor saw).
    pub(crate) fn is_its_own(self) -> bool {
        !matches!(self, EndReason::Signal | EndReason::ExitCode)
    }
}
