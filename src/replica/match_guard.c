#include "replica/match_guard.h"

#include <stddef.h>

#include "obs/log.h"

/* Guards by io: raft_io's send gets only the io. Few (one per replica). */
static match_guard *guards;

static match_guard *guard_of(struct raft_io *io)
{
    match_guard *g = guards;
    while (g && g->io != io) g = g->next;
    return g;
}

static int guard__send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *msg,
                       raft_io_send_cb cb)
{
    match_guard *g = guard_of(io);
    /* only a rejection in the leader's own term: one in a higher term
     * tells a stale leader to step down, and must stay a rejection */
    if (g->receiving && g->in_snapshot && msg->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
        msg->server_id == g->leader && msg->append_entries_result.rejected == g->prev &&
        msg->append_entries_result.term == g->term) {
        struct raft_message fixed = *msg;
        fixed.append_entries_result.rejected = 0;
        fixed.append_entries_result.last_log_index = g->in_snapshot;
        if (g->unrejected_total++ == 0)
            LOG_INFO("the leader asked about an index inside this node's snapshot: answering "
                     "that the snapshot matches",
                     LF_I("prev_log_index", g->prev), LF_I("snapshot_index", g->in_snapshot));
        return g->send(io, req, &fixed, cb);
    }
    if (g->receiving && msg->type == RAFT_IO_APPEND_ENTRIES_RESULT && msg->server_id == g->leader &&
        msg->append_entries_result.rejected == 0 &&
        msg->append_entries_result.last_log_index > g->checked) {
        /* raft_io implementations encode or copy the message in send */
        struct raft_message fixed = *msg;
        fixed.append_entries_result.last_log_index = g->checked;
        if (g->lowered_total++ == 0)
            LOG_INFO("answering the leader with the entries it checked, not the whole log",
                     LF_I("claimed", msg->append_entries_result.last_log_index),
                     LF_I("checked", g->checked));
        return g->send(io, req, &fixed, cb);
    }
    return g->send(io, req, msg, cb);
}

void match_guard_install(match_guard *g, struct raft_io *io)
{
    g->io = io;
    g->send = io->send;
    g->receiving = false;
    g->lowered_total = 0;
    g->unrejected_total = 0;
    io->send = guard__send;
    g->next = guards;
    guards = g;
}

void match_guard_begin(match_guard *g, const struct raft_message *msg, const struct raft *raft)
{
    g->receiving = false;
    g->in_snapshot = 0;
    if (!g->io) return;
    if (msg->type == RAFT_IO_APPEND_ENTRIES) {
        g->prev = msg->append_entries.prev_log_index;
        g->term = msg->append_entries.term;
        g->checked = g->prev + msg->append_entries.n_entries;
        /* an index no longer in the log (entries up to offset are gone)
         * and covered by the snapshot: committed, so it matches */
        if (raft && g->prev != 0 && g->prev <= raft->log.offset &&
            g->prev <= raft->log.snapshot.last_index)
            g->in_snapshot = raft->log.snapshot.last_index;
    } else if (msg->type == RAFT_IO_INSTALL_SNAPSHOT) {
        g->checked = msg->install_snapshot.last_index;
    } else {
        return;
    }
    g->leader = msg->server_id;
    g->receiving = true;
}

void match_guard_end(match_guard *g)
{
    g->receiving = false;
}

void match_guard_remove(match_guard *g)
{
    for (match_guard **p = &guards; *p; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    if (g->io && g->io->send == guard__send) g->io->send = g->send;
    g->io = NULL;
}
