/* A struct of another type. */
#include <gort.h>
struct point { int x, y; };
struct other { int x, y; };
CHAN_DEFINE(point_chan, struct point);
int bad(point_chan c, struct other o);
int bad(point_chan c, struct other o)
{
#ifndef GORT_CF_CONTROL
    return point_chan_send(c, o);
#else
    return point_chan_send(c, (struct point){o.x, o.y});
#endif
}
