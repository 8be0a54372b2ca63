# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this file
# Helpers shared by the emulated-board scripts, scripts/qemu-test (the
# drivers on gpio-sim and a 16550), scripts/image and scripts/image-test
# (the OS image): the cache directory, timed steps, Debian packages
# fetched with apt-get download and extracted (never installed), Debian's
# arm64 kernel, the guest's modules and the initramfs archive.
# Sourced after scripts/lib/common.sh, never executed.

# qemu_init NAME: the cache directory and common settings; NAME labels the
# step headers and the summary ("qemu-test"). Sets Q (target/qemu, or
# $CARGO_TARGET_DIR/qemu, or $TILL_QEMU_DIR), DEBS, PY, locked (--locked
# under CI), SUDO; installs the EXIT trap that names a failed step.
qemu_init() {
    QEMU_NAME=$1
    Q="${TILL_QEMU_DIR:-${CARGO_TARGET_DIR:-$TILL_ROOT/target}/qemu}"
    mkdir -p "$Q"
    Q="$(cd "$Q" && pwd)"
    DEBS="$Q/debs"
    PY=/usr/bin/python3
    locked=()
    [[ "${CI:-}" == true ]] && locked=(--locked)
    SUDO=()
    if ((EUID != 0)); then SUDO=(sudo -n); fi
    _step_names=() _step_times=()
    current=""
    step_start=0
    run_start=$SECONDS
    trap _qemu_on_exit EXIT
}

# ---------------------------------------------------------------- steps
# A step: begin NAME "what it does" ... end. A failure (die, set -e) inside
# a step prints the summary so far and names the step.
qemu_summary() {
    local i
    echo
    echo "==== scripts/$QEMU_NAME summary"
    for i in "${!_step_names[@]}"; do
        printf '  %-12s %8s\n' "${_step_names[$i]}" "$(fmt_secs "${_step_times[$i]}")"
    done
    printf '  %-12s %8s\n' total "$(fmt_secs $((SECONDS - run_start)))"
}

_qemu_on_exit() {
    local rc=$?
    if [[ -n "$current" ]]; then
        _step_names+=("$current")
        _step_times+=($((SECONDS - step_start)))
        qemu_summary >&2
        # shellcheck disable=SC2154 # _till_prog: set by common.sh
        printf '%s: error: step %s failed (exit %d)\n' "$_till_prog" "$current" "$rc" >&2
    fi
}

begin() {
    current=$1
    step_start=$SECONDS
    echo
    echo "==== [$QEMU_NAME $1] $2"
}

end() {
    _step_names+=("$current")
    _step_times+=($((SECONDS - step_start)))
    current=""
}

# Run a command with its output in LOG; on failure show the log's tail and die.
logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        die "failed: $* (full log: $log)"
    fi
}

# require_commands CMD...: die naming what is missing (scripts/setup installs it).
require_commands() {
    local c missing=()
    for c in "$@"; do
        command -v "$c" >/dev/null || missing+=("$c")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/setup"
}

# ---------------------------------------------------------------- Debian packages
# deb_files SPEC...: "PACKAGE ARCH FILE" for the candidate of each SPEC (name
# or name:arch), FILE as apt-get download names it, e.g.
# busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb. One apt-cache call: each
# costs a second here (Debian's container images keep no package cache).
deb_files() {
    apt-cache show --no-all-versions "$@" 2>/dev/null | awk '
        function out() { if (p != "") { gsub(/:/, "%3a", v); print p, a, p "_" v "_" a ".deb" }; p = v = a = "" }
        /^Package: / { p = $2 } /^Version: / { v = $2 } /^Architecture: / { a = $2 }
        /^$/ { out() } END { out() }' || true
}

