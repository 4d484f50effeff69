/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CAP files and the LOAD stream (src/gp/cap.c): CAP files of every native package read back
 * and parsed as the card parses them, the same result for every split of the stream, one
 * precise reason per kind of malformed input, and the APDUs of the shell's `load` command
 * checked by a card-side secure channel.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shell/script.h"
#include "tse/apdu.h"
#include "tse/cap.h"
#include "tse/scp.h"
#include "tse/sw.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static void tmp_path(char *out, size_t cap, const char *tag)
{
    static unsigned seq;
    const char *dir = getenv("TSE_TEST_TMP");
    if (!dir || !*dir)
        dir = "/tmp";
    mkdir(dir, 0755);
    snprintf(out, cap, "%s/%s-%ld-%u.cap", dir, tag, (long)getpid(), seq++);
    unlink(out);
}

static bool contains(const uint8_t *b, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, s, k) == 0)
            return true;
    return false;
}

static const struct tse_package_def *diag(void)
{
    const struct tse_package_def *p = tse_cap_find_package("tse.diag");
    assert_non_null(p);
    return p;
}

/* LOAD data of a package: C4 around the LFDB; returns its length. */
static size_t load_data(const struct tse_package_def *p, unsigned flags, uint8_t *out, size_t cap)
{
    uint8_t lfdb[8192];
    int n = tse_cap_build_lfdb(p, flags, lfdb, sizeof(lfdb));
    assert_true(n > 0);
    int m = tse_cap_load_data(lfdb, (size_t)n, out, cap);
    assert_true(m > n);
    return (size_t)m;
}

/* Parse in one go: 0 or the reason. */
static int parse_all(const uint8_t *b, size_t len, struct tse_cap_stream *st)
{
    tse_cap_stream_init(st);
    int rc = tse_cap_stream_feed(st, b, len);
    if (rc == 0)
        rc = tse_cap_stream_finish(st, NULL);
    if (rc)
        assert_int_equal(rc, TSE_ERR_PARSE);
    return rc ? st->reason : 0;
}

static int reason_of(const uint8_t *b, size_t len)
{
    struct tse_cap_stream st;
    return parse_all(b, len, &st);
}

/* An LFDB rebuilt from whole components of `src` (by index into info.components). */
static size_t pick(const uint8_t *lfdb, const struct tse_cap_info *in, const int *idx, size_t n,
                   uint8_t *out)
{
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        const struct tse_cap_component *c = &in->components[idx[k]];
        memcpy(out + len, lfdb + c->offset, c->size + 3);
        len += c->size + 3;
    }
    return len;
}

static int comp_index(const struct tse_cap_info *in, uint8_t tag)
{
    for (int k = 0; k < in->n_components; k++)
        if (in->components[k].tag == tag)
            return k;
    fail_msg("component %u missing", tag);
    return -1;
}

/* ---- Round trip ---------------------------------------------------------------------------- */

static void test_roundtrip_all_packages(void **state)
{
    (void)state;
    for (size_t i = 0; tse_native_packages[i]; i++) {
        const struct tse_package_def *p = tse_native_packages[i];
        char path[512], err[256] = "";
        tmp_path(path, sizeof(path), "roundtrip");
        assert_int_equal(tse_cap_write_file(p, path, err, sizeof(err)), 0);

        for (int form = 0; form < 2; form++) {
            unsigned flags = form ? 0 : TSE_CAP_NO_DESCRIPTOR;
            uint8_t *lfdb = NULL, built[8192];
            size_t len = 0;
            struct tse_cap_zip_info zi;
            assert_int_equal(tse_cap_read_file(path, flags, &lfdb, &len, &zi, err, sizeof(err)), 0);
            int bn = tse_cap_build_lfdb(p, flags, built, sizeof(built));
            assert_int_equal((size_t)bn, len);
            assert_memory_equal(built, lfdb, len);
            assert_true(zi.has_manifest);
            assert_true(zi.present & (1u << TSE_CAP_DESCRIPTOR));

            uint8_t data[8200];
            int dn = tse_cap_load_data(lfdb, len, data, sizeof(data));
            assert_true(dn > 0);
            struct tse_cap_stream st;
            struct tse_cap_info in;
            tse_cap_stream_init(&st);
            assert_int_equal(tse_cap_stream_feed(&st, data, (size_t)dn), 0);
            assert_int_equal(tse_cap_stream_finish(&st, &in), 0);
            assert_int_equal(in.cap_major, 2);
            assert_int_equal(in.cap_minor, 1);
            assert_true(in.header_done);
            assert_int_equal(in.package.len, p->aid_len);
            assert_memory_equal(in.package.b, p->aid, p->aid_len);
            assert_int_equal(in.pkg_major, p->version_major);
            assert_int_equal(in.pkg_minor, p->version_minor);
            assert_int_equal(in.lfdb_len, len);
            assert_int_equal(in.stream_len, (uint32_t)dn);
            assert_int_equal(in.n_applets, p->n_modules);
            assert_int_equal(in.flags, p->n_modules ? TSE_CAP_ACC_APPLET : 0);
            for (size_t m = 0; m < p->n_modules; m++) {
                assert_int_equal(in.applets[m].aid.len, p->modules[m].aid_len);
                assert_memory_equal(in.applets[m].aid.b, p->modules[m].aid, p->modules[m].aid_len);
            }
            /* gp: 9 components; GPShell adds the Descriptor */
            assert_int_equal(in.n_components, form ? 10 : 9);
            assert_int_equal(in.components[0].tag, TSE_CAP_HEADER);
            assert_int_equal(in.components[in.n_components - 1].tag,
                             form ? TSE_CAP_DESCRIPTOR : TSE_CAP_REFLOCATION);
            assert_int_equal(in.n_imports, 1);
            free(lfdb);
        }
        unlink(path);
    }
}

