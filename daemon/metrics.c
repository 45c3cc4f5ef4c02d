#include "daemon/metrics.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRIC_MAX_LABELS 4

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct series {
	struct series *next;
	char *values[METRIC_MAX_LABELS];
	double value;            /* counter, gauge */
	uint64_t *bucket_counts; /* histogram: n_buckets (non-cumulative) */
	uint64_t count;
	double sum;
};

struct metric {
	struct metric *next;
	char *name;
	char *help;
	enum metric_type type;
	size_t n_labels;
	char *labels[METRIC_MAX_LABELS];
	size_t n_buckets;
	double *buckets;
	struct series *series, **series_tail;
};

struct collector {
	void (*fn)(struct metrics *m, void *arg);
	void *arg;
};

struct metrics {
	struct metric *families, **tail;
	struct collector *collectors;
	size_t n_collectors;
};

int metrics_new(struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->tail = &m->families;
	*ret = m;
	return 0;
}

static void family_free(struct metric *f)
{
	struct series *s = f->series;
	while (s) {
		struct series *n = s->next;
		for (size_t i = 0; i < f->n_labels; i++)
			free(s->values[i]);
		free(s->bucket_counts);
		free(s);
		s = n;
	}
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->buckets);
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	struct metric *f = m->families;
	while (f) {
		struct metric *n = f->next;
		family_free(f);
		f = n;
	}
	free(m->collectors);
	free(m);
}

static bool name_ok(const char *n)
{
	if (!n || !(isalpha((unsigned char)*n) || *n == '_' || *n == ':'))
		return false;
	for (; *n; n++)
		if (!(isalnum((unsigned char)*n) || *n == '_' || *n == ':'))
			return false;
	return true;
}

