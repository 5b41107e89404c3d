/* A number where a pointer is expected. */
#include <gort.h>
CHAN_DEFINE(str_chan, const char *);
int bad(str_chan c, long n);
int bad(str_chan c, long n)
{
#ifndef GORT_CF_CONTROL
    return str_chan_send(c, n);
#else
    return str_chan_send(c, n ? "n" : "");
#endif
}
