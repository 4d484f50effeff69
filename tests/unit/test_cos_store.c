/* SPDX-License-Identifier: Apache-2.0 */
/* The journalled store (src/cos/store.c): atomicity, recovery, corruption, compaction. */
#include "tse_test.h"

#include <fcntl.h>

#include "cos/store_internal.h"

static const struct tse_store_cfg CFG = {64 * 1024, 4096, false};

static struct tse_store *mk(char *path, size_t cap)
{
    tt_path(path, cap, "store");
    struct tse_store *s;
    char err[256];
    assert_int_equal(tse_store_create(&s, path, &CFG, err, sizeof(err)), 0);
    return s;
}

static struct tse_store *reopen(struct tse_store *s, const char *path)
{
    tse_store_close(s);
    char err[256];
    assert_int_equal(tse_store_open(&s, path, err, sizeof(err)), 0);
    tse_store_configure(s, &CFG);
    return s;
}

static uint32_t val(struct tse_store *s, uint32_t owner, uint32_t id)
{
    const uint8_t *d;
    size_t n;
    assert_int_equal(tse_store_get(s, owner, id, &d, &n), 0);
    assert_true(n >= 4);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

static int put(struct tse_store *s, uint32_t owner, uint32_t id, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return tse_store_write(s, owner, id, 0, b, 4);
}

static void test_persist_and_reopen(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    assert_int_equal(tse_store_create_obj(s, 5, 1, 8), 0);
    assert_int_equal(tse_store_create_obj(s, 5, 1, 8), TSE_ERR_EXISTS);
    assert_int_equal(put(s, 5, 1, 0x11223344), 0);
    assert_int_equal(tse_store_create_obj(s, 6, 1, 4), 0);
    assert_int_equal(put(s, 6, 1, 7), 0);
    assert_int_equal(tse_store_write(s, 5, 1, 6, (const uint8_t *)"abc", 3), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_store_write(s, 5, 9, 0, (const uint8_t *)"a", 1), TSE_ERR_NOT_FOUND);
    uint8_t d1[32], d2[32];
    tse_store_digest(s, d1);
    s = reopen(s, path);
    tse_store_digest(s, d2);
    assert_memory_equal(d1, d2, 32);
    assert_int_equal(val(s, 5, 1), 0x11223344);
    assert_int_equal(val(s, 6, 1), 7);
    assert_int_equal(tse_store_owner_used(s, 5), 8 + TSE_STORE_OBJ_OVERHEAD);
    assert_int_equal(tse_store_delete_owner(s, 5), 0);
    s = reopen(s, path);
    assert_int_equal(tse_store_get(s, 5, 1, NULL, NULL), TSE_ERR_NOT_FOUND);
    assert_int_equal(val(s, 6, 1), 7);
    tse_store_close(s);
    struct tse_store *t;
    char err[256];
    assert_int_equal(tse_store_create(&t, path, &CFG, err, sizeof(err)), TSE_ERR_EXISTS);
    assert_non_null(strstr(err, "already exists"));
    unlink(path);
}

static void test_transactions(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    tse_store_create_obj(s, 1, 1, 4);
    put(s, 1, 1, 100);
    assert_int_equal(tse_store_commit(s), TSE_ERR_TXN_NONE);
    assert_int_equal(tse_store_abort(s), TSE_ERR_TXN_NONE);
    /* abort restores writes, creations and deletions */
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(tse_store_begin(s), TSE_ERR_TXN_NESTED);
    put(s, 1, 1, 200);
    assert_int_equal(val(s, 1, 1), 200); /* reads see the transaction's writes */
    assert_int_equal(tse_store_create_obj(s, 1, 2, 4), 0);
    assert_int_equal(tse_store_delete(s, 1, 1), 0);
    assert_int_equal(tse_store_abort(s), 0);
    assert_int_equal(val(s, 1, 1), 100);
    assert_int_equal(tse_store_get(s, 1, 2, NULL, NULL), TSE_ERR_NOT_FOUND);
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 1), 100);
    assert_int_equal(tse_store_get(s, 1, 2, NULL, NULL), TSE_ERR_NOT_FOUND);
    /* commit persists */
    tse_store_begin(s);
    put(s, 1, 1, 300);
    tse_store_create_obj(s, 1, 3, 4);
    put(s, 1, 3, 3);
    assert_int_equal(tse_store_commit(s), 0);
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 1), 300);
    assert_int_equal(val(s, 1, 3), 3);
    /* a non-atomic write survives abort; one on an object the transaction touched joins it */
    tse_store_create_obj(s, 1, 4, 4);
    tse_store_begin(s);
    uint8_t nine[4] = {0, 0, 0, 9};
    assert_int_equal(tse_store_write_nonatomic(s, 1, 4, 0, nine, 4), 0);
    put(s, 1, 1, 400);
    assert_int_equal(tse_store_write_nonatomic(s, 1, 1, 0, nine, 4), 0);
    tse_store_abort(s);
    assert_int_equal(val(s, 1, 4), 9);
    assert_int_equal(val(s, 1, 1), 300);
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 4), 9);
    assert_int_equal(val(s, 1, 1), 300);
    tse_store_close(s);
    unlink(path);
}

