/* SPDX-License-Identifier: Apache-2.0 */
/* tse-pn532sim: simulated PN532 chips on pseudo-terminals for libnfc (docs/contactless.md). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell/script.h"
#include "tse/pn532sim.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tse-pn532sim card   --card IMG [--profile FILE] [options]\n"
               "       tse-pn532sim reader -f SCRIPT [--repeat N] [options]\n"
               "       tse-pn532sim bridge [options]\n"
               "Simulated PN532 chips on pseudo-terminals, for libnfc's pn532_uart driver\n"
               "(connstring pn532_uart:/dev/pts/N, or pn532_uart:LINK).\n\n"
               "  card    a reader with the emulated card IMG in its field: libnfc initiators\n"
               "          (nfc-list, tse-tap) open the pty\n"
               "  reader  a chip in target mode: a libnfc card emulator (tse-card --nfc) opens\n"
               "          the pty and the simulated reader runs the apdu-shell SCRIPT on it\n"
               "  bridge  two ptys: readers open the first (--link), a card emulator the second\n"
               "          (--link2); activation and APDUs go between them over the modelled air\n\n"
               "  --link PATH         symlink to the (first) pty, replaced if it exists\n"
               "  --link2 PATH        bridge: symlink to the card emulator's pty\n"
               "  --card IMG          card mode: card image (created from --profile if absent)\n"
               "  --profile FILE      card mode: profile for a new image\n"
               "  -f SCRIPT           reader mode: apdu-shell script run on each activation\n"
               "  --repeat N          reader mode: activations (each runs SCRIPT; default 1)\n"
               "  --wait SEC          reader mode: how long to wait for the emulator (default 30)\n"
               "  --realtime[=SCALE]  answer after SCALE x the modelled ISO 14443 air time\n"
               "                      (default SCALE 1; without the option: at once)\n"
               "  --log FILE          JSON lines: every command, activation and APDU with\n"
               "                      model_air_ms, card_ms, model_total_ms, model_hsu_ms\n"
               "  --trace             one line per activation and APDU on stderr\n"
               "  --help              this text\n\n"
               "Exit status: 0 stopped by a signal (card, bridge) or every script line passed\n"
               "(reader); 1 failures; 2 usage or set-up error.\n");
}

static int open_card(struct tse_card **card, const char *image, const char *profile)
{
    char err[512] = "";
    bool created = false;
    int rc = tse_card_open_or_create(card, image, profile, NULL, &created, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-pn532sim: %s\n", err[0] ? err : tse_strerror(rc));
        return 2;
    }
    if (created)
        fprintf(stderr, "tse-pn532sim: created card image %s (profile: %s)\n", image,
                profile ? profile : "default");
    return 0;
}

/* ---- reader mode: the apdu-shell engine drives the simulated reader ---------------------- */

struct sim_target {
    struct tse_pn532sim *sim;
    int wait_ms;
    bool active;
    struct tse_pn532_card_info as;
    char msg[160];
};

/* The reader sees one interface; scripts may use either name for it. */
static int st_power_on(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    (void)iface;
    struct sim_target *s = t;
    if (s->active) {
        tse_pn532sim_reader_release(s->sim);
        s->active = false;
    }
    int rc = tse_pn532sim_reader_activate(s->sim, &s->as, s->wait_ms);
    if (rc) {
        snprintf(s->msg, sizeof(s->msg), "no card emulator in target mode on the pty after %d ms",
                 s->wait_ms);
        return rc;
    }
    s->active = true;
    if (cap < s->as.ats_len)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(atr, s->as.ats, s->as.ats_len);
    *len = s->as.ats_len;
    return 0;
}

static int st_power_off(void *t, int iface)
{
    (void)iface;
    struct sim_target *s = t;
    if (s->active)
        tse_pn532sim_reader_release(s->sim);
    s->active = false;
    return 0;
}

static bool st_is_powered(void *t, int iface)
{
    (void)iface;
    return ((struct sim_target *)t)->active;
}

