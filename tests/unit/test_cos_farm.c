/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card farm: cards created and opened on first use, addressed by id; persistent state
 * kept across eviction and across farm restarts; the descriptor window (idle cards hold no
 * descriptor, writes reopen the image); the memory bound; borrowed cards never evicted;
 * per-card profiles; several threads on shared and separate cards; kill -9 of a farm
 * process loses no acknowledged write.
 */
#include "tse_test.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "tse/farm.h"

static const uint8_t SEL_DIAG[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                                   0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
static const uint8_t INC[] = {0x80, 0x20, 0x00, 0x00, 0x04}; /* counter + 1, one store write */
static const uint8_t STATE[] = {0x80, 0x24, 0x00, 0x00, 0x10};

static char dir[512];

static void fresh_dir(void)
{
    const char *t = getenv("TSE_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/farm-%ld", t && *t ? t : "/tmp", (long)getpid());
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1100];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    mkdir(dir, 0755);
}

static struct tse_farm *farm(uint32_t max_cards, size_t max_resident, size_t max_files)
{
    struct tse_farm_options o;
    tse_farm_options_init(&o);
    o.dir = dir;
    o.max_cards = max_cards;
    o.max_resident = max_resident;
    o.max_open_files = max_files;
    struct tse_farm *f = NULL;
    char err[256] = "";
    int rc = tse_farm_init(&f, &o, err, sizeof(err));
    if (rc)
        fail_msg("tse_farm_init: %s %s", tse_strerror(rc), err);
    return f;
}

static unsigned sw_of(const uint8_t *r, size_t n)
{
    return n >= 2 ? (unsigned)r[n - 2] << 8 | r[n - 1] : 0;
}

/* Power on contact, select the diagnostic applet. */
static void start(struct tse_farm *f, uint32_t id)
{
    uint8_t r[300];
    size_t n;
    assert_int_equal(tse_farm_power_on(f, id, TSE_IF_CONTACT, r, sizeof(r), &n), 0);
    assert_true(n > 2);
    assert_int_equal(
        tse_farm_transmit(f, id, TSE_IF_CONTACT, SEL_DIAG, sizeof(SEL_DIAG), r, sizeof(r), &n), 0);
    assert_int_equal(sw_of(r, n), 0x9000);
}

static uint32_t incr(struct tse_farm *f, uint32_t id)
{
    uint8_t r[300];
    size_t n;
    assert_int_equal(tse_farm_transmit(f, id, TSE_IF_CONTACT, INC, sizeof(INC), r, sizeof(r), &n),
                     0);
    assert_int_equal(n, 6);
    assert_int_equal(sw_of(r, n), 0x9000);
    return (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
}

static uint32_t counter(struct tse_farm *f, uint32_t id)
{
    uint8_t r[300];
    size_t n;
    assert_int_equal(
        tse_farm_transmit(f, id, TSE_IF_CONTACT, STATE, sizeof(STATE), r, sizeof(r), &n), 0);
    assert_int_equal(n, 18);
    return (uint32_t)r[12] << 24 | (uint32_t)r[13] << 16 | (uint32_t)r[14] << 8 | r[15];
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_lazy_and_persistent(void **state)
{
    (void)state;
    fresh_dir();
    struct tse_farm *f = farm(1000, 0, 8);
    struct tse_farm_stats st;
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.resident, 0);
    /* nothing exists before first use */
    char p[700];
    snprintf(p, sizeof(p), "%s/000003e7.img", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    uint8_t r[300];
    size_t n;
    assert_int_equal(
        tse_farm_transmit(f, 999, TSE_IF_CONTACT, STATE, sizeof(STATE), r, sizeof(r), &n),
        TSE_ERR_POWERED_OFF);
    assert_int_equal(access(p, F_OK), 0); /* created on first use, named by id */
    start(f, 999);
    uint32_t c0 = counter(f, 999);
    assert_int_equal(incr(f, 999), c0 + 1);
    assert_int_equal(incr(f, 999), c0 + 2);
    /* ids outside the farm */
    assert_int_equal(tse_farm_open(f, 1000), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_farm_power_on(f, 4000000, TSE_IF_CONTACT, NULL, 0, NULL),
                     TSE_ERR_INVALID_ARG);
    /* eviction: the session goes (power), the persistent state stays */
    assert_int_equal(tse_farm_evict(f, 999), 0);
    assert_int_equal(tse_farm_evict(f, 999), 0); /* not in memory: nothing to do */
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.resident, 0);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(
        tse_farm_transmit(f, 999, TSE_IF_CONTACT, STATE, sizeof(STATE), r, sizeof(r), &n),
        TSE_ERR_POWERED_OFF);
    start(f, 999);
    assert_int_equal(counter(f, 999), c0 + 2);
    /* another card is another card */
    start(f, 7);
    assert_int_equal(counter(f, 7), c0);
    tse_farm_free(f);
    /* a farm restarted on the same directory finds its cards */
    f = farm(1000, 0, 8);
    start(f, 999);
    assert_int_equal(counter(f, 999), c0 + 2);
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.created, 0);
    tse_farm_free(f);
}

