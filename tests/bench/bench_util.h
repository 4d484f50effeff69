/* SPDX-License-Identifier: Apache-2.0 */
/* Timing, statistics, memory and JSON helpers shared by the benchmarks (header only). */
#ifndef TSE_BENCH_UTIL_H
#define TSE_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Median, minimum and maximum of repeated runs of one figure. */
struct bench_stat {
    double med, min, max;
    int runs;
};

static inline struct bench_stat bench_stat_of(const double *v, int n)
{
    struct bench_stat s = {0, 0, 0, n};
    if (n <= 0)
        return s;
    double *c = malloc(sizeof(double) * (size_t)n);
    if (!c)
        return s;
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), bench_cmp_double);
    s.min = c[0];
    s.max = c[n - 1];
    s.med = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return s;
}

/* Resident set size of this process in KiB (/proc/self/statm), -1 when unknown. */
static inline long bench_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = -1, res = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * 4;
}

/* Write s as a JSON string literal (quotes, backslashes and control bytes escaped). */
static inline void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

#endif
