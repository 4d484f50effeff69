/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the contactless registry service and the PPSE (src/gp/crs.c). The input
 * is a sequence of operations [op][len][bytes…] on a card with several contactless entries
 * (two of them conflicting, two implicitly selectable):
 *   op % 8 = 0  a CRS command on the contact interface: INS (F0, F2, CA) from bytes[0], P1,
 *               P2 from bytes[1..2], the rest as data
 *          1  SET STATUS availability: entry bytes[0], P2 bytes[1]
 *          2  SET STATUS priority: entry bytes[0], P2 one of 01 81 02 82
 *          3  SELECT the PPSE on the contactless interface and check its FCI
 *          4  SELECT entry bytes[0] on the interface op bit 3 picks
 *          5  power cycle (op bit 3: which interface), 6 arm a power cut at write len + 1
 *          7  GET STATUS with P2 bytes[0] and the rest as data
 * Whatever happens: a status word for every command, a well-formed PPSE FCI whose every entry
 * can be selected on the contactless interface by the AID it shows, and a card that comes
 * back up from its image after a power cut.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "tse/card.h"
#include "tse/tlv.h"

static const char PROFILE[] =
    "[card]\npersistent_memory = 64K\ncommit_buffer = 4K\n"
    "[instance ep]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = A000000632010105\ncontactless_label = MOT_T_EP\ncontactless_priority = 2\n"
    "[instance cash]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = A000000632010106\ncontactless_label = MOT_T_CASH\ncontactless_priority = 1\n"
    "[instance city]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = A000000632010105215053555A484F55\ncontactless = deactivated\n"
    "contactless_ppse_aid = A000000632010105\ncontactless_label = MOT_T_EP\n"
    "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = F0747365444941A1\ncontactless_default = yes\n"
    "[instance b]\npackage = F0747365444941\nmodule = F074736544494102\n"
    "aid = F0747365444941B1\ncontactless_default = yes\ncontactless = off\n";

/* entries the operations name: ISD, CRS, PPSE and the profile's */
static const char *const AIDS[] = {
    "A000000151000000", "A00000015143525300", "325041592E5359532E4444463031",
    "A000000632010105", "A000000632010106",   "A000000632010105215053555A484F55",
    "F0747365444941A1", "F0747365444941B1",   "A0000006320101",
};
#define N_AIDS (sizeof(AIDS) / sizeof(AIDS[0]))

static struct tse_card *card;
static unsigned long runs;

