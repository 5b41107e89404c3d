/* ctest: LABELS unit;arch TIMEOUT 60 STATIC_ONLY */
/*
 * test_arch.c - the machine context switch (arch/), white-box.
 *
 * Two hand-made contexts (this thread's own, and one built with
 * gort__ctx_make on an mmap'ed stack) switch back and forth through
 * gort__ctx_switch.  Each side loads every callee-saved register with a
 * pattern of its own just before the switch and stores them just after
 * (arch_regs_switch, in assembly below: C cannot pin callee-saved
 * registers across a call), and sets its own floating-point control word,
 * so a switch that forgets or swaps a register shows up as a mismatch.
 *
 * The fresh context's entry is an assembly probe that records the stack
 * pointer at entry before jumping to C, so the ABI's alignment is checked
 * exactly, and then again from C (an aligned local and a vector store).
 *
 * No runtime is started: these tests use arch/ alone.  Nothing is asserted
 * on the fresh context's stack (cmocka longjmps): it records, the test's
 * own context asserts.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"

#define STACK_SIZE (256 * 1024)
#define ROUNDS 10000

/* ---- assembly helpers ------------------------------------------------- */

/*
 * void arch_regs_switch(void **save, void *to, const uint64_t *in, uint64_t *out);
 *
 * Saves the caller's callee-saved registers, loads them from in[], calls
 * gort__ctx_switch(save, to), and when this context is resumed stores the
 * same registers to out[], then restores the caller's and returns.
 *
 * x86-64, in[]/out[]: rbx rbp r12 r13 r14 r15                (NREGS 6)
 * AArch64, in[]/out[]: x19..x28, x29, d8..d15                (NREGS 19)
 *
 * arch_entry_probe: entry of the fresh context; stores the stack pointer
 * as it is on entry into probe_sp, then tail-calls co_entry(arg).
 */
#if defined(__x86_64__)
#define NREGS 6
__asm__(
    "    .text\n"
    "    .globl arch_regs_switch\n"
    "    .type arch_regs_switch, @function\n"
    "    .p2align 4\n"
    "arch_regs_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    pushq %rcx\n" /* out; 7 pushes keep rsp 16-aligned for the call */
    "    movq 0(%rdx), %rbx\n"
    "    movq 8(%rdx), %rbp\n"
    "    movq 16(%rdx), %r12\n"
    "    movq 24(%rdx), %r13\n"
    "    movq 32(%rdx), %r14\n"
    "    movq 40(%rdx), %r15\n"
    "    call gort__ctx_switch\n"
    "    popq %rcx\n"
    "    movq %rbx, 0(%rcx)\n"
    "    movq %rbp, 8(%rcx)\n"
    "    movq %r12, 16(%rcx)\n"
    "    movq %r13, 24(%rcx)\n"
    "    movq %r14, 32(%rcx)\n"
    "    movq %r15, 40(%rcx)\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    "    .size arch_regs_switch, .-arch_regs_switch\n"
    "\n"
    "    .globl arch_entry_probe\n"
    "    .type arch_entry_probe, @function\n"
    "    .p2align 4\n"
    "arch_entry_probe:\n"
    "    movq %rsp, probe_sp(%rip)\n"
    "    jmp co_entry\n"
    "    .size arch_entry_probe, .-arch_entry_probe\n");
