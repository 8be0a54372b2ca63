//! A Slint platform without a display: the window is a
//! `MinimalSoftwareWindow` drawn by Slint's software renderer into memory.
//! The headless demo, the flow tests, the screenshot tests and the frame
//! benchmark run on it. Time is either the real clock or a virtual one that
//! only moves when told (so timeouts are tested without waiting), and
//! `slint::invoke_from_event_loop` lands in a queue that [`Headless::pump`]
//! runs.

use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{EventLoopProxy, Platform, WindowAdapter};
use slint::{EventLoopError, PhysicalSize, PlatformError, Rgb8Pixel};

/// Where the platform's time comes from.
#[derive(Clone)]
pub enum Clock {
    /// The machine's clock.
    Real(Instant),
    /// Milliseconds moved by [`Headless::advance`] only.
    Virtual(Arc<AtomicU64>),
}

impl Clock {
    /// Time since the clock started.
    pub fn now(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            Clock::Virtual(ms) => Duration::from_millis(ms.load(Ordering::SeqCst)),
        }
    }
}

type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    tasks: Mutex<VecDeque<Task>>,
    ready: Condvar,
    quit: AtomicBool,
}

struct Proxy(Arc<Queue>);

impl EventLoopProxy for Proxy {
    fn quit_event_loop(&self) -> Result<(), EventLoopError> {
        self.0.quit.store(true, Ordering::SeqCst);
        self.0.ready.notify_all();
        Ok(())
    }

    fn invoke_from_event_loop(&self, event: Task) -> Result<(), EventLoopError> {
        self.0
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(event);
        self.0.ready.notify_all();
        Ok(())
    }
}

struct HeadlessPlatform {
    window: Rc<MinimalSoftwareWindow>,
    clock: Clock,
    queue: Arc<Queue>,
}

impl Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        Ok(self.window.clone())
    }

    fn duration_since_start(&self) -> Duration {
        self.clock.now()
    }

    fn new_event_loop_proxy(&self) -> Option<Box<dyn EventLoopProxy>> {
        Some(Box::new(Proxy(self.queue.clone())))
    }
}

type Installed = (Rc<MinimalSoftwareWindow>, Clock, Arc<Queue>);

thread_local! {
    static INSTALLED: std::cell::RefCell<Option<Installed>> = const { std::cell::RefCell::new(None) };
}

/// A rendered frame, RGB.
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels, row by row.
    pub pixels: Vec<Rgb8Pixel>,
}

impl Frame {
    /// Writes the frame as a PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let bytes: Vec<u8> = self.pixels.iter().flat_map(|p| [p.r, p.g, p.b]).collect();
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&bytes))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads a PNG written by [`Frame::save_png`].
    pub fn load_png(path: &Path) -> Result<Frame, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
            return Err(format!("{}: not an 8-bit RGB PNG", path.display()));
        }
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(3)
            .map(|c| Rgb8Pixel::new(c[0], c[1], c[2]))
            .collect();
        Ok(Frame {
            width: info.width,
            height: info.height,
            pixels,
        })
    }
}

/// The headless platform's handle, for whoever drives it.
pub struct Headless {
    window: Rc<MinimalSoftwareWindow>,
    clock: Clock,
    queue: Arc<Queue>,
    size: std::cell::Cell<PhysicalSize>,
    buffer: std::cell::RefCell<Vec<Rgb8Pixel>>,
}

impl Headless {
    /// Makes the headless platform Slint's platform for this thread (once
    /// per process). `virtual_time` freezes the clock until [`advance`].
    ///
    /// [`advance`]: Headless::advance
    ///
    /// On a thread that has it already, the same display is handed out
    /// again (at the new size), so one thread can run several apps one
    /// after the other — Slint allows one platform per process.
    pub fn install(width: u32, height: u32, virtual_time: bool) -> Result<Headless, String> {
        let size = PhysicalSize::new(width, height);
        let (window, clock, queue) = match INSTALLED.with(|i| i.borrow().clone()) {
            Some((window, clock, queue)) => {
                if virtual_time != matches!(clock, Clock::Virtual(_)) {
                    return Err("the headless display runs on the other kind of clock".into());
                }
                (window, clock, queue)
            }
            None => {
                let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
                let clock = if virtual_time {
                    Clock::Virtual(Arc::new(AtomicU64::new(0)))
                } else {
                    Clock::Real(Instant::now())
                };
                let queue = Arc::new(Queue::default());
                slint::platform::set_platform(Box::new(HeadlessPlatform {
                    window: window.clone(),
                    clock: clock.clone(),
                    queue: queue.clone(),
                }))
                .map_err(|e| format!("cannot set up the headless display: {e}"))?;
                INSTALLED.with(|i| {
                    *i.borrow_mut() = Some((window.clone(), clock.clone(), queue.clone()))
                });
                (window, clock, queue)
            }
        };
        window.set_size(size);
        Ok(Headless {
            window,
            clock,
            queue,
            size: std::cell::Cell::new(size),
            buffer: std::cell::RefCell::new(vec![
                Rgb8Pixel::new(0, 0, 0);
                (width * height) as usize
            ]),
        })
    }

    /// Moves virtual time on (and runs the timers that are due).
    pub fn advance(&self, by: Duration) {
        if let Clock::Virtual(ms) = &self.clock {
            ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
        self.pump();
    }

    /// Runs what is queued for the UI thread and the timers that are due;
    /// returns whether anything was queued.
    pub fn pump(&self) -> bool {
        let mut ran = false;
        loop {
            slint::platform::update_timers_and_animations();
            let task = self
                .queue
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match task {
                Some(t) => {
                    t();
                    ran = true;
                }
                None => break,
            }
        }
        slint::platform::update_timers_and_animations();
        ran
    }

    /// Waits up to `limit` (real time) for something queued for the UI
    /// thread, then runs it. Returns whether anything ran.
    pub fn wait(&self, limit: Duration) -> bool {
        if self.pump() {
            return true;
        }
        let guard = self.queue.tasks.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            self.queue
                .ready
                .wait_timeout_while(guard, limit, |q| {
                    q.is_empty() && !self.queue.quit.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|p| p.into_inner()),
        );
        self.pump()
    }

    /// Runs UI tasks until `done` holds, or fails after `limit` of real
    /// time with `what` in the message.
    pub fn run_until(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            self.pump();
            if done() {
                return Ok(());
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(format!("timed out after {limit:?} waiting for {what}"));
            }
            self.wait(left.min(Duration::from_millis(250)));
        }
    }

    /// The platform's clock (give it to the app for its timeouts).
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The window.
    pub fn window(&self) -> &slint::Window {
        self.window.window()
    }

    /// Gives the window another size.
    pub fn resize(&self, width: u32, height: u32) {
        let size = PhysicalSize::new(width, height);
        self.size.set(size);
        self.window.set_size(size);
        *self.buffer.borrow_mut() = vec![Rgb8Pixel::new(0, 0, 0); (width * height) as usize];
    }

    /// Draws the whole window and returns the frame.
    pub fn snapshot(&self) -> Frame {
        self.pump();
        self.render_frame();
        let size = self.size.get();
        Frame {
            width: size.width,
            height: size.height,
            pixels: self.buffer.borrow().clone(),
        }
    }

    /// Draws the whole window into the platform's buffer (the benchmark's
    /// unit of work); returns whether anything was drawn.
    pub fn render_frame(&self) -> bool {
        self.window.request_redraw();
        let mut buf = self.buffer.borrow_mut();
        let width = self.size.get().width as usize;
        self.window.draw_if_needed(|renderer| {
            renderer.render(&mut buf, width);
        })
    }
}
