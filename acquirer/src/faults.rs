//! Fault injection: rules that make the host answer late, not at all, close
//! the connection or spoil its MAC, so a terminal's timeout, reversal and
//! retry paths can be exercised on purpose.
//!
//! # Rules
//!
//! A rule has an action, the messages it applies to, and optional limits:
//!
//! | action | what the host does |
//! |---|---|
//! | `delay=MS` | processes the request, answers MS milliseconds late |
//! | `drop` | processes the request, never answers, keeps the connection open |
//! | `close` | processes the request, closes the connection without answering |
//! | `ignore` | does not process the request (no ledger line), never answers |
//! | `corrupt-mac` | processes the request, answers with a wrong MAC |
//!
//! The messages: a transaction kind (`sign_in`, `sale`, `balance`,
//! `preauth`, `completion`, `preauth_void`, `void`, `completion_void`,
//! `refund`, `advice`, `settlement`, `batch_upload`, `batch_upload_end`;
//! `-` may stand for `_`), `reversal`, or `any` (the default).
//!
//! Limits: `probability` (0 < p ≤ 1, drawn from a generator seeded by
//! `--seed` when given), `count` (fire at most this many times) and `after`
//! (let this many matching messages through first). Every rule counts each
//! message of its kind for `after`; of the rules that may fire on a
//! message, the first one given fires.
//!
//! # On the command line
//!
//! `--fault ACTION[=MS][:KIND][@PROBABILITY][#COUNT][+AFTER]`, e.g.
//! `--fault drop:sale`, `--fault delay=2000:any@0.5`, `--fault close:reversal#1`,
//! `--fault corrupt-mac:sale+2#1` (the third sale gets a wrong MAC, once).
//!
//! # In a control file
//!
//! ```toml
//! [[fault]]
//! action = "delay"      # delay | drop | close | ignore | corrupt-mac
//! delay_ms = 2000       # delay only
//! kind = "sale"         # default "any"
//! probability = 0.5     # default 1
//! count = 1             # default unlimited
//! after = 0             # default 0
//! ```
//!
//! The file is read again whenever its contents change, so faults can be
//! switched while the host runs; a changed file starts its rules' counts
//! afresh. A file that stops parsing keeps the rules it had (with a
//! warning); a file that disappears means no file rules. Rules from flags
//! come before rules from the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use till_pay::iso8583::TxnKind;
use tracing::{info, warn};

use crate::host::RequestClass;

/// Why a fault rule or control file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// A `--fault` flag does not follow the grammar.
    #[error(
        "fault {spec:?}: {reason}. Write ACTION[=MS][:KIND][@PROBABILITY][#COUNT][+AFTER], \
         e.g. drop:sale, delay=2000:any@0.5, close:reversal#1"
    )]
    Flag {
        /// The flag as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The control file could not be read.
    #[error("cannot read the fault file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The control file is not valid.
    #[error("the fault file {path} is not valid: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the rule.
        reason: String,
    },
}

/// What a fault makes the host do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Process, then answer this much later.
    Delay(Duration),
    /// Process, never answer, keep the connection.
    Drop,
    /// Process, close the connection without answering.
    Close,
    /// Do not process, never answer.
    Ignore,
    /// Process, answer with a wrong MAC.
    CorruptMac,
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Delay(d) => write!(f, "delay={}", d.as_millis()),
            FaultAction::Drop => f.write_str("drop"),
            FaultAction::Close => f.write_str("close"),
            FaultAction::Ignore => f.write_str("ignore"),
            FaultAction::CorruptMac => f.write_str("corrupt-mac"),
        }
    }
}

const ACTIONS: &str = "delay=MS, drop, close, ignore, corrupt-mac";

impl FaultAction {
    /// Parses an action name with its delay (`delay` needs one, the others
    /// take none).
    fn parse(name: &str, delay_ms: Option<u64>) -> Result<FaultAction, String> {
        let action = match name.replace('_', "-").as_str() {
            "delay" => {
                let ms = delay_ms.ok_or("delay needs a time in milliseconds, e.g. delay=2000")?;
                return Ok(FaultAction::Delay(Duration::from_millis(ms)));
            }
            "drop" => FaultAction::Drop,
            "close" => FaultAction::Close,
            "ignore" => FaultAction::Ignore,
            "corrupt-mac" => FaultAction::CorruptMac,
            _ => return Err(format!("unknown action {name:?}; actions: {ACTIONS}")),
        };
        if delay_ms.is_some() {
            return Err(format!("only delay takes a time, not {name}"));
        }
        Ok(action)
    }
}

