/*
 * handlers — route tables of the endpoints built into the server
 * (h_status.c: /healthz, /readyz, /v1/status; h_metrics.c: /metrics), and
 * the server internals they read. Their userdata is the struct api_server.
 * Not for other modules: they register their own tables with
 * api_server_add_routes().
 */
#pragma once

#include "api/server.h"

extern const struct api_route h_status_routes[];
extern const size_t h_status_n_routes;
extern const struct api_route h_metrics_routes[];
extern const size_t h_metrics_n_routes;

uint64_t api_server_started_at_ms(const struct api_server *s);
struct store *api_server_store(const struct api_server *s);
void api_server_status_contribute(struct api_server *s, struct json_object *status);
