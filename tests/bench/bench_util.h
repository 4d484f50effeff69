/* SPDX-License-Identifier: Apache-2.0 */
/* Timing helpers shared by the benchmarks. */
#ifndef TSE_BENCH_UTIL_H
#define TSE_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sort n latencies and return the p-th percentile (0..100). */
static inline double bench_percentile(double *lat, size_t n, unsigned p)
{
    qsort(lat, n, sizeof(double), bench_cmp_double);
    return lat[n * p / 100 < n ? n * p / 100 : n - 1];
}

#endif
