#!/usr/bin/env bash
# Drop-ins and the installed binary's file capabilities, run as user aion: the
# agent keeps its capabilities only while the main file, the drop-in directory and
# every drop-in are root's and writable by no one else; one drop-in aion owns or
# could write, or a directory aion could add files to, drops them all and says
# which. A drop-in only root can read is refused ("Permission denied", naming it)
# and never quoted: the capabilities never read a drop-in for the user.
source "$(dirname "$0")/lib.bash"
setup dropins
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
AGENT=$T/opt/aion/bin/system-agent
# The shipped config with the reaper on; its one rule comes from a drop-in, so
# cap_kill in effect shows that the drop-in was read.
move_paths "$T" -e 's/^syslog = yes$/syslog = no/' -e 's/^enabled = no$/enabled = yes/' \
    "$T/etc/aion/system_agent.ini" > "$T/agent.ini"
chmod 0644 "$T/agent.ini"
install -d -m 0755 "$T/agent.d"
printf '[reap.none]\nmatch = no-such-process\naction = log\n' > "$T/agent.d/10-reap.ini"
chmod 0644 "$T/agent.d/10-reap.ini"
LOG=$T/var/log/aion/system_agent.log
uid=$(id -u aion)

start_line() {  # start_line: the start event of one --once run as aion
    rm -f "$LOG"
    runuser -u aion -- "$AGENT" -c "$T/agent.ini" --once --log-level debug >/dev/null || true
    grep "event=start" "$LOG"
}

dropped() {  # dropped WHY: the start event says the capabilities were dropped, and why
    local line
    line=$(start_line)
    case "$line" in
        *" caps=none caps_dropped=\"$1\" limited="*) ;;
        *) fail "expected the capabilities dropped because $1: $line" ;;
    esac
}

line=$(start_line)
case "$line" in
    *" uid=$uid "*" caps=cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid pidfd=yes "*) ;;
    *) fail "root's drop-ins: $line" ;;
esac
ok "root's drop-in in root's 0755 directory: read (its reap rule keeps cap_kill), capabilities kept"

chown aion "$T/agent.d/10-reap.ini"
dropped "$T/agent.d/10-reap.ini is owned by uid $uid, not root"
chown 0 "$T/agent.d/10-reap.ini"
chmod 0664 "$T/agent.d/10-reap.ini"
dropped "$T/agent.d/10-reap.ini is writable by group or others (mode 664)"
chmod 0644 "$T/agent.d/10-reap.ini"
chgrp aion "$T/agent.d"
chmod 0775 "$T/agent.d"
dropped "$T/agent.d is writable by group or others (mode 775)"
chmod 0755 "$T/agent.d"
ok "a drop-in aion owns or may write, or a directory it may add to: every capability dropped, the file named"

SECRET="canary-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Not `key = value`: a parse error would quote this line.
printf '[agent]\n%s\n' "$SECRET" > "$T/agent.d/20-secret.ini"
chmod 0600 "$T/agent.d/20-secret.ini"
set +e
runuser -u aion -- "$AGENT" -c "$T/agent.ini" --check-config >"$T/check.out" 2>"$T/check.err"
rc=$?
set -e
assert_eq "--check-config exit" 78 "$rc"
assert_eq "--check-config stderr" "$T/agent.d/20-secret.ini: cannot read: Permission denied" "$(cat "$T/check.err")"
if grep -qF "$SECRET" "$T/check.out" "$T/check.err"; then fail "the secret leaked"; fi
chmod 0644 "$T/agent.d/20-secret.ini"
runuser -u aion -- "$AGENT" -c "$T/agent.ini" --check-config >"$T/check.out" 2>"$T/check.err" || true
grep -qF "$SECRET" "$T/check.err" || fail "the canary is not a line errors quote: $(cat "$T/check.err")"
ok "a root-only drop-in: Permission denied, named, never quoted (the control quotes it once readable)"