static void test_descriptor_window(void **state)
{
    (void)state;
    fresh_dir();
    struct tse_farm *f = farm(200, 0, 4);
    int base = open_fds();
    for (uint32_t id = 0; id < 60; id++) {
        start(f, id);
        incr(f, id); /* a write: the card opens its image */
        assert_true(open_fds() <= base + 4);
    }
    struct tse_farm_stats st;
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.resident, 60);
    assert_true(st.open_files <= 4);
    /* idle cards write again (their image is reopened) and keep counting */
    for (uint32_t id = 0; id < 60; id++) {
        uint32_t before = counter(f, id);
        assert_int_equal(incr(f, id), before + 1);
        assert_true(open_fds() <= base + 4);
    }
    tse_farm_free(f);
    assert_int_equal(open_fds(), base);
}

static void test_memory_bound(void **state)
{
    (void)state;
    fresh_dir();
    struct tse_farm *f = farm(100, 10, 4);
    for (int round = 0; round < 3; round++)
        for (uint32_t id = 0; id < 30; id++) {
            start(f, id);
            incr(f, id);
            struct tse_farm_stats st;
            assert_int_equal(tse_farm_stats(f, &st), 0);
            assert_true(st.resident <= 10);
        }
    for (uint32_t id = 0; id < 30; id++) {
        start(f, id);
        uint32_t c = counter(f, id);
        assert_int_equal(incr(f, id), c + 1);
    }
    /* a borrowed card is never evicted; with every slot borrowed, a new card is refused */
    struct tse_card *held[10];
    for (uint32_t id = 0; id < 10; id++)
        assert_int_equal(tse_farm_acquire(f, id, &held[id]), 0);
    assert_int_equal(tse_card_power_on(held[3], TSE_IF_CONTACT, NULL, 0, NULL), 0);
    assert_int_equal(tse_farm_evict(f, 3), TSE_ERR_STATE);
    assert_int_equal(tse_farm_evict_idle(f, 0), 0);
    assert_int_equal(tse_farm_open(f, 50), TSE_ERR_STATE);
    assert_true(tse_card_is_powered(held[3], TSE_IF_CONTACT));
    for (uint32_t id = 0; id < 10; id++)
        tse_farm_release(f, id);
    assert_int_equal(tse_farm_open(f, 50), 0);
    assert_int_equal(tse_farm_evict(f, 3), 0);
    /* idle eviction by age: nothing is an hour old, everything is at least 0 ms old */
    assert_int_equal(tse_farm_evict_idle(f, 3600u * 1000u), 0);
    assert_int_equal(tse_farm_evict_idle(f, 0), 9);
    struct tse_farm_stats st;
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.resident, 0);
    tse_farm_free(f);
}

static int uid_profile(void *user, uint32_t id, char *buf, size_t cap)
{
    (void)user;
    if (id == 13)
        return TSE_ERR_DENIED;
    return snprintf(buf, cap, "[card]\nname = farm card %u\n\n[contactless]\nuid = 08%06X\n",
                    (unsigned)id, (unsigned)id);
}

static void test_per_card_profiles(void **state)
{
    (void)state;
    fresh_dir();
    struct tse_farm_options o;
    tse_farm_options_init(&o);
    o.dir = dir;
    o.max_cards = 100;
    o.profile_for = uid_profile;
    struct tse_farm *f;
    assert_int_equal(tse_farm_init(&f, &o, NULL, 0), 0);
    for (uint32_t id = 20; id < 23; id++) {
        struct tse_card *c;
        assert_int_equal(tse_farm_acquire(f, id, &c), 0);
        struct tse_cl_params cl;
        assert_int_equal(tse_card_cl_params(c, &cl), 0);
        assert_int_equal(cl.uid_len, 4);
        assert_int_equal(cl.uid[3], id);
        tse_farm_release(f, id);
    }
    assert_int_equal(tse_farm_open(f, 13), TSE_ERR_DENIED);
    assert_int_equal(tse_farm_create(f, 14), 0);
    struct tse_farm_stats st;
    assert_int_equal(tse_farm_stats(f, &st), 0);
    assert_int_equal(st.created, 4);
    assert_int_equal(st.resident, 3);
    tse_farm_free(f);
    /* a bad profile is refused at init in template mode */
    o.profile_for = NULL;
    o.profile_text = "[card]\nno_such_key = 1\n";
    o.profile_len = strlen(o.profile_text);
    char err[256] = "";
    assert_int_equal(tse_farm_init(&f, &o, err, sizeof(err)), TSE_ERR_PROFILE);
    assert_true(strstr(err, "no_such_key") != NULL);
    o.dir = NULL;
    assert_int_equal(tse_farm_init(&f, &o, NULL, 0), TSE_ERR_INVALID_ARG);
}

/* ---- threads -------------------------------------------------------------------------------- */

#define T_THREADS 4
#define T_CARDS   6
#define T_ROUNDS  300

/* The farm serialises single calls on a card; a session of several calls (power, select,
 * command) is the caller's to serialise, as a back end does per card. */