static void test_limits(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    assert_int_equal(tse_store_create_obj(s, 1, 1, 60 * 1024), 0);
    assert_int_equal(tse_store_create_obj(s, 1, 2, 8 * 1024), TSE_ERR_NO_SPACE);
    assert_int_equal(tse_store_get(s, 1, 2, NULL, NULL), TSE_ERR_NOT_FOUND);
    static uint8_t big[8192];
    memset(big, 0xAB, sizeof(big));
    tse_store_begin(s);
    assert_int_equal(tse_store_write(s, 1, 1, 0, big, 2048), 0);
    assert_int_equal(tse_store_write(s, 1, 1, 2048, big, 4000), TSE_ERR_TXN_FULL);
    const uint8_t *d;
    tse_store_get(s, 1, 1, &d, NULL);
    assert_int_equal(d[2048], 0); /* the refused write changed nothing */
    assert_int_equal(d[0], 0xAB);
    tse_store_abort(s);
    assert_int_equal(d[0], 0);
    tse_store_close(s);
    unlink(path);
}

/* Every write of a transaction and its COMMIT record is a tear point; none may leak. */
static void test_torn_transaction(void **state)
{
    (void)state;
    for (unsigned k = 1; k <= 5; k++) {
        char path[512];
        struct tse_store *s = mk(path, sizeof(path));
        tse_store_create_obj(s, 1, 1, 4);
        tse_store_create_obj(s, 1, 2, 4);
        put(s, 1, 1, 10);
        tse_store_tear_at(s, k);
        int rc = tse_store_begin(s);
        rc = rc ? rc : put(s, 1, 1, 5);
        rc = rc ? rc : put(s, 1, 2, 5);
        rc = rc ? rc : tse_store_create_obj(s, 1, 3, 4);
        rc = rc ? rc : put(s, 1, 3, 1);
        rc = rc ? rc : tse_store_commit(s);
        assert_int_equal(rc, TSE_ERR_TORN);
        assert_true(tse_store_torn(s));
        assert_int_equal(put(s, 1, 1, 77), TSE_ERR_TORN); /* a dead card writes nothing */
        s = reopen(s, path);
        struct tse_store_stats st;
        tse_store_get_stats(s, &st);
        assert_true(st.recovered_tail);
        assert_int_equal(val(s, 1, 1), 10);
        assert_int_equal(val(s, 1, 2), 0);
        assert_int_equal(tse_store_get(s, 1, 3, NULL, NULL), TSE_ERR_NOT_FOUND);
        /* the recovered image keeps working and stays consistent */
        assert_int_equal(put(s, 1, 2, 42), 0);
        s = reopen(s, path);
        assert_int_equal(val(s, 1, 2), 42);
        tse_store_close(s);
        unlink(path);
    }
}

static void test_reload_after_tear(void **state)
{
    (void)state;
    char path[512], err[256];
    struct tse_store *s = mk(path, sizeof(path));
    tse_store_create_obj(s, 1, 1, 4);
    put(s, 1, 1, 1);
    tse_store_tear_at(s, 1);
    assert_int_equal(put(s, 1, 1, 2), TSE_ERR_TORN);
    assert_int_equal(tse_store_reload(s, err, sizeof(err)), 0);
    assert_int_equal(val(s, 1, 1), 1);
    assert_int_equal(put(s, 1, 1, 3), 0);
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 1), 3);
    tse_store_close(s);
    unlink(path);
}