static void test_write_is_reproducible(void **state)
{
    (void)state;
    char a[512], b[512], err[256];
    tmp_path(a, sizeof(a), "repro");
    tmp_path(b, sizeof(b), "repro");
    assert_int_equal(tse_cap_write_file(diag(), a, err, sizeof(err)), 0);
    sleep(1);
    assert_int_equal(tse_cap_write_file(diag(), b, err, sizeof(err)), 0);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    static uint8_t ba[16384], bb[16384];
    size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
    fclose(fa);
    fclose(fb);
    assert_true(na > 100);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    /* the ZIP names of the component files, as the GP tools look them up */
    assert_true(contains(ba, na, "tse/diag/javacard/Header.cap"));
    assert_true(contains(ba, na, "META-INF/MANIFEST.MF"));
    unlink(a);
    unlink(b);
}

static void test_find_package_and_bad_args(void **state)
{
    (void)state;
    assert_ptr_equal(tse_cap_find_package("F0747365444941"), diag());
    assert_ptr_equal(tse_cap_find_package("f0747365444941"), diag());
    assert_null(tse_cap_find_package("F07473654449"));
    assert_null(tse_cap_find_package("nope"));
    assert_null(tse_cap_find_package(NULL));
    uint8_t out[8192];
    struct tse_package_def bad = *diag();
    bad.name = "tse..diag";
    assert_int_equal(tse_cap_build_lfdb(&bad, 0, out, sizeof(out)), TSE_ERR_INVALID_ARG);
    bad.name = "tse/diag";
    assert_int_equal(tse_cap_build_lfdb(&bad, 0, out, sizeof(out)), TSE_ERR_INVALID_ARG);
    bad = *diag();
    bad.aid_len = 4;
    assert_int_equal(tse_cap_build_lfdb(&bad, 0, out, sizeof(out)), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_cap_build_lfdb(diag(), 0, out, 20), TSE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(tse_cap_build_lfdb(NULL, 0, out, sizeof(out)), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_cap_stream_init(NULL), TSE_ERR_INVALID_ARG);
    struct tse_cap_stream st;
    tse_cap_stream_init(&st);
    assert_int_equal(tse_cap_stream_feed(&st, NULL, 1), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_cap_stream_feed(&st, NULL, 0), 0);

    char err[256] = "", path[512];
    uint8_t *l = NULL;
    size_t n = 0;
    assert_int_equal(tse_cap_read_file("/nonexistent/x.cap", 0, &l, &n, NULL, err, sizeof(err)),
                     TSE_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/x.cap"));
    /* a file that is not a ZIP */
    tmp_path(path, sizeof(path), "notzip");
    FILE *f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    assert_int_equal(tse_cap_read_file(path, 0, &l, &n, NULL, err, sizeof(err)), TSE_ERR_IO);
    unlink(path);
}

/* A package without modules: no Applet component, flags 0 (a library). */
static void test_package_without_modules(void **state)
{
    (void)state;
    static const uint8_t aid[] = {0xF0, 0x74, 0x73, 0x65, 0x4C, 0x49, 0x42};
    struct tse_package_def lib = {"tse.lib", aid, sizeof(aid), 2, 3, NULL, 0};
    uint8_t lfdb[8192], data[8200];
    int n = tse_cap_build_lfdb(&lib, 0, lfdb, sizeof(lfdb));
    assert_true(n > 0);
    int dn = tse_cap_load_data(lfdb, (size_t)n, data, sizeof(data));
    struct tse_cap_stream st;
    assert_int_equal(parse_all(data, (size_t)dn, &st), 0);
    assert_int_equal(st.info.n_applets, 0);
    assert_int_equal(st.info.flags, 0);
    assert_int_equal(st.info.pkg_major, 2);
    assert_int_equal(st.info.pkg_minor, 3);
}

/* ---- Splits --------------------------------------------------------------------------------- */

/* Feed b in pieces cut at the given points; returns finish()'s result. */
static int feed_split(struct tse_cap_stream *st, const uint8_t *b, size_t len, const size_t *cuts,
                      size_t ncuts)
{
    size_t at = 0;
    tse_cap_stream_init(st);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        int rc = tse_cap_stream_feed(st, b + at, end - at);
        if (rc)
            return rc;
        at = end;
    }
    return tse_cap_stream_finish(st, NULL);
}

static void same_result(const struct tse_cap_stream *a, const struct tse_cap_stream *b)
{
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->err_offset, b->err_offset);
    assert_int_equal(a->err_tag, b->err_tag);
    assert_memory_equal(&a->info, &b->info, sizeof(a->info));
}

