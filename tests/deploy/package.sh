#!/usr/bin/env bash
# The Debian package (scripts/package): lintian finds no error or warning; then, in a
# throwaway Debian root (debootstrap --variant=minbase bookworm, cached as a tarball
# under /var/cache/system-agent-tests), dpkg installs, upgrades (a changed conffile
# is kept, the new one is .dpkg-dist), removes and purges it, checking files, modes,
# owners, capabilities and user aion at each step. dpkg runs as `chroot ROOT dpkg`
# with /proc mounted in a private mount namespace; the host's own package database is
# never touched (checked).
source "$(dirname "$0")/lib.bash"
setup package
CACHE=/var/cache/system-agent-tests
INCLUDE=adduser,libcap2-bin,man-db     # the package's dependencies, and man for the page
TARBALL=$CACHE/bookworm-minbase-${INCLUDE//,/-}.tar.gz
host_db=$(md5sum < /var/lib/dpkg/status)

# --- build and lint ---------------------------------------------------------------------
deb1=$("$REPO/scripts/package" --binary "$BIN" --out "$T/out1")
lint=$(lintian --pedantic -I "$deb1" 2>/dev/null) || fail "lintian failed: $lint"
bad=$(grep -E '^[EW]: |unused-override|mismatched-override' <<<"$lint" || true)
assert_eq "lintian errors and warnings (fix, or override with a reason)" "" "$bad"
ok "lintian: no error, no warning ($(grep -c '^I: ' <<<"$lint" || true) info)"

# The next version: one more changelog entry and a changed config, from a copy of
# the sources.
S2=$T/src2
mkdir -p "$S2/scripts"
cp -a "$REPO/Cargo.toml" "$REPO/etc" "$REPO/man" "$REPO/packaging" "$S2/"
cp -a "$REPO/scripts/package" "$S2/scripts/"
{
    printf 'system-agent (%s) unstable; urgency=medium\n\n  * Test upgrade.\n\n' "$(
        sed -n '1s/^system-agent (\(.*\)-\([0-9]*\)).*/\1-\2/p' "$REPO/packaging/deb/changelog" |
            awk -F- '{ print $1 "-" $2 + 1 }')"
    printf ' -- Test <test@example.org>  Mon, 30 Nov 2026 12:00:00 +0000\n\n'
    cat "$REPO/packaging/deb/changelog"
} > "$S2/packaging/deb/changelog"
echo "; new in the next version" >> "$S2/etc/system_agent.ini"
deb2=$("$S2/scripts/package" --binary "$BIN" --out "$T/out2")
v1=$(dpkg-deb -f "$deb1" Version) v2=$(dpkg-deb -f "$deb2" Version)

