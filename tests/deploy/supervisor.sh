#!/usr/bin/env bash
# Supervisor: a real supervisord (private config, temp dir) runs the agent from the
# shipped program section after `scripts/install --root`, with the paths moved by the
# substitution documented in the README. RUNNING; restarted after kill -9; HUP
# reloads; the status file read by --status as another user; USR1 logs the
# status lines; stop exits 0 within stopwaitsecs with event=stop; no child left;
# nothing on stdout or stderr.
source "$(dirname "$0")/lib.bash"
setup supervisor
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null

# The documented substitution: every shipped path moves under $T.
move_paths "$T" "$T/etc/supervisor/conf.d/system_agent.conf" > "$T/program.conf"
move_paths "$T" -i "$T/etc/aion/system_agent.ini"
grep -q "^paths = $T/tmp $T/var/tmp$" "$T/etc/aion/system_agent.ini" ||
    fail "the substitution did not move the cleanup paths: $(grep ^paths "$T/etc/aion/system_agent.ini")"
grep -q "^command=$T/opt/aion/bin/system-agent -c $T/etc/aion/system_agent.ini$" "$T/program.conf" ||
    fail "substitution did not reach the command line: $(grep ^command "$T/program.conf")"

cat > "$T/supervisord.conf" <<CONF
[unix_http_server]
file=$T/supervisor.sock
chmod=0700
[supervisord]
logfile=$T/supervisord.log
pidfile=$T/supervisord.pid
childlogdir=$T
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$T/supervisor.sock
[include]
files = $T/program.conf
CONF
supervisord -n -c "$T/supervisord.conf" >/dev/null 2>&1 &
PIDS+=($!)
ctl() { supervisorctl -c "$T/supervisord.conf" "$@"; }
running() { ctl status system_agent | grep -q RUNNING; }
LOG=$T/var/log/aion/system_agent.log

wait_until 30 "system_agent RUNNING" running
pid=$(ctl pid system_agent)
wait_until 30 "event=start in $LOG" grep -q "event=start" "$LOG"
assert_eq "user of the agent" aion "$(ps -o user= -p "$pid")"
grep -q "event=start .* mode=service pid=$pid " "$LOG" || fail "no start event for pid $pid: $(cat "$LOG")"
ok "RUNNING as aion (pid $pid)"

kill -KILL "$pid"
new_pid() { p=$(ctl pid system_agent); [ "$p" != "$pid" ] && [ "$p" != 0 ] && running; }
wait_until 30 "a new RUNNING pid after kill -9" new_pid
pid2=$(ctl pid system_agent)
ok "restarted after kill -9 ($pid -> $pid2)"

ctl signal HUP system_agent >/dev/null
wait_until 30 "event=reload after supervisorctl signal HUP" grep -q "event=reload" "$LOG"
ok "signal HUP reloads"

# The service's status file, read by --status as a user outside group aion with
# the copy that has no capabilities (as NRPE runs it), says what the file says.
STATUS=$T/var/lib/aion/system_agent.status
wait_until 30 "the status file" test -s "$STATUS"
as_nobody_status() {  # one --status run whose file did not change meanwhile
    local before
    before=$(cat "$STATUS")
    rc=0
    out=$(runuser -u nobody -- "$T/opt/aion/bin/system-agent-status" --status "$STATUS") || rc=$?
    [ "$before" = "$(cat "$STATUS")" ] && [ -n "$out" ]
}
wait_until 30 "a --status run over an unchanged file" as_nobody_status
grep -qxF "line $out" "$STATUS" || fail "--status said [$out], the file: $(cat "$STATUS")"
grep -qx "state $rc" "$STATUS" || fail "--status exited $rc, the file: $(cat "$STATUS")"
assert_eq "status file mode and owner" "644 aion" "$(stat -c '%a %U' "$STATUS")"
ok "--status as nobody: $out (exit $rc)"

ctl signal USR1 system_agent >/dev/null
wait_until 30 "event=status after supervisorctl signal USR1" grep -q "event=status feature=status_file" "$LOG"
ok "signal USR1 logs the status lines"

children=$(ps -o pid= --ppid "$pid2" | wc -l || true)
assert_eq "children of the agent" 0 "$children"
# Exit 0 on the SIGTERM (supervisord would SIGKILL it after stopwaitsecs). How
# long the stop took is not measured here (a loaded machine stretches it); that
# the signal cuts the sleep short is tests/cli.rs's stop tests.
ctl stop system_agent >/dev/null
grep -q "stopped: system_agent (exit status 0)" "$T/supervisord.log" ||
    fail "supervisord did not see exit status 0: $(tail -3 "$T/supervisord.log")"
assert_eq "stop events" 1 "$(count "$LOG" "event=stop reason=SIGTERM")"
kill -0 "$pid2" 2>/dev/null && fail "pid $pid2 still alive after stop"
ok "stop: exit 0, event=stop logged, nothing left"

for f in "$T"/var/log/aion/system_agent.stdout.log "$T"/var/log/aion/system_agent.stderr.log; do
    [ ! -s "$f" ] || fail "$f is not empty: $(head -3 "$f")"
done
ok "stdout and stderr stayed empty"
ctl shutdown >/dev/null
