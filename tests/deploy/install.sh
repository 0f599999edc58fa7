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
check /etc/aion/system_agent.d "755 0:0"
check /var/log/aion "750 $AION_UID:$AION_GID"
check /var/lib/aion/system_agent "700 $AION_UID:$AION_GID"
check /etc/supervisor/conf.d/system_agent.conf "644 0:0"
check /etc/logrotate.d/system_agent "644 0:0"
check /usr/share/man/man8/system-agent.8.gz "644 0:0"
check /usr/share/man/man5/system_agent.ini.5.gz "644 0:0"
[ ! -e "$R/etc/cron.d/system_agent" ] || fail "the cron file was installed beside the Supervisor one"
caps=$(getcap "$R/opt/aion/bin/system-agent")
case "$caps" in *"cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid=ep") ;; *) fail "capabilities: $caps" ;; esac
cmp -s "$BIN" "$R/opt/aion/bin/system-agent" || fail "installed binary differs from $BIN"
ok "installed: modes, owners, capabilities"

# What NRPE's nagios (not in group aion) may run: --status, from the copy without
# capabilities, on the status file that aion replaces in /var/lib/aion.
check /var/lib/aion "775 0:$AION_GID"
check /opt/aion/bin/system-agent-status "755 0:0"
assert_eq "capabilities of system-agent-status" "" "$(getcap "$R/opt/aion/bin/system-agent-status")"
cmp -s "$BIN" "$R/opt/aion/bin/system-agent-status" || fail "system-agent-status differs from $BIN"
STATUS=$R/var/lib/aion/system_agent.status
setpriv --reuid="$AION_UID" --regid="$AION_GID" --clear-groups sh -c \
    'umask 022; printf "system-agent-status 1\nsaved %s\ninterval 10000000000\nstate 1\nline %s\nend\n" \
        "$(date +%s%N)" "SYSTEM-AGENT WARNING - mem 90.0%" > "$1.new" && mv "$1.new" "$1"' sh "$STATUS" ||
    fail "aion cannot replace a file in /var/lib/aion"
nobody() { runuser -u nobody -- "$@"; }
rc=0
out=$(nobody "$R/opt/aion/bin/system-agent-status" --status "$STATUS") || rc=$?
assert_eq "--status as nobody" "1 SYSTEM-AGENT WARNING - mem 90.0%" "$rc $out"
if nobody "$R/opt/aion/bin/system-agent" --version >/dev/null 2>&1; then
    fail "a user outside group aion may run the binary that has capabilities"
fi
ok "--status: aion replaces the status file, anyone runs system-agent-status (no capabilities) on it"

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

"$REPO/scripts/install" --root "$R" --binary "$BIN" --systemd 2>/dev/null
check /etc/systemd/system/system-agent.service "644 0:0"
ok "--systemd installs the unit"

echo "event" > "$R/var/log/aion/system_agent.log"
"$REPO/scripts/uninstall" --root "$R" 2>/dev/null
for gone in /opt/aion /etc/supervisor/conf.d/system_agent.conf /etc/cron.d/system_agent /etc/logrotate.d/system_agent \
    /usr/share/man/man8/system-agent.8.gz /usr/share/man/man5/system_agent.ini.5.gz \
    /etc/systemd/system/system-agent.service; do
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

