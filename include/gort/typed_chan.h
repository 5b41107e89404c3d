/*
 * gort/typed_chan.h - CHAN_DEFINE(NAME, T): channels whose element type the
 * compiler checks.  Included by <gort.h>; do not include it directly.
 *
 *   CHAN_DEFINE(int_chan, int);          at file scope
 *   int_chan c = int_chan_make(8);       c.raw == NULL on failure
 *   int_chan_send(c, 42);
 *   int v; if (int_chan_recv(c, &v)) ...
 *   chan_case_t cs[] = { int_chan_case_recv(c, &v), ... };
 *
 * Every function is a static inline wrapper around the untyped call; with
 * optimisation on, each compiles to exactly the untyped call.
 *
 * Why the value parameter is not always spelled `T`.  A C compiler accepts
 * a pointer where an integer is expected, and a pointer to another type,
 * with only a warning (an error from gcc 14 and clang 15 on; API.md wants
 * an error from gcc 12 and clang 14 at default flags).  A diagnostic pragma
 * around our own code cannot help, because the diagnostic is issued at the
 * caller's argument, and a pragma at the caller would change the user's
 * diagnostics.  So the parameter's type is chosen so that exactly C's
 * assignment conversions minus those two are accepted:
 *
 *   T an integer type of at most 64 bits (char, enums, int64_t, size_t...):
 *       the parameter is `long double`.  Any arithmetic argument converts to
 *       it (and, for integers, exactly: 64 significant bits on x86-64, 113
 *       on AArch64); a pointer or a struct does not convert to a floating
 *       type, which is an error everywhere.  Inside, the value is converted
 *       to T as C would have converted the original argument (modulo 2^N
 *       for integers, truncation for floating values).  gcc and clang fold
 *       the round trip away at -O1 and above.  _Bool keeps C's `!= 0` rule.
 *   T a pointer type: the parameter is a one-member transparent union of T,
 *       which accepts a T, a compatible pointer, a void * and a null pointer
 *       constant, and rejects integers and pointers to other types.
 *   anything else (floating, complex, struct, union, __int128): T itself;
 *       a pointer or another struct already fails to convert.
 *   T * parameters (recv, try_recv, case_recv, case_send): a transparent
 *       union of T * (and const T * for case_send), same rules as above.
 *
 * Transparent unions are passed exactly like their first member, so the
 * ABI is that of the signatures in API.md.  The one visible difference is
 * that diagnostics a user enables on purpose for arithmetic conversions at
 * the call (-Wconversion, -Wfloat-conversion, clang's -Wliteral-conversion
 * of 3.5 to an int) are not issued for the value argument of an integer
 * channel's _send/_try_send: the argument converts to long double, which
 * loses nothing.  No pragma is used, so nothing else in the user's code is
 * affected.
 *
 * T must be a complete object type other than an array (wrap arrays in a
 * struct, as one would pass them by value in Go).
 */
#ifndef GORT_TYPED_CHAN_H
#define GORT_TYPED_CHAN_H

#ifndef GORT_H
#error "include <gort.h>, not <gort/typed_chan.h>"
#endif

/* How the value of a T travels through a CHAN_DEFINE'd function. */
#define GORT__TC_COPY 0 /* as T, or as a union holding exactly a T */
#define GORT__TC_INT 1  /* as long double, converted to T inside */
#define GORT__TC_BOOL 2 /* as long double, converted with C's _Bool rule */

/* __builtin_classify_type: 1 integer (and enum, and gcc's _Bool), 4 clang's
 * _Bool, 5 pointer.  Both are integer constant expressions. */
#define GORT__TC_CLASS(T) __builtin_classify_type(*(__typeof__(T) *)0)
#define GORT__TC_IS_PTR(T) (GORT__TC_CLASS(T) == 5)
#define GORT__TC_KIND(T)                                                     \
    (__builtin_types_compatible_p(__typeof__(T), _Bool)                      \
         ? GORT__TC_BOOL                                                     \
     : ((GORT__TC_CLASS(T) == 1 || GORT__TC_CLASS(T) == 4)                   \
        && sizeof(__typeof__(T)) <= sizeof(long long))                       \
         ? GORT__TC_INT                                                      \
         : GORT__TC_COPY)

