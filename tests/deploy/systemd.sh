#!/usr/bin/env bash
# The systemd unit (etc/systemd/system-agent.service), without systemd as init:
# `scripts/install --root R --systemd` puts it in place and `systemd-analyze verify
# --root=R` finds nothing to say; the installed binary speaks Type=notify to a
# socket of ours as systemd would hear it; it may write every path the shipped config writes;
# it starts the same command as the Supervisor program; and the agent run the way
# the unit runs it (its user, bounding set, ambient set and no_new_privs, applied
# with setpriv) has all six capabilities while a task it starts has none.
source "$(dirname "$0")/lib.bash"
setup systemd
ensure_host_aion
UNIT=$REPO/etc/systemd/system-agent.service
INI=$REPO/etc/system_agent.ini

# unit_key KEY: the value of KEY= in the unit (the last one, as systemd reads it).
unit_key() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$UNIT"; }

# --- systemd-analyze verify, in a root holding the installed tree ----------------------
R=$T/root
mkdir -p "$R/usr/lib/systemd" "$R/usr/bin"
ln -s usr/bin "$R/bin"
ln -s usr/lib "$R/lib"
cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/"   # the targets the unit names
cp /usr/bin/kill "$R/usr/bin/"                        # ExecReload=
"$REPO/scripts/install" --root "$R" --systemd --binary "$BIN" 2>/dev/null
assert_eq "unit mode and owner" "644 0:0" "$(stat -c '%a %u:%g' "$R/etc/systemd/system/system-agent.service")"
cmp -s "$UNIT" "$R/etc/systemd/system/system-agent.service" || fail "installed unit differs from $UNIT"
[ ! -e "$R/etc/supervisor/conf.d/system_agent.conf" ] || fail "--systemd installed the Supervisor program too"
# MANPATH: verify also checks that Documentation=man:system-agent(8) opens.
out=$(MANPATH=$R/usr/share/man systemd-analyze verify --root="$R" /etc/systemd/system/system-agent.service 2>&1) ||
    fail "systemd-analyze verify failed: $out"
assert_eq "systemd-analyze verify output" "" "$out"
ok "scripts/install --systemd puts the unit in place; systemd-analyze verify says nothing"

# --- the same command and user as the Supervisor program --------------------------------
program=$(sed -n 's/^command=//p' "$REPO/etc/supervisor/conf.d/system_agent.conf")
assert_eq "ExecStart= (as the Supervisor command=)" "$program" "$(unit_key ExecStart)"
assert_eq "User=" aion "$(unit_key User)"
assert_eq "ExecReload=" '/bin/kill -HUP $MAINPID' "$(unit_key ExecReload)"
ok "ExecStart= and User= are the Supervisor program's; ExecReload= sends SIGHUP"

