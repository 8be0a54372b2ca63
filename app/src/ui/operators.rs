//! Operator accounts (MISSION §2): an administrator, supervisors and
//! cashiers, each with a password kept only as an Argon2id hash; several
//! wrong passwords in a row lock the account for a while (an administrator
//! can unlock it sooner). The file is replaced atomically on every change,
//! so a power cut leaves the old or the new list, never half of one.

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sales, balance inquiries, pre-authorizations; voids and refunds with
    /// a supervisor's approval.
    Cashier,
    /// What a cashier does, and approves voids and refunds.
    Supervisor,
    /// Everything, including settings, operators and settlement.
    Administrator,
}

impl Role {
    /// Whether this role may approve a void or refund.
    pub fn approves(self) -> bool {
        matches!(self, Role::Supervisor | Role::Administrator)
    }
}

/// One account as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Argon2id PHC string; never the password.
    pub password_hash: String,
    /// Wrong passwords in a row.
    #[serde(default)]
    pub failures: u32,
    /// Locked until this Unix time (seconds).
    #[serde(default)]
    pub locked_until: Option<i64>,
    /// The password was given by someone else (the administrator, or
    /// provisioning for the first administrator): the next login must
    /// choose a new one before anything else.
    #[serde(default)]
    pub must_change_password: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default, rename = "operator")]
    operators: Vec<Account>,
}

/// How many wrong passwords lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    /// Wrong passwords in a row that lock the account.
    pub max_failures: u32,
    /// Minutes it stays locked unless an administrator unlocks it.
    pub lock_minutes: i64,
}

impl Default for LockPolicy {
    fn default() -> Self {
        LockPolicy {
            max_failures: 5,
            lock_minutes: 15,
        }
    }
}

/// Why a login (or an approval) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No such operator.
    #[error("no operator named {0}")]
    Unknown(String),
    /// Wrong password; the account locks after `tries_left` more.
    #[error("wrong password, {tries_left} tries left")]
    WrongPassword {
        /// Tries before the lock.
        tries_left: u32,
    },
    /// Locked until this Unix time.
    #[error("account locked until {until}")]
    Locked {
        /// Unix seconds.
        until: i64,
    },
    /// The account file could not be written.
    #[error("{0}")]
    Store(String),
}

/// Why an account could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The name is in use.
    #[error("name taken")]
    NameTaken,
    /// Names are 1–20 letters or digits.
    #[error("bad name")]
    BadName,
    /// Passwords have at least 6 characters.
    #[error("password too short")]
    ShortPassword,
    /// A new password must differ from the one it replaces.
    #[error("the new password is the old one")]
    SamePassword,
    /// The last administrator cannot be removed.
    #[error("the last administrator cannot be removed")]
    LastAdministrator,
    /// The account file could not be written.
    #[error("{0}")]
    Store(String),
}

/// The accounts and their file.
pub struct Operators {
    path: PathBuf,
    accounts: Vec<Account>,
    policy: LockPolicy,
}

/// Argon2id with 7 MiB, 5 passes, 1 lane: one of OWASP's equivalent
/// settings (as strong as 19 MiB × 2), chosen for a terminal with little
/// memory. The parameters are in each stored hash, so older hashes verify.
fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("valid Argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Gives the hash's working memory back to the system at once (glibc keeps
/// freed heap otherwise), so the terminal's footprint stays small.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hashes a password with Argon2id and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string());
    release_memory();
    hash
}

fn verify(password: &str, hash: &str) -> bool {
    let ok = PasswordHash::new(hash)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false);
    release_memory();
    ok
}