/* The type of NAME_send's value parameter (see above). */
#define GORT__TC_VALUE_TYPE(NAME, T)                                         \
    __typeof__(__builtin_choose_expr(                                        \
        GORT__TC_KIND(T) != GORT__TC_COPY, (long double)0,                   \
        __builtin_choose_expr(GORT__TC_IS_PTR(T), *(NAME##__value *)0,       \
                              *(__typeof__(T) *)0)))

/* Moves a carried value into a T.  kind and the sizes are constants after
 * inlining, so this folds to a move (or to nothing). */
static inline __attribute__((always_inline)) void
gort__tc_unbox(void *dst, size_t size, const void *src, int kind)
{
    long double v;
    unsigned long long u;

    if (kind == GORT__TC_COPY) {
        __builtin_memcpy(dst, src, size);
        return;
    }
    __builtin_memcpy(&v, src, sizeof v);
    if (kind == GORT__TC_BOOL) {
        /* (_Bool)v, spelled without == so that -Wfloat-equal stays quiet */
        _Bool b = v < 0 || v > 0 || __builtin_isunordered(v, v);
        __builtin_memcpy(dst, &b, sizeof b);
        return;
    }
    /* C's conversion of an integer to a narrower integer type keeps the low
     * bits (gcc and clang, two's complement); reach it through the 64-bit
     * integer of the right signedness, which holds the value exactly. */
    u = v < 0 ? (unsigned long long)(long long)v : (unsigned long long)v;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    __builtin_memcpy(dst, (const char *)&u + (sizeof u - size), size);
#else
    __builtin_memcpy(dst, &u, size);
#endif
}

#define CHAN_DEFINE(NAME, T)                                                 \
    typedef struct {                                                         \
        chan_t *raw;                                                         \
    } NAME;                                                                  \
    typedef union __attribute__((transparent_union)) {                       \
        __typeof__(__builtin_choose_expr(GORT__TC_IS_PTR(T),                 \
                                         *(__typeof__(T) *)0,                \
                                         (void *)0)) v;                      \
    } NAME##__value;                                                         \
    typedef union __attribute__((transparent_union)) {                       \
        __typeof__(T) *p;                                                    \
    } NAME##__out;                                                           \
    typedef union __attribute__((transparent_union)) {                       \
        __typeof__(T) *p;                                                    \
        const __typeof__(T) *cp;                                             \
    } NAME##__in;                                                            \
    static inline __attribute__((unused)) NAME NAME##_make(size_t capacity) \
    {                                                                        \
        NAME c_ = {chan_make(sizeof(__typeof__(T)), capacity)};              \
        return c_;                                                           \
    }                                                                        \
    static inline __attribute__((unused)) int NAME##_send(                   \
        NAME c, GORT__TC_VALUE_TYPE(NAME, T) value)                          \
    {                                                                        \
        __typeof__(T) v_;                                                    \
        gort__tc_unbox(&v_, sizeof v_, &value, GORT__TC_KIND(T));            \
        return chan_send(c.raw, &v_);                                        \
    }                                                                        \
    static inline __attribute__((unused)) int NAME##_try_send(               \
        NAME c, GORT__TC_VALUE_TYPE(NAME, T) value)                          \
    {                                                                        \
        __typeof__(T) v_;                                                    \
        gort__tc_unbox(&v_, sizeof v_, &value, GORT__TC_KIND(T));            \
        return chan_try_send(c.raw, &v_);                                    \
    }                                                                        \
    static inline __attribute__((unused)) bool NAME##_recv(NAME c,           \
                                                           NAME##__out out)  \
    {                                                                        \
        return chan_recv(c.raw, out.p);                                      \
    }                                                                        \
    static inline __attribute__((unused)) int NAME##_try_recv(               \
        NAME c, NAME##__out out)                                             \
    {                                                                        \
        return chan_try_recv(c.raw, out.p);                                  \
    }                                                                        \
    static inline __attribute__((unused)) void NAME##_close(NAME c)          \
    {                                                                        \
        chan_close(c.raw);                                                   \
    }                                                                        \
    static inline __attribute__((unused)) void NAME##_free(NAME c)           \
    {                                                                        \
        chan_free(c.raw);                                                    \
    }                                                                        \
    static inline __attribute__((unused)) size_t NAME##_len(NAME c)          \
    {                                                                        \
        return chan_len(c.raw);                                              \
    }                                                                        \
    static inline __attribute__((unused)) size_t NAME##_cap(NAME c)          \
    {                                                                        \
        return chan_cap(c.raw);                                              \
    }                                                                        \
    static inline __attribute__((unused)) chan_case_t NAME##_case_send(      \
        NAME c, NAME##__in value)                                            \
    {                                                                        \
        chan_case_t k_ = {c.raw, CHAN_SEND, value.p, false};                 \
        return k_;                                                           \
    }                                                                        \
    static inline __attribute__((unused)) chan_case_t NAME##_case_recv(      \
        NAME c, NAME##__out out)                                             \
    {                                                                        \
        chan_case_t k_ = {c.raw, CHAN_RECV, out.p, false};                   \
        return k_;                                                           \
    }                                                                        \
    _Static_assert(sizeof(__typeof__(T)) > 0,                                \
                   "CHAN_DEFINE needs a complete element type")

#endif /* GORT_TYPED_CHAN_H */
