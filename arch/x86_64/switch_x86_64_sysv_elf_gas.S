/*
 * switch_x86_64_sysv_elf_gas.S - context switch for x86-64 System V, ELF.
 *
 * void gort__ctx_switch(void **save  (rdi), void *to (rsi));
 *
 * Frame pushed on the suspended stack (offsets from the saved rsp; the
 * same numbers are GORT_CTX_* in arch/ctx.h):
 *
 *   offset  content
 *   0       MXCSR (4 bytes), x87 control word (2), pad (2); reloaded on
 *           resume only if the control bits differ from the current ones
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
    .p2align 4
gort__ctx_switch:
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
    movl    GORT_CTX_FPU(%rsp), %eax    /* ours, kept in scratch registers */
    movzwl  GORT_CTX_FPU+4(%rsp), %edx

    movq    %rsp, (%rdi)
    movq    %rsi, %rsp

    /* ldmxcsr and fldcw are slow (microcoded) and contexts almost always
       share their control words: reload only when they differ.  MXCSR's
       status bits (0-5) are caller-saved in the ABI: not compared. */
    movl    GORT_CTX_FPU(%rsp), %ecx
    xorl    %eax, %ecx
    andl    $0xffc0, %ecx
    jnz     1f
    cmpw    GORT_CTX_FPU+4(%rsp), %dx
    jne     1f
2:
    leaq    8(%rsp), %rsp
    popq    %r12
    popq    %r13
    popq    %r14
    popq    %r15
    popq    %rbx
    popq    %rbp
    ret
1:  ldmxcsr GORT_CTX_FPU(%rsp)
    fldcw   GORT_CTX_FPU+4(%rsp)
    jmp     2b
    .cfi_endproc
    .size   gort__ctx_switch, .-gort__ctx_switch

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