#elif defined(__aarch64__)
#define NREGS 19
__asm__(
    "    .text\n"
    "    .globl arch_regs_switch\n"
    "    .type arch_regs_switch, %function\n"
    "    .p2align 4\n"
    "arch_regs_switch:\n"
    "    stp x29, x30, [sp, #-176]!\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    str x3, [sp, #160]\n"
    "    ldp x19, x20, [x2, #0]\n"
    "    ldp x21, x22, [x2, #16]\n"
    "    ldp x23, x24, [x2, #32]\n"
    "    ldp x25, x26, [x2, #48]\n"
    "    ldp x27, x28, [x2, #64]\n"
    "    ldr x29, [x2, #80]\n"
    "    ldp d8, d9, [x2, #88]\n"
    "    ldp d10, d11, [x2, #104]\n"
    "    ldp d12, d13, [x2, #120]\n"
    "    ldp d14, d15, [x2, #136]\n"
    "    bl gort__ctx_switch\n"
    "    ldr x3, [sp, #160]\n"
    "    stp x19, x20, [x3, #0]\n"
    "    stp x21, x22, [x3, #16]\n"
    "    stp x23, x24, [x3, #32]\n"
    "    stp x25, x26, [x3, #48]\n"
    "    stp x27, x28, [x3, #64]\n"
    "    str x29, [x3, #80]\n"
    "    stp d8, d9, [x3, #88]\n"
    "    stp d10, d11, [x3, #104]\n"
    "    stp d12, d13, [x3, #120]\n"
    "    stp d14, d15, [x3, #136]\n"
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    "    .size arch_regs_switch, .-arch_regs_switch\n"
    "\n"
    "    .globl arch_entry_probe\n"
    "    .type arch_entry_probe, %function\n"
    "    .p2align 4\n"
    "arch_entry_probe:\n"
    "    mov x9, sp\n"
    "    adrp x10, probe_sp\n"
    "    add x10, x10, :lo12:probe_sp\n"
    "    str x9, [x10]\n"
    "    b co_entry\n"
    "    .size arch_entry_probe, .-arch_entry_probe\n");
#else
#error "x86-64 or AArch64 only"
#endif

void arch_regs_switch(void **save, void *to, const uint64_t *in, uint64_t *out);
void arch_entry_probe(void *arg);
void co_entry(void *arg);
volatile uintptr_t probe_sp;

/* ---- floating-point control ---------------------------------------------- */

/* x86-64: MXCSR control bits (status flags masked off) << 16 | x87 CW.
   AArch64: FPCR.  The values each side installs differ from the defaults
   and from each other in rounding mode and flush-to-zero. */
#if defined(__x86_64__)
#define FP_DEFAULT ((uint64_t)0x1f80 << 16 | 0x037f)
#define FP_MAIN ((uint64_t)0x7f80 << 16 | 0x0f7f)   /* truncate; x87 RC=11 */
#define FP_CO ((uint64_t)0xbfc0 << 16 | 0x027f)     /* down, FZ, DAZ; x87 PC=53 */
static uint64_t fp_get(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ __volatile__("stmxcsr %0" : "=m"(mxcsr));
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    return (uint64_t)(mxcsr & ~0x3fu) << 16 | cw;
}
static void fp_set(uint64_t v)
{
    uint32_t mxcsr = (uint32_t)(v >> 16);
    uint16_t cw = (uint16_t)v;
    __asm__ __volatile__("ldmxcsr %0" ::"m"(mxcsr));
    __asm__ __volatile__("fldcw %0" ::"m"(cw));
}
#else
#define FP_DEFAULT ((uint64_t)0)
#define FP_MAIN ((uint64_t)3 << 22)                             /* RZ */
#define FP_CO ((uint64_t)1 << 22 | (uint64_t)1 << 24 | (uint64_t)1 << 25) /* RP, FZ, DN */
static uint64_t fp_get(void)
{
    uint64_t v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void fp_set(uint64_t v)
{
    __asm__ __volatile__("msr fpcr, %0" ::"r"(v));
}
#endif

/* ---- shared state: written by the coroutine, asserted by the test ------ */

static void *main_sp, *co_sp;
static void *co_arg;               /* what co_entry received */
static uint64_t co_fp_at_entry;
static uintptr_t co_probe_sp;      /* stack pointer on entry */
static uintptr_t co_frame;         /* __builtin_frame_address in co_entry */
static uintptr_t co_aligned_local; /* address of an _Alignas(16) local */
static int co_vector_ok;
static long co_iters, co_reg_bad, co_fp_bad;
static uint64_t co_first_bad_in[NREGS], co_first_bad_out[NREGS];

static void pattern(uint64_t *v, uint64_t side, long i)
{
    for (int k = 0; k < NREGS; k++)
        v[k] = side ^ ((uint64_t)(k + 1) << 56) ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL) ^
               (uint64_t)k * 0x0101010101010101ULL;
}

