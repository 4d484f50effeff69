/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tear sweep over the purse: loads, purchases and compound entry/exit purchases run by the
 * terminal on the contactless interface, with a power cut at every store write they make.
 *
 * A reference run counts the store writes of each operation. Then, for every write k, the
 * run is replayed from the same image with a cut armed at k; after the cut the card is
 * powered again (recovery) and reopened from disk, and the purse must show either the whole
 * interrupted transaction or none of it:
 *   - the balance equals loads − debits of the committed transactions;
 *   - the counter of the interrupted kind is N or N + 1 (never repeated, never skipped), the
 *     other counter unchanged;
 *   - GET TRANSACTION PROVE (type, N + 1) answers exactly when the transaction committed, and
 *     its MAC2 / TAC verify in the PSAM;
 *   - the newest 0x18 record, the newest 0x1E record and the rail record's in/out status
 *     belong to the committed transaction, or to the state before it;
 *   - PIN tries are never gained (a cut may cost the try being spent);
 *   - for purchases (no other writes) the whole persistent state equals the reference state
 *     before or after the operation, byte for byte.
 * Then the remaining operations run on the recovered card and the final balance is checked.
 */
#include "wallet_test.h"

enum op_kind { OP_LOAD, OP_PURCHASE, OP_ENTRY, OP_EXIT };

struct op {
    enum op_kind kind;
    uint32_t amount;
    uint8_t station;
};

static const struct op OPS[] = {
    {OP_LOAD, 5000, 0},    {OP_PURCHASE, 200, 0}, {OP_ENTRY, 0, 0x05}, {OP_EXIT, 300, 0x17},
    {OP_PURCHASE, 150, 0}, {OP_LOAD, 1000, 0},    {OP_ENTRY, 0, 0x21}, {OP_EXIT, 250, 0x05},
};
#define N_BASE (sizeof(OPS) / sizeof(OPS[0]))
#define ROUNDS 2 /* the second round starts from richer state (logs, rail record present) */
#define N_OPS  (N_BASE * ROUNDS)
#define OP(i)  (&OPS[(i) % N_BASE])

/* What the purse must hold (before an operation). */
struct model {
    uint32_t balance;
    uint16_t online, offline;
    uint16_t last_seq; /* seq of the newest 0x18 record (0: none) */
    uint8_t last_type;
    unsigned n1e; /* 0x1E records written */
    uint8_t rail; /* in/out status of the rail record (0: none) */
};

static uint8_t type_of(enum op_kind k)
{
    return k == OP_LOAD       ? TSE_WALLET_TT_EP_LOAD
           : k == OP_PURCHASE ? TSE_WALLET_TT_PURCHASE
                              : TSE_WALLET_TT_CAPP;
}

static void apply(struct model *m, const struct op *o)
{
    if (o->kind == OP_LOAD) {
        m->balance += o->amount;
        m->last_seq = ++m->online;
    } else {
        m->balance -= o->amount;
        m->last_seq = ++m->offline;
    }
    m->last_type = type_of(o->kind);
    if (o->kind == OP_ENTRY || o->kind == OP_EXIT) {
        m->n1e++;
        m->rail = o->kind == OP_ENTRY ? 0x01 : 0x02;
    }
}

static int run_op(struct wt_term *w, const struct op *o)
{
    uint8_t aid[8];
    tse_hex_decode(W_AID_SHORT, aid, 8);
    int rc = tse_wallet_term_select(&w->t, aid, 8);
    if (rc)
        return rc;
    struct tse_wallet_gate g = W_GATE_BJ;
    g.station[1] = o->station;
    switch (o->kind) {
    case OP_LOAD:
        return tse_wallet_term_load(&w->t, o->amount, NULL);
    case OP_PURCHASE:
        return tse_wallet_term_purchase(&w->t, o->amount, NULL);
    case OP_ENTRY:
        return tse_wallet_term_entry(&w->t, &g, NULL);
    default:
        return tse_wallet_term_exit(&w->t, &g, o->amount, NULL);
    }
}

static struct tse_card *open_on(const char *p)
{
    return tt_open(p, TSE_IF_CONTACTLESS);
}

static unsigned inconsistencies;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            inconsistencies++;                                                                     \
            print_message("tear at write %lu, op %zu: ", k, i);                                    \
            print_message(__VA_ARGS__);                                                            \
            print_message("\n");                                                                   \
        }                                                                                          \
    } while (0)

/* Newest record of a file: its bytes as hex, "" when there is none. */
static const char *newest(struct tse_card *c, const char *cmd)
{
    const char *r = wt_x(c, cmd);
    return strlen(r) > 4 ? r : "";
}

/*
 * After the cut in operation i: decide whether it committed (from the proof) and check every
 * invariant against model m (the state before the operation). `x` is the terminal's record
 * of the interrupted transaction (x->ready when the PSAM got as far as a session key).
 * Returns whether it committed.
 */
