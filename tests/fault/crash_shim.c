/* crash_shim: an LD_PRELOAD library that records, for every change a
 * process makes under one directory, what a power cut could still undo,
 * so that a test can "crash" the process and lose exactly the changes no
 * fsync made durable (issue 11; the substitute for dm-log-writes and
 * dm-flakey's drop_writes on a kernel without device-mapper).
 *
 * Under CAIRN_CRASH_DIR every change is appended, before it happens, to
 * the undo journal CAIRN_CRASH_LOG (tests/fault/crash_replay.py reads it):
 *   W  a write: the bytes it overwrites and the file's size before it
 *   T  a size change (ftruncate, posix_fallocate, open with O_TRUNC): the
 *      old size and the bytes a shrink cuts off
 *   C  a file created         R  a rename (a replaced target is kept)
 *   U  an unlink (the file is kept: a hard link in CAIRN_CRASH_SAVE)
 * and every barrier that makes earlier changes durable:
 *   S  fsync/fdatasync of a file (its data and size), and the completion
 *      of a write that is durable when it completes (O_SYNC/O_DSYNC file,
 *      or RWF_DSYNC: libraft's segment writes)
 *   D  fsync of a directory (the names in it)
 *   A  sync/syncfs (everything)
 * The test kills the process with SIGKILL (the page cache
 * still holds everything), then crash_replay.py undoes, newest first,
 * every change no barrier covered: the files are then as a power cut at
 * that instant could have left them. A file is known by its inode, so a
 * write before a rename is undone in the renamed file.
 *
 * libraft writes its segments with io_submit through syscall(2); libuv
 * writes with pwrite64/pwritev/writev/write; all are covered, as are the
 * raw syscall(2) forms of pwritev, fsync and fdatasync. Calls glibc makes
 * internally (stdio) are not seen: cairn writes its own files with
 * write(2).
 *
 * Build: cc -shared -fPIC -O2 -o crash_shim.so crash_shim.c -ldl -lpthread */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x00000004
#endif

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static unsigned long saved_seq;

static ssize_t real_write(int fd, const void *p, size_t n)
{
    return REAL(write, ssize_t(*)(int, const void *, size_t))(fd, p, n);
}

static ssize_t real_pread(int fd, void *p, size_t n, off_t off)
{
    return REAL(pread64, ssize_t(*)(int, void *, size_t, off_t))(fd, p, n, off);
}

static const char *crash_dir(void)
{
    const char *d = getenv("CAIRN_CRASH_DIR");
    return d && *d ? d : NULL;
}

static int path_under(const char *path)
{
    const char *dir = crash_dir();
    if (!dir || !path) return 0;
    size_t len = strlen(dir);
    return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* The absolute path of fd, if it lies under the directory. */
static int fd_path(int fd, char *out, size_t outlen)
{
    if (fd < 0 || !crash_dir()) return 0;
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, outlen - 1);
    if (n <= 0) return 0;
    out[n] = '\0';
    return path_under(out);
}

/* An absolute form of a path given to a call (relative to dirfd). */
static int abs_path(int dirfd, const char *path, char *out, size_t outlen)
{
    if (!crash_dir() || !path) return 0;
    if (path[0] == '/') {
        snprintf(out, outlen, "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof(base))) return 0;
        } else {
            char link[64];
            snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof(base) - 1);
            if (n <= 0) return 0;
            base[n] = '\0';
        }
        snprintf(out, outlen, "%s/%s", base, path);
    }
    return path_under(out);
}

static void parent_of(const char *path, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else
        snprintf(out, outlen, "/");
}

