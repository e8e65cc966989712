/*
 * store_sqlite_vfs: SQLite's default VFS with one change, for the SQLite
 * backend's connections: the frames a commit appends to the WAL go to the
 * file in one write instead of two per page.
 *
 * SQLite writes each WAL frame as two pwrite calls (its 24-byte header,
 * then the page), so a commit that touches 30 pages costs 60 system calls
 * before its fsync. Here a WAL file that a connection has switched to
 * "gathering" (sq_vfs_gather) keeps appends in a buffer and writes them at
 * once when anything else happens to the file: the commit's xSync, a read,
 * a size query, a truncate, a write elsewhere, a file control, a close, or
 * a full buffer.
 *
 * Why it is safe. SQLite publishes frames to other connections through the
 * wal-index in shared memory, after writing them. With synchronous=FULL a
 * commit syncs the WAL before it publishes, and the sync writes the buffer
 * first, so no reader is told of a frame that is not in the file, and a
 * failed write fails the commit as it did before. A connection gathers only
 * while every commit of it syncs: the store switches gathering off for its
 * transactions with synchronous=NORMAL (the relaxed store, retention). As a
 * second guard the database file's shared-memory barrier and locks write a
 * pending buffer first: SQLite takes them on its way to publishing.
 *
 * Registering it is also where the backend sets SQLite up once for the
 * process (wv_init).
 *
 * A relaxed store (store_options.relaxed) "defers" its WAL's syncs
 * (sq_vfs_defer): a commit's sync writes the gathered frames and returns
 * without flushing them, which is what synchronous=NORMAL does to a commit
 * (WAL mode keeps that consistent through a crash) but with the frames
 * still written in one call and before they are published. The store turns
 * deferring off for its checkpoints, whose sync of the WAL before the
 * database file is written must be real.
 *
 * A second one, SQ_VFS_EXCL_NAME, does the same over SQLite's "unix-excl"
 * (serve --sqlite-exclusive): the process takes the database file for
 * itself at its first lock, and its wal-index lives in heap memory, so the
 * locks of its transactions are its own and take no system call (about 6
 * fcntl a commit and 2 a read otherwise). No other process can open the
 * database while it runs (docs/storage.md, "SQLite, exclusive").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "store_sqlite_int.h"

/* The file control that switches gathering on or off (int 1 or 0). */
#define WV_FCNTL_GATHER 0x7467 /* "tg"; SQLite's own opcodes stay below 100 */
#define WV_FCNTL_DEFER  0x7468 /* int 1 or 0: a database file's WAL syncs only write */
/* A buffer larger than this is written before the next append. */
#define WV_BUF_MAX (1u << 20)
/* The unix VFS writes at most this much in one call (it masks the length
 * with 0x1ffff), so a buffer goes in pieces of this size. */
#define WV_WRITE_MAX 0x1ffff

struct wv_file {
    sqlite3_file base;
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
    struct wv_file *db;  /* a WAL's database file */
    struct wv_file *wal; /* a database file's open WAL */
    bool gather;         /* a database file's setting, for its WAL */
    bool defer;          /* a database file's: its WAL's syncs write and do not flush */
    unsigned char *buf;  /* a WAL's appends not yet written (WV_BUF_MAX bytes) */
    size_t len;
    sqlite3_int64 at; /* file offset of buf[0] */
};

static sqlite3_vfs *wv_real, *wv_real_excl;
static sqlite3_vfs wv_vfs, wv_vfs_excl;
static sqlite3_io_methods wv_methods;
static pthread_once_t wv_once = PTHREAD_ONCE_INIT;
static int wv_registered = SQLITE_ERROR, wv_registered_excl = SQLITE_ERROR;
static _Atomic uint64_t wv_gathered, wv_written, wv_deferred; /* sq_vfs_counts */

static struct wv_file *wv(sqlite3_file *f) {
    return (struct wv_file *)f;
}

/* Writes what the WAL holds back. On an error the part not written stays
 * in the buffer, for the next flush: nothing SQLite was told is written is
 * dropped (it fails the transaction, and rewrites what it needs). */
static int wv_flush(struct wv_file *f) {
    size_t done = 0;
    int rc = SQLITE_OK;
    while (done < f->len) {
        size_t n = f->len - done < WV_WRITE_MAX ? f->len - done : WV_WRITE_MAX;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n, f->at + (sqlite3_int64)done);
        if (rc != SQLITE_OK) break;
        atomic_fetch_add_explicit(&wv_written, 1, memory_order_relaxed);
        done += n;
    }
    if (done && done < f->len) memmove(f->buf, f->buf + done, f->len - done);
    f->len -= done;
    f->at += (sqlite3_int64)done;
    return rc;
}

static bool wv_gathering(const struct wv_file *f) {
    return f->db && f->db->gather;
}