/// Which messages a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every message, even undecodable ones.
    Any,
    /// Reversals (first attempts and repeats).
    Reversal,
    /// One transaction kind.
    Kind(TxnKind),
}

impl FaultTarget {
    /// Whether a message of this class is one the rule applies to.
    pub fn matches(self, class: RequestClass) -> bool {
        match (self, class) {
            (FaultTarget::Any, _) => true,
            (FaultTarget::Reversal, RequestClass::Reversal) => true,
            (FaultTarget::Kind(k), RequestClass::Txn(c)) => k == c,
            _ => false,
        }
    }
}

impl FromStr for FaultTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultTarget, String> {
        match s {
            "any" => Ok(FaultTarget::Any),
            "reversal" => Ok(FaultTarget::Reversal),
            other => other
                .parse::<TxnKind>()
                .map(FaultTarget::Kind)
                .map_err(|e| format!("{e}, reversal, any")),
        }
    }
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultTarget::Any => f.write_str("any"),
            FaultTarget::Reversal => f.write_str("reversal"),
            FaultTarget::Kind(k) => f.write_str(k.name()),
        }
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What happens.
    pub action: FaultAction,
    /// To which messages.
    pub target: FaultTarget,
    /// Chance of firing on an eligible message; `None` = always.
    pub probability: Option<f64>,
    /// Fire at most this many times; `None` = no limit.
    pub count: Option<u32>,
    /// Let this many matching messages through before firing.
    pub after: u32,
}

impl FaultRule {
    /// A rule that always fires on every matching message.
    pub fn new(action: FaultAction, target: FaultTarget) -> FaultRule {
        FaultRule {
            action,
            target,
            probability: None,
            count: None,
            after: 0,
        }
    }

    fn check(&self) -> Result<(), String> {
        if let Some(p) = self.probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("probability {p} must be more than 0 and at most 1"));
        }
        if self.count == Some(0) {
            return Err("count 0 would never fire; leave it out or give 1 or more".into());
        }
        Ok(())
    }
}

/// Shown in the flag grammar, e.g. `delay=2000:sale@0.5#3+1`.
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.action, self.target)?;
        if let Some(p) = self.probability {
            write!(f, "@{p}")?;
        }
        if let Some(c) = self.count {
            write!(f, "#{c}")?;
        }
        if self.after > 0 {
            write!(f, "+{}", self.after)?;
        }
        Ok(())
    }
}

