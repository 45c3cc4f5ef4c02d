/*
 * ujv — a read-only JSON tree of one user, built from the element scanner's
 * minified bytes (already checked for syntax, UTF-8 and depth) without a
 * malloc per node: nodes live in one growable array and strings (unescaped,
 * NUL-terminated) in one arena, both reused from user to user. It replaces
 * json-c's object building on the validation path, which was most of the
 * time spent per user (see bench/README.md).
 *
 * Every node knows its byte span in the minified element, so a policy
 * rewrite (strip a hash, strip "auth0|") splices bytes and leaves the rest of
 * the user byte for byte as written.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ujv_type {
	UJV_NULL = 0,
	UJV_BOOL,
	UJV_INT,     /* integer literal that fits int64 */
	UJV_DOUBLE,  /* any other number */
	UJV_STRING,
	UJV_ARRAY,
	UJV_OBJECT,
};

struct ujv {
	uint8_t type;
	bool b;
	uint32_t n;        /* members / elements */
	uint32_t first;    /* first child's node index, 0 = none */
	uint32_t next;     /* next sibling's node index, 0 = none */
	uint32_t mstart;   /* member: offset of its key's opening quote; else = start */
	uint32_t start;    /* value span [start, end) in the minified bytes */
	uint32_t end;
	uint32_t key;      /* member: arena offset of its key */
	uint32_t str;      /* string: arena offset of the value; number: of its text */
	uint32_t len;      /* string: bytes of the unescaped value */
	int64_t i;
};

struct ujv_doc {
	struct ujv *nodes;  /* nodes[0] is unused (0 = none); the root is nodes[1] */
	uint32_t n, cap;
	char *arena;
	size_t arena_len, arena_cap;
	const char *src;   /* the minified element */
	size_t src_len;
};

void ujv_doc_init(struct ujv_doc *d);
void ujv_doc_done(struct ujv_doc *d);

/* Parses a minified element the scanner accepted. 0, -EBADMSG when it is
 * not one (never for scanner output), -ENOMEM. */
int ujv_parse(struct ujv_doc *d, const char *src, size_t len);

static inline const struct ujv *ujv_root(const struct ujv_doc *d)
{
	return &d->nodes[1];
}

static inline const struct ujv *ujv_child(const struct ujv_doc *d, const struct ujv *v)
{
	return v->first ? &d->nodes[v->first] : NULL;
}

static inline const struct ujv *ujv_next(const struct ujv_doc *d, const struct ujv *v)
{
	return v->next ? &d->nodes[v->next] : NULL;
}

static inline const char *ujv_key(const struct ujv_doc *d, const struct ujv *member)
{
	return d->arena + member->key;
}

/* String value (NUL-terminated) or number text. */
static inline const char *ujv_str(const struct ujv_doc *d, const struct ujv *v)
{
	return d->arena + v->str;
}

/* The member of object o named key (the last one when repeated), or NULL. */
const struct ujv *ujv_get(const struct ujv_doc *d, const struct ujv *o, const char *key);

/* Element i of array a, or NULL. */
const struct ujv *ujv_idx(const struct ujv_doc *d, const struct ujv *a, uint32_t i);

#define ujv_foreach(d, obj, m) \
	for (const struct ujv *m = ujv_child((d), (obj)); m; m = ujv_next((d), m))
