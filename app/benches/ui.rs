//! The touchscreen's performance (docs/performance.md):
//! - a full 800×480 (and 1280×720) frame drawn by the software renderer,
//!   home screen and amount entry (target ≤ 4 ms at 800×480);
//! - process start to first frame: `till` started headless in simulator
//!   mode (PKI, in-process acquirer, engine thread, journal, self-test
//!   queued) until its first frame is drawn (target ≤ 300 ms);
//! - resident memory after a sale: the headless demo's figure, printed
//!   once (target ≤ 40 MiB; it includes the in-process acquirer, which a
//!   device does not run).

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use slint::{ComponentHandle, ModelRc, VecModel};
use till_app::ui::platform::Headless;
use till_app::ui::{Role, Screen, Till, TillWindow, TxnType};

fn frames(c: &mut Criterion) {
    let display = Headless::install(800, 480, true).expect("headless platform");
    let ui = TillWindow::new().expect("window");
    ui.show().expect("show");
    let t = ui.global::<Till>();
    t.set_merchant("Till Demo Shop 演示商店".into());
    t.set_operator("admin".into());
    t.set_role(Role::Administrator);
    t.set_clock("2026-11-21 14:05".into());
    t.set_signed_in(true);
    t.set_currency("CNY".into());
    t.set_operators(ModelRc::new(VecModel::from(Vec::new())));
    let mut g = c.benchmark_group("frame");
    for (name, w, h, screen) in [
        ("home 800x480", 800, 480, Screen::Home),
        ("amount 800x480", 800, 480, Screen::Amount),
        ("home 1280x720", 1280, 720, Screen::Home),
    ] {
        display.resize(w, h);
        t.set_txn(TxnType::Sale);
        t.set_amount_entry("88.00".into());
        t.set_screen(screen);
        display.pump();
        assert!(display.render_frame(), "nothing drawn");
        g.bench_function(name, |b| b.iter(|| display.render_frame()));
    }
    g.finish();
}

fn start_to_first_frame(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let till = env!("CARGO_BIN_EXE_till");
    let run = || {
        let status = Command::new(till)
            .args(["--first-frame", "--state"])
            .arg(dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .status()
            .expect("till runs");
        assert!(status.success());
    };
    run(); // the PKI is made once, as on a provisioned terminal
    let mut g = c.benchmark_group("start");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("process start to first frame", |b| b.iter(run));
    g.finish();
}

fn memory_after_sale(_: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_till"))
        .args(["--headless", "--state"])
        .arg(dir.path())
        .output()
        .expect("till runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("resident memory after the sale"))
        .expect("the demo reports its memory");
    println!("memory: {}", line.trim_start_matches("till: "));
}

criterion_group!(benches, frames, start_to_first_frame, memory_after_sale);
criterion_main!(benches);
