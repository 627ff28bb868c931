/* resp_cmd_cluster: CLUSTER and ASKING.
 *
 * cairn runs one Raft group today, so to cluster-aware clients it is what
 * Redis is without cluster-enabled: every CLUSTER subcommand Redis 7.0
 * knows answers Redis' own "cluster support disabled" (after Redis' arity
 * check of the subcommand), and so does ASKING; a client library that
 * probes for cluster mode finds a standalone server, as it should. Two
 * exceptions: CLUSTER KEYSLOT answers (a pure function: the slot a key
 * maps to, as Redis Cluster computes it, kv/slot.h; useful to check hash
 * tags before the partitioning of docs/design.md arrives) and CLUSTER
 * HELP lists what answers. */
#include <string.h>

#include "api/resp_internal.h"
#include "kv/slot.h"

static const char cluster__disabled[] = "ERR This instance has cluster support disabled";

/* Redis 7.0's CLUSTER subcommands and their arities (name included). */
static const struct {
    const char *name;
    int arity;
} cluster__subs[] = {
    {"addslots", -3},
    {"addslotsrange", -4},
    {"bumpepoch", 2},
    {"count-failure-reports", 3},
    {"countkeysinslot", 3},
    {"delslots", -3},
    {"delslotsrange", -4},
    {"failover", -2},
    {"flushslots", 2},
    {"forget", 3},
    {"getkeysinslot", 4},
    {"help", 2},
    {"info", 2},
    {"keyslot", 3},
    {"links", 2},
    {"meet", -4},
    {"myid", 2},
    {"nodes", 2},
    {"replicas", 3},
    {"replicate", 3},
    {"reset", -2},
    {"saveconfig", 2},
    {"set-config-epoch", 3},
    {"setslot", -4},
    {"shards", 2},
    {"slaves", 3},
    {"slots", 2},
};

static const char *const cluster__help[] = {
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "KEYSLOT <key>",
    "    Return the hash slot for <key> (CRC16 of the key or its {hash tag}, mod 16384).",
    "HELP",
    "    Print this help.",
    "(cairn runs one Raft group: the other subcommands answer that cluster support",
    "is disabled, as Redis does without cluster-enabled.)",
    NULL,
};

static void cluster__cmd(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    size_t i = 0, n = sizeof(cluster__subs) / sizeof(cluster__subs[0]);
    while (i < n && !resp_format_arg_is(sub, cluster__subs[i].name)) i++;
    if (i == n) {
        resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try CLUSTER HELP.",
                        (int)(sub->len > 128 ? 128 : sub->len), sub->ptr);
        return;
    }
    int arity = cluster__subs[i].arity;
    if ((arity > 0 && req->argc != (size_t)arity) || (arity < 0 && req->argc < (size_t)-arity)) {
        resp_req_errorf(req, "ERR wrong number of arguments for 'cluster|%s' command",
                        cluster__subs[i].name);
        return;
    }
    if (strcmp(cluster__subs[i].name, "keyslot") == 0) {
        resp_write_integer(&req->reply, kv_key_slot(req->argv[2].ptr, req->argv[2].len));
        return;
    }
    if (strcmp(cluster__subs[i].name, "help") == 0) {
        resp_req_help(req, cluster__help);
        return;
    }
    resp_req_error(req, cluster__disabled);
}

static void cluster__asking(resp_req *req)
{
    resp_req_error(req, cluster__disabled);
}

const resp_cmd resp_cmds_cluster[] = {
    {"cluster", cluster__cmd, -2, RESP_CMD_LOADING | RESP_CMD_STALE, 0, 0, 0, "cluster", "3.0.0",
     "Depends on subcommand.",
     "Cluster commands: KEYSLOT and HELP answer; with one Raft group the others say that "
     "cluster support is disabled",
     "subcommand [argument ...]"},
    {"asking", cluster__asking, 1, RESP_CMD_FAST, 0, 0, 0, "cluster", "3.0.0", "O(1)",
     "Sent by cluster clients after an -ASK redirect (cluster support is disabled: one Raft "
     "group)",
     ""},
};
const size_t resp_cmds_cluster_count = sizeof(resp_cmds_cluster) / sizeof(resp_cmds_cluster[0]);
