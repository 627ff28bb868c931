#include "util/sdnotify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

static void sdnotify__feed(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

void sdnotify_ready(sdnotify *n, uv_loop_t *loop, const char *status)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    sd_notify(0, msg);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    n->interval_ms = usec / 2000 ? usec / 2000 : 1;
    uv_timer_init(loop, &n->watchdog);
    uv_timer_start(&n->watchdog, sdnotify__feed, 0, n->interval_ms);
    n->watchdog_on = true;
}

void sdnotify_status(const char *text)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "STATUS=%s", text);
    sd_notify(0, msg);
}

void sdnotify_stopping(sdnotify *n)
{
    sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
    if (n->watchdog_on) {
        n->watchdog_on = false;
        uv_timer_stop(&n->watchdog);
        uv_close((uv_handle_t *)&n->watchdog, NULL);
    }
}
