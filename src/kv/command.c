#include "kv/command.h"

#include <string.h>

static void cmd__put_u16(char *p, uint16_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)(v >> 8);
}

static void cmd__put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}

static void cmd__put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}

static uint32_t cmd__get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint64_t cmd__get_u64(const char *p)
{
    return (uint64_t)cmd__get_u32(p) | (uint64_t)cmd__get_u32(p + 4) << 32;
}

size_t kv_command_encoded_size(const kv_command *cmd)
{
    size_t n = KV_COMMAND_HEADER_BYTES;
    for (uint32_t i = 0; i < cmd->nargs; i++) n += 4 + cmd->args[i].len;
    return (n + 7) & ~(size_t)7;
}

void kv_command_encode_to(const kv_command *cmd, char *p)
{
    const char *start = p;
    p[0] = KV_COMMAND_VERSION;
    p[1] = (char)cmd->op;
    cmd__put_u16(p + 2, cmd->flags);
    cmd__put_u32(p + 4, cmd->nargs);
    cmd__put_u64(p + 8, (uint64_t)cmd->now_ms);
    cmd__put_u64(p + 16, (uint64_t)cmd->expire_ms);
    cmd__put_u64(p + 24, (uint64_t)cmd->a);
    cmd__put_u64(p + 32, (uint64_t)cmd->b);
    cmd__put_u64(p + 40, cmd->origin);
    cmd__put_u64(p + 48, cmd->seq);
    p += KV_COMMAND_HEADER_BYTES;
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        cmd__put_u32(p, (uint32_t)cmd->args[i].len);
        if (cmd->args[i].len) memcpy(p + 4, cmd->args[i].ptr, cmd->args[i].len);
        p += 4 + cmd->args[i].len;
    }
    size_t used = (size_t)(p - start), total = kv_command_encoded_size(cmd);
    if (total > used) memset(p, 0, total - used);
}

void kv_command_encode(const kv_command *cmd, buf *out)
{
    size_t n = kv_command_encoded_size(cmd);
    buf_reserve(out, n);
    kv_command_encode_to(cmd, out->data + out->len);
    out->len += n;
    out->data[out->len] = '\0';
}

int kv_command_decode(const char *data, size_t len, kv_command *cmd, kv_slice *args_space,
                      uint32_t args_cap, uint32_t *args_needed, const char **err)
{
    if (len < KV_COMMAND_HEADER_BYTES) {
        *err = "command shorter than its header";
        return -1;
    }
    if ((unsigned char)data[0] != KV_COMMAND_VERSION) {
        *err = "unknown command version";
        return -1;
    }
    memset(cmd, 0, sizeof(*cmd));
    cmd->op = (uint8_t)data[1];
    if (cmd->op == 0 || cmd->op >= KV_OP_MAX_) {
        *err = "unknown command op";
        return -1;
    }
    cmd->flags = (uint16_t)((unsigned char)data[2] | (unsigned char)data[3] << 8);
    if (cmd->flags & ~KV_FLAG_ALL_) {
        *err = "unknown command flags";
        return -1;
    }
    cmd->nargs = cmd__get_u32(data + 4);
    cmd->now_ms = (int64_t)cmd__get_u64(data + 8);
    cmd->expire_ms = (int64_t)cmd__get_u64(data + 16);
    cmd->a = (int64_t)cmd__get_u64(data + 24);
    cmd->b = (int64_t)cmd__get_u64(data + 32);
    cmd->origin = cmd__get_u64(data + 40);
    cmd->seq = cmd__get_u64(data + 48);
    /* each arg needs at least its 4-byte length */
    if (cmd->nargs > KV_COMMAND_MAX_ARGS || cmd->nargs > (len - KV_COMMAND_HEADER_BYTES) / 4) {
        *err = "command argument count past the end";
        return -1;
    }
    if (cmd->nargs > args_cap) {
        *args_needed = cmd->nargs;
        return -2;
    }
    size_t pos = KV_COMMAND_HEADER_BYTES;
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        if (len - pos < 4) {
            *err = "command argument length past the end";
            return -1;
        }
        uint32_t n = cmd__get_u32(data + pos);
        pos += 4;
        if (n > len - pos) {
            *err = "command argument past the end";
            return -1;
        }
        args_space[i].ptr = data + pos;
        args_space[i].len = n;
        pos += n;
    }
    /* only zero padding up to the next multiple of 8 may follow */
    if (len % 8 != 0 || len - pos >= 8) {
        *err = "trailing bytes after command";
        return -1;
    }
    for (; pos < len; pos++) {
        if (data[pos] != 0) {
            *err = "non-zero padding after command";
            return -1;
        }
    }
    cmd->args = args_space;
    return 0;
}

const char *kv_op_name(int op)
{
    static const char *names[] = {"?",
                                  "put",
                                  "del",
                                  "mset",
                                  "incr",
                                  "incrfloat",
                                  "append",
                                  "setrange",
                                  "expire",
                                  "persist",
                                  "getex",
                                  "rename",
                                  "flush",
                                  "expire_keys",
                                  "noop",
                                  "member",
                                  "hset",
                                  "hdel",
                                  "hincr",
                                  "hincrfloat",
                                  "lpush",
                                  "lpop",
                                  "lset",
                                  "lrem",
                                  "ltrim",
                                  "linsert",
                                  "lmove",
                                  "lmpop",
                                  "sadd",
                                  "srem",
                                  "spop",
                                  "smove",
                                  "sstore",
                                  "zadd",
                                  "zrem",
                                  "zpop",
                                  "zremrangebyrank",
                                  "zremrangebyscore",
                                  "zremrangebylex",
                                  "zstore",
                                  "zmpop",
                                  "zrangestore",
                                  "setbit",
                                  "bitop",
                                  "bitfield",
                                  "pfadd",
                                  "pfmerge",
                                  "geostore",
                                  "copy",
                                  "sortstore",
                                  "restore",
                                  "config",
                                  "exec",
                                  "publish",
                                  "xadd",
                                  "xdel",
                                  "xtrim",
                                  "function_load",
                                  "function_delete",
                                  "function_flush",
                                  "xgroup",
                                  "xreadgroup",
                                  "xack",
                                  "xclaim",
                                  "xautoclaim",
                                  "function_restore",
                                  "xsetid"};
    if (op <= 0 || op >= KV_OP_MAX_) return "?";
    return names[op];
}
