/*
 * registry.c — the list of appliers, in the order they run for each event. The domain
 * state runs first: projections may read it (who is in a channel's audience).
 */
#include "projections.h"
#include "state.h"

int tl_projections_register(tl_log *log) {
    int rc = tl_state_register(log);
    return rc;
}
