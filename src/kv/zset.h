/* zset: Redis sorted sets on keyspace entries (kv_entry.type KV_TYPE_ZSET).
 *
 * Members ordered by (score, member bytes), as Redis orders them. Two
 * encodings, as Redis 7 has them:
 *  - listpack: a packed array in the entry's value buffer, in that order,
 *      u32 count | count x (score | member)
 *    the score a whole number as a tag and its zigzag LEB128 or else a tag
 *    and 8 bytes, the member a kv/packed.h element (zset.c), while there
 *    are at most zset-max-listpack-entries members of at most
 *    zset-max-listpack-value bytes (kv/limits.h);
 *  - skiplist: Redis' skiplist with spans (rank in O(log n)) plus a hash
 *    of the members, an object behind e->value (value_len 0).
 * A sorted set never converts back (nor does Redis'), so every replica
 * holds the same encoding. An empty one is deleted by the caller. */
#ifndef CAIRN_KV_ZSET_H
#define CAIRN_KV_ZSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"

#define KV_ZSET_LISTPACK_ENTRIES 128
#define KV_ZSET_LISTPACK_VALUE 64

void kv_zset_init(kv_keyspace *ks, kv_entry *e);
uint64_t kv_zset_len(const kv_entry *e);
bool kv_zset_score(const kv_entry *e, kv_slice member, double *score);
/* Give member this score: true when it was added, false when it was
 * there (its score then changed, or stayed). */
bool kv_zset_set(kv_keyspace *ks, kv_entry *e, kv_slice member, double score);
bool kv_zset_remove(kv_keyspace *ks, kv_entry *e, kv_slice member);

/* How many members sort before a score: with `inclusive`, those with a
 * score < s; without, those with a score <= s. So [min, max] holds
 * below(max, false) - below(min, true) members. */
uint64_t kv_zset_below(const kv_entry *e, double s, bool inclusive);
/* The 0-based rank of member in ascending order; false when absent. */
bool kv_zset_rank(const kv_entry *e, kv_slice member, uint64_t *rank);

/* Members by rank, from rank `from` up (or down with rev), while the set
 * is unchanged. */
#define KV_ZSET_ITER_BLOCK 32
typedef struct kv_zset_iter {
    const kv_entry *e;
    bool rev;
    uint64_t rank; /* the next one's */
    size_t pos;    /* listpack: offset of the next */
    const void *node;
    /* a listpack backwards: the offsets of entries [first, first + n),
     * found walking forward once per block of KV_ZSET_ITER_BLOCK */
    uint64_t block_first;
    uint32_t block_n;
    size_t block[KV_ZSET_ITER_BLOCK];
} kv_zset_iter;
void kv_zset_iter_init(kv_zset_iter *it, const kv_entry *e, uint64_t from, bool rev);
bool kv_zset_iter_next(kv_zset_iter *it, kv_slice *member, double *score);

/* ZSCAN: a listpack whole in one step, a skiplist's member hash one
 * bucket per step with SCAN's cursor. */
typedef void (*kv_zset_scan_fn)(void *ctx, kv_slice member, double score);
uint64_t kv_zset_scan(const kv_entry *e, uint64_t cursor, kv_zset_scan_fn fn, void *ctx);

/* A score as ZADD reads one (strtod, no leading space, not NaN, no
 * overflow to infinity); a range bound as ZRANGE BYSCORE reads one
 * ("(" for exclusive, "-inf"/"+inf"). Shared by the front end and apply. */
bool kv_zset_parse_score(const char *s, size_t len, double *out);
bool kv_zset_parse_bound(const char *s, size_t len, double *out, bool *exclusive);

/* ZRANGEBYLEX's bounds: "-" and "+", "[x" inclusive, "(x" exclusive. The
 * members with first <= rank < end are in [min, max] (meaningful, as in
 * Redis, when every score is the same). */
enum { KV_LEX_MIN, KV_LEX_MAX, KV_LEX_INCLUSIVE, KV_LEX_EXCLUSIVE };
typedef struct kv_lex_bound {
    int kind;
    const char *ptr; /* into the argument */
    size_t len;
} kv_lex_bound;
bool kv_zset_parse_lex(const char *s, size_t len, kv_lex_bound *out);
uint64_t kv_zset_lex_first(const kv_entry *e, const kv_lex_bound *min);
uint64_t kv_zset_lex_end(const kv_entry *e, const kv_lex_bound *max);

/* A ZRANGE query (ZRANGE, its older forms and ZRANGESTORE): by rank,
 * score or lex, maybe reversed, maybe limited. */
typedef enum { KV_ZRANGE_RANK, KV_ZRANGE_SCORE, KV_ZRANGE_LEX } kv_zrange_by;
typedef struct kv_zrange {
    kv_zrange_by by;
    bool rev;
    int64_t start, stop;     /* by rank */
    double min, max;         /* by score */
    bool minx, maxx;         /* exclusive */
    kv_lex_bound lmin, lmax; /* by lex (into the arguments) */
    bool limited;
    int64_t offset, count; /* LIMIT; a negative count: all */
} kv_zrange;
/* The query's two bounds, as the command gives them (reversed by score or
 * lex, the maximum first). 0, or which did not parse: */
enum { KV_ZRANGE_ERR_INT = 1, KV_ZRANGE_ERR_FLOAT, KV_ZRANGE_ERR_LEX };
int kv_zrange_bounds(kv_zrange *q, kv_slice first, kv_slice second);
/* The members the query selects from e (NULL: none): *n of them, from
 * rank *from in the walk's direction (kv_zset_iter_init with q->rev). */
void kv_zrange_select(const kv_entry *e, const kv_zrange *q, uint64_t *from, uint64_t *n);

/* ZUNION, ZINTER, ZDIFF of sources (a sorted set; a set, every member
 * at score 1; NULL for a missing key) into out, an empty sorted set of
 * ks: scores times their source's weight (ZDIFF: none), combined by SUM,
 * MIN or MAX, as Redis does (a NaN from inf - inf or inf * 0 is 0). */
enum { KV_ZCOMB_UNION = 0, KV_ZCOMB_INTER = 1, KV_ZCOMB_DIFF = 2 };
enum { KV_ZAGG_SUM = 0, KV_ZAGG_MIN = 1, KV_ZAGG_MAX = 2 };
void kv_zset_combine(kv_keyspace *ks, kv_entry *out, const kv_entry *const *srcs, size_t n,
                     const double *weights, int agg, int op);
/* ZINTERCARD: the intersection's size, counting stops at limit (0: none). */
uint64_t kv_zset_intercard(const kv_entry *const *srcs, size_t n, uint64_t limit);

size_t kv_zset_mem(const void *zs);
void kv_zset_free(void *zs);

/* Snapshots: one layout whatever the encoding, u32 count | count x (f64
 * score | u32 len | member) (the listpack encoding's before it packed its
 * scores and lengths: every snapshot ever written loads); an entry's first
 * 12 bytes (score, member length) for a writer that allocates nothing. */
size_t kv_zset_serialized_len(const kv_entry *e);
void kv_zset_entry_header(char out[12], double score, uint32_t len);
bool kv_zset_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len);

#endif
