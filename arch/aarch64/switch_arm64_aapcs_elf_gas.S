/*
 * switch_arm64_aapcs_elf_gas.S - context switch for AArch64 AAPCS64, ELF.
 *
 * void gort__ctx_switch(void **save (x0), void *to (x1));
 * void *gort__ctx_transfer(void **save (x0), void *to (x1), void *arg (x2));
 *   the same entry point; x2 is never touched and becomes the resumed
 *   side's return value (x0).
 *
 * Frame stored on the suspended stack (offsets from the saved sp; the same
 * numbers are GORT_CTX_* in arch/ctx.h):
 *
 *   offset  content
 *   0       x19 x20
 *   16      x21 x22
 *   32      x23 x24
 *   48      x25 x26
 *   64      x27 x28
 *   80      x29 (frame pointer) x30 (link register: where we resume)
 *   96      d8 d9
 *   112     d10 d11
 *   128     d12 d13
 *   144     d14 d15
 *   160     FPCR
 *   168     pad (keeps sp 16-byte aligned)
 *
 * AAPCS64 makes x19-x29, sp and the low 64 bits of v8-v15 callee-saved;
 * x30 is where the switch returns to.  FPCR (rounding mode, flush-to-zero)
 * is per thread, so it travels with the goroutine.
 *
 * gort__ctx_trampoline: the x30 of a fresh frame.  x19 holds the entry
 * function and x20 its argument; entry must never return, and if it does
 * the trampoline executes brk rather than return into garbage.
 *
 * BTI: both entry points begin with a landing pad and the object carries
 * the BTI property.
 */
#include "../ctx.h"

    .text
    .globl  gort__ctx_switch
    .hidden gort__ctx_switch
    .type   gort__ctx_switch, %function
    .globl  gort__ctx_transfer
    .hidden gort__ctx_transfer
    .type   gort__ctx_transfer, %function
    .p2align 4
gort__ctx_switch:
gort__ctx_transfer:
    .cfi_startproc
    hint    #34                 /* bti c */
    sub     sp, sp, #GORT_CTX_SIZE
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #GORT_CTX_X29]
    stp     d8, d9, [sp, #GORT_CTX_D8]
    stp     d10, d11, [sp, #GORT_CTX_D8+16]
    stp     d12, d13, [sp, #GORT_CTX_D8+32]
    stp     d14, d15, [sp, #GORT_CTX_D8+48]
    mrs     x10, fpcr               /* ours stays in x10 (a temporary) */
    str     x10, [sp, #GORT_CTX_FPCR]

    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1

    /* Writing FPCR can be slow and contexts almost always share it:
       write only when it differs. */
    ldr     x9, [sp, #GORT_CTX_FPCR]
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x9
1:
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #GORT_CTX_X29]
    ldp     d8, d9, [sp, #GORT_CTX_D8]
    ldp     d10, d11, [sp, #GORT_CTX_D8+16]
    ldp     d12, d13, [sp, #GORT_CTX_D8+32]
    ldp     d14, d15, [sp, #GORT_CTX_D8+48]
    add     sp, sp, #GORT_CTX_SIZE
    mov     x0, x2                  /* gort__ctx_transfer's arg, untouched */
    ret
    .cfi_endproc
    .size   gort__ctx_switch, .-gort__ctx_switch
    .size   gort__ctx_transfer, .-gort__ctx_transfer

    .globl  gort__ctx_trampoline
    .hidden gort__ctx_trampoline
    .type   gort__ctx_trampoline, %function
    .p2align 4
gort__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    hint    #34                 /* bti c */
    mov     x0, x20
    mov     x29, xzr
    blr     x19
    brk     #0x1
    .cfi_endproc
    .size   gort__ctx_trampoline, .-gort__ctx_trampoline

    .section .note.GNU-stack, "", %progbits

    /* GNU property note: GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI. */
    .section .note.gnu.property, "a"
    .p2align 3
    .long   4
    .long   16
    .long   5
    .asciz  "GNU"
    .long   0xc0000000
    .long   4
    .long   1
    .long   0
