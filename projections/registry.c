/*
 * registry.c — the list of appliers, in the order they run for each event. The domain
 * state runs first: every projection reads it (who is in a channel's audience, what a
 * message is), already updated for the current event. Then the catalog (user groups,
 * project and topic lists), then messages (per-channel counts the unread seeds use), then
 * unread (whose counters tracking and dashboard read), then the screens' read models.
 */
#include "proj.h"
#include "projections.h"

int tl_projections_register(tl_log *log) {
    int (*const steps[])(tl_log *) = {tl_state_register,     tlp_catalog_register,   tlp_messages_register,
                                      tlp_unread_register,   tlp_tracking_register,  tlp_dashboard_register,
                                      tlp_history_register};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc = steps[i](log);
        if (rc) return rc;
    }
    return 0;
}
