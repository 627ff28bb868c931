#include "replica/snapshot_handoff.h"

#include <stdio.h>
#include <string.h>

#include "obs/log.h"

void snapshot_handoff_init(snapshot_handoff *h, struct raft *raft, struct raft_io *io)
{
    memset(h, 0, sizeof(*h));
    h->raft = raft;
    h->io = io;
}

bool snapshot_handoff_busy(const struct raft *raft)
{
    /* libraft 0.15, replicationInstallSnapshot: a pending snapshot of our
     * own, or an install still being written */
    return raft->snapshot.pending.term != 0 || raft->snapshot.put.data != NULL;
}

void snapshot_handoff_started(snapshot_handoff *h, raft_io_recv_cb raft_recv)
{
    h->raft_recv = raft_recv;
}

static void handoff__free_held(snapshot_handoff *h)
{
    if (!h->held) return;
    h->held = false;
    raft_free(h->msg.install_snapshot.data.base);
    raft_configuration_close(&h->msg.install_snapshot.conf);
    memset(&h->msg, 0, sizeof(h->msg));
}

void snapshot_handoff_recv(snapshot_handoff *h, struct raft_message *msg)
{
    if (msg->type != RAFT_IO_INSTALL_SNAPSHOT || !snapshot_handoff_busy(h->raft)) {
        h->raft_recv(h->io, msg);
        return;
    }
    /* a newer InstallSnapshot (the leader's retry) replaces the older one:
     * only the latest can still be wanted */
    if (h->held) h->replaced_total++;
    handoff__free_held(h);
    h->msg = *msg;
    snprintf(h->address, sizeof(h->address), "%s", msg->server_address ? msg->server_address : "");
    h->msg.server_address = h->address;
    h->held = true;
    h->held_total++;
    LOG_INFO("leader snapshot held until our own snapshot is done", LF_I("leader", msg->server_id),
             LF_I("snapshot_index", msg->install_snapshot.last_index),
             LF_I("own_snapshot_index", h->raft->snapshot.pending.index));
}

void snapshot_handoff_poll(snapshot_handoff *h)
{
    if (!h->held || snapshot_handoff_busy(h->raft) || !h->raft_recv) return;
    struct raft_message msg = h->msg;
    h->held = false;
    memset(&h->msg, 0, sizeof(h->msg));
    h->delivered_total++;
    LOG_INFO("leader snapshot handed to raft", LF_I("leader", msg.server_id),
             LF_I("snapshot_index", msg.install_snapshot.last_index));
    /* msg.server_address points at h->address, which stays until the next
     * held message: libraft copies what it keeps */
    h->raft_recv(h->io, &msg);
}

void snapshot_handoff_close(snapshot_handoff *h)
{
    handoff__free_held(h);
}
