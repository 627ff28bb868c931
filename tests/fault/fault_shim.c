/* fault_shim: an LD_PRELOAD library that makes a "device" fail with EIO,
 * for disk-fault tests on a machine without device-mapper (issue 11).
 *
 * While the file named by CAIRN_FAULT_SWITCH exists, every write to a file
 * under CAIRN_FAULT_DIR fails with EIO:
 * - asynchronous writes (libraft's segment writer submits them with
 *   io_submit through syscall(2)) complete with res = -EIO in the events
 *   that io_getevents returns, which is how a failing device reports them;
 * - pwrite, pwritev, pwritev2, write, fsync and fdatasync on such a file
 *   return -1 with errno EIO.
 * Reads, and files elsewhere, are untouched. The test turns the fault on
 * and off by creating and removing the switch file. Counts of injected
 * failures are appended to CAIRN_FAULT_SWITCH.log, one line each.
 *
 * Build: cc -shared -fPIC -O2 -o fault_shim.so fault_shim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
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

static int under_fault(int fd)
{
    const char *dir = getenv("CAIRN_FAULT_DIR");
    const char *sw = getenv("CAIRN_FAULT_SWITCH");
    if (!dir || !sw || fd < 0) return 0;
    struct stat st;
    if (stat(sw, &st) != 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    size_t len = strlen(dir);
    return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

static void note(const char *what, int fd)
{
    const char *sw = getenv("CAIRN_FAULT_SWITCH");
    char log[4200];
    snprintf(log, sizeof(log), "%s.log", sw);
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0) return;
    char line[128];
    int k = snprintf(line, sizeof(line), "%s fd %d\n", what, fd);
    ssize_t w =
        ((ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write"))(lfd, line, (size_t)k);
    (void)w;
    close(lfd);
}

long syscall(long number, ...)
{
    SHIM_SYSCALL_ARGS(number);
    long rv = REAL(syscall, long (*)(long, ...))(number, a1, a2, a3, a4, a5, a6);
    if (number == SYS_io_getevents && rv > 0) {
        struct io_event *ev = (struct io_event *)a4;
        for (long i = 0; i < rv; i++) {
            struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].obj;
            int op = cb->aio_lio_opcode;
            if ((op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV) &&
                under_fault((int)cb->aio_fildes)) {
                ev[i].res = -EIO;
                note("io_event", (int)cb->aio_fildes);
            }
        }
    }
    return rv;
}

#define FAIL_IF_FAULTED(fd, what)                                                                  \
    do {                                                                                           \
        if (under_fault(fd)) {                                                                     \
            note(what, fd);                                                                        \
            errno = EIO;                                                                           \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    FAIL_IF_FAULTED(fd, "pwrite");
    return REAL(pwrite, ssize_t(*)(int, const void *, size_t, off_t))(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    FAIL_IF_FAULTED(fd, "pwrite64");
    return REAL(pwrite64, ssize_t(*)(int, const void *, size_t, off_t))(fd, p, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    FAIL_IF_FAULTED(fd, "pwritev");
    return REAL(pwritev, ssize_t(*)(int, const struct iovec *, int, off_t))(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    FAIL_IF_FAULTED(fd, "pwritev2");
    return REAL(pwritev2, ssize_t(*)(int, const struct iovec *, int, off_t, int))(fd, iov, cnt, off,
                                                                                  flags);
}

ssize_t write(int fd, const void *p, size_t n)
{
    FAIL_IF_FAULTED(fd, "write");
    return REAL(write, ssize_t(*)(int, const void *, size_t))(fd, p, n);
}

int fsync(int fd)
{
    FAIL_IF_FAULTED(fd, "fsync");
    return REAL(fsync, int (*)(int))(fd);
}

int fdatasync(int fd)
{
    FAIL_IF_FAULTED(fd, "fdatasync");
    return REAL(fdatasync, int (*)(int))(fd);
}
