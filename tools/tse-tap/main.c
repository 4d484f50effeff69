/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-tap: a reader that taps a card (libnfc initiator, or an in-process card image), runs a
 * transaction on it and reports each exchange with the card's time and the modelled
 * ISO 14443 air time, the typical transaction time at 106/212/424/848 kbit/s and an SVG
 * timeline. Transactions are plug-ins (txn.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tse/error.h"
#include "tse/nfc.h"
#include "reader.h"
#include "txn.h"

static const struct tap_txn *const txns[] = {
    &tap_txn_apdu,
    &tap_txn_script,
    &tap_txn_purse,
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tse-tap (--device CONNSTRING | --card IMG [--profile FILE] | --reader NAME)\n"
            "               [options]\n"
            "               [--apdu HEX[=>PATTERN]]... [-f SCRIPT] [--txn NAME]\n"
            "Tap a card as a contactless reader, run a transaction, and report every exchange\n"
            "with the card's processing time and the modelled ISO 14443 air time.\n\n"
            "  --device CONNSTRING  libnfc device, e.g. pn532_uart:/dev/ttyUSB0 or a\n"
            "                       tse-pn532sim pty; \"default\": libnfc's default device\n"
            "  --card IMG           tap an in-process card image instead (no libnfc; exact\n"
            "                       card time); --profile FILE for a new image\n"
            "  --reader NAME        a PC/SC reader (index from 0 or part of its name), e.g.\n"
            "                       tse-card's vpcd reader; card time = round trip\n"
            "  --apdu HEX[=>PAT]    an exchange (repeatable, in order); PAT as in apdu-shell\n"
            "                       (hex, X = any nibble, * = any bytes)\n"
            "  -f SCRIPT            an apdu-shell script to run on the tapped card\n"
            "  --txn NAME           transaction (default: script with -f, else apdu);\n"
            "                       --txn list shows them\n"
            "  --param KEY=VALUE    a parameter for the transaction (repeatable)\n"
            "  --rate R             106, 212, 424 or 848 kbit/s for the model (default 106);\n"
            "                       212/424 are also requested from the reader (PPS)\n"
            "  --device-model M     sim (default): card time = round trip through the\n"
            "                       simulator; sim-realtime: minus the modelled air time\n"
            "                       (tse-pn532sim --realtime); pn532: round trip minus\n"
            "                       modelled UART and air time\n"
            "  --wait SEC           how long to wait for a card (default 10)\n"
            "  --timeout MS         per exchange (default 5000)\n"
            "  --repeat N           tap N times (activate, transaction, release)\n"
            "  --svg FILE           SVG timeline of the (last) tap\n"
            "  --quiet              no transcript lines, only the report\n"
            "  --no-report          no report\n"
            "  --help               this text\n\n"
            "Exit status: 0 success; 1 a transaction failed; 2 usage or device error;\n"
            "3 no card within --wait.\n");
}

