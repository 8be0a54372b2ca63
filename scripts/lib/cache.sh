# shellcheck shell=bash
# The build cache of CI runs: cargo's target directory (and what the
# scripts keep in it: the aarch64 build, the qemu downloads, the fuzz
# build) outside the clone, so that a machine that already built a commit
# does not build it again from a fresh clone.
# Sourced by scripts/test, never executed. Needs lib/common.sh.
#
# Cargo decides what to rebuild from file times: a fresh clone's files are
# all newer than any output, so everything of the workspace is rebuilt
# (the registry's crates are not: their sources never change). When the
# clone holds exactly the tree the cache was last built from — the same git
# tree hash, nothing modified or untracked — the clone's files are given
# the time that build started, so its outputs count as current. Any other
# tree keeps the clone's own times and is rebuilt where it differs: a stale
# output can never stand in for changed source.

# cache_target_dir: export CARGO_TARGET_DIR for a CI run (unless the caller
# chose one): TILL_CACHE_DIR, or ~/.cache/till, /target.
cache_target_dir() {
    [[ -z "${CARGO_TARGET_DIR:-}" ]] || return 0
    local root="${TILL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/till}"
    mkdir -p "$root/target" || die "cannot create the build cache $root/target"
    export CARGO_TARGET_DIR="$root/target"
    info "build cache: $CARGO_TARGET_DIR"
}

# cache_claim: if the clone is the tree the cache last built, date the
# clone's files back to when that build started; then record this tree.
cache_claim() {
    local stamp="$CARGO_TARGET_DIR/.till-tree" tree dirty since
    tree="$(git -C "$TILL_ROOT" rev-parse 'HEAD^{tree}' 2>/dev/null)" || return 0
    dirty="$(git -C "$TILL_ROOT" status --porcelain --untracked-files=normal 2>/dev/null)"
    if [[ -n "$dirty" ]]; then
        info "build cache: the clone has changes, so cargo's own file times decide"
        rm -f "$stamp"
        return 0
    fi
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$tree" ]]; then
        since="$(stat -c %Y "$stamp")"
        cache_date_clone "@$since"
        info "build cache: tree ${tree:0:12} was built here; its outputs are current"
    else
        # Newer than every output in the cache, whenever this clone was
        # made: what differs from the cached build is rebuilt.
        rm -f "$stamp"
        cache_date_clone now
        printf '%s\n' "$tree" >"$stamp"
        info "build cache: tree ${tree:0:12} is new here; cargo rebuilds what differs"
    fi
}

# cache_date_clone TIME: every file and directory of the clone but .git and
# build outputs gets TIME (a touch -d date).
cache_date_clone() {
    find "$TILL_ROOT" \( -path "$TILL_ROOT/.git" -o -path "$TILL_ROOT/target" -o -path "$TILL_ROOT/pay/fuzz/target" \) -prune \
        -o -print0 | xargs -0 touch -h -d "$1"
}
