/* Sending a double * on an int channel (API.md's example). */
#include <gort.h>
CHAN_DEFINE(int_chan, int);
int bad(int_chan c, double *p);
int bad(int_chan c, double *p)
{
#ifndef GORT_CF_CONTROL
    return int_chan_send(c, p);
#else
    return int_chan_send(c, (int)*p);
#endif
}
