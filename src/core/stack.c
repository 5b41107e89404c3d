/*
 * stack.c - goroutine stacks: reserve big, commit lazily, guard cheaply,
 * reuse hot.
 *
 * Design.  C code cannot have its stack moved (pointers into it are not
 * known to anyone), so a goroutine's stack is reserved at its full limit
 * (GORT_STACK_MAX, default 1 MiB) and committed page by page by the kernel
 * as it is touched.  A goroutine that does little holds one page: the
 * initial frame and this header sit in the top page.  Stacks are marked
 * MADV_NOHUGEPAGE so that transparent huge pages never commit 2 MiB for a
 * 4 KiB stack.
 *
 *   lo                 lo+page                                  hi  top
 *   | guard (or canary) | usable, grows down  <-----------------|hdr|
 *
 * Guards.  Each mprotect'ed guard splits a mapping in two, and the kernel
 * caps mappings at vm.max_map_count (65530 by default), which stops other
 * runtimes near 32k goroutines.  So, in order of preference:
 *   1. MADV_GUARD_INSTALL (Linux 6.13+): a guard marker in the page
 *      tables, no extra mapping at all;
 *   2. mprotect(PROT_NONE) guards while they use at most a quarter of
 *      max_map_count;
 *   3. past that, canary words at the top of the bottom page, checked
 *      whenever the goroutine switches out and in the fault handler, with
 *      a one-line warning naming vm.max_map_count.
 * GORT_STACK_GUARD=madvise|mprotect|canary forces a mode (for tests).
 * Whatever the mode, each chunk of 16 stacks has one guard page below it,
 * so that a canary-mode overflow that runs through its neighbours still
 * faults before leaving the chunk.  MADV_GUARD_INSTALL is trusted only
 * after a probe shows that it guards (qemu-user accepts it and does not).
 *
 * Reuse.  Touching a fresh page costs microseconds on virtual machines, so
 * a finished goroutine's stack goes back hot to its P's cache (owner-only,
 * no lock), overflowing into a global pool (pool_lock), and past that is
 * unmapped.  A stack whose goroutine ran long enough to have grown deep
 * (the caller decides: see proc.c) is trimmed with MADV_DONTNEED below its
 * top two pages before reuse, so one deep recursion does not pin memory.
 *
 * Overflow.  A SIGSEGV handler on an alternate signal stack (one per
 * worker thread) recognises a fault in the current goroutine's guard page,
 * or a broken canary, and stops the program with Go's message.  Any other
 * SIGSEGV is handed to the previous handler, or re-raised with the default
 * action, so the program crashes exactly as it would without the runtime.
 *
 * Invariants:
 *   - a stack is owned by exactly one of: a goroutine, one P's cache, the
 *     global pool;
 *   - s->lo, s->hi and s->guard never change after allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define DEFAULT_STACK_MAX (1024 * 1024)
#define MIN_STACK_MAX (16 * 1024)
#define STACKS_PER_CHUNK 16       /* one mmap reserves this many stacks */
#define P_CACHE_MAX 32
#define POOL_MAX 1024
#define ALTSTACK_SIZE (64 * 1024)
#define CANARY_WORDS 4
static const uint64_t canary_value = 0x676f2d7274c0ffeeULL;

static struct {
    size_t page;
    size_t limit;          /* usable bytes, page multiple */
    size_t map_size;       /* guard page + limit */
    _Atomic int mode;      /* enum gort_guard for new stacks */
    long mprotect_budget;  /* stacks allowed an mprotect guard */
    _Atomic long nmprotect;
    pthread_mutex_t pool_lock;
    struct gort_stack *pool;   /* pool_lock: trimmed (or never deep) */
    struct gort_stack *dirty;  /* pool_lock: may hold deep pages, released
                                  since the last scavenge */
    struct gort_stack *dirty_old; /* pool_lock: ... and before it */
    size_t npool;              /* pool_lock */
    uint64_t pool_allocs;      /* pool_lock: allocations from the pools */
    uint64_t scavenge_seen;    /* monitor only */
    struct gort_stack *chunk;  /* pool_lock: unused stacks of the last chunk */
    struct sigaction old_segv;
    struct sigaction old_bus;
} st = {.pool_lock = GORT_MUTEX_INITIALIZER};

size_t gort__stack_limit(void) { return st.limit; }

