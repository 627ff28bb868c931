/* resp: the Redis serialisation protocol, parsing requests and writing
 * replies (RESP2 and RESP3).
 *
 * Pure code, no I/O. The parser is resumable: it remembers how far it got in
 * the connection's unread bytes so that a 1 MiB bulk string arriving in
 * small reads is not rescanned from the start. It stores offsets, not
 * pointers, because the caller's buffer may move between calls; pointers
 * are produced only when a whole command is available.
 *
 * Error texts match Redis' networking.c, so clients see what they expect. */
#ifndef CAIRN_NET_RESP_H
#define CAIRN_NET_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct resp_limits {
    size_t max_args;         /* multibulk count over this: protocol error */
    size_t max_bulk_bytes;   /* one bulk string over this: protocol error */
    size_t max_inline_bytes; /* inline command line over this: protocol error */
} resp_limits;

typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg;

typedef struct resp_parser {
    /* resumable state (private) */
    int state;
    size_t pos;          /* offset into the unread data already examined */
    long long multibulk; /* args announced, or -1 */
    long long bulk_len;  /* length of the bulk being read, or -1 */
    size_t nargs;        /* args completed so far */
    size_t *arg_off;     /* offsets and lengths of completed args */
    size_t *arg_len;
    size_t arg_cap;
    /* the parsed command, valid after resp_parse returns 1 */
    resp_arg *argv;
    size_t argc;
    size_t argv_cap;
    buf inline_scratch; /* inline commands are unquoted into here */
    bool inline_cmd;    /* the last command was inline */
    char err[128];      /* message after a protocol error */
} resp_parser;

void resp_parser_init(resp_parser *p);
void resp_parser_close(resp_parser *p);

/* Parse one command from data[0..len) (the connection's unread bytes; pass
 * the same start each call until a command completes).
 * Returns 1 with p->argv/p->argc set and *consumed = bytes of the command
 * (the caller drops them and calls again with the rest), 0 when more input
 * is needed, -1 on a protocol error with p->err holding Redis' text, e.g.
 * "Protocol error: invalid multibulk length",
 * "Protocol error: invalid bulk length",
 * "Protocol error: expected '$', got 'x'",
 * "Protocol error: unbalanced quotes in request",
 * "Protocol error: too big inline request",
 * "Protocol error: too big mbulk count string",
 * "Protocol error: too big bulk count string".
 * An empty multibulk (`*0\r\n` or `*-1\r\n`) and an empty inline line are
 * skipped (consumed, no command), as Redis does: the function continues
 * with the next command. Commands not starting with '*' are inline:
 * split on whitespace with Redis' quoting rules ("..." with \n \r \t \b \a
 * \\ \" \xHH escapes, '...' with \' only). argv pointers point into data
 * (multibulk) or into p->inline_scratch (inline) and are valid until the
 * next call. */
int resp_parse(resp_parser *p, const char *data, size_t len, const resp_limits *lim,
               size_t *consumed);

/* Reply writers: append one RESP value to out. proto is 2 or 3; where RESP2
 * has no type of its own the RESP2 equivalent is written (null -> $-1 or
 * *-1 as noted, map -> flat array, set -> array, double -> bulk string,
 * bool -> integer 1/0, verbatim -> bulk, push -> array). */
void resp_write_simple(buf *out, const char *s);  /* +s */
void resp_write_error(buf *out, const char *msg); /* -msg (msg includes the code) */
void resp_write_errorf(buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_write_integer(buf *out, long long v);          /* :v */
void resp_write_bulk(buf *out, const void *p, size_t n); /* $n\r\n..\r\n */
void resp_write_bulk_str(buf *out, const char *s);
void resp_write_null(buf *out, int proto);              /* $-1 | _ */
void resp_write_null_array(buf *out, int proto);        /* *-1 | _ */
void resp_write_array(buf *out, size_t n);              /* *n */
void resp_write_map(buf *out, int proto, size_t pairs); /* %n | *2n */
void resp_write_set(buf *out, int proto, size_t n);     /* ~n | *n */
void resp_write_push(buf *out, int proto, size_t n);    /* >n | *n (pub/sub messages) */
void resp_write_double(buf *out, int proto,
                       double v); /* ,v | bulk; Redis' %.17g formatting, inf/-inf/nan */
void resp_write_bool(buf *out, int proto, bool v); /* #t/#f | :1/:0 */
void resp_write_verbatim(buf *out, int proto, const char *fmt3, const void *p,
                         size_t n); /* =n+4\r\ntxt:.. | bulk */

#endif
