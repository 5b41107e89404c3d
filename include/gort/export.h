/* export.h - symbol visibility for libgo-rt.  The library is built with
 * -fvisibility=hidden; only names marked GORT_API are exported. */
#ifndef GORT_EXPORT_H
#define GORT_EXPORT_H

#if defined(GORT_BUILDING_LIBRARY)
#define GORT_API __attribute__((visibility("default")))
#else
#define GORT_API
#endif

#endif /* GORT_EXPORT_H */