static bool check_after_cut(struct tse_card *c, struct wt_term *w, const struct model *m,
                            const struct op *o, unsigned long k, size_t i,
                            const struct tse_psam_txn *x, bool init_done, const uint8_t before[32],
                            const uint8_t after[32])
{
    uint8_t digest[32];
    assert_int_equal(tse_card_state_digest(c, digest), 0);
    wt_select(w, W_AID_SHORT);
    uint16_t n = o->kind == OP_LOAD ? m->online : m->offline;
    uint8_t mac2[4], tac[4];
    int prc = tse_wallet_term_prove(&w->t, type_of(o->kind), (uint16_t)(n + 1), mac2, tac);
    CHECK(prc == 0 || prc == TSE_ERR_NOT_FOUND, "GET TRANSACTION PROVE: %s", tse_strerror(prc));
    bool committed = prc == 0;
    CHECK(!committed || init_done, "a proof for a transaction that never got past INITIALIZE");
    if (committed && x->ready) {
        if (o->kind != OP_LOAD)
            CHECK(tse_psam_purchase_check_mac2(x, mac2) == 0, "proof MAC2 does not verify");
        CHECK(tse_psam_check_tac(&w->psam, &w->t.card, x, tac) == 0, "proof TAC does not verify");
    }
    /* whole-state comparison where the operation writes nothing but its transaction */
    if (o->kind != OP_LOAD)
        CHECK(!memcmp(digest, committed ? after : before, 32),
              "persistent state is neither the state before nor after the transaction");

    struct model e = *m;
    if (committed)
        apply(&e, o);
    uint32_t bal = wt_balance(w);
    CHECK(bal == e.balance, "balance %u, expected %u (committed: %d)", bal, e.balance, committed);
    /* the newest log record */
    const char *r = newest(c, "00B201C417");
    unsigned seq = 0, type = 0;
    if (*r)
        sscanf(r, "%4x%*14c%2x", &seq, &type);
    CHECK(seq == e.last_seq && (!seq || type == e.last_type),
          "newest 0x18 record seq %04X type %02X, expected %04X %02X", seq, type, e.last_seq,
          e.last_type);
    /* compound records */
    unsigned n1e = 0;
    for (unsigned rec = 1; rec <= 30; rec++) {
        char cmd[16];
        snprintf(cmd, sizeof(cmd), "00B2%02XF430", rec);
        if (!*newest(c, cmd))
            break;
        n1e++;
    }
    CHECK(n1e == (e.n1e > 30 ? 30 : e.n1e), "%u 0x1E records, expected %u", n1e, e.n1e);
    r = newest(c, "00B212D080");
    unsigned rail = 0;
    if (*r)
        sscanf(r + 28, "%2x", &rail);
    CHECK(rail == e.rail, "rail record status %02X, expected %02X", rail, e.rail);
    /* PIN tries: never more than the limit, at most the one being spent is lost */
    const char *pin = wt_x(c, "00200000");
    CHECK(!strcmp(pin, "63C3") || (o->kind == OP_LOAD && !strcmp(pin, "63C2")), "PIN says %s", pin);
    /* counters, from the INITIALIZE answers (no store writes) */
    const char *ip = wt_x(c, "805001020B0100000000000000000001");
    unsigned off = 0xFFFFF, onl = 0xFFFFF;
    sscanf(ip + 8, "%4x", &off);
    assert_int_equal(tt_sw(c, TSE_IF_CONTACTLESS, "0020000003123456"), 0x9000);
    const char *il = wt_x(c, "805000020B0100000000000000000001");
    sscanf(il + 8, "%4x", &onl);
    CHECK(off == e.offline && onl == e.online,
          "counters online %04X offline %04X, expected %04X %04X", onl, off, e.online, e.offline);
    return committed;
}

/* The card leaves the field right after the d-th CREDIT/DEBIT was executed: the transaction
 * is committed but the terminal never sees its answer (the case GET TRANSACTION PROVE is for). */
static unsigned drop_at, finals;

static int cut_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                        size_t *rlen)
{
    struct wt_term *w = user;
    int rc = tse_card_transmit(w->card, TSE_IF_CONTACTLESS, c, clen, r, rcap, rlen);
    if (rc || clen < 2 || (c[1] != 0x52 && c[1] != 0x54) || (c[0] & 0x80) == 0)
        return rc;
    if (drop_at && ++finals == drop_at) {
        tse_card_power_off(w->card, TSE_IF_CONTACTLESS);
        tse_card_power_off(w->card, TSE_IF_CONTACT);
        return TSE_ERR_TORN;
    }
    return rc;
}

struct sweep {
    const uint8_t *img;
    size_t img_len;
    const char *work;
    uint8_t (*ref)[32];
    unsigned long *w_at;
    unsigned committed, rolled_back;
};

/* One run from the base image: a cut at store write k (k > 0), or the response of the d-th
 * CREDIT/DEBIT lost (k = 0, d > 0). */
