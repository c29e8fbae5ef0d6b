/* latency.c: the benchmark driver. It runs one watcher tool (rawloop,
 * inotifywait, ferry) as its child with stdout and stderr on pipes, makes the
 * file system events itself, and measures what the tool prints. One scenario
 * per run; the result is one line of key=value pairs on stdout, read by
 * bench/run.
 *
 *   latency latency -d DIR -n N [-T SEC] -- TOOL...
 *       N serial writes: for each i, take a monotonic timestamp, create, write
 *       and close DIR/fNNNNNNN, then read the tool's pipe until the line for
 *       that file arrives. Reports p50/p99 of that interval in microseconds.
 *       (Not from the close: the tool, woken on this CPU, often prints
 *       before close() has returned here.) -a HOW: how each file arrives:
 *       write (the default: written in place), rename (written in
 *       DIR.stage, then renamed into DIR) or link (written in DIR.stage,
 *       then hard-linked into DIR, as some publishers do).
 *   latency burst -d DIR -n N [-q SEC] -- TOOL...
 *       A writer process creates N files as fast as it can while this
 *       process reads the pipe. Reports the time until the last file was
 *       printed, files lost (not printed SEC seconds after the last output),
 *       duplicates and rescans. -D GIVE_UP: stop waiting GIVE_UP seconds
 *       after the writer ended even if the tool is still busy (gave_up=1).
 *   latency setup -p PROBE_DIR [-m MESSAGE] [-P] [-w WATCHES] -- TOOL...
 *       Time from spawning the tool until it says MESSAGE (on stdout or
 *       stderr), and/or (-P) until it prints a probe file that is created in
 *       PROBE_DIR every 10 ms. Then waits until the tool's inotify fds hold
 *       WATCHES watches (counted in /proc/PID/fdinfo) and reads VmRSS.
 *   latency idle -d DIR -t SEC -- TOOL...
 *       After the tool has shown it watches DIR, CPU time and voluntary
 *       context switches (wake-ups) of all its threads over SEC seconds.
 *   latency mkdirs -d DIR -n N [-q SEC] -- TOOL...
 *       As burst, but each file is DIR/dK/fK, written right after its
 *       directory DIR/dK was made: for recursive tools, files missed because
 *       their directory was not watched yet count as lost.
 *
 * Options for every mode:
 *   -o FIFO  the tool's records come from FIFO (made by bench/run, written
 *            by the tool's handlers, e.g. build/bench/note), not its stdout;
 *            stdout then goes to the log like stderr.
 *   -J       stdout is watchman's JSON (one object a line): the records are
 *            the strings of each "files" array.
 *   -i MS    write the probe files (warm-up, setup) every MS milliseconds,
 *            not every 20 (warm-up) or 10 (setup): for tools such as watchman
 *            that report only after a quiet spell.
 *   -W       the tool is a wrapper script: CPU, memory and watches are those
 *            of its descendants (the daemon and its client), not its own.
 *            Without -W they are those of the tool and its descendants.
 *
 * Every mode but setup first proves the tool is watching: it writes a probe
 * file DIR/wK every 20 ms until the tool prints one, then waits until the
 * tool has been quiet for 500 ms. Output records end in '\n' or '\0'; a record
 * names a file by its last path component, so "name", "dir/name" and
 * "/abs/dir/name" all count.
 *
 * The tool gets SIGTERM when this process dies (PR_SET_PDEATHSIG), and is
 * ended with SIGTERM (then SIGKILL after 2 s) when the scenario is over. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAX (4 << 20) /* watchman puts a whole burst on one line */
#define WARM_INTERVAL_NS (20 * 1000000LL)
#define WARM_QUIET_NS (500 * 1000000LL)
#define WARM_DEADLINE_NS (60 * 1000000000LL)
#define PROBE_INTERVAL_NS (10 * 1000000LL)

/* -i MS: the interval of the probe files, for tools that wait for a quiet
 * spell before they report (watchman's settle); 0 = the defaults above. */
static int64_t probe_every_ns;

