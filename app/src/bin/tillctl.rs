//! `tillctl`: see [`till_app::cli`].

fn main() -> std::process::ExitCode {
    till_app::cli::main()
}
