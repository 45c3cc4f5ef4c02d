/* CSV users files: see csv.h. */
#include "daemon/users/csv.h"
#include "daemon/users/hint.h"
#include "daemon/users/schema.h"
#include "daemon/users/users.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dots in a name: the user object is depth 1, so a value named by k
 * segments sits at depth k + 1 (at most USERS_DEPTH_MAX). */
#define CSV_SEGMENTS_MAX (USERS_DEPTH_MAX - 1u)
#define CSV_OUT_MAX      (USERS_ELEMENT_MAX + 1u)

enum conv {
	CONV_STRING = 0,
	CONV_BOOL,
	CONV_INT,
	CONV_JSON,  /* a whole schema object or array: any JSON value, else a string */
	CONV_FREE,  /* inside metadata: a JSON array or object, else a string */
};

/* One header name segment: an object (col < 0) or a column (leaf). */
struct node {
	uint32_t name;      /* arena offset of the segment, NUL-terminated */
	uint32_t key;       /* arena offset of `"segment":` as JSON */
	uint32_t key_len;
	uint32_t child, last_child, next; /* node indices, 0 = none */
	int32_t col;
	uint8_t conv;
	uint8_t depth;      /* segments from the user: 1 for `email` */
};

struct csv {
	/* fields of the last row split: unquoted text back to back */
	char *text;
	size_t text_cap;
	uint32_t off[CSV_COLUMNS_MAX + 1], len[CSV_COLUMNS_MAX + 1], pos[CSV_COLUMNS_MAX + 1];
	size_t n_fields;    /* may exceed CSV_COLUMNS_MAX + 1 (only counted beyond) */
	size_t content_end;
	bool blank;
	/* header: nodes[1] is the user object */
	struct node *nodes;
	uint32_t n_nodes, nodes_cap;
	char *arena;
	size_t arena_len, arena_cap;
	size_t n_cols;
	/* the user as JSON */
	char *out;
	size_t out_len, out_cap;
};