/* A pipe from the tool and the bytes of its last, unfinished record. */
struct stream {
        int fd; /* -1 once the tool closed it */
        char record[RECORD_MAX];
        size_t length;
};

/* Everything known about the tool and what it printed so far. */
static struct {
        pid_t pid;
        struct stream out, err;
        const char *message;      /* setup: the line that says "watching" */
        int64_t message_ns;       /* when it came; 0 = not yet */
        long count;               /* number of fNNNNNNN files in the scenario */
        int64_t *seen_ns;         /* per file: when first printed; 0 = never */
        long seen, duplicates, rescans, others, warm_seen, probe_seen;
        int64_t probe_ns;         /* setup: first probe printed */
        int64_t last_output_ns;   /* any record at all */
        int64_t last_new_ns;      /* a file printed for the first time */
        char first_other[128];    /* the first record that was not understood */
        struct stream fifo;       /* -o: where the records come from; fd -1 if none */
        bool json;                /* -J */
        bool wrapper;             /* -W */
} tool;

static _Noreturn void fail(const char *format, ...)
{
        va_list ap;
        va_start(ap, format);
        fputs("latency: ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
        va_end(ap);
        if (tool.pid > 0)
                kill(tool.pid, SIGKILL);
        exit(1);
}

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
        struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Creates (or truncates) DIR/NAME, writes one line into it and closes it. */
static void write_file(const char *dir, const char *name)
{
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                fail("cannot create %s: %s", path, strerror(errno));
        if (write(fd, "ferry bench\n", 12) != 12)
                fail("cannot write %s: %s", path, strerror(errno));
        if (close(fd) < 0)
                fail("cannot close %s: %s", path, strerror(errno));
}

/* Parses "PREFIX<digits>" and returns the number, or -1. */
static long numbered(const char *name, char prefix)
{
        if (name[0] != prefix || !isdigit((unsigned char)name[1]))
                return -1;
        char *end;
        long n = strtol(name + 1, &end, 10);
        return *end == '\0' ? n : -1;
}

static void handle_name(char *record, int64_t t);
static void handle_json(char *record, int64_t t);

static void handle_record(struct stream *s, char *record, int64_t t)
{
        if (s == &tool.err || (s == &tool.out && tool.fifo.fd >= 0 && !tool.json)) {
                if (tool.message && !tool.message_ns && strstr(record, tool.message))
                        tool.message_ns = t;
                else
                        fprintf(stderr, "  [tool stderr] %s\n", record);
                return;
        }
        if (tool.message && !tool.message_ns && strstr(record, tool.message)) {
                tool.message_ns = t;
                return;
        }
        if (s == &tool.out && tool.json)
                handle_json(record, t);
        else
                handle_name(record, t);
}

/* Takes the strings of the "files" arrays of a line of watchman's JSON. File
 * names here are plain ASCII, so escapes are only skipped over. */
static void handle_json(char *record, int64_t t)
{
        char *p = strstr(record, "\"files\":");
        if (!p) {
                tool.last_output_ns = t;
                return;
        }
        p = strchr(p, '[');
        while (p && *p && *p != ']') {
                char *open = strchr(p, '"');
                if (!open)
                        break;
                char *close = open + 1;
                while (*close && *close != '"')
                        close += close[0] == '\\' && close[1] ? 2 : 1;
                if (!*close)
                        break;
                *close = '\0';
                handle_name(open + 1, t);
                p = close + 1;
                while (*p == ',' || *p == ' ')
                        p++;
        }
}

static void handle_name(char *record, int64_t t)
{
        tool.last_output_ns = t;
        const char *slash = strrchr(record, '/');
        const char *name = slash ? slash + 1 : record;
        long i;
        if ((i = numbered(name, 'f')) >= 0 && i < tool.count) {
                if (tool.seen_ns[i]) {
                        tool.duplicates++;
                } else {
                        tool.seen_ns[i] = t;
                        tool.seen++;
                        tool.last_new_ns = t;
                }
        } else if (numbered(name, 'w') >= 0) {
                tool.warm_seen++;
        } else if (numbered(name, 'p') >= 0) {
                if (!tool.probe_seen++)
                        tool.probe_ns = t;
        } else if (strncmp(record, "rescan", 6) == 0) {
                tool.rescans++;
        } else {
                if (!tool.others++) {
                        /* Kept for the report: one word, printable. */
                        snprintf(tool.first_other, sizeof tool.first_other, "%.100s", record);
                        for (char *c = tool.first_other; *c; c++)
                                if (!isgraph((unsigned char)*c))
                                        *c = '_';
                }
        }
}

/* Reads what is there on one pipe and hands out the complete records. */
static void drain(struct stream *s, int64_t t)
{
        for (;;) {
                char buf[65536];
                ssize_t n = read(s->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        close(s->fd);
                        s->fd = -1;
                        return;
                }
                for (ssize_t k = 0; k < n; k++) {
                        char c = buf[k];
                        if (c == '\n' || c == '\0') {
                                s->record[s->length] = '\0';
                                handle_record(s, s->record, t);
                                s->length = 0;
                        } else if (s->length < RECORD_MAX - 1) {
                                s->record[s->length++] = c;
                        }
                }
        }
}

/* Waits for output until the deadline (absolute, monotonic ns) and handles
 * it. Returns at the deadline or after the first batch of output. */
static void pump(int64_t deadline)
{
        struct pollfd fds[3] = {{.fd = tool.out.fd, .events = POLLIN}, {.fd = tool.err.fd, .events = POLLIN},
                                {.fd = tool.fifo.fd, .events = POLLIN}};
        if (tool.out.fd < 0)
                fail("the tool closed its output (it exited?)");
        int64_t left = deadline - now_ns();
        struct timespec ts = {0, 0};
        if (left > 0)
                ts = (struct timespec){.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        int n = ppoll(fds, 3, &ts, NULL);
        if (n < 0 && errno != EINTR)
                fail("poll: %s", strerror(errno));
        if (n <= 0)
                return;
        int64_t t = now_ns();
        if (fds[0].revents)
                drain(&tool.out, t);
        if (tool.err.fd >= 0 && fds[1].revents)
                drain(&tool.err, t);
        if (tool.fifo.fd >= 0 && fds[2].revents)
                drain(&tool.fifo, t);
}

static void spawn(char **argv)
{
        int out[2], err[2];
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                fail("pipe: %s", strerror(errno));
        pid_t parent = getpid();
        tool.pid = fork();
        if (tool.pid < 0)
                fail("fork: %s", strerror(errno));
        if (tool.pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(127);
                dup2(out[1], 1);
                dup2(err[1], 2);
                execvp(argv[0], argv);
                fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        tool.out.fd = out[0];
        tool.out.length = 0;
        tool.err.fd = err[0];
        tool.err.length = 0;
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
}

/* Ends the tool, and says how it ended if it did not wait for us. */
static void reap(void)
{
        int status;
        pid_t r = waitpid(tool.pid, &status, WNOHANG);
        if (r == tool.pid) {
                fprintf(stderr, "latency: the tool had exited by itself (status %d)\n", status);
                return;
        }
        kill(tool.pid, SIGTERM);
        for (int k = 0; k < 200; k++) {
                if (waitpid(tool.pid, &status, WNOHANG) == tool.pid)
                        return;
                sleep_ns(10 * 1000000LL);
        }
        kill(tool.pid, SIGKILL);
        waitpid(tool.pid, &status, 0);
}

/* Proves that the tool watches DIR: see the comment at the top. */
static void warm_up(const char *dir)
{
        int64_t start = now_ns(), next = start;
        long written = 0;
        while (tool.warm_seen == 0) {
                int64_t t = now_ns();
                if (t - start > WARM_DEADLINE_NS)
                        fail("the tool printed none of %ld probe files in %s within 60 s", written, dir);
                if (t >= next) {
                        char name[32];
                        snprintf(name, sizeof name, "w%ld", written++);
                        write_file(dir, name);
                        next += probe_every_ns ? probe_every_ns : WARM_INTERVAL_NS;
                }
                pump(next);
        }
        int64_t quiet_since = now_ns();
        long seen = tool.warm_seen;
        while (now_ns() - quiet_since < WARM_QUIET_NS) {
                pump(quiet_since + WARM_QUIET_NS);
                if (tool.warm_seen != seen) {
                        seen = tool.warm_seen;
                        quiet_since = now_ns();
                }
        }
}

static int compare_int64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double percentile_us(const int64_t *sorted, long n, double p)
{
        if (n == 0)
                return -1;
        long rank = (long)(p / 100.0 * n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return sorted[rank - 1] / 1000.0;
}

/* -a: how the measured files arrive in DIR. */
static const char *arrive = "write";

/* Publishes DIR/NAME as -a says: written in place, or written in DIR.stage
 * and then renamed or hard-linked into DIR. */
static void publish_file(const char *dir, const char *name)
{
        char stage[4096], from[4096 + 64], to[4096 + 64];

        if (strcmp(arrive, "write") == 0) {
                write_file(dir, name);
                return;
        }
        snprintf(stage, sizeof stage, "%s.stage", dir);
        if (mkdir(stage, 0755) < 0 && errno != EEXIST)
                fail("cannot make %s: %s", stage, strerror(errno));
        write_file(stage, name);
        snprintf(from, sizeof from, "%s/%s", stage, name);
        snprintf(to, sizeof to, "%s/%s", dir, name);
        if (strcmp(arrive, "rename") == 0 ? rename(from, to) < 0 : link(from, to) < 0)
                fail("cannot %s %s to %s: %s", arrive, from, to, strerror(errno));
}

static int run_latency(const char *dir, long n, double timeout_s)
{
        int64_t *from_start = calloc(n, sizeof *from_start);
        if (!from_start)
                fail("out of memory");
        warm_up(dir);
        long measured = 0, missed = 0;
        for (long i = 0; i < n; i++) {
                char name[32];
                snprintf(name, sizeof name, "f%07ld", i);
                int64_t t0 = now_ns();
                publish_file(dir, name);
                int64_t deadline = t0 + (int64_t)(timeout_s * 1e9);
                while (!tool.seen_ns[i] && now_ns() < deadline)
                        pump(deadline);
                if (!tool.seen_ns[i]) {
                        missed++;
                        continue;
                }
                from_start[measured++] = tool.seen_ns[i] - t0;
        }
        qsort(from_start, measured, sizeof *from_start, compare_int64);
        double sum = 0;
        for (long k = 0; k < measured; k++)
                sum += from_start[k] / 1000.0;
        printf("n=%ld measured=%ld missed=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f "
               "duplicates=%ld others=%ld\n",
               n, measured, missed, percentile_us(from_start, measured, 50), percentile_us(from_start, measured, 99),
               measured ? from_start[measured - 1] / 1000.0 : -1, measured ? sum / measured : -1,
               tool.duplicates, tool.others);
        free(from_start);
        return 0;
}

static int run_burst(const char *dir, long n, double quiet_s, bool nested, double give_up_s)
{
        warm_up(dir);
        /* The writer sends the time it finished through a pipe, so that the
         * reader loop below learns it exactly and without polling. */
        int done[2];
        if (pipe2(done, O_CLOEXEC | O_NONBLOCK) < 0)
                fail("pipe: %s", strerror(errno));
        int64_t start = now_ns(), writer_done = 0;
        pid_t writer = fork();
        if (writer < 0)
                fail("fork: %s", strerror(errno));
        if (writer == 0) {
                for (long i = 0; i < n; i++) {
                        char name[32];
                        snprintf(name, sizeof name, "f%07ld", i);
                        if (nested) {
                                char sub[4096];
                                snprintf(sub, sizeof sub, "%s/d%07ld", dir, i);
                                if (mkdir(sub, 0755) < 0)
                                        fail("cannot make %s: %s", sub, strerror(errno));
                                write_file(sub, name);
                        } else {
                                write_file(dir, name);
                        }
                }
                int64_t t = now_ns();
                _exit(write(done[1], &t, sizeof t) == sizeof t ? 0 : 1);
        }
        close(done[1]);
        int64_t quiet_ns = (int64_t)(quiet_s * 1e9), give_up_ns = (int64_t)(give_up_s * 1e9);
        bool gave_up = false;
        for (;;) {
                int64_t t = now_ns();
                if (!writer_done && read(done[0], &writer_done, sizeof writer_done) != sizeof writer_done)
                        writer_done = 0;
                if (tool.seen == n && t - tool.last_new_ns >= 1000000000LL)
                        break; /* all there; one more second to catch duplicates */
                int64_t last = tool.last_output_ns > writer_done ? tool.last_output_ns : writer_done;
                if (writer_done && t - last >= quiet_ns)
                        break;
                if (writer_done && give_up_ns > 0 && t - writer_done >= give_up_ns) {
                        gave_up = true;
                        break;
                }
                pump(t + 20 * 1000000LL);
        }
        int status;
        if (waitpid(writer, &status, 0) != writer || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail("the writer failed");
        double all_s = tool.seen ? (tool.last_new_ns - start) / 1e9 : -1;
        printf("n=%ld seen=%ld lost=%ld duplicates=%ld rescans=%ld others=%ld writer_s=%.3f last_s=%.3f "
               "rate=%.0f first_other=%s gave_up=%d\n",
               n, tool.seen, n - tool.seen, tool.duplicates, tool.rescans, tool.others, (writer_done - start) / 1e9,
               all_s, all_s > 0 ? tool.seen / all_s : 0, tool.others ? tool.first_other : "-", gave_up);
        return 0;
}

/* Reads "Key:   value kB" from /proc/PID/status. */
static long status_field(pid_t pid, const char *task, const char *key)
{
        char path[320], line[256];
        if (task)
                snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, task);
        else
                snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        long value = -1;
        size_t key_length = strlen(key);
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, key, key_length) == 0 && line[key_length] == ':')
                        value = atol(line + key_length + 1);
        if (f)
                fclose(f);
        return value;
}

#define TREE_MAX 256

/* The processes measured: the tool and its descendants, or with -W only its
 * descendants. Found from the parent pids in /proc/PID/stat. Returns the count. */
static int tree(pid_t *out)
{
        static pid_t pid[32768], parent[32768];
        int all = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d)) && all < 32768) {
                if (!isdigit((unsigned char)e->d_name[0]))
                        continue;
                char path[300], buf[1024];
                snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[n] = '\0';
                char *p = strrchr(buf, ')');
                int ppid;
                if (p && sscanf(p + 2, "%*c %d", &ppid) == 1) {
                        pid[all] = atoi(e->d_name);
                        parent[all++] = ppid;
                }
        }
        if (d)
                closedir(d);
        int count = 0;
        out[count++] = tool.pid;
        for (int k = 0; k < count && count < TREE_MAX; k++)
                for (int j = 0; j < all && count < TREE_MAX; j++)
                        if (parent[j] == out[k])
                                out[count++] = pid[j];
        if (tool.wrapper) {
                memmove(out, out + 1, (count - 1) * sizeof *out);
                count--;
        }
        return count;
}

