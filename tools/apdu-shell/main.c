/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apdu-shell: drive an emulated card image with apdu-shell or apdutool scripts, or by hand.
 * docs/apdu-shell.md is the user guide.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "shell/script.h"
#include "tse/card.h"
#include "tse/error.h"

#ifndef TSE_VERSION
#define TSE_VERSION "0.1.0"
#endif

#define PROFILE_MAX (1u << 20)
#define MAX_SCRIPTS 256

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fputs("usage: apdu-shell (--card IMG [--profile FILE] | --reader NAME|INDEX) [-f SCRIPT]...\n"
          "                  [--timing] [--trace] [--stop-on-fail] [--fsync] [--no-auto-power]\n"
          "                  [--help] [--version]\n"
          "\n"
          "  --card IMG        card image; created from the profile if it does not exist\n"
          "  --reader R        instead of an image, the card in PC/SC reader R: an index from\n"
          "                    0 or part of the reader name (e.g. \"Virtual PCD 00 00\")\n"
          "  --profile FILE    profile for a new image (default: the built-in profile)\n"
          "  -f SCRIPT         run a script (repeatable); without -f, read stdin or, on a\n"
          "                    terminal, start an interactive session\n"
          "  --timing          print the time of each exchange\n"
          "  --trace           print the interface and channel of each exchange\n"
          "  --stop-on-fail    stop at the first failed expectation or error\n"
          "  --fsync           fsync the image at each commit (power-loss safe, slower)\n"
          "  --no-auto-power   do not power an interface on before its first APDU\n"
          "\n"
          "Exit status: 0 all passed, 1 a failure, 2 usage or open error.\n",
          f);
}

/* Whole file into a NUL-terminated buffer; NULL with errno set on failure. */
static int open_card(struct tse_card **card, const char *img, const char *profile, bool fsync)
{
    struct tse_card_options opt;
    struct stat st;
    char err[512] = "";
    int rc;

    memset(&opt, 0, sizeof(opt));
    opt.fsync = fsync ? 1 : -1;
    bool created = false;
    if (profile && stat(img, &st) == 0)
        fprintf(stderr,
                "apdu-shell: warning: %s exists; --profile only applies when an image is "
                "created\n",
                img);
    rc = tse_card_open_or_create(card, img, profile, &opt, &created, err, sizeof(err));
    if (created)
        fprintf(stderr, "apdu-shell: created card image %s (profile: %s)\n", img,
                profile ? profile : "default");
    if (rc) {
        const char *msg = err[0] ? err : tse_strerror(rc);
        size_t il = strlen(img);
        /* The library's message may already start with the path. */
        if (strncmp(msg, img, il) == 0 && msg[il] == ':' && msg[il + 1] == ' ')
            msg += il + 2;
        fprintf(stderr, "apdu-shell: %s: %s\n", img, msg);
        return 2;
    }
    return 0;
}

