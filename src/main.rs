//! The `eidgate` binary: everything lives in the library; see [`eidgate::cli`].

fn main() -> std::process::ExitCode {
    eidgate::cli::run()
}
