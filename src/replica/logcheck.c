#include "replica/logcheck.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"

static unsigned logcheck__table[256];

unsigned logcheck_crc32(const void *p, size_t n, unsigned crc)
{
    if (!logcheck__table[1]) {
        for (unsigned i = 0; i < 256; i++) {
            unsigned c = i << 24;
            for (int k = 0; k < 8; k++) c = (c & 0x80000000u) ? (c << 1) ^ 0x04c11db7u : c << 1;
            logcheck__table[i] = c;
        }
    }
    const unsigned char *s = p;
    while (n--) crc = (crc << 8) ^ logcheck__table[((crc >> 24) ^ *s++) & 255];
    return crc;
}

static uint64_t logcheck__u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t logcheck__u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int logcheck__all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Check one batch at data[off..]; returns its length, or 0 with *why set. */
static size_t logcheck__batch(const unsigned char *data, size_t size, size_t off, const char **why)
{
    size_t left = size - off;
    if (left < 16) {
        *why = "batch header cut short";
        return 0;
    }
    uint32_t crc_head = logcheck__u32(data + off), crc_data = logcheck__u32(data + off + 4);
    uint64_t n = logcheck__u64(data + off + 8);
    if (n == 0 || n > (left - 16) / 16) {
        *why = "batch entry count impossible";
        return 0;
    }
    size_t head_len = 8 + 16 * (size_t)n;
    if (logcheck_crc32(data + off + 8, head_len, 0) != crc_head) {
        *why = "batch header checksum mismatch";
        return 0;
    }
    size_t data_len = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t len = logcheck__u32(data + off + 16 + 16 * i + 12);
        data_len += ((size_t)len + 7) & ~(size_t)7;
        if (data_len > left) break;
    }
    if (8 + head_len + data_len > left) {
        *why = "batch data cut short";
        return 0;
    }
    if (logcheck_crc32(data + off + 8 + head_len, data_len, 0) != crc_data) {
        *why = "batch data checksum mismatch";
        return 0;
    }
    return 8 + head_len + data_len;
}

typedef struct seg_file {
    char name[64];
    int open;
    uint64_t order; /* open-N: N; closed: first index */
} seg_file;

static int logcheck__cmp(const void *a, const void *b)
{
    const seg_file *x = a, *y = b;
    if (x->open != y->open) return x->open - y->open; /* closed first */
    return x->order < y->order ? -1 : x->order > y->order;
}

static int logcheck__read(const char *path, unsigned char **data, size_t *size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    *size = (size_t)st.st_size;
    *data = xmalloc(*size ? *size : 1);
    size_t got = 0;
    while (got < *size) {
        ssize_t k = read(fd, *data + got, *size - got);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            close(fd);
            free(*data);
            return -1;
        }
        got += (size_t)k;
    }
    close(fd);
    return 0;
}

static int logcheck__zero_tail(const char *path, size_t off, size_t size)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    static const char zeros[4096];
    while (off < size) {
        size_t n = size - off < sizeof(zeros) ? size - off : sizeof(zeros);
        ssize_t k = pwrite(fd, zeros, n, (off_t)off);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)k;
    }
    int rv = fsync(fd);
    close(fd);
    return rv;
}

int logcheck_run(const char *raft_dir, int *repaired, char *err, size_t errlen)
{
    *repaired = 0;
    DIR *d = opendir(raft_dir);
    if (!d) return 0;
    seg_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long a, b;
        char tail;
        seg_file f = {0};
        if (sscanf(e->d_name, "open-%llu%c", &a, &tail) == 1) {
            f.open = 1;
            f.order = a;
        } else if (strlen(e->d_name) == 33 &&
                   sscanf(e->d_name, "%16llu-%16llu%c", &a, &b, &tail) == 2) {
            f.order = a;
        } else {
            continue;
        }
        snprintf(f.name, sizeof(f.name), "%s", e->d_name);
        if (n == cap) files = xrealloc(files, (cap = cap ? cap * 2 : 16) * sizeof(*files));
        files[n++] = f;
    }
    closedir(d);
    if (n > 1) qsort(files, n, sizeof(*files), logcheck__cmp); /* qsort(NULL, 0) is UB */

    int rv = 0;
    bool later_data = false; /* an open segment after this one holds data */
    /* walk backwards so we know whether a newer open segment has data */
    for (size_t i = n; i-- > 0 && rv == 0;) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", raft_dir, files[i].name);
        unsigned char *data;
        size_t size;
        if (logcheck__read(path, &data, &size) != 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rv = -1;
            break;
        }
        if (files[i].open && logcheck__all_zero(data, size)) {
            free(data);
            continue;
        }
        if (size < 8 || logcheck__u64(data) != 1) {
            snprintf(err, errlen, "%s: offset 0: unknown segment format version", path);
            free(data);
            rv = -1;
            break;
        }
        size_t off = 8;
        while (off < size) {
            if (files[i].open &&
                logcheck__all_zero(data + off, size - off < 16 ? size - off : 16)) {
                /* the unused, preallocated rest of an open segment */
                if (!logcheck__all_zero(data + off, size - off)) {
                    snprintf(err, errlen, "%s: offset %zu: data after an empty batch header", path,
                             off);
                    rv = -1;
                }
                break;
            }
            const char *why = NULL;
            size_t len = logcheck__batch(data, size, off, &why);
            if (len) {
                off += len;
                continue;
            }
            /* a damaged batch: torn tail only if nothing newer was written */
            bool tail_is_empty = true;
            if (size - off > 16) {
                /* the batch's own bytes may be partly written; beyond the
                 * longest it could be we demand zeros */
                size_t scan_from = off + 16;
                for (size_t k = scan_from; k < size && tail_is_empty; k++) {
                    if (data[k] == 0) continue;
                    /* allow non-zero bytes within 64 KiB: one batch */
                    if (k - off > 64 * 1024) tail_is_empty = false;
                }
            }
            if (files[i].open && !later_data && tail_is_empty) {
                if (logcheck__zero_tail(path, off, size) != 0) {
                    snprintf(err, errlen, "%s: cannot repair torn tail at offset %zu: %s", path,
                             off, strerror(errno));
                    rv = -1;
                } else {
                    LOG_WARN("discarded torn write at the end of the log (never acknowledged)",
                             LF_S("file", path), LF_I("offset", off), LF_I("bytes", size - off),
                             LF_S("reason", why));
                    (*repaired)++;
                }
            } else {
                snprintf(err, errlen,
                         "%s: offset %zu: %s; refusing to start (the log is damaged "
                         "before its end, which a crash cannot explain)",
                         path, off, why);
                rv = -1;
            }
            break;
        }
        if (files[i].open) later_data = true;
        free(data);
    }
    free(files);
    return rv;
}

int logcheck_latest_snapshot(const char *raft_dir, char *out, size_t outlen)
{
    DIR *d = opendir(raft_dir);
    if (!d) return -1;
    unsigned long long best_index = 0;
    int found = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long term, index, ts;
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".meta") == 0) continue;
        if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu", &term, &index, &ts) != 3) continue;
        if (found == 0 && index < best_index) continue;
        best_index = index;
        snprintf(out, outlen, "%s/%s", raft_dir, e->d_name);
        found = 0;
    }
    closedir(d);
    return found;
}
