//! The `eidgate` command line (in progress).

/// Entry point of the binary.
pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
