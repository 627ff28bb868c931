#include "replica/disk_guard.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "kv/command.h"
#include "obs/log.h"

void disk_guard_init(disk_guard *g, uint64_t min_free, const char *dir)
{
    memset(g, 0, sizeof(*g));
    g->min_free = min_free;
    g->dir = dir;
    g->free_bytes = UINT64_MAX;
}

static void disk_guard__set_low(disk_guard *g, bool low)
{
    const char *dir = g->dir;
    if (low && !g->low)
        LOG_ERROR("disk almost full: refusing writes (deletes still work) until space is freed",
                  LF_S("dir", dir), LF_I("free_bytes", g->free_bytes),
                  LF_I("min_free_disk", g->min_free));
    else if (!low && g->low)
        LOG_INFO("disk space back: accepting writes again", LF_S("dir", dir),
                 LF_I("free_bytes", g->free_bytes), LF_I("refused_writes", g->refused));
    g->low = low;
}

void disk_guard_poll(disk_guard *g, uint64_t now_ns)
{
    if (!g->min_free) return;
    if (g->checked_ns && now_ns - g->checked_ns < 100000000ULL) return;
    const char *dir = g->dir;
    g->checked_ns = now_ns;
    struct statvfs st;
    if (statvfs(dir, &st) != 0) {
        LOG_WARN("cannot measure free disk space", LF_S("dir", dir),
                 LF_S("error", strerror(errno)));
        return;
    }
    g->free_bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    disk_guard__set_low(g, g->free_bytes < g->min_free);
}

bool disk_guard_refuses(disk_guard *g, int kv_op)
{
    if (!g->low) return false;
    switch (kv_op) {
    case KV_OP_DEL:
    case KV_OP_FLUSH:
    case KV_OP_EXPIRE_KEYS:
    case KV_OP_NOOP:
    case KV_OP_MEMBER:
        return false;
    default:
        g->refused++;
        return true;
    }
}
