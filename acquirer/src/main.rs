//! The `till-acquirer` binary; everything is in the library so that other
//! packages can ship the same program.

fn main() -> std::process::ExitCode {
    till_acquirer::main()
}