static void check_all_splits(const uint8_t *b, size_t len)
{
    struct tse_cap_stream whole, part;
    int rc = feed_split(&whole, b, len, NULL, 0);
    for (size_t i = 0; i <= len; i++) {
        assert_int_equal(feed_split(&part, b, len, &i, 1), rc);
        same_result(&whole, &part);
        for (size_t j = i; j <= len; j += 7) {
            size_t cuts[2] = {i, j};
            assert_int_equal(feed_split(&part, b, len, cuts, 2), rc);
            same_result(&whole, &part);
        }
    }
    /* byte by byte */
    size_t *cuts = malloc(len * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    assert_int_equal(feed_split(&part, b, len, cuts, len), rc);
    same_result(&whole, &part);
    free(cuts);
}

static void test_every_split(void **state)
{
    (void)state;
    uint8_t data[8200], dap[8400], bad[8400];
    size_t n = load_data(diag(), 0, data, sizeof(data));
    check_all_splits(data, n);
    n = load_data(diag(), TSE_CAP_NO_DESCRIPTOR, data, sizeof(data));
    check_all_splits(data, n);

    /* two DAP blocks in front (a 128-byte signature has an 81 length) */
    size_t d = 0;
    for (int k = 0; k < 2; k++) {
        const uint8_t head[] = {0xE2, 0x81, 0x8D, 0x4F, 0x08,       0xA0, 0x00, 0x00,
                                0x01, 0x51, 0x00, 0x00, (uint8_t)k, 0xC3, 0x81, 0x80};
        memcpy(dap + d, head, sizeof(head));
        d += sizeof(head);
        memset(dap + d, 0x5A + k, 128);
        d += 128;
    }
    memcpy(dap + d, data, n);
    struct tse_cap_stream st;
    assert_int_equal(parse_all(dap, d + n, &st), 0);
    assert_int_equal(st.info.n_dap, 2);
    assert_int_equal(st.info.dap[1].sig_len, 128);
    assert_int_equal(st.info.dap[1].sd.len, 8);
    assert_int_equal(st.info.dap[1].sd.b[7], 1);
    check_all_splits(dap, d + n);

    /* failures too: the same reason at the same offset whatever the split */
    memcpy(bad, data, n);
    bad[n - 5] ^= 0xFF; /* inside the last component: harmless */
    check_all_splits(bad, n);
    memcpy(bad, data, n);
    bad[3 + 4] = 0x00; /* magic */
    check_all_splits(bad, n);
    memcpy(bad, data, n);
    bad[n] = 0x00; /* trailing */
    check_all_splits(bad, n + 1);
    check_all_splits(data, n - 1); /* truncated */
}

/* The state is plain data: a copy taken between two LOAD commands carries on. */
static void test_state_is_copyable(void **state)
{
    (void)state;
    uint8_t data[8200];
    size_t n = load_data(diag(), 0, data, sizeof(data));
    assert_true(sizeof(struct tse_cap_stream) <= 1536);
    struct tse_cap_stream a, b, ref;
    assert_int_equal(parse_all(data, n, &ref), 0);
    for (size_t cut = 0; cut <= n; cut += 13) {
        tse_cap_stream_init(&a);
        assert_int_equal(tse_cap_stream_feed(&a, data, cut), 0);
        memcpy(&b, &a, sizeof(a));
        memset(&a, 0xA5, sizeof(a));
        assert_int_equal(tse_cap_stream_feed(&b, data + cut, n - cut), 0);
        assert_int_equal(tse_cap_stream_finish(&b, NULL), 0);
        assert_memory_equal(&b.info, &ref.info, sizeof(ref.info));
    }
}

static void test_sticky_and_finished(void **state)
{
    (void)state;
    uint8_t data[8200];
    size_t n = load_data(diag(), 0, data, sizeof(data));
    struct tse_cap_stream st;
    struct tse_cap_info in;
    tse_cap_stream_init(&st);
    assert_int_equal(tse_cap_stream_feed(&st, data, n), 0);
    assert_int_equal(tse_cap_stream_finish(&st, &in), 0);
    assert_int_equal(tse_cap_stream_finish(&st, &in), 0);
    assert_int_equal(tse_cap_stream_feed(&st, data, 1), TSE_ERR_STATE);
    assert_int_equal(st.reason, TSE_CAP_OK);

    const uint8_t d4[] = {0xD4, 0x02, 0x01, 0x02};
    tse_cap_stream_init(&st);
    assert_int_equal(tse_cap_stream_feed(&st, d4, sizeof(d4)), TSE_ERR_PARSE);
    assert_int_equal(st.reason, TSE_CAP_ERR_CIPHERED);
    assert_int_equal(st.err_offset, 0);
    assert_int_equal(tse_cap_stream_feed(&st, data, n), TSE_ERR_PARSE);
    assert_int_equal(tse_cap_stream_finish(&st, &in), TSE_ERR_PARSE);
    assert_int_equal(st.reason, TSE_CAP_ERR_CIPHERED);

    assert_string_equal(tse_cap_strerror(TSE_CAP_OK), "no error");
    assert_string_equal(tse_cap_strerror(-1), "unknown reason");
    assert_string_equal(tse_cap_strerror(TSE_CAP_ERR_COUNT), "unknown reason");
    for (int r = 1; r < TSE_CAP_ERR_COUNT; r++)
        assert_non_null(strstr(tse_cap_strerror(r), " "));
    assert_int_equal(tse_cap_reason_sw(TSE_CAP_OK), SW_NO_ERROR);
    assert_int_equal(tse_cap_reason_sw(TSE_CAP_ERR_CIPHERED), SW_FUNC_NOT_SUPPORTED);
    assert_int_equal(tse_cap_reason_sw(TSE_CAP_ERR_TOO_MANY_APPLETS), SW_FILE_FULL);
    assert_int_equal(tse_cap_reason_sw(TSE_CAP_ERR_MAGIC), SW_WRONG_DATA);
}

/* ---- Malformed input: one reason each ------------------------------------------------------- */

/* C4 around `lfdb` with a declared length of `decl` (any), the bytes of lfdb after it. */
static size_t wrap(const uint8_t *lfdb, size_t len, size_t decl, uint8_t *out)
{
    out[0] = 0xC4;
    out[1] = 0x82;
    out[2] = (uint8_t)(decl >> 8);
    out[3] = (uint8_t)decl;
    memcpy(out + 4, lfdb, len);
    return len + 4;
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t lfdb[8192], m[8192], out[8400];
    int ln = tse_cap_build_lfdb(diag(), 0, lfdb, sizeof(lfdb));
    assert_true(ln > 0);
    size_t n = (size_t)ln;
    struct tse_cap_stream st;
    assert_int_equal(parse_all(out, wrap(lfdb, n, n, out), &st), 0);
    struct tse_cap_info in = st.info;
    int hdr = comp_index(&in, TSE_CAP_HEADER), dir = comp_index(&in, TSE_CAP_DIRECTORY),
        imp = comp_index(&in, TSE_CAP_IMPORT), app = comp_index(&in, TSE_CAP_APPLET),
        cls = comp_index(&in, TSE_CAP_CLASS), met = comp_index(&in, TSE_CAP_METHOD),
        sf = comp_index(&in, TSE_CAP_STATICFIELD), cp = comp_index(&in, TSE_CAP_CONSTANTPOOL),
        rl = comp_index(&in, TSE_CAP_REFLOCATION), desc = comp_index(&in, TSE_CAP_DESCRIPTOR);
#define MUT(off, val)                                                                              \
    do {                                                                                           \
        memcpy(m, lfdb, n);                                                                        \
        m[(off)] = (uint8_t)(val);                                                                 \
    } while (0)
#define EXPECT(reason, bytes, len)  assert_int_equal(reason_of(bytes, len), reason)
#define EXPECT_LFDB(reason, l, len) EXPECT(reason, out, wrap(l, len, len, out))

    /* the outer layer */
    EXPECT(TSE_CAP_ERR_EMPTY, out, 0);
    EXPECT(TSE_CAP_ERR_CIPHERED, (const uint8_t *)"\xD4\x01\x00", 3);
    EXPECT(TSE_CAP_ERR_LOAD_TAG, (const uint8_t *)"\x99\x01\x00", 3);
    EXPECT(TSE_CAP_ERR_BER_LENGTH, (const uint8_t *)"\xC4\x84\x00\x00\x00\x01", 6);
    EXPECT(TSE_CAP_ERR_BER_LENGTH, (const uint8_t *)"\xC4\x80", 2);
    EXPECT(TSE_CAP_ERR_TRUNCATED, (const uint8_t *)"\xC4\x82\x01", 3);
    EXPECT(TSE_CAP_ERR_TRUNCATED, out, wrap(lfdb, n, n, out) - 1);
    size_t w = wrap(lfdb, n, n + 1, out); /* C4 longer than the components */
    EXPECT(TSE_CAP_ERR_TRUNCATED, out, w);
    w = wrap(lfdb, n, n - 1, out); /* shorter: the last component runs past it */
    EXPECT(TSE_CAP_ERR_OVERRUN, out, w - 1);
    w = wrap(lfdb, n, n, out);
    out[w] = 0x00;
    EXPECT(TSE_CAP_ERR_TRAILING, out, w + 1);
    out[w] = 0xE2; /* a DAP block after the load file data block is trailing too */
    EXPECT(TSE_CAP_ERR_TRAILING, out, w + 1);
    const uint8_t c4_empty[] = {0xC4, 0x00};
    EXPECT(TSE_CAP_ERR_HEADER_FIRST, c4_empty, sizeof(c4_empty));

    /* DAP blocks */
    const uint8_t dap_only[] = {0xE2, 0x0A, 0x4F, 0x05, 1, 2, 3, 4, 5, 0xC3, 0x01, 0x00};
    EXPECT(TSE_CAP_ERR_NO_LFDB, dap_only, sizeof(dap_only));
    const uint8_t dap_c3_first[] = {0xE2, 0x03, 0xC3, 0x01, 0x00};
    EXPECT(TSE_CAP_ERR_DAP, dap_c3_first, sizeof(dap_c3_first));
    const uint8_t dap_short_aid[] = {0xE2, 0x08, 0x4F, 0x03, 1, 2, 3, 0xC3, 0x01, 0x00};
    EXPECT(TSE_CAP_ERR_DAP, dap_short_aid, sizeof(dap_short_aid));
    const uint8_t dap_overrun[] = {0xE2, 0x09, 0x4F, 0x05, 1, 2, 3, 4, 5, 0xC3, 0x05, 0, 0};
    EXPECT(TSE_CAP_ERR_DAP, dap_overrun, sizeof(dap_overrun));
    const uint8_t dap_no_sig[] = {0xE2, 0x07, 0x4F, 0x05, 1, 2, 3, 4, 5};
    EXPECT(TSE_CAP_ERR_DAP, dap_no_sig, sizeof(dap_no_sig));
    const uint8_t dap_empty[] = {0xE2, 0x00};
    EXPECT(TSE_CAP_ERR_DAP, dap_empty, sizeof(dap_empty));
    const uint8_t dap_extra[] = {0xE2, 0x0C, 0x4F, 0x05, 1,    2,    3,
                                 4,    5,    0xC3, 0x01, 0x00, 0xC3, 0x00};
    EXPECT(TSE_CAP_ERR_DAP, dap_extra, sizeof(dap_extra));

    /* the Header */
    const uint32_t h = in.components[hdr].offset;
    MUT(h + 3, 0xDF);
    EXPECT_LFDB(TSE_CAP_ERR_MAGIC, m, n);
    MUT(h + 8, 3); /* major version */
    EXPECT_LFDB(TSE_CAP_ERR_CAP_VERSION, m, n);
    MUT(h + 7, 0); /* minor 0 */
    EXPECT_LFDB(TSE_CAP_ERR_CAP_VERSION, m, n);
    MUT(h + 9, lfdb[h + 9] | TSE_CAP_ACC_EXTENDED);
    EXPECT_LFDB(TSE_CAP_ERR_EXTENDED, m, n);
    MUT(h + 12, 4); /* AID length */
    EXPECT_LFDB(TSE_CAP_ERR_HEADER, m, n);
    MUT(h + 2, lfdb[h + 2] - 1); /* the Header ends inside the AID */
    EXPECT_LFDB(TSE_CAP_ERR_HEADER, m, n);
    MUT(h + 9, 0); /* flags say no applets, yet there is an Applet component */
    EXPECT_LFDB(TSE_CAP_ERR_FLAGS, m, n);
    MUT(h + 9, lfdb[h + 9] | TSE_CAP_ACC_EXPORT);
    EXPECT_LFDB(TSE_CAP_ERR_FLAGS, m, n);

    /* component sequence */
    MUT(in.components[cls].offset, 14);
    EXPECT_LFDB(TSE_CAP_ERR_UNKNOWN_TAG, m, n);
    MUT(in.components[cls].offset, 0x80); /* custom components are not loaded */
    EXPECT_LFDB(TSE_CAP_ERR_UNKNOWN_TAG, m, n);
    MUT(in.components[cls].offset, 13); /* Static Resources: CAP 2.3 only */
    EXPECT_LFDB(TSE_CAP_ERR_UNKNOWN_TAG, m, n);
    MUT(in.components[cls].offset, 0);
    EXPECT_LFDB(TSE_CAP_ERR_UNKNOWN_TAG, m, n);
    MUT(in.components[cls].offset, TSE_CAP_DEBUG);
    EXPECT_LFDB(TSE_CAP_ERR_DEBUG, m, n);
    MUT(in.components[rl].offset + 2, lfdb[in.components[rl].offset + 2] + 1);
    EXPECT_LFDB(TSE_CAP_ERR_OVERRUN, m, n - in.components[desc].size - 3);
    size_t k;
    {
        const int seq[] = {dir, hdr, imp, app, cls, met, sf, cp, rl};
        k = pick(lfdb, &in, seq, 9, m);
        EXPECT_LFDB(TSE_CAP_ERR_HEADER_FIRST, m, k);
    }
    {
        const int seq[] = {hdr, imp, dir, app, cls, met, sf, cp, rl};
        k = pick(lfdb, &in, seq, 9, m);
        EXPECT_LFDB(TSE_CAP_ERR_ORDER, m, k);
    }
    {
        const int seq[] = {hdr, dir, imp, app, cls, met, sf, cp, rl, rl};
        k = pick(lfdb, &in, seq, 10, m);
        EXPECT_LFDB(TSE_CAP_ERR_DUPLICATE, m, k);
    }
    {
        const int seq[] = {hdr, dir, imp, app, cls, met, cp, rl};
        k = pick(lfdb, &in, seq, 8, m);
        struct tse_cap_stream s2;
        assert_int_equal(parse_all(out, wrap(m, k, k, out), &s2), TSE_CAP_ERR_MISSING);
        assert_int_equal(s2.err_tag, TSE_CAP_STATICFIELD);
    }
    {
        const int seq[] = {hdr, dir, imp, cls, met, sf, cp, rl}; /* no Applet, flag says so */
        k = pick(lfdb, &in, seq, 8, m);
        EXPECT_LFDB(TSE_CAP_ERR_FLAGS, m, k);
    }

    /* the Directory against the components */
    const uint32_t d0 = in.components[dir].offset + 3;
    MUT(d0 + 2 * (TSE_CAP_CLASS - 1) + 1, lfdb[d0 + 2 * (TSE_CAP_CLASS - 1) + 1] + 1);
    EXPECT_LFDB(TSE_CAP_ERR_DIRECTORY, m, n);
    MUT(d0 + 2 * (TSE_CAP_EXPORT - 1) + 1, 1); /* an Export declared but not loaded */
    EXPECT_LFDB(TSE_CAP_ERR_DIRECTORY, m, n);
    MUT(d0 + 22 + 6, 2); /* import_count */
    EXPECT_LFDB(TSE_CAP_ERR_DIRECTORY, m, n);
    MUT(d0 + 22 + 7, 3); /* applet_count */
    EXPECT_LFDB(TSE_CAP_ERR_DIRECTORY, m, n);
    MUT(d0 + 22 + 8, 1); /* a custom component entry that is not there */
    EXPECT_LFDB(TSE_CAP_ERR_DIRECTORY, m, n);
    /* the Descriptor may be declared and left out (gp) */
    {
        const int seq[] = {hdr, dir, imp, app, cls, met, sf, cp, rl};
        k = pick(lfdb, &in, seq, 9, m);
        EXPECT_LFDB(TSE_CAP_OK, m, k);
    }

    /* Import and Applet */
    const uint32_t i0 = in.components[imp].offset + 3, a0 = in.components[app].offset + 3;
    MUT(i0 + 3, 17); /* imported AID length */
    EXPECT_LFDB(TSE_CAP_ERR_IMPORT, m, n);
    MUT(i0, 2); /* count says 2, one entry there */
    EXPECT_LFDB(TSE_CAP_ERR_IMPORT, m, n);
    MUT(i0, 0); /* count says 0, one entry there */
    EXPECT_LFDB(TSE_CAP_ERR_IMPORT, m, n);
    MUT(a0, 0);
    EXPECT_LFDB(TSE_CAP_ERR_APPLET, m, n);
    MUT(a0, 3);
    EXPECT_LFDB(TSE_CAP_ERR_APPLET, m, n);
    MUT(a0, TSE_CAP_MAX_APPLETS + 1);
    EXPECT_LFDB(TSE_CAP_ERR_TOO_MANY_APPLETS, m, n);
    MUT(a0 + 1, 17); /* applet AID length */
    EXPECT_LFDB(TSE_CAP_ERR_APPLET, m, n);
    MUT(a0 + 1, 4);
    EXPECT_LFDB(TSE_CAP_ERR_APPLET, m, n);
#undef MUT
#undef EXPECT
#undef EXPECT_LFDB
}

/* The failure names the component and the byte of the stream. */
static void test_error_location(void **state)
{
    (void)state;
    uint8_t lfdb[8192], out[8400];
    int n = tse_cap_build_lfdb(diag(), 0, lfdb, sizeof(lfdb));
    struct tse_cap_stream st;
    size_t w = wrap(lfdb, (size_t)n, (size_t)n, out);
    assert_int_equal(parse_all(out, w, &st), 0);
    struct tse_cap_info in = st.info;
    uint32_t at = in.components[comp_index(&in, TSE_CAP_CLASS)].offset;
    out[4 + at] = 0x20;
    assert_int_equal(parse_all(out, w, &st), TSE_CAP_ERR_UNKNOWN_TAG);
    assert_int_equal(st.err_tag, 0x20);
    assert_int_equal(st.err_offset, 4 + at);
    /* a Header component of CAP 2.2 with a package name */
    const uint8_t hdr22[] = {0x01, 0x00, 0x15, 0xDE, 0xCA, 0xFF, 0xED, 0x02, 0x02, 0x04, 0x00, 0x01,
                             0x05, 1,    2,    3,    4,    5,    0x05, 'a',  '/',  'b',  'c',  'd'};
    tse_cap_stream_init(&st);
    assert_int_equal(tse_cap_stream_feed(&st, (const uint8_t *)"\xC4\x81\xC8", 3), 0);
    assert_int_equal(tse_cap_stream_feed(&st, hdr22, sizeof(hdr22)), 0);
    assert_true(st.info.header_done);
    assert_true(st.info.has_name);
    assert_int_equal(st.info.name_len, 5);
    assert_string_equal(st.info.name, "a/bcd");
    /* CAP 2.1 has no package name */
    uint8_t hdr21[sizeof(hdr22)];
    memcpy(hdr21, hdr22, sizeof(hdr22));
    hdr21[7] = 1;
    tse_cap_stream_init(&st);
    assert_int_equal(tse_cap_stream_feed(&st, (const uint8_t *)"\xC4\x81\xC8", 3), 0);
    assert_int_equal(tse_cap_stream_feed(&st, hdr21, sizeof(hdr21)), TSE_ERR_PARSE);
    assert_int_equal(st.reason, TSE_CAP_ERR_HEADER);
    assert_false(st.info.header_done);
}

/* ---- The CAP reader on damaged archives ------------------------------------------------------ */

#include <zip.h>

static void zip_with(const char *path, const char *name, const uint8_t *b, size_t len)
{
    int e = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &e);
    assert_non_null(z);
    zip_source_t *src = zip_source_buffer(z, b, len, 0);
    assert_true(zip_file_add(z, name, src, 0) >= 0);
    assert_int_equal(zip_close(z), 0);
}