typedef int v4si __attribute__((vector_size(16)));

/* An aligned local and a vector store through the stack: if the stack is
   misaligned, the address is off by 8 and the aligned store faults. */
__attribute__((noinline)) static int vector_probe(uintptr_t *local_addr)
{
    _Alignas(16) volatile char local[16];
    volatile v4si v = {1, 2, 3, 4};
    v4si w = v;
    w = w * 3 + 1;
    v = w;
    *local_addr = (uintptr_t)local;
    local[0] = 1;
    return v[0] == 4 && v[3] == 13;
}

void co_entry(void *arg)
{
    uint64_t in[NREGS], out[NREGS];
    co_probe_sp = probe_sp;
    co_fp_at_entry = fp_get();
    co_arg = arg;
    co_frame = (uintptr_t)__builtin_frame_address(0);
    co_vector_ok = vector_probe(&co_aligned_local);
    fp_set(FP_CO);
    for (long i = 0;; i++) {
        pattern(in, 0xc0c0c0c0c0c0c0c0ULL, i);
        arch_regs_switch(&co_sp, main_sp, in, out);
        if (memcmp(in, out, sizeof in) != 0) {
            if (co_reg_bad++ == 0) {
                memcpy(co_first_bad_in, in, sizeof in);
                memcpy(co_first_bad_out, out, sizeof out);
            }
        }
        if (fp_get() != FP_CO)
            co_fp_bad++;
        co_iters++;
    }
}

static void *map_stack(void)
{
    void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void reset_state(void)
{
    main_sp = co_sp = co_arg = NULL;
    co_fp_at_entry = 0;
    co_probe_sp = co_frame = co_aligned_local = 0;
    co_vector_ok = 0;
    co_iters = co_reg_bad = co_fp_bad = 0;
    probe_sp = 0;
}

static void print_regs(const char *what, const uint64_t *v)
{
    fprintf(stderr, "%s:", what);
    for (int k = 0; k < NREGS; k++)
        fprintf(stderr, " %016llx", (unsigned long long)v[k]);
    fprintf(stderr, "\n");
}

/* Ping-pong ROUNDS times; both sides check their registers and FP control. */
static void test_callee_saved_survive(void **state)
{
    uint64_t in[NREGS], out[NREGS];
    long main_bad = 0, main_fp_bad = 0;
    uint64_t saved_fp = fp_get();
    char *stack = map_stack();
    static int magic;

    reset_state();
    co_sp = gort__ctx_make(stack + STACK_SIZE, arch_entry_probe, &magic);
    fp_set(FP_MAIN);
    for (long i = 0; i < ROUNDS; i++) {
        pattern(in, 0x5a5a5a5a5a5a5a5aULL, i);
        arch_regs_switch(&main_sp, co_sp, in, out);
        if (memcmp(in, out, sizeof in) != 0 && main_bad++ == 0) {
            print_regs("main in ", in);
            print_regs("main out", out);
        }
        if (fp_get() != FP_MAIN)
            main_fp_bad++;
    }
    fp_set(saved_fp);
    if (co_reg_bad) {
        print_regs("co in ", co_first_bad_in);
        print_regs("co out", co_first_bad_out);
    }
    munmap(stack, STACK_SIZE);

    assert_int_equal(main_bad, 0);
    assert_int_equal(main_fp_bad, 0);
    /* The coroutine ran once per round but the first (its entry). */
    assert_int_equal(co_iters, ROUNDS - 1);
    assert_int_equal(co_reg_bad, 0);
    assert_int_equal(co_fp_bad, 0);
}

/* The trampoline calls entry(arg) with the arg given to gort__ctx_make,
   on a stack aligned as the ABI requires, with default FP control even
   though the context that switched to it had changed its own. */
static void test_entry_alignment_arg_fp(void **state)
{
    uint64_t in[NREGS] = {0}, out[NREGS];
    uint64_t saved_fp = fp_get();
    char *stack = map_stack();
    static int magic;

    /* Try several tops: gort__ctx_make must align a misaligned top. */
    for (int off = 0; off < 16; off += 8) {
        reset_state();
        co_sp = gort__ctx_make(stack + STACK_SIZE - off, arch_entry_probe, &magic);
        fp_set(FP_MAIN);
        arch_regs_switch(&main_sp, co_sp, in, out);
        fp_set(saved_fp);

        assert_ptr_equal(co_arg, &magic);
        assert_true(co_probe_sp != 0);
        assert_true(co_probe_sp > (uintptr_t)stack && co_probe_sp < (uintptr_t)stack + STACK_SIZE);
#if defined(__x86_64__)
        /* After `call`: rsp + 8 is 16-aligned (System V 3.2.2). */
        assert_int_equal((co_probe_sp + 8) % 16, 0);
#else
        assert_int_equal(co_probe_sp % 16, 0);
#endif
        assert_int_equal(co_frame % 16, 0);
        assert_int_equal(co_aligned_local % 16, 0);
        assert_int_equal(co_vector_ok, 1);
        assert_true(co_fp_at_entry == FP_DEFAULT);
    }
    munmap(stack, STACK_SIZE);
}

/* ---- a ring of three contexts -------------------------------------------- */

static void *ring_sp[4]; /* [0] the test, [1..3] the contexts */
static long ring_log[64];
static int ring_n;

static void ring_entry(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int round = 0;; round++) {
        if (ring_n < 64)
            ring_log[ring_n++] = me * 100 + round;
        gort__ctx_switch(&ring_sp[me], ring_sp[me == 3 ? 0 : me + 1]);
    }
}

