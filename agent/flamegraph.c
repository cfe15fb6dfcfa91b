// SPDX-License-Identifier: Apache-2.0
/* Folded stacks and SVG flame graphs, rendered by our own code. */
#include "flamegraph.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

static const char *sample_comm(const struct prof_sample *s)
{
	for (uint32_t i = 0; i < s->nlabels; i++)
		if (s->labels[i].str && !strcmp(s->labels[i].key, "comm"))
			return s->labels[i].str;
	return NULL;
}

/* ---- folded ---------------------------------------------------------------- */

struct line {
	char *text;
	int64_t count;
};

static int cmp_line(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

static void append_clean(char **p, const char *s)
{
	for (; *s; s++)
		*(*p)++ = *s == ';' ? ':' : (*s == '\n' || *s == '\r') ? ' ' : *s;
}

int folded__write(const struct profile *p, FILE *out)
{
	struct line *lines = calloc(p->nsamples + 1, sizeof(*lines));
	uint32_t n = 0;
	int err = 0;

	if (!lines)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		const char *comm = sample_comm(s);
		size_t len = (comm ? strlen(comm) + 1 : 0) + 1;
		char *t, *w;

		for (uint32_t k = 0; k < s->nlocs; k++)
			len += strlen(p->locations[s->locs[k]].function) + 5;
		t = w = malloc(len);
		if (!t) {
			err = -ENOMEM;
			goto out;
		}
		if (comm)
			append_clean(&w, comm);
		for (uint32_t k = s->nlocs; k-- > 0;) {
			const struct prof_location *l = &p->locations[s->locs[k]];

			if (w != t)
				*w++ = ';';
			append_clean(&w, l->function);
			if (l->kernel) {
				memcpy(w, "_[k]", 4);
				w += 4;
			}
		}
		*w = '\0';
		lines[n++] = (struct line){ t, s->count };
	}
	qsort(lines, n, sizeof(*lines), cmp_line);
	for (uint32_t i = 0; i < n;) {
		int64_t c = 0;
		uint32_t j = i;

		while (j < n && !strcmp(lines[j].text, lines[i].text))
			c += lines[j++].count;
		if (c > 0 && fprintf(out, "%s %" PRId64 "\n", lines[i].text, c) < 0) {
			err = -EIO;
			goto out;
		}
		i = j;
	}
	if (fflush(out))
		err = -errno;
out:
	for (uint32_t i = 0; i < n; i++)
		free(lines[i].text);
	free(lines);
	return err;
}

/* ---- the frame tree ----------------------------------------------------------- */

struct node {
	const char *name;	/* interned: pointer equality is string equality */
	bool kernel;
	int64_t count;
	uint32_t parent;
	uint32_t first_child, next_sibling;	/* 0 = none (node 0 is the root) */
	uint32_t depth;
};

struct tree {
	struct node *nodes;
	uint32_t n, cap;
	uint32_t *slots;	/* hash (parent, name, kernel) -> node index + 1 */
	uint32_t nslots;
	uint32_t max_depth;
};

static uint64_t node_hash(uint32_t parent, const char *name, bool kernel)
{
	uint64_t h = (uint64_t)(uintptr_t)name * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)parent << 1 | kernel) * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 31);
}

static int tree_rehash(struct tree *t)
{
	uint32_t n = t->nslots ? t->nslots * 2 : 4096;
	uint32_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++) {
		const struct node *nd = &t->nodes[i];
		uint32_t j = node_hash(nd->parent, nd->name, nd->kernel) & (n - 1);

		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = i + 1;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return 0;
}

