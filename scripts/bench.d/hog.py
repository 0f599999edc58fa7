#!/usr/bin/env python3
"""A memory hog for tests/relief.rs and scripts/bench: it allocates memory and
touches every page of it, then waits.

usage: hog.py NAME OUT fixed MIB [ignore-term]
       hog.py NAME OUT below KIB CAP_MIB GO [ignore-term]

NAME becomes its process name (comm). `fixed` allocates MIB, then appends
"ready" to the file OUT. `below` appends "waiting", waits for the file GO to
exist, then allocates 8 MiB at a time until /proc/meminfo's MemAvailable is
below KIB, and 256 MiB more (so that what the rest of the machine frees
meanwhile does not lift it back above KIB), or until CAP_MIB are allocated; it
appends "crossed NS" (CLOCK_MONOTONIC, ns: when it saw MemAvailable below KIB)
or "capped". Either way it then waits for a signal. SIGTERM appends "term NS"
(and, when it came after GO but before the hog itself saw MemAvailable below KIB,
though it is, "early" first: the signal beat the hog's own check) and ends it by SIGTERM, unless
`ignore-term` (then only SIGKILL ends it).
"""
import ctypes
import os
import signal
import sys
import time

CHUNK = 8 << 20
MARGIN = 256  # MiB past the limit


def say(out, line):
    with open(out, "a") as f:
        f.write(line + "\n")


def available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def main():
    name, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    limit = int(sys.argv[4]) if mode == "below" else 0
    crossed, started = None, False
    if sys.argv[-1] == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def on_term(sig, frame):
            now = time.monotonic_ns()
            if started and crossed is None and available_kib() < limit:
                say(out, "early")
            say(out, "term %d" % now)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        signal.signal(signal.SIGTERM, on_term)
    chunks = []
    if mode == "fixed":
        for _ in range(int(sys.argv[4]) // 8):
            chunks.append(b"\x01" * CHUNK)  # bytes * n fills them: every page touched
        say(out, "ready")
    else:
        cap, go = int(sys.argv[5]), sys.argv[6]
        say(out, "waiting")
        while not os.path.exists(go):
            time.sleep(0.01)
        started, more = True, MARGIN
        while len(chunks) * 8 < cap and more > 0:
            if crossed is None and available_kib() < limit:
                crossed = time.monotonic_ns()
                say(out, "crossed %d" % crossed)
            if crossed is not None:
                more -= 8
            chunks.append(b"\x01" * CHUNK)
        if crossed is None:
            say(out, "capped")
    while True:
        signal.pause()


main()
