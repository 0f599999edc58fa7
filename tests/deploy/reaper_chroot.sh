#!/usr/bin/env bash
# Reaper scope in a chroot: the agent runs in a tree made by `scripts/install --root`,
# with a rule `match = victim`, `user = root`, `action = kill`. Two processes named
# victim share its PID namespace: one started inside the tree (the static binary
# copied to /bin/victim, idling with a config of its own), one started from the
# host side (a copy of sleep outside the tree). Under `scope = root` only the one
# inside is killed; under `scope = all` the one outside is killed too.
#
# Everything runs in a private PID and mount namespace (`unshare --pid --fork
# --mount-proc --kill-child`; proc is mounted into the tree inside it), so the agent
# sees and can signal only the processes of this test, and the namespace (with the
# mount) dies with it.
source "$(dirname "$0")/lib.bash"
setup reaper_chroot
R=$T/root
mkdir "$R"
"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
# The agents here run as root: their log directory must be root's (the agent
# refuses to log as root into a directory aion could write).
chown root:root "$R/var/log/aion"
mkdir -p "$R/proc" "$R/bin"
install -m 0755 "$BIN" "$R/bin/victim"   # static: runs in the tree; its comm is "victim"
install -m 0755 /bin/sleep "$T/victim"   # outside the tree

# reaper_ini SCOPE: the agent's config (its own log and state_dir per scope).
reaper_ini() {
    cat <<EOF
[agent]
interval = 100ms
log_file = /var/log/aion/reaper-$1.log
syslog = no
state_dir = /var/lib/aion/reaper-$1
top = 0

$(quiet_sections)

[reaper]
enabled = yes
grace = 1s
scope = $1

[reap.victim]
match = victim
user = root
action = kill
EOF
}
reaper_ini root > "$R/etc/aion/reaper-root.ini"
reaper_ini all > "$R/etc/aion/reaper-all.ini"
# The victim inside: an agent that samples once an hour, acts on nothing.
cat > "$R/etc/aion/idle.ini" <<'EOF'
[agent]
interval = 1h
log_file = /var/log/aion/idle.log
syslog = no
state_dir = /var/lib/aion/idle
top = 0

[disk]
mounts =
EOF
for cfg in reaper-root reaper-all idle; do
    chroot "$R" /opt/aion/bin/system-agent -c "/etc/aion/$cfg.ini" --check-config >/dev/null ||
        fail "$cfg.ini is invalid"
done

# PID 1 of the namespace. Writes KEY=VALUE lines to $T/out.
{
echo 'set -u'
echo 'R=$1 T=$2'
namespace_helpers
cat <<'EOF'
st() { ST=gone; local l; { read -r l <"/proc/$1/stat"; } 2>/dev/null || return 0; l=${l##*) }; ST=${l%% *}; }
alive() { st "$1"; [ "$ST" != gone ] && [ "$ST" != Z ]; }
dead() { ! alive "$1"; }
logged() { grep -qF -- "$2" "$1" 2>/dev/null; }
record() { if alive "$2"; then out "$1" yes; else out "$1" no; fi; }
status() { if dead "$2"; then wait "$2"; out "$1" $?; else out "$1" alive; fi; }
stop() { kill -TERM "$2"; poll 30 dead "$2"; status "$1" "$2"; if alive "$2"; then kill -KILL "$2"; fi; }

mount -t proc proc "$R/proc" || { out mount_failed 1; exit 1; }
"$T/victim" 1000 & OUTSIDE=$!; out outside $OUTSIDE
chroot "$R" /bin/victim -c /etc/aion/idle.ini & INSIDE=$!; out inside $INSIDE
poll 50 comm_is $OUTSIDE victim || out outside_not_started 1
poll 50 comm_is $INSIDE victim || out inside_not_started 1
# The idle agent has done its one cycle and sleeps.
poll 50 logged "$R/var/log/aion/idle.log" " event=sample " || out idle_not_sampling 1

# scope = root: only the victim inside the tree.
chroot "$R" /opt/aion/bin/system-agent -c /etc/aion/reaper-root.ini & AG=$!; out agent_root $AG
poll 50 dead $INSIDE
record inside_alive_root $INSIDE
status inside_status $INSIDE
# A dozen more cycles: the one outside is still spared.
nap 1.2
record outside_alive_root $OUTSIDE
stop agent_root_rc $AG

# scope = all: the one outside too.
chroot "$R" /opt/aion/bin/system-agent -c /etc/aion/reaper-all.ini & AG=$!; out agent_all $AG
poll 50 dead $OUTSIDE
record outside_alive_all $OUTSIDE
status outside_status $OUTSIDE
stop agent_all_rc $AG
EOF
} > "$T/scenario.sh"

run_in_pid_namespace "$R" "$T"
grep -q '^proc ' /proc/mounts && ! grep -qF " $R/proc " /proc/mounts ||
    fail "proc is still mounted at $R/proc outside the namespace"

for problem in mount_failed outside_not_started inside_not_started idle_not_sampling; do
    ! grep -q "^$problem=" "$T/out" || fail "scenario: $problem"
done
# reaps LOG: its reap lines without ts, with age=*.
reaps() { grep ' event=reap' "$1" | sed -e 's/^ts=[^ ]* //' -e 's/ age=[^ ]* / age=* /'; }
OUTSIDE=$(recorded outside)
INSIDE=$(recorded inside)
LOGS=$R/var/log/aion

assert_eq "victim inside the tree alive under scope = root" no "$(recorded inside_alive_root)"
assert_eq "exit status of the victim inside the tree" 137 "$(recorded inside_status)"
assert_eq "victim outside the tree alive under scope = root" yes "$(recorded outside_alive_root)"
assert_eq "exit status of the scope = root agent" 0 "$(recorded agent_root_rc)"
assert_eq "reap lines under scope = root" \
    "level=warn event=reap pid=$INSIDE name=victim user=root state=sleeping age=* action=kill rule=victim reason=\"name victim\"" \
    "$(reaps "$LOGS/reaper-root.log")"
grep -q " event=start .* mode=service .* pidfd=yes " "$LOGS/reaper-root.log" ||
    fail "start event without pidfd=yes: $(grep ' event=start ' "$LOGS/reaper-root.log")"
ok "scope = root: the victim inside the tree killed, the one outside (pid $OUTSIDE) spared"

assert_eq "victim outside the tree alive under scope = all" no "$(recorded outside_alive_all)"
assert_eq "exit status of the victim outside the tree" 137 "$(recorded outside_status)"
assert_eq "exit status of the scope = all agent" 0 "$(recorded agent_all_rc)"
assert_eq "reap lines under scope = all" \
    "level=warn event=reap pid=$OUTSIDE name=victim user=root state=sleeping age=* action=kill rule=victim reason=\"name victim\"" \
    "$(reaps "$LOGS/reaper-all.log")"
ok "scope = all: the victim outside the tree killed too"