/* Sums status_field over the measured processes. */
static long tree_status(const char *key)
{
        pid_t pids[TREE_MAX];
        int n = tree(pids);
        long sum = 0;
        for (int k = 0; k < n; k++) {
                long v = status_field(pids[k], NULL, key);
                if (v > 0)
                        sum += v;
        }
        return sum;
}

/* Counts the inotify watches held by all the tool's fds. */
static long count_watches(pid_t pid)
{
        char path[256];
        snprintf(path, sizeof path, "/proc/%d/fdinfo", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        long count = 0;
        struct dirent *e;
        static char line[4096];
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char file[512];
                snprintf(file, sizeof file, "%s/%s", path, e->d_name);
                FILE *f = fopen(file, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof line, f))
                        if (strncmp(line, "inotify wd:", 11) == 0)
                                count++;
                fclose(f);
        }
        closedir(d);
        return count;
}

static long tree_watches(void)
{
        pid_t pids[TREE_MAX];
        int n = tree(pids);
        long sum = 0;
        for (int k = 0; k < n; k++) {
                long v = count_watches(pids[k]);
                if (v > 0)
                        sum += v;
        }
        return sum;
}

static int run_setup(char **argv, const char *probe_dir, const char *message, bool probe, long watches)
{
        tool.message = message;
        int64_t start = now_ns(), next = start, deadline = start + 600 * 1000000000LL;
        spawn(argv);
        long probes = 0;
        while ((message && !tool.message_ns) || (probe && !tool.probe_seen)) {
                int64_t t = now_ns();
                if (t > deadline)
                        fail("no sign of watching after 600 s");
                if (probe && t >= next) {
                        char name[32];
                        snprintf(name, sizeof name, "p%ld", probes++);
                        write_file(probe_dir, name);
                        next += probe_every_ns ? probe_every_ns : PROBE_INTERVAL_NS;
                }
                pump(probe ? next : deadline);
        }
        int64_t ready = now_ns();
        long at_ready = tree_watches(), now_count = at_ready;
        while (watches > 0 && now_count < watches && now_ns() < deadline) {
                sleep_ns(10 * 1000000LL);
                now_count = tree_watches();
        }
        int64_t complete = at_ready < watches ? now_ns() : ready;
        sleep_ns(200 * 1000000LL);
        printf("message_ms=%.1f probe_ms=%.1f watches_at_ready=%ld watches=%ld complete_ms=%.1f rss_kb=%ld hwm_kb=%ld\n",
               tool.message_ns ? (tool.message_ns - start) / 1e6 : -1.0,
               tool.probe_seen ? (tool.probe_ns - start) / 1e6 : -1.0, at_ready, now_count,
               (complete - start) / 1e6,
               tree_status("VmRSS"), tree_status("VmHWM"));
        return 0;
}