# --- the Debian root, built once and cached ---------------------------------------------
mirror() {  # the first bookworm mirror in the host's apt sources (one-line or deb822)
    local m
    m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) break;
                           if ($(i + 1) == "bookworm") { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$m" ] || m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
        /^$/ { u = "" } tolower($1) == "uris:" { u = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm" && u != "") { print u; exit } }')
    echo "${m:-http://deb.debian.org/debian}"
}
if [ ! -s "$TARBALL" ]; then
    mkdir -p "$CACHE"
    echo "deploy/package: building the Debian root (once; cached as $TARBALL)" >&2
    # debootstrap mounts /proc and /sys in the tree: in a namespace of its own.
    unshare -m --propagation private debootstrap --variant=minbase --include="$INCLUDE" \
        bookworm "$T/build" "$(mirror)" > "$T/debootstrap.log" 2>&1 ||
        fail "debootstrap failed: $(tail -n 5 "$T/debootstrap.log")"
    rm -f "$T/build/var/cache/apt/archives/"*.deb
    tar -C "$T/build" --numeric-owner -czf "$TARBALL.$$" .
    mv -f "$TARBALL.$$" "$TARBALL"
    rm -rf "$T/build"
fi
R=$T/root
mkdir "$R"
tar -C "$R" --numeric-owner -xzf "$TARBALL"
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"   # no daemon starts in there
chmod 0755 "$R/usr/sbin/policy-rc.d"
cp "$deb1" "$deb2" "$R/tmp/"

# in_root COMMAND...: in the root, /proc mounted in a mount namespace of its own.
in_root() {
    unshare -m --propagation private sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' \
        sh "$R" "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C DEBIAN_FRONTEND=noninteractive "$@"
}
dpkg_root() {  # dpkg_root ARGS...: dpkg in the root; its output is shown on failure
    in_root dpkg "$@" > "$T/dpkg.log" 2>&1 || fail "dpkg $*: $(cat "$T/dpkg.log")"
}
check() {  # check PATH "MODE USER:GROUP" (names as the root's own passwd gives them)
    assert_eq "$1" "$2" "$(in_root stat -c '%a %U:%G' "$1" 2>&1)"
}
gone() { local p; for p; do [ ! -e "$R$p" ] && [ ! -L "$R$p" ] || fail "$p is still there"; done; }
there() { local p; for p; do [ -e "$R$p" ] || fail "$p is missing"; done; }
CAPS="/opt/aion/bin/system-agent cap_dac_override,cap_dac_read_search,cap_fowner,cap_kill,cap_setgid,cap_setuid=ep"
WANTS=/etc/systemd/system/multi-user.target.wants/system-agent.service

# --- install ----------------------------------------------------------------------------
dpkg_root -i "/tmp/$(basename "$deb1")"
check /opt/aion/bin/system-agent "750 root:aion"
check /etc/aion/system_agent.ini "640 root:aion"
check /etc/aion/system_agent.d "755 root:root"
check /var/log/aion "750 aion:aion"
check /var/lib/aion "775 root:aion"
check /var/lib/aion/system_agent "700 aion:aion"
check /opt/aion/bin/system-agent-status "755 root:root"
check /lib/systemd/system/system-agent.service "644 root:root"
check /usr/share/man/man8/system-agent.8.gz "644 root:root"
check /usr/share/man/man5/system_agent.ini.5.gz "644 root:root"
there /etc/logrotate.d/system_agent /usr/share/doc/system-agent/copyright \
    /usr/share/doc/system-agent/changelog.Debian.gz \
    /usr/share/doc/system-agent/examples/supervisor/conf.d/system_agent.conf \
    /usr/share/doc/system-agent/examples/cron.d/system_agent
assert_eq "capabilities" "$CAPS" "$(in_root getcap /opt/aion/bin/system-agent)"
assert_eq "capabilities of system-agent-status" "" "$(in_root getcap /opt/aion/bin/system-agent-status)"
IFS=: read -r _ _ uid _ _ home shell <<<"$(in_root getent passwd aion)"
[ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "user aion: uid [$uid], not a system user"
assert_eq "aion's home and shell" "/var/lib/aion /usr/sbin/nologin" "$home $shell"
assert_eq "unit enabled" /lib/systemd/system/system-agent.service "$(readlink "$R$WANTS")"
assert_eq "conffiles" "/etc/aion/system_agent.ini /etc/logrotate.d/system_agent" \
    "$(in_root dpkg-query -W -f='${Conffiles}' system-agent | awk 'NF { printf "%s%s", sep, $1; sep = " " }')"
in_root chroot --userspec=aion:aion / /opt/aion/bin/system-agent --check-config >/dev/null ||
    fail "the installed agent, as aion, rejects the installed config"
# The service's status file (aion may replace it), read by --status as a user
# outside group aion.
in_root chroot --userspec=aion:aion / sh -c 'printf "system-agent-status 1\nsaved %s\ninterval 10000000000\nstate 0\nline SYSTEM-AGENT OK - all checks ok\nend\n" "$(date +%s%N)" > /var/lib/aion/.s && mv /var/lib/aion/.s /var/lib/aion/system_agent.status' ||
    fail "aion cannot replace a file in /var/lib/aion"
rc=0
out=$(in_root chroot --userspec=nobody:nogroup / /opt/aion/bin/system-agent-status --status) || rc=$?
assert_eq "--status as nobody" "0 SYSTEM-AGENT OK - all checks ok" "$rc $out"
ok "install: files, modes, owners, capabilities, user aion, unit enabled, --status for anyone"

# man finds the pages; mandb as the shipped [task.mandb] runs it (as user man)
# indexes them.
assert_eq "man -w" /usr/share/man/man8/system-agent.8.gz "$(in_root man -w system-agent)"
assert_eq "man -w 5" /usr/share/man/man5/system_agent.ini.5.gz "$(in_root man -w 5 system_agent.ini)"
rm -f "$R/var/cache/man/index.db"
in_root chroot --userspec=man:man / /usr/bin/mandb -q || fail "mandb -q as man failed"
assert_eq "whatis" "system-agent (8)     - Linux host agent that samples, logs, heals and alerts" \
    "$(in_root whatis system-agent)"
assert_eq "apropos system-agent" \
    "system-agent (8)     - Linux host agent that samples, logs, heals and alerts
system_agent.ini (5) - system-agent configuration file" "$(in_root apropos system-agent | sort)"
ok "man system-agent and man 5 system_agent.ini open them; mandb -q indexes both"

# --- upgrade, with a locally changed config ---------------------------------------------
echo "; changed here" >> "$R/etc/aion/system_agent.ini"
mine=$(md5sum < "$R/etc/aion/system_agent.ini")
in_root chroot --userspec=aion:aion / sh -c 'echo event >> /var/log/aion/system_agent.log'
dpkg_root -i --force-confold "/tmp/$(basename "$deb2")"
assert_eq "version after upgrade" "$v2" "$(in_root dpkg-query -W -f='${Version}' system-agent)"
assert_eq "the changed config" "$mine" "$(md5sum < "$R/etc/aion/system_agent.ini")"
cmp -s "$S2/etc/system_agent.ini" "$R/etc/aion/system_agent.ini.dpkg-dist" ||
    fail "no /etc/aion/system_agent.ini.dpkg-dist with the new config"
check /opt/aion/bin/system-agent "750 root:aion"
check /etc/aion/system_agent.ini "640 root:aion"
assert_eq "capabilities after upgrade" "$CAPS" "$(in_root getcap /opt/aion/bin/system-agent)"
there /var/log/aion/system_agent.log
ok "upgrade $v1 -> $v2: the changed config is kept, the new one is .dpkg-dist; modes and capabilities"

# --- remove: config, logs, state and the user stay -----------------------------------------
dpkg_root -r system-agent
gone /opt/aion /lib/systemd/system/system-agent.service /usr/share/man/man8/system-agent.8.gz \
    /usr/share/man/man5/system_agent.ini.5.gz /usr/share/doc/system-agent
there /etc/aion/system_agent.ini /etc/logrotate.d/system_agent /var/log/aion/system_agent.log \
    /var/lib/aion/system_agent
in_root getent passwd aion >/dev/null || fail "remove deleted user aion"
assert_eq "dpkg-statoverride after remove" "" "$(in_root dpkg-statoverride --list | grep aion || true)"
assert_eq "status after remove" "deinstall ok config-files" "$(in_root dpkg-query -W -f='${Status}' system-agent)"
ok "remove: binary, unit and docs go; config, logs, state and user aion stay"

# --- purge: everything ----------------------------------------------------------------------
dpkg_root -P system-agent
gone /etc/aion /etc/logrotate.d/system_agent /var/log/aion /var/lib/aion "$WANTS" \
    /etc/systemd/system/system-agent.service
in_root getent passwd aion >/dev/null && fail "purge left user aion"
in_root getent group aion >/dev/null && fail "purge left group aion"
in_root dpkg-query -W system-agent >/dev/null 2>&1 && fail "purge left system-agent in dpkg's database"
ok "purge: config, logs, state, unit links, user and group aion are gone"

assert_eq "the host's dpkg status file" "$host_db" "$(md5sum < /var/lib/dpkg/status)"
ok "the host's package database is untouched"