static int64_t child(struct tree *t, uint32_t parent, const char *name, bool kernel)
{
	uint32_t j;
	struct node *nd;

	if ((t->n + 1) * 2 > t->nslots && tree_rehash(t))
		return -ENOMEM;
	for (j = node_hash(parent, name, kernel) & (t->nslots - 1); t->slots[j];
	     j = (j + 1) & (t->nslots - 1)) {
		nd = &t->nodes[t->slots[j] - 1];
		if (nd->parent == parent && nd->name == name && nd->kernel == kernel)
			return t->slots[j] - 1;
	}
	if (t->n == t->cap) {
		uint32_t ncap = t->cap * 2;
		struct node *nn = realloc(t->nodes, ncap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		t->nodes = nn;
		t->cap = ncap;
	}
	nd = &t->nodes[t->n];
	*nd = (struct node){ .name = name, .kernel = kernel, .parent = parent,
			     .depth = t->nodes[parent].depth + 1 };
	if (nd->depth > t->max_depth)
		t->max_depth = nd->depth;
	t->slots[j] = t->n + 1;
	return t->n++;
}

static int build_tree(struct tree *t, const struct profile *p)
{
	t->cap = 1024;
	t->nodes = calloc(t->cap, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	t->nodes[0] = (struct node){ .name = "all" };
	t->n = 1;
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		const char *comm = sample_comm(s);
		int64_t cur = 0;

		if (s->count <= 0)
			continue;
		t->nodes[0].count += s->count;
		if (comm) {
			cur = child(t, 0, comm, false);
			if (cur < 0)
				return (int)cur;
			t->nodes[cur].count += s->count;
		}
		for (uint32_t k = s->nlocs; k-- > 0;) {
			const struct prof_location *l = &p->locations[s->locs[k]];

			cur = child(t, (uint32_t)cur, l->function, l->kernel);
			if (cur < 0)
				return (int)cur;
			t->nodes[cur].count += s->count;
		}
	}
	return 0;
}

/* children sorted by name, so the same input always gives the same picture */
static const struct tree *sort_tree;

static int cmp_child(const void *a, const void *b)
{
	const struct node *x = &sort_tree->nodes[*(const uint32_t *)a];
	const struct node *y = &sort_tree->nodes[*(const uint32_t *)b];
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->kernel - (int)y->kernel;
}

static int link_children(struct tree *t)
{
	uint32_t *idx = malloc(t->n * sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++)
		idx[i] = i;
	sort_tree = t;
	/* sort by (parent, name): stable linking in name order */
	qsort(idx + 1, t->n - 1, sizeof(*idx), cmp_child);
	/* prepend in reverse name order so that lists end up in name order */
	for (uint32_t k = t->n; k-- > 1;) {
		struct node *nd = &t->nodes[idx[k]];

		nd->next_sibling = t->nodes[nd->parent].first_child;
		t->nodes[nd->parent].first_child = idx[k];
	}
	free(idx);
	return 0;
}

/* ---- SVG ------------------------------------------------------------------------ */

static void xml_escape(FILE *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++) {
		switch (s[i]) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			fputc((unsigned char)s[i] < 0x20 ? '?' : s[i], out);
		}
	}
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void colour(const struct node *nd, char *buf, size_t len)
{
	uint32_t h = name_hash(nd->name);
	unsigned a = h & 0xff, b = (h >> 8) & 0xff, c = (h >> 16) & 0xff;

	if (nd->kernel)	/* kernel: cool blues */
		snprintf(buf, len, "rgb(%u,%u,%u)", 60 + a % 60, 140 + b % 70, 200 + c % 55);
	else		/* user: warm reds, oranges, yellows */
		snprintf(buf, len, "rgb(%u,%u,%u)", 205 + a % 50, b % 230, c % 55);
}

#define FRAME_H 16
#define PAD_TOP 50
#define PAD_BOTTOM 40
#define PAD_SIDE 10