/* Each switch resumes exactly the context named, in order: 1 2 3 back to
   the test, three times.  A context resumes where it left off (its round
   counter, a local, survives). */
static void test_ring_order(void **state)
{
    char *stacks[3];
    ring_n = 0;
    for (int i = 0; i < 3; i++) {
        stacks[i] = map_stack();
        ring_sp[i + 1] = gort__ctx_make(stacks[i] + STACK_SIZE, ring_entry, (void *)(intptr_t)(i + 1));
    }
    for (int r = 0; r < 3; r++)
        gort__ctx_switch(&ring_sp[0], ring_sp[1]);
    for (int i = 0; i < 3; i++)
        munmap(stacks[i], STACK_SIZE);
    assert_int_equal(ring_n, 9);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(ring_log[r * 3 + i], (i + 1) * 100 + r);
}

/* ---- an entry that returns ------------------------------------------------ */

static void *ret_main_sp;

static void returning_entry(void *arg)
{
    (void)arg;
}

/* If entry returns, the trampoline traps (ud2 / brk) instead of returning
   into whatever is above the frame.  In a child: it must die by the trap. */
static void test_entry_return_traps(void **state)
{
    pid_t pid = fork();
    int status;
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void *sp;
        setrlimit(RLIMIT_CORE, &no_core);
        /* cmocka catches SIGILL and friends; the child must die of them. */
        signal(SIGILL, SIG_DFL);
        signal(SIGTRAP, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        alarm(10);
        sp = gort__ctx_make(stack + STACK_SIZE, returning_entry, NULL);
        gort__ctx_switch(&ret_main_sp, sp);
        _exit(0); /* not reached: nothing switches back */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
#if defined(__x86_64__)
    assert_int_equal(WTERMSIG(status), SIGILL);
#else
    assert_int_equal(WTERMSIG(status), SIGTRAP);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callee_saved_survive),
        cmocka_unit_test(test_entry_alignment_arg_fp),
        cmocka_unit_test(test_ring_order),
        cmocka_unit_test(test_entry_return_traps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
