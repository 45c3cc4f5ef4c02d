/*
 * admin — the emulator's control surface under /__sandbox/, for tests and
 * rehearsals: stats, users (with insert/update counts), jobs, the request
 * log, faults (probabilities and scripts), token expiry and revocation,
 * seeding and reset. Never rate-limited or faulted.
 */
#pragma once

#include "sandbox/handlers.h"

void admin_handle(struct tenant *t, const struct request *in, struct reply *out);
