/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The apdu-shell script engine (docs/apdu-shell.md), shared by tools/apdu-shell and the
 * conformance runner (tests/unit/test_conformance.c). It drives a "target": the in-process
 * card (target_card.c) or, later, a PC/SC reader, through the vtable below, so the same
 * script runs against the emulator and a real card.
 */
#ifndef TSE_SHELL_SCRIPT_H
#define TSE_SHELL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tse/card.h"

/* What a script can drive. Functions a target cannot do are NULL; the engine then reports
 * "<command>: not supported by this target" and counts an error. Return tse_err values. */
struct tse_target_ops {
    const char *name;
    int (*power_on)(void *t, int iface, uint8_t *atr, size_t cap, size_t *len);
    int (*power_off)(void *t, int iface);
    int (*reset)(void *t, int iface, uint8_t *atr, size_t cap, size_t *len);
    bool (*is_powered)(void *t, int iface);
    int (*transmit)(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                    size_t *rlen);
    int (*tear_at)(void *t, unsigned long n);
    int (*queue_random)(void *t, const uint8_t *b, size_t len);
    int (*set_counter)(void *t, const char *name, uint64_t v);
    int (*get_counter)(void *t, const char *name, uint64_t *v);
    /* Contactless UID/ATQA/SAK/ATS for `atr` on the contactless interface. */
    int (*cl_params)(void *t, struct tse_cl_params *p);
    /* Details of the last failure (e.g. the PC/SC error), or NULL. May be NULL. */
    const char *(*last_error)(void *t);
};

/* The in-process card as a target (target_card.c). */
extern const struct tse_target_ops tse_target_card_ops;

/* A card in a PC/SC reader as a target (target_pcsc.c). `reader` is an index from 0 or a
 * substring of the reader name. Returns NULL and a message in err when pcscd or the reader
 * cannot be reached. Only the contact interface exists; tear, random and counter commands
 * are not supported. */
extern const struct tse_target_ops tse_target_pcsc_ops;
void *tse_target_pcsc_open(const char *reader, char *err, size_t errlen);
void tse_target_pcsc_close(void *t);

struct tse_script_opts {
    FILE *out;         /* transcript ("-> …", "<- …", messages); NULL = stdout */
    FILE *err;         /* errors and failed expectations; NULL = stderr */
    bool timing;       /* print the time of each exchange */
    bool trace;        /* initial state of `trace on|off` (interface and channel per APDU) */
    bool stop_on_fail; /* stop at the first failed expectation or error */
    bool auto_power;   /* power the current interface on before the first APDU if it is off */
};

struct tse_script;

/* Create an engine on a target. Returns NULL on allocation failure. */
struct tse_script *tse_script_new(const struct tse_target_ops *ops, void *target,
                                  const struct tse_script_opts *opts);
void tse_script_free(struct tse_script *s);

/*
 * Run one line (interactive use). `file`/`line` are used in messages.
 * Returns 0 when the line succeeded, 1 when an expectation failed or the line had an error
 * (a message was printed), 2 when the script asked to stop (`exit`/`quit`).
 */
int tse_script_run_line(struct tse_script *s, const char *text, const char *file, unsigned line);

/* Run a whole script from a stream (apdu-shell or apdutool syntax, detected per statement).
 * Returns the number of failed lines (0 = everything passed); -1 on I/O error. */
int tse_script_run_stream(struct tse_script *s, FILE *in, const char *file);
/* Same for a file name (used by `include`). -1 if the file cannot be opened. */
int tse_script_run_file(struct tse_script *s, const char *path);

/* Counters since creation. */
struct tse_script_stats {
    unsigned exchanges;
    unsigned expectations;
    unsigned failures; /* failed expectations and erroneous lines */
};
void tse_script_stats(const struct tse_script *s, struct tse_script_stats *st);

/* The current interface (enum tse_iface) and its current logical channel, for a prompt. */
void tse_script_where(const struct tse_script *s, int *iface, unsigned *channel);

/*
 * Expectation matching, exposed for unit tests and the fuzz target. `pattern` is the text
 * after "=>" (hex digits, spaces, X = any nibble, * = any number of bytes); `actual` the
 * R-APDU bytes. Returns 1 on match, 0 on mismatch, -1 when the pattern is malformed.
 */
int tse_expect_match(const char *pattern, const uint8_t *actual, size_t len);

#endif