static void sweep_one(struct sweep *sw, unsigned long k, unsigned d)
{
    tt_write_file(sw->work, sw->img, sw->img_len);
    struct tse_card *c = open_on(sw->work);
    struct wt_term w;
    wt_term_init(&w, c);
    w.t.transmit = cut_transmit;
    drop_at = d;
    finals = 0;
    if (k)
        assert_int_equal(tse_card_tear_at(c, k), 0);
    struct model m = {0};
    size_t i = 0;
    int rc = 0;
    for (; i < N_OPS; i++) {
        rc = run_op(&w, OP(i));
        if (rc == TSE_ERR_TORN)
            break;
        if (rc)
            fail_msg("cut %lu/%u, op %zu: %s at %s (SW %04X)", k, d, i, tse_strerror(rc), w.t.step,
                     w.t.sw);
        apply(&m, OP(i));
    }
    drop_at = 0;
    assert_true(i < N_OPS);
    if (k)
        assert_true(sw->w_at[i] < sw->w_at[0] + k && sw->w_at[0] + k <= sw->w_at[i + 1]);
    struct tse_psam_txn x = w.t.last;
    bool init_done = x.t.seq == (OP(i)->kind == OP_LOAD ? m.online : m.offline) &&
                     x.t.type == type_of(OP(i)->kind) && x.t.amount == OP(i)->amount &&
                     (x.ready || (x.t.rand[0] | x.t.rand[1] | x.t.rand[2] | x.t.rand[3]));
    size_t n;
    assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACTLESS, NULL, 0, &n), 0); /* recovery */
    tse_card_free(c);
    c = open_on(sw->work); /* and what a fresh process reads from disk */
    w.card = c;
    bool done = check_after_cut(c, &w, &m, OP(i), k, i, &x, init_done, sw->ref[i], sw->ref[i + 1]);
    if (!k)
        CHECK(done, "the response was lost after the commit, but the card shows no proof");
    if (done) {
        apply(&m, OP(i));
        sw->committed++;
    } else {
        sw->rolled_back++;
    }
    /* the recovered card goes on: a terminal repeats what did not commit, then the remaining
     * operations succeed */
    for (size_t j = done ? i + 1 : i; j < N_OPS; j++) {
        rc = run_op(&w, OP(j));
        if (rc)
            fail_msg("after cut %lu/%u: op %zu: %s at %s (SW %04X)", k, d, j, tse_strerror(rc),
                     w.t.step, w.t.sw);
        apply(&m, OP(j));
    }
    uint32_t bal = wt_balance(&w);
    CHECK(bal == m.balance, "final balance %u, expected %u", bal, m.balance);
    tse_card_free(c);
}

static void test_tear_sweep(void **state)
{
    (void)state;
    char base[512], work[512], inst[512];
    struct tse_card *c = wt_card(wt_instance(inst, sizeof(inst), "bj", W_AID_BJ, "8F0A" W_ASN_BJ),
                                 base, sizeof(base));
    tse_card_free(c);
    struct sweep sw = {0};
    static uint8_t ref[N_OPS + 1][32];
    static unsigned long w_at[N_OPS + 1];
    uint8_t *img = tt_read_file(base, &sw.img_len);
    sw.img = img;
    tt_path(work, sizeof(work), "wsweep");
    sw.work = work;
    sw.ref = ref;
    sw.w_at = w_at;

    /* reference run: writes and state digests around each operation */
    tt_write_file(work, img, sw.img_len);
    c = open_on(work);
    struct wt_term w;
    wt_term_init(&w, c);
    tse_card_state_digest(c, ref[0]);
    w_at[0] = tse_card_store_writes(c);
    unsigned long per_kind[4] = {0};
    for (size_t i = 0; i < N_OPS; i++) {
        int rc = run_op(&w, OP(i));
        if (rc)
            fail_msg("reference op %zu: %s at %s (SW %04X)", i, tse_strerror(rc), w.t.step, w.t.sw);
        tse_card_state_digest(c, ref[i + 1]);
        w_at[i + 1] = tse_card_store_writes(c);
        per_kind[OP(i)->kind] += w_at[i + 1] - w_at[i];
    }
    tse_card_free(c);
    unsigned long total = w_at[N_OPS] - w_at[0];
    assert_true(total >= 40);

    for (unsigned long k = 1; k <= total; k++)
        sweep_one(&sw, k, 0);
    unsigned store_cuts_committed = sw.committed;
    for (unsigned d = 1; d <= N_OPS; d++)
        sweep_one(&sw, 0, d);
    print_message("wallet tear sweep: %lu cut points at store writes (load %lu, purchase %lu, "
                  "entry %lu, exit %lu) -> %u rolled back, %u committed; %u card removals after "
                  "the commit -> %u proofs; %u inconsistencies\n",
                  total, per_kind[OP_LOAD], per_kind[OP_PURCHASE], per_kind[OP_ENTRY],
                  per_kind[OP_EXIT], sw.rolled_back, store_cuts_committed, (unsigned)N_OPS,
                  sw.committed - store_cuts_committed, inconsistencies);
    assert_int_equal(inconsistencies, 0);
    assert_int_equal(sw.committed - store_cuts_committed, N_OPS);
    free(img);
    unlink(base);
    unlink(work);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tear_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