static int wv_close(sqlite3_file *file) {
    struct wv_file *f = wv(file);
    int rc = wv_flush(f);
    if (f->db && f->db->wal == f) f->db->wal = NULL;
    if (f->wal) f->wal->db = NULL;
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int wv_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off) {
    struct wv_file *f = wv(file);
    int rc = wv_flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xRead(f->real, out, n, off);
}

static int wv_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off) {
    struct wv_file *f = wv(file);
    if (!wv_gathering(f) || n <= 0 || n > WV_WRITE_MAX) {
        int rc = wv_flush(f);
        if (rc != SQLITE_OK) return rc;
        return f->real->pMethods->xWrite(f->real, data, n, off);
    }
    size_t un = (size_t)n;
    if (f->len && off >= f->at && off + n <= f->at + (sqlite3_int64)f->len) {
        /* A frame of this commit written again (SQLite recomputes checksums). */
        memcpy(f->buf + (off - f->at), data, un);
        atomic_fetch_add_explicit(&wv_gathered, 1, memory_order_relaxed);
        return SQLITE_OK;
    }
    if (f->len && (off != f->at + (sqlite3_int64)f->len || f->len + un > WV_BUF_MAX)) {
        int rc = wv_flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    if (!f->len) f->at = off;
    if (!f->buf) {
        /* Allocated once, whole: a block this size is mapped on its own, and
         * only the pages used become resident. */
        f->buf = xmalloc(WV_BUF_MAX);
    }
    memcpy(f->buf + f->len, data, un);
    f->len += un;
    atomic_fetch_add_explicit(&wv_gathered, 1, memory_order_relaxed);
    return SQLITE_OK;
}

static int wv_truncate(sqlite3_file *file, sqlite3_int64 size) {
    struct wv_file *f = wv(file);
    int rc = wv_flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int wv_sync(sqlite3_file *file, int flags) {
    struct wv_file *f = wv(file);
    int rc = wv_flush(f);
    if (rc != SQLITE_OK) return rc;
    if (f->db && f->db->defer) {
        atomic_fetch_add_explicit(&wv_deferred, 1, memory_order_relaxed);
        return SQLITE_OK;
    }
    return f->real->pMethods->xSync(f->real, flags);
}

static int wv_file_size(sqlite3_file *file, sqlite3_int64 *size) {
    struct wv_file *f = wv(file);
    int rc = wv_flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int wv_lock(sqlite3_file *file, int level) {
    return wv(file)->real->pMethods->xLock(wv(file)->real, level);
}

static int wv_unlock(sqlite3_file *file, int level) {
    return wv(file)->real->pMethods->xUnlock(wv(file)->real, level);
}

static int wv_check_reserved(sqlite3_file *file, int *out) {
    return wv(file)->real->pMethods->xCheckReservedLock(wv(file)->real, out);
}

static int wv_file_control(sqlite3_file *file, int op, void *arg) {
    struct wv_file *f = wv(file);
    if (op == WV_FCNTL_GATHER) {
        /* Only on a device with power-safe overwrite (SQLite's default,
         * which psow=0 in a URI turns off): without it a commit pads the
         * WAL to a sector boundary, and part of that padding is written
         * after the sync, where a gathered write would wait for the
         * guard below, past the point SQLite reports the commit done. */
        int dc = f->real->pMethods->xDeviceCharacteristics(f->real);
        f->gather = *(int *)arg != 0 && (dc & SQLITE_IOCAP_POWERSAFE_OVERWRITE);
        return f->wal ? wv_flush(f->wal) : SQLITE_OK;
    }
    if (op == WV_FCNTL_DEFER) {
        f->defer = *(int *)arg != 0;
        return SQLITE_OK;
    }
    int rc = wv_flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wv_sector_size(sqlite3_file *file) {
    return wv(file)->real->pMethods->xSectorSize(wv(file)->real);
}

static int wv_device_characteristics(sqlite3_file *file) {
    return wv(file)->real->pMethods->xDeviceCharacteristics(wv(file)->real);
}

static int wv_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out) {
    return wv(file)->real->pMethods->xShmMap(wv(file)->real, region, size, extend, out);
}

/* The second guard: a database file's WAL is written before SQLite takes a
 * shared-memory lock or barrier on the way to publishing frames. A lock
 * fails with the write's error; a barrier cannot fail, and its bytes stay
 * buffered for the next flush. */
static int wv_flush_wal(struct wv_file *f) {
    int rc = SQLITE_OK;
    if (f->wal && f->wal->len && (rc = wv_flush(f->wal)) != SQLITE_OK)
        fprintf(stderr, "taskmill: sqlite: writing the WAL before publishing it failed\n");
    return rc;
}

static int wv_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
    int rc = wv_flush_wal(wv(file));
    if (rc != SQLITE_OK) return rc;
    return wv(file)->real->pMethods->xShmLock(wv(file)->real, offset, n, flags);
}

static void wv_shm_barrier(sqlite3_file *file) {
    (void)wv_flush_wal(wv(file));
    wv(file)->real->pMethods->xShmBarrier(wv(file)->real);
}

static int wv_shm_unmap(sqlite3_file *file, int delete_flag) {
    return wv(file)->real->pMethods->xShmUnmap(wv(file)->real, delete_flag);
}

static int wv_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out) {
    return wv(file)->real->pMethods->xFetch(wv(file)->real, off, n, out);
}

static int wv_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
    return wv(file)->real->pMethods->xUnfetch(wv(file)->real, off, p);
}

