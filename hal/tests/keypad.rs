//! The keypad driver against a simulated diode-less matrix, on tokio's
//! paused clock: time is modelled, so debounce and latency are exact and
//! no test sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use till_hal::keypad::pin::{PinOutcome, PinPolicy, PinUiEvent, read_pin};
use till_hal::keypad::sim::{SimMatrix, TokioClock, Transition, Typing};
use till_hal::keypad::{Key, KeyAction, KeyEvent, KeyStream, Layout, Timing, spawn_matrix};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn start(layout: Layout, transitions: Vec<Transition>) -> (SimMatrix, KeyStream) {
    let clock = Arc::new(TokioClock(tokio::time::Instant::now()));
    let matrix = SimMatrix::new(transitions, clock);
    let edges = matrix.edges();
    // The model's lines settle at once: no settling time.
    let timing = Timing {
        settle: Duration::ZERO,
        ..Timing::default()
    };
    let stream = spawn_matrix(matrix.clone(), edges, layout, timing);
    (matrix, stream)
}

async fn next(stream: &mut KeyStream) -> KeyEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("no key event within 5 s of modelled time")
        .expect("keypad stopped")
        .expect("keypad error")
}

/// No event arrives within `d` of modelled time.
async fn quiet(stream: &mut KeyStream, d: Duration) {
    if let Ok(e) = tokio::time::timeout(d, stream.next()).await {
        panic!("unexpected event {e:?}");
    }
}

fn press(at: u64, hold: u64, row: usize, column: usize) -> Vec<Transition> {
    vec![
        Transition {
            at: ms(at),
            row,
            column,
            closed: true,
        },
        Transition {
            at: ms(at + hold),
            row,
            column,
            closed: false,
        },
    ]
}

async fn every_key(layout: Layout) {
    let mut transitions = Vec::new();
    for (i, key) in layout.keys().into_iter().enumerate() {
        let (r, c) = layout.position(key).unwrap();
        transitions.extend(press(10 + 100 * i as u64, 50, r, c));
    }
    let (_m, mut keys) = start(layout, transitions);
    for key in layout.keys() {
        let down = next(&mut keys).await;
        assert_eq!((down.key, down.action), (key, KeyAction::Pressed));
        let up = next(&mut keys).await;
        assert_eq!((up.key, up.action), (key, KeyAction::Released));
    }
    quiet(&mut keys, ms(500)).await;
}

#[tokio::test(start_paused = true)]
async fn every_key_of_the_4x4_layout() {
    every_key(Layout::Keys4x4).await;
}

#[tokio::test(start_paused = true)]
async fn every_key_of_the_4x3_layout() {
    every_key(Layout::Keys4x3).await;
}

#[tokio::test(start_paused = true)]
async fn a_bouncing_contact_is_one_keystroke_reported_within_30_ms() {
    // Key 5 closes at 10 ms and chatters for 4 ms; at release it chatters again.
    let mut t = Vec::new();
    let toggles = [10.0, 10.4, 11.0, 11.3, 12.5, 13.1, 14.0];
    for (i, at) in toggles.iter().enumerate() {
        t.push(Transition {
            at: Duration::from_secs_f64(at / 1000.0),
            row: 1,
            column: 1,
            closed: i % 2 == 0,
        });
    }
    let releases = [80.0, 80.5, 81.2, 82.0, 83.5];
    for (i, at) in releases.iter().enumerate() {
        t.push(Transition {
            at: Duration::from_secs_f64(at / 1000.0),
            row: 1,
            column: 1,
            closed: i % 2 == 1,
        });
    }
    let (_m, mut keys) = start(Layout::Keys4x4, t);
    let down = next(&mut keys).await;
    assert_eq!((down.key, down.action), (Key::Digit(5), KeyAction::Pressed));
    // At least the debounce time after the first contact (a scan may land
    // in the last closed bounce), at most 30 ms after it.
    assert!(down.at >= ms(20) && down.at <= ms(10 + 30), "{down:?}");
    let up = next(&mut keys).await;
    assert_eq!(up.action, KeyAction::Released);
    assert!(up.at >= ms(93), "{up:?}");
    quiet(&mut keys, ms(500)).await;
}

#[tokio::test(start_paused = true)]
async fn a_glitch_shorter_than_the_debounce_time_is_no_key() {
    let mut t = press(10, 3, 2, 2);
    t.extend(press(40, 1, 0, 0));
    let (_m, mut keys) = start(Layout::Keys4x4, t);
    quiet(&mut keys, ms(300)).await;
}