# --- Type=notify: what systemd hears from the installed binary ------------------------
# The variables systemd sets for the unit (WATCHDOG_USEC from WatchdogSec=), a
# datagram socket of our own as NOTIFY_SOCKET, and the service started, reloaded
# and stopped: READY=1 after the first cycle, WATCHDOG=1 after each, RELOADING=1
# (with MONOTONIC_USEC=) and READY=1 around the SIGHUP, STOPPING=1 at SIGTERM.
assert_eq "Type=" notify "$(unit_key Type)"
usec=$(systemd-analyze timespan "$(unit_key WatchdogSec)" | awk '$1 == "μs:" { print $2 }')
[ "${usec:-0}" -gt 0 ] || fail "WatchdogSec=$(unit_key WatchdogSec): no watchdog"
N=$T/notify
mkdir -p "$N"
cat > "$N/agent.ini" <<INI
[agent]
interval = 200ms
log_file = $N/agent.log
state_dir = $N/state
status_file = $N/agent.status
syslog = no
[disk]
mounts =
[audit]
bash_history = no
INI
# One line per datagram (a newline inside one shows as \n), until STOPPING=1.
before=${#PIDS[@]}
/usr/bin/python3 - "$N/sock" > "$N/heard" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
while True:
    m = s.recv(512).decode().replace("\n", "\\n")
    print(m, flush=True)
    if m == "STOPPING=1":
        break
PY
PIDS+=($!)
wait_until 10 "the notify socket" test -S "$N/sock"
NOTIFY_SOCKET=$N/sock WATCHDOG_USEC=$usec "$R/opt/aion/bin/system-agent" -c "$N/agent.ini" &
agent=$!
PIDS+=("$agent")
heard() { grep -c "^$1" "$N/heard" 2>/dev/null | awk -v n="$2" '$1 >= n { ok = 1 } END { exit !ok }'; }
wait_until 10 "READY=1 and two WATCHDOG=1" heard WATCHDOG=1 2
kill -HUP "$agent"
# READY=1 again, then a cycle's WATCHDOG=1.
cycled_since_reload() { heard READY=1 2 && [ "$(tail -n 1 "$N/heard")" = WATCHDOG=1 ]; }
wait_until 10 "READY=1 after the reload, then a cycle" cycled_since_reload
kill -TERM "$agent"
wait "$agent" || fail "the agent exited $? after SIGTERM: $(cat "$N/agent.log")"
wait_until 10 "STOPPING=1" heard STOPPING=1 1
wait "${PIDS[before]}" || fail "the notify listener failed"
PIDS=("${PIDS[@]:0:before}")   # both reaped: their pids are no longer ours to signal
shape=$(uniq "$N/heard" | sed 's/MONOTONIC_USEC=[0-9]*$/MONOTONIC_USEC=N/' | paste -sd ' ')
assert_eq "what systemd hears" \
    'READY=1 WATCHDOG=1 RELOADING=1\nMONOTONIC_USEC=N READY=1 WATCHDOG=1 STOPPING=1' "$shape"
cycles=$(sed -n 's/.* event=stop reason=SIGTERM cycles=\([0-9]*\)$/\1/p' "$N/agent.log")
assert_eq "WATCHDOG=1 per cycle" "$cycles" "$(count "$N/heard" WATCHDOG=1)"
ok "Type=notify, WatchdogSec=$(unit_key WatchdogSec): READY, WATCHDOG per cycle, RELOADING/READY, STOPPING"

# --- ReadWritePaths= covers every path the shipped config writes ------------------------
# ini_values SECTION_GLOB KEY: the values of KEY in every matching section.
ini_values() {
    awk -v sec="$1" -v key="$2" '
        /^\[/ { s = substr($0, 2, index($0, "]") - 2); next }
        s ~ sec && $1 == key && $2 == "=" { sub(/^[^=]*= */, ""); sub(/ +[;#].*$/, ""); print }' "$INI"
}
need=("$(dirname "$(ini_values '^agent$' log_file)")" "$(ini_values '^agent$' state_dir)"
    "$(dirname "$(ini_values '^agent$' status_file)")" "$(dirname "$(ini_values '^audit$' log_file)")")
for p in $(ini_values '^cleanup\.' paths | tr ',' ' '); do need+=("$p"); done
ini_values '^task\.' command | grep -q '^/usr/bin/mandb ' && need+=(/var/cache/man)
writable=$(unit_key ReadWritePaths | sed 's/^-//; s/ -/ /g')
# covered PATH: PATH is one of them, or under one.
covered() {
    local w
    for w in $writable; do case "$1/" in "$w"/*) return 0 ;; esac; done
    return 1
}
for p in "${need[@]}"; do
    covered "$p" || fail "ReadWritePaths= lacks $p, which the shipped config writes"
done
assert_eq "ProtectSystem=" strict "$(unit_key ProtectSystem)"
assert_eq "ProtectHome=" read-only "$(unit_key ProtectHome)"
ok "ReadWritePaths= has $(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')"

# --- run as the unit runs it ---------------------------------------------------------------
# caps_arg "CAP_A CAP_B": setpriv's "+a,+b".
caps_arg() { local c out=""; for c in $1; do c=${c#CAP_}; out+=",+${c,,}"; done; echo "${out#,}"; }
bounding=$(unit_key CapabilityBoundingSet) ambient=$(unit_key AmbientCapabilities)
assert_eq "CapabilityBoundingSet= (the capabilities scripts/install sets)" \
    "CAP_KILL CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_FOWNER CAP_SETUID CAP_SETGID" "$bounding"
priv=(--reuid "$(unit_key User)" --regid "$(unit_key Group)" --init-groups --bounding-set "-all,$(caps_arg "$bounding")")
[ -z "$ambient" ] || priv+=(--inh-caps "$(caps_arg "$ambient")" --ambient-caps "$(caps_arg "$ambient")")
[ "$(unit_key NoNewPrivileges)" != yes ] || priv+=(--no-new-privs)

D=$T/run
mkdir -p "$D/log" "$D/clean"
chown aion:aion "$D" "$D/log"
chmod 0750 "$D/log"
# Every feature that needs a capability, so the agent keeps all six in effect: a
# cleanup rule, the reaper (a rule nothing matches), a task run as a user; the task
# prints its own capability sets on stderr, which task_done shows. idle_cycles = 0:
# it starts whatever the host's CPU (on a busy CI machine at 100%, no cycle is idle).
cat > "$T/agent.ini" <<INI
[agent]
log_file = $D/log/agent.log
state_dir = $D/state
syslog = no
[disk]
mounts =
[audit]
bash_history = no
[cleanup.c]
paths = $D/clean
when = always
[reaper]
enabled = yes
[reap.none]
match = no-such-process-here
[task.caps]
command = /bin/sh -c "grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status >&2"
every = 1s
idle_cycles = 0
user = aion
INI
chmod 0644 "$T/agent.ini"
# run_as_unit BINARY: one --once of BINARY with the unit's user and capability
# settings, through env: systemd leaves a User= service only its ambient
# capabilities before it execs ExecStart=, and with no_new_privs the file
# capabilities are cut down to those; setpriv keeps more until its exec, so env
# is the exec in between. In a PID namespace of its own: the reaper sees no
# process of the host.
run_as_unit() {
    rm -rf "$D/state" "$D/log/agent.log"
    local rc=0
    unshare --pid --fork --mount-proc setpriv "${priv[@]}" /usr/bin/env \
        "$1" -c "$T/agent.ini" --once --log-level debug >/dev/null || rc=$?
    # 0 to 2: OK, WARNING, CRITICAL, whatever this host's load; 3 is UNKNOWN.
    [ "$rc" -le 2 ] || fail "the agent run as the unit runs it exited $rc: $(cat "$D/log/agent.log")"
    grep -q 'event=start ' "$D/log/agent.log" || fail "no event=start: $(cat "$D/log/agent.log")"
}
# task_has_no_caps: the task's own capability sets, from task_done, are empty.
task_has_no_caps() {
    local line set
    line=$(grep 'event=task_done name=caps' "$D/log/agent.log") || fail "the task did not run: $(cat "$D/log/agent.log")"
    for set in CapPrm CapEff CapAmb; do
        case "$line" in
            *"$set:\\t0000000000000000"*) ;;
            *) fail "$1: a task of the agent run as the unit runs it holds capabilities ($set): $line" ;;
        esac
    done
}
run_as_unit "$R/opt/aion/bin/system-agent"
grep -q 'event=start .*caps=cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid ' "$D/log/agent.log" ||
    fail "the agent lacks capabilities under the unit's settings: $(grep event=start "$D/log/agent.log")"
task_has_no_caps "the installed binary"
ok "under the unit's settings the agent has its six capabilities, a task it starts none"

# A binary whose file capabilities were lost (setcap failed: a filesystem without
# xattrs): the agent runs without them, and its children still get none.
mkdir "$D/nocaps"
install -o 0 -g aion -m 0750 "$BIN" "$D/nocaps/system-agent"
run_as_unit "$D/nocaps/system-agent"
task_has_no_caps "a binary without file capabilities"
ok "without file capabilities on the binary, a task still gets none"
