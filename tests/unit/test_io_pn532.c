/* SPDX-License-Identifier: Apache-2.0 */
/* The simulated PN532 (src/io/pn532.c): host framing, the command set libnfc 1.8.0 uses
 * (byte sequences from ../shared/spec/contactless.md §4-§5), initiator and target mode, abort,
 * NACK, limits that protect libnfc. The chip is driven here by a fake owner. */
#include "tse_test.h"
#include "tse/pn532.h"

/* ---- a fake owner ------------------------------------------------------------------------ */

struct owner {
    uint8_t out[8192];
    size_t out_len;
    double last_delay;
    unsigned cancels, fields_on, fields_off, deselects, tg_inits, tg_gones, apdus;
    bool card_present, card_halted, async;
    struct tse_pn532_card_info card;
    uint8_t ex_c[300];
    size_t ex_clen;
    double ex_delay;
    unsigned ex_token;
    struct tse_pn532_card_info tg_as;
    uint8_t tg_r[300];
    size_t tg_rlen;
    struct tse_pn532_apdu_info last_apdu;
    struct tse_pn532 *chip;
};

static void o_output(void *u, const uint8_t *b, size_t len, double delay)
{
    struct owner *o = u;
    assert_true(o->out_len + len <= sizeof(o->out));
    memcpy(o->out + o->out_len, b, len);
    o->out_len += len;
    o->last_delay = delay;
}
static void o_cancel(void *u)
{
    ((struct owner *)u)->cancels++;
}
static void o_field(void *u, bool on)
{
    struct owner *o = u;
    if (on) {
        o->fields_on++;
    } else {
        o->fields_off++;
        o->card_halted = false;
    }
}
static int o_poll(void *u, struct tse_pn532_card_info *k)
{
    struct owner *o = u;
    if (!o->card_present || o->card_halted)
        return 0;
    *k = o->card;
    return 1;
}
static void o_deselect(void *u)
{
    struct owner *o = u;
    o->deselects++;
    o->card_halted = true;
}
static int o_exchange(void *u, const uint8_t *c, size_t clen, double delay, unsigned token)
{
    struct owner *o = u;
    memcpy(o->ex_c, c, clen);
    o->ex_clen = clen;
    o->ex_delay = delay;
    o->ex_token = token;
    if (!o->async) { /* echo the command, then 9000 */
        uint8_t r[300];
        memcpy(r, c, clen);
        r[clen] = 0x90;
        r[clen + 1] = 0x00;
        tse_pn532_in_complete(o->chip, token, 0, r, clen + 2, 1000.0);
    }
    return 0;
}
static void o_apdu(void *u, const struct tse_pn532_apdu_info *in)
{
    struct owner *o = u;
    o->apdus++;
    o->last_apdu = *in;
}
static void o_tg_init(void *u, const struct tse_pn532_card_info *as)
{
    struct owner *o = u;
    o->tg_inits++;
    o->tg_as = *as;
}
static void o_tg_response(void *u, const uint8_t *r, size_t rlen)
{
    struct owner *o = u;
    memcpy(o->tg_r, r, rlen);
    o->tg_rlen = rlen;
}
static void o_tg_gone(void *u)
{
    ((struct owner *)u)->tg_gones++;
}

static const struct tse_pn532_ops owner_ops = {
    .output = o_output,
    .cancel = o_cancel,
    .field = o_field,
    .poll = o_poll,
    .deselect = o_deselect,
    .exchange = o_exchange,
    .apdu = o_apdu,
    .tg_init = o_tg_init,
    .tg_response = o_tg_response,
    .tg_gone = o_tg_gone,
};