static void test_reader_checks_component_files(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    uint8_t *l = NULL;
    size_t n = 0;
    tmp_path(path, sizeof(path), "damaged");
    const uint8_t ok_hdr[] = {0x01, 0x00, 0x01, 0xAA};
    zip_with(path, "other/Header.cap", ok_hdr, sizeof(ok_hdr));
    assert_int_equal(tse_cap_read_file(path, 0, &l, &n, NULL, err, sizeof(err)), TSE_ERR_PARSE);
    assert_non_null(strstr(err, "Header.cap"));
    const uint8_t bad_size[] = {0x01, 0x00, 0x05, 0xAA};
    zip_with(path, "x/javacard/Header.cap", bad_size, sizeof(bad_size));
    assert_int_equal(tse_cap_read_file(path, 0, &l, &n, NULL, err, sizeof(err)), TSE_ERR_PARSE);
    assert_non_null(strstr(err, "size"));
    const uint8_t bad_tag[] = {0x02, 0x00, 0x01, 0xAA};
    zip_with(path, "x/javacard/Header.cap", bad_tag, sizeof(bad_tag));
    assert_int_equal(tse_cap_read_file(path, 0, &l, &n, NULL, err, sizeof(err)), TSE_ERR_PARSE);
    zip_with(path, "x/javacard/Header.cap", ok_hdr, sizeof(ok_hdr));
    struct tse_cap_zip_info zi;
    assert_int_equal(tse_cap_read_file(path, 0, &l, &n, &zi, err, sizeof(err)), 0);
    assert_int_equal(n, sizeof(ok_hdr));
    assert_string_equal(zi.package_path, "x");
    assert_false(zi.has_manifest);
    free(l);
    unlink(path);
}

