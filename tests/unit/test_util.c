/*
 * test_util.c - the harness the unit tests share; see test_util.h for what
 * each helper is for and how the tests use it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <gort.h>

#include "test_util.h"

/* ---- joining from the test thread ---------------------------------------- */

int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Polls until *v >= target; false after timeout_ms. */
bool wait_for(_Atomic long *v, long target, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (atomic_load(v) < target) {
        if (mono_ns() > deadline)
            return false;
        usleep(1000);
    }
    return true;
}

/* Polls until at most n goroutines are live; false after timeout_ms. */
bool wait_goroutines(size_t n, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (go_num_goroutines() > n) {
        if (mono_ns() > deadline)
            return false;
        usleep(1000);
    }
    return true;
}

/* The kernel's id of the calling thread: a system call, so that no
   compiler can reuse a value computed before a switch. */
long thread_id(void)
{
    return syscall(SYS_gettid);
}

bool wait_for_int(_Atomic int *v, int target, int64_t timeout_ns)
{
    int64_t deadline = go_now() + timeout_ns;
    while (atomic_load_explicit(v, memory_order_acquire) < target) {
        if (go_now() > deadline)
            return false;
        usleep(200);
    }
    return true;
}

/* ---- failures recorded off the test thread ------------------------------ */

static _Atomic int failures;
static char first_failure[256];

void note_failure(const char *file, int line, const char *what)
{
    if (atomic_fetch_add(&failures, 1) == 0)
        snprintf(first_failure, sizeof first_failure, "%s:%d: %s", file,
                 line, what);
}

int reset_failures(void **state)
{
    (void)state;
    atomic_store(&failures, 0);
    first_failure[0] = 0;
    return 0;
}

int check_failures(void **state)
{
    (void)state;
    if (atomic_load(&failures) != 0) {
        fprintf(stderr, "recorded failure: %s (%d in all)\n", first_failure,
                atomic_load(&failures));
        return -1;
    }
    return 0;
}

int recorded_failures(void)
{
    return atomic_load(&failures);
}

/* ---- go fn(arg) ------------------------------------------------------------ */

struct closure {
    void (*fn)(void *);
    void *arg;
    wg_t *wg;
};

static void closure_run(void *p)
{
    struct closure c = *(struct closure *)p;

    free(p);
    c.fn(c.arg);
    if (c.wg != NULL)
        wg_done(c.wg);
}

/* A closure for fn(arg), already counted in wg (may be NULL). */
static struct closure *closure_new(wg_t *wg, void (*fn)(void *), void *arg)
{
    struct closure *c = malloc(sizeof *c);

    assert_non_null(c);
    c->fn = fn;
    c->arg = arg;
    c->wg = wg;
    if (wg != NULL)
        wg_add(wg, 1);
    return c;
}

void spawn(wg_t *wg, void (*fn)(void *), void *arg)
{
    assert_int_equal(go_spawn(closure_run, closure_new(wg, fn, arg)), 0);
}

static void *thread_run(void *p)
{
    closure_run(p);
    return NULL;
}

void spawn_thread(wg_t *wg, void (*fn)(void *), void *arg)
{
    struct closure *c = closure_new(wg, fn, arg);
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, thread_run, c), 0);
    pthread_detach(t);
}

/* ---- a function in a forked child ---------------------------------------- */

int process_threads(void)
{
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

int base_threads = 1; /* threads at start, set in main */

bool fork_works(void)
{
    static int cached = -1;
    pid_t pid;
    int status;
    if (cached >= 0)
        return cached;
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        _exit(0);
    cached = 0;
    if (pid < 0)
        return false;
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            cached = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            return cached;
        }
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "note: a forked child does not exit here (emulator?); "
                    "child-process tests are skipped\n");
    return false;
}

static void drain(int fd, char *buf, size_t cap, size_t *n, bool *open)
{
    char tmp[4096];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r <= 0) {
        *open = false;
        return;
    }
    if (*n + 1 < cap) {
        size_t k = (size_t)r < cap - 1 - *n ? (size_t)r : cap - 1 - *n;
        memcpy(buf + *n, tmp, k);
        *n += k;
        buf[*n] = 0;
    }
}

void run_child(int (*fn)(void), const char *const *env, int timeout_s, struct child *c)
{
    int po[2], pe[2];
    pid_t pid;
    bool oopen = true, eopen = true;
    int64_t deadline;
    struct timespec ts;

    /* See above: the parent must not have started the runtime (no more
       threads than at start: an emulator may have one of its own). */
    assert_int_equal(process_threads(), base_threads);
    memset(c, 0, offsetof(struct child, out));
    c->out[0] = c->err[0] = 0;
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        /* cmocka catches these; the child must die of them as a plain
           program would. */
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq) {
                char name[64];
                size_t k = (size_t)(eq - env[i]);
                memcpy(name, env[i], k < 63 ? k : 63);
                name[k < 63 ? k : 63] = 0;
                setenv(name, eq + 1, 1);
            } else {
                unsetenv(env[i]);
            }
        }
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        int rc = fn();
        fflush(NULL);
        _exit(rc);
    }
    close(po[1]);
    close(pe[1]);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (int64_t)timeout_s * 1000;
    while (oopen || eopen) {
        struct pollfd fds[2] = {{oopen ? po[0] : -1, POLLIN, 0}, {eopen ? pe[0] : -1, POLLIN, 0}};
        int64_t now;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now >= deadline) {
            c->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, (int)(deadline - now)) <= 0)
            continue;
        if (fds[0].revents)
            drain(po[0], c->out, sizeof c->out, &c->nout, &oopen);
        if (fds[1].revents)
            drain(pe[0], c->err, sizeof c->err, &c->nerr, &eopen);
    }
    close(po[0]);
    close(pe[0]);
    if (!c->timed_out) {
        /* Output closed: the child is exiting; give it the rest of the time. */
        for (;;) {
            int64_t now;
            if (waitpid(pid, &c->status, WNOHANG) == pid)
                return;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            if (now >= deadline)
                break;
            usleep(1000);
        }
        c->timed_out = true;
        kill(pid, SIGKILL);
    }
    waitpid(pid, &c->status, 0);
}

void print_child(const char *what, const struct child *c)
{
    fprintf(stderr, "--- %s: %s", what, c->timed_out ? "timed out" : "");
    if (!c->timed_out && WIFEXITED(c->status))
        fprintf(stderr, "exit %d", WEXITSTATUS(c->status));
    if (!c->timed_out && WIFSIGNALED(c->status))
        fprintf(stderr, "signal %d (%s)", WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
    fprintf(stderr, "\n--- stdout:\n%s\n--- stderr:\n%s\n---\n", c->out, c->err);
}

/* The child was killed by signal sig (and did not time out). */
bool died_of(const struct child *c, int sig)
{
    return !c->timed_out && WIFSIGNALED(c->status) && WTERMSIG(c->status) == sig;
}

bool exited_with(const struct child *c, int code)
{
    return !c->timed_out && WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

/* Value of "key=<number>" in the child's stdout, or -1. */
long long child_value(const struct child *c, const char *key)
{
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, "%s=", key);
    for (p = c->out; (p = strstr(p, pat)) != NULL; p++)
        if (p == c->out || p[-1] == '\n')
            return strtoll(p + strlen(pat), NULL, 10);
    return -1;
}

/* ---- a named scenario in a fresh copy of this binary --------------------- */

char *exec_scenario(const char *name, int *sig)
{
    int p[2];
    pid_t pid;
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    int status;

    assert_non_null(out);
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execl("/proc/self/exe", "/proc/self/exe", "--child", name, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        ssize_t n = read(p[0], out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = 0;
    close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return out;
}

void expect_panic(const char *scenario, const char *message)
{
    int sig;
    char *err = exec_scenario(scenario, &sig);

    if (strstr(err, message) == NULL || strstr(err, "goroutine ") == NULL
        || sig != SIGABRT)
        fail_msg("scenario %s: signal %d, stderr:\n%s", scenario, sig, err);
    free(err);
}