static pthread_mutex_t session[T_CARDS] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                           PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                           PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};

struct worker {
    struct tse_farm *f;
    unsigned seed;
    unsigned done[T_CARDS];
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint8_t r[300];
    size_t n;
    for (int i = 0; i < T_ROUNDS; i++) {
        uint32_t id = (uint32_t)(rand_r(&w->seed) % T_CARDS);
        struct tse_card *c;
        pthread_mutex_lock(&session[id]);
        if (tse_farm_acquire(w->f, id, &c) != 0) {
            pthread_mutex_unlock(&session[id]);
            w->failures++;
            continue;
        }
        if (tse_card_power_on(c, TSE_IF_CONTACT, NULL, 0, &n) != 0 ||
            tse_card_transmit(c, TSE_IF_CONTACT, SEL_DIAG, sizeof(SEL_DIAG), r, sizeof(r), &n) !=
                0 ||
            tse_card_transmit(c, TSE_IF_CONTACT, INC, sizeof(INC), r, sizeof(r), &n) != 0 ||
            sw_of(r, n) != 0x9000)
            w->failures++;
        else
            w->done[id]++;
        tse_farm_release(w->f, id);
        pthread_mutex_unlock(&session[id]);
        if (i % 50 == 0)
            tse_farm_evict_idle(w->f, 0);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    fresh_dir();
    /* fewer resident slots and descriptors than cards: evictions and reopening under load */
    struct tse_farm *f = farm(T_CARDS, T_THREADS, 2);
    uint32_t before[T_CARDS];
    for (uint32_t id = 0; id < T_CARDS; id++) {
        start(f, id);
        before[id] = counter(f, id);
        assert_int_equal(tse_farm_evict(f, id), 0);
    }
    pthread_t th[T_THREADS];
    struct worker w[T_THREADS];
    for (int i = 0; i < T_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = f;
        w[i].seed = (unsigned)(i * 7919 + 1);
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    unsigned done[T_CARDS] = {0};
    for (int i = 0; i < T_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        for (int k = 0; k < T_CARDS; k++)
            done[k] += w[i].done[k];
    }
    for (uint32_t id = 0; id < T_CARDS; id++) {
        start(f, id);
        assert_int_equal(counter(f, id), before[id] + done[id]);
    }
    tse_farm_free(f);
}

/* A farm process writing through the descriptor window is killed with SIGKILL; every
 * increment it acknowledged is in the images, and at most the one in flight more. */
static void test_kill9(void **state)
{
    (void)state;
    fresh_dir();
    enum { CARDS = 12 };
    struct tse_farm *f = farm(CARDS, 0, 3);
    uint32_t base[CARDS];
    for (uint32_t id = 0; id < CARDS; id++) {
        start(f, id);
        base[id] = counter(f, id);
    }
    tse_farm_free(f);
    srand((unsigned)time(NULL));
    unsigned long total = 0;
    for (int round = 0; round < 6; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            struct tse_farm *cf = farm(CARDS, 5, 3);
            uint8_t r[64];
            size_t n;
            for (uint32_t id = 0; id < CARDS; id++)
                if (tse_farm_power_on(cf, id, TSE_IF_CONTACT, NULL, 0, NULL) != 0 ||
                    tse_farm_transmit(cf, id, TSE_IF_CONTACT, SEL_DIAG, sizeof(SEL_DIAG), r,
                                      sizeof(r), &n) != 0)
                    _exit(3);
            for (uint32_t i = 0;; i++) {
                uint32_t id = i % CARDS;
                if (tse_farm_power_on(cf, id, TSE_IF_CONTACT, NULL, 0, NULL) != 0 ||
                    tse_farm_transmit(cf, id, TSE_IF_CONTACT, SEL_DIAG, sizeof(SEL_DIAG), r,
                                      sizeof(r), &n) != 0 ||
                    tse_farm_transmit(cf, id, TSE_IF_CONTACT, INC, sizeof(INC), r, sizeof(r), &n) !=
                        0 ||
                    n != 6)
                    _exit(4);
                uint8_t ack = (uint8_t)id; /* acknowledged: report it */
                if (write(p[1], &ack, 1) != 1)
                    _exit(5);
            }
        }
        close(p[1]);
        struct timespec ts = {0, (long)(5 + rand() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        unsigned acked[CARDS] = {0};
        uint8_t b;
        while (read(p[0], &b, 1) == 1) {
            acked[b]++;
            total++;
        }
        close(p[0]);
        f = farm(CARDS, 0, 3);
        for (uint32_t id = 0; id < CARDS; id++) {
            start(f, id);
            uint32_t now = counter(f, id);
            assert_true(now >= base[id] + acked[id]);
            assert_true(now <= base[id] + acked[id] + 1);
            base[id] = now;
        }
        tse_farm_free(f);
    }
    assert_true(total > 0);
    print_message("farm kill -9: 6 rounds, %lu acknowledged increments, none lost\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_and_persistent),
        cmocka_unit_test(test_descriptor_window),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_per_card_profiles),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_kill9),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fresh_dir();
    rmdir(dir);
    return rc;
}
