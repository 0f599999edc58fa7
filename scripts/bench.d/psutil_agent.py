"""The old psutil agent's cycle, cut down to what the performance budget compares (used by scripts/bench).

    psutil_agent.py loop INTERVAL_S LOGFILE    cycle forever, sleeping INTERVAL_S between cycles
    psutil_agent.py once LOGFILE               one cycle per interpreter, as the cron job ran it

Every cycle does a full process scan, as the old agent did when CPU or memory was high, and logs
through the logging module as it did. The last line of a cycle is `event=sample`, so the bench
counts cycles exactly as it does for system-agent.
"""
import logging
import os
import sys
import time

import psutil

ATTRS = ['pid', 'name', 'username', 'cpu_percent', 'memory_info']
TOP = 5


def rss(info):
    return info['memory_info'].rss if info['memory_info'] else 0


def cycle(log):
    cpu = psutil.cpu_percent(interval=None)
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disk = psutil.disk_usage('/')
    load1, _, _ = os.getloadavg()
    procs = [p.info for p in psutil.process_iter(ATTRS)]
    for by, key in (('cpu', lambda i: i['cpu_percent'] or 0.0), ('rss', rss)):
        for rank, i in enumerate(sorted(procs, key=key, reverse=True)[:TOP], 1):
            log.info('event=top by=%s rank=%d pid=%d name="%s" user=%s cpu=%.1f rss=%d',
                     by, rank, i['pid'], i['name'], i['username'], i['cpu_percent'] or 0.0, rss(i))
    log.info('event=sample cpu=%.1f mem=%.1f swap=%.1f disk_root=%.1f load1=%.2f procs=%d',
             cpu, vm.percent, swap.percent, disk.percent, load1, len(procs))


def main():
    mode, logfile = sys.argv[1], sys.argv[-1]
    logging.basicConfig(filename=logfile, level=logging.INFO,
                        format='ts=%(asctime)s level=%(levelname)s %(message)s')
    log = logging.getLogger('agent')
    if mode == 'once':
        # CPU percentages need two samples; the old agent took them 0.1 s apart.
        psutil.cpu_percent(interval=None)
        for p in psutil.process_iter(['cpu_percent']):
            pass
        time.sleep(0.1)
        cycle(log)
        return
    interval = float(sys.argv[2])
    while True:
        cycle(log)
        time.sleep(interval)


if __name__ == '__main__':
    main()
