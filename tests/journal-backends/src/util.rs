//! Small helpers: statistics, child processes, files, the machine.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::backends::{Backend, Result};

/// Percentiles of a sample, in the unit given.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// 99.9th percentile (nearest rank).
    pub p999: f64,
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// Nearest-rank percentiles of `v` (which must not be empty).
pub fn summarize(v: &[f64]) -> Summary {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let rank = |p: f64| s[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Summary {
        n,
        p50: rank(0.50),
        p99: rank(0.99),
        p999: rank(0.999),
        mean: s.iter().sum::<f64>() / n as f64,
        min: s[0],
        max: s[n - 1],
    }
}

/// This program, to run its hidden child subcommands.
pub fn self_exe() -> Result<PathBuf> {
    Ok(std::env::current_exe()?)
}

/// A command running this program with `args`.
pub fn child_cmd(args: &[&str]) -> Result<Command> {
    let mut c = Command::new(self_exe()?);
    c.args(args);
    Ok(c)
}

/// Waits for `child` at most `limit`; `None` if it was still running, in
/// which case `on_timeout` is called with its id (to end it, or what it
/// runs) and the child is then waited for. A thread blocks in `wait(2)`;
/// no polling.
pub fn wait_timeout_with(
    child: &mut Child,
    limit: Duration,
    on_timeout: impl FnOnce(u32),
) -> Result<Option<ExitStatus>> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let waiter = s.spawn(move || {
            let r = child.wait();
            let _ = tx.send(());
            r
        });
        let timed_out = rx.recv_timeout(limit).is_err();
        if timed_out {
            on_timeout(pid);
        }
        let status = waiter
            .join()
            .map_err(|_| "the thread waiting for a child panicked")??;
        Ok(if timed_out { None } else { Some(status) })
    })
}

/// Waits for `child` at most `limit`, killing it (SIGKILL, by its id) if it
/// is still running then; `None` in that case.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    wait_timeout_with(child, limit, kill_pid)
}

/// The processes `pid` started (from /proc), to end a traced program by
/// its own id when strace must be stopped.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
        }
    }
    out
}

/// SIGKILL to one process we started, by its id.
pub fn kill_pid(pid: u32) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid of a child we spawned; no memory involved.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

/// Runs a child of this program to completion (at most `limit`), returning
/// its exit status (None if it had to be killed) and its stdout and stderr.
pub fn run_child(args: &[&str], limit: Duration) -> Result<(Option<ExitStatus>, String, String)> {
    let mut c = child_cmd(args)?;
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    // Read the pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().ok_or("no stdout pipe")?;
    let mut err = child.stderr.take().ok_or("no stderr pipe")?;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_timeout(&mut child, limit)?;
    let out = t_out.join().unwrap_or_default();
    let err = t_err.join().unwrap_or_default();
    Ok((status, out, err))
}

/// The last line of `s` that parses as JSON.
pub fn last_json(s: &str) -> Option<serde_json::Value> {
    s.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
}

/// Copies a directory tree (regular files and directories).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let ty = e.file_type()?;
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if ty.is_file() {
            fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Removes a directory tree if it exists.
pub fn remove_dir(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", p.display()).into()),
    }
}

/// Files under `dir` with their sizes, relative names, sorted.
pub fn list_files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) => {
                    let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                    out.push((rel, m.len()));
                }
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Bytes of all files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    list_files(dir).iter().map(|(_, n)| n).sum()
}

/// The store files of `backend` under a journal directory, for reports.
pub fn store_files(backend: Backend, dir: &Path) -> Vec<(String, u64)> {
    list_files(&backend.store_path(dir))
}

/// The file system type of `p` (statfs), by name where known.
pub fn fs_type(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs(2) fills the zeroed struct we own; the path is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets
    match st.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        other => format!("0x{other:x}"),
    }
}

/// Facts about the machine and the build, for the JSON reports.
pub fn environment(work: &Path) -> serde_json::Value {
    let uname = Command::new("uname")
        .arg("-srm")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    serde_json::json!({
        "date": chrono::Local::now().to_rfc3339(),
        "os": os,
        "kernel": uname,
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average_at_start": load,
        "work_dir": work.display().to_string(),
        "file_system": fs_type(work),
        "sqlite": rusqlite::version(),
        "sled": crate_version("sled"),
        "redb": crate_version("redb"),
        "rusqlite": crate_version("rusqlite"),
    })
}

/// A dependency's version, from this crate's Cargo.lock.
pub fn crate_version(name: &str) -> String {
    const LOCK: &str = include_str!("../Cargo.lock");
    let needle = format!("name = \"{name}\"\nversion = \"");
    LOCK.find(&needle)
        .and_then(|i| LOCK[i + needle.len()..].split('"').next())
        .unwrap_or("?")
        .to_string()
}

/// Refuses to measure durability on a file system where it is free.
pub fn check_work_fs(work: &Path) -> Result<()> {
    if fs_type(work) == "tmpfs" {
        return Err(format!(
            "{} is on tmpfs, where fsync costs nothing and nothing survives a power cut; \
             give --work-dir a directory on a disk",
            work.display()
        )
        .into());
    }
    Ok(())
}

/// Finds a program on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// strace, or a clear error saying how to get it.
pub fn strace() -> Result<PathBuf> {
    which("strace").ok_or_else(|| {
        "strace is not installed: run scripts/setup (it installs strace), or apt-get install strace".into()
    })
}

/// Writes `v` as pretty JSON to `path`, if one was given.
pub fn write_json(path: Option<&Path>, v: &serde_json::Value) -> Result<()> {
    if let Some(p) = path {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(d)?;
        }
        fs::write(p, serde_json::to_string_pretty(v)? + "\n")
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        println!("JSON written to {}", p.display());
    }
    Ok(())
}

/// What a writer acknowledged before it was killed.
pub struct Killed {
    /// Its stdout, every line (`# opened`, `A <id>`, `B <id>`).
    pub acks: String,
    /// Answered sales acknowledged.
    pub answered: u64,
    /// It was still running when killed (it had not stopped on an error).
    pub killed: bool,
    /// Its stderr, if it stopped by itself.
    pub stderr: String,
}

/// Starts a writer on the journal in `dir`, reads its acknowledgements
/// from the pipe until `answered` sales are answered, waits `delay` (the
/// random moment of the kill test, not a synchronization), kills it with
/// SIGKILL by its id and reads what it acknowledged up to its death.
pub fn kill_writer_after(
    backend: Backend,
    dir: &Path,
    answered: u64,
    delay: Duration,
) -> Result<Killed> {
    use std::io::BufRead;
    let dir_s = dir.to_string_lossy().into_owned();
    let mut c = child_cmd(&[
        "child",
        "writer",
        "--backend",
        backend.name(),
        "--dir",
        &dir_s,
    ])?;
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    let out = child.stdout.take().ok_or("no stdout pipe")?;
    let mut err = child.stderr.take().ok_or("no stderr pipe")?;
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut reader = std::io::BufReader::new(out);
    let mut acks = String::new();
    let mut n = 0u64;
    let mut killed = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break; // EOF: the writer is gone
        }
        acks.push_str(&line);
        if line.starts_with("B ") {
            n += 1;
            if n == answered && !killed {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                kill_pid(child.id());
                killed = true;
                // Keep reading: what it wrote before dying is acknowledged.
            }
        }
    }
    let status = child.wait()?;
    let stderr = t_err.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let answered = acks.lines().filter(|l| l.starts_with("B ")).count() as u64;
    Ok(Killed {
        acks,
        answered,
        killed: killed && status.signal() == Some(libc::SIGKILL),
        stderr,
    })
}