static const char svg_script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"'use strict';\n"
	"var details, frames, reset, search, matched, W, PAD;\n"
	"function init(evt) {\n"
	"  details = document.getElementById('details');\n"
	"  matched = document.getElementById('matched');\n"
	"  reset = document.getElementById('reset');\n"
	"  search = document.getElementById('search');\n"
	"  frames = document.getElementById('frames');\n"
	"  W = parseFloat(frames.getAttribute('data-width'));\n"
	"  PAD = parseFloat(frames.getAttribute('data-pad'));\n"
	"  frames.addEventListener('mouseover', function (e) {\n"
	"    var g = e.target.closest('g.f'); if (g) details.textContent = g.querySelector('title').textContent; });\n"
	"  frames.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
	"  frames.addEventListener('click', function (e) {\n"
	"    var g = e.target.closest('g.f'); if (g) zoom(g); });\n"
	"  reset.addEventListener('click', unzoom);\n"
	"  search.addEventListener('click', find);\n"
	"  window.addEventListener('keydown', function (e) {\n"
	"    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); find(); }\n"
	"    if (e.key === 'Escape') { unzoom(); clearFind(); } });\n"
	"}\n"
	"function place(g, x, w) {\n"
	"  var r = g.querySelector('rect'), t = g.querySelector('text');\n"
	"  r.setAttribute('x', x); r.setAttribute('width', w); t.setAttribute('x', x + 3);\n"
	"  var name = g.getAttribute('data-n'), fit = Math.floor((w - 6) / 7.6);\n"
	"  t.textContent = fit < 3 ? '' : (name.length <= fit ? name : name.substring(0, fit - 2) + '..');\n"
	"}\n"
	"function zoom(z) {\n"
	"  var zx = parseFloat(z.getAttribute('data-x')), zw = parseFloat(z.getAttribute('data-w'));\n"
	"  var zd = parseInt(z.getAttribute('data-d'), 10), all = frames.querySelectorAll('g.f');\n"
	"  for (var i = 0; i < all.length; i++) {\n"
	"    var g = all[i], x = parseFloat(g.getAttribute('data-x')), w = parseFloat(g.getAttribute('data-w'));\n"
	"    var d = parseInt(g.getAttribute('data-d'), 10);\n"
	"    var inside = x >= zx - 1e-9 && x + w <= zx + zw + 1e-9;\n"
	"    if (d >= zd && inside) { g.style.display = ''; place(g, PAD + (x - zx) / zw * W, w / zw * W); }\n"
	"    else if (d < zd && x <= zx + 1e-9 && x + w >= zx + zw - 1e-9) { g.style.display = ''; g.style.opacity = 0.5; place(g, PAD, W); }\n"
	"    else g.style.display = 'none';\n"
	"  }\n"
	"  reset.style.opacity = 1;\n"
	"}\n"
	"function unzoom() {\n"
	"  var all = frames.querySelectorAll('g.f');\n"
	"  for (var i = 0; i < all.length; i++) {\n"
	"    var g = all[i]; g.style.display = ''; g.style.opacity = '';\n"
	"    place(g, PAD + parseFloat(g.getAttribute('data-x')) * W, parseFloat(g.getAttribute('data-w')) * W);\n"
	"  }\n"
	"  reset.style.opacity = 0;\n"
	"}\n"
	"function clearFind() {\n"
	"  var all = frames.querySelectorAll('rect');\n"
	"  for (var i = 0; i < all.length; i++) if (all[i].hasAttribute('data-fill')) all[i].setAttribute('fill', all[i].getAttribute('data-fill'));\n"
	"  matched.textContent = ' ';\n"
	"}\n"
	"function find() {\n"
	"  var term = prompt('Search for (regular expression):', '');\n"
	"  clearFind(); if (!term) return;\n"
	"  var re = new RegExp(term), all = frames.querySelectorAll('g.f'), spans = [];\n"
	"  for (var i = 0; i < all.length; i++) {\n"
	"    var g = all[i], r = g.querySelector('rect');\n"
	"    if (!re.test(g.getAttribute('data-n'))) continue;\n"
	"    r.setAttribute('data-fill', r.getAttribute('fill')); r.setAttribute('fill', 'rgb(230,0,230)');\n"
	"    spans.push([parseFloat(g.getAttribute('data-x')), parseFloat(g.getAttribute('data-w'))]);\n"
	"  }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
	"  var total = 0, end = -1;\n"
	"  for (var k = 0; k < spans.length; k++) {\n"
	"    var s = spans[k][0], e = s + spans[k][1];\n"
	"    if (s >= end) { total += e - s; end = e; } else if (e > end) { total += e - end; end = e; }\n"
	"  }\n"
	"  matched.textContent = 'Matched: ' + (100 * total).toFixed(1) + '%';\n"
	"}\n"
	"]]></script>\n";

