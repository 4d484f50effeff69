/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-bench-pcsc: APDU/s and latency of a short command through pcscd and vpcd to tse-card
 * (run by scripts/bench.sh, which starts pcscd and the card). Usage: tse-bench-pcsc READER N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include <PCSC/winscard.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tse-bench-pcsc READER N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 100)
        n = 100;
    SCARDCONTEXT ctx;
    SCARDHANDLE h;
    DWORD proto;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv == SCARD_S_SUCCESS)
        rv = SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "tse-bench-pcsc: %s: %s\n", argv[1], pcsc_stringify_error(rv));
        return 1;
    }
    static const BYTE sel[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                               0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
    static const BYTE cmd[] = {0x80, 0x24, 0x00, 0x00, 0x10};
    BYTE r[300];
    DWORD rl = sizeof(r);
    SCardTransmit(h, SCARD_PCI_T1, sel, sizeof(sel), NULL, r, &rl);
    double *lat = malloc(sizeof(double) * (size_t)n);
    double t0 = bench_now_us();
    for (int i = 0; i < n; i++) {
        double a = bench_now_us();
        rl = sizeof(r);
        rv = SCardTransmit(h, SCARD_PCI_T1, cmd, sizeof(cmd), NULL, r, &rl);
        if (rv != SCARD_S_SUCCESS || rl != 18 || r[16] != 0x90) {
            fprintf(stderr, "tse-bench-pcsc: exchange %d failed: %s\n", i,
                    pcsc_stringify_error(rv));
            return 1;
        }
        lat[i] = bench_now_us() - a;
    }
    double total = bench_now_us() - t0;
    printf("%-34s %9.0f APDU/s   p50 %8.2f us   p99 %8.2f us   (%d exchanges)\n",
           "PC/SC: pcscd + vpcd + tse-card", n / (total / 1e6),
           bench_percentile(lat, (size_t)n, 50), bench_percentile(lat, (size_t)n, 99), n);
    free(lat);
    SCardDisconnect(h, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}
