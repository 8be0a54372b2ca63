//! `till`, the touchscreen terminal app.
fn main() -> std::process::ExitCode {
    till_app::ui::main()
}
