/* floor: the least CPU one agent cycle can cost on this host.
 *
 * It makes the same reads as one system-agent cycle and nothing more: /proc/stat, /proc/meminfo,
 * /proc/loadavg, statvfs("/"), then (unless "noscan") one readdir pass over /proc and, for each
 * PID, open/read/close of /proc/PID/stat, with just enough parsing to use what it read. Each
 * cycle ends with one log line, as the agent's does, so the bench can count cycles the same way.
 *
 *   floor loop INTERVAL_MS LOGFILE [noscan]   cycle forever, sleeping INTERVAL_MS between cycles
 *   floor once LOGFILE [noscan]               one cycle, then exit (start-up cost included)
 *
 * Every choice is the cheapest reasonable one, because this is the reference the agent is held
 * to: one read() per file into a reused buffer (procfs hands over a whole small file in one read),
 * openat() relative to the /proc directory fd (no path walk from "/"), no allocation per cycle.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static char buf[65536];

/* One read of a whole procfs file, relative to dirfd; returns its length or -1. */
static ssize_t slurp(int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return n;
}

static unsigned long long field_after(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void cycle(int proc, int log, int scan) {
    unsigned long long jiffies = 0, mem = 0, cputime = 0, rss = 0;
    double load1 = 0;
    long nproc = 0;
    char *p;

    if (slurp(proc, "stat") > 0)                       /* "cpu  user nice system ..." */
        for (p = buf + 3; *p != '\n'; ) jiffies += strtoull(p, &p, 10);
    if (slurp(proc, "meminfo") > 0)
        mem = field_after(buf, "MemTotal:") - field_after(buf, "MemAvailable:");
    if (slurp(proc, "loadavg") > 0) load1 = strtod(buf, NULL);
    struct statvfs vfs;
    statvfs("/", &vfs);

    if (scan) {
        DIR *d = opendir("/proc");     /* anew each cycle: a dup of proc would share its offset */
        struct dirent *e;
        char path[sizeof e->d_name + 8];
        while (d && (e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
            size_t len = strlen(e->d_name);             /* "PID/stat", without printf */
            memcpy(path, e->d_name, len);
            memcpy(path + len, "/stat", sizeof "/stat");
            if (slurp(proc, path) <= 0 || !(p = strrchr(buf, ')'))) continue;  /* it exited */
            /* Fields after "(comm)": 3 state ... 14 utime 15 stime ... 24 rss. A digit loop,
             * not strtoull: its generality would cost more than the rest of the parse. */
            unsigned long long v = 0;
            for (int field = 2; *++p && field < 25; ) {
                if (*p != ' ') { v = v * 10 + (unsigned)(*p - '0'); continue; }
                if (field == 14 || field == 15) cputime += v;
                if (field == 24) rss += v;
                field++;
                v = 0;
            }
            nproc++;
        }
        if (d) closedir(d);
    }
    char line[256];
    int n = snprintf(line, sizeof line,
                     "event=sample jiffies=%llu mem_kb=%llu load1=%.2f disk_free=%llu procs=%ld "
                     "cputime=%llu rss_pages=%llu\n",
                     jiffies, mem, load1, (unsigned long long)vfs.f_bavail, nproc, cputime, rss);
    if (write(log, line, n) != n) exit(1);
}

int main(int argc, char **argv) {
    int loop = argc >= 4 && !strcmp(argv[1], "loop");
    int once = argc >= 3 && !strcmp(argv[1], "once");
    if (!loop && !once) {
        fprintf(stderr, "usage: floor loop INTERVAL_MS LOGFILE [noscan] | floor once LOGFILE [noscan]\n");
        return 2;
    }
    const char *logfile = argv[loop ? 3 : 2], *opt = argv[loop ? 4 : 3];
    int scan = !(opt && !strcmp(opt, "noscan"));
    int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int log = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (proc < 0 || log < 0) { perror("floor: open"); return 1; }
    if (once) { cycle(proc, log, scan); return 0; }
    long ms = atol(argv[2]);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    for (;;) { cycle(proc, log, scan); nanosleep(&ts, NULL); }
}