#[tokio::test(start_paused = true)]
async fn ghost_keys_are_rejected() {
    // Keys 1 (0,0), 2 (0,1) and 4 (1,0) pressed in turn: the matrix then
    // also shows 5 (1,1). Only 1 and 2 may be reported; 4 arrives with its
    // ghost and is refused until the rectangle breaks.
    let step = |at: u64, row: usize, column: usize, closed: bool| Transition {
        at: ms(at),
        row,
        column,
        closed,
    };
    let t = vec![
        step(10, 0, 0, true),
        step(60, 0, 1, true),
        step(110, 1, 0, true),
        step(200, 0, 1, false),
        step(300, 0, 0, false),
        step(400, 1, 0, false),
    ];
    let (_m, mut keys) = start(Layout::Keys4x4, t);
    let mut seen = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(ms(600), keys.next()).await {
        seen.push((e.key, e.action));
    }
    use KeyAction::*;
    assert_eq!(
        seen,
        vec![
            (Key::Digit(1), Pressed),
            (Key::Digit(2), Pressed),
            // At 200 ms key 2 lets go: the rectangle is gone, 2's release
            // and 4's press are both now unambiguous.
            (Key::Digit(2), Released),
            (Key::Digit(4), Pressed),
            (Key::Digit(1), Released),
            (Key::Digit(4), Released),
        ],
        "key 5 must never appear"
    );
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_bouncing_keystrokes_none_missed_none_doubled() {
    let typing = Typing::random(Layout::Keys4x4, 10_000, 0x7111);
    let strokes = typing.strokes.clone();
    let (_m, mut keys) = start(Layout::Keys4x4, typing.transitions);
    let mut worst = Duration::ZERO;
    for (i, s) in strokes.iter().enumerate() {
        let down = next(&mut keys).await;
        assert_eq!(
            (down.key, down.action),
            (s.key, KeyAction::Pressed),
            "keystroke {i}"
        );
        let latency = down.at.saturating_sub(s.down_at);
        worst = worst.max(latency);
        let up = next(&mut keys).await;
        assert_eq!(
            (up.key, up.action),
            (s.key, KeyAction::Released),
            "keystroke {i}"
        );
        assert!(up.at >= s.up_at);
    }
    quiet(&mut keys, ms(1000)).await;
    assert!(
        worst <= ms(30),
        "worst key-down to event latency {worst:?} over 30 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn the_idle_keypad_does_not_scan() {
    let (m, keys) = start(Layout::Keys4x4, press(10_000, 50, 0, 0));
    tokio::time::sleep(ms(9_000)).await;
    // One look at the columns after arming, then sleep until the edge.
    assert!(m.reads() <= 2, "{} reads while idle", m.reads());
    drop(keys);
}

#[tokio::test(start_paused = true)]
async fn pin_entry_gives_the_ui_no_digits_and_the_owner_the_pin() {
    let mut t = Vec::new();
    let layout = Layout::Keys4x4;
    for (i, c) in "9B81357D".chars().enumerate() {
        let (r, col) = layout.position(Key::from_char(c).unwrap()).unwrap();
        t.extend(press(10 + 120 * i as u64, 40, r, col));
    }
    let (_m, mut keys) = start(layout, t);
    let (ui_tx, mut ui_rx) = tokio::sync::mpsc::channel(32);
    let outcome = read_pin(
        &mut keys,
        &ui_tx,
        PinPolicy::default(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    drop(ui_tx);
    let mut ui = Vec::new();
    while let Some(e) = ui_rx.recv().await {
        ui.push(e);
    }
    assert_eq!(
        ui,
        vec![
            PinUiEvent::DigitEntered { count: 1 },
            PinUiEvent::Backspace { count: 0 },
            PinUiEvent::DigitEntered { count: 1 },
            PinUiEvent::DigitEntered { count: 2 },
            PinUiEvent::DigitEntered { count: 3 },
            PinUiEvent::DigitEntered { count: 4 },
            PinUiEvent::DigitEntered { count: 5 },
            PinUiEvent::Enter,
        ]
    );
    match outcome {
        PinOutcome::Entered(pin) => {
            assert_eq!(pin.expose(), "81357");
            assert!(!format!("{pin:?}").contains("8135"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn pin_entry_times_out_and_cancels() {
    let (_m, mut keys) = start(Layout::Keys4x3, Vec::new());
    let (ui_tx, _ui_rx) = tokio::sync::mpsc::channel(32);
    let outcome = read_pin(
        &mut keys,
        &ui_tx,
        PinPolicy::default(),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, PinOutcome::TimedOut));

    let (r, c) = Layout::Keys4x3.position(Key::Star).unwrap();
    let (_m, mut keys) = start(Layout::Keys4x3, press(10, 40, r, c));
    let outcome = read_pin(
        &mut keys,
        &ui_tx,
        PinPolicy::default(),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, PinOutcome::Cancelled));
}

#[tokio::test]
async fn the_simulated_keypad_takes_keys_from_the_ui() {
    let (mut keys, injector) = till_hal::keypad::sim::simulated();
    assert!(injector.press(Key::Digit(7)).await);
    assert_eq!(keys.next_press().await.unwrap().unwrap(), Key::Digit(7));
    drop(keys);
    assert!(!injector.press(Key::Digit(1)).await);
}
