/* slot: Redis Cluster's key -> hash slot function (slot.h). */
#include "kv/slot.h"

#include <string.h>

static uint16_t crc_table[256];
static int crc_ready;

/* The table of CRC16-XMODEM for every byte value, computed bit by bit
 * once (256 entries; the loop thread is the only caller). */
static void crc__init(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint16_t c = (uint16_t)(b << 8);
        for (int i = 0; i < 8; i++) c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[b] = c;
    }
    crc_ready = 1;
}

uint16_t kv_crc16(const void *p, size_t n)
{
    if (!crc_ready) crc__init();
    const unsigned char *s = p;
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ s[i]) & 0xff]);
    return crc;
}

unsigned kv_key_slot(const void *key, size_t len)
{
    const char *k = key;
    const char *open = memchr(k, '{', len);
    if (open) {
        const char *tag = open + 1;
        size_t rest = len - (size_t)(tag - k);
        const char *close = memchr(tag, '}', rest);
        if (close && close > tag) return kv_crc16(tag, (size_t)(close - tag)) & (KV_SLOTS - 1);
    }
    return kv_crc16(k, len) & (KV_SLOTS - 1);
}