/* CPU time of the whole process (utime + stime, in clock ticks) from /proc/PID/stat. */
static long cpu_ticks(pid_t pid)
{
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long utime = 0, stime = 0;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                return -1;
        return (long)(utime + stime);
}

/* Sums voluntary context switches and on-CPU nanoseconds (schedstat) over all threads. */
static void thread_totals(pid_t pid, long *ret_switches, long long *ret_cpu_ns, long *ret_threads)
{
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        long switches = 0, threads = 0;
        long long cpu = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                threads++;
                switches += status_field(pid, e->d_name, "voluntary_ctxt_switches");
                char file[320];
                snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
                FILE *f = fopen(file, "re");
                long long ns = 0;
                if (f && fscanf(f, "%lld", &ns) == 1)
                        cpu += ns;
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
        *ret_switches += switches;
        *ret_cpu_ns += cpu;
        *ret_threads += threads;
}

/* cpu_ticks and thread_totals summed over the measured processes. */
static void tree_totals(long *ticks, long *switches, long long *cpu_ns, long *threads)
{
        pid_t pids[TREE_MAX];
        int n = tree(pids);
        *ticks = *switches = *cpu_ns = *threads = 0;
        for (int k = 0; k < n; k++) {
                long t = cpu_ticks(pids[k]);
                if (t > 0)
                        *ticks += t;
                thread_totals(pids[k], switches, cpu_ns, threads);
        }
}

