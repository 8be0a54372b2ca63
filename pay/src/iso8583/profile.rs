//! The host profile part of a dialect file: which field (or subfield)
//! carries each named element, how each transaction type is coded, the
//! security scheme, the response codes and what they mean.
//!
//! The engine and the acquirer simulator speak in elements (`amount`,
//! `batch_number`, `pin_key`…) and transaction kinds; only this table knows
//! that the batch number is subfield 60.2 on a UnionPay-style host and field
//! 60 on another.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::spec::FieldSpec;

/// Where an element lives: a field, or a positional subfield of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath {
    /// Field number.
    pub field: u8,
    /// 1-based subfield index, if the element is part of a field.
    pub sub: Option<u8>,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            Some(s) => write!(f, "{}.{}", self.field, s),
            None => write!(f, "{}", self.field),
        }
    }
}

/// Element names the engine and the acquirer use. A dialect maps each one
/// it supports to a field path; a name not in this list is a typo.
pub const ELEMENTS: &[&str] = &[
    "pan",
    "processing_code",
    "amount",
    "transmission_datetime",
    "stan",
    "local_time",
    "local_date",
    "expiry",
    "settlement_date",
    "pos_entry_mode",
    "card_sequence",
    "pos_condition_code",
    "track2",
    "rrn",
    "auth_code",
    "response_code",
    "terminal_id",
    "merchant_id",
    "additional_amounts",
    "currency",
    "pin_block",
    "security_info",
    "icc_data",
    "payment_code",
    "msg_type_code",
    "batch_number",
    "network_mgmt_code",
    "original_batch",
    "original_stan",
    "original_date",
    "original_mti",
    "original_datetime",
    "pin_key",
    "pin_key_kcv",
    "mac_key",
    "mac_key_kcv",
    "debit_count",
    "debit_amount",
    "credit_count",
    "credit_amount",
    "settle_result",
    "upload_count",
    "reversal_reason",
    "mac",
];

/// Elements every dialect must map: the engine cannot run without them.
const REQUIRED_ELEMENTS: &[&str] = &[
    "pan",
    "processing_code",
    "amount",
    "stan",
    "rrn",
    "auth_code",
    "response_code",
    "terminal_id",
    "merchant_id",
    "batch_number",
    "pin_block",
    "pin_key",
    "pin_key_kcv",
    "mac_key",
    "mac_key_kcv",
    "debit_count",
    "debit_amount",
    "credit_count",
    "credit_amount",
    "mac",
];

/// The transaction kinds a terminal runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    /// Terminal sign-in (签到): keys, batch number, date/time.
    SignIn,
    /// Purchase (消费).
    Sale,
    /// Balance inquiry.
    Balance,
    /// Pre-authorization (预授权).
    Preauth,
    /// Pre-authorization completion (预授权完成).
    Completion,
    /// Void of a pre-authorization (预授权撤销).
    PreauthVoid,
    /// Void of a sale (消费撤销).
    Void,
    /// Void of a pre-authorization completion (预授权完成撤销).
    CompletionVoid,
    /// Refund (退货).
    Refund,
    /// Offline sale advice sent after the fact (store-and-forward).
    Advice,
    /// Settlement request (结算) with batch totals.
    Settlement,
    /// One transaction of a batch upload.
    BatchUpload,
    /// End of a batch upload.
    BatchUploadEnd,
}

impl TxnKind {
    /// Every kind, in a stable order.
    pub const ALL: [TxnKind; 13] = [
        TxnKind::SignIn,
        TxnKind::Sale,
        TxnKind::Balance,
        TxnKind::Preauth,
        TxnKind::Completion,
        TxnKind::PreauthVoid,
        TxnKind::Void,
        TxnKind::CompletionVoid,
        TxnKind::Refund,
        TxnKind::Advice,
        TxnKind::Settlement,
        TxnKind::BatchUpload,
        TxnKind::BatchUploadEnd,
    ];