int flamegraph__write_svg(const struct profile *p, FILE *out, const struct flamegraph_opts *opts)
{
	struct tree t = { 0 };
	const char *title = opts && opts->title ? opts->title : "CPU flame graph";
	int width = opts && opts->width > 0 ? opts->width : 1200;
	double minw = opts && opts->min_width_px > 0 ? opts->min_width_px : 0.1;
	double inner = width - 2 * PAD_SIDE;
	uint64_t elided = 0;
	uint32_t *stack = NULL;
	double *xs = NULL;
	int height, err;

	err = build_tree(&t, p);
	if (!err)
		err = link_children(&t);
	if (err)
		goto out;
	height = PAD_TOP + (int)(t.max_depth + 1) * FRAME_H + PAD_BOTTOM;

	fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		     "<svg version=\"1.1\" width=\"%d\" height=\"%d\" onload=\"init(evt)\" "
		     "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
		width, height, width, height);
	fputs("<style type=\"text/css\">text { font-family: monospace; font-size: 12px; fill: "
	      "rgb(0,0,0); } g.f:hover rect { stroke: black; stroke-width: 0.5; cursor: pointer; } "
	      "#title { font-size: 17px; } .ui { cursor: pointer; }</style>\n", out);
	fputs(svg_script, out);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"rgb(248,248,240)\"/>\n",
		width, height);
	fprintf(out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", width / 2);
	xml_escape(out, title, 200);
	fputs("</text>\n", out);
	if (opts && opts->subtitle) {
		fprintf(out, "<text x=\"%d\" y=\"42\" text-anchor=\"middle\">", width / 2);
		xml_escape(out, opts->subtitle, 300);
		fputs("</text>\n", out);
	}
	fprintf(out, "<text id=\"reset\" class=\"ui\" x=\"%d\" y=\"24\" style=\"opacity:0\">Reset Zoom</text>\n",
		PAD_SIDE);
	fprintf(out, "<text id=\"search\" class=\"ui\" x=\"%d\" y=\"24\" text-anchor=\"end\">Search</text>\n",
		width - PAD_SIDE);
	fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PAD_SIDE, height - 14);
	fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n",
		width - PAD_SIDE, height - 14);

	if (t.nodes[0].count == 0) {
		fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no samples</text>\n"
			     "<g id=\"frames\" data-width=\"%.1f\" data-pad=\"%d\"></g>\n</svg>\n",
			width / 2, height / 2, inner, PAD_SIDE);
		goto done;
	}

	fprintf(out, "<g id=\"frames\" data-width=\"%.1f\" data-pad=\"%d\">\n", inner, PAD_SIDE);
	/* depth-first, iteratively: x of each node is its parent's x plus its earlier siblings */
	/* siblings wait on the stack too: it can hold every node */
	stack = malloc((t.n + 1) * sizeof(*stack));
	xs = malloc((t.n + 1) * sizeof(*xs));
	if (!stack || !xs) {
		err = -ENOMEM;
		goto out;
	}
	{
		double total = (double)t.nodes[0].count;
		int sp = 0;

		stack[0] = 0;
		xs[0] = 0;
		while (sp >= 0) {
			uint32_t id = stack[sp];
			const struct node *nd = &t.nodes[id];
			double frac_x = xs[sp], frac_w = nd->count / total;
			double px = PAD_SIDE + frac_x * inner, pw = frac_w * inner;
			int y = height - PAD_BOTTOM - (int)(nd->depth + 1) * FRAME_H;
			char fill[32];
			int fit;

			sp--;
			if (pw < minw) {
				elided++;
				continue;
			}
			colour(nd, fill, sizeof(fill));
			fputs("<g class=\"f\" data-n=\"", out);
			xml_escape(out, nd->name, 4096);
			if (nd->kernel)
				fputs("_[k]", out);
			fprintf(out, "\" data-x=\"%.6f\" data-w=\"%.6f\" data-d=\"%u\"><title>", frac_x,
				frac_w, nd->depth);
			xml_escape(out, nd->name, 4096);
			fprintf(out, "%s (%" PRId64 " samples, %.2f%%)</title>", nd->kernel ? " [kernel]" : "",
				nd->count, 100.0 * frac_w);
			fprintf(out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
				     "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%d\">",
				px, y, pw, FRAME_H - 1, fill, px + 3, y + FRAME_H - 4);
			fit = (int)((pw - 6) / 7.6);	/* 12px monospace: about 7.2px a glyph */
			if (fit >= 3) {
				size_t len = strlen(nd->name);

				if ((int)len <= fit) {
					xml_escape(out, nd->name, len);
				} else {
					xml_escape(out, nd->name, (size_t)fit - 2);
					fputs("..", out);
				}
			}
			fputs("</text></g>\n", out);

			/* children, pushed so that the first in name order is drawn first */
			{
				double cx = frac_x;
				int first = sp + 1, last;

				for (uint32_t c = nd->first_child; c; c = t.nodes[c].next_sibling) {
					stack[++sp] = c;
					xs[sp] = cx;
					cx += t.nodes[c].count / total;
				}
				/* reverse the pushed run: the stack pops the last first */
				for (last = sp; first < last; first++, last--) {
					uint32_t ts = stack[first];
					double tx = xs[first];

					stack[first] = stack[last];
					xs[first] = xs[last];
					stack[last] = ts;
					xs[last] = tx;
				}
			}
		}
	}
	fputs("</g>\n", out);
	if (elided)
		fprintf(out, "<!-- %" PRIu64 " frames narrower than %.2f px left out -->\n", elided, minw);
	fputs("</svg>\n", out);
done:
	if (fflush(out))
		err = -errno;
out:
	free(stack);
	free(xs);
	free(t.nodes);
	free(t.slots);
	return err;
}