static struct owner *owner_new(double pace)
{
    struct owner *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    assert_int_equal(tse_pn532_new(&o->chip, &owner_ops, o, pace), 0);
    /* a DESFire-like card: 7-byte UID, ATS with FSC 64 */
    static const uint8_t uid[] = {0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    static const uint8_t ats[] = {0x06, 0x75, 0x77, 0x81, 0x02, 0x80};
    o->card.atqa[0] = 0x03;
    o->card.atqa[1] = 0x44;
    o->card.sak = 0x20;
    memcpy(o->card.uid, uid, sizeof(uid));
    o->card.uid_len = sizeof(uid);
    memcpy(o->card.ats, ats, sizeof(ats));
    o->card.ats_len = sizeof(ats);
    o->card_present = true;
    return o;
}

static void owner_free(struct owner *o)
{
    tse_pn532_free(o->chip);
    free(o);
}

/* Feed raw hex bytes from the host. */
static void raw(struct owner *o, const char *hex)
{
    uint8_t b[600];
    int n = tse_hex_decode(hex, b, sizeof(b));
    assert_true(n >= 0);
    tse_pn532_input(o->chip, b, (size_t)n);
}

/* Send a host command (CC + data, hex) in a proper frame. */
static void cmd(struct owner *o, const char *hex)
{
    uint8_t d[300], f[TSE_PN532_MAX_FRAME];
    int n = tse_hex_decode(hex, d, sizeof(d));
    assert_true(n > 0);
    int fl = tse_pn532_build(TSE_PN532_TFI_HOST, d, (size_t)n, f, sizeof(f));
    assert_true(fl > 0);
    tse_pn532_input(o->chip, f, (size_t)fl);
}

/* The output so far as hex, then cleared. */
static const char *took(struct owner *o)
{
    static char h[2 * sizeof(o->out) + 1];
    tse_hex_encode(o->out, o->out_len, h);
    o->out_len = 0;
    return h;
}

/* Expect a deferred chip answer (its ACK went out with the command). */
static void expect_late(struct owner *o, const char *hex)
{
    uint8_t d[300], f[TSE_PN532_MAX_FRAME];
    int n = tse_hex_decode(hex, d, sizeof(d));
    assert_true(n > 0);
    int fl = tse_pn532_build(TSE_PN532_TFI_CHIP, d, (size_t)n, f, sizeof(f));
    char want[2 * TSE_PN532_MAX_FRAME + 1];
    tse_hex_encode(f, (size_t)fl, want);
    assert_string_equal(took(o), want);
}

/* Expect ACK followed by a chip answer whose CC+data is `hex` (CC = command + 1). */
static void expect_answer(struct owner *o, const char *hex)
{
    uint8_t d[300], f[TSE_PN532_MAX_FRAME];
    int n = tse_hex_decode(hex, d, sizeof(d));
    assert_true(n > 0);
    int fl = tse_pn532_build(TSE_PN532_TFI_CHIP, d, (size_t)n, f, sizeof(f));
    char want[2 * (6 + TSE_PN532_MAX_FRAME) + 1];
    strcpy(want, "0000FF00FF00");
    tse_hex_encode(f, (size_t)fl, want + 12);
    assert_string_equal(took(o), want);
}

/* ---- framing ------------------------------------------------------------------------------ */

static void test_parse_and_build(void **state)
{
    (void)state;
    struct tse_pn532_parser p;
    struct tse_pn532_frame f;
    tse_pn532_parser_init(&p);
    /* wake-up preamble then SAMConfiguration, exactly as libnfc sends them at open */
    uint8_t b[64];
    int n = tse_hex_decode("55550000000000000000000000000000 0000ff03fdd4140117 00", b, sizeof(b));
    size_t used = tse_pn532_parse(&p, b, (size_t)n, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_INFO);
    assert_int_equal(f.tfi, 0xD4);
    assert_int_equal(f.len, 2);
    assert_int_equal(f.data[0], 0x14);
    assert_int_equal(f.data[1], 0x01);
    assert_false(f.extended);
    /* the postamble remains and is skipped by the next call */
    assert_int_equal(used, (size_t)n - 1);
    used = tse_pn532_parse(&p, b + used, 1, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_NONE);
    /* ACK, NACK */
    n = tse_hex_decode("0000FF00FF00 0000FFFF0000", b, sizeof(b));
    used = tse_pn532_parse(&p, b, (size_t)n, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_ACK);
    tse_pn532_parse(&p, b + used, (size_t)n - used, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_NACK);
    /* the error frame parses as an information frame with TFI 7F and no data */
    tse_pn532_parse(&p, tse_pn532_error_frame, sizeof(tse_pn532_error_frame), &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_INFO);
    assert_int_equal(f.tfi, 0x7F);
    assert_int_equal(f.len, 0);
    /* bad length checksum, bad data checksum */
    n = tse_hex_decode("0000ff03fcd4140117", b, sizeof(b));
    tse_pn532_parse(&p, b, (size_t)n, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_BAD);
    n = tse_hex_decode("0000ff03fdd4140118", b, sizeof(b));
    tse_pn532_parse(&p, b, (size_t)n, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_BAD);
    /* extended LEN beyond 266 (TFI + 265) */
    n = tse_hex_decode("0000ffffff010bf4", b, sizeof(b));
    tse_pn532_parse(&p, b, (size_t)n, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_BAD);

    /* build: normal up to 254 bytes after TFI, extended beyond, both parse back, byte by byte */
    uint8_t d[TSE_PN532_MAX_DATA], fr[TSE_PN532_MAX_FRAME];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 7);
    static const size_t lens[] = {1, 254, 255, TSE_PN532_MAX_DATA};
    for (size_t k = 0; k < 4; k++) {
        int fl = tse_pn532_build(0xD5, d, lens[k], fr, sizeof(fr));
        assert_int_equal(fl, (int)(lens[k] + (lens[k] > 254 ? 11 : 8)));
        tse_pn532_parser_init(&p);
        size_t i = 0;
        do {
            i += tse_pn532_parse(&p, fr + i, 1, &f);
        } while (f.type == TSE_PN532_FRAME_NONE && i < (size_t)fl);
        assert_int_equal(f.type, TSE_PN532_FRAME_INFO);
        assert_int_equal(f.len, lens[k]);
        assert_int_equal(f.extended, lens[k] > 254);
        assert_memory_equal(f.data, d, lens[k]);
    }
    assert_int_equal(tse_pn532_build(0xD5, d, 0, fr, sizeof(fr)), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_pn532_build(0xD5, d, TSE_PN532_MAX_DATA + 1, fr, sizeof(fr)),
                     TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_pn532_build(0xD5, d, 10, fr, 17), TSE_ERR_BUFFER_TOO_SMALL);
}