# fetch_debs SPEC...: download the candidates missing from $DEBS; sets
# DEB_PATH[SPEC]. A candidate the mirror no longer has (stale lists) is
# retried once after apt-get update.
declare -A DEB_PATH
fetch_debs() {
    local attempt spec name arch file known missing
    mkdir -p "$DEBS"
    for attempt in 1 2; do
        known="$(deb_files "$@")"
        missing=()
        for spec in "$@"; do
            name=${spec%%:*} arch=""
            [[ "$spec" != *:* ]] || arch=${spec#*:}
            file="$(awk -v n="$name" -v a="$arch" '$1 == n && (a == "" || $2 == a || $2 == "all") { print $3; exit }' <<<"$known")"
            [[ -n "$file" ]] || die "apt does not know $spec (run scripts/setup, or apt-get update)"
            DEB_PATH[$spec]="$DEBS/$file"
            [[ -s "$DEBS/$file" ]] || missing+=("$spec")
        done
        ((${#missing[@]})) || return 0
        info "downloading ${missing[*]}"
        if (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}") >"$Q/download.log" 2>&1; then
            continue
        fi
        ((attempt == 1)) || {
            tail -n 20 "$Q/download.log" >&2
            die "apt-get download ${missing[*]} failed"
        }
        info "download failed; refreshing the apt lists and retrying"
        logged "$Q/apt-update.log" "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update
    done
    for spec in "$@"; do
        [[ -s "${DEB_PATH[$spec]}" ]] || die "apt-get download did not leave ${DEB_PATH[$spec]}"
    done
}

# extract DIR DEB...: DIR holds the DEBs' files, extracted once; a changed
# set of DEBs (a new version) re-extracts.
extract() {
    local dir=$1 want deb
    shift
    want="$(printf '%s\n' "${@##*/}")"
    if [[ -f "$dir/.till-debs" && "$(cat "$dir/.till-debs")" == "$want" ]]; then
        return 0
    fi
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp"
    for deb in "$@"; do
        dpkg-deb -x "$deb" "$dir.tmp" || die "dpkg-deb -x $deb failed"
    done
    printf '%s\n' "$want" >"$dir.tmp/.till-debs"
    mv "$dir.tmp" "$dir"
}

deb_version() { dpkg-deb -f "$1" Version; }

# ELF e_machine (bytes 18-19, little endian): 183 = EM_AARCH64.
is_aarch64_elf() { [[ "$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')" == 183 ]]; }

# elf_needed ELF: the sonames it needs (DT_NEEDED), one per line.
elf_needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# elf_interp ELF: the program interpreter it names (empty for a library).
elf_interp() { aarch64-linux-gnu-readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p'; }

# ---------------------------------------------------------------- cargo
# cargo_executable JSON NAME KIND: the executable cargo reported in JSON
# (--message-format=json...) for target NAME; KIND is test (a test
# harness), bin or example. Prints nothing when there is none.
cargo_executable() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, name, kind = sys.argv[1:4]
for line in open(path):
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if m["target"]["name"] != name:
        continue
    is_test = m["profile"]["test"]
    if (kind == "test" and is_test) or (kind != "test" and not is_test and kind in m["target"]["kind"]):
        print(m["executable"])
        break
EOF
}

# ---------------------------------------------------------------- kernel
# qemu_kernel_abi_or_die: K (the ABI, e.g. 6.1.0-56-arm64) and V (its
# series, 6.1) of the Debian arm64 kernel to boot (see qemu_kernel_abi).
qemu_kernel_abi_or_die() {
    K="$(qemu_kernel_abi)" || true
    [[ -n "$K" ]] || die "no Debian arm64 kernel in the apt lists (linux-image-arm64:arm64): run scripts/setup"
    V="$(kernel_series "$K")"
}

# qemu_kernel_image: after fetch_debs "linux-image-$K:arm64": kver (the
# package version), KDIR (its cache directory), KROOT (the extracted
# package) and IMAGE (the uncompressed Image for -kernel).
qemu_kernel_image() {
    local deb="${DEB_PATH[linux-image-$K:arm64]}"
    kver="$(deb_version "$deb")"
    KDIR="$Q/kernel/${K}_$kver"
    KROOT="$KDIR/image"
    extract "$KROOT" "$deb"
    IMAGE="$KROOT/boot/vmlinuz-$K"
    [[ -f "$IMAGE" ]] || die "no $IMAGE in linux-image-$K"
    # Debian's arm64 "vmlinuz" is an uncompressed Image (magic "ARMd" at 56).
    [[ "$(dd if="$IMAGE" bs=1 skip=56 count=4 status=none)" == ARMd ]] ||
        die "$IMAGE is not an arm64 Image (QEMU's -kernel needs one)"
    [[ -f "$KROOT/lib/modules/$K/modules.dep" ]] || logged "$Q/depmod.log" depmod -b "$KROOT" "$K"
}

# stage_modules STAGE MODULE...: the modules and their dependencies, in load
# order as the host's modprobe computes them from the image's modules.dep,
# into STAGE/lib/modules/, their names in load order in STAGE/etc/modules
# (for the guest's /init to insmod).
stage_modules() {
    local stage=$1 verb path name mods=()
    shift
    mkdir -p "$stage/lib/modules" "$stage/etc"
    while read -r verb path _; do
        [[ "$verb" == insmod ]] || continue
        [[ " ${mods[*]} " == *" $path "* ]] || mods+=("$path")
    done < <(modprobe -d "$KROOT" -S "$K" --show-depends -a "$@") ||
        die "modprobe --show-depends $* failed"
    ((${#mods[@]})) || die "modprobe found no modules to load for $*"
    : >"$stage/etc/modules"
    for path in "${mods[@]}"; do
        name="${path##*/}"
        case "$name" in
            *.ko) cp "$path" "$stage/lib/modules/$name" ;;
            *.ko.xz) xz -dc "$path" >"$stage/lib/modules/${name%.xz}" && name="${name%.xz}" ;;
            *.ko.zst | *.ko.gz) die "$name: compressed modules other than xz are not handled" ;;
            *) die "unexpected module file $path" ;;
        esac
        echo "$name" >>"$stage/etc/modules"
    done
}

# write_cpio STAGE OUT: STAGE as a newc archive. Uncompressed: the kernel
# takes a plain archive, and gzip would cost more time (host and emulated
# guest) than the copy.
write_cpio() {
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$2" ||
        die "cpio of $1 failed"
}
