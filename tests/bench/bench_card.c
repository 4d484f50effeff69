/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-bench: speed of the in-process card (docs/performance.md gives method and figures).
 * Each case runs a fixed number of exchanges on a fresh card image and reports the rate
 * and the p50/p99 latency of single exchanges measured with CLOCK_MONOTONIC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include <unistd.h>

#include "tse/card.h"

static struct tse_card *fresh(const char *path, int fsync_on)
{
    unlink(path);
    struct tse_card *c;
    char err[256];
    struct tse_card_options opt = {.fsync = fsync_on};
    if (tse_card_create(&c, path, NULL, 0, NULL, &opt, err, sizeof(err)) != 0) {
        fprintf(stderr, "tse-bench: %s\n", err);
        exit(2);
    }
    size_t n;
    uint8_t r[300];
    tse_card_power_on(c, TSE_IF_CONTACT, r, sizeof(r), &n);
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                                  0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
    tse_card_transmit(c, TSE_IF_CONTACT, sel, sizeof(sel), r, sizeof(r), &n);
    return c;
}

static void run(const char *name, const char *path, int fsync_on, const uint8_t *cmd, size_t len,
                int iters)
{
    struct tse_card *c = fresh(path, fsync_on);
    double *lat = malloc(sizeof(double) * (size_t)iters);
    static uint8_t r[TSE_RAPDU_MAX];
    size_t n;
    double t0 = bench_now_us();
    for (int i = 0; i < iters; i++) {
        double a = bench_now_us();
        if (tse_card_transmit(c, TSE_IF_CONTACT, cmd, len, r, sizeof(r), &n) != 0 ||
            r[n - 2] != 0x90) {
            fprintf(stderr, "tse-bench: %s: exchange failed\n", name);
            exit(1);
        }
        lat[i] = bench_now_us() - a;
    }
    double total = bench_now_us() - t0;
    struct tse_card_stats st;
    tse_card_stats(c, &st);
    printf("%-34s %9.0f APDU/s   p50 %8.2f us   p99 %8.2f us   (%d exchanges, %lu store "
           "writes, %lu compactions)\n",
           name, iters / (total / 1e6), bench_percentile(lat, (size_t)iters, 50),
           bench_percentile(lat, (size_t)iters, 99), iters, st.writes, st.compactions);
    free(lat);
    tse_card_free(c);
    unlink(path);
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/tse-bench-%ld.img", dir ? dir : "/tmp", (long)getpid());
    static const uint8_t state[] = {0x80, 0x24, 0x00, 0x00, 0x10};
    static const uint8_t inc[] = {0x80, 0x20, 0x00, 0x00, 0x04};
    static const uint8_t xfer[] = {0x80, 0x22, 0x00, 0x00, 0x04, 0, 0, 0, 0};
    uint8_t echo[5 + 255 + 1] = {0x80, 0x10, 0x00, 0x00, 0xFF};
    printf("tse-bench: in-process card, default profile, diag applet\n");
    run("read (80 24, no store write)", path, 0, state, sizeof(state), 200000 * scale);
    run("echo 255 bytes (80 10)", path, 0, echo, sizeof(echo), 100000 * scale);
    run("non-atomic write (80 20)", path, 0, inc, sizeof(inc), 50000 * scale);
    run("transaction, 4 writes (80 22)", path, 0, xfer, sizeof(xfer), 50000 * scale);
    run("transaction, fsync on", path, 1, xfer, sizeof(xfer), 500 * scale);
    return 0;
}
