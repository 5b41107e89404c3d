/*
 * ctx.h - the machine context switch, the only thing arch/ does.
 *
 * A suspended context is nothing but a stack pointer: gort__ctx_switch
 * pushes the callee-saved registers (and the floating-point control words)
 * onto the current stack, stores the stack pointer into *save, loads `to`
 * and pops the same frame from there.  Everything the ABI lets a callee
 * clobber needs no saving, because the switch is an ordinary call.
 *
 * A fresh context is a hand-built frame at the top of a new stack
 * (gort__ctx_make) whose return address is gort__ctx_trampoline; the
 * trampoline calls entry(arg), which must never return (if it does, the
 * trampoline traps: it never returns into garbage).
 *
 * The frame layout is shared with the assembly through the GORT_CTX_*
 * offsets below; the _Static_asserts tie them to a C struct so that the
 * two cannot drift apart.  No system call is made on the switch path.
 */
#ifndef GORT_ARCH_CTX_H
#define GORT_ARCH_CTX_H

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>
#if defined(GORT_ASAN)
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#endif

#if defined(__x86_64__)
/* x86-64 System V: rbx rbp r12-r15 rsp + MXCSR control bits + x87 CW. */
#define GORT_CTX_FPU 0     /* u32 mxcsr, u16 x87 control word, u16 pad */
#define GORT_CTX_R12 8
#define GORT_CTX_R13 16
#define GORT_CTX_R14 24
#define GORT_CTX_R15 32
#define GORT_CTX_RBX 40
#define GORT_CTX_RBP 48
#define GORT_CTX_RET 56
#define GORT_CTX_SIZE 64   /* bytes from saved sp to the end of the frame */
#elif defined(__aarch64__)
/* AAPCS64: x19-x28, x29 (fp), x30 (lr), sp, d8-d15, FPCR. */
#define GORT_CTX_X19 0
#define GORT_CTX_X29 80
#define GORT_CTX_X30 88
#define GORT_CTX_D8 96
#define GORT_CTX_FPCR 160
#define GORT_CTX_SIZE 176
#else
#error "libgo-rt supports x86-64 and AArch64"
#endif

#ifndef __ASSEMBLER__

/* Suspends the caller into *save and resumes the context saved at `to`. */
void gort__ctx_switch(void **save, void *to);
/* The same code, seen with a value passed across: the resumed context's
   own gort__ctx_transfer (or gort__ctx_switch) call returns `arg`.  The
   scheduler passes the M doing the switch, so that the goroutine it
   resumes learns its thread without a TLS read.  (A fresh context's entry
   does not get it.) */
void *gort__ctx_transfer(void **save, void *to, void *arg);
/* First instruction of every fresh context; calls entry(arg), never returns. */
void gort__ctx_trampoline(void);

#if defined(__x86_64__)
struct gort_ctx_frame {
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
    uint64_t r12, r13, r14, r15, rbx, rbp, ret;
};
_Static_assert(offsetof(struct gort_ctx_frame, r12) == GORT_CTX_R12, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, r15) == GORT_CTX_R15, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, rbx) == GORT_CTX_RBX, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, rbp) == GORT_CTX_RBP, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, ret) == GORT_CTX_RET, "ctx layout");
_Static_assert(sizeof(struct gort_ctx_frame) == GORT_CTX_SIZE, "ctx layout");
#else
struct gort_ctx_frame {
    uint64_t x[12];  /* x19..x30 */
    uint64_t d[8];   /* d8..d15 */
    uint64_t fpcr;
    uint64_t pad;
};
_Static_assert(offsetof(struct gort_ctx_frame, x[10]) == GORT_CTX_X29, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, x[11]) == GORT_CTX_X30, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, d) == GORT_CTX_D8, "ctx layout");
_Static_assert(offsetof(struct gort_ctx_frame, fpcr) == GORT_CTX_FPCR, "ctx layout");
_Static_assert(sizeof(struct gort_ctx_frame) == GORT_CTX_SIZE, "ctx layout");
#endif

/*
 * Builds a fresh context on the stack whose highest address is `top`
 * (16-byte aligned) and returns its saved stack pointer.  On entry to
 * entry(arg) the stack is aligned as the ABI requires for a called
 * function.  The FP control state starts at the ABI defaults.
 */
static inline void *gort__ctx_make(void *top, void (*entry)(void *), void *arg)
{
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
    struct gort_ctx_frame *f;
#if defined(GORT_ASAN)
    /* A reused stack may still carry the redzones of frames that never
       returned (a goroutine that exited from deep down); the new context's
       frames re-poison their own on entry, but this frame is written
       here. */
    __asan_unpoison_memory_region((void *)(t - 256), 256);
#endif
#if defined(__x86_64__)
    /* After the frame is popped and `ret` taken, rsp = t - 16: 16-aligned,
       as a `call` from the trampoline needs.  The 16 bytes above stay 0, a
       null return address that ends backtraces. */
    f = (struct gort_ctx_frame *)(t - 16 - sizeof *f);
    *f = (struct gort_ctx_frame){.mxcsr = 0x1f80, .fpucw = 0x037f,
                                 .r12 = (uint64_t)(uintptr_t)entry,
                                 .r13 = (uint64_t)(uintptr_t)arg,
                                 .ret = (uint64_t)(uintptr_t)gort__ctx_trampoline};
    ((uint64_t *)t)[-1] = 0;
    ((uint64_t *)t)[-2] = 0;
#else
    f = (struct gort_ctx_frame *)(t - 16 - sizeof *f);
    *f = (struct gort_ctx_frame){.fpcr = 0};
    f->x[0] = (uint64_t)(uintptr_t)entry;   /* x19 */
    f->x[1] = (uint64_t)(uintptr_t)arg;     /* x20 */
    f->x[10] = 0;                           /* x29: end of the frame chain */
    f->x[11] = (uint64_t)(uintptr_t)gort__ctx_trampoline; /* x30 */
    ((uint64_t *)t)[-1] = 0;
    ((uint64_t *)t)[-2] = 0;
#endif
    return f;
}

#endif /* !__ASSEMBLER__ */
#endif /* GORT_ARCH_CTX_H */