static int grow(char **buf, size_t *cap, size_t need, size_t max)
{
	size_t n;
	char *p;

	if (need <= *cap)
		return 0;
	if (need > max)
		return -E2BIG;
	n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	if (n > max)
		n = max;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

int csv_new(struct csv **ret)
{
	struct csv *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*ret = c;
	return 0;
}

void csv_free(struct csv *c)
{
	if (!c)
		return;
	free(c->text);
	free(c->nodes);
	free(c->arena);
	free(c->out);
	free(c);
}

/* ---- rows ------------------------------------------------------------ */

enum field_end { FE_NEXT, FE_ROW, FE_MORE, FE_NONE };

/* At b[*pi], just after a field: another field follows (past the ','), the
 * row ends (past its line break), more bytes are needed, or none of these. */
static enum field_end field_end(const unsigned char *b, size_t len, int eof, size_t *pi,
                                struct csv_split *s)
{
	size_t i = *pi;

	if (i >= len) {
		if (!eof)
			return FE_MORE;
		s->content_end = i;
		return FE_ROW;
	}
	if (b[i] == ',') {
		*pi = i + 1;
		return FE_NEXT;
	}
	if (b[i] == '\n') {
		s->content_end = i;
		*pi = i + 1;
		s->newlines++;
		s->last_nl = i + 1;
		return FE_ROW;
	}
	if (b[i] == '\r') {
		if (i + 1 >= len) {
			if (!eof)
				return FE_MORE;
			s->content_end = i;
			*pi = i + 1;
			return FE_ROW;
		}
		if (b[i + 1] == '\n') {
			s->content_end = i;
			*pi = i + 2;
			s->newlines++;
			s->last_nl = i + 2;
			return FE_ROW;
		}
	}
	return FE_NONE;
}

enum scan_result csv_split_row(struct csv *c, const char *buf, size_t len, int eof,
                               struct csv_split *s)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t i = 0, o = 0;
	char *t;

#define SPLIT_ERR(at, msg) do { s->err = (at); s->why = (msg); s->error = -EBADMSG; \
		return SCAN_ERROR; } while (0)

	memset(s, 0, sizeof(*s));
	if (len > USERS_ELEMENT_MAX) {
		len = USERS_ELEMENT_MAX;
		eof = 0;
	}
	/* The unquoted text is never longer than the row. */
	if (grow(&c->text, &c->text_cap, len + 1, USERS_ELEMENT_MAX + 1) < 0) {
		s->why = "out of memory";
		s->error = -ENOMEM;
		return SCAN_ERROR;
	}
	t = c->text;
	c->n_fields = 0;
	c->blank = true;
	for (;;) {
		size_t f = c->n_fields, fo = o;
		enum field_end fe;

		if (f <= CSV_COLUMNS_MAX) {
			c->off[f] = (uint32_t)o;
			c->pos[f] = (uint32_t)i;
		}
		if (i < len && b[i] == '"') {
			size_t q = i++;
			for (;;) {
				if (i >= len) {
					if (!eof)
						return SCAN_MORE;
					SPLIT_ERR(q, "unexpected end of file: the quoted field that starts here is never closed");
				}
				unsigned char ch = b[i];
				if (ch == '"') {
					if (i + 1 >= len && !eof)
						return SCAN_MORE;
					if (i + 1 < len && b[i + 1] == '"') {
						t[o++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				if (ch >= 0x80) {
					int n = scan_utf8_seq(b + i, len - i);
					if (n < 0 && !eof)
						return SCAN_MORE;
					if (n <= 0)
						SPLIT_ERR(i, "invalid UTF-8");
					memcpy(t + o, b + i, (size_t)n);
					o += (size_t)n;
					i += (size_t)n;
					continue;
				}
				if (ch == 0)
					SPLIT_ERR(i, "a NUL byte (a CSV users file is UTF-8 text)");
				if (ch == '\n') {
					s->newlines++;
					s->last_nl = i + 1;
				}
				t[o++] = (char)ch;
				i++;
			}
			fe = field_end(b, len, eof, &i, s);
			if (fe == FE_MORE)
				return SCAN_MORE;
			if (fe == FE_NONE)
				SPLIT_ERR(i, "',' or the end of the line after a closing quote "
				             "(a quote inside a quoted field is written \"\")");
		} else {
			for (;;) {
				while (i < len) {
					unsigned char ch = b[i];
					if (ch == ',' || ch == '\n' || ch == '\r')
						break;
					if (ch >= 0x80) {
						int n = scan_utf8_seq(b + i, len - i);
						if (n < 0 && !eof)
							return SCAN_MORE;
						if (n <= 0)
							SPLIT_ERR(i, "invalid UTF-8");
						memcpy(t + o, b + i, (size_t)n);
						o += (size_t)n;
						i += (size_t)n;
						continue;
					}
					if (ch == 0)
						SPLIT_ERR(i, "a NUL byte (a CSV users file is UTF-8 text)");
					t[o++] = (char)ch;
					i++;
				}
				fe = field_end(b, len, eof, &i, s);
				if (fe == FE_MORE)
					return SCAN_MORE;
				if (fe != FE_NONE)
					break;
				t[o++] = '\r'; /* a lone CR is data */
				i++;
			}
		}
		if (f <= CSV_COLUMNS_MAX)
			c->len[f] = (uint32_t)(o - fo);
		if (o > fo)
			c->blank = false;
		c->n_fields++;
		if (fe == FE_ROW)
			break;
	}
#undef SPLIT_ERR
	t[o] = '\0';
	s->end = i;
	c->content_end = s->content_end;
	return SCAN_DONE;
}

size_t csv_fields(const struct csv *c)
{
	return c->n_fields;
}

bool csv_blank(const struct csv *c)
{
	return c->blank;
}

/* ---- header ---------------------------------------------------------- */

static int header_err(char *msg, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int header_err(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Appends bytes to the arena; the offset in *ret. */
static int arena_add(struct csv *c, const char *p, size_t n, uint32_t *ret)
{
	int err = grow(&c->arena, &c->arena_cap, c->arena_len + n, SIZE_MAX / 2);
	if (err < 0)
		return err;
	memcpy(c->arena + c->arena_len, p, n);
	*ret = (uint32_t)c->arena_len;
	c->arena_len += n;
	return 0;
}

/* JSON string of s[0..n) with the escapes JSON requires into out (room for
 * 6n + 2 bytes). Returns its length. */
static size_t json_escape(const char *s, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	out[o++] = '"';
	for (size_t k = 0; k < n; k++) {
		unsigned char ch = (unsigned char)s[k];
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			out[o++] = '\\';
			switch (ch) {
			case '\n': out[o++] = 'n'; break;
			case '\r': out[o++] = 'r'; break;
			case '\t': out[o++] = 't'; break;
			default:
				memcpy(out + o, "u00", 3);
				o += 3;
				out[o++] = hex[ch >> 4];
				out[o++] = hex[ch & 15];
			}
		} else
			out[o++] = (char)ch;
	}
	out[o++] = '"';
	return o;
}

static int node_add(struct csv *c, uint32_t parent, const char *seg, size_t n, int32_t col,
                    uint8_t conv, uint32_t *ret)
{
	char key[CSV_NAME_MAX * 6 + 4];
	struct node *nd;
	uint32_t id;
	int err;

	if (c->n_nodes == c->nodes_cap) {
		uint32_t cap = c->nodes_cap ? c->nodes_cap * 2 : 32;
		struct node *p = realloc(c->nodes, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->nodes = p;
		c->nodes_cap = cap;
	}
	id = c->n_nodes;
	nd = &c->nodes[id];
	memset(nd, 0, sizeof(*nd));
	nd->col = col;
	nd->conv = conv;
	nd->depth = (uint8_t)(c->nodes[parent].depth + 1);
	err = arena_add(c, seg, n, &nd->name);
	if (err >= 0) {
		uint32_t z;
		err = arena_add(c, "", 1, &z);
	}
	if (err < 0)
		return err;
	size_t kl = json_escape(seg, n, key);
	key[kl++] = ':';
	err = arena_add(c, key, kl, &nd->key);
	if (err < 0)
		return err;
	nd->key_len = (uint32_t)kl;
	c->n_nodes++;
	if (c->nodes[parent].last_child)
		c->nodes[c->nodes[parent].last_child].next = id;
	else
		c->nodes[parent].child = id;
	c->nodes[parent].last_child = id;
	*ret = id;
	return 0;
}

static uint32_t node_find(const struct csv *c, uint32_t parent, const char *seg, size_t n)
{
	for (uint32_t k = c->nodes[parent].child; k; k = c->nodes[k].next) {
		const char *name = c->arena + c->nodes[k].name;
		if (strncmp(name, seg, n) == 0 && name[n] == '\0')
			return k;
	}
	return 0;
}

static uint8_t conv_of(enum schema_kind kind)
{
	switch (kind) {
	case SCHEMA_BOOLEAN: return CONV_BOOL;
	case SCHEMA_INTEGER: return CONV_INT;
	case SCHEMA_OBJECT:
	case SCHEMA_ARRAY: return CONV_JSON;
	default: return CONV_STRING;
	}
}

/* Column col's name as written, for messages. */
static const char *name_of_col(const struct csv *c, size_t col, size_t *ret_len)
{
	*ret_len = c->len[col];
	return c->text + c->off[col];
}

static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
}

/* Does the first segment of some name fold to a user property? */
static bool header_known(const struct csv *c)
{
	for (size_t k = 0; k < c->n_fields && k < CSV_COLUMNS_MAX; k++) {
		const char *p = c->text + c->off[k];
		size_t n = c->len[k];
		char seg[65];
		trim(&p, &n);
		const char *dot = memchr(p, '.', n);
		if (dot)
			n = (size_t)(dot - p);
		if (n == 0 || n >= sizeof(seg))
			continue;
		memcpy(seg, p, n);
		seg[n] = '\0';
		for (size_t i = 0; i < schema_user.n; i++)
			if (hint_folded_equal(seg, schema_user.names[i]))
				return true;
	}
	return false;
}

/* Column k: walks (and adds) its segments. */
static int header_column(struct csv *c, size_t k, char *msg, size_t msg_size)
{
	const char *p = c->text + c->off[k];
	size_t n = c->len[k];
	const struct schema_table *table = &schema_user;
	bool freeform = false;
	uint32_t at = 1;
	unsigned depth = 0;

	trim(&p, &n);
	if (n == 0)
		return header_err(msg, msg_size, "column %zu of the header row has no name", k + 1);
	if (n > CSV_NAME_MAX)
		return header_err(msg, msg_size, "column %zu of the header row: a name longer than %u bytes",
		                  k + 1, CSV_NAME_MAX);
	const char *end = p + n;
	for (const char *seg = p; seg <= end;) {
		const char *dot = memchr(seg, '.', (size_t)(end - seg));
		size_t sl = dot ? (size_t)(dot - seg) : (size_t)(end - seg);
		bool last = !dot;
		uint8_t conv = CONV_STRING;

		if (sl == 0)
			return header_err(msg, msg_size,
			                  "column %zu of the header row (%.*s): an empty name between dots",
			                  k + 1, (int)n, p);
		if (++depth > CSV_SEGMENTS_MAX)
			return header_err(msg, msg_size,
			                  "column %zu of the header row: more than %u nested names",
			                  k + 1, CSV_SEGMENTS_MAX);
		/* What the schema says of this segment. */
		if (freeform) {
			conv = CONV_FREE;
		} else if (table) {
			char name[CSV_NAME_MAX + 1];
			memcpy(name, seg, sl);
			name[sl] = '\0';
			const struct schema_prop *prop = schema_find(table, name);
			if (!prop)
				table = NULL; /* unknown: a string; the validator names it */
			else if (last)
				conv = conv_of(prop->kind);
			else if (prop->kind == SCHEMA_OBJECT && prop->object)
				table = prop->object;
			else if (prop->kind == SCHEMA_OBJECT)
				freeform = true;
			else
				table = NULL; /* an object where the schema has a value: the validator says so */
		}
		uint32_t found = node_find(c, at, seg, sl);
		if (found && (last || c->nodes[found].col >= 0)) {
			/* Two columns for one value, or a value and an object. */
			uint32_t leaf = found;
			size_t ol;
			while (c->nodes[leaf].col < 0)
				leaf = c->nodes[leaf].child;
			int32_t other_col = c->nodes[leaf].col;
			const char *other = name_of_col(c, (size_t)other_col, &ol);
			trim(&other, &ol);
			if (last && c->nodes[found].col >= 0)
				return header_err(msg, msg_size,
				                  "column %zu of the header row repeats column %d (%.*s)",
				                  k + 1, other_col + 1, (int)n, p);
			return header_err(msg, msg_size,
			                  "column %zu of the header row (%.*s) clashes with column %d (%.*s): "
			                  "a property is either one value or an object of dotted names",
			                  k + 1, (int)n, p, other_col + 1, (int)ol, other);
		}
		if (found)
			at = found;
		else {
			int err = node_add(c, at, seg, sl, last ? (int32_t)k : -1, conv, &at);
			if (err < 0)
				return err;
		}
		if (last)
			break;
		seg = dot + 1;
	}
	return 0;
}

int csv_header(struct csv *c, size_t *ret_pos, char *msg, size_t msg_size)
{
	uint32_t root_name;
	int err;

	if (!header_known(c)) {
		/* A spreadsheet's other separators: say so. */
		msg[0] = '\0';
		if (c->n_fields == 1 && c->len[0] > 0) {
			const char *f = c->text + c->off[0];
			if (memchr(f, ';', c->len[0]))
				snprintf(msg, msg_size, "fields are separated by ',', the first row uses ';'");
			else if (memchr(f, '\t', c->len[0]))
				snprintf(msg, msg_size, "fields are separated by ',', the first row uses tabs");
		}
		return -ENOENT;
	}
	if (c->n_fields > CSV_COLUMNS_MAX) {
		*ret_pos = c->pos[CSV_COLUMNS_MAX];
		return header_err(msg, msg_size, "the header row has more than %u columns", CSV_COLUMNS_MAX);
	}
	c->n_nodes = 0;
	c->arena_len = 0;
	if (c->nodes_cap < 2) {
		struct node *p = realloc(c->nodes, 32 * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->nodes = p;
		c->nodes_cap = 32;
	}
	err = arena_add(c, "", 1, &root_name);
	if (err < 0)
		return err;
	memset(c->nodes, 0, 2 * sizeof(*c->nodes));
	c->nodes[1].col = -1;
	c->nodes[1].name = root_name;
	c->n_nodes = 2;
	for (size_t k = 0; k < c->n_fields; k++) {
		err = header_column(c, k, msg, msg_size);
		if (err < 0) {
			*ret_pos = c->pos[k];
			return err;
		}
	}
	c->n_cols = c->n_fields;
	return 0;
}

/* ---- rows as JSON users ---------------------------------------------- */

static int out_reserve(struct csv *c, size_t more)
{
	return grow(&c->out, &c->out_cap, c->out_len + more + 1, CSV_OUT_MAX);
}

static int out_put(struct csv *c, const char *p, size_t n)
{
	int err = out_reserve(c, n);
	if (err < 0)
		return err;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The cell as one JSON value when it is one; 1 written, 0 not JSON, < 0. */
static int put_json(struct csv *c, const char *p, size_t n, unsigned depth, bool containers_only)
{
	while (n && is_ws(*p)) {
		p++;
		n--;
	}
	while (n && is_ws(p[n - 1]))
		n--;
	if (n == 0 || (containers_only && *p != '[' && *p != '{'))
		return 0;
	int err = out_reserve(c, n); /* minified is never longer */
	if (err < 0)
		return err;
	struct scan s = {
		.out = c->out + c->out_len,
		.out_cap = c->out_cap - c->out_len - 1,
		.max_depth = USERS_DEPTH_MAX - depth,
	};
	if (scan_element(&s, p, n, 1) != SCAN_DONE || s.end != n)
		return 0;
	c->out_len += s.out_len;
	return 1;
}

static size_t json_escaped_len(const char *s, size_t n)
{
	size_t l = 2;
	for (size_t k = 0; k < n; k++) {
		unsigned char ch = (unsigned char)s[k];
		if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t')
			l += 2;
		else if (ch < 0x20)
			l += 6;
		else
			l++;
	}
	return l;
}

static int put_string(struct csv *c, const char *p, size_t n)
{
	/* Room for the worst case (6 bytes a byte) when the bound allows it,
	 * else for the exact length (one more pass). */
	size_t worst = n * 6 + 2;
	int err = c->out_len + worst < CSV_OUT_MAX ? out_reserve(c, worst)
	                                           : out_reserve(c, json_escaped_len(p, n));
	if (err < 0)
		return err;
	c->out_len += json_escape(p, n, c->out + c->out_len);
	return 0;
}

static bool ascii_ieq(const char *p, size_t n, const char *word)
{
	if (strlen(word) != n)
		return false;
	for (size_t k = 0; k < n; k++) {
		char ch = p[k];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != word[k])
			return false;
	}
	return true;
}

static int put_value(struct csv *c, const struct node *nd, const char *p, size_t n)
{
	int r;

	switch (nd->conv) {
	case CONV_BOOL:
		if (ascii_ieq(p, n, "true"))
			return out_put(c, "true", 4);
		if (ascii_ieq(p, n, "false"))
			return out_put(c, "false", 5);
		break;
	case CONV_INT: {
		size_t k = 0, d;
		bool neg = n > 0 && p[0] == '-';
		k = neg ? 1 : 0;
		d = k;
		while (d < n && p[d] >= '0' && p[d] <= '9')
			d++;
		if (d == n && n > k && n - k <= 18) {
			while (k + 1 < n && p[k] == '0')
				k++;
			if (neg && !(n - k == 1 && p[k] == '0')) {
				r = out_put(c, "-", 1);
				if (r < 0)
					return r;
			}
			return out_put(c, p + k, n - k);
		}
		break;
	}
	case CONV_JSON:
	case CONV_FREE:
		r = put_json(c, p, n, nd->depth, nd->conv == CONV_FREE);
		if (r != 0)
			return r < 0 ? r : 0;
		break;
	default:
		break;
	}
	return put_string(c, p, n);
}

/* The members of object node `obj` that have a value; *ret_n counts them. */
static int put_object(struct csv *c, uint32_t obj, size_t *ret_n)
{
	size_t members = 0;
	int err = out_put(c, "{", 1);

	for (uint32_t k = c->nodes[obj].child; k && err >= 0; k = c->nodes[k].next) {
		const struct node *nd = &c->nodes[k];
		size_t mark = c->out_len;
		if (nd->col >= 0 && c->len[nd->col] == 0)
			continue; /* an empty cell: the property is absent */
		if (members)
			err = out_put(c, ",", 1);
		if (err >= 0)
			err = out_put(c, c->arena + nd->key, nd->key_len);
		if (err < 0)
			break;
		if (nd->col >= 0) {
			err = put_value(c, nd, c->text + c->off[nd->col], c->len[nd->col]);
			members++;
		} else {
			size_t sub = 0;
			err = put_object(c, k, &sub);
			if (err >= 0 && sub == 0)
				c->out_len = mark; /* every cell empty: leave the object out */
			else
				members++;
		}
	}
	if (err >= 0)
		err = out_put(c, "}", 1);
	*ret_n = members;
	return err;
}

int csv_convert(struct csv *c, const char **ret_json, size_t *ret_len, size_t *ret_pos,
                char *msg, size_t msg_size)
{
	size_t members;
	int err;

	if (c->n_fields != c->n_cols) {
		*ret_pos = c->n_fields > c->n_cols ? c->pos[c->n_cols] : c->content_end;
		return header_err(msg, msg_size,
		                  "%zu fields where the header row has %zu "
		                  "(a value that holds a comma, a quote or a line break must be quoted)",
		                  c->n_fields, c->n_cols);
	}
	c->out_len = 0;
	err = put_object(c, 1, &members);
	if (err < 0)
		return err;
	c->out[c->out_len] = '\0';
	*ret_json = c->out;
	*ret_len = c->out_len;
	return 0;
}
