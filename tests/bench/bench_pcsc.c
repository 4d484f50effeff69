/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-bench-pcsc: APDU/s and latency of a short command through pcscd and vpcd to tse-card
 * (run by scripts/bench.sh, which starts pcscd and the card).
 *
 *   tse-bench-pcsc [--runs R] [--json FILE] [--name NAME] [--apdu HEX] READER N
 *
 * Each of the R runs sends N × `80 24 00 00 10` (an 18-byte response) with SCardTransmit,
 * T=1, after one SELECT of the diagnostic applet; latency is one SCardTransmit call. The
 * median, minimum and maximum over the runs of the rate, p50 and p99 are printed and, with
 * --json, written as one JSON object. --apdu sends another command instead, with no SELECT
 * before it and any response ending in 9000 accepted (for other cards behind vpcd, e.g.
 * vsmartcard's vicc: docs/performance.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include <PCSC/winscard.h>

#define MAX_RUNS 32

static int usage(void)
{
    fprintf(stderr,
            "usage: tse-bench-pcsc [--runs R] [--json FILE] [--name NAME] [--apdu HEX] READER N\n");
    return 2;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Hex digits (spaces allowed) into out; returns the length or -1. */
static int unhex(const char *h, BYTE *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *h; h++) {
        if (*h == ' ')
            continue;
        int v = hexval(*h);
        if (v < 0)
            return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n == cap)
            return -1;
        out[n++] = (BYTE)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0 ? (int)n : -1;
}

int main(int argc, char **argv)
{
    int runs = 1;
    const char *json = NULL, *name = "pcsc", *apdu = NULL;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--apdu"))
            apdu = argv[i + 1];
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--name"))
            name = argv[i + 1];
        else
            return usage();
    }
    if (argc - i != 2 || runs < 1 || runs > MAX_RUNS)
        return usage();
    const char *reader = argv[i];
    int n = atoi(argv[i + 1]);
    if (n < 100)
        n = 100;
    SCARDCONTEXT ctx;
    SCARDHANDLE h;
    DWORD proto;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv == SCARD_S_SUCCESS)
        rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "tse-bench-pcsc: %s: %s\n", reader, pcsc_stringify_error(rv));
        return 1;
    }
    static const BYTE sel[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                               0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
    BYTE cmd[300] = {0x80, 0x24, 0x00, 0x00, 0x10};
    int clen = 5;
    BYTE r[300];
    DWORD rl = sizeof(r);
    if (apdu) {
        clen = unhex(apdu, cmd, sizeof(cmd));
        if (clen < 4)
            return usage();
    } else {
        SCardTransmit(h, SCARD_PCI_T1, sel, sizeof(sel), NULL, r, &rl);
    }
    double *lat = malloc(sizeof(double) * (size_t)n);
    double rate[MAX_RUNS], p50[MAX_RUNS], p99[MAX_RUNS];
    if (!lat)
        return 1;
    for (int run = 0; run < runs; run++) {
        double t0 = bench_now_us();
        for (int k = 0; k < n; k++) {
            double a = bench_now_us();
            rl = sizeof(r);
            rv = SCardTransmit(h, SCARD_PCI_T1, cmd, (DWORD)clen, NULL, r, &rl);
            if (rv != SCARD_S_SUCCESS || rl < 2 || (!apdu && rl != 18) || r[rl - 2] != 0x90 ||
                r[rl - 1] != 0x00) {
                fprintf(stderr, "tse-bench-pcsc: exchange %d failed: %s\n", k,
                        pcsc_stringify_error(rv));
                return 1;
            }
            lat[k] = bench_now_us() - a;
        }
        rate[run] = n / ((bench_now_us() - t0) / 1e6);
        p50[run] = bench_percentile(lat, (size_t)n, 50);
        p99[run] = bench_percentile(lat, (size_t)n, 99);
    }
    struct bench_stat sr = bench_stat_of(rate, runs), s50 = bench_stat_of(p50, runs),
                      s99 = bench_stat_of(p99, runs);
    printf("%-12s %9.0f APDU/s (%.0f-%.0f)   p50 %7.1f us (%.1f-%.1f)   p99 %7.1f us "
           "(%.1f-%.1f)   [%d runs x %d]\n",
           name, sr.med, sr.min, sr.max, s50.med, s50.min, s50.max, s99.med, s99.min, s99.max, runs,
           n);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            perror(json);
            return 1;
        }
        fprintf(f,
                "{\"name\": \"%s\", \"runs\": %d, \"per_run\": %d, \"command\": \"%s\", "
                "\"apdu_per_s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, "
                "\"p50_us\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, "
                "\"p99_us\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}}",
                name, runs, n, apdu ? apdu : "80 24 00 00 10", sr.med, sr.min, sr.max, s50.med,
                s50.min, s50.max, s99.med, s99.min, s99.max);
        fclose(f);
    }
    free(lat);
    SCardDisconnect(h, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}
