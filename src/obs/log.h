/* log: one event per line on stderr, logfmt or JSON.
 *
 * Fields are typed so that the same event renders correctly in both
 * formats and values are escaped once, here. The logger is the one piece
 * of process-wide state besides the metrics registry; it is written only
 * by the loop thread (other threads must not log).
 *
 *   LOG_INFO("listening", LF_S("proto", "http"), LF_S("addr", addr));
 *
 * Never log values or secrets: keys are logged at debug level only, and
 * truncated. */
#ifndef CAIRN_OBS_LOG_H
#define CAIRN_OBS_LOG_H

#include <stddef.h>

enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };
enum { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_BYTES };

typedef struct log_field {
    const char *key;
    int type;
    const char *s;
    size_t len;
    long long i;
} log_field;

#define LF_S(k, v) ((log_field){(k), LOG_FIELD_STR, (v), 0, 0})
#define LF_I(k, v) ((log_field){(k), LOG_FIELD_INT, NULL, 0, (long long)(v)})
/* raw bytes, escaped and cut at 64 bytes */
#define LF_B(k, p, n) ((log_field){(k), LOG_FIELD_BYTES, (p), (n), 0})

void log_setup(int level, int format);
int log_level(void);
int log_parse_level(const char *s);  /* -1 if unknown */
int log_parse_format(const char *s); /* -1 if unknown */
void log_event(int level, const char *msg, const log_field *fields, size_t n);

#define LOG_AT(lvl, msg, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) >= log_level()) {                                                                \
            const log_field log__f[] = {__VA_ARGS__};                                              \
            log_event((lvl), (msg), log__f, sizeof(log__f) / sizeof(log_field));                   \
        }                                                                                          \
    } while (0)
#define LOG_DEBUG(msg, ...) LOG_AT(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define LOG_INFO(msg, ...) LOG_AT(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define LOG_WARN(msg, ...) LOG_AT(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define LOG_ERROR(msg, ...) LOG_AT(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif
