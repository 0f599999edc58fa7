#!/usr/bin/env bash
# The reaper signals only through the agent's own procfs. The binary as installed
# (file capabilities, cap_kill among them), run as user aion, is pointed at a
# fixture /proc tree that describes a real ROOT process as nobody's `victimproc`,
# with its real start time, and a rule `match = victimproc`, `action = term`: the
# process survives, and the log says the reaper only logs and why. As a control,
# the same binary as aion against the real /proc terminates a root process its rule
# names (`user = root`): the capability itself works.
#
# Everything runs in a private PID namespace (`unshare --pid --fork --mount-proc
# --kill-child`): the victims are started there by the test, and nothing else of
# this machine can be seen or signalled from inside.
source "$(dirname "$0")/lib.bash"
setup reaper_proc
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
A=$T/opt/aion/bin/system-agent
getcap "$A" | grep -q cap_kill || fail "the installed binary has no cap_kill: $(getcap "$A")"
mkdir -p "$T/bin" "$T/run"
cp /bin/sleep "$T/bin/victimproc"
cp /bin/sleep "$T/bin/victimreal"
chown aion "$T/run"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$T/passwd"

# agent_ini NAME PROC RULE: a root-owned config (else the capabilities are dropped).
agent_ini() {
    cat > "$T/$1.ini" <<EOF
[agent]
interval = 1s
log_file = $T/run/$1.log
syslog = no
state_dir = $T/run/$1
top = 0

[paths]
proc = $2
passwd = $T/passwd

$(quiet_sections)

[audit]
bash_history = no

[reaper]
enabled = yes

[reap.v]
$3
action = term
EOF
    chmod 0644 "$T/$1.ini"
    "$A" -c "$T/$1.ini" --check-config >/dev/null || fail "$1.ini is invalid"
}
agent_ini fake "$T/fakeproc" "match = victimproc"
agent_ini real /proc "match = victimreal
user = root"

# PID 1 of the namespace. Writes KEY=VALUE lines to $T/out.
{
echo 'set -u'
echo 'T=$1 A=$2'
namespace_helpers
cat <<'EOF'
as_aion() { setpriv --reuid=aion --regid=aion --clear-groups "$A" "$@" >>"$T/agent.out" 2>&1; }
# ended_by KEY PID: SIGKILL to our child PID, then KEY=the status it ended with. A
# fatal signal fixes the status when it is sent: 143 means a SIGTERM came first.
ended_by() { kill -KILL "$2" 2>/dev/null; wait "$2"; out "$1" $?; }

"$T/bin/victimproc" 1000 & V=$!; out victim $V
poll 50 comm_is $V victimproc || out problem victim_not_started
# The fixture: the victim (root's) as nobody's, with its real start time.
stat=$(cat "/proc/$V/stat")
rest=${stat##*) }
mkdir -p "$T/fakeproc/$V"
echo "$V (victimproc) S ${rest#* }" > "$T/fakeproc/$V/stat"
printf 'Name:\tvictimproc\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n' > "$T/fakeproc/$V/status"
ln -s / "$T/fakeproc/$V/root"
cat /proc/stat > "$T/fakeproc/stat"
cat /proc/meminfo > "$T/fakeproc/meminfo"
cat /proc/loadavg > "$T/fakeproc/loadavg"
as_aion -c "$T/fake.ini" --once --log-level debug; out fake_rc $?
ended_by victim_status $V

"$T/bin/victimreal" 1000 & R=$!; out real_victim $R
poll 50 comm_is $R victimreal || out problem real_victim_not_started
as_aion -c "$T/real.ini" --once --log-level debug; out real_rc $?
ended_by real_victim_status $R
EOF
} > "$T/scenario.sh"

run_in_pid_namespace "$T" "$A"
! grep -q '^problem=' "$T/out" || fail "scenario: $(grep '^problem=' "$T/out")"
# lines LOG: the reaper's lines without ts, with age=*.
lines() {
    grep -e ' event=reap' -e ' what=reaper ' "$1" | sed -e 's/^ts=[^ ]* //' -e 's/ age=[^ ]* / age=* /'
}
V=$(recorded victim)
R=$(recorded real_victim)
FAKE=$T/run/fake.log

# (The start event's caps= comes from <proc>/self/status: the real run's says.)
grep -q " event=start .* uid=$(id -u aion) " "$FAKE" ||
    fail "not run as aion: $(grep ' event=start ' "$FAKE")"
grep -q " event=start .* uid=$(id -u aion) .*caps=[a-z_,]*cap_kill" "$T/run/real.log" ||
    fail "not run as aion with cap_kill: $(grep ' event=start ' "$T/run/real.log")"
assert_eq "how the root process described as nobody's ended (137: our SIGKILL)" 137 "$(recorded victim_status)"
assert_eq "reaper lines over the fixture tree" \
    "level=warn event=error what=reaper error=\"not the agent's own procfs: not a procfs (filesystem type 0x$(stat -f -c %t "$T"))\" path=$T/fakeproc effect=\"signals nothing, only logs what the rules select\"
level=info event=reap pid=$V name=victimproc user=nobody state=sleeping age=* action=log rule=v reason=\"name victimproc\" log_only=\"[paths] proc is not the agent's own procfs\"" \
    "$(lines "$FAKE")"
ok "a fixture tree describing root's process as nobody's: only logged, the process survived"

assert_eq "how root's process named by the rule ended (143: the agent's SIGTERM)" 143 "$(recorded real_victim_status)"
assert_eq "reaper lines over the real /proc" \
    "level=warn event=reap pid=$R name=victimreal user=root state=sleeping age=* action=term rule=v reason=\"name victimreal\"" \
    "$(lines "$T/run/real.log")"
ok "the same installed binary as aion over its own /proc: SIGTERM to root's process"