/* ---- the chip ----------------------------------------------------------------------------- */

static void test_open_sequence(void **state)
{
    (void)state;
    struct owner *o = owner_new(0);
    /* the bytes of spec §4, host and chip */
    raw(o, "55550000000000000000000000000000");
    raw(o, "0000ff03fdd414011700");
    assert_string_equal(took(o), "0000FF00FF000000FF02FED5151600");
    raw(o, "0000ff09f7d400006c69626e6663be00");
    assert_string_equal(took(o), "0000FF00FF000000FF09F7D501006C69626E6663BC00");
    raw(o, "0000ff02fed4022a00");
    assert_string_equal(took(o), "0000FF00FF000000FF06FAD50332010607E800");
    raw(o, "0000ff03fdd412140600");
    assert_string_equal(took(o), "0000FF00FF000000FF02FED5131800");
    /* registers: a plain register file, ReadRegister has no status byte on a PN532 */
    cmd(o, "08630208 63030A");
    expect_answer(o, "09");
    cmd(o, "06630263036305");
    expect_answer(o, "07080A00");
    /* unknown command and a wrong TFI: ACK, then the application error frame */
    cmd(o, "7A");
    assert_string_equal(took(o), "0000FF00FF000000FF01FF7F8100");
    uint8_t d[] = {0x02}, f[16];
    int fl = tse_pn532_build(0xD5, d, 1, f, sizeof(f));
    tse_pn532_input(o->chip, f, (size_t)fl);
    assert_string_equal(took(o), "0000FF00FF000000FF01FF7F8100");
    /* NACK: the last answer again, without an ACK */
    raw(o, "0000FFFF0000");
    assert_string_equal(took(o), "0000FF01FF7F8100");
    /* a frame with a bad checksum is not answered at all */
    raw(o, "0000ff02fed4022b00");
    assert_int_equal(o->out_len, 0);
    owner_free(o);
}

