/* crc64: the CRC-64 Redis checks its DUMP payloads and RDB files with
 * ("Jones": polynomial 0xad93d23594c935a9, reflected, initial value 0,
 * no final xor). crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca. */
#ifndef CAIRN_UTIL_CRC64_H
#define CAIRN_UTIL_CRC64_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of p[0..n) continued from crc (0 to start). */
uint64_t crc64(uint64_t crc, const void *p, size_t n);

#endif
