/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A card in a PC/SC reader as a script target, so the same apdu-shell script runs against the
 * emulator (through tse-card and vpcd) and against a real card, and the transcripts can be
 * diffed. "power on" is a cold reset (SCardReconnect with SCARD_UNPOWER_CARD) so a script
 * always starts from a fresh card session, whatever the previous PC/SC client left.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include "shell/script.h"

#ifndef MAX_BUFFER_SIZE_EXTENDED
#define MAX_BUFFER_SIZE_EXTENDED (4 + 3 + (1 << 16) + 3 + 2)
#endif

struct pcsc_target {
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto;
    bool connected;
    char *reader;
    char err[256];
};

static int pcsc_fail(struct pcsc_target *t, const char *what, LONG rv)
{
    snprintf(t->err, sizeof(t->err), "%s: %s (0x%08lX)", what, pcsc_stringify_error(rv),
             (unsigned long)rv);
    return TSE_ERR_IO;
}

void *tse_target_pcsc_open(const char *reader, char *err, size_t errlen)
{
    struct pcsc_target *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &t->ctx);
    if (rv != SCARD_S_SUCCESS) {
        snprintf(err, errlen, "cannot reach pcscd: %s (is pcscd running?)",
                 pcsc_stringify_error(rv));
        free(t);
        return NULL;
    }
    DWORD len = 0;
    char *names = NULL;
    rv = SCardListReaders(t->ctx, NULL, NULL, &len);
    if (rv == SCARD_S_SUCCESS && (names = malloc(len)) != NULL)
        rv = SCardListReaders(t->ctx, NULL, names, &len);
    if (rv != SCARD_S_SUCCESS || !names) {
        snprintf(err, errlen, "no PC/SC readers: %s", pcsc_stringify_error(rv));
        free(names);
        SCardReleaseContext(t->ctx);
        free(t);
        return NULL;
    }
    bool by_index = *reader != '\0';
    for (const char *p = reader; *p; p++)
        if (!isdigit((unsigned char)*p))
            by_index = false;
    long want = by_index ? strtol(reader, NULL, 10) : -1;
    long i = 0;
    for (char *r = names; *r; r += strlen(r) + 1, i++)
        if ((by_index && i == want) || (!by_index && strstr(r, reader))) {
            t->reader = strdup(r);
            break;
        }
    if (!t->reader) {
        size_t off = (size_t)snprintf(err, errlen, "no reader '%s'; readers:", reader);
        i = 0;
        for (char *r = names; *r && off < errlen; r += strlen(r) + 1, i++)
            off += (size_t)snprintf(err + off, errlen - off, " %ld: %s;", i, r);
        free(names);
        SCardReleaseContext(t->ctx);
        free(t);
        return NULL;
    }
    free(names);
    return t;
}

void tse_target_pcsc_close(void *p)
{
    struct pcsc_target *t = p;
    if (!t)
        return;
    if (t->connected)
        SCardDisconnect(t->card, SCARD_LEAVE_CARD);
    SCardReleaseContext(t->ctx);
    free(t->reader);
    free(t);
}

static int get_atr(struct pcsc_target *t, uint8_t *atr, size_t cap, size_t *len)
{
    BYTE buf[MAX_ATR_SIZE];
    DWORD alen = sizeof(buf), state, proto, rlen = 0;
    LONG rv = SCardStatus(t->card, NULL, &rlen, &state, &proto, buf, &alen);
    if (rv != SCARD_S_SUCCESS)
        return pcsc_fail(t, "SCardStatus", rv);
    if (alen > cap)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(atr, buf, alen);
    *len = alen;
    return 0;
}

static int reconnect(struct pcsc_target *t, DWORD how, uint8_t *atr, size_t cap, size_t *len)
{
    LONG rv;
    if (!t->connected) {
        rv = SCardConnect(t->ctx, t->reader, SCARD_SHARE_SHARED,
                          SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &t->card, &t->proto);
        if (rv != SCARD_S_SUCCESS)
            return pcsc_fail(t, t->reader, rv);
        t->connected = true;
    }
    rv = SCardReconnect(t->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, how,
                        &t->proto);
    if (rv != SCARD_S_SUCCESS) {
        SCardDisconnect(t->card, SCARD_LEAVE_CARD);
        t->connected = false;
        return pcsc_fail(t, "SCardReconnect", rv);
    }
    return atr ? get_atr(t, atr, cap, len) : 0;
}

static int p_power_on(void *p, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    struct pcsc_target *t = p;
    if (iface != TSE_IF_CONTACT) {
        snprintf(t->err, sizeof(t->err), "a PC/SC reader shows one interface only");
        return TSE_ERR_INVALID_ARG;
    }
    return reconnect(t, SCARD_UNPOWER_CARD, atr, cap, len);
}

static int p_reset(void *p, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    struct pcsc_target *t = p;
    if (iface != TSE_IF_CONTACT) {
        snprintf(t->err, sizeof(t->err), "a PC/SC reader shows one interface only");
        return TSE_ERR_INVALID_ARG;
    }
    return reconnect(t, SCARD_RESET_CARD, atr, cap, len);
}

static int p_power_off(void *p, int iface)
{
    struct pcsc_target *t = p;
    (void)iface;
    if (t->connected) {
        LONG rv = SCardDisconnect(t->card, SCARD_UNPOWER_CARD);
        t->connected = false;
        if (rv != SCARD_S_SUCCESS)
            return pcsc_fail(t, "SCardDisconnect", rv);
    }
    return 0;
}

static bool p_is_powered(void *p, int iface)
{
    struct pcsc_target *t = p;
    return iface == TSE_IF_CONTACT && t->connected;
}

static int p_transmit(void *p, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                      size_t *rlen)
{
    struct pcsc_target *t = p;
    if (iface != TSE_IF_CONTACT || !t->connected)
        return TSE_ERR_POWERED_OFF;
    if (clen < 4) {
        /* Readers need the 4-byte header, and vpcd would take a 1-byte APDU for a control
         * byte (power off) and never answer. */
        snprintf(t->err, sizeof(t->err), "a C-APDU through PC/SC has at least 4 bytes");
        return TSE_ERR_INVALID_ARG;
    }
    const SCARD_IO_REQUEST *pci = t->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    DWORD n = (DWORD)(rcap < MAX_BUFFER_SIZE_EXTENDED ? rcap : MAX_BUFFER_SIZE_EXTENDED);
    LONG rv = SCardTransmit(t->card, pci, c, (DWORD)clen, NULL, r, &n);
    if (rv != SCARD_S_SUCCESS) {
        if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_E_NO_SMARTCARD) {
            SCardDisconnect(t->card, SCARD_LEAVE_CARD);
            t->connected = false;
        }
        return pcsc_fail(t, "SCardTransmit", rv);
    }
    *rlen = n;
    return 0;
}

static const char *p_last_error(void *p)
{
    struct pcsc_target *t = p;
    return t->err[0] ? t->err : NULL;
}

const struct tse_target_ops tse_target_pcsc_ops = {
    .name = "pcsc",
    .power_on = p_power_on,
    .power_off = p_power_off,
    .reset = p_reset,
    .is_powered = p_is_powered,
    .transmit = p_transmit,
    .last_error = p_last_error,
};
