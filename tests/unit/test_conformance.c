/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data-driven conformance runner: every .tse script in tests/conformance runs on a fresh
 * card (default profile) through the same engine as apdu-shell; any failed expectation
 * fails the case. ctest also runs each script through the apdu-shell binary.
 */
#include "tse_test.h"

#include <dirent.h>

#include "shell/script.h"

/* A script may name its card profile in a comment line "# tse-profile: PATH" (relative to
 * the script); the text of that profile is returned (malloc'd), else NULL. */
static char *script_profile(const char *script, size_t *len)
{
    FILE *f = fopen(script, "r");
    char line[512], path[1024];
    char *text = NULL;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "# tse-profile: ", 15) != 0)
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        const char *slash = strrchr(script, '/');
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - script), script, line + 15);
        FILE *p = fopen(path, "r");
        if (!p)
            fail_msg("%s: profile %s not found", script, path);
        text = calloc(1, 65536);
        *len = fread(text, 1, 65535, p);
        fclose(p);
        break;
    }
    fclose(f);
    return text;
}

static void run_script(void **state)
{
    const char *script = *state;
    char img[512], err[256];
    tt_path(img, sizeof(img), "conf");
    struct tse_card *c;
    size_t plen = 0;
    char *profile = script_profile(script, &plen);
    if (tse_card_create(&c, img, profile, plen, script, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", script, err);
    free(profile);
    struct tse_script_opts o = {.auto_power = true};
    o.out = fopen("/dev/null", "w");
    struct tse_script *s = tse_script_new(&tse_target_card_ops, c, &o);
    assert_non_null(s);
    int failed = tse_script_run_file(s, script);
    struct tse_script_stats st;
    tse_script_stats(s, &st);
    print_message("%s: %u exchanges, %u expectations, %d failed\n", script, st.exchanges,
                  st.expectations, failed);
    tse_script_free(s);
    fclose(o.out);
    tse_card_free(c);
    unlink(img);
    assert_int_equal(failed, 0);
    assert_true(st.expectations > 0);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *data = getenv("TSE_TEST_DATA");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/conformance", data ? data : "tests");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "test_conformance: cannot open %s\n", dir);
        return 1;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".tse")) {
            names[n] = malloc(strlen(dir) + l + 2);
            sprintf(names[n++], "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    struct CMUnitTest tests[256];
    for (size_t i = 0; i < n; i++)
        tests[i] =
            (struct CMUnitTest){strrchr(names[i], '/') + 1, run_script, NULL, NULL, names[i]};
    if (n == 0) {
        fprintf(stderr, "test_conformance: no scripts in %s\n", dir);
        return 1;
    }
    int rc = _cmocka_run_group_tests("conformance", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}