static int open_card(struct tse_card **card, const char *image, const char *profile)
{
    char err[512] = "";
    bool created = false;
    int rc = tse_card_open_or_create(card, image, profile, NULL, &created, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-tap: %s\n", err[0] ? err : tse_strerror(rc));
        return 2;
    }
    if (created)
        fprintf(stderr, "tse-tap: created card image %s (profile: %s)\n", image,
                profile ? profile : "default");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"device", required_argument, NULL, 'd'},
                                             {"card", required_argument, NULL, 'c'},
                                             {"profile", required_argument, NULL, 'p'},
                                             {"apdu", required_argument, NULL, 'a'},
                                             {"txn", required_argument, NULL, 'T'},
                                             {"param", required_argument, NULL, 'P'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"device-model", required_argument, NULL, 'm'},
                                             {"wait", required_argument, NULL, 'w'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"repeat", required_argument, NULL, 'n'},
                                             {"svg", required_argument, NULL, 's'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"no-report", no_argument, NULL, 'N'},
                                             {"reader", required_argument, NULL, 'R'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *device = NULL, *image = NULL, *reader = NULL, *profile = NULL, *txn_name = NULL,
               *svg = NULL;
    struct tse_tap_options to = {.rate = TSE_AIR_106, .wait_ms = 10000, .timeout_ms = 5000};
    const char **apdus = calloc((size_t)argc, sizeof(char *));
    const char **params = calloc((size_t)argc, sizeof(char *));
    struct tap_args a = {.out = stdout};
    unsigned long repeat = 1;
    bool report = true;
    if (!apdus || !params)
        return 2;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            device = optarg;
            break;
        case 'c':
            image = optarg;
            break;
        case 'R':
            reader = optarg;
            break;
        case 'p':
            profile = optarg;
            break;
        case 'a':
            apdus[a.n_apdus++] = optarg;
            break;
        case 'f':
            a.script = optarg;
            break;
        case 'T':
            txn_name = optarg;
            break;
        case 'P':
            if (!strchr(optarg, '=')) {
                fprintf(stderr, "tse-tap: --param wants KEY=VALUE\n");
                return 2;
            }
            params[a.n_params++] = optarg;
            break;
        case 'r':
            if (tse_air_rate_parse(optarg, &to.rate) != 0) {
                fprintf(stderr, "tse-tap: --rate is 106, 212, 424 or 848\n");
                return 2;
            }
            break;
        case 'm':
            if (!strcmp(optarg, "sim"))
                to.device = TSE_TAP_DEV_SIM;
            else if (!strcmp(optarg, "pn532"))
                to.device = TSE_TAP_DEV_PN532;
            else if (!strcmp(optarg, "sim-realtime"))
                to.device = TSE_TAP_DEV_SIM_REALTIME;
            else {
                fprintf(stderr, "tse-tap: --device-model is sim, sim-realtime or pn532\n");
                return 2;
            }
            break;
        case 'w': {
            double w = strtod(optarg, &end);
            if (*end || w < 0 || w > 86400) {
                fprintf(stderr, "tse-tap: --wait wants seconds\n");
                return 2;
            }
            to.wait_ms = (int)(w * 1000);
            break;
        }
        case 't':
            to.timeout_ms = (int)strtol(optarg, &end, 10);
            if (*end || to.timeout_ms < 1) {
                fprintf(stderr, "tse-tap: --timeout wants milliseconds\n");
                return 2;
            }
            break;
        case 'n':
            repeat = strtoul(optarg, &end, 10);
            if (*end || repeat < 1 || repeat > 1000000) {
                fprintf(stderr, "tse-tap: --repeat wants 1..1000000\n");
                return 2;
            }
            break;
        case 's':
            svg = optarg;
            break;
        case 'q':
            a.quiet = true;
            break;
        case 'N':
            report = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    a.apdus = apdus;
    a.params = params;
    if (txn_name && !strcmp(txn_name, "list")) {
        for (size_t i = 0; i < sizeof(txns) / sizeof(txns[0]); i++)
            printf("%-10s %s\n", txns[i]->name, txns[i]->summary);
        return 0;
    }
    if (optind != argc || (device != NULL) + (image != NULL) + (reader != NULL) != 1) {
        usage(stderr);
        return 2;
    }
    if (!txn_name)
        txn_name = a.script ? "script" : "apdu";
    const struct tap_txn *txn = NULL;
    for (size_t i = 0; i < sizeof(txns) / sizeof(txns[0]); i++)
        if (!strcmp(txns[i]->name, txn_name))
            txn = txns[i];
    if (!txn) {
        fprintf(stderr, "tse-tap: no transaction '%s' (--txn list)\n", txn_name);
        return 2;
    }

    struct tse_card *card = NULL;
    if (image && open_card(&card, image, profile) != 0)
        return 2;
    to.card = card;
    const struct tse_tap_transport *tr = NULL;
    if (reader) {
        char rerr[512] = "";
        tr = tap_pcsc_open(reader, rerr, sizeof(rerr));
        if (!tr) {
            fprintf(stderr, "tse-tap: %s\n", rerr);
            return 2;
        }
    }
    to.transport = tr;
    to.connstring = device && strcmp(device, "default") ? device : NULL;
    struct tse_tap *tap = NULL;
    char err[256] = "";
    int rc = tse_tap_open(&tap, &to, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-tap: %s\n", err[0] ? err : tse_strerror(rc));
        tse_card_free(card);
        tap_pcsc_close(tr);
        return 2;
    }
    int status = 0;
    for (unsigned long i = 0; i < repeat && status == 0; i++) {
        struct tse_pn532_card_info k;
        rc = tse_tap_activate(tap, &k);
        if (rc) {
            fprintf(stderr, "tse-tap: %s\n",
                    rc == TSE_ERR_NOT_FOUND ? "no card in the field" : "reader error");
            status = rc == TSE_ERR_NOT_FOUND ? 3 : 2;
            break;
        }
        a.tap_index = (unsigned)i;
        if (txn->run(tap, &a) != 0)
            status = 1;
        if (report)
            tse_tap_report(tap, stdout);
        if (svg && (i + 1 == repeat || status) && tse_tap_svg(tap, svg) != 0) {
            fprintf(stderr, "tse-tap: cannot write %s\n", svg);
            status = status ? status : 2;
        }
        tse_tap_release(tap);
    }
    tse_tap_close(tap);
    tse_card_free(card);
    tap_pcsc_close(tr);
    free(apdus);
    free(params);
    return status;
}
