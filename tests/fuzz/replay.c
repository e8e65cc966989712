/*
 * replay: the main of the fuzz targets' replay binaries, built without
 * libFuzzer so that `make test` (AddressSanitizer and UBSan) runs every
 * seed and every crash ever found through its target.
 *
 * FUZZ_DIR and FUZZ_NAME are set by the build (mk/security.mk). Each file
 * of FUZZ_DIR/corpus/FUZZ_NAME and FUZZ_DIR/crashes/FUZZ_NAME, and each
 * file named on the command line, is one test. A sanitizer report aborts
 * the process, which tests/run.sh counts as a failure; a file that cannot
 * be read is a failure here. The seed corpus counts as one test, each
 * saved crash (a regression case) and each named file as one. Prints
 * `RESULT passed=N failed=M` as tests/harness.c does. Single-threaded.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_passed, replay_failed;

/* Feeds one file to the target; false when it cannot be read. */
static bool replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        printf("FAIL %s: cannot read it\n", path);
        if (f) fclose(f);
        return false;
    }
    size_t n = (size_t)st.st_size;
    /* An exact-size heap copy, so ASan sees any read past the end. */
    uint8_t *data = malloc(n ? n : 1);
    if (!data || fread(data, 1, n, f) != n) {
        printf("FAIL %s: short read\n", path);
        free(data);
        fclose(f);
        return false;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return true;
}

/* Replays every regular file of dir; returns how many, or -1 when dir is
 * absent. Counts each file as a test when `each`, else adds unreadable
 * ones to *bad. */
static int replay_dir(const char *dir, bool each, int *bad) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        bool ok = replay_file(path);
        if (each) {
            if (ok) {
                printf("ok   %s\n", path);
                replay_passed++;
            } else {
                replay_failed++;
            }
        } else if (!ok) {
            (*bad)++;
        }
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    char dir[4096];
    for (int i = 1; i < argc; i++) {
        if (replay_file(argv[i]))
            replay_passed++;
        else
            replay_failed++;
    }
    if (argc == 1) {
        snprintf(dir, sizeof dir, "%s/corpus/%s", FUZZ_DIR, FUZZ_NAME);
        int bad = 0;
        int seeds = replay_dir(dir, false, &bad);
        if (seeds <= 0 || bad) {
            printf("FAIL %s: %s\n", dir, seeds <= 0 ? "no seed corpus" : "unreadable seeds");
            replay_failed++;
        } else {
            printf("ok   %s: %d seeds\n", FUZZ_NAME, seeds);
            replay_passed++;
        }
        snprintf(dir, sizeof dir, "%s/crashes/%s", FUZZ_DIR, FUZZ_NAME);
        replay_dir(dir, true, &bad);
    }
    printf("RESULT passed=%d failed=%d\n", replay_passed, replay_failed);
    return replay_failed ? 1 : 0;
}
