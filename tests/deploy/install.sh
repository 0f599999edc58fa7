#!/usr/bin/env bash
# scripts/install and scripts/uninstall into a tree: --dry-run changes nothing; a
# second install changes nothing; a locally changed config is kept (the new one goes
# to .dist); uninstall keeps config, logs and the user unless --purge.
source "$(dirname "$0")/lib.bash"
setup install
R=$T/root
mkdir "$R"
snapshot() { (cd "$R" && find . -printf '%p %M %U:%G %s\n' | sort && find . -type f -exec md5sum {} + | sort); }

"$REPO/scripts/install" --root "$R" --binary "$BIN" --dry-run >/dev/null 2>&1
assert_eq "files after --dry-run" "" "$(ls -A "$R")"
ok "--dry-run changes nothing"

"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
AION_UID=$(awk -F: '$1 == "aion" { print $3 }' "$R/etc/passwd")
AION_GID=$(awk -F: '$1 == "aion" { print $3 }' "$R/etc/group")
[ -n "$AION_UID" ] && [ -n "$AION_GID" ] || fail "no aion in $R/etc/passwd or group"
check() {  # check PATH "MODE UID:GID"
    assert_eq "$1" "$2" "$(stat -c '%a %u:%g' "$R$1")"
}
check /opt/aion/bin/system-agent "750 0:$AION_GID"
check /etc/aion/system_agent.ini "640 0:$AION_GID"
check /var/log/aion "750 $AION_UID:$AION_GID"
check /var/lib/aion/system_agent "700 $AION_UID:$AION_GID"
check /etc/supervisor/conf.d/system_agent.conf "644 0:0"
check /etc/logrotate.d/system_agent "644 0:0"
check /usr/share/man/man8/system-agent.8.gz "644 0:0"
[ ! -e "$R/etc/cron.d/system_agent" ] || fail "the cron file was installed beside the Supervisor one"
caps=$(getcap "$R/opt/aion/bin/system-agent")
case "$caps" in *"cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid=ep") ;; *) fail "capabilities: $caps" ;; esac
cmp -s "$BIN" "$R/opt/aion/bin/system-agent" || fail "installed binary differs from $BIN"
ok "installed: modes, owners, capabilities"

before=$(snapshot)
"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
assert_eq "tree after a second install" "$before" "$(snapshot)"
assert_eq "aion lines in passwd" 1 "$(grep -c '^aion:' "$R/etc/passwd")"
ok "a second install changes nothing"

echo "; local change" >> "$R/etc/aion/system_agent.ini"
changed=$(md5sum < "$R/etc/aion/system_agent.ini")
"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
assert_eq "changed config" "$changed" "$(md5sum < "$R/etc/aion/system_agent.ini")"
cmp -s "$REPO/etc/system_agent.ini" "$R/etc/aion/system_agent.ini.dist" || fail "no .dist with the new config"
ok "a changed config is kept, the new one is .dist"

"$REPO/scripts/install" --root "$R" --binary "$BIN" --cron 2>/dev/null
check /etc/cron.d/system_agent "644 0:0"
ok "--cron installs the cron file"

echo "event" > "$R/var/log/aion/system_agent.log"
"$REPO/scripts/uninstall" --root "$R" 2>/dev/null
for gone in /opt/aion /etc/supervisor/conf.d/system_agent.conf /etc/cron.d/system_agent /etc/logrotate.d/system_agent \
    /usr/share/man/man8/system-agent.8.gz; do
    [ ! -e "$R$gone" ] || fail "$gone still there after uninstall"
done
for kept in /etc/aion/system_agent.ini /var/log/aion/system_agent.log /var/lib/aion/system_agent; do
    [ -e "$R$kept" ] || fail "$kept removed by a plain uninstall"
done
grep -q '^aion:' "$R/etc/passwd" || fail "user aion removed by a plain uninstall"
ok "uninstall keeps config, logs, state and the user"

"$REPO/scripts/uninstall" --root "$R" --purge 2>/dev/null
for gone in /etc/aion /var/log/aion /var/lib/aion; do
    [ ! -e "$R$gone" ] || fail "$gone still there after --purge"
done
grep -q '^aion:' "$R/etc/passwd" "$R/etc/group" && fail "aion still in passwd or group after --purge"
ok "uninstall --purge removes the rest"
