// SPDX-License-Identifier: Apache-2.0
/* Prometheus text format; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int metrics_begin(struct metrics *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	return m->f ? 0 : -ENOMEM;
}

void metrics_family(struct metrics *m, const char *name, const char *type, const char *help)
{
	if (m->f)
		fprintf(m->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void escaped(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void metrics_value(struct metrics *m, const char *name, const char *const *labels, double v)
{
	if (!m->f)
		return;
	fputs(name, m->f);
	if (labels && labels[0]) {
		fputc('{', m->f);
		for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
			fprintf(m->f, "%s%s=\"", i ? "," : "", labels[i]);
			escaped(m->f, labels[i + 1]);
			fputc('"', m->f);
		}
		fputc('}', m->f);
	}
	if (isinf(v))
		fprintf(m->f, " %s\n", v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(long long)v && fabs(v) < 9e15)
		fprintf(m->f, " %lld\n", (long long)v);
	else
		fprintf(m->f, " %.9g\n", v);
}

char *metrics_end(struct metrics *m, size_t *ret_len)
{
	if (!m->f)
		return NULL;
	if (fclose(m->f)) {
		free(m->buf);
		return NULL;
	}
	m->f = NULL;
	*ret_len = m->len;
	return m->buf;
}

void metrics_single(struct metrics *m, const char *name, const char *type, const char *help,
		    double v)
{
	metrics_family(m, name, type, help);
	metrics_value(m, name, NULL, v);
}
