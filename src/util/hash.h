/* hash: a seeded 64-bit hash for hash tables, and CRC-32C for checksums.
 *
 * The table hash is keyed by a random per-process seed so that a client
 * choosing keys cannot force every key into one bucket (hash flooding). The
 * checksum is CRC-32C (Castagnoli), stable across processes and versions,
 * used to detect torn or corrupt snapshot files. */
#ifndef CAIRN_UTIL_HASH_H
#define CAIRN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *p, size_t n, uint64_t seed);
/* Uses the CPU's CRC32 instruction where it has one (x86-64 SSE4.2,
 * checked at run time), else crc32c_update_portable. */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t n);
/* The table-driven version: the same results on any CPU. */
uint32_t crc32c_update_portable(uint32_t crc, const void *p, size_t n);

#endif