/* ---- The shell's `load` command against a card-side secure channel --------------------------- */

/* A security domain reduced to its secure channel: SCP03 with the default keys, every
 * command after EXTERNAL AUTHENTICATE unwrapped and recorded in plain. */
struct sd_mock {
    struct tse_scp_session s;
    uint8_t cmds[64][5 + 256 + 1];
    size_t lens[64];
    unsigned n;
    unsigned fail_at;  /* answer 6A80 to this recorded command (1-based); 0 = never */
    unsigned wire_max; /* longest wire command seen */
};

static const uint8_t mock_sd_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};

static int reply(uint8_t *r, size_t cap, size_t *rlen, const uint8_t *d, size_t n, uint16_t sw)
{
    if (cap < n + 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (n)
        memcpy(r, d, n);
    r[n] = (uint8_t)(sw >> 8);
    r[n + 1] = (uint8_t)sw;
    *rlen = n + 2;
    return 0;
}

static int sd_transmit(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                       size_t *rlen)
{
    struct sd_mock *m = t;
    (void)iface;
    struct tse_apdu a;
    if (tse_apdu_parse(c, clen, &a) != 0)
        return reply(r, rcap, rlen, NULL, 0, SW_WRONG_LENGTH);
    if (clen > m->wire_max)
        m->wire_max = (unsigned)clen;
    if (a.ins == 0xA4) { /* SELECT: FCI with the SD's AID */
        uint8_t fci[2 + 2 + sizeof(mock_sd_aid)] = {0x6F, 2 + sizeof(mock_sd_aid), 0x84,
                                                    sizeof(mock_sd_aid)};
        memcpy(fci + 4, mock_sd_aid, sizeof(mock_sd_aid));
        return reply(r, rcap, rlen, fci, sizeof(fci), SW_NO_ERROR);
    }
    if (a.ins == 0x50) {
        struct tse_scp_keys k = {.scp = 3, .i = 0x70, .key_len = 16};
        for (int b = 0; b < 16; b++)
            k.enc[b] = k.mac[b] = k.dek[b] = (uint8_t)(0x40 + b);
        const uint8_t kdd[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        struct tse_aid sd;
        tse_aid_set(&sd, mock_sd_aid, sizeof(mock_sd_aid));
        uint8_t out[64];
        size_t n = 0;
        assert_int_equal(tse_scp_card_initialize_update(&m->s, &k, kdd, 1, a.data, a.lc, NULL, &sd,
                                                        out, sizeof(out), &n),
                         0);
        return reply(r, rcap, rlen, out, n, SW_NO_ERROR);
    }
    if (a.ins == 0x82)
        return reply(r, rcap, rlen, NULL, 0, tse_scp_card_external_authenticate(&m->s, &a));
    struct tse_apdu plain;
    uint8_t buf[5 + 255 + 32];
    uint16_t sw = tse_scp_card_unwrap(&m->s, &a, &plain, buf, sizeof(buf));
    if (sw != SW_NO_ERROR)
        return reply(r, rcap, rlen, NULL, 0, sw);
    assert_true(m->n < 64);
    struct tse_apdu rec = plain;
    rec.cla = (uint8_t)(plain.cla & ~0x04); /* as the shell built it */
    int len = tse_apdu_encode(&rec, m->cmds[m->n], sizeof(m->cmds[0]));
    assert_true(len > 0);
    m->lens[m->n++] = (size_t)len;
    uint8_t zero = 0;
    if (m->fail_at == m->n)
        return reply(r, rcap, rlen, NULL, 0, SW_WRONG_DATA);
    return reply(r, rcap, rlen, &zero, 1, SW_NO_ERROR);
}

static int sd_power_on(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    (void)t;
    (void)iface;
    (void)cap;
    atr[0] = 0x3B;
    atr[1] = 0x00;
    *len = 2;
    return 0;
}

static const struct tse_target_ops sd_ops = {
    .name = "sd-mock", .power_on = sd_power_on, .transmit = sd_transmit};

static char *read_all(FILE *f)
{
    static char text[1 << 16];
    rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    return text;
}

/* Run script text on a fresh mock; returns failures; output and errors in *out / *err. */
static int run_load(struct sd_mock *m, const char *script, char **out, char **err)
{
    static char outbuf[1 << 16], errbuf[1 << 16];
    FILE *fo = tmpfile(), *fe = tmpfile(), *in = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    assert_non_null(in);
    fputs(script, in);
    rewind(in);
    struct tse_script_opts o = {.out = fo, .err = fe, .auto_power = true};
    struct tse_script *s = tse_script_new(&sd_ops, m, &o);
    assert_non_null(s);
    int failures = tse_script_run_stream(s, in, "/suite/load.tse");
    tse_script_free(s);
    strcpy(outbuf, read_all(fo));
    strcpy(errbuf, read_all(fe));
    fclose(fo);
    fclose(fe);
    fclose(in);
    *out = outbuf;
    *err = errbuf;
    return failures;
}

static void test_shell_load(void **state)
{
    (void)state;
    char path[512], err[256], script[2048], *out, *errs;
    tmp_path(path, sizeof(path), "shell-load");
    assert_int_equal(tse_cap_write_file(diag(), path, err, sizeof(err)), 0);
    uint8_t expect[8200];
    size_t en = load_data(diag(), TSE_CAP_NO_DESCRIPTOR, expect, sizeof(expect));

    /* explicit SD and a small block size: several LOADs, numbered, the last with P1 80 */
    struct sd_mock *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    snprintf(script, sizeof(script), "auth\nload %s sd A000000003000000 block 100\n", path);
    assert_int_equal(run_load(m, script, &out, &errs), 0);
    assert_string_equal(errs, "");
    size_t blocks = (en + 99) / 100;
    assert_int_equal(m->n, 1 + blocks);
    const uint8_t install[] = {0x80, 0xE6, 0x02, 0x00, 0x14, 0x07, 0xF0, 0x74, 0x73,
                               0x65, 0x44, 0x49, 0x41, 0x08, 0xA0, 0x00, 0x00, 0x00,
                               0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(m->lens[0], sizeof(install));
    assert_memory_equal(m->cmds[0], install, sizeof(install));
    size_t at = 0;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *c = m->cmds[1 + b];
        size_t len = en - at < 100 ? en - at : 100;
        assert_int_equal(c[0], 0x80);
        assert_int_equal(c[1], 0xE8);
        assert_int_equal(c[2], b + 1 == blocks ? 0x80 : 0x00);
        assert_int_equal(c[3], b);
        assert_int_equal(c[4], len);
        assert_memory_equal(c + 5, expect + at, len);
        assert_int_equal(m->lens[1 + b], 5 + len + 1); /* Le 00 */
        at += len;
    }
    assert_int_equal(at, en);
    assert_non_null(strstr(out, "LOAD blocks accepted"));

    /* default SD: the one the last SELECT reported; default block: 247 with C-MAC */
    memset(m, 0, sizeof(*m));
    snprintf(script, sizeof(script), "00A4040000\nauth\nload %s\n", path);
    assert_int_equal(run_load(m, script, &out, &errs), 0);
    assert_int_equal(m->cmds[0][4], 0x14);
    assert_memory_equal(m->cmds[0] + 14, mock_sd_aid, sizeof(mock_sd_aid));
    assert_int_equal(m->n, 1 + (en + 246) / 247);
    assert_int_equal(m->cmds[1][4], en < 247 ? en : 247);
    assert_true(m->wire_max <= 5 + 255 + 1);

    /* C-DEC: 239-byte blocks still fit a short Lc once padded and MACed */
    memset(m, 0, sizeof(*m));
    snprintf(script, sizeof(script), "auth level 03\nload %s sd A000000151000000\n", path);
    assert_int_equal(run_load(m, script, &out, &errs), 0);
    assert_int_equal(m->cmds[1][4], en < 239 ? en : 239);
    at = 0;
    for (unsigned b = 1; b < m->n; b++) {
        assert_memory_equal(m->cmds[b] + 5, expect + at, m->cmds[b][4]);
        at += m->cmds[b][4];
    }
    assert_int_equal(at, en);

    /* a refused LOAD stops the command with FILE:LINE */
    memset(m, 0, sizeof(*m));
    m->fail_at = 3;
    snprintf(script, sizeof(script), "auth\n\nload %s sd A000000151000000 block 50\n", path);
    assert_int_equal(run_load(m, script, &out, &errs), 1);
    assert_int_equal(m->n, 3);
    assert_non_null(strstr(errs, "/suite/load.tse:3: error: load: LOAD block 2 of"));
    assert_non_null(strstr(errs, "answered 6A80"));

    /* no secure channel, bad options, missing file */
    memset(m, 0, sizeof(*m));
    snprintf(script, sizeof(script), "load %s\n", path);
    assert_int_equal(run_load(m, script, &out, &errs), 1);
    assert_non_null(strstr(errs, "open a secure channel first"));
    assert_int_equal(m->n, 0);
    snprintf(script, sizeof(script), "auth\nload %s block 0\nload %s sd 0102\nload %s fast 1\n",
             path, path, path);
    assert_int_equal(run_load(m, script, &out, &errs), 3);
    assert_non_null(strstr(errs, "block wants"));
    assert_non_null(strstr(errs, "sd wants"));
    assert_non_null(strstr(errs, "unknown option 'fast'"));
    memset(m, 0, sizeof(*m));
    assert_int_equal(
        run_load(m, "auth\nload /nonexistent.cap\nload\nload /dev/null\n", &out, &errs), 3);
    assert_non_null(strstr(errs, "/nonexistent.cap"));
    assert_non_null(strstr(errs, "/dev/null: not a regular file"));
    assert_non_null(strstr(errs, "usage: load"));
    free(m);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_packages),
        cmocka_unit_test(test_write_is_reproducible),
        cmocka_unit_test(test_find_package_and_bad_args),
        cmocka_unit_test(test_package_without_modules),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_state_is_copyable),
        cmocka_unit_test(test_sticky_and_finished),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_error_location),
        cmocka_unit_test(test_reader_checks_component_files),
        cmocka_unit_test(test_shell_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
