#!/usr/bin/env bash
# The README's way to let aion write into node_exporter's textfile directory:
# the directory group aion and group-writable (on Debian, dpkg-statoverride root
# aion 0775 on /var/lib/prometheus/node-exporter; here a copy of it in the temp
# dir, created as Debian ships it, root:root 0755). The agent runs as aion from a
# copy of the binary without capabilities, so that grant is all that lets it
# write there: before it, the file is not written and the log says why; after
# it, the file is aion's, mode 0644 (node_exporter runs as another user), and
# nothing but it is left in the directory.
source "$(dirname "$0")/lib.bash"
setup textfile
ensure_host_aion
"$REPO/scripts/install" --root "$T" --binary "$BIN" 2>/dev/null
install -o 0 -g aion -m 0750 "$T/opt/aion/bin/system-agent" "$T/plain"
install -d -o 0 -g 0 -m 0755 "$T/textfile"
PROM=$T/textfile/system_agent.prom
move_paths "$T" -e 's/^syslog = yes$/syslog = no/' -e "s|^metrics_file =\$|metrics_file = $PROM|" \
    "$T/etc/aion/system_agent.ini" > "$T/agent.ini"
chmod 0644 "$T/agent.ini"
grep -qx "metrics_file = $PROM" "$T/agent.ini" || fail "metrics_file not set in the shipped config's copy"
LOG=$T/var/log/aion/system_agent.log

once() { runuser -u aion -- "$T/plain" -c "$T/agent.ini" --once >/dev/null || true; }

once
[ ! -e "$PROM" ] || fail "aion wrote into a root:root 0755 directory"
grep -q "event=error what=metrics_file path=$PROM errno=EACCES" "$LOG" \
    || fail "no metrics_file error in the log: $(grep what=metrics_file "$LOG" || true)"
ok "before the grant: nothing written, and the log says why"

chgrp aion "$T/textfile"
chmod 0775 "$T/textfile"
once
assert_eq "owner and mode" "aion 644" "$(stat -c '%U %a' "$PROM")"
grep -q '^system_agent_build_info{version="' "$PROM" || fail "not the metrics text: $(head -3 "$PROM")"
runuser -u nobody -- cat "$PROM" >/dev/null || fail "another user cannot read it"
assert_eq "files in the directory" "system_agent.prom" "$(ls -A "$T/textfile")"
ok "with the directory group aion and 0775: written each run as aion, 0644, nothing else left there"
