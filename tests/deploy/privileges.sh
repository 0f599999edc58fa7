#!/usr/bin/env bash
# Least privilege: the binary as installed runs as user aion with exactly the file
# capabilities scripts/install sets, and reports them in event=start; a copy without
# them runs as aion with none, and says so. (Which actions each capability enables
# is reported as those actions arrive: reaper, cleanup, audit.)
source "$(dirname "$0")/lib.bash"
setup privileges
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
# The shipped config (cleanup rules on) with the reaper enabled and one rule, so
# both features that need capabilities are configured (memory relief is enabled
# too, as shipped: action = log, which needs none).
move_paths "$T" -e 's/^syslog = yes$/syslog = no/' -e 's/^enabled = no$/enabled = yes/' \
    "$T/etc/aion/system_agent.ini" > "$T/agent.ini"
printf '\n[reap.none]\nmatch = no-such-process\naction = log\n' >> "$T/agent.ini"
chmod 0644 "$T/agent.ini"
LOG=$T/var/log/aion/system_agent.log
uid=$(id -u aion)

start_line() {  # start_line BINARY [CONFIG]: the start event of one --once run as aion
    rm -f "$LOG"
    runuser -u aion -- "$1" -c "${2:-$T/agent.ini}" --once --log-level debug >/dev/null || true
    grep "event=start" "$LOG"
}

line=$(start_line "$T/opt/aion/bin/system-agent")
case "$line" in
    *" uid=$uid "*" caps=cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid pidfd=yes relief=once users="*" actions=on") ;;
    *) fail "as aion with capabilities: $line" ;;
esac
ok "as aion with the installed capabilities: every feature, nothing limited"

install -o 0 -g aion -m 0750 "$T/opt/aion/bin/system-agent" "$T/opt/aion/bin/plain"
[ -z "$(getcap "$T/opt/aion/bin/plain")" ] || fail "the copy kept its capabilities"
line=$(start_line "$T/opt/aion/bin/plain")
limited="reaper: no cap_kill, signals only uid $uid's processes; task mandb: no cap_setuid,cap_setgid, cannot run as man; audit: no cap_dac_read_search, reads only uid $uid's history; cleanup: no cap_dac_override,cap_fowner,cap_dac_read_search, reads and removes only what uid $uid may"
case "$line" in
    *" uid=$uid "*" caps=none limited=\"$limited\" pidfd=yes relief=once users="*" actions=on") ;;
    *) fail "as aion without capabilities: $line" ;;
esac
ok "as aion without them: caps=none and exactly which features are limited, and why"

# A config that aion (or anyone but root) could write: the capabilities are dropped.
cp "$T/agent.ini" "$T/own.ini"
chown aion "$T/own.ini"
line=$(start_line "$T/opt/aion/bin/system-agent" "$T/own.ini")
case "$line" in
    *" caps=none caps_dropped=\"$T/own.ini is owned by uid $uid, not root\" limited="*) ;;
    *) fail "with a config owned by aion: $line" ;;
esac
chown root "$T/own.ini"
chmod 0666 "$T/own.ini"
line=$(start_line "$T/opt/aion/bin/system-agent" "$T/own.ini")
case "$line" in
    *" caps=none caps_dropped=\"$T/own.ini is writable by group or others (mode 666)\" limited="*) ;;
    *) fail "with a world-writable config: $line" ;;
esac
ok "a config aion could write makes it drop every capability"

# Anyone outside group aion cannot run it (the capabilities would be theirs).
# (runuser drops every uid and capability before the exec is checked; setpriv
# --reuid keeps root's capabilities until the exec itself.)
if runuser -u nobody -- "$T/opt/aion/bin/system-agent" --version >/dev/null 2>&1; then
    fail "user nobody could run the binary that carries capabilities"
fi
ok "user nobody cannot run it"

# Without the capabilities, each action they would allow fails with one clear line,
# not a line every cycle: a reaper rule against another user's process (EPERM) and a
# cleanup rule over root's file in a sticky directory (EPERM). Inside a private PID
# namespace, against a process this test starts.
mkdir -p "$T/bin" "$T/sticky" "$T/state2"
cp /bin/sleep "$T/bin/victim"
chmod 1777 "$T/sticky"
chown aion "$T/state2"
echo root > "$T/sticky/rootfile"
touch -d '10 days ago' "$T/sticky/rootfile"
cat > "$T/limited.ini" <<CONF
[agent]
interval = 100ms
log_file = $T/limited.log
syslog = no
state_dir = $T/state2
top = 0
[disk]
mounts =
[audit]
bash_history = no
[cleanup.sticky]
paths = $T/sticky
when = always
older_than = 1d
[reaper]
enabled = yes
scope = all
[reap.v]
match = victim
user = nobody
action = term
CONF
touch "$T/limited.log"
chown aion "$T/limited.log"
cat > "$T/limited.sh" <<SCRIPT
setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/victim" 100 &
victim=\$!
setpriv --reuid=aion --regid=aion --clear-groups "$T/opt/aion/bin/plain" -c "$T/limited.ini" &
agent=\$!
for i in \$(seq 100); do
    [ "\$(grep -c event=sample "$T/limited.log")" -ge 8 ] && break
    sleep 0.1
done
kill -TERM \$agent
wait \$agent
echo "agent=\$? victim_alive=\$(kill -0 \$victim 2>/dev/null && echo yes || echo no)" > "$T/limited.out"
SCRIPT
timeout 30 unshare --pid --fork --mount-proc --kill-child bash "$T/limited.sh"
assert_eq "outcome" "agent=0 victim_alive=yes" "$(cat "$T/limited.out")"
[ "$(count "$T/limited.log" "event=sample")" -ge 8 ] || fail "fewer than 8 cycles: $(cat "$T/limited.log")"
assert_eq "reap_failed lines" 1 "$(count "$T/limited.log" "event=reap_failed")"
grep -q "event=reap_failed pid=[0-9]* name=victim action=term rule=v errno=EPERM error=\"Operation not permitted\"" "$T/limited.log" ||
    fail "reap_failed line: $(grep reap_failed "$T/limited.log")"
assert_eq "cleanup error lines" 1 "$(count "$T/limited.log" "what=cleanup")"
assert_eq "cleanup lines claiming a removal" 0 "$(count "$T/limited.log" "event=cleanup ")"
grep -q "level=warn event=error what=cleanup rule=sticky path=$T/sticky/rootfile errno=EPERM " "$T/limited.log" ||
    fail "cleanup error line: $(grep what=cleanup "$T/limited.log")"
[ -e "$T/sticky/rootfile" ] || fail "root's file was removed without the capabilities"
ok "without capabilities: one reap_failed and one cleanup error over $(count "$T/limited.log" "event=sample") cycles"
