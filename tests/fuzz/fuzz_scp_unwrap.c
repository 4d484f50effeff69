/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the secure-channel unwrap paths (tse/scp.h). Three open sessions are
 * set up once from vectors of tests/vectors/scp-vectors.txt, on both sides:
 *   0: SCP03 AES-128 i=70 level 33 (SCP03-pysim-sysmoEUICC-AES128_33)
 *   1: SCP02 i=15 level 03         (SCP02-kaoh-install-L03)
 *   2: SCP02 i=75 level 13         (SCP02-synthetic-i75-L13-CENC-RMAC, adds R-MAC)
 * Input: [op][bytes…]; op & 3 picks the session (3 -> 0), op & 4 the mode:
 *   raw:        bytes = a C-APDU for tse_scp_card_unwrap (65536-byte buffer), then
 *               tse_scp_card_wrap_response on a small buffer; bytes also go to
 *               tse_scp_host_unwrap as a response;
 *   round trip: bytes = a plain command (CLA forced to 80): host wrap -> card unwrap must
 *               give it back; a response built from the input: card wrap -> host unwrap must
 *               give it back. A mismatch aborts.
 * Sessions are copied for every input, so no state accumulates.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tse/apdu.h"
#include "tse/error.h"
#include "tse/scp.h"

struct fz_vec {
    const char *enc, *mac, *dek, *kdd, *host_challenge, *card_challenge, *ea;
    uint8_t scp, i, kvn;
    uint32_t seq;
};

static const struct fz_vec vecs[3] = {
    {"000102030405060708090A0B0C0D0E0F", "101112131415161718191A1B1C1D1E1F",
     "202122232425262728292A2B2C2D2E2F", "00000000000000000000", "FDF38259A1E0DE44",
     "3B1ACA81E821F219", "84823300108C36F96BCC00724A4E13AD591D7DA3F0", 3, 0x70, 0x30, 3},
    {"404142434445464748494A4B4C4D4E4F", "404142434445464748494A4B4C4D4E4F",
     "404142434445464748494A4B4C4D4E4F", "000074746E6E6E626262", "EBAA9E53C696281B", "5086BBEE58F4",
     "848203001005814C116071EB67D8BA9D9879454564", 2, 0x15, 0x01, 0x06A1},
    {"1674D48512D1024807F27AA9330000AF", "B32ABCD593852D173C4670B2ADC049BD",
     "4E4172983E402BCE946374342329AD00", "E90A4F2E82CE10FFBAA1", "E8EC2FF992286238", "8491AF5F3125",
     "8482130010E743521FC86AFA396CE07C76DF982BFB", 2, 0x75, 0x02, 0xA165},
};

static struct tse_scp_session card0[3], host0[3];
static uint8_t big[65536];

static void hex(const char *h, uint8_t *out, size_t cap)
{
    if (tse_hex_decode(h, out, cap) <= 0)
        abort();
}

static void setup(void)
{
    for (int v = 0; v < 3; v++) {
        const struct fz_vec *x = &vecs[v];
        struct tse_scp_keys k = {.scp = x->scp, .i = x->i, .kvn = x->kvn, .key_len = 16};
        uint8_t kdd[10], hc[8], cc[8], ea[32], rsp[64], cmd[64];
        size_t n, cn;
        hex(x->enc, k.enc, 16);
        hex(x->mac, k.mac, 16);
        hex(x->dek, k.dek, 16);
        hex(x->kdd, kdd, 10);
        hex(x->host_challenge, hc, 8);
        hex(x->card_challenge, cc, 8);
        int el = tse_hex_decode(x->ea, ea, sizeof(ea));
        struct tse_aid aid;
        struct tse_apdu a;
        static const uint8_t isd[8] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};
        if (el <= 0 || tse_aid_set(&aid, isd, sizeof(isd)) != 0)
            abort();
        struct tse_scp_session *c = &card0[v], *h = &host0[v];
        if (tse_scp_card_initialize_update(c, &k, kdd, x->seq, hc, 8, cc, &aid, rsp, sizeof(rsp),
                                           &n) != 0 ||
            tse_apdu_parse(ea, (size_t)el, &a) != 0 ||
            tse_scp_card_external_authenticate(c, &a) != 0x9000)
            abort();
        if (tse_scp_host_begin(h, &k, x->kvn, hc, 8, cmd, sizeof(cmd), &cn) != 0 ||
            tse_scp_host_iu_response(h, rsp, n) != 0 ||
            tse_scp_host_external_authenticate(h, ea[2], cmd, sizeof(cmd), &cn) != 0 ||
            cn != (size_t)el || memcmp(cmd, ea, cn) != 0)
            abort();
    }
}

