/* responder — scripted HTTP server for unit tests (see responder.h). */
#include "tests/unit/auth0/responder.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESPONDER_MAX_QUEUE 64
#define RESPONDER_MAX_SEEN 256
#define RESPONDER_MAX_BODY (1024u * 1024u)

struct responder {
	struct MHD_Daemon *mhd;
	pthread_mutex_t mu;
	struct responder_reply queue[RESPONDER_MAX_QUEUE];
	size_t qhead, qlen;
	struct responder_reply dflt;
	struct responder_seen seen[RESPONDER_MAX_SEEN];
	size_t nseen;
};

struct conn {
	struct responder_seen s;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version,
			       const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct responder *r = cls;
	struct conn *cn = *con_cls;
	(void)version;
	if (!cn) {
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return MHD_NO;
		snprintf(cn->s.method, sizeof(cn->s.method), "%s", method);
		snprintf(cn->s.url, sizeof(cn->s.url), "%s", url);
		const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		if (a)
			snprintf(cn->s.authorization, sizeof(cn->s.authorization), "%s", a);
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (ct)
			snprintf(cn->s.content_type, sizeof(cn->s.content_type), "%s", ct);
		cn->s.body = calloc(1, RESPONDER_MAX_BODY + 1);
		*con_cls = cn;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		if (cn->s.body && cn->s.body_len < RESPONDER_MAX_BODY) {
			size_t k = n;
			if (cn->s.body_len + k > RESPONDER_MAX_BODY)
				k = RESPONDER_MAX_BODY - cn->s.body_len;
			memcpy(cn->s.body + cn->s.body_len, upload_data, k);
		}
		cn->s.body_len += n;
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct responder_reply rep;
	pthread_mutex_lock(&r->mu);
	if (r->qlen) {
		rep = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % RESPONDER_MAX_QUEUE;
		r->qlen--;
	} else {
		rep = r->dflt;
	}
	if (r->nseen < RESPONDER_MAX_SEEN) {
		r->seen[r->nseen++] = cn->s;
		cn->s.body = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	if (rep.delay_ms)
		sleep_ms(rep.delay_ms);
	if (rep.reset)
		return MHD_NO;
	const char *body = rep.body ? rep.body : "";
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
								    MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	for (int i = 0; i < RESPONDER_MAX_HEADERS && rep.headers[i]; i++) {
		char name[128];
		const char *colon = strchr(rep.headers[i], ':');
		if (!colon || (size_t)(colon - rep.headers[i]) >= sizeof(name))
			continue;
		memcpy(name, rep.headers[i], (size_t)(colon - rep.headers[i]));
		name[colon - rep.headers[i]] = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		MHD_add_response_header(resp, name, v);
	}
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)rep.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct conn *cn = *con_cls;
	if (cn) {
		free(cn->s.body);
		free(cn);
		*con_cls = NULL;
	}
}

int responder_start(struct responder **ret, unsigned *ret_port)
{
	struct responder *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	pthread_mutex_init(&r->mu, NULL);
	r->dflt.status = 200;
	r->dflt.body = "{}";
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				  MHD_USE_ERROR_LOG,
				  0, NULL, NULL, handler, r, MHD_OPTION_NOTIFY_COMPLETED, completed, r,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!r->mhd) {
		free(r);
		return -1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*ret_port = di ? di->port : 0;
	*ret = r;
	return 0;
}

void responder_stop(struct responder *r)
{
	if (!r)
		return;
	MHD_stop_daemon(r->mhd);
	for (size_t i = 0; i < r->nseen; i++)
		free(r->seen[i].body);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void responder_push(struct responder *r, const struct responder_reply *reply)
{
	pthread_mutex_lock(&r->mu);
	if (r->qlen < RESPONDER_MAX_QUEUE) {
		r->queue[(r->qhead + r->qlen) % RESPONDER_MAX_QUEUE] = *reply;
		r->qlen++;
	}
	pthread_mutex_unlock(&r->mu);
}

void responder_set_default(struct responder *r, const struct responder_reply *reply)
{
	pthread_mutex_lock(&r->mu);
	r->dflt = *reply;
	pthread_mutex_unlock(&r->mu);
}

size_t responder_count(struct responder *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->nseen;
	pthread_mutex_unlock(&r->mu);
	return n;
}

const struct responder_seen *responder_seen(struct responder *r, size_t i)
{
	pthread_mutex_lock(&r->mu);
	const struct responder_seen *s = i < r->nseen ? &r->seen[i] : NULL;
	pthread_mutex_unlock(&r->mu);
	return s;
}
