#!/usr/bin/env bash
# logrotate: the real logrotate with the shipped etc/logrotate.d/system_agent (paths
# moved under a temp dir, as in the README) rotates the log while the agent runs as
# aion at a short interval: no event is lost (counted across both files against the
# cycles the agent reports at stop), and later events go to the new file; the audit
# log rotates too and its new file is 0600.
source "$(dirname "$0")/lib.bash"
setup logrotate
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
move_paths "$T" "$T/etc/logrotate.d/system_agent" > "$T/logrotate.conf"
move_paths "$T" "$T/etc/aion/system_agent.ini" |
    sed -e 's/^interval = 10s$/interval = 50ms/' -e 's/^syslog = yes$/syslog = no/' > "$T/agent.ini"
chmod 0644 "$T/agent.ini"
LOG=$T/var/log/aion/system_agent.log
AUDIT=$T/var/log/aion/audit.log

setpriv --reuid=aion --regid=aion --clear-groups "$T/opt/aion/bin/system-agent" -c "$T/agent.ini" &
agent=$!
PIDS+=("$agent")
samples() { [ "$(count "$1" "event=sample")" -ge "$2" ]; }
wait_until 30 "20 samples before rotating" samples "$LOG" 20
wait_until 30 "the audit log opened" test -f "$AUDIT"
assert_eq "owner and mode of the audit log" "aion aion 600" "$(stat -c '%U %G %a' "$AUDIT")"
echo "ts=2026-01-01T00:00:00.000Z level=info event=history user=x uid=1 cmd=x" >> "$AUDIT"

logrotate -s "$T/logrotate.state" -f "$T/logrotate.conf" || fail "logrotate failed"
[ -f "$LOG.1" ] || fail "no $LOG.1 after logrotate"
[ -s "$AUDIT.1" ] || fail "no $AUDIT.1 after logrotate"
wait_until 30 "event=reload in the new file" grep -q "event=reload" "$LOG"
wait_until 30 "20 samples in the new file" samples "$LOG" 20
kill -TERM "$agent"
wait "$agent" || fail "agent exit status $? after SIGTERM"

cycles=$(sed -n 's/.*event=stop reason=SIGTERM cycles=\([0-9]*\).*/\1/p' "$LOG")
[ -n "$cycles" ] || fail "no event=stop in the new file"
old=$(count "$LOG.1" "event=sample") new=$(count "$LOG" "event=sample")
assert_eq "samples across $LOG.1 ($old) and $LOG ($new)" "$cycles" "$((old + new))"
assert_eq "reload events in the rotated file" 0 "$(count "$LOG.1" "event=reload")"
last_old=$(tail -1 "$LOG.1" | cut -d' ' -f1) first_new=$(head -1 "$LOG" | cut -d' ' -f1)
[[ ! "$first_new" < "$last_old" ]] || fail "the new file starts ($first_new) before the old one ends ($last_old)"
assert_eq "owner and mode of the new file" "aion aion 640" "$(stat -c '%U %G %a' "$LOG")"
assert_eq "owner and mode of the new audit log" "aion aion 600" "$(stat -c '%U %G %a' "$AUDIT")"
ok "rotated while running: $old + $new samples = $cycles cycles, later events in the new file"
