#include "obs/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"

static int log__level = LOG_LEVEL_INFO;
static int log__format = LOG_FORMAT_TEXT;
static const char *log__names[] = {"debug", "info", "warn", "error"};

void log_setup(int level, int format)
{
    log__level = level;
    log__format = format;
}

int log_level(void)
{
    return log__level;
}

int log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, log__names[i]) == 0) return i;
    return -1;
}

int log_parse_format(const char *s)
{
    if (strcmp(s, "text") == 0) return LOG_FORMAT_TEXT;
    if (strcmp(s, "json") == 0) return LOG_FORMAT_JSON;
    return -1;
}

/* Escape for both formats: quotes, backslashes and control bytes. */
static void log__escape(buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf_append_char(b, '\\');
            buf_append_char(b, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_append_char(b, (char)c);
        }
    }
}

static bool log__needs_quotes(const char *s, size_t n)
{
    if (n == 0) return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
    }
    return false;
}

static void log__value(buf *b, const log_field *f)
{
    if (f->type == LOG_FIELD_INT) {
        buf_append_i64(b, f->i);
        return;
    }
    const char *s = f->s ? f->s : "";
    size_t n = f->type == LOG_FIELD_BYTES ? f->len : strlen(s);
    if (f->type == LOG_FIELD_BYTES && n > 64) n = 64;
    if (log__format == LOG_FORMAT_JSON || log__needs_quotes(s, n)) {
        buf_append_char(b, '"');
        log__escape(b, s, n);
        buf_append_char(b, '"');
    } else {
        buf_append(b, s, n);
    }
}

void log_event(int level, const char *msg, const log_field *fields, size_t n)
{
    char stamp[40];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, sizeof(stamp) - k, ".%03dZ", (int)(tv.tv_usec / 1000));

    buf b;
    buf_init(&b);
    const log_field lvl = LF_S("level", log__names[level]);
    const log_field ts = LF_S("ts", stamp);
    const log_field m = LF_S("msg", msg);
    if (log__format == LOG_FORMAT_JSON) {
        buf_append_str(&b, "{\"ts\":");
        log__value(&b, &ts);
        buf_append_str(&b, ",\"level\":");
        log__value(&b, &lvl);
        buf_append_str(&b, ",\"msg\":");
        log__value(&b, &m);
        for (size_t i = 0; i < n; i++) {
            buf_printf(&b, ",\"%s\":", fields[i].key);
            log__value(&b, &fields[i]);
        }
        buf_append_str(&b, "}\n");
    } else {
        buf_append_str(&b, "ts=");
        log__value(&b, &ts);
        buf_append_str(&b, " level=");
        log__value(&b, &lvl);
        buf_append_str(&b, " msg=\"");
        log__escape(&b, msg, strlen(msg));
        buf_append_char(&b, '"');
        for (size_t i = 0; i < n; i++) {
            buf_printf(&b, " %s=", fields[i].key);
            log__value(&b, &fields[i]);
        }
        buf_append_char(&b, '\n');
    }
    /* one write per event so lines from a crash-time log stay whole */
    ssize_t rv = write(STDERR_FILENO, b.data, b.len);
    (void)rv;
    buf_close(&b);
}