impl Operators {
    /// Loads the accounts from `path`; when the file does not exist, creates
    /// it with `initial` (name, role, password) accounts.
    pub fn open(path: &Path, initial: &[(&str, Role, &str)]) -> Result<Operators, String> {
        let mut ops = Operators {
            path: path.to_path_buf(),
            accounts: Vec::new(),
            policy: LockPolicy::default(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: File = toml::from_str(&text).map_err(|e| {
                    format!(
                        "the operator file {} is damaged ({e}); restore it from a backup",
                        path.display()
                    )
                })?;
                ops.accounts = file.operators;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                for (name, role, password) in initial {
                    ops.accounts.push(Account {
                        name: (*name).to_string(),
                        role: *role,
                        password_hash: hash_password(password)?,
                        failures: 0,
                        locked_until: None,
                        must_change_password: false,
                    });
                }
                ops.save()?;
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        if !ops.accounts.iter().any(|a| a.role == Role::Administrator) {
            return Err(format!(
                "the operator file {} has no administrator; restore it from a backup",
                path.display()
            ));
        }
        Ok(ops)
    }

    /// The lock policy in force.
    pub fn set_policy(&mut self, policy: LockPolicy) {
        self.policy = policy;
    }

    fn save(&self) -> Result<(), String> {
        let text = toml::to_string(&File {
            operators: self.accounts.clone(),
        })
        .map_err(|e| e.to_string())?;
        crate::ui::write_atomically(&self.path, text.as_bytes())
    }

    /// The accounts, in order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Whether `name` is locked at `now` (Unix seconds).
    pub fn is_locked(&self, name: &str, now: i64) -> bool {
        self.accounts
            .iter()
            .any(|a| a.name == name && a.locked_until.is_some_and(|t| t > now))
    }

    /// Checks `name`'s password at `now`; counts failures and locks.
    pub fn login(&mut self, name: &str, password: &str, now: i64) -> Result<Role, LoginError> {
        let policy = self.policy;
        let account = self
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| LoginError::Unknown(name.to_string()))?;
        if let Some(until) = account.locked_until {
            if until > now {
                return Err(LoginError::Locked { until });
            }
            account.locked_until = None;
            account.failures = 0;
        }
        let result = if verify(password, &account.password_hash) {
            account.failures = 0;
            Ok(account.role)
        } else {
            account.failures += 1;
            if account.failures >= policy.max_failures {
                let until = now + policy.lock_minutes * 60;
                account.locked_until = Some(until);
                Err(LoginError::Locked { until })
            } else {
                Err(LoginError::WrongPassword {
                    tries_left: policy.max_failures - account.failures,
                })
            }
        };
        self.save().map_err(LoginError::Store)?;
        result
    }

    /// Adds an account.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 20 || !name.chars().all(char::is_alphanumeric)
        {
            return Err(AccountError::BadName);
        }
        if self.accounts.iter().any(|a| a.name == name) {
            return Err(AccountError::NameTaken);
        }
        if password.chars().count() < 6 {
            return Err(AccountError::ShortPassword);
        }
        self.accounts.push(Account {
            name: name.to_string(),
            role,
            password_hash: hash_password(password).map_err(AccountError::Store)?,
            failures: 0,
            locked_until: None,
            // The administrator knows this password: the operator replaces it.
            must_change_password: true,
        });
        self.save().map_err(AccountError::Store)
    }

    /// Whether `name` must choose a new password before working.
    pub fn must_change_password(&self, name: &str) -> bool {
        self.accounts
            .iter()
            .any(|a| a.name == name && a.must_change_password)
    }

    /// Makes `name` choose a new password at the next login (an account
    /// whose password someone else set, e.g. at provisioning).
    pub fn require_password_change(&mut self, name: &str) -> Result<(), AccountError> {
        if let Some(a) = self.accounts.iter_mut().find(|a| a.name == name) {
            a.must_change_password = true;
        }
        self.save().map_err(AccountError::Store)
    }

    /// Replaces `name`'s password with one only they know: at least 6
    /// characters and not the one it replaces.
    pub fn change_password(&mut self, name: &str, new: &str) -> Result<(), AccountError> {
        if new.chars().count() < 6 {
            return Err(AccountError::ShortPassword);
        }
        let account = self
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or(AccountError::BadName)?;
        if verify(new, &account.password_hash) {
            return Err(AccountError::SamePassword);
        }
        account.password_hash = hash_password(new).map_err(AccountError::Store)?;
        account.must_change_password = false;
        self.save().map_err(AccountError::Store)
    }

    /// Unlocks an account and clears its failures.
    pub fn unlock(&mut self, name: &str) -> Result<(), AccountError> {
        if let Some(a) = self.accounts.iter_mut().find(|a| a.name == name) {
            a.locked_until = None;
            a.failures = 0;
        }
        self.save().map_err(AccountError::Store)
    }