static size_t fsize(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (size_t)sb.st_size;
}

static void poke(const char *path, size_t off, uint8_t xor_with)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= xor_with;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void expect_refused(const char *path, int want, const char *msg)
{
    struct tse_store *s = NULL;
    char err[256] = "";
    size_t before = fsize(path);
    assert_int_equal(tse_store_open(&s, path, err, sizeof(err)), want);
    assert_null(s);
    if (!strstr(err, msg))
        fail_msg("expected \"%s\" in \"%s\"", msg, err);
    assert_int_equal(fsize(path), before); /* never "repaired" or reset */
}

static void test_corruption_refused(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    tse_store_create_obj(s, 1, 1, 16);
    assert_int_equal(tse_store_compact(s), 0); /* the object now lives in the snapshot */
    s = reopen(s, path);
    put(s, 1, 1, 5);
    put(s, 1, 1, 6);
    tse_store_close(s);
    size_t snap_rec = 40; /* header length: the first snapshot record follows */
    poke(path, 0, 0x01);
    expect_refused(path, TSE_ERR_CORRUPT, "bad magic");
    poke(path, 0, 0x01);
    poke(path, 20, 0x01);
    expect_refused(path, TSE_ERR_CORRUPT, "header checksum");
    poke(path, 20, 0x01);
    poke(path, snap_rec + 30, 0x40);
    expect_refused(path, TSE_ERR_CORRUPT, "snapshot checksum");
    poke(path, snap_rec + 30, 0x40);
    /* the first of two journal records damaged: not a torn tail */
    size_t size = fsize(path);
    size_t rec = 24 + 4 + 4; /* a 4-byte WRITE record */
    poke(path, size - 2 * rec + 25, 0x10);
    expect_refused(path, TSE_ERR_CORRUPT, "before the end");
    poke(path, size - 2 * rec + 25, 0x10);
    /* truncated inside the snapshot */
    assert_int_equal(truncate(path, 60), 0);
    expect_refused(path, TSE_ERR_CORRUPT, "truncated");
    assert_int_equal(truncate(path, 10), 0);
    expect_refused(path, TSE_ERR_CORRUPT, "too short");
    unlink(path);
    /* an image from a future format version */
    s = mk(path, sizeof(path));
    tse_store_close(s);
    poke(path, 9, 0x03); /* a changed version byte breaks the header checksum first */
    expect_refused(path, TSE_ERR_CORRUPT, "header checksum");
    unlink(path);
    struct tse_store *t = NULL;
    char err[256];
    assert_int_equal(tse_store_open(&t, "/nonexistent/dir/x.img", err, sizeof(err)), TSE_ERR_IO);
}

static void test_compaction(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    tse_store_create_obj(s, 2, 1, 4);
    for (uint32_t i = 1; i <= 12000; i++)
        assert_int_equal(put(s, 2, 1, i), 0);
    struct tse_store_stats st;
    tse_store_get_stats(s, &st);
    assert_true(st.compactions >= 1);
    assert_true(st.image_bytes < 300 * 1024);
    s = reopen(s, path);
    assert_int_equal(val(s, 2, 1), 12000);
    /* a power cut inside a compaction loses nothing: the journal was complete */
    char err[256];
    size_t n = 0;
    for (uint32_t i = 1; i < 20000; i++) {
        /* arm the cut at the write after this one: only a compaction is such a write */
        tse_store_tear_at(s, 2);
        assert_int_equal(put(s, 2, 1, 50000 + i), 0);
        if (tse_store_torn(s)) {
            n = i;
            break;
        }
    }
    assert_true(n > 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), 0); /* the half-written new image */
    assert_int_equal(tse_store_reload(s, err, sizeof(err)), 0);
    assert_int_equal(val(s, 2, 1), 50000 + n);
    assert_int_equal(access(tmp, F_OK), -1);
    tse_store_close(s);
    unlink(path);
}

/* A transaction's records reach the image in one write, with its COMMIT; a non-atomic write
 * in the middle takes the records before it along, so the file order is the call order. */