static void fresh(void)
{
    if (card)
        tse_card_free(card);
    char path[512], err[256];
    fuzz_path(path, sizeof(path), "crs");
    unlink(path);
    if (tse_card_create(&card, path, PROFILE, sizeof(PROFILE) - 1, "fuzz", NULL, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_crs: %s\n", err);
        abort();
    }
}

static void power_up(void)
{
    size_t n;
    for (int i = 0; i < TSE_IF_COUNT; i++)
        if (tse_card_power_on(card, (enum tse_iface)i, NULL, 0, &n) != 0)
            abort(); /* recovery from the image must always work */
}

/* Send a command; returns the response length (SW included), 0 after a power cut. */
static size_t xfer(enum tse_iface itf, const uint8_t *c, size_t n, uint8_t *r)
{
    size_t rl = 0;
    int rc = tse_card_transmit(card, itf, c, n, r, TSE_RAPDU_MAX, &rl);
    if (rc == TSE_ERR_TORN || rc == TSE_ERR_POWERED_OFF) {
        power_up();
        return 0;
    }
    if (rc != 0 || rl < 2)
        abort();
    return rl;
}

static size_t aid_bytes(uint8_t sel, uint8_t *out)
{
    int n = tse_hex_decode(AIDS[sel % N_AIDS], out, 16);
    return n < 0 ? 0 : (size_t)n;
}

static size_t select_cmd(const uint8_t *aid, size_t alen, uint8_t *c)
{
    memcpy(c, "\x00\xA4\x04\x00", 4);
    c[4] = (uint8_t)alen;
    memcpy(c + 5, aid, alen);
    return 5 + alen;
}

static bool crs_selected(void)
{
    static uint8_t r[TSE_RAPDU_MAX];
    uint8_t c[32], aid[16];
    size_t rl = xfer(TSE_IF_CONTACT, c, select_cmd(aid, aid_bytes(1, aid), c), r);
    return rl >= 2 && r[rl - 2] == 0x90;
}

/* 6F { 84 name, A5 { BF0C { 61 { 4F AID, [50 label], [87 priority] } … } } }; then each AID
 * shown must select an application on the contactless interface. */
static void check_ppse(const uint8_t *r, size_t len)
{
    uint8_t shown[64][16];
    size_t shown_len[64], ns = 0;
    struct tse_tlv fci, t, a5, dir, e;
    const uint8_t *p = r;
    size_t left = len;
    if (tse_tlv_next(&p, &left, &fci) != 1 || fci.tag != 0x6F || left != 0)
        abort();
    p = fci.value;
    left = fci.len;
    if (tse_tlv_next(&p, &left, &t) != 1 || t.tag != 0x84)
        abort();
    if (t.len != 14 || memcmp(t.value, "2PAY.SYS.DDF01", 14) != 0)
        return; /* a deactivated PPSE: the selected applet took the SELECT (Java Card rule) */
    if (tse_tlv_next(&p, &left, &a5) != 1 || a5.tag != 0xA5 || left != 0)
        abort();
    p = a5.value;
    left = a5.len;
    if (tse_tlv_next(&p, &left, &dir) != 1 || dir.tag != 0xBF0C || left != 0)
        abort();
    p = dir.value;
    left = dir.len;
    int rc;
    while ((rc = tse_tlv_next(&p, &left, &e)) == 1) {
        struct tse_tlv aid;
        if (e.tag != 0x61 || tse_tlv_find(e.value, e.len, 0x4F, &aid) != 1 || aid.len < 5 ||
            aid.len > 16 || ns == 64)
            abort();
        memcpy(shown[ns], aid.value, aid.len);
        shown_len[ns++] = aid.len;
    }
    if (rc != 0)
        abort();
    static uint8_t rsp[TSE_RAPDU_MAX];
    for (size_t i = 0; i < ns; i++) {
        uint8_t c[32];
        size_t rl = xfer(TSE_IF_CONTACTLESS, c, select_cmd(shown[i], shown_len[i], c), rsp);
        if (rl && (rsp[rl - 2] != 0x90 || rsp[rl - 1] != 0x00))
            abort(); /* the PPSE showed an application a reader cannot select */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!card || ++runs % 200 == 0)
        fresh(); /* a short journal: recovery after a cut re-reads all of it */
    power_up();
    static uint8_t r[TSE_RAPDU_MAX];
    uint8_t c[300], aid[16];
    size_t pos = 0, ops = 0;
    while (pos + 2 <= size && ops++ < 32) { /* enough to reach any state; bounded cost */
        uint8_t op = data[pos], len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = (uint8_t)(size - pos);
        const uint8_t *b = data + pos;
        uint8_t b0 = len > 0 ? b[0] : 0, b1 = len > 1 ? b[1] : 0, b2 = len > 2 ? b[2] : 0;
        enum tse_iface itf = (op & 8) ? TSE_IF_CONTACTLESS : TSE_IF_CONTACT;
        size_t n = 0, rl;
        switch (op % 8) {
        case 0:
            if (!crs_selected())
                break;
            c[n++] = 0x80;
            c[n++] = (const uint8_t[]){0xF0, 0xF2, 0xCA, 0xF0}[b0 & 3];
            c[n++] = b1;
            c[n++] = b2;
            if (len > 3) {
                c[n++] = (uint8_t)(len - 3);
                memcpy(c + n, b + 3, len - 3u);
                n += len - 3u;
            }
            xfer(TSE_IF_CONTACT, c, n, r);
            break;
        case 1:
        case 2: {
            if (!crs_selected())
                break;
            size_t al = aid_bytes(b0, aid);
            static const uint8_t prio[] = {0x01, 0x81, 0x02, 0x82};
            memcpy(c, "\x80\xF0", 2);
            c[2] = op % 8 == 1 ? 0x01 : 0x02;
            c[3] = op % 8 == 1 ? b1 : prio[b1 & 3];
            c[4] = (uint8_t)(al + 2);
            c[5] = 0x4F;
            c[6] = (uint8_t)al;
            memcpy(c + 7, aid, al);
            xfer(TSE_IF_CONTACT, c, 7 + al, r);
            break;
        }
        case 3: {
            size_t al = aid_bytes(2, aid);
            rl = xfer(TSE_IF_CONTACTLESS, c, select_cmd(aid, al, c), r);
            if (rl >= 2 && r[rl - 2] == 0x90 && r[rl - 1] == 0x00)
                check_ppse(r, rl - 2);
            break;
        }
        case 4:
            xfer(itf, c, select_cmd(aid, aid_bytes(b0, aid), c), r);
            break;
        case 5:
            tse_card_power_off(card, itf);
            tse_card_power_on(card, itf, NULL, 0, &rl);
            break;
        case 6:
            tse_card_tear_at(card, (unsigned long)len + 1);
            len = 0;
            break;
        default:
            if (!crs_selected())
                break;
            memcpy(c, "\x80\xF2\x40", 3);
            c[3] = b0;
            n = 4;
            if (len > 1) {
                c[n++] = (uint8_t)(len - 1);
                memcpy(c + n, b + 1, len - 1u);
                n += len - 1u;
            }
            xfer(TSE_IF_CONTACT, c, n, r);
            break;
        }
        pos += len;
    }
    tse_card_tear_at(card, 0);
    return 0;
}