static int run_idle(const char *dir, double seconds)
{
        warm_up(dir);
        sleep_ns(1000000000LL);
        long ticks0, ticks1, switches0, switches1, threads;
        long long ns0, ns1;
        tree_totals(&ticks0, &switches0, &ns0, &threads);
        /* The tool's pipes are only read if it prints: it should not. */
        int64_t end = now_ns() + (int64_t)(seconds * 1e9);
        while (now_ns() < end)
                pump(end);
        tree_totals(&ticks1, &switches1, &ns1, &threads);
        long hz = sysconf(_SC_CLK_TCK);
        printf("seconds=%.0f cpu_ms=%.0f sched_cpu_us=%.0f wakeups=%ld threads=%ld output_lines=%ld\n", seconds,
               (ticks1 - ticks0) * 1000.0 / hz, (ns1 - ns0) / 1000.0, switches1 - switches0, threads,
               tool.others + tool.seen + tool.rescans);
        return 0;
}

static _Noreturn void usage(void)
{
        fputs("usage: latency latency -d DIR -n N [-T SEC] [-a write|rename|link] -- TOOL...\n"
              "       latency burst -d DIR -n N [-q SEC] [-D SEC] -- TOOL...\n"
              "       latency setup -p PROBE_DIR [-m MESSAGE] [-P] [-w WATCHES] -- TOOL...\n"
              "       latency idle -d DIR -t SEC -- TOOL...\n"
              "       latency mkdirs -d DIR -n N [-q SEC] -- TOOL...\n"
              "options for all: -o FIFO (records from FIFO), -J (watchman JSON), -W (measure descendants)\n",
              stderr);
        exit(2);
}