static void interactive(struct tse_script *s)
{
    static const char *const ifn[] = {"contact", "contactless"};
    struct sigaction sa;
    char hist[4096] = "";
    const char *home = getenv("HOME");
    unsigned lineno = 0;

    /* No SA_RESTART: Ctrl-C must end the read in readline so that the card gets closed. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    using_history();
    stifle_history(1000);
    if (home && *home) {
        snprintf(hist, sizeof(hist), "%s/.apdu_shell_history", home);
        read_history(hist);
    }
    printf("apdu-shell %s: 'help' lists the commands, 'exit' or Ctrl-D leaves\n", TSE_VERSION);
    while (!interrupted) {
        char prompt[64];
        int iface = 0, rc;
        unsigned ch = 0;
        char *line;
        tse_script_where(s, &iface, &ch);
        snprintf(prompt, sizeof(prompt), "tse %s:%u> ", ifn[iface == 1], ch);
        line = readline(prompt);
        if (!line) {
            if (!interrupted)
                putchar('\n');
            break;
        }
        if (interrupted) {
            free(line);
            break;
        }
        if (line[strspn(line, " \t")])
            add_history(line);
        rc = tse_script_run_line(s, line, "<stdin>", ++lineno);
        free(line);
        fflush(stdout);
        if (rc == 2)
            break;
    }
    if (interrupted)
        fputs("\napdu-shell: interrupted\n", stderr);
    if (hist[0])
        write_history(hist);
}

int main(int argc, char **argv)
{
    const char *img = NULL, *profile = NULL, *reader = NULL;
    const char *scripts[MAX_SCRIPTS];
    size_t nscripts = 0, i;
    struct tse_script_opts so;
    struct tse_script_stats st;
    struct tse_script *s;
    struct tse_card *card = NULL;
    bool fsync = false, batch, io_error = false;
    int a, rc;

    memset(&so, 0, sizeof(so));
    so.auto_power = true;
    for (a = 1; a < argc; a++) {
        const char *o = argv[a];
        const char **val = NULL;
        if (strcmp(o, "--card") == 0)
            val = &img;
        else if (strcmp(o, "--reader") == 0)
            val = &reader;
        else if (strncmp(o, "--reader=", 9) == 0)
            reader = o + 9;
        else if (strcmp(o, "--profile") == 0)
            val = &profile;
        else if (strcmp(o, "-f") == 0 || strcmp(o, "--file") == 0) {
            if (a + 1 >= argc)
                goto missing;
            if (nscripts >= MAX_SCRIPTS) {
                fprintf(stderr, "apdu-shell: more than %d scripts\n", MAX_SCRIPTS);
                return 2;
            }
            scripts[nscripts++] = argv[++a];
            continue;
        } else if (strncmp(o, "--card=", 7) == 0)
            img = o + 7;
        else if (strncmp(o, "--profile=", 10) == 0)
            profile = o + 10;
        else if (strcmp(o, "--timing") == 0)
            so.timing = true;
        else if (strcmp(o, "--trace") == 0)
            so.trace = true;
        else if (strcmp(o, "--stop-on-fail") == 0)
            so.stop_on_fail = true;
        else if (strcmp(o, "--fsync") == 0)
            fsync = true;
        else if (strcmp(o, "--no-auto-power") == 0)
            so.auto_power = false;
        else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(o, "--version") == 0) {
            printf("apdu-shell %s\n", TSE_VERSION);
            return 0;
        } else {
            fprintf(stderr, "apdu-shell: unknown option '%s'\n", o);
            usage(stderr);
            return 2;
        }
        if (val) {
            if (a + 1 >= argc)
                goto missing;
            *val = argv[++a];
        }
    }
    if ((!img || !*img) == (!reader || !*reader)) {
        fputs("apdu-shell: give either --card IMG or --reader NAME|INDEX\n", stderr);
        usage(stderr);
        return 2;
    }

    const struct tse_target_ops *ops = &tse_target_card_ops;
    void *target;
    if (reader) {
        char err[512];
        if (profile || fsync)
            fputs("apdu-shell: --profile and --fsync apply to card images only\n", stderr);
        target = tse_target_pcsc_open(reader, err, sizeof(err));
        if (!target) {
            fprintf(stderr, "apdu-shell: %s\n", err);
            return 2;
        }
        ops = &tse_target_pcsc_ops;
    } else {
        rc = open_card(&card, img, profile, fsync);
        if (rc)
            return rc;
        target = card;
    }
    so.out = stdout;
    so.err = stderr;
    s = tse_script_new(ops, target, &so);
    if (!s) {
        fputs("apdu-shell: out of memory\n", stderr);
        tse_card_free(card);
        tse_target_pcsc_close(reader ? target : NULL);
        return 2;
    }

    batch = nscripts > 0 || !isatty(STDIN_FILENO);
    if (nscripts > 0) {
        for (i = 0; i < nscripts; i++) {
            int r;
            errno = 0;
            r = strcmp(scripts[i], "-") == 0 ? tse_script_run_stream(s, stdin, "<stdin>")
                                             : tse_script_run_file(s, scripts[i]);
            if (r < 0) {
                fprintf(stderr, "apdu-shell: %s: %s\n", scripts[i],
                        errno ? strerror(errno) : "read error");
                io_error = true;
                break;
            }
            if (r > 0 && so.stop_on_fail)
                break;
        }
    } else if (batch) {
        if (tse_script_run_stream(s, stdin, "<stdin>") < 0) {
            fputs("apdu-shell: <stdin>: read error\n", stderr);
            io_error = true;
        }
    } else {
        interactive(s);
    }

    tse_script_stats(s, &st);
    if (batch)
        fprintf(stderr, "apdu-shell: %u exchanges, %u expectations, %u failed\n", st.exchanges,
                st.expectations, st.failures);
    tse_script_free(s);
    tse_card_free(card);
    if (reader)
        tse_target_pcsc_close(target);
    fflush(stdout);
    if (io_error)
        return 2;
    return st.failures ? 1 : 0;

missing:
    fprintf(stderr, "apdu-shell: option %s needs a value\n", argv[a]);
    usage(stderr);
    return 2;
}