static void test_initiator(void **state)
{
    (void)state;
    struct owner *o = owner_new(1.0);
    cmd(o, "12 14"); /* SetParameters: auto ATR_RES, auto RATS */
    took(o);
    cmd(o, "32 01 01"); /* field on */
    expect_answer(o, "33");
    assert_int_equal(o->fields_on, 1);
    cmd(o, "32 05 00 01 02"); /* MaxRetries: one-shot */
    took(o);
    /* InListPassiveTarget 106 A: NbTg Tg ATQA SAK UIDlen UID ATS */
    cmd(o, "4A 01 00");
    expect_answer(o, "4B 01 01 0344 20 07 04112233445566 067577810280");
    /* the answer waits for the modelled activation (pace 1): 7-byte UID, 6-byte ATS, SFGI 1 */
    assert_true(o->last_delay > 5000 && o->last_delay < 7000);
    /* InDataExchange: the owner echoes; the chip answers status 00 + R-APDU */
    cmd(o, "40 01 00A4040007D2760000850101");
    expect_answer(o, "41 00 00A4040007D2760000850101 9000");
    assert_int_equal(o->ex_clen, 12);
    assert_true(o->ex_delay > 0); /* command blocks modelled: delivery is delayed */
    assert_true(o->last_delay > 0);
    assert_int_equal(o->apdus, 1);
    assert_int_equal(o->last_apdu.link.fsc, 64);
    assert_int_equal(o->last_apdu.air.cmd_blocks, 1);
    assert_true(o->last_apdu.air.wait_us > 0); /* 1 ms of card time */
    /* presence check (R(NAK)) through InCommunicateThru */
    cmd(o, "42 B2");
    expect_answer(o, "43 00 A2");
    /* InPSL to 424 kbit/s, then 848 refused (status without bit 0x80) */
    cmd(o, "4E 01 02 02");
    expect_answer(o, "4F 00");
    cmd(o, "4E 01 03 03");
    expect_answer(o, "4F 10");
    /* deselect: the card goes to HALT and is not found again until the field resets */
    cmd(o, "44 00");
    expect_answer(o, "45 00");
    assert_int_equal(o->deselects, 1);
    cmd(o, "4A 01 00");
    expect_answer(o, "4B 00");
    cmd(o, "40 01 00B0000000");
    expect_answer(o, "41 27"); /* no target: bad context */
    cmd(o, "32 01 00");
    took(o);
    cmd(o, "4A 01 00");
    expect_answer(o, "4B 01 01 0344 20 07 04112233445566 067577810280");
    /* without auto RATS no ATS is reported */
    cmd(o, "12 04");
    took(o);
    cmd(o, "32 01 00");
    took(o);
    cmd(o, "4A 01 00");
    expect_answer(o, "4B 01 01 0344 20 07 04112233445566");
    /* FeliCa / type B / Jewel: nothing in this field */
    cmd(o, "4A 01 03 00");
    expect_answer(o, "4B 00");
    cmd(o, "4A 01 01 00FFFF0100");
    expect_answer(o, "4B 00");
    /* malformed: MaxTg 0 */
    cmd(o, "4A 00 00");
    assert_string_equal(took(o), "0000FF00FF000000FF01FF7F8100");
    owner_free(o);
}

