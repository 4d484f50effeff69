/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the vpcd message reader of tse-card: arbitrary bytes from "vpcd"
 * (length-prefixed messages, control bytes, APDUs, truncated messages) over a socketpair.
 * The session must end cleanly at the end of input, never crash or hang.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "io/vpcd_internal.h"

static struct tse_card *card;

static void *drain(void *p)
{
    int fd = *(int *)p;
    static char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!card) {
        char path[512], err[256];
        fuzz_path(path, sizeof(path), "vpcd");
        unlink(path);
        if (tse_card_create(&card, path, NULL, 0, NULL, NULL, err, sizeof(err)) != 0)
            abort();
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    /* sv[1] is the card's end. The input goes in through sv[0] (it fits the socket buffer:
     * inputs are at most a few KiB); a thread drains the card's replies from sv[0]. */
    pthread_t t;
    pthread_create(&t, NULL, drain, &sv[0]);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(sv[0], data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    struct tse_vpcd_options o = {.iface = TSE_IF_CONTACT};
    FILE *devnull = fopen("/dev/null", "w");
    int r = tse_vpcd_session(card, sv[1], &o, devnull);
    fclose(devnull);
    if (r != 0 && r != -1)
        abort();
    close(sv[1]);
    pthread_join(t, NULL);
    close(sv[0]);
    tse_card_power_off(card, TSE_IF_CONTACT);
    return 0;
}
