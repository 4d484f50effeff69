/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the apdu-shell script engine: arbitrary bytes as script lines (tse_script_run_line),
 * as a whole stream (multi-line apdutool statements) and as an expectation pattern
 * (tse_expect_match), against a mock target so only the engine is under test.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/script.h"
#include "tse/error.h"

struct mock {
    bool on[2];
    unsigned long tear;
};

static int m_power_on(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    struct mock *m = t;
    if (cap < 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    atr[0] = 0x3B;
    atr[1] = 0x00;
    *len = 2;
    m->on[iface] = true;
    return 0;
}

static int m_reset(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    struct mock *m = t;
    if (!m->on[iface])
        return TSE_ERR_POWERED_OFF;
    return m_power_on(t, iface, atr, cap, len);
}

static int m_power_off(void *t, int iface)
{
    struct mock *m = t;
    m->on[iface] = false;
    return 0;
}

static bool m_is_powered(void *t, int iface)
{
    struct mock *m = t;
    return m->on[iface];
}

/* 9000, with the command data echoed for INS EE (so $R has something to slice) and an
 * armed power cut firing on INS D6. */
static int m_transmit(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                      size_t *rlen)
{
    struct mock *m = t;
    size_t n = 0;
    if (!m->on[iface])
        return TSE_ERR_POWERED_OFF;
    if (clen >= 2 && c[1] == 0xD6 && m->tear && --m->tear == 0) {
        m->on[0] = m->on[1] = false;
        return TSE_ERR_TORN;
    }
    if (clen > 5 && c[1] == 0xEE)
        n = clen - 5;
    if (rcap < n + 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (n)
        memcpy(r, c + 5, n);
    r[n] = 0x90;
    r[n + 1] = 0x00;
    *rlen = n + 2;
    return 0;
}

static int m_tear_at(void *t, unsigned long n)
{
    struct mock *m = t;
    m->tear = n;
    return 0;
}

static int m_queue_random(void *t, const uint8_t *b, size_t len)
{
    (void)t;
    (void)b;
    (void)len;
    return 0;
}

static int m_get_counter(void *t, const char *name, uint64_t *v)
{
    (void)t;
    if (strcmp(name, "seq") != 0)
        return TSE_ERR_NOT_FOUND;
    *v = 7;
    return 0;
}

static int m_cl_params(void *t, struct tse_cl_params *p)
{
    (void)t;
    memset(p, 0, sizeof(*p));
    p->uid_len = 4;
    p->ats_len = 1;
    return 0;
}

/* set_counter is left NULL to exercise the "not supported" path. */
static const struct tse_target_ops mock_ops = {
    .name = "fuzz",
    .power_on = m_power_on,
    .power_off = m_power_off,
    .reset = m_reset,
    .is_powered = m_is_powered,
    .transmit = m_transmit,
    .tear_at = m_tear_at,
    .queue_random = m_queue_random,
    .get_counter = m_get_counter,
    .cl_params = m_cl_params,
};

static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

static struct tse_script *engine(struct mock *m, bool stop)
{
    struct tse_script_opts o;
    memset(&o, 0, sizeof(o));
    memset(m, 0, sizeof(*m));
    o.out = devnull();
    o.err = devnull();
    o.auto_power = true;
    o.trace = true;
    o.timing = true;
    o.stop_on_fail = stop;
    return tse_script_new(&mock_ops, m, &o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tse_script_stats st;
    struct tse_script *s;
    struct mock m;
    char *text = malloc(size + 1);
    size_t i, start = 0;
    unsigned line = 0;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* Line by line, as the interactive shell does. */
    s = engine(&m, false);
    if (s) {
        for (i = 0; i <= size; i++) {
            if (i == size || text[i] == '\n') {
                char saved = text[i];
                text[i] = '\0';
                tse_script_run_line(s, text + start, "fuzz", ++line);
                text[i] = saved;
                start = i + 1;
            }
        }
        tse_script_stats(s, &st);
        if (st.expectations > st.exchanges)
            abort(); /* an expectation is only checked after an exchange */
        tse_script_free(s);
    }

    /* As a stream, where apdutool statements may span lines and stop_on_fail applies. */
    s = engine(&m, size > 0 && (data[0] & 1));
    if (s) {
        FILE *in = size ? fmemopen(text, size, "r") : NULL;
        if (in) {
            tse_script_run_stream(s, in, "fuzz");
            fclose(in);
        }
        tse_script_free(s);
    }

    /* First line as a pattern, the rest as the R-APDU. */
    {
        const char *nl = memchr(text, '\n', size);
        if (nl) {
            size_t plen = (size_t)(nl - text);
            text[plen] = '\0';
            tse_expect_match(text, data + plen + 1, size - plen - 1);
        } else {
            tse_expect_match(text, NULL, 0);
        }
    }
    free(text);
    return 0;
}
