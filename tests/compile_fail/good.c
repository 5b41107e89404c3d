/*
 * good.c - every CHAN_DEFINE function with well-typed arguments, including
 * C's usual arithmetic conversions.  Must compile without a single warning
 * under -Wall -Wextra -Wpedantic -Wconversion (typed_chan.cmake adds
 * -Werror), which also shows that the header changes no diagnostics.
 */
#include <gort.h>

#include <stddef.h>
#include <stdint.h>

struct point {
    int x, y;
};
enum color { RED, GREEN };
typedef void (*callback)(void);

CHAN_DEFINE(int_chan, int);
CHAN_DEFINE(long_chan, long);
CHAN_DEFINE(u8_chan, uint8_t);
CHAN_DEFINE(u64_chan, uint64_t);
CHAN_DEFINE(bool_chan, bool);
CHAN_DEFINE(double_chan, double);
CHAN_DEFINE(color_chan, enum color);
CHAN_DEFINE(str_chan, const char *);
CHAN_DEFINE(ptr_chan, void *);
CHAN_DEFINE(cb_chan, callback);
CHAN_DEFINE(point_chan, struct point);

static void cb(void) {}

int good_uses(void);
int good_uses(void)
{
    int_chan ic = int_chan_make(4);
    long_chan lc = long_chan_make(0);
    u8_chan uc = u8_chan_make(1);
    u64_chan qc = u64_chan_make(1);
    bool_chan bc = bool_chan_make(1);
    double_chan dc = double_chan_make(1);
    color_chan cc = color_chan_make(1);
    str_chan sc = str_chan_make(1);
    ptr_chan pc = ptr_chan_make(1);
    cb_chan fc = cb_chan_make(1);
    point_chan ptc = point_chan_make(1);
    int i = 1;
    short s = 2;
    long l = 3;
    char ch = 'x';
    uint8_t u8 = 0;
    uint64_t u64 = UINT64_MAX;
    bool b = true;
    double d = 0.5;
    enum color col = GREEN;
    const char *str = "hi";
    char buf[4] = "abc";
    callback f = cb;
    struct point p = {1, 2};
    int r = 0;

    r += int_chan_send(ic, 42);
    r += int_chan_send(ic, s);
    r += int_chan_send(ic, ch);
    r += int_chan_send(ic, col);
    r += int_chan_try_send(ic, i);
    r += long_chan_send(lc, 42);
    r += long_chan_send(lc, i);
    r += long_chan_send(lc, l);
    r += u8_chan_send(uc, u8);
    r += u64_chan_send(qc, u64);
    r += u64_chan_send(qc, 7);
    r += bool_chan_send(bc, b);
    r += bool_chan_send(bc, 1);
    r += double_chan_send(dc, d);
    r += double_chan_send(dc, 1.0f);
    r += color_chan_send(cc, RED);
    r += str_chan_send(sc, str);
    r += str_chan_send(sc, buf);
    r += str_chan_send(sc, NULL);
    r += str_chan_send(sc, 0);
    r += ptr_chan_send(pc, &p);
    r += ptr_chan_send(pc, NULL);
    r += cb_chan_send(fc, f);
    r += cb_chan_send(fc, cb);
    r += point_chan_send(ptc, p);
    r += point_chan_try_send(ptc, (struct point){3, 4});

    r += int_chan_recv(ic, &i);
    r += int_chan_recv(ic, NULL);
    r += int_chan_try_recv(ic, &i);
    r += long_chan_recv(lc, &l);
    r += bool_chan_recv(bc, &b);
    r += str_chan_recv(sc, &str);
    r += point_chan_recv(ptc, &p);
    r += cb_chan_recv(fc, &f);

    chan_case_t cases[] = {
        int_chan_case_recv(ic, &i),
        int_chan_case_send(ic, &i),
        point_chan_case_send(ptc, &p),
        str_chan_case_recv(sc, NULL),
    };
    const int ci = 5;
    cases[1] = int_chan_case_send(ic, &ci);
    r += chan_select(cases, sizeof cases / sizeof cases[0], 0);

    r += (int)int_chan_len(ic) + (int)int_chan_cap(ic);
    int_chan_close(ic);
    int_chan_free(ic);
    long_chan_free(lc);
    u8_chan_free(uc);
    u64_chan_free(qc);
    bool_chan_free(bc);
    double_chan_free(dc);
    color_chan_free(cc);
    str_chan_free(sc);
    ptr_chan_free(pc);
    cb_chan_free(fc);
    point_chan_free(ptc);
    return r + (int)d + (int)u8;
}