static int st_transmit(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                       size_t *rlen)
{
    (void)iface;
    struct sim_target *s = t;
    if (!s->active)
        return TSE_ERR_POWERED_OFF;
    if (clen > TSE_PN532_MAX_CAPDU) {
        snprintf(s->msg, sizeof(s->msg), "C-APDU of %zu bytes: libnfc targets take at most %d",
                 clen, TSE_PN532_MAX_CAPDU);
        return TSE_ERR_INVALID_ARG;
    }
    int rc = tse_pn532sim_reader_transmit(s->sim, c, clen, r, rcap, rlen, 10000);
    if (rc == TSE_ERR_STATE) {
        s->active = false;
        snprintf(s->msg, sizeof(s->msg), "the card emulator left target mode");
    } else if (rc == TSE_ERR_IO) {
        snprintf(s->msg, sizeof(s->msg), "no answer from the card emulator within 10 s");
    }
    return rc;
}

static int st_cl_params(void *t, struct tse_cl_params *p)
{
    struct sim_target *s = t;
    memset(p, 0, sizeof(*p));
    memcpy(p->uid, s->as.uid, s->as.uid_len);
    p->uid_len = s->as.uid_len;
    memcpy(p->atqa, s->as.atqa, 2);
    p->sak = s->as.sak;
    size_t n = s->as.ats_len < sizeof(p->ats) ? s->as.ats_len : sizeof(p->ats);
    memcpy(p->ats, s->as.ats, n);
    p->ats_len = n;
    return 0;
}

static const char *st_last_error(void *t)
{
    struct sim_target *s = t;
    return s->msg[0] ? s->msg : NULL;
}

static const struct tse_target_ops sim_target_ops = {
    .name = "simulated reader",
    .power_on = st_power_on,
    .power_off = st_power_off,
    .reset = st_power_on,
    .is_powered = st_is_powered,
    .transmit = st_transmit,
    .cl_params = st_cl_params,
    .last_error = st_last_error,
};

struct script_job {
    struct tse_pn532sim *sim;
    const char *script;
    unsigned repeat;
    int wait_ms;
    int failures;
};