static void test_commit_batching(void **state)
{
    (void)state;
    char path[512];
    struct tse_store *s = mk(path, sizeof(path));
    assert_int_equal(tse_store_create_obj(s, 1, 1, 4), 0);
    assert_int_equal(tse_store_create_obj(s, 1, 2, 4), 0);
    assert_int_equal(tse_store_create_obj(s, 1, 3, 4), 0);
    size_t rec = 24 + 4 + 4; /* a 4-byte WRITE record */
    size_t size0 = fsize(path);
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(put(s, 1, 1, 10), 0);
    assert_int_equal(put(s, 1, 2, 20), 0);
    assert_int_equal(fsize(path), size0); /* nothing written yet: nothing would count yet */
    assert_int_equal(val(s, 1, 2), 20);   /* memory already shows the transaction */
    uint8_t b[4] = {0, 0, 0, 30};
    assert_int_equal(tse_store_write_nonatomic(s, 1, 3, 0, b, 4), 0);
    assert_int_equal(fsize(path), size0 + 3 * rec); /* both pending records, then this one */
    assert_int_equal(put(s, 1, 1, 11), 0);
    assert_int_equal(tse_store_commit(s), 0);
    assert_int_equal(fsize(path), size0 + 4 * rec + 28); /* + the COMMIT record */
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 1), 11);
    assert_int_equal(val(s, 1, 2), 20);
    assert_int_equal(val(s, 1, 3), 30);
    /* an abort writes nothing of the transaction (only the ABORT record) */
    size0 = fsize(path);
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(put(s, 1, 1, 99), 0);
    assert_int_equal(tse_store_abort(s), 0);
    assert_int_equal(fsize(path), size0 + 28);
    assert_int_equal(val(s, 1, 1), 11);
    tse_store_close(s);
    unlink(path);
}

/* The descriptor can be released at any time; a write opens the image again. When that
 * fails, a single write fails cleanly and a transaction rolls back at its commit. */
static void test_descriptor_release(void **state)
{
    (void)state;
    char path[512], moved[600];
    struct tse_store *s = mk(path, sizeof(path));
    assert_int_equal(tse_store_create_obj(s, 1, 1, 4), 0);
    assert_int_equal(tse_store_create_obj(s, 1, 2, 4), 0);
    assert_int_equal(put(s, 1, 1, 1), 0);
    tse_store_close_fd(s);
    tse_store_close_fd(s); /* twice: no-op */
    assert_int_equal(put(s, 1, 1, 2), 0);
    tse_store_close_fd(s);
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(put(s, 1, 1, 3), 0);
    assert_int_equal(put(s, 1, 2, 3), 0);
    assert_int_equal(tse_store_commit(s), 0);
    tse_store_close_fd(s);
    /* the image is gone from its path: no write can reach it */
    snprintf(moved, sizeof(moved), "%s.moved", path);
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(put(s, 1, 1, 7), 0); /* pending, in memory */
    assert_int_equal(put(s, 1, 2, 7), 0);
    tse_store_close_fd(s);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(tse_store_commit(s), TSE_ERR_IO); /* the COMMIT cannot be written… */
    assert_false(tse_store_in_txn(s));                 /* …so the transaction rolled back */
    assert_int_equal(val(s, 1, 1), 3);
    assert_int_equal(val(s, 1, 2), 3);
    assert_int_equal(put(s, 1, 1, 4), TSE_ERR_IO);
    assert_int_equal(val(s, 1, 1), 3);
    assert_int_equal(tse_store_begin(s), 0);
    assert_int_equal(put(s, 1, 1, 5), TSE_ERR_IO); /* the descriptor is needed at once */
    assert_int_equal(tse_store_commit(s), 0);      /* nothing was logged: nothing to write */
    assert_false(tse_store_in_txn(s));
    assert_int_equal(val(s, 1, 1), 3);
    assert_int_equal(access(path, F_OK), -1); /* never created anew */
    assert_int_equal(rename(moved, path), 0);
    s = reopen(s, path);
    assert_int_equal(val(s, 1, 1), 3);
    assert_int_equal(val(s, 1, 2), 3);
    tse_store_close(s);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persist_and_reopen),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_torn_transaction),
        cmocka_unit_test(test_reload_after_tear),
        cmocka_unit_test(test_corruption_refused),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_commit_batching),
        cmocka_unit_test(test_descriptor_release),
    };
    return cmocka_run_group_tests_name("cos_store", tests, NULL, NULL);
}