static unsigned long long ino_of_path(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* Append one record: a text line, then len raw bytes. One writev: the
 * journal is opened O_APPEND, so a forked child's records do not tear. */
static void journal(const char *line, const void *bytes, size_t len)
{
    const char *log = getenv("CAIRN_CRASH_LOG");
    if (!log) return;
    int fd = REAL(open64, int (*)(const char *, int, ...))(
        log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) abort(); /* a journal that misses a record would lie */
    struct iovec iov[2] = {{(void *)line, strlen(line)}, {(void *)bytes, len}};
    ssize_t want = (ssize_t)(iov[0].iov_len + len);
    if (REAL(writev, ssize_t(*)(int, const struct iovec *, int))(fd, iov, len ? 2 : 1) != want)
        abort();
    close(fd);
}

static int durable_on_completion(int fd)
{
    int fl = REAL(fcntl, int (*)(int, int, ...))(fd, F_GETFL);
    return fl >= 0 && (fl & (O_SYNC | O_DSYNC)) != 0;
}

/* Read what fd holds at [off, off+len) through a buffered descriptor of
 * its own (fd may be O_DIRECT or write-only, its file already unlinked). */
static int read_old(int fd, void *buf, size_t len, off_t off)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    int rfd = REAL(open64, int (*)(const char *, int, ...))(link, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) return -1;
    ssize_t got = real_pread(rfd, buf, len, off);
    close(rfd);
    return got == (ssize_t)len ? 0 : -1;
}

/* Before a write of len bytes at off on fd: journal what it overwrites.
 * Returns 2 for a write under the directory that is durable once it
 * completes (its completion then counts as an fdatasync: after_write),
 * 1 for one journaled, 0 for one elsewhere. */
static int before_write(int fd, off_t off, size_t len, int flags_dsync)
{
    char path[PATH_MAX];
    if (!fd_path(fd, path, sizeof(path))) return 0;
    int durable = flags_dsync || durable_on_completion(fd);
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    size_t keep = 0;
    if (off < st.st_size)
        keep = (size_t)(st.st_size - off) < len ? (size_t)(st.st_size - off) : len;
    char *old = keep ? malloc(keep) : NULL;
    if (keep && read_old(fd, old, keep, off) != 0) abort();
    char line[PATH_MAX + 128];
    snprintf(line, sizeof(line), "W\t%llu\t%lld\t%lld\t%zu\t%s\n", (unsigned long long)st.st_ino,
             (long long)st.st_size, (long long)off, keep, path);
    journal(line, old, keep);
    free(old);
    return durable ? 2 : 1;
}

static void on_sync(int fd);

static void after_write(int kind, int fd, ssize_t rv)
{
    if (kind == 2 && rv >= 0) on_sync(fd);
}

/* Before a change of fd's size to new_size. */
static void before_resize(int fd, off_t new_size)
{
    char path[PATH_MAX];
    if (!fd_path(fd, path, sizeof(path))) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == new_size) return;
    size_t cut = st.st_size > new_size ? (size_t)(st.st_size - new_size) : 0;
    char *old = cut ? malloc(cut) : NULL;
    if (cut && read_old(fd, old, cut, new_size) != 0) abort();
    char line[PATH_MAX + 128];
    snprintf(line, sizeof(line), "T\t%llu\t%lld\t%zu\t%s\n", (unsigned long long)st.st_ino,
             (long long)st.st_size, cut, path);
    journal(line, old, cut);
    free(old);
}

static void on_sync(int fd)
{
    char path[PATH_MAX];
    if (!fd_path(fd, path, sizeof(path))) return;
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    char line[64];
    snprintf(line, sizeof(line), "%c\t%llu\n", S_ISDIR(st.st_mode) ? 'D' : 'S',
             (unsigned long long)st.st_ino);
    journal(line, NULL, 0);
}

/* Keep a file that is about to be replaced or unlinked: a hard link in
 * CAIRN_CRASH_SAVE ("-" when there is nothing to keep). */
