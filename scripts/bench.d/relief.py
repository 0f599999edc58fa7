"""Memory relief, side by side with earlyoom (imported by scripts/bench).

Reaction latency: a hog (bench.d/hog.py, the one tests/relief.rs uses) allocates and touches
memory 8 MiB at a time until MemAvailable is below a limit set 256 MiB under this machine's
current value, and notes when it saw that ("crossed", CLOCK_MONOTONIC); its SIGTERM handler notes
when the signal arrived. The latency is the difference, both read by the hog on one clock, so
neither tool is asked how fast it was. Each run is a fresh private PID namespace (`unshare --pid
--fork --mount-proc`) holding the tool and the hog only, so nothing of this machine can be
chosen; the tools take turns run by run, so a drift of the machine lands on all of them alike.
The agent runs with `interval = 10s` (its cycle plays no part: the hog starts after its first
one), once as it is (PSI trigger where the kernel has one) and once with /proc/pressure hidden by
a tmpfs (no PSI: it reads MemAvailable every check_interval at the latest); earlyoom with its own
flags, `-M LIMIT -r 0 --prefer ^hog$`.

Idle cost: each tool alone for a while with plenty of memory (the agent with `interval = 1h`, so
what is measured is what it does between cycles; both at a 5% limit), its CPU time from
/proc/PID/schedstat (ns) and its wake-ups (context switches) over that time.
"""
import os
import shutil
import statistics
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOG = HERE / 'hog.py'
MARGIN_KIB = 256 * 1024
TOOLS = ('system-agent (PSI)', 'system-agent (no PSI)', 'earlyoom')

# The part of every namespace script that starts the tool ($MODE) and waits until it is ready.
START = r'''
set -u
cd "$T"
nap() { read -r -t "$1" -u 9 _ || true; }
mkfifo "$T/fifo" && exec 9<>"$T/fifo"
gone() { local l; { read -r l <"/proc/$1/stat"; } 2>/dev/null || return 0; l=${l##*) }; [ "${l%% *}" = Z ]; }
ready() { local i; for ((i = 0; i < 1000; i++)); do grep -qF -- "$1" "$2" 2>/dev/null && return 0; nap 0.01; done; return 1; }
start() {
    case "$MODE" in
    agent*)
        [ "$MODE" = agent-nopsi ] && mount -t tmpfs none /proc/pressure
        sed "s/@LIMIT@/$LIMIT/" "$T/agent.ini.in" >"$T/agent.ini"
        "$A" -c "$T/agent.ini" >"$T/tool.out" 2>&1 & P=$!
        ready "event=sample" "$T/agent.log" || { echo "no first cycle"; exit 1; } ;;
    earlyoom)
        earlyoom $EARLYOOM >"$T/tool.out" 2>&1 & P=$!
        ready "sending SIGTERM" "$T/tool.out" || { echo "earlyoom not ready"; exit 1; } ;;
    esac
}
'''

LATENCY = START + r'''
LIM=$(( $(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) - @MARGIN@ ))
LIMIT=${LIM}K
EARLYOOM="-M $LIM -r 0 --prefer ^hog$"
/usr/bin/python3 "$HOG" hog "$T/hog.out" below "$LIM" 2048 "$T/go" & H=$!
ready waiting "$T/hog.out" || { echo "hog not started"; exit 1; }
start
touch "$T/go"
for ((i = 0; i < 3000; i++)); do gone $H && break; nap 0.01; done
kill -TERM $P; wait $P || true
cat "$T/hog.out"
'''

IDLE = START + r'''
LIMIT=5%
EARLYOOM="-m 5 -r 0"
start
nap 2
cpu() { local a; read -r a _ <"/proc/$P/schedstat"; echo "$a"; }
switches() { local k v n=0; while read -r k v; do case $k in *ctxt_switches:) n=$((n + v));; esac; done <"/proc/$P/status"; echo $n; }
c0=$(cpu) w0=$(switches)
nap @SECONDS@
echo "cpu_ns $(( $(cpu) - c0 ))"
echo "wakeups $(( $(switches) - w0 ))"
kill -TERM $P; wait $P || true
'''


def agent_ini(run, interval):
    (run / 'state').mkdir(mode=0o700)
    (run / 'agent.ini.in').write_text(f"""[agent]
interval = {interval}
log_file = {run}/agent.log
syslog = no
state_dir = {run}/state
top = 0
[thresholds]
cpu_warn = 100
cpu_crit = 100
mem_warn = 100
mem_crit = 100
[disk]
mounts =
[audit]
bash_history = no
[relief]
enabled = yes
mem_available_below = @LIMIT@
user = root
prefer = hog
""")