/* "1M", "512K", "65536": a byte count with an optional K/M/G suffix. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    return *end ? 0 : (size_t)v;
}

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/*
 * Does MADV_GUARD_INSTALL really guard?  Some environments (qemu-user 7.2)
 * accept the advice and install nothing.  The kernel refuses to read a
 * guard page on our behalf: write(2) from it into a pipe must fail with
 * EFAULT.
 */
static bool madvise_guard_works(void)
{
    bool ok = false;
    int fds[2];
    void *p = mmap(NULL, st.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    if (madvise(p, st.page, MADV_GUARD_INSTALL) == 0 && pipe2(fds, O_CLOEXEC) == 0) {
        ok = write(fds[1], p, 1) < 0 && errno == EFAULT;
        close(fds[0]);
        close(fds[1]);
    }
    munmap(p, st.page);
    return ok;
}

static void handle_segv(int sig, siginfo_t *si, void *uctx);

void gort__stack_init(void)
{
    const char *env = getenv("GORT_STACK_MAX");
    const char *mode = getenv("GORT_STACK_GUARD");
    size_t want = DEFAULT_STACK_MAX;
    struct sigaction sa;

    st.page = (size_t)sysconf(_SC_PAGESIZE);
    if (env) {
        want = parse_size(env);
        if (want == 0) {
            fprintf(stderr, "libgo-rt: ignoring GORT_STACK_MAX=%s (want bytes with an optional K, M or G)\n", env);
            want = DEFAULT_STACK_MAX;
        }
    }
    if (want < MIN_STACK_MAX)
        want = MIN_STACK_MAX;
    st.limit = (want + st.page - 1) & ~(st.page - 1);
    st.map_size = st.limit + st.page;
    st.mprotect_budget = read_max_map_count() / 4;
    st.mode = madvise_guard_works() ? GUARD_MADVISE : GUARD_MPROTECT;
    if (mode && strcmp(mode, "mprotect") == 0)
        st.mode = GUARD_MPROTECT;
    else if (mode && strcmp(mode, "canary") == 0)
        st.mode = GUARD_CANARY;

    /* Load the unwinder now: backtrace() dlopens libgcc on first use,
       which the signal handler must not do. */
    void *frames[2];
    backtrace(frames, 2);

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handle_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &st.old_segv);
    sigaction(SIGBUS, &sa, &st.old_bus);
}