static void *script_thread(void *p)
{
    struct script_job *j = p;
    struct sim_target t = {.sim = j->sim, .wait_ms = j->wait_ms};
    for (unsigned i = 0; i < j->repeat && !stop_flag; i++) {
        struct tse_script_opts so = {.auto_power = true};
        struct tse_script *s = tse_script_new(&sim_target_ops, &t, &so);
        if (!s) {
            j->failures++;
            break;
        }
        int r = tse_script_run_file(s, j->script);
        tse_script_free(s);
        st_power_off(&t, 0); /* the emulator sees the release and waits again */
        if (r < 0) {
            fprintf(stderr, "tse-pn532sim: cannot read %s\n", j->script);
            j->failures++;
            break;
        }
        j->failures += r;
    }
    tse_pn532sim_stop(j->sim);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"link", required_argument, NULL, 'l'},
                                             {"link2", required_argument, NULL, 'L'},
                                             {"card", required_argument, NULL, 'c'},
                                             {"profile", required_argument, NULL, 'p'},
                                             {"repeat", required_argument, NULL, 'r'},
                                             {"wait", required_argument, NULL, 'w'},
                                             {"realtime", optional_argument, NULL, 'R'},
                                             {"log", required_argument, NULL, 'g'},
                                             {"trace", no_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct tse_pn532sim_options o = {.mode = TSE_SIM_CARD};
    const char *image = NULL, *profile = NULL, *script = NULL, *logpath = NULL;
    unsigned long repeat = 1;
    double wait_s = 30;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'l':
            o.link[0] = optarg;
            break;
        case 'L':
            o.link[1] = optarg;
            break;
        case 'c':
            image = optarg;
            break;
        case 'p':
            profile = optarg;
            break;
        case 'f':
            script = optarg;
            break;
        case 'r':
            repeat = strtoul(optarg, &end, 10);
            if (*end || repeat < 1 || repeat > 1000000) {
                fprintf(stderr, "tse-pn532sim: --repeat wants 1..1000000\n");
                return 2;
            }
            break;
        case 'w':
            wait_s = strtod(optarg, &end);
            if (*end || wait_s <= 0 || wait_s > 86400) {
                fprintf(stderr, "tse-pn532sim: --wait wants seconds\n");
                return 2;
            }
            break;
        case 'R':
            o.pace = optarg ? strtod(optarg, &end) : 1.0;
            if ((optarg && *end) || o.pace <= 0 || o.pace > 1000) {
                fprintf(stderr, "tse-pn532sim: --realtime wants a scale > 0\n");
                return 2;
            }
            break;
        case 'g':
            logpath = optarg;
            break;
        case 't':
            o.trace = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[optind];
    if (!strcmp(mode, "card")) {
        o.mode = TSE_SIM_CARD;
    } else if (!strcmp(mode, "reader")) {
        o.mode = TSE_SIM_READER;
    } else if (!strcmp(mode, "bridge")) {
        o.mode = TSE_SIM_BRIDGE;
    } else {
        fprintf(stderr, "tse-pn532sim: mode is card, reader or bridge, not '%s'\n", mode);
        return 2;
    }
    if ((o.mode == TSE_SIM_CARD) != (image != NULL) || (o.mode == TSE_SIM_READER) != !!script ||
        (o.link[1] && o.mode != TSE_SIM_BRIDGE)) {
        fprintf(stderr, "tse-pn532sim: card mode needs --card, reader mode -f SCRIPT; "
                        "--link2 is for bridge mode\n");
        return 2;
    }
    if (script && access(script, R_OK) != 0) {
        fprintf(stderr, "tse-pn532sim: %s: %s\n", script, strerror(errno));
        return 2;
    }

    struct tse_card *card = NULL;
    if (image && open_card(&card, image, profile) != 0)
        return 2;
    o.card = card;
    FILE *log = NULL;
    if (logpath && !(log = fopen(logpath, "w"))) {
        fprintf(stderr, "tse-pn532sim: %s: %s\n", logpath, strerror(errno));
        tse_card_free(card);
        return 2;
    }
    o.log = log;
    o.stop = &stop_flag;
    setvbuf(stderr, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct tse_pn532sim *sim = NULL;
    char err[512] = "";
    int rc = tse_pn532sim_new(&sim, &o, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-pn532sim: %s\n", err[0] ? err : tse_strerror(rc));
        tse_card_free(card);
        if (log)
            fclose(log);
        return 2;
    }
    static const char *const role[3][2] = {{"reader with the card in its field", NULL},
                                           {"target for a card emulator", NULL},
                                           {"reader side", "card emulator side"}};
    for (int i = 0; i < 2 && tse_pn532sim_pty(sim, i); i++)
        fprintf(stderr, "tse-pn532sim: %s mode, pty %d (%s): pn532_uart:%s%s%s\n", mode, i,
                role[o.mode][i], o.link[i] ? o.link[i] : tse_pn532sim_pty(sim, i),
                o.link[i] ? " -> " : "", o.link[i] ? tse_pn532sim_pty(sim, i) : "");

    struct script_job job = {
        .sim = sim, .script = script, .repeat = (unsigned)repeat, .wait_ms = (int)(wait_s * 1000)};
    pthread_t th;
    bool threaded = false;
    if (o.mode == TSE_SIM_READER) {
        if (pthread_create(&th, NULL, script_thread, &job) != 0) {
            fprintf(stderr, "tse-pn532sim: cannot start the script thread\n");
            rc = 2;
            goto out;
        }
        threaded = true;
    }
    rc = tse_pn532sim_run(sim) ? 2 : 0;
    if (threaded) {
        stop_flag = 1; /* a signal: let the script thread give up */
        pthread_join(th, NULL);
        if (!rc)
            rc = job.failures ? 1 : 0;
        fprintf(stderr, "tse-pn532sim: %lu activation(s), %d failure(s)\n", repeat, job.failures);
    }
out:
    tse_pn532sim_free(sim);
    tse_card_free(card);
    if (log)
        fclose(log);
    return rc;
}
