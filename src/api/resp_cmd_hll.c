/* resp_cmd_hll: HyperLogLog (issue 12): PFADD PFCOUNT PFMERGE.
 *
 * PFADD and PFMERGE are one kv command each (KV_OP_PFADD, PFMERGE:
 * kv/store.c applies them with kv/hll.h). PFCOUNT is a read on the local
 * store. Unlike Redis, PFCOUNT does not store the cardinality it computes
 * in the sketch's header (a read here never writes the log): the answer is
 * the same, the header's cache field stays marked stale, which only GET
 * or DUMP of the raw sketch shows. Checked against redis-server by
 * tests/integration/test_resp_hll.py. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/hll.h"
#include "util/alloc.h"

static void hll__pfadd(resp_req *req)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_PFADD, 0, 0, 0, resp_reply_integer);
}

static void hll__pfmerge(resp_req *req)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_PFMERGE, 0, 0, 0, resp_reply_ok);
}

/* The sketch at argv[i]: NULL when absent, or after replying an error
 * (*failed) */
static kv_entry *hll__lookup(resp_req *req, size_t i, bool *failed)
{
    kv_entry *e = resp_req_lookup_typed(req, &req->argv[i], KV_TYPE_STRING, failed);
    if (e && !kv_hll_is_hll(e->value, e->value_len)) {
        resp_req_error(req, "WRONGTYPE Key is not a valid HyperLogLog string value.");
        *failed = true;
        return NULL;
    }
    return e;
}

static void hll__pfcount_ready(resp_req *req)
{
    bool failed;
    uint64_t card = 0;
    if (req->argc == 2) {
        kv_entry *e = hll__lookup(req, 1, &failed);
        if (failed) return;
        if (e && !kv_hll_count(e->value, e->value_len, &card)) {
            resp_req_error(req, "INVALIDOBJ Corrupted HLL object detected");
            return;
        }
        resp_write_integer(&req->reply, (long long)card);
        return;
    }
    /* several keys: the cardinality of their union */
    uint8_t *max = xcalloc(KV_HLL_REGISTERS, 1);
    for (size_t i = 1; i < req->argc; i++) {
        kv_entry *e = hll__lookup(req, i, &failed);
        if (failed) goto out;
        if (e && !kv_hll_merge_max(max, e->value, e->value_len)) {
            resp_req_error(req, "INVALIDOBJ Corrupted HLL object detected");
            goto out;
        }
    }
    resp_write_integer(&req->reply, (long long)kv_hll_count_registers(max));
out:
    free(max);
}

static void hll__pfcount(resp_req *req)
{
    resp_req_read(req, hll__pfcount_ready);
}

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST

const resp_cmd resp_cmds_hll[] = {
    {"pfadd", hll__pfadd, -2, W | D | F, 1, 1, 1, "hyperloglog", "2.8.9", "O(1)",
     "Add elements to a HyperLogLog", "key [element [element ...]]"},
    {"pfcount", hll__pfcount, -2, R, 1, -1, 1, "hyperloglog", "2.8.9", "O(1)",
     "Return the estimated number of distinct elements of HyperLogLogs (their union)",
     "key [key ...]"},
    {"pfmerge", hll__pfmerge, -2, W | D, 1, -1, 1, "hyperloglog", "2.8.9", "O(N)",
     "Merge HyperLogLogs into one", "destkey [sourcekey [sourcekey ...]]"},
};
const size_t resp_cmds_hll_count = sizeof(resp_cmds_hll) / sizeof(resp_cmds_hll[0]);
