/* sdnotify: the node's side of systemd's Type=notify protocol.
 *
 * READY=1 once the node has loaded its state and listens (it serves
 * /healthz, stale reads and forwarding from then on; whether it can serve
 * linearizable requests is /readyz, which STATUS= repeats). Not "ready"
 * in the /readyz sense on purpose: a node of a cluster that is being
 * bootstrapped cannot be ready before its peers start, and a unit that
 * waited for that would block `systemctl start` on the first node.
 * WATCHDOG=1 is sent from the event loop at half WatchdogSec, so a loop
 * that stalls is restarted by systemd. Outside systemd (no NOTIFY_SOCKET)
 * every call does nothing. Loop thread only. */
#ifndef CAIRN_UTIL_SDNOTIFY_H
#define CAIRN_UTIL_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sdnotify {
    uv_timer_t watchdog;
    bool watchdog_on;
    uint64_t interval_ms;
} sdnotify;

/* READY=1 with a STATUS= line; starts feeding the watchdog if the unit
 * has one. */
void sdnotify_ready(sdnotify *n, uv_loop_t *loop, const char *status);
/* STATUS=text */
void sdnotify_status(const char *text);
/* STOPPING=1; stops the watchdog timer (closing its handle). */
void sdnotify_stopping(sdnotify *n);

#endif
