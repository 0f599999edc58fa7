#!/usr/bin/env bash
# The binary's file capabilities never read a file for the user who runs it. As
# user aion (who may run the installed binary, which carries cap_dac_read_search),
# a config only root can read is refused with "Permission denied" by
# --check-config (exit 78), --once (3), a service start (78) and a SIGHUP reload
# (event=config_error, the old config kept), and no output or log quotes a line of
# it. The same file made readable is quoted, as the user could read it anyway: so
# the canary is a line an error would show.
source "$(dirname "$0")/lib.bash"
setup config_rights
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
AGENT=$T/opt/aion/bin/system-agent
getcap "$AGENT" | grep -q cap_dac_read_search || fail "the installed binary lacks cap_dac_read_search"

SECRET="canary-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Not `key = value`: a parse error would quote this line.
printf '[agent]\n%s\n' "$SECRET" > "$T/secret.ini"
chmod 0600 "$T/secret.ini"
DENIED="$T/secret.ini: cannot read: Permission denied"

as_aion() {  # as_aion NAME ARGS...: runs the installed binary as aion; rc in NAME.rc
    local name=$1
    shift
    set +e
    runuser -u aion -- "$AGENT" "$@" >"$T/$name.out" 2>"$T/$name.err"
    echo $? >"$T/$name.rc"
    set -e
}

as_aion check -c "$T/secret.ini" --check-config
assert_eq "--check-config exit" 78 "$(cat "$T/check.rc")"
assert_eq "--check-config stderr" "$DENIED" "$(cat "$T/check.err")"
as_aion once -c "$T/secret.ini" --once
assert_eq "--once exit" 3 "$(cat "$T/once.rc")"
assert_eq "--once stdout" "SYSTEM-AGENT UNKNOWN - invalid configuration: $DENIED" "$(cat "$T/once.out")"
assert_eq "--once stderr" "$DENIED" "$(cat "$T/once.err")"
as_aion service -c "$T/secret.ini"
assert_eq "service exit" 78 "$(cat "$T/service.rc")"
assert_eq "service stderr" "$DENIED" "$(cat "$T/service.err")"
ok "a root-only config: Permission denied from --check-config (78), --once (3), the service (78)"

# A reload: the service runs as aion on a valid root-owned config reached through a
# symlink aion controls (so its capabilities are on), which aion then points at
# the secret and sends SIGHUP.
move_paths "$T" -e 's/^syslog = yes$/syslog = no/' "$T/etc/aion/system_agent.ini" > "$T/agent.ini"
sed -i 's/^interval = .*/interval = 200ms/' "$T/agent.ini"
chmod 0644 "$T/agent.ini"
install -d -o aion -g aion -m 0755 "$T/u"
ln -s "$T/agent.ini" "$T/u/agent.ini"
LOG=$T/var/log/aion/system_agent.log
setpriv --reuid=aion --regid=aion --clear-groups "$AGENT" -c "$T/u/agent.ini" \
    >"$T/reload.out" 2>"$T/reload.err" &
PIDS+=($!)
wait_until 30 "the service's first cycle" grep -q "event=sample" "$LOG"
grep "event=start" "$LOG" | grep -q " caps=cap_dac_override,cap_dac_read_search," ||
    fail "the service should hold its capabilities: $(grep event=start "$LOG")"
ln -sfn "$T/secret.ini" "$T/u/agent.ini"
kill -HUP "${PIDS[-1]}"
wait_until 30 "the reload's config_error" grep -q "event=config_error" "$LOG"
line=$(grep "event=config_error" "$LOG")
case "$line" in
    *" level=error event=config_error file=$T/u/agent.ini line=0 key=\"\" error=\"cannot read: Permission denied\" effect=\"kept the old configuration\"") ;;
    *) fail "reload of the secret: $line" ;;
esac
assert_eq "config_error lines" 1 "$(count "$LOG" "event=config_error")"
ok "a reload onto a root-only file: Permission denied, the old config kept"

for f in "$T"/*.out "$T"/*.err "$T"/var/log/aion/*; do
    if grep -qF "$SECRET" "$f"; then fail "the secret leaked into $f"; fi
done
ok "the secret is in no output and no log"

# The control: readable, the same file's line is quoted (the user could read it).
chmod 0644 "$T/secret.ini"
as_aion readable -c "$T/secret.ini" --check-config
assert_eq "readable --check-config exit" 78 "$(cat "$T/readable.rc")"
grep -qF "$SECRET" "$T/readable.err" || fail "the canary is not a line errors quote: $(cat "$T/readable.err")"
ok "the canary is quoted when the user may read it, so the checks above can fail"
