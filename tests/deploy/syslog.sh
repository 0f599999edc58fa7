#!/usr/bin/env bash
# Syslog: a real rsyslogd in the foreground, its socket at a temp path (never
# /dev/log), receives the agent's events with ident system-agent, the configured
# facility and the severity of each level; a restart of rsyslogd loses the agent
# nothing but the lines sent while no daemon listened.
source "$(dirname "$0")/lib.bash"
setup syslog

cat > "$T/rsyslog.conf" <<CONF
global(workDirectory="$T")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$T/log.sock" CreatePath="on")
template(name="t" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname%[%procid%]:%msg%\n")
*.* action(type="omfile" file="$T/messages" template="t")
CONF
rsyslogd -N1 -f "$T/rsyslog.conf" >/dev/null 2>&1 || fail "rsyslogd rejects the test config"
start_rsyslogd() {
    rm -f "$T/log.sock"
    rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslogd.pid" >/dev/null 2>&1 &
    RS=$!
    PIDS+=("$RS")
    wait_until 30 "rsyslogd socket $T/log.sock" test -S "$T/log.sock"
}
start_rsyslogd

cat > "$T/agent.ini" <<CONF
[agent]
interval = 100ms
log_file = $T/agent.log
syslog = yes
syslog_socket = $T/log.sock
syslog_facility = local3
state_dir = $T/state
status_file = $T/agent.status
top = 0
[thresholds]
mem_warn = 0
for_cycles = 1
[audit]
bash_history = no
CONF

# One-shot: a warning (warn severity) and a sample (info).
"$BIN" -c "$T/agent.ini" --once >/dev/null &
once=$!
wait "$once" || true
wait_until 30 "the sample in $T/messages" grep -q "event=sample" "$T/messages"
grep -q "^local3.warning system-agent\[$once\]: level=warn event=alert metric=mem state=warning value=" "$T/messages" ||
    fail "no local3.warning alert from pid $once: $(cat "$T/messages")"
grep -q "^local3.info system-agent\[$once\]: level=info event=sample cpu=" "$T/messages" ||
    fail "no local3.info sample from pid $once: $(cat "$T/messages")"
ok "--once: local3.warning alert and local3.info sample, ident system-agent[$once]"

# Service: an error-level event (a broken reload) arrives as err.
cp "$T/agent.ini" "$T/good.ini"
"$BIN" -c "$T/agent.ini" &
agent=$!
PIDS+=("$agent")
wait_until 30 "service start in syslog" grep -q "system-agent\[$agent\]: level=info event=start" "$T/messages"
echo "[agent]" > "$T/agent.ini"
echo "interval = never" >> "$T/agent.ini"
kill -HUP "$agent"
wait_until 30 "config_error as err" grep -q "^local3.err system-agent\[$agent\]: level=error event=config_error " "$T/messages"
ok "service: config_error arrives as local3.err"

# rsyslogd restarts: the agent reconnects by itself.
kill -TERM "$RS"
wait "$RS" 2>/dev/null || true
before=$(count "$T/messages" "system-agent[$agent]: level=info event=sample")
start_rsyslogd
more() { [ "$(count "$T/messages" "system-agent[$agent]: level=info event=sample")" -gt "$((before + 3))" ]; }
wait_until 30 "samples after the rsyslogd restart" more
kill -TERM "$agent"
wait "$agent" || fail "agent exit status $? after SIGTERM"
ok "rsyslogd restart: samples resume without a reload"
