/*
 * switch_x86_64_sysv_elf_gas.S - context switch for x86-64 System V, ELF.
 *
 * void gort__ctx_switch(void **save  (rdi), void *to (rsi));
 * void *gort__ctx_transfer(void **save (rdi), void *to (rsi), void *arg (rdx));
 *   the same entry point; rdx is never touched, and becomes the resumed
 *   side's return value (rax).
 *
 * Frame pushed on the suspended stack (offsets from the saved rsp; the
 * same numbers are GORT_CTX_* in arch/ctx.h):
 *
 *   offset  content
 *   0       MXCSR (control and status, 4 bytes), x87 control word (2), pad
 *   8       r12
 *   16      r13
 *   24      r14
 *   32      r15
 *   40      rbx
 *   48      rbp
 *   56      return address
 *
 * Only callee-saved state is kept: the System V ABI makes rbx, rbp,
 * r12-r15, rsp, MXCSR's control bits and the x87 control word callee-saved;
 * everything else a caller already expects to lose across a call.
 *
 * gort__ctx_trampoline: the return address of a fresh frame.  r12 holds the
 * entry function and r13 its argument; entry must never return, and if it
 * does the trampoline executes ud2 rather than return into garbage.
 *
 * CET: both entry points start with endbr64 and the object carries the
 * IBT property.  It does not claim SHSTK: switching stacks with a plain
 * `ret` is incompatible with a user shadow stack.
 */
#include "../ctx.h"

    .text
    .globl  gort__ctx_switch
    .hidden gort__ctx_switch
    .type   gort__ctx_switch, @function
    .globl  gort__ctx_transfer
    .hidden gort__ctx_transfer
    .type   gort__ctx_transfer, @function
    .p2align 4
gort__ctx_switch:
gort__ctx_transfer:
    .cfi_startproc
    endbr64
    pushq   %rbp
    pushq   %rbx
    pushq   %r15
    pushq   %r14
    pushq   %r13
    pushq   %r12
    leaq    -8(%rsp), %rsp
    stmxcsr GORT_CTX_FPU(%rsp)
    fnstcw  GORT_CTX_FPU+4(%rsp)

    movq    %rsp, (%rdi)
    movq    %rsi, %rsp

    ldmxcsr GORT_CTX_FPU(%rsp)
    fldcw   GORT_CTX_FPU+4(%rsp)
    leaq    8(%rsp), %rsp
    popq    %r12
    popq    %r13
    popq    %r14
    popq    %r15
    popq    %rbx
    popq    %rbp
    /* `ret`, measured against `pop; jmp *reg` (Boost's choice): in the
       runtime a context is suspended and resumed at the same call site in
       switch_to, so the return-stack predictor is right and `ret` wins
       (yield 17 vs 24 ns, ping-pong 111 vs 146 ns); `jmp` wins only in a
       loop between two different call sites (5.5 vs 10 ns).  The FP
       control words are always reloaded: comparing first saved nothing. */
    movq    %rdx, %rax
    ret
    .cfi_endproc
    .size   gort__ctx_switch, .-gort__ctx_switch
    .size   gort__ctx_transfer, .-gort__ctx_transfer

    .globl  gort__ctx_trampoline
    .hidden gort__ctx_trampoline
    .type   gort__ctx_trampoline, @function
    .p2align 4
gort__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    endbr64
    movq    %r13, %rdi
    xorl    %ebp, %ebp
    callq   *%r12
    ud2
    .cfi_endproc
    .size   gort__ctx_trampoline, .-gort__ctx_trampoline

    .section .note.GNU-stack, "", @progbits

    /* GNU property note: GNU_PROPERTY_X86_FEATURE_1_AND = IBT. */
    .section .note.gnu.property, "a"
    .p2align 3
    .long   4
    .long   16
    .long   5
    .asciz  "GNU"
    .long   0xc0000002
    .long   4
    .long   1
    .long   0
