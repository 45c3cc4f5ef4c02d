/* recover — takes chunks over from the store: at start, what the last run
 * left (submitted jobs polled again, never resubmitted; chunks left in
 * submitting resubmitted and flagged so duplicates count as assumed), and
 * while running, imports the intake queued since (see pipeline.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon/log.h"
#include "queue/pipeline_int.h"
#include "queue/store.h"

struct pimport *pimport_find(struct pipeline *p, const char *id)
{
	for (struct pimport *imp = p->imports; imp; imp = imp->next)
		if (strcmp(imp->id, id) == 0)
			return imp;
	return NULL;
}

void pimport_free(struct pimport *imp)
{
	struct pipeline *p = imp->p;
	while (imp->chunks) {
		struct pchunk *c = imp->chunks;
		imp->chunks = c->next;
		if (c->call)
			a0_call_cancel(c->call);
		imp->refs--;
		free(c);
	}
	if (imp->simp)
		sched_import_remove(imp->simp);
	for (struct pimport **pp = &p->imports; *pp; pp = &(*pp)->next)
		if (*pp == imp) {
			*pp = imp->next;
			break;
		}
	free(imp);
}

static bool stopped_state(const char *state)
{
	return strcmp(state, "failed") == 0 || strcmp(state, "cancelling") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

static struct pimport *pimport_load(struct pipeline *p, sqlite3 *db, const char *id)
{
	sqlite3_stmt *st = NULL;
	struct pimport *imp = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT seq, tenant, connection_id, upsert, send_completion_email, state "
			       "FROM imports WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	const char *tenant = (const char *)sqlite3_column_text(st, 1);
	struct ptenant *t = tenant ? pipeline_tenant(p, tenant) : NULL;
	if (!t) {
		/* Without a configured client its chunks wait in the store. */
		goto out;
	}
	imp = calloc(1, sizeof(*imp));
	if (!imp)
		goto out;
	imp->p = p;
	imp->t = t;
	snprintf(imp->id, sizeof(imp->id), "%s", id);
	imp->seq = sqlite3_column_int64(st, 0);
	snprintf(imp->connection_id, sizeof(imp->connection_id), "%s",
		 (const char *)sqlite3_column_text(st, 2));
	imp->upsert = sqlite3_column_int(st, 3) != 0;
	imp->send_completion_email = sqlite3_column_int(st, 4) != 0;
	imp->stopped = stopped_state((const char *)sqlite3_column_text(st, 5));
	if (chunk_next_no(db, id, &imp->next_no) < 0 || sched_import_add(t->st, imp->seq, &imp->simp) < 0) {
		free(imp);
		imp = NULL;
		goto out;
	}
	imp->next = p->imports;
	p->imports = imp;
out:
	sqlite3_finalize(st);
	return imp;
}

/* A split interrupted between its commit and the rename of the kept users'
 * file: the store is right, the file is brought in step before any submit. */
static void split_settle_at_start(struct pipeline *p, struct pimport *imp, int64_t no, int64_t bytes)
{
	char path[4096];
	if (chunk_file_path(p->state_dir, imp->id, no, path, sizeof(path)) < 0)
		return;
	int r = chunk_split_settle(path, bytes);
	if (r < 0)
		log_error("queue", "chunk %s-%" PRId64 ": cannot complete its split: %s", imp->id, no,
			  strerror(-r));
	else if (r == 1)
		log_info("queue", "chunk %s-%" PRId64 ": split completed (the kept users' file put in place)",
			 imp->id, no);
}

struct resubmit_marks {
	char import_id[IMPORT_ID_LEN + 1];
	int64_t *nos;
	size_t n;
};

