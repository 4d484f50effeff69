/* SPDX-License-Identifier: Apache-2.0 */
/* tse-card: host a card image and present it to pcscd through vsmartcard's vpcd, and its
 * contactless interface to NFC readers through libnfc target mode (--nfc). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "tse/card.h"
#include "tse/nfc.h"
#include "tse/vpcd.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tse-card --card IMG [options]\n"
            "Present the emulated card in IMG (created on first use) as the card in a PC/SC\n"
            "reader, through pcscd's vpcd driver (Debian package vsmartcard-vpcd).\n"
            "With --nfc, its contactless interface is also an NFC card (docs/contactless.md).\n\n"
            "  --card IMG            card image (created from --profile or the default profile)\n"
            "  --profile FILE        profile used when IMG is created (docs/profile.md)\n"
            "  --vpcd HOST:PORT      where vpcd listens (default 127.0.0.1:35963)\n"
            "  --slot N              vpcd slot: 0 = port 35963 (\"Virtual PCD 00 00\"),\n"
            "                        1 = port 35964 (\"Virtual PCD 00 01\")\n"
            "  --interface IF        card interface the reader sees: contact (default) or\n"
            "                        contactless (PC/SC part 3 ATR built from the ATS)\n"
            "  --nfc CONNSTRING      also serve the contactless interface to NFC readers\n"
            "                        through libnfc target mode on this device (e.g.\n"
            "                        pn532_uart:/dev/ttyUSB0, or a tse-pn532sim pty;\n"
            "                        \"default\": libnfc's default device)\n"
            "  --no-vpcd             with --nfc: do not serve PC/SC through vpcd\n"
            "  --trace               log every APDU pair with its processing time\n"
            "  --fsync               fsync every commit (power-loss safe image)\n"
            "  --no-retry            exit instead of waiting when vpcd is not there\n"
            "  --help                this text\n");
}

struct nfc_job {
    struct tse_card *card;
    struct tse_nfc_target_options o;
    int rc;
};

static void *nfc_thread(void *p)
{
    struct nfc_job *j = p;
    j->rc = tse_nfc_serve(j->card, &j->o);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"card", required_argument, NULL, 'c'},
                                             {"profile", required_argument, NULL, 'p'},
                                             {"vpcd", required_argument, NULL, 'v'},
                                             {"slot", required_argument, NULL, 's'},
                                             {"interface", required_argument, NULL, 'i'},
                                             {"trace", no_argument, NULL, 't'},
                                             {"fsync", no_argument, NULL, 'F'},
                                             {"no-retry", no_argument, NULL, 'n'},
                                             {"nfc", required_argument, NULL, 'N'},
                                             {"no-vpcd", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *image = NULL, *profile = NULL, *nfc = NULL;
    bool no_vpcd = false;
    struct tse_vpcd_options o = {.retry = true};
    struct tse_card_options copt = {.fsync = -1};
    static char host[256];
    int c;
    while ((c = getopt_long(argc, argv, "c:p:v:s:i:tFnh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            image = optarg;
            break;
        case 'p':
            profile = optarg;
            break;
        case 'v': {
            const char *colon = strrchr(optarg, ':');
            char *end;
            long port = colon ? strtol(colon + 1, &end, 10) : 0;
            if (!colon || colon == optarg || *end || port < 1 || port > 65535 ||
                (size_t)(colon - optarg) >= sizeof(host)) {
                fprintf(stderr, "tse-card: --vpcd wants HOST:PORT, got '%s'\n", optarg);
                return 2;
            }
            memcpy(host, optarg, (size_t)(colon - optarg));
            host[colon - optarg] = '\0';
            o.host = host;
            o.port = (uint16_t)port;
            break;
        }
        case 's':
            if (strcmp(optarg, "0") && strcmp(optarg, "1")) {
                fprintf(stderr, "tse-card: --slot is 0 or 1, got '%s'\n", optarg);
                return 2;
            }
            o.port = (uint16_t)(TSE_VPCD_DEFAULT_PORT + (optarg[0] - '0'));
            break;
        case 'i':
            if (!strcmp(optarg, "contact"))
                o.iface = TSE_IF_CONTACT;
            else if (!strcmp(optarg, "contactless"))
                o.iface = TSE_IF_CONTACTLESS;
            else {
                fprintf(stderr, "tse-card: --interface is contact or contactless, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            o.trace = true;
            break;
        case 'F':
            copt.fsync = 1;
            break;
        case 'n':
            o.retry = false;
            break;
        case 'N':
            nfc = optarg;
            break;
        case 'V':
            no_vpcd = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!image || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (no_vpcd && !nfc) {
        fprintf(stderr, "tse-card: --no-vpcd is only meaningful with --nfc\n");
        return 2;
    }
    if (nfc && o.iface == TSE_IF_CONTACTLESS && !no_vpcd) {
        fprintf(stderr, "tse-card: --nfc serves the contactless interface; vpcd cannot serve it "
                        "too (use the contact interface there, or --no-vpcd)\n");
        return 2;
    }

    struct tse_card *card = NULL;
    char err[512] = "";
    int rc;
    bool created = false;
    if (profile && access(image, F_OK) == 0)
        fprintf(stderr, "tse-card: %s exists; --profile only applies when an image is created\n",
                image);
    rc = tse_card_open_or_create(&card, image, profile, &copt, &created, err, sizeof(err));
    if (created)
        fprintf(stderr, "tse-card: created card image %s (profile: %s)\n", image,
                profile ? profile : "default");
    if (rc) {
        fprintf(stderr, "tse-card: %s\n", err[0] ? err : tse_strerror(rc));
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked recv() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.stop = &stop_flag;
    setvbuf(stderr, NULL, _IOLBF, 0);

    if (nfc) {
        struct nfc_job job = {.card = card,
                              .o = {.connstring = strcmp(nfc, "default") ? nfc : NULL,
                                    .retry = o.retry,
                                    .trace = o.trace,
                                    .stop = &stop_flag}};
        if (no_vpcd) {
            rc = tse_nfc_serve(card, &job.o);
        } else {
            /* The NFC thread never takes SIGINT/SIGTERM: they must interrupt the main
             * thread's blocking vpcd receive. */
            sigset_t block, old;
            sigemptyset(&block);
            sigaddset(&block, SIGINT);
            sigaddset(&block, SIGTERM);
            pthread_sigmask(SIG_BLOCK, &block, &old);
            pthread_t th;
            int e = pthread_create(&th, NULL, nfc_thread, &job);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (e) {
                fprintf(stderr, "tse-card: cannot start the NFC thread\n");
                tse_card_free(card);
                return 2;
            }
            rc = tse_vpcd_serve(card, &o);
            stop_flag = 1;
            pthread_join(th, NULL);
            if (!rc)
                rc = job.rc;
        }
    } else {
        rc = tse_vpcd_serve(card, &o);
    }
    tse_card_free(card); /* every commit is already in the image */
    if (stop_flag)
        fprintf(stderr, "tse-card: stopped, image %s closed\n", image);
    return rc ? 1 : 0;
}
