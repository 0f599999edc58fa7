# Shared by the deployment tests: a private temp dir removed at exit, bounded polls,
# assertions that say what was expected, and cleanup of every process a test starts
# (by PID, never by name). Source it, then call `setup NAME`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SYSTEM_AGENT_STATIC:-$REPO/target/x86_64-unknown-linux-gnu/release/system-agent}
PIDS=()        # processes this test started; killed at exit
CLEANUPS=()    # commands run at exit, last first

setup() {
    NAME=$1
    T=$(mktemp -d "/tmp/sa-deploy-$NAME.XXXXXX")
    chmod 0755 "$T"   # the agent may run as aion and must traverse it
    trap teardown EXIT
    [ -x "$BIN" ] || fail "no static binary at $BIN (scripts/test builds it)"
}

teardown() {
    local rc=$? i n
    # TERM first (supervisord then stops its programs), KILL what is left after 5 s.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || continue
        for ((n = 0; n < 50; n++)); do
            kill -0 "${PIDS[i]}" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[i]}" || true
    done
    if [ "$rc" = 0 ]; then rm -rf "$T"; else echo "deploy/$NAME: FAILED; files kept in $T" >&2; fi
}

fail() {
    echo "deploy/${NAME:-?}: FAIL: $*" >&2
    exit 1
}

ok() { echo "deploy/$NAME: ok: $*" >&2; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls every 0.1 s.
wait_until() {
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s%N) + limit * 1000000000))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for: $what"
        sleep 0.1
    done
}

# count FILE PATTERN: lines of FILE matching the fixed string PATTERN (0 if none).
count() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

assert_eq() {  # assert_eq WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || fail "$1: expected [$2], got [$3]"
}

# The documented substitution (README, "Trying it under a prefix"): every path the
# shipped files name, except /proc, /etc/passwd and /dev/log, moves under $1.
# move_paths PREFIX [SED ARGS...] (e.g. -i FILE, or FILE to print).
move_paths() {
    local t=$1
    shift
    # /tmp first, and only as a whole value word, since $t itself is under /tmp.
    # Programs too (/usr/bin/mandb, /usr/sbin/sendmail): a test never runs the
    # host's maintenance tasks (the task is reported skipped instead).
    sed -e "s#\([ =]\)/tmp\( \|\$\)#\1$t/tmp\2#g" -e "s|/opt/aion/|$t/opt/aion/|g" \
        -e "s|/etc/aion/|$t/etc/aion/|g" -e "s|/var/|$t/var/|g" -e "s|= /usr/|= $t/usr/|g" "$@"
}

# Ensures the host has a user aion (Supervisor's user=aion needs it) and removes it at
# exit if this test created it.
ensure_host_aion() {
    if ! id -u aion >/dev/null 2>&1; then
        groupadd --system aion
        useradd --system --gid aion --home-dir /var/lib/aion --no-create-home --shell /usr/sbin/nologin aion
        CLEANUPS+=("userdel aion; groupdel aion 2>/dev/null")
    fi
}

# A scenario that runs as PID 1 of a private PID namespace: `namespace_helpers`
# prints the helpers it starts with (`out KEY VALUE` records into $T/out, `nap S`
# waits without forking, `poll N CMD...` tries CMD up to N times 0.1 s apart,
# `comm_is PID NAME`); `run_in_pid_namespace ARGS...` runs $T/scenario.sh with
# ARGS there (with /proc mounted for it; the namespace, and all it started, dies
# after 60 s at the latest) and checks that it succeeded; `recorded KEY` is what
# it recorded.
namespace_helpers() {
    cat <<'HELPERS'
out() { printf '%s=%s\n' "$1" "$2" >>"$T/out"; }
mkfifo "$T/fifo" && exec 9<>"$T/fifo"
nap() { read -r -t "$1" -u 9 _ || true; }
comm_is() { local c; { read -r c <"/proc/$1/comm"; } 2>/dev/null && [ "$c" = "$2" ]; }
poll() { local n=$1 i; shift; for ((i = 1; i < n; i++)); do "$@" && return 0; nap 0.1; done; "$@"; }
HELPERS
}

run_in_pid_namespace() {
    local rc
    set +e
    timeout 60 unshare --pid --fork --mount-proc --kill-child bash "$T/scenario.sh" "$@" 2>"$T/scenario.stderr"
    rc=$?
    set -e
    [ "$rc" = 0 ] || cat "$T/scenario.stderr" "$T"/agent.out >&2 2>/dev/null || true
    assert_eq "scenario exit status (out: $(tr '\n' ' ' < "$T/out" 2>/dev/null))" 0 "$rc"
}

recorded() {
    local v
    v=$(sed -n "s/^$1=//p" "$T/out")
    [ -n "$v" ] || fail "the scenario did not record $1; out: $(tr '\n' ' ' < "$T/out")"
    echo "$v"
}

# The sections of an agent config that never alerts and watches no disk.
quiet_sections() {
    printf '[thresholds]\ncpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100\n\n[disk]\nmounts =\n'
}