    /// The snake_case name used in dialect files and JSON.
    pub fn name(self) -> &'static str {
        match self {
            TxnKind::SignIn => "sign_in",
            TxnKind::Sale => "sale",
            TxnKind::Balance => "balance",
            TxnKind::Preauth => "preauth",
            TxnKind::Completion => "completion",
            TxnKind::PreauthVoid => "preauth_void",
            TxnKind::Void => "void",
            TxnKind::CompletionVoid => "completion_void",
            TxnKind::Refund => "refund",
            TxnKind::Advice => "advice",
            TxnKind::Settlement => "settlement",
            TxnKind::BatchUpload => "batch_upload",
            TxnKind::BatchUploadEnd => "batch_upload_end",
        }
    }

    /// Whether the kind moves money on the cardholder's account (and so
    /// counts in settlement totals when approved).
    pub fn is_financial(self) -> bool {
        matches!(
            self,
            TxnKind::Sale
                | TxnKind::Completion
                | TxnKind::Refund
                | TxnKind::Advice
                | TxnKind::Void
                | TxnKind::CompletionVoid
        )
    }
}

impl fmt::Display for TxnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TxnKind {
    type Err = String;
    fn from_str(s: &str) -> Result<TxnKind, String> {
        let norm = s.replace('-', "_");
        TxnKind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| {
                let names: Vec<_> = TxnKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown transaction kind {s:?}; known: {}",
                    names.join(", ")
                )
            })
    }
}

/// How one transaction kind is coded on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnProfile {
    /// Message type of the request.
    pub mti: String,
    /// Processing code (field 3), or `None` where the original's is used
    /// (batch upload).
    pub processing_code: Option<String>,
    /// Constant elements the request carries, e.g. `msg_type_code = "22"`.
    pub set: BTreeMap<String, String>,
    /// Whether an unanswered request must be reversed.
    pub reversible: bool,
    /// Whether the request and its answer carry a MAC.
    pub mac: bool,
}

/// The security scheme of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// `tdes` or `aes`: the algorithm of the master and working keys.
    pub keys: String,
    /// ISO 9564 PIN block format: 0, 3 or 4.
    pub pin_block_format: u8,
    /// MAC algorithm name: `retail`, `cmac` or `cup`.
    pub mac: String,
    /// ISO 9797-1 padding method for `retail`.
    pub mac_padding: Option<u8>,
    /// Bytes of key check value sent with each working key.
    pub kcv_length: usize,
}

/// A response code and what it means, in the terminal's languages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCode {
    /// Whether the code approves the transaction.
    #[serde(default)]
    pub approved: bool,
    /// English text for the screen.
    pub en: String,
    /// Simplified Chinese text for the screen.
    pub zh: String,
    /// What the operator should do next, in English.
    #[serde(default)]
    pub action: Option<String>,
    /// What the operator should do next, in Simplified Chinese.
    #[serde(default)]
    pub action_zh: Option<String>,
}

/// Host decisions the acquirer simulator makes, each answered with the
/// dialect's response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Approved.
    Approved,
    /// Generic decline.
    DoNotHonour,
    /// Unknown card number.
    InvalidCard,
    /// Transaction kind not allowed.
    InvalidTransaction,
    /// Amount not acceptable.
    InvalidAmount,
    /// Not enough money.
    InsufficientFunds,
    /// Card expired.
    ExpiredCard,
    /// Card reported lost.
    LostCard,
    /// Card reported stolen.
    StolenCard,
    /// Wrong PIN.
    IncorrectPin,
    /// Too many wrong PINs.
    PinTriesExceeded,
    /// Issuer cannot be reached.
    IssuerUnavailable,
    /// A request seen before (same terminal, batch and STAN).
    Duplicate,
    /// Host fault.
    SystemError,
    /// The request's MAC did not verify.
    MacError,
    /// The original of a void, completion, refund or reversal is unknown.
    OriginalNotFound,
    /// The message could not be parsed or lacks required fields.
    FormatError,
    /// Settlement totals disagree (on hosts that answer this with a code).
    ReconcileError,
    /// The terminal must sign in first.
    NotSignedIn,
    /// Amount exceeds a limit.
    ExceedsLimit,
    /// The terminal id is not registered with the host, or does not match
    /// the terminal's certificate.
    UnknownTerminal,
    /// A wallet payment code the wallet does not accept: unknown, expired
    /// or already used.
    InvalidPaymentCode,
}