# --- what scripts/install checks before it acts ---------------------------------------
# Each case runs it with PATH holding only a few basic tools (links to the real ones)
# and fakes for what a case provides, never changing the host: every run on the host
# itself is a --dry-run, and runs that would change something go into a tree.
BASIC=(bash env sed awk cut getent id uname dirname install mkdir cmp gzip chmod mv sort grep cat tr rm ldd)
newbin() {  # newbin DIR: a PATH directory with the basic tools only
    local t
    mkdir -p "$1"
    for t in "${BASIC[@]}"; do ln -sf "$(command -v "$t")" "$1/$t"; done
}
# fake DIR NAME SCRIPT: a command NAME whose body is the shell SCRIPT. Written
# beside and renamed over NAME, so a link to a real tool is replaced, never
# written through.
fake() {
    printf '#!/bin/sh\n%s\n' "$3" > "$1/.fake"
    chmod 0755 "$1/.fake"
    mv -f "$1/.fake" "$1/$2"
}
# A host with none of what the agent needs: no Rust, no C linker, no setcap, no
# Supervisor, and no user or group aion yet (id and getent say so for aion only).
EMPTY=$T/empty
newbin "$EMPTY"
fake "$EMPTY" id '[ "$*" = "-u aion" ] && { echo "id: '"'"'aion'"'"': no such user" >&2; exit 1; }; exec /usr/bin/id "$@"'
fake "$EMPTY" getent 'case "$*" in *aion*) exit 2 ;; esac; exec /usr/bin/getent "$@"'
# A host with all of it, each service manager running, for cases to break one part.
FULL=$T/full
newbin "$FULL"
fake "$FULL" cargo 'echo "cargo ${CARGO_VERSION:-1.88.0} (fake)"'
fake "$FULL" cc 'echo /usr/lib/x86_64-linux-gnu/libc.a'
ln -s "$(command -v setcap)" "$FULL/setcap"
fake "$FULL" supervisord 'exit 0'
fake "$FULL" supervisorctl '[ "$1" = pid ] && echo 4242'
fake "$FULL" cron 'exit 0'
fake "$FULL" pgrep 'echo 4243'
fake "$FULL" systemctl '[ "$1" = is-system-running ] && { echo degraded; exit 1; }; exit 0'

# try DIR ARGS...: runs scripts/install with PATH=DIR; sets OUT, ERR, RC.
try() {
    local dir=$1
    shift
    set +e
    OUT=$(PATH=$dir "$REPO/scripts/install" "$@" 2>"$T/err")
    RC=$?
    set -e
    ERR=$(cat "$T/err")
}
missing() { printf '%s\n' "$ERR" | sed -n 's/^install: missing: //p' | cut -d' ' -f1-3; }

