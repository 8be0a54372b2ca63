# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this file
# Helpers shared by scripts/setup, scripts/test, scripts/cross and
# scripts/qemu-test.
# Sourced, never executed. Callers have already done `set -euo pipefail`.

# Repository root (this file lives in <root>/scripts/lib/).
TILL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TILL_ROOT

# The Python virtualenv holding the independent test peers (pyiso8583, psec,
# pyemv, cryptography). A fixed place under the repo's target/ on purpose:
# tests find it through TILL_PYTHON, which scripts/test exports.
TILL_PEERS_VENV="$TILL_ROOT/target/peers-venv"

# Debian's rustc-web toolchain: the only one here with an aarch64 std.
DEB_CARGO=/usr/bin/cargo
DEB_RUSTC=/usr/bin/rustc
DEB_RUSTDOC=/usr/bin/rustdoc
CROSS_TRIPLE=aarch64-unknown-linux-gnu
# What the aarch64 tests build and run under qemu-user: every package but
# the touchscreen app's (its screens and flows are the same code on both
# architectures, and its device build runs on the OS image's display in
# scripts/image-test); tillctl, the card and engine modules come with
# tests/ (till-app without its ui feature, so no Slint for aarch64 here).
# scripts/cross test and scripts/qemu-test build with exactly these, so
# that after one nothing is rebuilt for the other.
CROSS_TEST_SELECTION=(--workspace --exclude till-app --all-features)

# The Debian arm64 kernel scripts/qemu-test boots (an ABI name such as
# 6.1.0-56-arm64): TILL_QEMU_KERNEL if set, else the one Debian's
# linux-image-arm64 metapackage depends on in the apt lists. Fails (prints
# nothing) when the lists do not know it (no apt-get update since arm64 was
# added).
qemu_kernel_abi() {
    if [[ -n "${TILL_QEMU_KERNEL:-}" ]]; then
        printf '%s\n' "$TILL_QEMU_KERNEL"
        return 0
    fi
    local abi
    abi="$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
        awk '!found && sub(/^ *Depends: linux-image-/, "") && sub(/:arm64$/, "") { print; found = 1 }')" || true
    [[ -n "$abi" ]] || return 1
    printf '%s\n' "$abi"
}

# The kernel series of an ABI name (6.1.0-56-arm64 -> 6.1, 6.12.117+deb12-arm64
# -> 6.12): what linux-source-V and linux-kbuild-V are named after.
kernel_series() {
    [[ "$1" =~ ^([0-9]+\.[0-9]+)[.-] ]] || die "cannot tell the kernel series of '$1'"
    printf '%s\n' "${BASH_REMATCH[1]}"
}

_till_prog="scripts/$(basename "$0")"

info() { printf '%s: %s\n' "$_till_prog" "$*"; }
warn() { printf '%s: warning: %s\n' "$_till_prog" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$_till_prog" "$*" >&2
    exit 1
}

# Make the host Rust toolchain the rustup one when it exists, even if PATH
# does not list ~/.cargo/bin (CI shells, sudo). Prints nothing.
use_rustup_path() {
    if [[ -x "$HOME/.cargo/bin/cargo" && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
}

# True when a host cargo other than Debian's /usr/bin/cargo is available
# (normally rustup's). Call use_rustup_path first.
have_rustup_cargo() {
    local c
    c="$(command -v cargo 2>/dev/null || true)"
    [[ -n "$c" && "$(readlink -f "$c")" != "$(readlink -f "$DEB_CARGO")" ]]
}

# Pick the host toolchain for scripts/test: rustup's when present, else
# Debian's cargo-web/rustc-web (with rustfmt-web and rust-web-clippy, which
# scripts/setup installs in that case). Sets HOST_TOOLCHAIN for messages.
select_host_toolchain() {
    use_rustup_path
    if have_rustup_cargo; then
        HOST_TOOLCHAIN="$(cargo --version 2>/dev/null || echo cargo) [$(command -v cargo)]"
    elif [[ -x "$DEB_CARGO" ]]; then
        export RUSTC="$DEB_RUSTC" RUSTDOC="$DEB_RUSTDOC"
        HOST_TOOLCHAIN="$("$DEB_CARGO" --version) [Debian cargo-web fallback: no rustup cargo found]"
        warn "no rustup cargo on PATH or in ~/.cargo/bin: falling back to Debian's cargo-web/rustc-web"
    else
        die "no cargo found (neither rustup's nor Debian's cargo-web); run scripts/setup"
    fi
}

# Format seconds as e.g. "1m05s" or "7s".
fmt_secs() {
    local s=$1
    if ((s >= 60)); then
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}
