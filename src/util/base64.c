#include "util/base64.h"

#include <stdint.h>

static const char *const base64_tables[2] = {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};

void base64_encode(buf *out, const void *p, size_t n, base64_alphabet alphabet, bool pad)
{
    const char *tab = base64_tables[alphabet];
    const unsigned char *s = p;
    buf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        buf_append(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], '=', '='};
        buf_append(out, q, pad ? 4 : 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], '='};
        buf_append(out, q, pad ? 4 : 3);
    }
}

static int base64__digit(unsigned char c, base64_alphabet alphabet)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (alphabet == BASE64_URL ? '-' : '+')) return 62;
    if (c == (alphabet == BASE64_URL ? '_' : '/')) return 63;
    return -1;
}

int base64_decode(const char *s, size_t n, base64_alphabet alphabet, buf *out)
{
    /* Padding, if any, must make the length a multiple of 4. */
    if (n > 0 && s[n - 1] == '=') {
        if (n % 4 != 0) return -1;
        n--;
        if (s[n - 1] == '=') n--;
    }
    size_t tail = n % 4;
    if (tail == 1) return -1;
    buf_reserve(out, n / 4 * 3 + 2);
    size_t mark = out->len;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int d = base64__digit((unsigned char)s[i], alphabet);
        if (d < 0) goto bad;
        acc = acc << 6 | (uint32_t)d;
        if (i % 4 == 3) {
            char three[3] = {(char)(acc >> 16), (char)(acc >> 8), (char)acc};
            buf_append(out, three, 3);
            acc = 0;
        }
    }
    if (tail == 2) {
        if (acc & 0x0F) goto bad; /* 12 bits carry 8: the low 4 must be 0 */
        buf_append_char(out, (char)(acc >> 4));
    } else if (tail == 3) {
        if (acc & 0x03) goto bad; /* 18 bits carry 16: the low 2 must be 0 */
        char two[2] = {(char)(acc >> 10), (char)(acc >> 2)};
        buf_append(out, two, 2);
    }
    return 0;
bad:
    out->len = mark;
    if (out->data) out->data[out->len] = '\0';
    return -1;
}
