#include "replica/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_NAME "cairn.meta"
#define META_HEADER "cairn-data-dir 1"

static int datadir__mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int datadir__has_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n > 0;
}

static int datadir__fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rv = fsync(fd);
    close(fd);
    return rv;
}

static int datadir__read_meta(const char *file, datadir_identity *id, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    char line[256];
    int ok_header = 0, ok_node = 0;
    memset(id, 0, sizeof(*id));
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, META_HEADER) == 0)
            ok_header = 1;
        else if (sscanf(line, "node_id=%" SCNu64, &id->node_id) == 1)
            ok_node = 1;
        else
            sscanf(line, "cluster_id=%" SCNx64, &id->cluster_id);
    }
    fclose(f);
    if (!ok_header || !ok_node) {
        snprintf(err, errlen, "%s is not a valid cairn metadata file", file);
        return -1;
    }
    return 0;
}

static int datadir__write_meta(const char *dir, const datadir_identity *id, char *err,
                               size_t errlen)
{
    char tmp[1100], file[1100];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, META_NAME);
    snprintf(file, sizeof(file), "%s/%s", dir, META_NAME);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) goto fail;
    char text[256];
    int n = snprintf(text, sizeof(text), "%s\nnode_id=%" PRIu64 "\ncluster_id=%016" PRIx64 "\n",
                     META_HEADER, id->node_id, id->cluster_id);
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        close(fd);
        goto fail;
    }
    close(fd);
    /* rename then fsync the dir: the file is either absent or whole */
    if (rename(tmp, file) != 0 || datadir__fsync_dir(dir) != 0) goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot write %s: %s", file, strerror(errno));
    return -1;
}

/* An exclusive lock held for the life of the process: two processes on
 * one log would corrupt it. The descriptor is deliberately never closed. */
static int datadir__lock(const char *path, char *err, size_t errlen)
{
    char file[1100];
    snprintf(file, sizeof(file), "%s/LOCK", path);
    int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "data dir %s is in use by another cairnd (%s is locked)", path, file);
        close(fd);
        return -1;
    }
    return 0;
}

int datadir_open(const char *path, const datadir_identity *want, char *raft_dir,
                 size_t raft_dir_len, int *fresh, char *err, size_t errlen)
{
    char meta[1100];
    snprintf(meta, sizeof(meta), "%s/%s", path, META_NAME);
    snprintf(raft_dir, raft_dir_len, "%s/raft", path);
    *fresh = 0;

    struct stat st;
    if (stat(meta, &st) == 0) {
        datadir_identity have;
        if (datadir__read_meta(meta, &have, err, errlen) != 0) return -1;
        if (have.node_id != want->node_id) {
            snprintf(err, errlen,
                     "data dir %s belongs to node %" PRIu64 ", not node %" PRIu64
                     "; refusing to start (use that --id or another --data-dir)",
                     path, have.node_id, want->node_id);
            return -1;
        }
        if (want->cluster_id && have.cluster_id && want->cluster_id != have.cluster_id) {
            snprintf(err, errlen,
                     "data dir %s belongs to cluster %016" PRIx64 ", not %016" PRIx64
                     " (from --initial-cluster); refusing to start",
                     path, have.cluster_id, want->cluster_id);
            return -1;
        }
        /* only now, once the dir is known to be ours, may we create files */
        if (datadir__lock(path, err, errlen) != 0) return -1;
        if (datadir__mkdirs(raft_dir) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", raft_dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (datadir__has_entries(raft_dir)) {
        snprintf(err, errlen,
                 "data dir %s holds raft state but no %s: not created by this cairn, refusing "
                 "to start",
                 path, META_NAME);
        return -1;
    }
    if (datadir__mkdirs(raft_dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", raft_dir, strerror(errno));
        return -1;
    }
    if (datadir__lock(path, err, errlen) != 0) return -1;
    if (datadir__write_meta(path, want, err, errlen) != 0) return -1;
    *fresh = 1;
    return 0;
}
