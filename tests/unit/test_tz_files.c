/*
 * common/tz and the zone files under it (TZDIR, set before the first
 * lookup of this process): a zone replaced by a changed file is freed
 * once its last holder gives it back, and stays valid until then.
 * Each change waits for the cache's 10 s recheck.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/common/tz.h"
#include "harness.h"

static char dir[256];

static bool copy_zone(const char *from_zone, const char *to) {
    char from[200];
    snprintf(from, sizeof from, "/usr/share/zoneinfo/%s", from_zone);
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[4096];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out)) ok = false;
    return ok;
}

/* Test/Swap becomes a copy of from_zone, by a rename as dpkg does. */
static bool swap_to(const char *from_zone) {
    char tmp[400], to[400];
    snprintf(tmp, sizeof tmp, "%s/Test/.Swap.new", dir);
    snprintf(to, sizeof to, "%s/Test/Swap", dir);
    return copy_zone(from_zone, tmp) && rename(tmp, to) == 0;
}

/* Looks Test/Swap up and gives it back at once: whether its offset is now `off`. */
static bool swap_offset_is(int32_t off) {
    const struct tz *z = NULL;
    struct tm_error e;
    err_clear(&e);
    if (tz_get("Test/Swap", &z, &e)) return false;
    bool is = tz_offset(z, 0, NULL) == off;
    tz_release(z);
    return is;
}

static void test_replaced_zone_freed_by_last_holder(void) {
    const struct tz *held = NULL;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(tz_get("Test/Swap", &held, &e), 0);
    if (!held) return;
    CHECK_INT(tz_offset(held, 0, NULL), 5 * 3600);
    CHECK(swap_to("Etc/GMT+3"));
    WAIT_UNTIL(swap_offset_is(-3 * 3600), 30000, "Test/Swap to be read again");
    /* Replaced, and still valid for the one holding it. */
    CHECK_INT(tz_retired_count(), 1);
    CHECK_INT(tz_offset(held, 0, NULL), 5 * 3600);
    tz_release(held);
    CHECK_INT(tz_retired_count(), 0);
    /* One nobody holds when it is replaced goes at once. */
    CHECK(swap_to("Etc/GMT-5"));
    WAIT_UNTIL(swap_offset_is(5 * 3600), 30000, "Test/Swap to be read again");
    CHECK_INT(tz_retired_count(), 0);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-tz-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char sub[300], path[400];
    bool made = mkdtemp(dir) != NULL;
    snprintf(sub, sizeof sub, "%s/Test", dir);
    snprintf(path, sizeof path, "%s/Test/Swap", dir);
    made = made && mkdir(sub, 0755) == 0 && copy_zone("Etc/GMT-5", path);
    if (!made) {
        fprintf(stderr, "cannot make a zone directory in %s\n", dir);
        return 1;
    }
    setenv("TZDIR", dir, 1);
    static const struct th_test tests[] = {
        {"a zone replaced by a changed file is freed by its last holder's release",
         test_replaced_zone_freed_by_last_holder},
        {NULL, NULL},
    };
    int rc = th_main(tests, argc, argv);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
    tz_cache_clear();
    return rc;
}