static void raw(struct tse_scp_session *cs, struct tse_scp_session *hs, const uint8_t *d, size_t n)
{
    struct tse_apdu in, out;
    if (tse_apdu_parse(d, n, &in) == 0) {
        uint16_t sw = tse_scp_card_unwrap(cs, &in, &out, big, sizeof(big));
        if (sw == 0x9000 && out.lc && !out.data)
            abort();
        uint8_t small[48];
        size_t len = n < 24 ? n : 24;
        memcpy(small, d, len);
        (void)tse_scp_card_wrap_response(cs, small, &len, sizeof(small),
                                         (uint16_t)(d[0] << 8 | d[n - 1]));
        if (len > sizeof(small))
            abort();
    }
    uint8_t r[1100];
    size_t rn = 0;
    int rc = tse_scp_host_unwrap(hs, d, n, r, sizeof(r), &rn);
    if (rc == 0 && rn > n)
        abort();
}

static void round_trip(struct tse_scp_session *cs, struct tse_scp_session *hs, const uint8_t *d,
                       size_t n)
{
    uint8_t plain[300], w[600];
    struct tse_apdu p, in, out;
    if (n < 4 || n > sizeof(plain))
        return;
    memcpy(plain, d, n);
    plain[0] = 0x80;
    if (tse_apdu_parse(plain, n, &p) != 0 || p.extended || p.lc > 200)
        return;
    size_t wn = 0;
    if (tse_scp_host_wrap(hs, plain, n, w, sizeof(w), &wn) != 0)
        return;
    if (tse_apdu_parse(w, wn, &in) != 0)
        abort(); /* the host built something that is not an APDU */
    if (tse_scp_card_unwrap(cs, &in, &out, big, sizeof(big)) != 0x9000)
        abort(); /* the card refused what the host wrapped */
    if (out.cla != 0x80 || out.ins != p.ins || out.p1 != p.p1 || out.p2 != p.p2 || out.lc != p.lc ||
        (p.lc && memcmp(out.data, p.data, p.lc) != 0) || out.has_le != p.has_le ||
        (p.has_le && out.ne != p.ne))
        abort(); /* unwrap did not give the plain command back */
    /* response: up to 200 data bytes from the input, SW 9000 or 6A88 */
    uint8_t rsp[300], back[300];
    size_t rl = p.lc, bn = 0;
    if (rl)
        memcpy(rsp, p.data, rl);
    uint16_t sw = (p.p2 & 1) ? 0x6A88 : 0x9000;
    /* P1 b8 set: a buffer that may be too small for padding and MAC */
    size_t cap = (p.p1 & 0x80) ? rl + (p.p1 & 0x3F) : sizeof(rsp) - 2;
    int rc = tse_scp_card_wrap_response(cs, rsp, &rl, cap, sw);
    if (rc == TSE_ERR_BUFFER_TOO_SMALL)
        return;
    if (rc != 0 || rl > cap)
        abort();
    rsp[rl] = (uint8_t)(sw >> 8);
    rsp[rl + 1] = (uint8_t)sw;
    if (tse_scp_host_unwrap(hs, rsp, rl + 2, back, sizeof(back), &bn) != 0)
        abort(); /* the host refused what the card protected */
    if (bn != p.lc + 2 || (p.lc && memcmp(back, p.data, p.lc) != 0) || back[p.lc] != (sw >> 8) ||
        back[p.lc + 1] != (uint8_t)sw)
        abort(); /* the response did not come back */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    int sel = data[0] & 3;
    if (sel == 3)
        sel = 0;
    struct tse_scp_session cs = card0[sel], hs = host0[sel];
    if (data[0] & 4)
        round_trip(&cs, &hs, data + 1, size - 1);
    else if (size > 1)
        raw(&cs, &hs, data + 1, size - 1);
    return 0;
}
