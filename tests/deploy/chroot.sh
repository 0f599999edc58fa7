#!/usr/bin/env bash
# Chroot: `scripts/install --root` into an empty directory, then, in a private mount
# namespace with /proc mounted inside, the one-shot and the loop work in a tree with
# no shell, no /dev/log and no mandb: the right exit status, the log file written,
# one clear line for each missing part. A second variant mounts proc elsewhere and
# points [paths] proc at it.
source "$(dirname "$0")/lib.bash"
setup chroot
R=$T/root
mkdir "$R"
"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
for absent in bin/sh usr/bin/sh dev/log usr/bin/mandb; do
    [ ! -e "$R/$absent" ] || fail "$R/$absent exists; the tree must not have it"
done
mkdir -p "$R/proc" "$R/altproc"
LOG=$R/var/log/aion/system_agent.log
AION=$(awk -F: '$1 == "aion" { print $3 ":" $4 }' "$R/etc/passwd")

# in_chroot MOUNTPOINT ARGS...: the agent in the tree, proc mounted at MOUNTPOINT,
# in a mount namespace of its own (the mount dies with it). Call it only in a
# subshell, $(...) or &: it execs, so that in the background $! is the agent itself.
in_chroot() {
    local mnt=$1
    shift
    exec unshare -m --propagation private sh -c \
        'mount -t proc proc "$1$2" && shift 2 && exec chroot "$@"' sh "$R" "$mnt" "$@"
}

# The shipped config as installed: the status word and the exit code agree.
set +e
out=$(in_chroot /proc --userspec="$AION" "$R" /opt/aion/bin/system-agent --once)
rc=$?
set -e
case "$out" in
    "SYSTEM-AGENT OK - "*) want=0 ;;
    "SYSTEM-AGENT WARNING - "*) want=1 ;;
    "SYSTEM-AGENT CRITICAL - "*) want=2 ;;
    *) fail "unexpected status line: $out" ;;
esac
assert_eq "exit status for '$out'" "$want" "$rc"
assert_eq "samples in the log" 1 "$(count "$LOG" "event=sample")"
assert_eq "lines about the missing /dev/log" 1 "$(count "$LOG" "level=error event=error what=syslog path=/dev/log errno=ENOENT")"
assert_eq "other error lines" 1 "$(count "$LOG" "event=error")"
ok "--once as aion with the shipped config: $out (exit $rc)"

# Forced readings: WARNING exits 1, CRITICAL 2, whatever the host: these runs read
# a fixture /proc in the tree (CPU counters 10% busy since a state saved a minute
# ago, so a host whose CPUs are saturated by other work cannot make them
# CRITICAL), watch no disk, and force only the memory limits.
F=/etc/aion/fixture/proc
mkdir -p "$R$F" "$R/var/lib/aion/forced"
chmod 0700 "$R/var/lib/aion/forced"
printf 'cpu  100 0 0 900 0 0 0 0 0 0\ncpu0 50 0 0 450 0 0 0 0 0 0\ncpu1 50 0 0 450 0 0 0 0 0 0\nbtime 1700000000\n' > "$R$F/stat"
cat /proc/meminfo > "$R$F/meminfo"
cat /proc/loadavg > "$R$F/loadavg"
seed_cpu() {  # the forced runs' state: CPU counters 0 a minute ago
    printf 'system-agent-state 1\nsaved %s\nbtime 1700000000\ncpu 0 0 0 0 0 0 0 0\nend\n' \
        "$(($(date +%s%N) - 60000000000))" > "$R/var/lib/aion/forced/state"
}
forced="s|^proc = /proc\$|proc = $F|; s|^state_dir = .*|state_dir = /var/lib/aion/forced|; s|^mounts = /\$|mounts =|"
sed "$forced; s/^mem_warn = 85\$/mem_warn = 0/" "$R/etc/aion/system_agent.ini" > "$R/etc/aion/warn.ini"
sed "$forced; s/^mem_crit = 95\$/mem_crit = 0/; s/^mem_warn = 85\$/mem_warn = 0/" "$R/etc/aion/system_agent.ini" > "$R/etc/aion/crit.ini"
for case in warn:1:WARNING crit:2:CRITICAL; do
    IFS=: read -r cfg code word <<<"$case"
    seed_cpu
    set +e
    out=$(in_chroot /proc "$R" /opt/aion/bin/system-agent -c "/etc/aion/$cfg.ini" --once)
    rc=$?
    set -e
    assert_eq "exit status of $cfg.ini" "$code" "$rc"
    case "$out" in "SYSTEM-AGENT $word - "*mem*) ;; *) fail "$cfg.ini: $out" ;; esac