/// Parses the `--fault` grammar.
impl FromStr for FaultRule {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<FaultRule, FaultError> {
        let fail = |reason: String| FaultError::Flag {
            spec: spec.to_string(),
            reason,
        };
        const MARKERS: [char; 4] = [':', '@', '#', '+'];
        let spec_trimmed = spec.trim();
        let (head, mut rest) = match spec_trimmed.find(MARKERS) {
            Some(i) => spec_trimmed.split_at(i),
            None => (spec_trimmed, ""),
        };
        if head.is_empty() {
            return Err(fail(format!("the action is missing; actions: {ACTIONS}")));
        }
        let (name, delay) = match head.split_once('=') {
            Some((n, ms)) => {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| fail(format!("delay {ms:?} must be whole milliseconds")))?;
                (n, Some(ms))
            }
            None => (head, None),
        };
        let action = FaultAction::parse(name, delay).map_err(fail)?;
        let mut rule = FaultRule::new(action, FaultTarget::Any);
        let mut seen = Vec::new();
        while let Some(marker) = rest.chars().next() {
            let body = &rest[1..];
            let end = body.find(MARKERS).unwrap_or(body.len());
            let value = &body[..end];
            rest = &body[end..];
            if seen.contains(&marker) {
                return Err(fail(format!("{marker:?} appears twice")));
            }
            seen.push(marker);
            if value.is_empty() {
                return Err(fail(format!("nothing follows {marker:?}")));
            }
            match marker {
                ':' => rule.target = value.parse().map_err(|e| fail(format!("kind: {e}")))?,
                '@' => {
                    rule.probability = Some(value.parse().map_err(|_| {
                        fail(format!(
                            "probability {value:?} must be a number such as 0.5"
                        ))
                    })?)
                }
                '#' => {
                    rule.count = Some(
                        value
                            .parse()
                            .map_err(|_| fail(format!("count {value:?} must be a whole number")))?,
                    )
                }
                _ => {
                    rule.after = value
                        .parse()
                        .map_err(|_| fail(format!("after {value:?} must be a whole number")))?
                }
            }
        }
        rule.check().map_err(fail)?;
        Ok(rule)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    #[serde(default)]
    fault: Vec<FaultEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultEntry {
    action: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    probability: Option<f64>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    after: Option<u32>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

/// Parses the text of a fault control file.
pub fn parse_fault_file(text: &str) -> Result<Vec<FaultRule>, String> {
    let file: FaultFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
    file.fault
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = |reason: String| format!("fault #{}: {reason}", i + 1);
            let rule = FaultRule {
                action: FaultAction::parse(&entry.action, entry.delay_ms).map_err(at)?,
                target: match &entry.kind {
                    Some(k) => k.parse().map_err(|e| at(format!("kind: {e}")))?,
                    None => FaultTarget::Any,
                },
                probability: entry.probability,
                count: entry.count,
                after: entry.after.unwrap_or(0),
            };
            rule.check().map_err(at)?;
            Ok(rule)
        })
        .collect()
}

/// A rule with its counters.
#[derive(Debug)]
struct Armed {
    rule: FaultRule,
    /// Matching messages so far.
    seen: u32,
    /// Times it fired.
    fired: u32,
}

impl Armed {
    fn new(rule: FaultRule) -> Armed {
        Armed {
            rule,
            seen: 0,
            fired: 0,
        }
    }
}

/// The control file and what was last read from it.
#[derive(Debug)]
struct ControlFile {
    path: PathBuf,
    /// Contents last seen (`None`: the file was missing).
    text: Option<String>,
    rules: Vec<Armed>,
}

impl ControlFile {
    /// Reads the file again and takes its rules if its contents changed.
    fn refresh(&mut self) {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "cannot read the fault file; keeping its rules");
                return;
            }
        };
        if text == self.text {
            return;
        }
        match &text {
            None => {
                info!(path = %self.path.display(), "fault file removed; no file rules");
                self.rules.clear();
            }
            Some(t) => match parse_fault_file(t) {
                Ok(rules) => {
                    info!(
                        path = %self.path.display(),
                        rules = %describe_rules(&rules),
                        "fault file changed; rules replaced"
                    );
                    self.rules = rules.into_iter().map(Armed::new).collect();
                }
                Err(reason) => {
                    warn!(path = %self.path.display(), %reason, "fault file is not valid; keeping the rules it had");
                }
            },
        }
        self.text = text;
    }
}

