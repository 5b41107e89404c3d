/* A pointer to another type on a pointer channel. */
#include <gort.h>
CHAN_DEFINE(str_chan, const char *);
int bad(str_chan c, const double *d);
int bad(str_chan c, const double *d)
{
#ifndef GORT_CF_CONTROL
    return str_chan_send(c, d);
#else
    return str_chan_send(c, (const char *)d);
#endif
}
