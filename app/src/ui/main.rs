//! `till`'s command line: simulator mode (a window, or the headless demo
//! where there is no display) and device mode (`--config`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use slint::ComponentHandle;

use super::platform::Clock;
use super::{App, Options, device};

#[derive(Parser)]
#[command(
    name = "till",
    version,
    about = "Till touchscreen payment terminal. Without --config: simulator mode with the bundled acquirer."
)]
struct Cli {
    /// Device configuration: real drivers, the terminal's PKI and journal.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulator mode: where the PKI, journal, ledger and receipts live
    /// (default: ~/.local/share/till-sim).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Simulator mode: run the scripted demo without a window even where
    /// there is a display.
    #[arg(long)]
    headless: bool,
    /// Where the headless demo writes its screenshots (default: STATE/screens).
    #[arg(long)]
    screens: Option<PathBuf>,
    /// Benchmark: start headless, draw the first frame, exit.
    #[arg(long, hide = true)]
    first_frame: bool,
}

/// Runs `till`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match &cli.config {
        Some(config) => run_device(config),
        None => run_simulator(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("till: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "simulator")]
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

#[cfg(not(feature = "simulator"))]
fn run_simulator(_: &Cli) -> Result<(), String> {
    Err(
        "this build has no simulator mode: start it with --config FILE (the device configuration)"
            .into(),
    )
}

#[cfg(feature = "simulator")]
fn run_simulator(cli: &Cli) -> Result<(), String> {
    use super::{demo, sim};
    let root = match &cli.state {
        Some(p) => p.clone(),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".local/share/till-sim"),
    };
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    if cli.first_frame {
        let d = demo::Driver::start(&root, 800, 480, false)?;
        let frame = d.display.snapshot();
        return if frame.pixels.iter().any(|p| (p.r, p.g, p.b) != (0, 0, 0)) {
            Ok(())
        } else {
            Err("the first frame is empty".into())
        };
    }
    if cli.headless || !has_display() {
        let screens = cli.screens.clone().unwrap_or_else(|| root.join("screens"));
        eprintln!("till: no display: running the scripted demo (sign-in, sale, void, settlement)");
        let report = demo::run(&root, &screens)?;
        eprintln!("till: screenshots in {}", screens.display());
        if let Some(kib) = report.rss_after_sale_kib {
            eprintln!(
                "till: resident memory after the sale: {:.1} MiB",
                kib as f64 / 1024.0
            );
        }
        eprintln!("till: receipts in {}", root.join("receipts").display());
        eprintln!(
            "till: acquirer ledger {}",
            root.join("ledger.jsonl").display()
        );
        return Ok(());
    }
    slint::BackendSelector::new()
        .backend_name("winit".into())
        .renderer_name("software".into())
        .select()
        .map_err(|e| format!("cannot open a window: {e}; run with --headless for the demo"))?;
    let simulator = sim::Simulator::start(&root)?;
    let (setup, operators, settings_path) = simulator.terminal()?;
    eprintln!(
        "till: simulator mode, acquirer on {}; log in as admin/123456, zhang/222222 (supervisor) or li/111111 (cashier); a tap on a field opens on-screen keys, and the keyboard stands in for the PIN keypad",
        simulator.host
    );
    let app = App::new(Options {
        setup,
        operators,
        settings_path,
        simulator: true,
        clock: Clock::Real(std::time::Instant::now()),
    })?;
    app.ui.run().map_err(|e| e.to_string())
}

fn run_device(config: &std::path::Path) -> Result<(), String> {
    let loaded = device::load(config);
    slint::BackendSelector::new()
        .backend_name("linuxkms".into())
        .renderer_name("software".into())
        .select()
        .map_err(|e| format!("cannot open the display (DRM/KMS): {e}"))?;
    let (setup, operators, settings_path) = match loaded {
        Ok(l) => l,
        Err(device::LoadError::Config(e)) => return Err(e),
        Err(device::LoadError::Unavailable(why)) => return run_unavailable(config, why),
    };
    let keypad = setup.devices.keypad.clone();
    let app = App::new(Options {
        setup,
        operators,
        settings_path,
        simulator: false,
        clock: Clock::Real(std::time::Instant::now()),
    })?;
    if !keypad.simulated {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("till-keypad".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let mut keys = match till_hal::keypad::open(&keypad) {
                        Ok(k) => k,
                        Err(e) => return tracing::error!(error = %e, "keypad"),
                    };
                    while let Some(k) = keys.next_press().await {
                        match k {
                            Ok(k) => {
                                let _ = tx.send(k);
                                let _ = slint::invoke_from_event_loop(|| {});
                            }
                            Err(e) => tracing::error!(error = %e, "keypad"),
                        }
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        let c = app.controller.clone();
        slint::spawn_local(async move {
            while let Some(k) = rx.recv().await {
                c.keypad(k);
            }
        })
        .map_err(|e| e.to_string())?;
    }
    let _alive = service_alive();
    app.ui.run().map_err(|e| e.to_string())
}

/// A terminal that cannot start yet (no identity, no data partition): the
/// screen says what to do, and once `device::check` passes, `till` ends so
/// that its service starts it again as a whole terminal.
fn run_unavailable(config: &std::path::Path, why: device::Unavailable) -> Result<(), String> {
    use super::{Screen, Till, TillWindow, VERSION};
    tracing::warn!(?why, "the terminal cannot start yet");
    let ui = TillWindow::new().map_err(|e| format!("cannot create the window: {e}"))?;
    let t = ui.global::<Till>();
    t.set_version(VERSION.into());
    let (kind, detail) = match &why {
        device::Unavailable::NotProvisioned(missing) => (
            "not-provisioned",
            format!("Missing: {}", missing.join(", ")),
        ),
        device::Unavailable::Data(reason) => ("data", reason.clone()),
    };
    t.set_unavailable(kind.into());
    t.set_unavailable_detail(detail.into());
    t.set_screen(Screen::Unavailable);
    let config = config.to_path_buf();
    let poll = slint::Timer::default();
    poll.start(
        slint::TimerMode::Repeated,
        std::time::Duration::from_secs(2),
        move || {
            if !matches!(
                device::check(&config),
                Err(device::LoadError::Unavailable(_))
            ) {
                tracing::warn!("the terminal can start now: restarting");
                let _ = slint::quit_event_loop();
            }
        },
    );
    let _alive = service_alive();
    ui.run().map_err(|e| e.to_string())
}

/// Tells systemd the terminal is up (`Type=notify`) and keeps telling it,
/// from the UI thread, at half the service's watchdog interval: a screen
/// that hangs gets the service restarted. Nothing outside systemd.
fn service_alive() -> Option<slint::Timer> {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let timer = slint::Timer::default();
    timer.start(
        slint::TimerMode::Repeated,
        std::time::Duration::from_micros(usec / 2),
        || {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        },
    );
    Some(timer)
}
