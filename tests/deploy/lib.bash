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

# quiet_ini: the sections of an agent.ini for a test that acts but never alerts:
# CPU and memory limits at 100%, no disks.
quiet_ini() {
    printf '[thresholds]\ncpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100\n\n[disk]\nmounts =\n'
}

# scenario_prelude: the shell functions a scenario script (PID 1 of a private
# PID namespace, run by run_scenario) starts with; it writes KEY=VALUE lines to
# $T/out. `poll COMMAND...` retries every 0.1 s for up to 30 s: a bound that only
# stops a hang, since what a scenario polls for is meant to come.
scenario_prelude() {
    cat <<'EOF'
set -u
out() { printf '%s=%s\n' "$1" "$2" >>"$T/out"; }
mkfifo "$T/fifo" && exec 9<>"$T/fifo"
nap() { read -r -t "$1" -u 9 _ || true; }
st() { ST=gone; local l; { read -r l <"/proc/$1/stat"; } 2>/dev/null || return 0; l=${l##*) }; ST=${l%% *}; }
alive() { st "$1"; [ "$ST" != gone ] && [ "$ST" != Z ]; }
dead() { ! alive "$1"; }
comm_is() { local c; { read -r c <"/proc/$1/comm"; } 2>/dev/null && [ "$c" = "$2" ]; }
poll() { local i; for ((i = 1; i < 300; i++)); do "$@" && return 0; nap 0.1; done; "$@"; }
EOF
}

# run_scenario ARGS...: $T/scenario.sh with ARGS as PID 1 of a private PID
# namespace (`unshare --pid --fork --mount-proc --kill-child`) where T is set,
# killed after 90 s; it must exit 0 (its stderr is shown when not).
run_scenario() {
    local rc
    set +e
    T=$T timeout 90 unshare --pid --fork --mount-proc --kill-child bash "$T/scenario.sh" "$@" 2>"$T/scenario.stderr"
    rc=$?
    set -e
    [ "$rc" = 0 ] || cat "$T/scenario.stderr" "$T/agent.out" >&2 2>/dev/null || true
    assert_eq "scenario exit status (out: $(tr '\n' ' ' < "$T/out" 2>/dev/null))" 0 "$rc"
}

# get KEY: its value in $T/out (fails when the scenario did not record it).
get() {
    local v
    v=$(sed -n "s/^$1=//p" "$T/out")
    [ -n "$v" ] || fail "the scenario did not record $1; out: $(tr '\n' ' ' < "$T/out")"
    echo "$v"
}

# reap_lines LOG: the reaper's lines (its reaps and its own errors) without ts,
# with age=*.
reap_lines() {
    grep -e ' event=reap' -e ' what=reaper ' "$1" | sed -e 's/^ts=[^ ]* //' -e 's/ age=[^ ]* / age=* /'
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
