//! The headless demo and the driver the flow tests share with it: the app
//! on the headless platform, driven step by step, a PNG of each screen it
//! passes through.
//!
//! The demo (what `till` does in simulator mode where there is no display)
//! signs in, sells 88.00 on a virtual card with its PIN, voids the sale,
//! shows the history, settles the batch, and switches to Chinese; the
//! receipts are the simulated printer's PNG and text files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use slint::ComponentHandle;
use slint::platform::WindowEvent;

use super::platform::Headless;
use super::sim::Simulator;
use super::{App, Options, Screen, Till, TillWindow, TxnType};

/// How long any one step may take before the driver gives up.
pub const STEP_LIMIT: Duration = Duration::from_secs(60);

/// The app on the headless platform, with the simulator behind it.
pub struct Driver {
    /// The headless display.
    pub display: Headless,
    /// The app.
    pub app: App,
    /// The acquirer and the terminal's files.
    pub sim: Simulator,
    sim_printer: std::sync::Arc<std::sync::Mutex<till_hal::printer::sim::SimulatedPrinter>>,
    shots: Option<PathBuf>,
    shot: usize,
}

impl Driver {
    /// Starts the simulator under `root` and the app on a `width`×`height`
    /// headless display; `virtual_time` freezes the UI's clock.
    pub fn start(
        root: &Path,
        width: u32,
        height: u32,
        virtual_time: bool,
    ) -> Result<Driver, String> {
        let display = Headless::install(width, height, virtual_time)?;
        let sim = Simulator::start(root)?;
        let (setup, operators, settings_path) = sim.terminal()?;
        let sim_printer = setup
            .sim_printer
            .clone()
            .ok_or("the simulator has a simulated printer")?;
        let clock = display.clock();
        let app = App::new(Options {
            setup,
            operators,
            settings_path,
            simulator: true,
            clock,
        })?;
        app.ui.show().map_err(|e| e.to_string())?;
        Ok(Driver {
            display,
            app,
            sim,
            sim_printer,
            shots: None,
            shot: 0,
        })
    }

    /// Saves a PNG of every [`Driver::shoot`] into `dir`.
    pub fn record_into(&mut self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        self.shots = Some(dir.to_path_buf());
        Ok(())
    }

    /// The simulated printer (its paper and cover can be changed).
    pub fn sim_printer(
        &self,
    ) -> std::sync::Arc<std::sync::Mutex<till_hal::printer::sim::SimulatedPrinter>> {
        self.sim_printer.clone()
    }

    /// The window.
    pub fn ui(&self) -> &TillWindow {
        &self.app.ui
    }

    /// Reads the `Till` global.
    pub fn till<R>(&self, f: impl FnOnce(&Till<'_>) -> R) -> R {
        f(&self.app.ui.global::<Till>())
    }

    /// The screen shown.
    pub fn screen(&self) -> Screen {
        self.till(|t| t.get_screen())
    }

    /// Runs the UI until `done`, or fails naming `what`.
    pub fn until(&self, what: &str, mut done: impl FnMut(&Driver) -> bool) -> Result<(), String> {
        self.display
            .run_until(what, STEP_LIMIT, || done(self))
            .map_err(|e| format!("{e} (screen {:?})", self.screen()))
    }

    /// Runs the UI until `screen` shows.
    pub fn until_screen(&self, screen: Screen) -> Result<(), String> {
        self.until(&format!("screen {screen:?}"), |d| d.screen() == screen)
    }

    /// Types keys as the keyboard (or the keypad) would.
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            let t: slint::SharedString = c.to_string().into();
            self.display
                .window()
                .dispatch_event(WindowEvent::KeyPressed { text: t.clone() });
            self.display
                .window()
                .dispatch_event(WindowEvent::KeyReleased { text: t });
            self.display.pump();
        }
    }

    /// Presses Enter.
    pub fn enter(&self) {
        self.type_text("\n");
    }

    /// Saves a PNG of the screen as `NN-name.png` when recording.
    pub fn shoot(&mut self, name: &str) -> Result<(), String> {
        let Some(dir) = &self.shots else {
            return Ok(());
        };
        self.shot += 1;
        let path = dir.join(format!("{:02}-{name}.png", self.shot));
        self.display.snapshot().save_png(&path)
    }
}