static void test_pending_and_abort(void **state)
{
    (void)state;
    struct owner *o = owner_new(0);
    cmd(o, "12 14");
    took(o);
    /* infinite retries and an empty field: the answer waits for a card */
    o->card_present = false;
    cmd(o, "4A 01 00");
    assert_string_equal(took(o), "0000FF00FF00");
    tse_pn532_field_event(o->chip);
    assert_int_equal(o->out_len, 0);
    o->card_present = true;
    tse_pn532_field_event(o->chip);
    assert_string_equal(took(o), "0000FF15EBD54B010103442007041122334455660675778102801200");
    /* an exchange answered later, after the host moved on: the late answer is dropped */
    o->async = true;
    cmd(o, "40 01 8070000000");
    assert_string_equal(took(o), "0000FF00FF00");
    unsigned tok = o->ex_token;
    unsigned cancels = o->cancels;
    raw(o, "0000FF00FF00"); /* host ACK: abort */
    assert_true(o->cancels > cancels);
    uint8_t r[] = {0x90, 0x00};
    tse_pn532_in_complete(o->chip, tok, 0, r, 2, 0);
    assert_int_equal(o->out_len, 0);
    /* a new command also supersedes a pending one */
    cmd(o, "40 01 8070000000");
    took(o);
    tok = o->ex_token;
    cmd(o, "02");
    expect_answer(o, "03 32010607");
    tse_pn532_in_complete(o->chip, tok, 0, r, 2, 0);
    assert_int_equal(o->out_len, 0);
    /* the current token completes; a status with bit 0x80 is masked (libnfc aborts on NAD) */
    cmd(o, "40 01 8070000000");
    took(o);
    tse_pn532_in_complete(o->chip, o->ex_token, 0x81, NULL, 0, 0);
    expect_late(o, "41 01");
    /* an R-APDU libnfc cannot take: status 07 instead */
    cmd(o, "40 01 8070000000");
    took(o);
    uint8_t big[TSE_PN532_MAX_RAPDU + 1];
    memset(big, 0x5A, sizeof(big));
    tse_pn532_in_complete(o->chip, o->ex_token, 0, big, sizeof(big), 0);
    expect_late(o, "41 07");
    /* the longest one fits one extended frame */
    cmd(o, "40 01 8070000000");
    took(o);
    tse_pn532_in_complete(o->chip, o->ex_token, 0, big, TSE_PN532_MAX_RAPDU, 0);
    struct tse_pn532_parser p;
    struct tse_pn532_frame f;
    tse_pn532_parser_init(&p);
    tse_pn532_parse(&p, o->out, o->out_len, &f);
    assert_int_equal(f.type, TSE_PN532_FRAME_INFO);
    assert_true(f.extended);
    assert_int_equal(f.len, 1 + 1 + TSE_PN532_MAX_RAPDU);
    took(o);
    /* a frame cut short by an idle line is dropped, the next command is answered */
    raw(o, "0000ffffff0100ffd4");
    tse_pn532_line_idle(o->chip);
    cmd(o, "02");
    expect_answer(o, "03 32010607");
    owner_free(o);
}

