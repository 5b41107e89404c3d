/* Receiving an int channel into a double. */
#include <gort.h>
CHAN_DEFINE(int_chan, int);
bool bad(int_chan c, double *d);
bool bad(int_chan c, double *d)
{
#ifndef GORT_CF_CONTROL
    return int_chan_recv(c, d);
#else
    int v;
    bool ok = int_chan_recv(c, &v);
    *d = v;
    return ok;
#endif
}