int main(int argc, char **argv)
{
        if (argc < 2)
                usage();
        const char *mode = argv[1], *dir = NULL, *message = NULL;
        long n = 0, watches = 0;
        double timeout_s = 10, quiet_s = 5, seconds = 60, give_up_s = 0;
        bool probe = false;
        int opt;
        optind = 2;
        const char *fifo = NULL;
        while ((opt = getopt(argc, argv, "+d:n:T:q:p:m:Pw:t:o:JWD:i:a:")) != -1) {
                switch (opt) {
                case 'o':
                        fifo = optarg;
                        break;
                case 'a':
                        if (strcmp(optarg, "write") != 0 && strcmp(optarg, "rename") != 0 &&
                            strcmp(optarg, "link") != 0)
                                usage();
                        arrive = optarg;
                        break;
                case 'J':
                        tool.json = true;
                        break;
                case 'W':
                        tool.wrapper = true;
                        break;
                case 'i':
                        probe_every_ns = (int64_t)(atof(optarg) * 1e6);
                        break;
                case 'D':
                        give_up_s = atof(optarg);
                        break;
                case 'd':
                case 'p':
                        dir = optarg;
                        break;
                case 'n':
                        n = atol(optarg);
                        break;
                case 'T':
                        timeout_s = atof(optarg);
                        break;
                case 'q':
                        quiet_s = atof(optarg);
                        break;
                case 'm':
                        message = optarg;
                        break;
                case 'P':
                        probe = true;
                        break;
                case 'w':
                        watches = atol(optarg);
                        break;
                case 't':
                        seconds = atof(optarg);
                        break;
                default:
                        usage();
                }
        }
        char **tool_argv = argv + optind;
        if (!dir || !tool_argv[0])
                usage();
        signal(SIGPIPE, SIG_IGN);
        tool.fifo.fd = -1;
        if (fifo) {
                /* Read and write: the FIFO never reads as closed when the
                 * handlers that write it come and go. */
                tool.fifo.fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (tool.fifo.fd < 0)
                        fail("cannot open %s: %s", fifo, strerror(errno));
        }
        tool.count = n;
        tool.seen_ns = calloc(n > 0 ? n : 1, sizeof *tool.seen_ns);
        if (!tool.seen_ns)
                fail("out of memory");
        int r;
        if (strcmp(mode, "setup") == 0) {
                if (!message && !probe)
                        usage();
                r = run_setup(tool_argv, dir, message, probe, watches);
        } else {
                spawn(tool_argv);
                if (strcmp(mode, "latency") == 0 && n > 0)
                        r = run_latency(dir, n, timeout_s);
                else if (strcmp(mode, "burst") == 0 && n > 0)
                        r = run_burst(dir, n, quiet_s, false, give_up_s);
                else if (strcmp(mode, "mkdirs") == 0 && n > 0)
                        r = run_burst(dir, n, quiet_s, true, give_up_s);
                else if (strcmp(mode, "idle") == 0)
                        r = run_idle(dir, seconds);
                else
                        usage();
        }
        fflush(stdout);
        reap();
        return r;
}