static void test_target(void **state)
{
    (void)state;
    struct owner *o = owner_new(0);
    struct tse_pn532_card_info as;
    assert_int_equal(tse_pn532_tg_activate(o->chip, 0x80, &as), TSE_ERR_STATE);
    cmd(o, "12 30"); /* ISO 14443-4 PICC emulation + auto RATS */
    took(o);
    /* TgInitAsTarget as libnfc builds it: mode 05, SENS_RES 0400 (LSB first), NFCID1t
     * 747365, SEL_RES 20, FeliCa and NFCID3t zero, no Gt, 2 historical bytes */
    cmd(o, "8C 05 0400 747365 20 000000000000000000000000000000000000 00000000000000000000 00 "
           "02 C1C2");
    assert_string_equal(took(o), "0000FF00FF00");
    assert_int_equal(o->tg_inits, 1);
    assert_int_equal(tse_pn532_tg_state(o->chip), TSE_PN532_TG_WAITING);
    assert_int_equal(o->tg_as.uid_len, 4);
    assert_int_equal(o->tg_as.uid[0], 0x08);
    assert_int_equal(o->tg_as.uid[3], 0x65);
    assert_int_equal(o->tg_as.atqa[0], 0x00);
    assert_int_equal(o->tg_as.atqa[1], 0x04);
    static const uint8_t ats[] = {0x07, 0x75, 0x33, 0x92, 0x03, 0xC1, 0xC2};
    assert_int_equal(o->tg_as.ats_len, sizeof(ats));
    assert_memory_equal(o->tg_as.ats, ats, sizeof(ats));
    /* a reader activates it: mode byte 08, then the RATS (a byte after the mode!) */
    assert_int_equal(tse_pn532_tg_activate(o->chip, 0x80, &as), 0);
    assert_memory_equal(as.ats, ats, sizeof(ats));
    assert_string_equal(took(o), "0000FF05FBD58D08E0803600");
    assert_int_equal(tse_pn532_tg_state(o->chip), TSE_PN532_TG_ACTIVE);
    /* TgGetData waits for a C-APDU */
    cmd(o, "86");
    assert_string_equal(took(o), "0000FF00FF00");
    uint8_t c[] = {0x00, 0xA4, 0x04, 0x00};
    assert_int_equal(tse_pn532_tg_deliver(o->chip, c, sizeof(c)), 0);
    expect_late(o, "87 00 00A40400");
    /* a C-APDU that arrives first waits for the next TgGetData */
    assert_int_equal(tse_pn532_tg_deliver(o->chip, c, 2), 0);
    assert_int_equal(o->out_len, 0);
    cmd(o, "86");
    expect_answer(o, "87 00 00A4");
    uint8_t big[TSE_PN532_MAX_CAPDU + 1] = {0};
    assert_int_equal(tse_pn532_tg_deliver(o->chip, big, sizeof(big)), TSE_ERR_INVALID_ARG);
    /* TgSetData: the R-APDU goes to the owner */
    cmd(o, "8E 6F00 9000");
    expect_answer(o, "8F 00");
    assert_int_equal(o->tg_rlen, 4);
    /* release while TgGetData waits: status 29 (libnfc: NFC_ETGRELEASED) */
    cmd(o, "86");
    took(o);
    tse_pn532_tg_release(o->chip);
    expect_late(o, "87 29");
    assert_int_equal(tse_pn532_tg_state(o->chip), TSE_PN532_TG_NONE);
    cmd(o, "86");
    expect_answer(o, "87 27");
    /* release before the host asks: the next TgGetData gets 29 */
    cmd(o, "8C 05 0400 747365 20 000000000000000000000000000000000000 00000000000000000000 00 "
           "00");
    took(o);
    assert_int_equal(tse_pn532_tg_activate(o->chip, 0x80, NULL), 0);
    took(o);
    tse_pn532_tg_release(o->chip);
    assert_int_equal(tse_pn532_tg_state(o->chip), TSE_PN532_TG_RELEASED);
    cmd(o, "86");
    expect_answer(o, "87 29");
    /* abort of a waiting TgInitAsTarget: the host left target mode */
    unsigned gone = o->tg_gones;
    cmd(o, "8C 05 0400 747365 20 000000000000000000000000000000000000 00000000000000000000 00 "
           "00");
    took(o);
    raw(o, "55550000000000000000000000000000 0000FF00FF00");
    assert_int_equal(o->out_len, 0);
    assert_int_equal(o->tg_gones, gone + 1);
    assert_int_equal(tse_pn532_tg_activate(o->chip, 0x80, NULL), TSE_ERR_STATE);
    /* DEP-only targets never meet a reader here; malformed TgInitAsTarget gets an error */
    cmd(o, "8C 02 0400 747365 20 000000000000000000000000000000000000 00000000000000000000 00 "
           "00");
    took(o);
    assert_int_equal(tse_pn532_tg_activate(o->chip, 0x80, NULL), TSE_ERR_STATE);
    cmd(o, "8C 05 0400 747365 20 00 05 C1");
    assert_string_equal(took(o), "0000FF00FF000000FF01FF7F8100");
    owner_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_build), cmocka_unit_test(test_open_sequence),
        cmocka_unit_test(test_initiator),       cmocka_unit_test(test_pending_and_abort),
        cmocka_unit_test(test_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
