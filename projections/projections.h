/*
 * projections.h — the read models' registration, shared by projections/ files only.
 */
#ifndef TL_PROJECTIONS_H
#define TL_PROJECTIONS_H

#include "log.h"

/** Register the domain state and every projection as appliers of log. */
int tl_projections_register(tl_log *log);

#endif