try "$EMPTY" --dry-run
assert_eq "exit status of --dry-run on an empty host" 1 "$RC"
assert_eq "what --dry-run names missing on an empty host" "setcap, to give
cargo: Rust >=
cc, a C
supervisord (Debian: apt-get" "$(missing)"
grep -qx '+ groupadd --system aion' <<<"$OUT" || fail "--dry-run does not say it adds group aion: $OUT"
grep -q '^+ useradd --system --gid aion .* aion$' <<<"$OUT" || fail "--dry-run does not say it adds user aion: $OUT"
grep -q '^+ install -d -o aion -g aion -m 0700 /var/lib/aion/system_agent$' <<<"$OUT" ||
    fail "--dry-run does not show the state directory: $OUT"
ok "--dry-run on a host with nothing: names each missing part, shows the plan, exit 1"

try "$FULL" --dry-run --binary "$BIN"
assert_eq "--dry-run, all there: exit" 0 "$RC"
assert_eq "--dry-run, all there: missing" "" "$(missing)"
try "$FULL" --dry-run
assert_eq "--dry-run building with Rust 1.88: exit (missing: $(missing))" 0 "$RC"
CARGO_VERSION=1.63.0 try "$FULL" --dry-run
assert_eq "Rust 1.63: exit" 1 "$RC"
grep -qx 'install: missing: Rust >= 1.88: cargo here is 1.63.0 .*' <<<"$ERR" || fail "Rust 1.63 not named: $ERR"
CARGO_VERSION=1.63.0 try "$FULL" --dry-run --binary "$BIN"
assert_eq "Rust 1.63 with --binary: exit" 0 "$RC"
fake "$T/full" cc 'echo libc.a'
try "$FULL" --dry-run
assert_eq "no static libc: missing" "libc.a for the" "$(missing)"
fake "$FULL" cc 'echo /usr/lib/x86_64-linux-gnu/libc.a'
ok "Rust >= 1.88 and a static libc are checked, unless --binary"

fake "$FULL" uname 'echo aarch64'
try "$FULL" --dry-run --binary "$BIN"
assert_eq "on aarch64: exit" 1 "$RC"
grep -qx 'install: missing: an x86_64 host (this one is aarch64; .*' <<<"$ERR" || fail "aarch64 not named: $ERR"
rm "$FULL/uname"
ln -s "$(command -v uname)" "$FULL/uname"
ok "the architecture is checked"

fake "$FULL" supervisorctl 'echo "unix:///var/run/supervisor.sock no such file"; exit 7'
try "$FULL" --dry-run --binary "$BIN"
assert_eq "supervisord not running: missing" "a running supervisord:" "$(missing)"
assert_eq "supervisord not running: exit" 1 "$RC"
fake "$FULL" pgrep 'exit 1'
try "$FULL" --dry-run --binary "$BIN" --cron
assert_eq "cron not running: missing" "a running cron" "$(missing)"
rm "$FULL/cron"
try "$FULL" --dry-run --binary "$BIN" --cron
assert_eq "no cron: missing" "cron (Debian: apt-get" "$(missing)"
fake "$FULL" systemctl '[ "$1" = is-system-running ] && { echo offline; exit 1; }; exit 0'
try "$FULL" --dry-run --binary "$BIN" --systemd
assert_eq "systemd not init: missing" "systemd as init:" "$(missing)"
rm "$FULL/systemctl"
try "$FULL" --dry-run --binary "$BIN" --systemd
assert_eq "no systemctl: missing" "systemd (no systemctl" "$(missing)"
fake "$FULL" systemctl '[ "$1" = is-system-running ] && { echo running; exit 0; }; exit 0'
try "$FULL" --dry-run --binary "$BIN" --systemd
assert_eq "systemd running: exit" 0 "$RC"
assert_eq "systemd running: the last steps" "+ systemctl daemon-reload
+ systemctl enable system-agent.service
+ systemctl restart system-agent.service" "$(grep '^+ systemctl' <<<"$OUT")"
try "$FULL" --dry-run --binary "$BIN" --cron --systemd
assert_eq "--cron --systemd: exit" 2 "$RC"
ok "each shape's service manager is checked: installed and running"

# With --root nothing on the host runs it: no service manager is checked; the rest is,
# and a missing part changes nothing in the tree.
rm "$FULL/setcap"
mkdir "$T/tree"
try "$FULL" --root "$T/tree" --binary "$BIN"
assert_eq "no setcap, --root: exit" 1 "$RC"
assert_eq "no setcap, --root: missing" "setcap, to give" "$(missing)"
assert_eq "files in the tree after a refused install" "" "$(ls -A "$T/tree")"
dynamic=$(command -v bash)
ln -s "$(command -v setcap)" "$FULL/setcap"
try "$FULL" --root "$T/tree" --binary "$dynamic"
assert_eq "a dynamic binary for a tree: missing" "a static binary:" "$(missing)"
assert_eq "files in the tree after a refused install" "" "$(ls -A "$T/tree")"
ok "with --root, no service manager is needed; a missing part changes nothing"

# A user's PATH has no sbin; a dry run as that user still finds /usr/sbin/setcap.
USERBIN=$T/userbin
newbin "$USERBIN"
fake "$USERBIN" cron 'exit 0'
fake "$USERBIN" pgrep 'echo 4243'
set +e
out=$(runuser -u nobody -- env PATH="$USERBIN" "$REPO/scripts/install" --dry-run --binary "$BIN" --cron 2>&1 >/dev/null)
rc=$?
set -e
assert_eq "a dry run as nobody: exit ($out)" 0 "$rc"
ok "a dry run as a user finds setcap in /usr/sbin"