fn describe_rules(rules: &[FaultRule]) -> String {
    if rules.is_empty() {
        return "none".into();
    }
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// All rules in force and the generator behind their probabilities.
#[derive(Debug)]
pub struct FaultPlan {
    flags: Vec<Armed>,
    file: Option<ControlFile>,
    rng: StdRng,
}

impl FaultPlan {
    /// Rules from flags, plus those of a control file (which must exist and
    /// be valid now; later changes are picked up as they come). With a
    /// seed, probabilities draw the same sequence every run.
    pub fn new(
        rules: Vec<FaultRule>,
        control_file: Option<&Path>,
        seed: Option<u64>,
    ) -> Result<FaultPlan, FaultError> {
        for rule in &rules {
            rule.check().map_err(|reason| FaultError::Flag {
                spec: rule.to_string(),
                reason,
            })?;
        }
        let file = match control_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| FaultError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let parsed = parse_fault_file(&text).map_err(|reason| FaultError::File {
                    path: path.to_path_buf(),
                    reason,
                })?;
                Some(ControlFile {
                    path: path.to_path_buf(),
                    text: Some(text),
                    rules: parsed.into_iter().map(Armed::new).collect(),
                })
            }
        };
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Ok(FaultPlan {
            flags: rules.into_iter().map(Armed::new).collect(),
            file,
            rng,
        })
    }

    /// No faults at all.
    pub fn none() -> FaultPlan {
        FaultPlan {
            flags: Vec::new(),
            file: None,
            rng: StdRng::seed_from_u64(0),
        }
    }

    /// The rules in force, flags first, in the flag grammar.
    pub fn describe(&self) -> String {
        let rules: Vec<FaultRule> = self
            .flags
            .iter()
            .chain(self.file.iter().flat_map(|f| f.rules.iter()))
            .map(|a| a.rule.clone())
            .collect();
        describe_rules(&rules)
    }

    /// The fault for the next message of `class`, if any; counts the
    /// message for every rule of its kind.
    pub fn choose(&mut self, class: RequestClass) -> Option<FaultAction> {
        if let Some(file) = &mut self.file {
            file.refresh();
        }
        let rng = &mut self.rng;
        let mut chosen = None;
        let armed = self
            .flags
            .iter_mut()
            .chain(self.file.iter_mut().flat_map(|f| f.rules.iter_mut()));
        for a in armed {
            if !a.rule.target.matches(class) {
                continue;
            }
            a.seen = a.seen.saturating_add(1);
            if chosen.is_some() || a.seen <= a.rule.after {
                continue;
            }
            if a.rule.count.is_some_and(|c| a.fired >= c) {
                continue;
            }
            if let Some(p) = a.rule.probability
                && !rng.random_bool(p)
            {
                continue;
            }
            a.fired += 1;
            chosen = Some(a.rule.action);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> FaultRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn flag_grammar() {
        assert_eq!(
            rule("drop:sale"),
            FaultRule::new(FaultAction::Drop, FaultTarget::Kind(TxnKind::Sale))
        );
        let r = rule("delay=2000:any@0.5");
        assert_eq!(r.action, FaultAction::Delay(Duration::from_millis(2000)));
        assert_eq!(r.target, FaultTarget::Any);
        assert_eq!(r.probability, Some(0.5));
        let r = rule("close:reversal#1");
        assert_eq!((r.target, r.count), (FaultTarget::Reversal, Some(1)));
        let r = rule("corrupt-mac:preauth-void+2#1");
        assert_eq!(r.target, FaultTarget::Kind(TxnKind::PreauthVoid));
        assert_eq!((r.after, r.count), (2, Some(1)));
        assert_eq!(rule("ignore").target, FaultTarget::Any);
        assert_eq!(rule("corrupt_mac#3").action, FaultAction::CorruptMac);
        // Display round-trips.
        for s in ["delay=10:sale@0.25#3+1", "drop:any", "close:reversal#1"] {
            assert_eq!(rule(s).to_string(), s);
            assert_eq!(rule(&rule(s).to_string()), rule(s));
        }
    }

    #[test]
    fn flag_errors_say_what_is_wrong() {
        for (spec, mentions) in [
            ("", "action is missing"),
            ("explode:sale", "unknown action"),
            ("delay:sale", "milliseconds"),
            ("delay=soon", "whole milliseconds"),
            ("drop=5", "only delay"),
            ("drop:purchase", "unknown transaction kind"),
            ("drop:sale@2", "at most 1"),
            ("drop:sale@0", "more than 0"),
            ("drop:sale@half", "number such as 0.5"),
            ("drop#0", "never fire"),
            ("drop#x", "whole number"),
            ("drop+", "nothing follows"),
            ("drop:sale:void", "twice"),
        ] {
            let e = spec.parse::<FaultRule>().unwrap_err().to_string();
            assert!(e.contains(mentions), "{spec}: {e}");
            assert!(e.contains("ACTION[=MS]"), "{spec}: {e}");
        }
    }

    #[test]
    fn count_and_after_are_honoured() {
        let mut plan = FaultPlan::new(vec![rule("drop:sale+1#2")], None, Some(1)).unwrap();
        let sale = RequestClass::Txn(TxnKind::Sale);
        let got: Vec<_> = (0..5).map(|_| plan.choose(sale)).collect();
        assert_eq!(
            got,
            [
                None,
                Some(FaultAction::Drop),
                Some(FaultAction::Drop),
                None,
                None
            ]
        );
        assert_eq!(plan.choose(RequestClass::Reversal), None);
    }

    #[test]
    fn first_eligible_rule_fires_and_all_count() {
        let mut plan = FaultPlan::new(
            vec![
                rule("drop:sale#1"),
                rule("close:sale+1#1"),
                rule("ignore:reversal"),
            ],
            None,
            None,
        )
        .unwrap();
        let sale = RequestClass::Txn(TxnKind::Sale);
        assert_eq!(plan.choose(sale), Some(FaultAction::Drop));
        assert_eq!(plan.choose(sale), Some(FaultAction::Close));
        assert_eq!(plan.choose(sale), None);
        assert_eq!(
            plan.choose(RequestClass::Reversal),
            Some(FaultAction::Ignore)
        );
        assert_eq!(plan.choose(RequestClass::Unknown), None);
    }

    #[test]
    fn seeded_probability_repeats() {
        let run = |seed| {
            let mut plan = FaultPlan::new(vec![rule("drop@0.5")], None, Some(seed)).unwrap();
            (0..64)
                .map(|_| plan.choose(RequestClass::Unknown).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let fired = a.iter().filter(|f| **f).count();
        assert!((10..=54).contains(&fired), "{fired} of 64");
    }

    #[test]
    fn a_probability_is_how_often_the_rule_fires() {
        for p in [0.05, 0.15, 0.7] {
            let mut plan =
                FaultPlan::new(vec![rule(&format!("drop:advice@{p}"))], None, Some(3)).unwrap();
            let advice = RequestClass::Txn(TxnKind::Advice);
            let fired = (0..20_000)
                .filter(|_| plan.choose(advice).is_some())
                .count() as f64
                / 20_000.0;
            assert!((fired - p).abs() < 0.02, "@{p} fired {fired}");
        }
    }

    #[test]
    fn control_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.toml");
        std::fs::write(&path, "").unwrap();
        let mut plan = FaultPlan::new(vec![], Some(&path), None).unwrap();
        let sale = RequestClass::Txn(TxnKind::Sale);
        assert_eq!(plan.choose(sale), None);
        std::fs::write(
            &path,
            "[[fault]]\naction = \"delay\"\ndelay_ms = 5\nkind = \"sale\"\ncount = 1\n",
        )
        .unwrap();
        assert_eq!(
            plan.choose(sale),
            Some(FaultAction::Delay(Duration::from_millis(5)))
        );
        assert_eq!(plan.choose(sale), None, "count 1");
        std::fs::write(&path, "[[fault]]\naction = \"explode\"\n").unwrap();
        assert_eq!(
            plan.choose(sale),
            None,
            "bad file keeps the old (spent) rule"
        );
        std::fs::write(&path, "[[fault]]\naction = \"close\"\n").unwrap();
        assert_eq!(plan.choose(sale), Some(FaultAction::Close));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(plan.choose(sale), None);
    }

    #[test]
    fn control_file_errors() {
        for (text, mentions) in [
            ("[[fault]]\naction = \"delay\"\n", "fault #1: delay needs"),
            (
                "[[fault]]\naction = \"drop\"\nkind = \"purchase\"\n",
                "kind",
            ),
            (
                "[[fault]]\naction = \"drop\"\nprobability = 1.5\n",
                "at most 1",
            ),
            ("[[fault]]\naction = \"drop\"\ncolour = \"red\"\n", "colour"),
            ("[[fault]]\naction = \"drop\"\ndelay_ms = 3\n", "only delay"),
        ] {
            let e = parse_fault_file(text).unwrap_err();
            assert!(e.contains(mentions), "{text}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = FaultPlan::new(vec![], Some(&missing), None).unwrap_err();
        assert!(e.to_string().contains("nope.toml"), "{e}");
    }
}
