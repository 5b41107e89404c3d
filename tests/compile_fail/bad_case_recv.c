/* A select case receiving an int channel into a long. */
#include <gort.h>
CHAN_DEFINE(int_chan, int);
chan_case_t bad(int_chan c, long *out);
chan_case_t bad(int_chan c, long *out)
{
#ifndef GORT_CF_CONTROL
    return int_chan_case_recv(c, out);
#else
    (void)out;
    return int_chan_case_recv(c, NULL);
#endif
}
