/* A pointer where a number is expected. */
#include <gort.h>
CHAN_DEFINE(long_chan, long);
int bad(long_chan c, long *p);
int bad(long_chan c, long *p)
{
#ifndef GORT_CF_CONTROL
    return long_chan_try_send(c, p);
#else
    return long_chan_try_send(c, *p);
#endif
}