done
ok "forced WARNING and CRITICAL exit 1 and 2"

# The loop in the chroot, stopped by SIGTERM.
# (The mandb task due at once, whatever the host's CPU: its absence shows.)
sed -e 's/^interval = 10s$/interval = 200ms/' -e 's/^when_cpu_below = 20$/when_cpu_below = 100/' \
    -e 's/^idle_cycles = 3$/idle_cycles = 0/' "$R/etc/aion/system_agent.ini" > "$R/etc/aion/loop.ini"
: > "$LOG"
in_chroot /proc --userspec="$AION" "$R" /opt/aion/bin/system-agent -c /etc/aion/loop.ini &
loop=$!
PIDS+=("$loop")
three() { [ "$(count "$LOG" "event=sample")" -ge 3 ]; }
wait_until 30 "three samples from the chrooted loop" three
wait_until 30 "the mandb task reported skipped" grep -q "event=task_skipped" "$LOG"
five() { [ "$(count "$LOG" "event=sample")" -ge 5 ]; }
wait_until 30 "two more samples" five
kill -TERM "$loop"
set +e
wait "$loop"
rc=$?
set -e
assert_eq "loop exit status after SIGTERM" 0 "$rc"
assert_eq "stop events" 1 "$(count "$LOG" "event=stop reason=SIGTERM")"
assert_eq "lines about the missing /dev/log" 1 "$(count "$LOG" "what=syslog path=/dev/log")"
assert_eq "lines about the missing mandb" 1 \
    "$(count "$LOG" 'level=warn event=task_skipped name=mandb reason="/usr/bin/mandb is missing or not executable"')"
grep -q "event=start .* mode=service .* syslog=\"unavailable: No such file or directory\" pressure=cpu,memory,io " "$LOG" ||
    fail "start event does not say syslog is unavailable: $(grep event=start "$LOG")"
ok "loop in the chroot: samples, SIGTERM exit 0, one line each for the missing /dev/log and mandb"

# proc mounted at /altproc, [paths] proc pointing at it; nothing at /proc. The
# memory forced to WARNING; the CPU is this host's (a number: /altproc was read),
# CRITICAL only when other work saturates every CPU.
sed 's|^proc = /proc$|proc = /altproc|; s/^mem_warn = 85$/mem_warn = 0/; s/^cpu_warn = 80$/cpu_warn = 100/; s/^cpu_crit = 90$/cpu_crit = 100/' \
    "$R/etc/aion/system_agent.ini" > "$R/etc/aion/altproc.ini"
: > "$LOG"
set +e
out=$(in_chroot /altproc "$R" /opt/aion/bin/system-agent -c /etc/aion/altproc.ini --once)
rc=$?
set -e
case "$out" in
    "SYSTEM-AGENT WARNING - mem "*" | cpu="[0-9]*) want=1 ;;
    "SYSTEM-AGENT CRITICAL - cpu 100.0%, mem "*" | cpu=100.0%"*) want=2 ;;
    *) fail "altproc: $out" ;;
esac
assert_eq "exit status with proc at /altproc" "$want" "$rc"
[ -z "$(ls -A "$R/proc")" ] || fail "$R/proc is not empty: proc was mounted there"
ok "[paths] proc = /altproc: $out"

# And without any proc: UNKNOWN, with the reason.
: > "$LOG"
set +e
out=$(chroot "$R" /opt/aion/bin/system-agent --once)
rc=$?
set -e
assert_eq "exit status without /proc" 3 "$rc"
case "$out" in "SYSTEM-AGENT UNKNOWN - cpu unknown (cannot open /proc/stat: No such file or directory), mem unknown (cannot open /proc/meminfo: No such file or directory)"*) ;;
    *) fail "no /proc: $out" ;; esac
ok "no /proc: UNKNOWN with the reason"
