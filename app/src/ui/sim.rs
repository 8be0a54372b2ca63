//! Simulator mode: the terminal with the bundled acquirer simulator
//! (`till-acquirer`, in process, on a loopback port), a development PKI,
//! and simulated devices — the reader's chip model with the card file's
//! virtual cards, the printer rendering receipts to PNG and text files, and
//! the keyboard standing in for the PIN keypad. Everything lives under one
//! directory, so a second start finds the same journal, operators and
//! settings. `ROOT/faults.toml` makes the acquirer misbehave on purpose
//! (`till_acquirer::faults`), e.g. to see a reversal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use till_acquirer::server::{HostConfig, RunningHost};
use till_hal::config::DevicesConfig;
use till_hal::printer::sim::SimulatedPrinter;
use till_pay::link::TerminalFiles;
use till_pay::link::pki::{self, PkiOptions};

use super::operators::{Operators, Role};
use super::settings::Settings;
use super::worker::Setup;

/// The simulator's terminal id.
pub const TERMINAL_ID: &str = "TILL0001";

/// The simulator's accounts: (name, role, password). Shown in the README;
/// a real terminal has its own.
pub const ACCOUNTS: &[(&str, Role, &str)] = &[
    ("admin", Role::Administrator, "123456"),
    ("zhang", Role::Supervisor, "222222"),
    ("li", Role::Cashier, "111111"),
];

/// The bundled acquirer, running.
pub struct Simulator {
    /// Where everything lives.
    pub root: PathBuf,
    /// The acquirer's address.
    pub host: String,
    running: Option<RunningHost>,
    rt: tokio::runtime::Runtime,
}

impl Simulator {
    /// Creates the PKI under `root` (first time only) and starts the acquirer.
    pub fn start(root: &Path) -> Result<Simulator, String> {
        let pki_dir = root.join("pki");
        if !pki_dir.join("ca.crt").exists() {
            pki::init(&pki_dir, &PkiOptions::default()).map_err(|e| e.to_string())?;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("till-acquirer")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the acquirer simulator: {e}"))?;
        let mut config = HostConfig::new("127.0.0.1:0", &pki_dir);
        config.ledger = Some(root.join("ledger.jsonl"));
        // Faults on demand (a dropped answer, a late one…): see
        // till_acquirer::faults; the file is read again when it changes.
        let faults = root.join("faults.toml");
        if !faults.exists() {
            std::fs::write(
                &faults,
                "# Faults the acquirer simulator injects, e.g. a lost answer to the next sale:\n\
                 # [[fault]]\n# action = \"close\"\n# kind = \"sale\"\n# count = 1\n",
            )
            .map_err(|e| format!("cannot write {}: {e}", faults.display()))?;
        }
        config.fault_file = Some(faults);
        let running = rt
            .block_on(till_acquirer::server::start(config))
            .map_err(|e| format!("cannot start the acquirer simulator: {e}"))?;
        let host = running.local_addr().to_string();
        Ok(Simulator {
            root: root.to_path_buf(),
            host,
            running: Some(running),
            rt,
        })
    }

    /// The terminal's set-up against this acquirer: settings from
    /// `root/state/settings.toml` with the acquirer's address, simulated
    /// devices, receipts in `root/receipts`.
    pub fn terminal(&self) -> Result<(Setup, Operators, PathBuf), String> {
        let state_dir = self.root.join("state");
        let settings_path = state_dir.join("settings.toml");
        let mut settings = Settings::load(&settings_path)?;
        settings.host = self.host.clone();
        settings.save(&settings_path)?;
        let mut devices = DevicesConfig::default();
        devices.reader.simulated = true;
        devices.keypad.simulated = true;
        devices.printer.simulated = true;
        devices.scanner.simulated = true;
        devices.printer.output_dir = self.root.join("receipts");
        let printer = SimulatedPrinter::new(devices.printer.paper_width).with_output(
            devices.printer.output_dir.clone(),
            Some(devices.printer.font.clone()),
        );
        let files = TerminalFiles::in_dir(self.root.join("pki"), Some(TERMINAL_ID))
            .map_err(|e| e.to_string())?;
        let operators = Operators::open(&state_dir.join("operators.toml"), ACCOUNTS)?;
        Ok((
            Setup {
                files,
                terminal_id: TERMINAL_ID.into(),
                state_dir,
                settings,
                devices,
                sim_printer: Some(Arc::new(Mutex::new(printer))),
            },
            operators,
            settings_path,
        ))
    }
}

impl Simulator {
    /// Stops the acquirer (the network is down, as far as the terminal
    /// can tell: connections to its port are refused).
    pub fn stop_host(&mut self) {
        if let Some(h) = self.running.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(h) = self.running.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}