static void warn_canary(void)
{
    static _Atomic int warned;
    if (!atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
        fprintf(stderr, "libgo-rt: vm.max_map_count limits guard pages; further goroutine stacks use canaries\n");
}

static void write_canary(struct gort_stack *s)
{
    uint64_t *c = (uint64_t *)(s->lo + st.page) - CANARY_WORDS;
    for (int i = 0; i < CANARY_WORDS; i++)
        c[i] = canary_value;
}

bool gort__stack_canary_ok(const struct gort_stack *s)
{
    const uint64_t *c = (const uint64_t *)(s->lo + st.page) - CANARY_WORDS;
    for (int i = 0; i < CANARY_WORDS; i++)
        if (c[i] != canary_value)
            return false;
    return true;
}

/* Puts a guard at the bottom of a fresh stack, degrading the mode as the
   kernel or the map budget demands. */
static void install_guard(struct gort_stack *s)
{
    int mode = atomic_load_explicit(&st.mode, memory_order_relaxed);
    if (mode == GUARD_MADVISE) {
        if (madvise((void *)s->lo, st.page, MADV_GUARD_INSTALL) == 0) {
            s->guard = GUARD_MADVISE;
            return;
        }
        atomic_store_explicit(&st.mode, GUARD_MPROTECT, memory_order_relaxed);
        mode = GUARD_MPROTECT;
    }
    if (mode == GUARD_MPROTECT) {
        long n = atomic_fetch_add_explicit(&st.nmprotect, 1, memory_order_relaxed);
        if (n < st.mprotect_budget && mprotect((void *)s->lo, st.page, PROT_NONE) == 0) {
            s->guard = GUARD_MPROTECT;
            return;
        }
        atomic_fetch_sub_explicit(&st.nmprotect, 1, memory_order_relaxed);
        atomic_store_explicit(&st.mode, GUARD_CANARY, memory_order_relaxed);
        warn_canary();
    }
    s->guard = GUARD_CANARY;
    write_canary(s);
}

/* Reserves a chunk of stacks with one mmap; returns the first and leaves
   the rest on st.chunk.  Called with pool_lock held. */
static struct gort_stack *map_chunk(void)
{
    size_t n = STACKS_PER_CHUNK;
    uint8_t *base = mmap(NULL, st.page + n * st.map_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    madvise(base, st.page + n * st.map_size, MADV_NOHUGEPAGE);
    /* A guard below the whole chunk, whatever the stacks' own mode: an
       overflow from a canary-guarded stack runs down through its
       neighbours (nothing faults there) but stops here, where the fault
       handler sees a stack pointer below the goroutine's stack.  One page
       per chunk; mprotect'ed only where guard markers do not work. */
    if (atomic_load_explicit(&st.mode, memory_order_relaxed) != GUARD_MADVISE ||
        madvise(base, st.page, MADV_GUARD_INSTALL) != 0)
        mprotect(base, st.page, PROT_NONE);
    base += st.page;
    for (size_t i = n; i-- > 0;) {
        uintptr_t lo = (uintptr_t)base + i * st.map_size; /* base: past the chunk guard */
        uintptr_t top = lo + st.map_size;
        struct gort_stack *s = (struct gort_stack *)(top - 64);
        s->lo = lo;
        s->hi = (uintptr_t)s & ~(uintptr_t)15;
        s->guard = 0;
        s->dirty = 0;
        s->next = i ? st.chunk : NULL;
        if (i)
            st.chunk = s;
        else
            return s;
    }
    return NULL;
}

static struct gort_stack *stack_new(void)
{
    struct gort_stack *s;
    pthread_mutex_lock(&st.pool_lock);
    /* Dirty stacks first: their pages are committed, so reuse is free. */
    if ((s = st.dirty) != NULL) {
        st.dirty = s->next;
    } else if ((s = st.dirty_old) != NULL) {
        st.dirty_old = s->next;
    } else if ((s = st.pool) != NULL) {
        st.pool = s->next;
        st.npool--;
    }
    if (s) {
        st.pool_allocs++;
        pthread_mutex_unlock(&st.pool_lock);
        return s;
    }
    s = st.chunk;
    if (s)
        st.chunk = s->next;
    else
        s = map_chunk();
    pthread_mutex_unlock(&st.pool_lock);
    if (s)
        install_guard(s);
    return s;
}

struct gort_stack *gort__stack_alloc(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_p *p = m ? m->p : NULL;
    struct gort_stack *s;
    if (p && (s = p->stack_cache) != NULL) {
        p->stack_cache = s->next;
        p->nstack_cache--;
        return s;
    }
    return stack_new();
}

void gort__stack_trim(struct gort_stack *s)
{
    /* Keep the top two pages: the next goroutine touches them at once. */
    uintptr_t from = s->lo + st.page, to = (s->hi & ~(uintptr_t)(st.page - 1)) - st.page;
    if (to > from)
        madvise((void *)from, to - from, MADV_DONTNEED);
    s->dirty = 0;
}

static void stack_unmap(struct gort_stack *s)
{
    if (s->guard == GUARD_MPROTECT)
        atomic_fetch_sub_explicit(&st.nmprotect, 1, memory_order_relaxed);
    munmap((void *)s->lo, st.map_size);
}

/*
 * A stack whose goroutine may have grown it deep goes to the global dirty
 * list, never to a P cache, so that the monitor can give its pages back in
 * the background (gort__stack_scavenge) instead of this hot path paying
 * for an madvise.  The pools are unbounded here; the scavenger unmaps
 * what stays unused.
 */
void gort__stack_release(struct gort_stack *s, bool deep)
{
    struct gort_m *m = gort__m_self();
    struct gort_p *p = m ? m->p : NULL;
    if (s->guard == GUARD_CANARY && !gort__stack_canary_ok(s))
        write_canary(s);
    if (!deep && p && p->nstack_cache < P_CACHE_MAX) {
        s->next = p->stack_cache;
        p->stack_cache = s;
        p->nstack_cache++;
        return;
    }
    s->dirty = deep;
    pthread_mutex_lock(&st.pool_lock);
    if (deep) {
        s->next = st.dirty;
        st.dirty = s;
    } else {
        s->next = st.pool;
        st.pool = s;
        st.npool++;
    }
    pthread_mutex_unlock(&st.pool_lock);
}

/*
 * Called by the monitor every ~100 ms.  A dirty stack that stayed unused
 * in the pool for a whole period is trimmed (one that is reused at once
 * never costs an madvise: its committed pages are exactly what the next
 * goroutine wants).  When the pools went unused for a period, clean stacks
 * beyond POOL_MAX are unmapped, a batch at a time (Go's scavenger, in
 * miniature).
 */
void gort__stack_scavenge(void)
{
    struct gort_stack *batch, *s;
    bool idle;
    int n = 0;
    pthread_mutex_lock(&st.pool_lock);
    idle = st.pool_allocs == st.scavenge_seen;
    st.scavenge_seen = st.pool_allocs;
    batch = st.dirty_old;
    st.dirty_old = st.dirty;
    st.dirty = NULL;
    pthread_mutex_unlock(&st.pool_lock);
    for (s = batch; s; s = s->next)
        gort__stack_trim(s);
    pthread_mutex_lock(&st.pool_lock);
    while (batch) {
        s = batch;
        batch = s->next;
        s->next = st.pool;
        st.pool = s;
        st.npool++;
    }
    while (idle && st.npool > POOL_MAX && n < 4096) {
        s = st.pool;
        st.pool = s->next;
        st.npool--;
        s->next = batch;
        batch = s;
        n++;
    }
    pthread_mutex_unlock(&st.pool_lock);
    while (batch) {
        s = batch;
        batch = s->next;
        stack_unmap(s);
    }
}

/* ---- overflow detection --------------------------------------------- */

void gort__stack_thread_init(void)
{
    struct gort_m *m = gort__m_self();
    stack_t ss;
    if (!m || m->altstack)
        return;
    m->altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->altstack == MAP_FAILED) {
        m->altstack = NULL;
        return;
    }
    ss.ss_sp = m->altstack;
    ss.ss_size = ALTSTACK_SIZE;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
}

void gort__stack_thread_fini(void)
{
    struct gort_m *m = gort__m_self();
    stack_t ss = {.ss_flags = SS_DISABLE};
    if (!m || !m->altstack)
        return;
    sigaltstack(&ss, NULL);
    munmap(m->altstack, ALTSTACK_SIZE);
    m->altstack = NULL;
}

static size_t append(char *buf, size_t n, const char *s)
{
    size_t l = strlen(s);
    memcpy(buf + n, s, l);
    return n + l;
}

static size_t append_u64(char *buf, size_t n, uint64_t v)
{
    char tmp[24];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[n++] = tmp[--k];
    return n;
}

_Noreturn static void overflow(struct gort_g *g)
{
    char msg[128];
    size_t n = append(msg, 0, "stack overflow in goroutine ");
    n = append_u64(msg, n, g->id);
    n = append(msg, n, " (limit ");
    n = append_u64(msg, n, st.limit);
    n = append(msg, n, " bytes)");
    msg[n] = 0;
    gort__fatal_signal_safe(msg);
}

/* Called on every switch away from a canary-guarded stack. */
void gort__stack_check(struct gort_g *g)
{
    if (!gort__stack_canary_ok(g->stack))
        overflow(g);
}

/* The interrupted stack pointer, from the signal's machine context. */
static uintptr_t fault_sp(void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
    return (uintptr_t)uc->uc_mcontext.sp;
#endif
}

static bool is_overflow(struct gort_g *g, uintptr_t addr, uintptr_t sp)
{
    const struct gort_stack *s = g->stack;
    if (!s)
        return false;
    /* The goroutine's stack pointer left its usable region: it ran past
       the bottom (with canaries, frames may have skipped over the canary
       page into a neighbouring stack before anything faulted). */
    if (sp < s->lo + st.page)
        return true;
    /* The guard page, or (canary stacks) just below or in the bottom page. */
    if (addr >= s->lo - st.page && addr < s->lo + st.page)
        return true;
    return s->guard == GUARD_CANARY && !gort__stack_canary_ok(s);
}

static void handle_segv(int sig, siginfo_t *si, void *uctx)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL;
    struct sigaction *old = sig == SIGSEGV ? &st.old_segv : &st.old_bus;

    if (g && is_overflow(g, (uintptr_t)si->si_addr, fault_sp(uctx)))
        overflow(g);
    /* Not ours: behave as if the runtime were not there. */
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return; the faulting instruction
       runs again and the kernel delivers the signal for real. */
    signal(sig, SIG_DFL);
}