    /// Removes an account (never the last administrator).
    pub fn remove(&mut self, name: &str) -> Result<(), AccountError> {
        let admins = self
            .accounts
            .iter()
            .filter(|a| a.role == Role::Administrator)
            .count();
        if self
            .accounts
            .iter()
            .any(|a| a.name == name && a.role == Role::Administrator)
            && admins <= 1
        {
            return Err(AccountError::LastAdministrator);
        }
        self.accounts.retain(|a| a.name != name);
        self.save().map_err(AccountError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Operators) {
        let dir = tempfile::tempdir().unwrap();
        let ops = Operators::open(
            &dir.path().join("operators.toml"),
            &[
                ("admin", Role::Administrator, "secret1"),
                ("li", Role::Cashier, "111111"),
            ],
        )
        .unwrap();
        (dir, ops)
    }

    #[test]
    fn passwords_are_stored_only_as_argon2id_hashes() {
        let (dir, _ops) = fresh();
        let text = std::fs::read_to_string(dir.path().join("operators.toml")).unwrap();
        assert!(
            !text.contains("secret1") && !text.contains("111111"),
            "{text}"
        );
        assert_eq!(
            text.matches("$argon2id$v=19$m=7168,t=5,p=1$").count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn a_password_someone_else_set_is_replaced_at_the_first_login() {
        let (dir, mut ops) = fresh();
        let path = dir.path().join("operators.toml");
        assert!(!ops.must_change_password("li"));
        ops.add("wang", Role::Cashier, "given1").unwrap();
        assert!(ops.must_change_password("wang"));
        assert_eq!(
            ops.change_password("wang", "abc"),
            Err(AccountError::ShortPassword)
        );
        assert_eq!(
            ops.change_password("wang", "given1"),
            Err(AccountError::SamePassword)
        );
        assert!(ops.must_change_password("wang"), "nothing changed yet");
        ops.change_password("wang", "mine-only").unwrap();
        assert!(!ops.must_change_password("wang"));
        // Kept across a restart; the old password no longer works.
        let mut again = Operators::open(&path, &[]).unwrap();
        assert!(!again.must_change_password("wang"));
        assert!(again.login("wang", "given1", 0).is_err());
        assert_eq!(again.login("wang", "mine-only", 0), Ok(Role::Cashier));
        again.require_password_change("admin").unwrap();
        let again = Operators::open(&path, &[]).unwrap();
        assert!(again.must_change_password("admin"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("mine-only") && !text.contains("given1"),
            "{text}"
        );
    }

    #[test]
    fn five_wrong_passwords_lock_the_account_until_unlocked_or_time_passes() {
        let (dir, mut ops) = fresh();
        let now = 1_000_000;
        for left in (1..5).rev() {
            assert_eq!(
                ops.login("li", "nope", now),
                Err(LoginError::WrongPassword { tries_left: left })
            );
        }
        let until = now + 15 * 60;
        assert_eq!(
            ops.login("li", "nope", now),
            Err(LoginError::Locked { until })
        );
        // The right password does not open a locked account…
        assert_eq!(
            ops.login("li", "111111", now + 60),
            Err(LoginError::Locked { until })
        );
        // …and the lock survives a restart.
        let mut again = Operators::open(&dir.path().join("operators.toml"), &[]).unwrap();
        assert!(again.is_locked("li", now + 60));
        assert_eq!(again.login("li", "111111", until + 1), Ok(Role::Cashier));
        for _ in 0..5 {
            let _ = again.login("li", "x", until + 2);
        }
        again.unlock("li").unwrap();
        assert_eq!(again.login("li", "111111", until + 3), Ok(Role::Cashier));
    }

    #[test]
    fn a_right_password_resets_the_count() {
        let (_dir, mut ops) = fresh();
        for _ in 0..4 {
            let _ = ops.login("li", "nope", 0);
        }
        assert_eq!(ops.login("li", "111111", 0), Ok(Role::Cashier));
        assert_eq!(
            ops.login("li", "nope", 0),
            Err(LoginError::WrongPassword { tries_left: 4 })
        );
    }

    #[test]
    fn accounts_are_checked_when_added_and_the_last_administrator_stays() {
        let (_dir, mut ops) = fresh();
        assert_eq!(
            ops.add("li", Role::Cashier, "123456"),
            Err(AccountError::NameTaken)
        );
        assert_eq!(
            ops.add("", Role::Cashier, "123456"),
            Err(AccountError::BadName)
        );
        assert_eq!(
            ops.add("wang", Role::Cashier, "12345"),
            Err(AccountError::ShortPassword)
        );
        ops.add("wang", Role::Supervisor, "123456").unwrap();
        assert_eq!(ops.login("wang", "123456", 0), Ok(Role::Supervisor));
        assert_eq!(ops.remove("admin"), Err(AccountError::LastAdministrator));
        ops.remove("wang").unwrap();
        assert_eq!(
            ops.login("wang", "123456", 0),
            Err(LoginError::Unknown("wang".into()))
        );
    }

    #[test]
    fn a_damaged_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operators.toml");
        std::fs::write(&path, "operator = 3").unwrap();
        let err = Operators::open(&path, &[("admin", Role::Administrator, "x")])
            .err()
            .unwrap();
        assert!(err.contains("damaged"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "operator = 3");
    }
}