static struct metric *family(struct metrics *m, enum metric_type type, const char *name,
			     const char *help, size_t n_labels, const char *const *label_names,
			     size_t n_buckets, const double *buckets)
{
	if (!m || !name_ok(name) || n_labels > METRIC_MAX_LABELS)
		return NULL;
	for (struct metric *f = m->families; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f->type == type && f->n_labels == n_labels ? f : NULL;
	struct metric *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->type = type;
	f->n_labels = n_labels;
	f->series_tail = &f->series;
	f->name = strdup(name);
	f->help = strdup(help ? help : name);
	bool ok = f->name && f->help;
	for (size_t i = 0; i < n_labels; i++)
		ok = ok && name_ok(label_names[i]) && (f->labels[i] = strdup(label_names[i]));
	if (ok && n_buckets) {
		f->buckets = malloc(n_buckets * sizeof(double));
		ok = f->buckets != NULL;
		for (size_t i = 0; ok && i < n_buckets; i++) {
			if (i > 0 && !(buckets[i] > buckets[i - 1]))
				ok = false;
			else
				f->buckets[i] = buckets[i];
		}
		f->n_buckets = n_buckets;
	}
	if (!ok) {
		family_free(f);
		return NULL;
	}
	*m->tail = f;
	m->tail = &f->next;
	return f;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       size_t n_labels, const char *const *label_names)
{
	return family(m, M_COUNTER, name, help, n_labels, label_names, 0, NULL);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     size_t n_labels, const char *const *label_names)
{
	return family(m, M_GAUGE, name, help, n_labels, label_names, 0, NULL);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 size_t n_labels, const char *const *label_names,
				 size_t n_buckets, const double *buckets)
{
	return family(m, M_HISTOGRAM, name, help, n_labels, label_names, n_buckets, buckets);
}

static struct series *series_get(struct metric *f, const char *const *values)
{
	for (struct series *s = f->series; s; s = s->next) {
		size_t i = 0;
		while (i < f->n_labels && strcmp(s->values[i], values[i] ? values[i] : "") == 0)
			i++;
		if (i == f->n_labels)
			return s;
	}
	struct series *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	bool ok = true;
	for (size_t i = 0; i < f->n_labels; i++)
		ok = ok && (s->values[i] = strdup(values[i] ? values[i] : ""));
	if (ok && f->type == M_HISTOGRAM)
		ok = (s->bucket_counts = calloc(f->n_buckets + 1, sizeof(uint64_t))) != NULL;
	if (!ok) {
		for (size_t i = 0; i < f->n_labels; i++)
			free(s->values[i]);
		free(s);
		return NULL;
	}
	*f->series_tail = s;
	f->series_tail = &s->next;
	return s;
}

void metric_add(struct metric *f, double v, const char *const *label_values)
{
	if (!f || f->type == M_HISTOGRAM || (f->type == M_COUNTER && !(v >= 0)))
		return;
	struct series *s = series_get(f, label_values);
	if (s)
		s->value += v;
}

void metric_set(struct metric *f, double v, const char *const *label_values)
{
	if (!f || f->type == M_HISTOGRAM)
		return;
	struct series *s = series_get(f, label_values);
	if (s && (f->type == M_GAUGE || v >= s->value))
		s->value = v;
}

void metric_observe(struct metric *f, double v, const char *const *label_values)
{
	if (!f || f->type != M_HISTOGRAM || isnan(v))
		return;
	struct series *s = series_get(f, label_values);
	if (!s)
		return;
	size_t i = 0;
	while (i < f->n_buckets && v > f->buckets[i])
		i++;
	s->bucket_counts[i]++;
	s->count++;
	s->sum += v;
}

int metrics_add_collector(struct metrics *m, void (*fn)(struct metrics *, void *), void *arg)
{
	struct collector *c = realloc(m->collectors, (m->n_collectors + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	m->collectors = c;
	c[m->n_collectors].fn = fn;
	c[m->n_collectors].arg = arg;
	m->n_collectors++;
	return 0;
}

static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

static void put_number(FILE *f, double v)
{
	if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (isnan(v))
		fputs("NaN", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.9g", v);
}

static void put_labels(FILE *out, const struct metric *f, const struct series *s, const char *le)
{
	if (f->n_labels == 0 && !le)
		return;
	fputc('{', out);
	for (size_t i = 0; i < f->n_labels; i++) {
		fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		put_escaped(out, s->values[i], true);
		fputc('"', out);
	}
	if (le)
		fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	fputc('}', out);
}

int metrics_render(struct metrics *m, char **ret, size_t *ret_len)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	for (size_t i = 0; i < m->n_collectors; i++)
		m->collectors[i].fn(m, m->collectors[i].arg);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		return -ENOMEM;
	for (const struct metric *f = m->families; f; f = f->next) {
		fprintf(out, "# HELP %s ", f->name);
		put_escaped(out, f->help, false);
		fprintf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
		for (const struct series *s = f->series; s; s = s->next) {
			if (f->type != M_HISTOGRAM) {
				fputs(f->name, out);
				put_labels(out, f, s, NULL);
				fputc(' ', out);
				put_number(out, s->value);
				fputc('\n', out);
				continue;
			}
			uint64_t cum = 0;
			for (size_t b = 0; b <= f->n_buckets; b++) {
				char le[32];
				cum += s->bucket_counts[b];
				if (b < f->n_buckets)
					snprintf(le, sizeof(le), "%g", f->buckets[b]);
				else
					snprintf(le, sizeof(le), "+Inf");
				fprintf(out, "%s_bucket", f->name);
				put_labels(out, f, s, le);
				fprintf(out, " %llu\n", (unsigned long long)cum);
			}
			fprintf(out, "%s_sum", f->name);
			put_labels(out, f, s, NULL);
			fputc(' ', out);
			put_number(out, s->sum);
			fprintf(out, "\n%s_count", f->name);
			put_labels(out, f, s, NULL);
			fprintf(out, " %llu\n", (unsigned long long)s->count);
		}
	}
	if (fclose(out) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