def in_namespace(script, run, mode, agent, timeout):
    """Runs `script` as PID 1 of a new PID namespace; its stdout, or an exception."""
    env = {**os.environ, 'T': str(run), 'A': str(agent), 'HOG': str(HOG), 'MODE': mode}
    p = subprocess.run(['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', 'bash', '-c',
                        script], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode:
        raise RuntimeError(f'{mode}: exit {p.returncode}: {p.stdout.strip()} {p.stderr.strip()}')
    return p.stdout


MODES = dict(zip(TOOLS, ('agent', 'agent-nopsi', 'earlyoom')))


def latency(mode, agent, tmp, n):
    """One run: ms from crossing the limit to the SIGTERM (0 when the signal came within the
    8 MiB allocation that crossed, before the hog's own check), or None when the run is void
    (the machine's memory crossed the limit before the hog started, or the hog never did)."""
    run = tmp / f'relief-{mode}-{n}'
    run.mkdir()
    agent_ini(run, '10s')
    script = LATENCY.replace('@MARGIN@', str(MARGIN_KIB))
    out = in_namespace(script, run, mode, agent, 120)
    shutil.rmtree(run, ignore_errors=True)
    seen = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
    if 'term' in seen and 'early' in out.split():
        return 0.0  # the signal came within the allocation that crossed, before the hog looked
    if 'crossed' not in seen or 'term' not in seen:
        return None
    return (int(seen['term']) - int(seen['crossed'])) / 1e6


def idle(mode, agent, tmp, seconds):
    run = tmp / f'relief-idle-{mode}'
    run.mkdir()
    agent_ini(run, '1h')
    script = IDLE.replace('@SECONDS@', str(seconds))
    out = in_namespace(script, run, mode, agent, seconds + 60)
    shutil.rmtree(run, ignore_errors=True)
    seen = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
    return int(seen['cpu_ns']) / seconds / 1e3, int(seen['wakeups']) / seconds


def measure(agent, tmp, runs, idle_seconds, say):
    """{tool: dict(ms=[latencies], void=n, idle_us=µs per s, wakeups=per s)}."""
    if os.geteuid() != 0:
        raise RuntimeError('needs root (unshare --pid, mount)')
    if not shutil.which('earlyoom'):
        raise RuntimeError('earlyoom is not installed (Debian package earlyoom)')
    r = {t: dict(ms=[], void=0) for t in TOOLS}
    say(f'relief: {runs} runs of each tool in turn, a hog crossing a limit '
        f'{MARGIN_KIB // 1024} MiB under MemAvailable')
    for n in range(runs):
        for tool in TOOLS:
            for _ in range(3):  # a void run (the machine's memory moved) is done again
                ms = latency(MODES[tool], agent, tmp, n)
                if ms is not None:
                    r[tool]['ms'].append(ms)
                    break
                r[tool]['void'] += 1
    for tool in TOOLS:
        say(f'relief: {tool} idle for {idle_seconds} s')
        r[tool]['idle_us'], r[tool]['wakeups'] = idle(MODES[tool], agent, tmp, idle_seconds)
    return r


def report(r, runs, idle_seconds):
    version = subprocess.run(['earlyoom', '-v'], capture_output=True, text=True).stdout.split()
    print(f'\nmemory relief: threshold crossed -> SIGTERM received, ms ({runs} runs each; the '
          f'hog notes both on one clock), and the cost while idle ({idle_seconds} s, plenty of '
          f'memory)')
    w = '{:<24}{:>10}{:>10}{:>10}{:>18}{:>14}'
    print(w.format('', 'median', 'worst', 'best', 'idle CPU µs/s', 'wake-ups/s'))
    for tool in TOOLS:
        t = r[tool]
        ms = t['ms']
        name = tool if tool != 'earlyoom' else ' '.join(version[:2]) or tool
        print(w.format(name, f'{statistics.median(ms):.1f}' if ms else '-',
                       f'{max(ms):.1f}' if ms else '-', f'{min(ms):.1f}' if ms else '-',
                       f'{t["idle_us"]:.1f}', f'{t["wakeups"]:.2f}'))
        early = sum(m == 0.0 for m in ms)
        if early:
            print(f'  ({early} runs counted as 0: the SIGTERM came within the allocation that '
                  f'crossed, before the hog itself looked)')
        if t['void']:
            print(f'  ({t["void"]} void runs done again: the machine moved MemAvailable past the '
                  f'limit before the hog did)')
    a, e = r[TOOLS[0]]['ms'], r['earlyoom']['ms']
    if a and e:
        ok = statistics.median(a) < 100 and statistics.median(a) < statistics.median(e)
        cheap = r[TOOLS[0]]['idle_us'] < r['earlyoom']['idle_us']
        print(f'goal: median under 100 ms and below earlyoom\'s: {"PASS" if ok else "FAIL"}; '
              f'idle CPU below earlyoom\'s: {"PASS" if cheap else "FAIL"}')