static void keep_copy(const char *path, char *saved, size_t savedlen)
{
    snprintf(saved, savedlen, "-");
    const char *dir = getenv("CAIRN_CRASH_SAVE");
    struct stat st;
    if (!dir || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return;
    char name[PATH_MAX];
    snprintf(name, sizeof(name), "%s/%d-%lu", dir, (int)getpid(), ++saved_seq);
    if (link(path, name) == 0) snprintf(saved, savedlen, "%s", name);
}

static void before_open(int dirfd, const char *path, int flags)
{
    char p[PATH_MAX];
    if (!(flags & (O_CREAT | O_TRUNC)) || !abs_path(dirfd, path, p, sizeof(p))) return;
    struct stat st;
    if (stat(p, &st) != 0) {
        if (!(flags & O_CREAT)) return;
        char dir[PATH_MAX], line[PATH_MAX * 2];
        parent_of(p, dir, sizeof(dir));
        snprintf(line, sizeof(line), "C\t%llu\t%s\n", ino_of_path(dir), p);
        journal(line, NULL, 0);
    } else if ((flags & O_TRUNC) && S_ISREG(st.st_mode) && st.st_size > 0) {
        int fd = REAL(open64, int (*)(const char *, int, ...))(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        /* journal the truncation as a resize of this file */
        size_t cut = (size_t)st.st_size;
        char *old = malloc(cut);
        if (real_pread(fd, old, cut, 0) != (ssize_t)cut) abort();
        close(fd);
        char line[PATH_MAX + 128];
        snprintf(line, sizeof(line), "T\t%llu\t%lld\t%zu\t%s\n", (unsigned long long)st.st_ino,
                 (long long)st.st_size, cut, p);
        journal(line, old, cut);
        free(old);
    }
}

/* ---- the calls ----------------------------------------------------------- */

#define LOCKED(expr)                                                                               \
    do {                                                                                           \
        pthread_mutex_lock(&lock);                                                                 \
        expr;                                                                                      \
        pthread_mutex_unlock(&lock);                                                               \
    } while (0)

static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd;
    LOCKED(before_open(dirfd, path, flags);
           fd = REAL(openat64, int (*)(int, const char *, int, ...))(dirfd, path, flags, mode));
    return fd;
}

int open(const char *path, int flags, ...)
{
    SHIM_OPEN_MODE(flags, mode);
    return open_common(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    SHIM_OPEN_MODE(flags, mode);
    return open_common(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    SHIM_OPEN_MODE(flags, mode);
    return open_common(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    SHIM_OPEN_MODE(flags, mode);
    return open_common(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

static off_t current_offset(int fd)
{
    int fl = REAL(fcntl, int (*)(int, int, ...))(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) == 0 ? st.st_size : 0;
    }
    return lseek(fd, 0, SEEK_CUR);
}

static size_t iov_len(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    return n;
}

ssize_t write(int fd, const void *p, size_t n)
{
    ssize_t rv;
    char path[PATH_MAX];
    if (!fd_path(fd, path, sizeof(path))) return real_write(fd, p, n); /* sockets, logs */
    LOCKED(int k = before_write(fd, current_offset(fd), n, 0); rv = real_write(fd, p, n);
           after_write(k, fd, rv));
    return rv;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    ssize_t rv;
    char path[PATH_MAX];
    if (!fd_path(fd, path, sizeof(path)))
        return REAL(writev, ssize_t(*)(int, const struct iovec *, int))(fd, iov, cnt);
    LOCKED(int k = before_write(fd, current_offset(fd), iov_len(iov, cnt), 0);
           rv = REAL(writev, ssize_t(*)(int, const struct iovec *, int))(fd, iov, cnt);
           after_write(k, fd, rv));
    return rv;
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    ssize_t rv;
    LOCKED(int k = before_write(fd, off, n, 0);
           rv = REAL(pwrite, ssize_t(*)(int, const void *, size_t, off_t))(fd, p, n, off);
           after_write(k, fd, rv));
    return rv;
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    ssize_t rv;
    LOCKED(int k = before_write(fd, off, n, 0);
           rv = REAL(pwrite64, ssize_t(*)(int, const void *, size_t, off_t))(fd, p, n, off);
           after_write(k, fd, rv));
    return rv;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t rv;
    LOCKED(int k = before_write(fd, off, iov_len(iov, cnt), 0);
           rv = REAL(pwritev, ssize_t(*)(int, const struct iovec *, int, off_t))(fd, iov, cnt, off);
           after_write(k, fd, rv));
    return rv;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t rv;
    LOCKED(
        int k = before_write(fd, off, iov_len(iov, cnt), 0);
        rv = REAL(pwritev64, ssize_t(*)(int, const struct iovec *, int, off_t))(fd, iov, cnt, off);
        after_write(k, fd, rv));
    return rv;
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    ssize_t rv;
    LOCKED(int k = before_write(fd, off == -1 ? current_offset(fd) : off, iov_len(iov, cnt),
                                flags & (RWF_DSYNC | RWF_SYNC));
           rv = REAL(pwritev2, ssize_t(*)(int, const struct iovec *, int, off_t, int))(fd, iov, cnt,
                                                                                       off, flags);
           after_write(k, fd, rv));
    return rv;
}

int ftruncate(int fd, off_t len)
{
    int rv;
    LOCKED(before_resize(fd, len); rv = REAL(ftruncate, int (*)(int, off_t))(fd, len));
    return rv;
}

int ftruncate64(int fd, off_t len)
{
    int rv;
    LOCKED(before_resize(fd, len); rv = REAL(ftruncate64, int (*)(int, off_t))(fd, len));
    return rv;
}

static void before_allocate(int fd, off_t off, off_t len)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && off + len > st.st_size) before_resize(fd, off + len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    int rv;
    LOCKED(before_allocate(fd, off, len);
           rv = REAL(posix_fallocate, int (*)(int, off_t, off_t))(fd, off, len));
    return rv;
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    int rv;
    LOCKED(before_allocate(fd, off, len);
           rv = REAL(posix_fallocate64, int (*)(int, off_t, off_t))(fd, off, len));
    return rv;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    int rv;
    LOCKED(if (mode == 0) before_allocate(fd, off, len);
           rv = REAL(fallocate, int (*)(int, int, off_t, off_t))(fd, mode, off, len));
    return rv;
}

int fsync(int fd)
{
    int rv;
    LOCKED(rv = REAL(fsync, int (*)(int))(fd); if (rv == 0) on_sync(fd));
    return rv;
}

int fdatasync(int fd)
{
    int rv;
    LOCKED(rv = REAL(fdatasync, int (*)(int))(fd); if (rv == 0) on_sync(fd));
    return rv;
}

void sync(void)
{
    LOCKED(REAL(sync, void (*)(void))(); if (crash_dir()) journal("A\n", NULL, 0));
}

int syncfs(int fd)
{
    int rv;
    LOCKED(rv = REAL(syncfs, int (*)(int))(fd);
           if (rv == 0 && crash_dir()) journal("A\n", NULL, 0));
    return rv;
}

static void before_rename(int olddir, const char *oldp, int newdir, const char *newp)
{
    char a[PATH_MAX], b[PATH_MAX];
    int ua = abs_path(olddir, oldp, a, sizeof(a)), ub = abs_path(newdir, newp, b, sizeof(b));
    if (!ua && !ub) return;
    char da[PATH_MAX], db[PATH_MAX], saved[PATH_MAX], line[PATH_MAX * 4];
    parent_of(a, da, sizeof(da));
    parent_of(b, db, sizeof(db));
    keep_copy(b, saved, sizeof(saved));
    snprintf(line, sizeof(line), "R\t%llu\t%llu\t%s\t%s\t%s\n", ino_of_path(da), ino_of_path(db), a,
             b, saved);
    journal(line, NULL, 0);
}

int rename(const char *oldp, const char *newp)
{
    int rv;
    LOCKED(before_rename(AT_FDCWD, oldp, AT_FDCWD, newp);
           rv = REAL(rename, int (*)(const char *, const char *))(oldp, newp));
    return rv;
}

int renameat(int olddir, const char *oldp, int newdir, const char *newp)
{
    int rv;
    LOCKED(before_rename(olddir, oldp, newdir, newp);
           rv = REAL(renameat, int (*)(int, const char *, int, const char *))(olddir, oldp, newdir,
                                                                              newp));
    return rv;
}

static void before_unlink(int dirfd, const char *path)
{
    char p[PATH_MAX];
    if (!abs_path(dirfd, path, p, sizeof(p))) return;
    char dir[PATH_MAX], saved[PATH_MAX], line[PATH_MAX * 3];
    keep_copy(p, saved, sizeof(saved));
    if (saved[0] == '-') return; /* not a regular file: not modelled */
    parent_of(p, dir, sizeof(dir));
    snprintf(line, sizeof(line), "U\t%llu\t%s\t%s\n", ino_of_path(dir), p, saved);
    journal(line, NULL, 0);
}

int unlink(const char *path)
{
    int rv;
    LOCKED(before_unlink(AT_FDCWD, path); rv = REAL(unlink, int (*)(const char *))(path));
    return rv;
}

int unlinkat(int dirfd, const char *path, int flags)
{
    int rv;
    LOCKED(if (!(flags & AT_REMOVEDIR)) before_unlink(dirfd, path);
           rv = REAL(unlinkat, int (*)(int, const char *, int))(dirfd, path, flags));
    return rv;
}

/* libraft submits its segment writes with io_submit, and libuv may call
 * pwritev, fsync and fdatasync through syscall(2) too. */
long syscall(long number, ...)
{
    SHIM_SYSCALL_ARGS(number);
    long (*real)(long, ...) = REAL(syscall, long (*)(long, ...));
    long rv;
    switch (number) {
    case SYS_io_submit: {
        /* journaled at submission; a durable one's S comes with its
         * completion (io_getevents, below) */
        struct iocb **cbs = (struct iocb **)a3;
        pthread_mutex_lock(&lock);
        for (long i = 0; i < a2; i++) {
            struct iocb *cb = cbs[i];
            int dsync = (cb->aio_rw_flags & (RWF_DSYNC | RWF_SYNC)) != 0;
            if (cb->aio_lio_opcode == IOCB_CMD_PWRITE)
                before_write((int)cb->aio_fildes, (off_t)cb->aio_offset, (size_t)cb->aio_nbytes,
                             dsync);
            else if (cb->aio_lio_opcode == IOCB_CMD_PWRITEV)
                before_write(
                    (int)cb->aio_fildes, (off_t)cb->aio_offset,
                    iov_len((const struct iovec *)(uintptr_t)cb->aio_buf, (int)cb->aio_nbytes),
                    dsync);
        }
        rv = real(number, a1, a2, a3, a4, a5, a6);
        pthread_mutex_unlock(&lock);
        return rv;
    }
    case SYS_pwritev: {
        pthread_mutex_lock(&lock);
        int k = before_write((int)a1, (off_t)a4, iov_len((const struct iovec *)a2, (int)a3), 0);
        rv = real(number, a1, a2, a3, a4, a5, a6);
        after_write(k, (int)a1, rv);
        pthread_mutex_unlock(&lock);
        return rv;
    }
    case SYS_io_getevents:
    case SYS_io_pgetevents: {
        /* a durable asynchronous write that completed counts as an
         * fdatasync of its file (what it allocated is durable too) */
        rv = real(number, a1, a2, a3, a4, a5, a6);
        if (rv <= 0 || !crash_dir()) return rv;
        pthread_mutex_lock(&lock);
        struct io_event *ev = (struct io_event *)a4;
        for (long i = 0; i < rv; i++) {
            struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].obj;
            int op = cb->aio_lio_opcode;
            if ((op != IOCB_CMD_PWRITE && op != IOCB_CMD_PWRITEV) || ev[i].res < 0) continue;
            int fd = (int)cb->aio_fildes;
            if ((cb->aio_rw_flags & (RWF_DSYNC | RWF_SYNC)) || durable_on_completion(fd))
                on_sync(fd);
        }
        pthread_mutex_unlock(&lock);
        return rv;
    }
    case SYS_fsync:
    case SYS_fdatasync:
        pthread_mutex_lock(&lock);
        rv = real(number, a1, a2, a3, a4, a5, a6);
        if (rv == 0) on_sync((int)a1);
        pthread_mutex_unlock(&lock);
        return rv;
    default:
        return real(number, a1, a2, a3, a4, a5, a6);
    }
}