static int marks_fn(struct sqlite3 *db, void *ctx)
{
	struct resubmit_marks *m = ctx;
	for (size_t i = 0; i < m->n; i++) {
		int r = chunk_mark_resubmitted_tx(db, m->import_id, m->nos[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void marks_done(int status, void *ctx)
{
	struct resubmit_marks *m = ctx;
	if (status < 0)
		log_error("queue", "import %s: cannot flag resubmitted chunks: %s", m->import_id,
			  strerror(-status));
	free(m->nos);
	free(m);
}

/* Loads the chunks of `imp` in queued/submitting/submitted that it does not
 * hold yet. Returns how many were added. */
static int import_chunks_load(struct pipeline *p, sqlite3 *db, struct pimport *imp, bool at_start,
			      bool resubmit_unknown)
{
	sqlite3_stmt *st = NULL;
	int added = 0;
	int64_t now = pipeline_now_ms();
	/* Chunks held: a bitmap by chunk number. */
	int64_t maxno = -1;
	for (struct pchunk *c = imp->chunks; c; c = c->next)
		if (c->chunk_no > maxno)
			maxno = c->chunk_no;
	uint8_t *held = calloc((size_t)(maxno + 1) / 8 + 1, 1);
	if (!held)
		return -ENOMEM;
	for (struct pchunk *c = imp->chunks; c; c = c->next)
		held[c->chunk_no / 8] |= (uint8_t)(1u << (c->chunk_no % 8));
	struct resubmit_marks *marks = NULL;

	if (sqlite3_prepare_v2(db,
			       "SELECT chunk_no, state, users, job_id, resubmitted, submitted_at, bytes "
			       "FROM chunks WHERE import_id = ?1 AND state IN "
			       "('queued','submitting','submitted') ORDER BY chunk_no",
			       -1, &st, NULL) != SQLITE_OK) {
		free(held);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, imp->id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t no = sqlite3_column_int64(st, 0);
		if (no <= maxno && (held[no / 8] & (1u << (no % 8))))
			continue;
		if (at_start && strcmp((const char *)sqlite3_column_text(st, 1), "submitted") != 0)
			split_settle_at_start(p, imp, no, sqlite3_column_int64(st, 6));
		const char *state = (const char *)sqlite3_column_text(st, 1);
		/* A stopped import submits nothing more, but while cancelling or
		 * failed it still resubmits the chunks that may be at Auth0
		 * already: left submitting, or queued after a request whose fate
		 * is unknown (the cancel or failure keeps only those queued). */
		if (imp->stopped && strcmp(state, "submitted") != 0 && !resubmit_unknown)
			continue;
		struct pchunk *c = calloc(1, sizeof(*c));
		if (!c)
			break;
		c->p = p;
		c->imp = imp;
		c->chunk_no = no;
		c->users = (uint32_t)sqlite3_column_int64(st, 2);
		c->resubmitted = sqlite3_column_int(st, 4) != 0;
		int r;
		if (strcmp(state, "submitted") == 0) {
			const char *job = (const char *)sqlite3_column_text(st, 3);
			snprintf(c->job_id, sizeof(c->job_id), "%s", job ? job : "");
			int64_t sub = sqlite3_column_int64(st, 5) * 1000;
			c->submitted_at_ms = sub;
			r = sched_item_active(imp->simp, (uint32_t)no, c->users, sub ? sub : now, now, c,
					      &c->item);
			log_info("queue", "chunk %s-%" PRId64 ": job %s at Auth0, following it", imp->id,
				 no, c->job_id);
		} else {
			if (strcmp(state, "submitting") == 0) {
				/* It may or may not have reached Auth0. */
				c->resubmitted = true;
				if (!marks)
					marks = calloc(1, sizeof(*marks));
				if (marks) {
					int64_t *nos = realloc(marks->nos, (marks->n + 1) * sizeof(*nos));
					if (nos) {
						marks->nos = nos;
						nos[marks->n++] = no;
					}
				}
				log_info("queue", "chunk %s-%" PRId64 ": left submitting, resubmitting it%s",
					 imp->id, no, at_start ? "" : " (found while running)");
			}
			r = sched_item_queue(imp->simp, (uint32_t)no, c->users, c, &c->item);
		}
		if (r < 0) {
			free(c);
			break;
		}
		c->next = imp->chunks;
		imp->chunks = c;
		imp->nchunks++;
		imp->refs++;
		added++;
	}
	sqlite3_finalize(st);
	free(held);
	if (marks) {
		snprintf(marks->import_id, sizeof(marks->import_id), "%s", imp->id);
		if (store_write(p->store, marks_fn, marks, marks_done) < 0) {
			free(marks->nos);
			free(marks);
		}
	}
	return added;
}

static void drop_dead(void *user, void *arg)
{
	(void)arg;
	struct pchunk *c = user;
	c->item = NULL;
	pchunk_end(c);
}

int recover_load(struct pipeline *p, bool at_start)
{
	sqlite3 *db = store_reader(p->store);
	sqlite3_stmt *st = NULL;
	int total = 0;
	for (struct pimport *imp = p->imports; imp; imp = imp->next)
		imp->seen = false;
	/* Every import with a chunk still to submit or follow, and how many. */
	if (sqlite3_prepare_v2(db,
			       "SELECT c.import_id, count(*), i.state FROM chunks c "
			       "JOIN imports i ON i.id = c.import_id "
			       "WHERE c.state IN ('queued','submitting','submitted') "
			       "GROUP BY c.import_id ORDER BY i.seq",
			       -1, &st, NULL) != SQLITE_OK) {
		log_error("queue", "cannot read the chunks to follow: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		int64_t count = sqlite3_column_int64(st, 1);
		const char *state = (const char *)sqlite3_column_text(st, 2);
		struct pimport *imp = pimport_find(p, id);
		if (!imp) {
			imp = pimport_load(p, db, id);
			if (!imp)
				continue;
		}
		imp->seen = true;
		if (!imp->stopped && stopped_state(state)) {
			imp->stopped = true;
			sched_import_drop_queued(imp->simp, drop_dead, NULL);
		} else if (imp->stopped && !stopped_state(state)) {
			imp->stopped = false; /* an operator retry queued it again */
		}
		if ((int64_t)imp->nchunks < count) {
			int n = import_chunks_load(p, db, imp, at_start,
						   strcmp(state, "cancelling") == 0 ||
						   strcmp(state, "failed") == 0);
			if (n > 0)
				total += n;
		}
	}
	sqlite3_finalize(st);
	/* Imports with nothing left to do in the store: forget those that hold
	 * nothing either. */
	struct pimport *imp = p->imports;
	while (imp) {
		struct pimport *next = imp->next;
		if (!imp->seen && !imp->chunks && imp->refs == 0)
			pimport_free(imp);
		imp = next;
	}
	if (at_start && total > 0)
		log_info("queue", "took over %d chunk%s from the store", total, total == 1 ? "" : "s");
	return total;
}