/// How the reversal of an unanswered request is coded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalRules {
    /// First attempt.
    pub mti: String,
    /// Repeats.
    pub repeat_mti: String,
    /// `true`: the reversal gets its own STAN and points at the original
    /// through `original_stan`; `false`: it carries the original's STAN.
    pub new_stan: bool,
    /// Reason code for a request that got no answer.
    pub reason_no_answer: String,
    /// Reason code for an answer whose MAC failed.
    pub reason_bad_mac: String,
}

/// How the host says settlement totals disagree.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfBalance {
    /// An element of the settlement answer that says so…
    #[serde(default)]
    pub element: Option<String>,
    /// …with this value.
    #[serde(default)]
    pub value: Option<String>,
    /// Or a response code that says so.
    #[serde(default)]
    pub response_code: Option<String>,
}

/// Settlement rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementRules {
    /// How the host reports totals that disagree.
    pub out_of_balance: OutOfBalance,
    /// Value of `settle_result` the terminal sends / the host answers when totals agree.
    #[serde(default)]
    pub balanced_value: Option<String>,
}

/// The profile as read from the file, before validation.
pub(crate) struct ProfileFile {
    pub elements: BTreeMap<String, String>,
    pub transactions: BTreeMap<String, RawTxn>,
    pub security: Option<RawSecurity>,
    pub response_codes: BTreeMap<String, ResponseCode>,
    pub outcomes: BTreeMap<Outcome, String>,
    pub reversal: Option<ReversalRules>,
    pub settlement: Option<SettlementRules>,
    pub answer: RawAnswer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTxn {
    mti: String,
    processing_code: Option<String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    reversible: bool,
    #[serde(default = "yes")]
    mac: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurity {
    keys: String,
    pin_block_format: u8,
    mac: String,
    mac_padding: Option<u8>,
    kcv_length: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnswer {
    #[serde(default)]
    echo: Vec<u8>,
}

/// The validated host profile of a dialect.
#[derive(Debug, Clone)]
pub struct Profile {
    flows: bool,
    elements: BTreeMap<String, FieldPath>,
    transactions: BTreeMap<TxnKind, TxnProfile>,
    /// Key, PIN block and MAC scheme.
    pub security: Security,
    /// Response codes and their meaning.
    pub response_codes: BTreeMap<String, ResponseCode>,
    outcomes: BTreeMap<Outcome, String>,
    /// Reversal coding.
    pub reversal: ReversalRules,
    /// Settlement coding.
    pub settlement: SettlementRules,
    /// Fields the host copies from request to answer.
    pub answer_echo: Vec<u8>,
}

impl Profile {
    pub(crate) fn from_file(
        file: ProfileFile,
        fields: &[Option<FieldSpec>],
    ) -> Result<Profile, String> {
        if file.elements.is_empty()
            && file.transactions.is_empty()
            && file.security.is_none()
            && file.response_codes.is_empty()
            && file.outcomes.is_empty()
            && file.reversal.is_none()
            && file.settlement.is_none()
        {
            return Ok(Profile::codec_only());
        }
        let mut elements = BTreeMap::new();
        for (name, path) in &file.elements {
            if !ELEMENTS.contains(&name.as_str()) {
                return Err(format!(
                    "[elements]: {name:?} is not an element Till knows; known: {}",
                    ELEMENTS.join(", ")
                ));
            }
            let p = parse_path(path, fields)
                .map_err(|e| format!("[elements] {name} = {path:?}: {e}"))?;
            elements.insert(name.clone(), p);
        }
        for required in REQUIRED_ELEMENTS {
            if !elements.contains_key(*required) {
                return Err(format!("[elements]: {required} must be mapped to a field"));
            }
        }
        let mut transactions = BTreeMap::new();
        for (name, raw) in file.transactions {
            let kind: TxnKind = name
                .parse()
                .map_err(|e| format!("[transactions.{name}]: {e}"))?;
            check_mti(&raw.mti).map_err(|e| format!("[transactions.{name}] mti: {e}"))?;
            if let Some(pc) = &raw.processing_code
                && (pc.len() != 6 || !pc.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!(
                    "[transactions.{name}] processing_code must be six digits"
                ));
            }
            for element in raw.set.keys() {
                if !elements.contains_key(element) {
                    return Err(format!(
                        "[transactions.{name}] set: element {element:?} is not mapped in [elements]"
                    ));
                }
            }
            transactions.insert(
                kind,
                TxnProfile {
                    mti: raw.mti,
                    processing_code: raw.processing_code,
                    set: raw.set,
                    reversible: raw.reversible,
                    mac: raw.mac,
                },
            );
        }
        for kind in TxnKind::ALL {
            if !transactions.contains_key(&kind) {
                return Err(format!("[transactions.{}] is missing", kind.name()));
            }
        }
        let sec = file.security.ok_or("[security] is missing")?;
        let security = Security {
            keys: sec.keys,
            pin_block_format: sec.pin_block_format,
            mac: sec.mac,
            mac_padding: sec.mac_padding,
            kcv_length: sec.kcv_length,
        };
        match (
            security.keys.as_str(),
            security.pin_block_format,
            security.mac.as_str(),
        ) {
            ("tdes", 0 | 3, "retail" | "cup") | ("aes", 4, "cmac") => {}
            (k, p, m) => {
                return Err(format!(
                    "[security]: keys = {k:?}, pin_block_format = {p}, mac = {m:?} do not go together; \
                     use tdes with formats 0/3 and retail/cup MACs, or aes with format 4 and cmac"
                ));
            }
        }
        if !(2..=8).contains(&security.kcv_length) {
            return Err("[security] kcv_length must be 2 to 8 bytes".into());
        }
        for (code, r) in &file.response_codes {
            if code.len() != 2 {
                return Err(format!("[response_codes]: {code:?} must be two characters"));
            }
            // The terminal shows the action in the operator's language.
            if r.action.is_some() != r.action_zh.is_some() {
                return Err(format!(
                    "[response_codes.{code}]: action and action_zh go together (English and Chinese)"
                ));
            }
        }
        for (outcome, code) in &file.outcomes {
            if !file.response_codes.contains_key(code) {
                return Err(format!(
                    "[outcomes] {outcome:?} = {code:?}: the code is not listed in [response_codes]"
                ));
            }
        }
        for needed in [
            Outcome::Approved,
            Outcome::DoNotHonour,
            Outcome::InvalidCard,
            Outcome::InsufficientFunds,
            Outcome::ExpiredCard,
            Outcome::IncorrectPin,
            Outcome::PinTriesExceeded,
            Outcome::IssuerUnavailable,
            Outcome::Duplicate,
            Outcome::SystemError,
            Outcome::MacError,
            Outcome::OriginalNotFound,
            Outcome::FormatError,
            Outcome::UnknownTerminal,
        ] {
            if !file.outcomes.contains_key(&needed) {
                return Err(format!("[outcomes]: {needed:?} needs a response code"));
            }
        }
        let reversal = file.reversal.ok_or("[reversal] is missing")?;
        check_mti(&reversal.mti).map_err(|e| format!("[reversal] mti: {e}"))?;
        check_mti(&reversal.repeat_mti).map_err(|e| format!("[reversal] repeat_mti: {e}"))?;
        if reversal.new_stan && !elements.contains_key("original_stan") {
            return Err("[reversal] new_stan = true needs the original_stan element".into());
        }
        let settlement = file.settlement.ok_or("[settlement] is missing")?;
        let oob = &settlement.out_of_balance;
        match (&oob.element, &oob.value, &oob.response_code) {
            (Some(e), Some(_), None) if elements.contains_key(e) => {}
            (None, None, Some(c)) if file.response_codes.contains_key(c) => {}
            _ => {
                return Err("[settlement] out_of_balance needs either element + value (a mapped element) or \
                            response_code (a listed code)"
                    .into());
            }
        }
        for n in &file.answer.echo {
            if fields
                .get(usize::from(*n))
                .and_then(Option::as_ref)
                .is_none()
            {
                return Err(format!("[answer] echo: field {n} is not defined"));
            }
        }
        Ok(Profile {
            flows: true,
            elements,
            transactions,
            security,
            response_codes: file.response_codes,
            outcomes: file.outcomes,
            reversal,
            settlement,
            answer_echo: file.answer.echo,
        })
    }

    /// The profile of a dialect file that only describes fields: enough to
    /// encode, decode and describe messages, not to run transactions.
    fn codec_only() -> Profile {
        Profile {
            flows: false,
            elements: BTreeMap::new(),
            transactions: BTreeMap::new(),
            security: Security {
                keys: String::new(),
                pin_block_format: 0,
                mac: String::new(),
                mac_padding: None,
                kcv_length: 0,
            },
            response_codes: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            reversal: ReversalRules {
                mti: String::new(),
                repeat_mti: String::new(),
                new_stan: false,
                reason_no_answer: String::new(),
                reason_bad_mac: String::new(),
            },
            settlement: SettlementRules {
                out_of_balance: OutOfBalance {
                    element: None,
                    value: None,
                    response_code: None,
                },
                balanced_value: None,
            },
            answer_echo: Vec::new(),
        }
    }

    /// Whether the dialect file describes transactions too (not only fields),
    /// so a terminal or host can run flows with it.
    pub fn runs_flows(&self) -> bool {
        self.flows
    }

    /// Where an element lives, if the dialect maps it.
    pub fn element(&self, name: &str) -> Option<FieldPath> {
        self.elements.get(name).copied()
    }

    /// How a transaction kind is coded (`None` for a codec-only dialect).
    pub fn txn(&self, kind: TxnKind) -> Option<&TxnProfile> {
        self.transactions.get(&kind)
    }

    /// All transaction profiles.
    pub fn transactions(&self) -> impl Iterator<Item = (TxnKind, &TxnProfile)> {
        self.transactions.iter().map(|(k, p)| (*k, p))
    }

    /// The response code for a host decision (falls back to the system
    /// error code where the dialect lists none for it).
    pub fn code_for(&self, outcome: Outcome) -> &str {
        self.outcomes
            .get(&outcome)
            .or_else(|| self.outcomes.get(&Outcome::SystemError))
            .map(String::as_str)
            .unwrap_or("96")
    }

    /// What a response code means; unknown codes are declines.
    pub fn response(&self, code: &str) -> Option<&ResponseCode> {
        self.response_codes.get(code)
    }

    /// Whether a response code approves.
    pub fn is_approved(&self, code: &str) -> bool {
        self.response_codes.get(code).is_some_and(|r| r.approved)
    }

    /// Whether a refusal says "not now" rather than "no": the host wants a
    /// fresh sign-in, could not check the MAC (keys changed), or failed
    /// itself. Something owed that meets one stays owed and is sent again
    /// later; it is never marked rejected for it.
    pub fn is_transient_refusal(&self, code: &str) -> bool {
        [
            Outcome::NotSignedIn,
            Outcome::MacError,
            Outcome::SystemError,
        ]
        .iter()
        .any(|o| self.means(code, *o))
    }

    /// Whether `code` is this dialect's code for `outcome` (no fallback:
    /// a dialect that lists no code for it never matches).
    pub fn means(&self, code: &str, outcome: Outcome) -> bool {
        self.outcomes.get(&outcome).is_some_and(|c| c == code)
    }

    /// A response code in words for the operator: its English text and,
    /// where the dialect gives one, what to do.
    pub fn explain(&self, code: &str) -> String {
        match self.response_codes.get(code) {
            Some(r) => match &r.action {
                Some(a) => format!("{code} ({}: {a})", r.en),
                None => format!("{code} ({})", r.en),
            },
            None => format!("{code} (a code this dialect does not list)"),
        }
    }
}

fn check_mti(mti: &str) -> Result<(), String> {
    if mti.len() == 4 && mti.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{mti:?} must be four digits"))
    }
}

fn parse_path(path: &str, fields: &[Option<FieldSpec>]) -> Result<FieldPath, String> {
    let (f, sub) = match path.split_once('.') {
        Some((f, s)) => (f, Some(s)),
        None => (path, None),
    };
    let field: u8 = f
        .parse()
        .map_err(|_| "must be a field number such as \"4\" or \"60.2\"".to_string())?;
    let spec = fields
        .get(usize::from(field))
        .and_then(Option::as_ref)
        .ok_or_else(|| format!("field {field} is not defined in [fields]"))?;
    let sub = match sub {
        None => None,
        Some(s) => {
            let i: u8 = s
                .parse()
                .map_err(|_| format!("subfield {s:?} must be a number"))?;
            if i == 0 || usize::from(i) > spec.subfields.len() {
                return Err(format!(
                    "field {field} has {} subfields, not {i}",
                    spec.subfields.len()
                ));
            }
            Some(i)
        }
    };
    Ok(FieldPath { field, sub })
}
