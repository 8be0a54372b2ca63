//! `tillctl`'s main, built under a test name.
fn main() -> std::process::ExitCode {
    till_app::cli::main()
}