static int wv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                   int *out_flags) {
    sqlite3_vfs *real = vfs == &wv_vfs_excl ? wv_real_excl : wv_real;
    struct wv_file *f = wv(file);
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = real->xOpen(real, name, f->real, flags, out_flags);
    if (!f->real->pMethods) return rc;
    f->base.pMethods = &wv_methods;
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && name) {
        struct wv_file *db = wv(sqlite3_database_file_object(name));
        if (db && db->base.pMethods == &wv_methods) {
            f->db = db;
            db->wal = f;
        }
    }
    return rc;
}

/* The backend's one-time setup of SQLite, before its first use. */
static void wv_init(void) {
    /* No memory statistics (nothing reads them): they take a process-wide
     * mutex on every allocation SQLite makes, 3.4% of the server's CPU in
     * the batched lifecycle. SQLITE_MISUSE if SQLite is already in use. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* Only over "unix", whose files all have version 3 methods (shared
     * memory, memory maps), as the methods here claim. */
    wv_real = sqlite3_vfs_find(NULL);
    if (!wv_real || strcmp(wv_real->zName, "unix") != 0) return;
    const sqlite3_io_methods m = {
        .iVersion = 3,
        .xClose = wv_close,
        .xRead = wv_read,
        .xWrite = wv_write,
        .xTruncate = wv_truncate,
        .xSync = wv_sync,
        .xFileSize = wv_file_size,
        .xLock = wv_lock,
        .xUnlock = wv_unlock,
        .xCheckReservedLock = wv_check_reserved,
        .xFileControl = wv_file_control,
        .xSectorSize = wv_sector_size,
        .xDeviceCharacteristics = wv_device_characteristics,
        .xShmMap = wv_shm_map,
        .xShmLock = wv_shm_lock,
        .xShmBarrier = wv_shm_barrier,
        .xShmUnmap = wv_shm_unmap,
        .xFetch = wv_fetch,
        .xUnfetch = wv_unfetch,
    };
    wv_methods = m;
    /* Everything but opening a file is the default VFS's own (its methods
     * read only pAppData and mxPathname, copied with it). */
    wv_vfs = *wv_real;
    wv_vfs.zName = SQ_VFS_NAME;
    wv_vfs.szOsFile = (int)sizeof(struct wv_file) + wv_real->szOsFile;
    wv_vfs.xOpen = wv_open;
    wv_vfs.pNext = NULL;
    wv_registered = sqlite3_vfs_register(&wv_vfs, 0);
    /* The same over "unix-excl" (its files have unix's methods). */
    wv_real_excl = sqlite3_vfs_find("unix-excl");
    if (!wv_real_excl || wv_real_excl->szOsFile != wv_real->szOsFile) return;
    wv_vfs_excl = *wv_real_excl;
    wv_vfs_excl.zName = SQ_VFS_EXCL_NAME;
    wv_vfs_excl.szOsFile = wv_vfs.szOsFile;
    wv_vfs_excl.xOpen = wv_open;
    wv_vfs_excl.pNext = NULL;
    wv_registered_excl = sqlite3_vfs_register(&wv_vfs_excl, 0);
}

const char *sq_vfs_name(bool exclusive) {
    pthread_once(&wv_once, wv_init);
    if (exclusive) return wv_registered_excl == SQLITE_OK ? SQ_VFS_EXCL_NAME : "unix-excl";
    return wv_registered == SQLITE_OK ? SQ_VFS_NAME : NULL;
}

void sq_vfs_gather(sqlite3 *db, bool on) {
    int v = on;
    sqlite3_file_control(db, "main", WV_FCNTL_GATHER, &v);
}

void sq_vfs_defer(sqlite3 *db, bool on) {
    int v = on;
    sqlite3_file_control(db, "main", WV_FCNTL_DEFER, &v);
}

void sq_vfs_counts(uint64_t *gathered, uint64_t *written) {
    *gathered = atomic_load_explicit(&wv_gathered, memory_order_relaxed);
    *written = atomic_load_explicit(&wv_written, memory_order_relaxed);
}

uint64_t sq_vfs_deferred(void) {
    return atomic_load_explicit(&wv_deferred, memory_order_relaxed);
}