/// What the demo measured.
#[derive(Debug, Default)]
pub struct Report {
    /// The process's resident memory after the sale (kB), where /proc tells.
    pub rss_after_sale_kib: Option<u64>,
}

/// This process's resident memory in kB (Linux).
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the demo with the simulator under `root`, screenshots in `out`.
pub fn run(root: &Path, out: &Path) -> Result<Report, String> {
    let mut report = Report::default();
    let mut d = Driver::start(root, 800, 480, false)?;
    d.record_into(out)?;
    fn t(d: &Driver) -> Till<'_> {
        d.app.ui.global::<Till>()
    }

    d.until("the self-test", |d| d.till(|t| t.get_boot_done()))?;
    d.shoot("self-test")?;
    t(&d).invoke_continue_boot();
    d.until_screen(Screen::Login)?;
    d.shoot("login")?;
    // A finger on the name opens the number pad for the password.
    t(&d).invoke_choose_operator("admin".into());
    for k in "123456".chars() {
        t(&d).invoke_key(k.to_string().into());
    }
    d.shoot("login-password")?;
    t(&d).invoke_key("enter".into());
    d.until_screen(Screen::Signin)?;
    d.shoot("signing-in")?;
    d.until("the sign-in", |d| !d.till(|t| t.get_busy()))?;
    d.shoot("signed-in")?;
    t(&d).invoke_dismiss();
    d.until_screen(Screen::Home)?;
    d.shoot("home")?;

    t(&d).invoke_start(TxnType::Sale);
    d.until_screen(Screen::Amount)?;
    d.type_text("88.00");
    d.shoot("sale-amount")?;
    d.enter();
    d.until_screen(Screen::Method)?;
    d.shoot("sale-method")?;
    t(&d).invoke_choose_card_method();
    d.until_screen(Screen::Tap)?;
    d.shoot("sale-tap")?;
    t(&d).invoke_present_sim_card("cup-ok".into());
    d.until_screen(Screen::Pin)?;
    d.type_text("123456");
    d.shoot("sale-pin")?;
    d.enter();
    d.until_screen(Screen::Confirm)?;
    d.shoot("sale-confirm")?;
    t(&d).invoke_confirm_amount();
    d.shoot("sale-processing")?;
    d.until_screen(Screen::Result)?;
    d.until("the receipt", |d| !d.till(|t| t.get_printing()))?;
    d.shoot("sale-result")?;
    t(&d).invoke_merchant_copy();
    d.until("the merchant copy", |d| !d.till(|t| t.get_printing()))?;
    let rrn = d.till(|t| t.get_rrn()).to_string();
    report.rss_after_sale_kib = resident_kib();
    t(&d).invoke_dismiss();

    t(&d).invoke_start(TxnType::Void);
    d.until_screen(Screen::Pick)?;
    d.until("the sale in the list", |d| {
        d.till(|t| slint::Model::row_count(&t.get_history()) > 0)
    })?;
    d.shoot("void-pick")?;
    let id = d.till(|t| {
        let rows = t.get_history();
        (0..slint::Model::row_count(&rows))
            .filter_map(|i| slint::Model::row_data(&rows, i))
            .find(|r| r.rrn.as_str() == rrn)
            .map(|r| r.id)
    });
    t(&d).invoke_pick(id.ok_or("the sale is not in the void list")?);
    d.until_screen(Screen::Confirm)?;
    t(&d).invoke_confirm_amount();
    d.until_screen(Screen::Result)?;
    d.until("the void's receipt", |d| !d.till(|t| t.get_printing()))?;
    d.shoot("void-result")?;
    t(&d).invoke_dismiss();

    t(&d).invoke_go(Screen::History);
    d.until("the history", |d| {
        d.till(|t| slint::Model::row_count(&t.get_history()) >= 2)
    })?;
    d.shoot("history")?;
    t(&d).invoke_dismiss();

    t(&d).invoke_go(Screen::Settle);
    d.until_screen(Screen::Settle)?;
    d.shoot("settlement")?;
    t(&d).invoke_settle();
    d.until("the settlement", |d| d.till(|t| t.get_settled()))?;
    d.until("the report", |d| !d.till(|t| t.get_printing()))?;
    d.shoot("settled")?;
    t(&d).invoke_dismiss();

    t(&d).invoke_set_language("zh_CN".into());
    d.until_screen(Screen::Home)?;
    d.shoot("home-zh")?;
    t(&d).invoke_set_language("en".into());
    Ok(report)
}
