// SPDX-License-Identifier: Apache-2.0
/*
 * Folded stacks and SVG flame graphs, from one frame tree.
 *
 * The tree is a trie of stacks, root first: a node is one frame reached by one
 * caller path. Building it is one hash lookup per frame of every sample, keyed
 * by (parent node, name id), where the name id comes from a table of folded
 * names (sanitized, "_[k]" for the kernel, "_[py]" for Python) filled once per profile location,
 * not once per frame. Children are then sorted by name, all at once, so both
 * writers walk the tree depth-first and get sorted, stable output.
 */
#include "flamegraph.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "utf8.h"

/* what ends a folded name, by frame kind (flamegraph.pl's "_[k]" for the kernel) */
static const char *const kind_suffix[PROF_FRAME_KINDS] = {
	[PROF_FRAME_NATIVE] = "",
	[PROF_FRAME_KERNEL] = "_[k]",
	[PROF_FRAME_PYTHON] = "_[py]",
	[PROF_FRAME_JVM] = "_[j]",
	[PROF_FRAME_V8] = "_[js]",
};
#define MAX_SUFFIX_LEN 5
_Static_assert(sizeof("_[py]") - 1 <= MAX_SUFFIX_LEN && sizeof("_[k]") - 1 <= MAX_SUFFIX_LEN,
	       "fold_name's buffer holds the longest suffix");

/* ---- folded names ------------------------------------------------------------ */

struct names {
	char *text;		/* every name, NUL-terminated, one after the other */
	size_t len, cap;
	size_t *off;		/* id -> offset in text */
	uint32_t *hash;		/* id -> hash */
	uint32_t n, cap_ids;
	uint32_t *slots;	/* open addressing: id + 1, 0 = free */
	uint32_t mask;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static const char *name_text(const struct names *nm, uint32_t id)
{
	return nm->text + nm->off[id];
}

static int names_rehash(struct names *nm, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < nm->n; i++) {
		uint32_t j = nm->hash[i] & (nslots - 1);

		while (slots[j])
			j = (j + 1) & (nslots - 1);
		slots[j] = i + 1;
	}
	free(nm->slots);
	nm->slots = slots;
	nm->mask = nslots - 1;
	return 0;
}

/* *ret_id: the id of the name s[0..len) (no NUL inside), added if new. 0 or -errno. */
static int names_add(struct names *nm, const char *s, size_t len, uint32_t *ret_id)
{
	uint32_t h = hash_bytes(s, len), j;

	if (!nm->slots && names_rehash(nm, 1024))
		return -ENOMEM;
	for (j = h & nm->mask; nm->slots[j]; j = (j + 1) & nm->mask) {
		uint32_t id = nm->slots[j] - 1;
		const char *t = name_text(nm, id);

		if (nm->hash[id] == h && !memcmp(t, s, len) && !t[len]) {
			*ret_id = id;
			return 0;
		}
	}
	if (nm->n >= FG_MAX_NODES)
		return -E2BIG;
	if (nm->n == nm->cap_ids) {
		uint32_t ncap = nm->cap_ids ? nm->cap_ids * 2 : 1024;
		size_t *noff = realloc(nm->off, ncap * sizeof(*noff));
		uint32_t *nh;

		if (!noff)
			return -ENOMEM;
		nm->off = noff;
		nh = realloc(nm->hash, ncap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		nm->hash = nh;
		nm->cap_ids = ncap;
	}
	if (nm->cap - nm->len < len + 1) {
		size_t ncap = nm->cap ? nm->cap * 2 : 65536;
		char *nt;

		while (ncap - nm->len < len + 1)
			ncap *= 2;
		nt = realloc(nm->text, ncap);
		if (!nt)
			return -ENOMEM;
		nm->text = nt;
		nm->cap = ncap;
	}
	memcpy(nm->text + nm->len, s, len);
	nm->text[nm->len + len] = '\0';
	nm->off[nm->n] = nm->len;
	nm->hash[nm->n] = h;
	nm->len += len + 1;
	nm->slots[j] = nm->n + 1;
	*ret_id = nm->n++;
	if (nm->n * 2 > nm->mask + 1 && names_rehash(nm, (nm->mask + 1) * 2))
		return -ENOMEM;
	return 0;
}

/* Folds a location's name (see folded__write); *ret_id is its id. 0 or -errno. */
static int fold_name(struct names *nm, const struct prof_location *l, uint32_t *ret_id)
{
	char buf[FG_MAX_NAME + MAX_SUFFIX_LEN + 1];
	/* the qualified name (Python's module.Class.method), but a Java method's
	 * function name is qualified already and its system name adds the signature */
	const char *name = l->system_name && l->frame != PROF_FRAME_JVM ? l->system_name :
									   l->function;
	const char *suffix = kind_suffix[l->frame < PROF_FRAME_KINDS ? l->frame : 0];
	size_t len;

	if (!name || !*name)	/* an empty element would read as two separators */
		name = "[unknown]";
	len = utf8_cut(name, strlen(name), FG_MAX_NAME);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		buf[i] = (char)(c == ';' ? ':' : c == '\n' || c == '\r' ? ' ' : c);
	}
	memcpy(buf + len, suffix, strlen(suffix));
	len += strlen(suffix);
	return names_add(nm, buf, len, ret_id);
}

static void names_fini(struct names *nm)
{
	free(nm->text);
	free(nm->off);
	free(nm->hash);
	free(nm->slots);
}

/* ---- the frame tree ------------------------------------------------------------ */

/*
 * 24 bytes: a profile of 100k samples x 127 distinct frames makes 12.7M of
 * them. Depth and self count are not kept: the walks work them out.
 */
struct fnode {
	int64_t total;		/* samples in this frame and the frames it called */
	uint32_t name;		/* names id */
	uint32_t parent;
	uint32_t first;		/* its children are order[first .. first + nchild) */
	uint32_t nchild;
};

struct tree {
	struct names names;
	struct fnode *nodes;	/* node 0 is the root; a parent's index is below its children's */
	uint32_t n, cap;
	uint32_t *slots;	/* open addressing on (parent, name): node + 1 */
	uint32_t mask;
	uint32_t *order;	/* nodes grouped by parent, each group in name order */
	uint32_t max_depth;	/* of any node; the root is depth 0 */
};

static uint32_t node_hash(uint32_t parent, uint32_t name)
{
	uint64_t k = ((uint64_t)parent << 32 | name) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(k >> 32);
}

static int tree_rehash(struct tree *t, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++) {
		uint32_t j = node_hash(t->nodes[i].parent, t->nodes[i].name) & (nslots - 1);

		while (slots[j])
			j = (j + 1) & (nslots - 1);
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->mask = nslots - 1;
	return 0;
}

/* *ret_node: the child of parent named name, created if new. 0 or -errno. */
static int tree_child(struct tree *t, uint32_t parent, uint32_t name, uint32_t *ret_node)
{
	struct fnode *nd;
	uint32_t j;

	for (j = node_hash(parent, name) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
		nd = &t->nodes[t->slots[j] - 1];
		if (nd->parent == parent && nd->name == name) {
			*ret_node = t->slots[j] - 1;
			return 0;
		}
	}
	if (t->n >= FG_MAX_NODES)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t ncap = t->cap * 2;
		struct fnode *nn = realloc(t->nodes, ncap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		t->nodes = nn;
		t->cap = ncap;
	}
	nd = &t->nodes[t->n];
	memset(nd, 0, sizeof(*nd));
	nd->name = name;
	nd->parent = parent;
	t->slots[j] = t->n + 1;
	*ret_node = t->n++;
	if (t->n * 2 > t->mask + 1 && tree_rehash(t, (t->mask + 1) * 2))
		return -ENOMEM;
	return 0;
}

static const char *sample_comm(const struct prof_sample *s)
{
	for (uint32_t i = 0; i < s->nlabels; i++)
		if (s->labels[i].str && *s->labels[i].str && s->labels[i].key &&
		    !strcmp(s->labels[i].key, "comm"))
			return s->labels[i].str;
	return NULL;
}

static int cmp_name_ids(const void *a, const void *b, void *ctx)
{
	const struct names *nm = ctx;

	return strcmp(name_text(nm, *(const uint32_t *)a), name_text(nm, *(const uint32_t *)b));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Groups the nodes by parent with a counting sort, then sorts each group (the
 * children of one node, usually few) by name. Names are ranked once, with
 * strcmp, so sorting the groups compares integers only.
 */
static int tree_sort(struct tree *t)
{
	uint32_t *ids = NULL, *rank = NULL, *fill = NULL;
	uint64_t *keys = NULL;
	int err = -ENOMEM;

	ids = malloc(((size_t)t->names.n + 1) * sizeof(*ids));
	rank = malloc(((size_t)t->names.n + 1) * sizeof(*rank));
	keys = malloc((size_t)t->n * sizeof(*keys));
	fill = calloc((size_t)t->n + 1, sizeof(*fill));
	t->order = malloc((size_t)t->n * sizeof(*t->order));
	if (!ids || !rank || !keys || !fill || !t->order)
		goto out;
	for (uint32_t i = 0; i < t->names.n; i++)
		ids[i] = i;
	qsort_r(ids, t->names.n, sizeof(*ids), cmp_name_ids, &t->names);
	for (uint32_t i = 0; i < t->names.n; i++)
		rank[ids[i]] = i;

	for (uint32_t i = 1; i < t->n; i++)
		t->nodes[t->nodes[i].parent].nchild++;
	for (uint32_t i = 0, pos = 0; i < t->n; i++) {
		t->nodes[i].first = pos;
		pos += t->nodes[i].nchild;
	}
	for (uint32_t i = 1; i < t->n; i++) {
		struct fnode *par = &t->nodes[t->nodes[i].parent];

		keys[par->first + fill[t->nodes[i].parent]++] = (uint64_t)rank[t->nodes[i].name] << 32 | i;
	}
	for (uint32_t i = 0; i < t->n; i++) {
		const struct fnode *nd = &t->nodes[i];

		if (nd->nchild > 1)
			qsort(keys + nd->first, nd->nchild, sizeof(*keys), cmp_u64);
	}
	for (uint32_t i = 0; i + 1 < t->n; i++)
		t->order[i] = (uint32_t)keys[i];
	err = 0;
out:
	free(ids);
	free(rank);
	free(keys);
	free(fill);
	return err;
}

static void tree_fini(struct tree *t)
{
	names_fini(&t->names);
	free(t->nodes);
	free(t->slots);
	free(t->order);
}

static int tree_build(struct tree *t, const struct profile *p)
{
	uint32_t *loc_name = NULL, comm_name = 0, unknown_name;
	const char *last_comm = NULL;
	int err = -ENOMEM;

	memset(t, 0, sizeof(*t));
	t->cap = 1024;
	t->nodes = calloc(t->cap, sizeof(*t->nodes));
	loc_name = malloc(((size_t)p->nlocations + 1) * sizeof(*loc_name));
	if (!t->nodes || !loc_name || tree_rehash(t, 2048))
		goto out;
	t->n = 1;	/* the root */
	err = names_add(&t->names, "all", 3, &t->nodes[0].name);
	if (!err)
		err = names_add(&t->names, "[unknown]", 9, &unknown_name);
	for (uint32_t i = 0; i < p->nlocations && !err; i++)
		err = fold_name(&t->names, &p->locations[i], &loc_name[i]);
	if (err)
		goto out;

	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		const char *comm = sample_comm(s);
		uint32_t cur = 0;
		uint64_t depth;

		if (s->count <= 0)
			continue;
		t->nodes[0].total += s->count;
		/* samples of one process tend to come together: fold its name once */
		if (comm && comm != last_comm) {
			err = fold_name(&t->names, &(struct prof_location){ .function = comm },
					&comm_name);
			if (err)
				goto out;
			last_comm = comm;
		}
		if (comm) {
			err = tree_child(t, cur, comm_name, &cur);
			if (err)
				goto out;
			t->nodes[cur].total += s->count;
		}
		for (uint32_t k = s->nlocs; k-- > 0;) {
			if (s->locs[k] >= p->nlocations) {
				err = -EINVAL;
				goto out;
			}
			err = tree_child(t, cur, loc_name[s->locs[k]], &cur);
			if (err)
				goto out;
			t->nodes[cur].total += s->count;
		}
		if (!cur) {	/* no comm, no frames: still counted */
			err = tree_child(t, 0, unknown_name, &cur);
			if (err)
				goto out;
			t->nodes[cur].total += s->count;
		}
		depth = (comm ? 1 : 0) + (uint64_t)s->nlocs;
		if (!depth)
			depth = 1;	/* "[unknown]" */
		if (depth > t->max_depth)
			t->max_depth = (uint32_t)depth;
	}
	/* the lookup table is done with: give its memory back before sorting needs more */
	free(t->slots);
	t->slots = NULL;
	if (t->cap > t->n) {
		struct fnode *nn = realloc(t->nodes, (size_t)t->n * sizeof(*nn));

		if (nn) {
			t->nodes = nn;
			t->cap = t->n;
		}
	}
	err = tree_sort(t);
out:
	free(loc_name);
	return err;
}

/* ---- folded ---------------------------------------------------------------------- */

/* Samples whose stack ends at nd: its count less its children's. */
static int64_t self_count(const struct tree *t, const struct fnode *nd)
{
	int64_t self = nd->total;

	for (uint32_t k = 0; k < nd->nchild; k++)
		self -= t->nodes[t->order[nd->first + k]].total;
	return self;
}

int folded__write(const struct profile *p, FILE *out)
{
	struct tree t;
	uint32_t *stack = NULL, *depths = NULL, sp = 0;
	size_t *plen = NULL, path_cap = 4096;
	char *path = NULL;
	int err;

	err = tree_build(&t, p);
	if (err)
		goto out;
	err = -ENOMEM;
	stack = malloc((size_t)t.n * sizeof(*stack));
	depths = malloc((size_t)t.n * sizeof(*depths));
	plen = malloc(((size_t)t.max_depth + 1) * sizeof(*plen));
	path = malloc(path_cap);
	if (!stack || !depths || !plen || !path)
		goto out;
	err = 0;
	plen[0] = 0;
	/*
	 * Depth-first, children pushed last-first so they come out in name
	 * order; path holds the frames from the root down to the node, and
	 * plen[d] where its depth-d prefix ends.
	 */
	for (uint32_t k = t.nodes[0].nchild; k-- > 0; sp++) {
		stack[sp] = t.order[t.nodes[0].first + k];
		depths[sp] = 1;
	}
	while (sp) {
		const struct fnode *nd = &t.nodes[stack[--sp]];
		uint32_t depth = depths[sp];
		const char *name = name_text(&t.names, nd->name);
		size_t len = strlen(name), at = plen[depth - 1];
		int64_t self = self_count(&t, nd);

		if (at + len + 2 > path_cap) {
			char *np;

			while (at + len + 2 > path_cap)
				path_cap *= 2;
			np = realloc(path, path_cap);
			if (!np) {
				err = -ENOMEM;
				goto out;
			}
			path = np;
		}
		if (depth > 1)
			path[at++] = ';';
		memcpy(path + at, name, len);
		plen[depth] = at + len;
		if (self > 0) {
			fwrite(path, 1, at + len, out);
			fprintf(out, " %" PRId64 "\n", self);
		}
		for (uint32_t k = nd->nchild; k-- > 0; sp++) {
			stack[sp] = t.order[nd->first + k];
			depths[sp] = depth + 1;
		}
	}
	if (fflush(out) || ferror(out))
		err = -EIO;
out:
	tree_fini(&t);
	free(stack);
	free(depths);
	free(plen);
	free(path);
	return err;
}

/* ---- SVG ------------------------------------------------------------------------- */

#define FRAME_H 16	/* pixels per stack level */
#define PAD_TOP 56	/* title, subtitle */
#define PAD_BOTTOM 34	/* details line */
#define PAD_SIDE 10
#define CHAR_W 7.6	/* a 12px monospace glyph is about 7.2px; the rest is margin */
#define MIN_HEIGHT 160

/*
 * Bytes of the character at s that XML 1.0 accepts as UTF-8 (1..4), or 0 for
 * a byte that starts no such character: bad or overlong sequences,
 * surrogates, U+FFFE and U+FFFF. Control characters are checked by the caller.
 */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	unsigned c = s[0];

#define CONT(i) (left > (i) && (s[i] & 0xc0) == 0x80)
	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		return CONT(1) ? 2 : 0;
	if (c < 0xf0) {
		if (!CONT(1) || !CONT(2))
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0;
		if (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe)
			return 0;
		return 3;
	}
	if (c < 0xf5) {
		if (!CONT(1) || !CONT(2) || !CONT(3))
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
#undef CONT
}

/* Bytes of the first n characters of s[0..len); a byte that is no character counts as one. */
static size_t utf8_prefix(const char *s, size_t len, size_t n)
{
	size_t at = 0;

	while (at < len && n--) {
		size_t k = utf8_len((const unsigned char *)s + at, len - at);

		at += k ? k : 1;
	}
	return at;
}

static size_t utf8_count(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t at = 0; at < len; n++) {
		size_t k = utf8_len((const unsigned char *)s + at, len - at);

		at += k ? k : 1;
	}
	return n;
}

/* s[0..len) as XML text or attribute value: escaped, and valid whatever the bytes. */
static void put_xml(FILE *out, const char *s, size_t len)
{
	size_t at = 0;

	while (at < len) {
		unsigned char c;
		size_t k, run = at;

		/* the common case, a run that needs nothing, goes out in one call */
		for (; run < len; run += k) {
			c = (unsigned char)s[run];
			if (c < 0x20 || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'')
				break;
			k = c < 0x80 ? 1 : utf8_len((const unsigned char *)s + run, len - run);
			if (!k)
				break;
		}
		if (run > at) {
			fwrite(s + at, 1, run - at, out);
			at = run;
			continue;
		}
		c = (unsigned char)s[at];
		switch (c) {
		case '&': fputs("&amp;", out); at++; continue;
		case '<': fputs("&lt;", out); at++; continue;
		case '>': fputs("&gt;", out); at++; continue;
		case '"': fputs("&quot;", out); at++; continue;
		case '\'': fputs("&apos;", out); at++; continue;
		default: break;
		}
		/* XML 1.0 has no control characters (and a tab would be folded anyway) */
		if (c < 0x20)
			fputc('?', out);
		else	/* a byte that starts no character: U+FFFD REPLACEMENT CHARACTER */
			fputs("\xef\xbf\xbd", out);
		at++;
	}
}

static void put_xml_str(FILE *out, const char *s, size_t max)
{
	size_t len = strlen(s);

	put_xml(out, s, utf8_cut(s, len, max));
}

/* v >= 0 with two decimals, whatever the locale: coordinates must not come out as "1,5". */
static const char *fixed2(char *buf, size_t size, double v)
{
	unsigned long long c = v > 0 ? (unsigned long long)(v * 100 + 0.5) : 0;

	snprintf(buf, size, "%llu.%02llu", c / 100, c % 100);
	return buf;
}

static bool has_suffix(const char *name, size_t len, enum prof_frame f)
{
	size_t n = strlen(kind_suffix[f]);

	return n && len >= n && !memcmp(name + len - n, kind_suffix[f], n);
}

/*
 * Warm (red to yellow) for native code, blue for the kernel, green for Python,
 * aqua for the JVM, yellow-green for JavaScript;
 * the hash of the name picks the shade.
 */
static void frame_fill(const char *name, size_t len, char *buf, size_t size)
{
	uint32_t h = hash_bytes(name, len);
	unsigned a = h & 0xff, b = (h >> 8) & 0xff, c = (h >> 16) & 0xff;

	if (has_suffix(name, len, PROF_FRAME_KERNEL))
		snprintf(buf, size, "rgb(%u,%u,%u)", 50 + a % 60, 130 + b % 80, 205 + c % 50);
	else if (has_suffix(name, len, PROF_FRAME_PYTHON))
		snprintf(buf, size, "rgb(%u,%u,%u)", 60 + a % 60, 170 + b % 60, 60 + c % 50);
	else if (has_suffix(name, len, PROF_FRAME_JVM))
		snprintf(buf, size, "rgb(%u,%u,%u)", 40 + a % 50, 180 + b % 60, 180 + c % 60);
	else if (has_suffix(name, len, PROF_FRAME_V8))
		snprintf(buf, size, "rgb(%u,%u,%u)", 170 + a % 50, 200 + b % 50, 40 + c % 40);
	else
		snprintf(buf, size, "rgb(%u,%u,%u)", 210 + a % 46, 70 + b % 160, 20 + c % 60);
}

static const char svg_style[] =
	"<style type=\"text/css\">\n"
	"text { font-family: monospace; font-size: 12px; fill: rgb(0,0,0); }\n"
	"#title { font-size: 17px; }\n"
	"#subtitle, #elided { fill: rgb(90,90,90); }\n"
	".ui { cursor: pointer; fill: rgb(0,0,160); }\n"
	"g.f { cursor: pointer; }\n"
	"g.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
	"</style>\n";

/*
 * Frames carry their place in samples (data-x, data-w) and depth (data-d), so
 * zooming is exact integer arithmetic. Frames left out for being too narrow
 * are not in the document: zooming does not bring them back.
 */
static const char svg_script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"'use strict';\n"
	"var frames, details, matched, resetBtn, W, PAD, TOTAL, lastTerm = '';\n"
	"function init(evt) {\n"
	"  frames = document.getElementById('frames');\n"
	"  details = document.getElementById('details');\n"
	"  matched = document.getElementById('matched');\n"
	"  resetBtn = document.getElementById('reset');\n"
	"  W = +frames.getAttribute('data-width');\n"
	"  PAD = +frames.getAttribute('data-pad');\n"
	"  TOTAL = +frames.getAttribute('data-total');\n"
	"  frames.addEventListener('mouseover', function (e) {\n"
	"    var g = frameOf(e.target);\n"
	"    if (g) details.textContent = 'Function: ' + g.getElementsByTagName('title')[0].textContent;\n"
	"  });\n"
	"  frames.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
	"  frames.addEventListener('click', function (e) { var g = frameOf(e.target); if (g) zoom(g); });\n"
	"  resetBtn.addEventListener('click', unzoom);\n"
	"  document.getElementById('search').addEventListener('click', askSearch);\n"
	"  window.addEventListener('keydown', function (e) {\n"
	"    if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) { e.preventDefault(); askSearch(); }\n"
	"    else if (e.key === 'Escape') { unzoom(); clearSearch(); }\n"
	"  });\n"
	"}\n"
	"function frameOf(el) {\n"
	"  for (; el && el !== frames; el = el.parentNode)\n"
	"    if (el.getAttribute && el.getAttribute('class') === 'f') return el;\n"
	"  return null;\n"
	"}\n"
	"function all() { return frames.getElementsByTagName('g'); }\n"
	"function num(g, a) { return +g.getAttribute(a); }\n"
	"function place(g, x, w) {\n"
	"  var r = g.getElementsByTagName('rect')[0], t = g.getElementsByTagName('text')[0];\n"
	"  var name = g.getAttribute('data-n'), fit = Math.floor((w - 6) / 7.6);\n"
	"  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));\n"
	"  t.setAttribute('x', (x + 3).toFixed(2));\n"
	"  t.textContent = fit < 3 ? '' : name.length <= fit ? name : name.substring(0, fit - 2) + '..';\n"
	"}\n"
	"function zoom(z) {\n"
	"  var zx = num(z, 'data-x'), zw = num(z, 'data-w'), zd = num(z, 'data-d'), gs = all();\n"
	"  for (var i = 0; i < gs.length; i++) {\n"
	"    var g = gs[i], x = num(g, 'data-x'), w = num(g, 'data-w'), d = num(g, 'data-d');\n"
	"    if (d >= zd && x >= zx && x + w <= zx + zw) {\n"
	"      g.style.display = ''; g.style.opacity = ''; place(g, PAD + (x - zx) / zw * W, w / zw * W);\n"
	"    } else if (d < zd && x <= zx && x + w >= zx + zw) {\n"
	"      g.style.display = ''; g.style.opacity = '0.6'; place(g, PAD, W);\n"
	"    } else {\n"
	"      g.style.display = 'none';\n"
	"    }\n"
	"  }\n"
	"  resetBtn.style.opacity = '1';\n"
	"}\n"
	"function unzoom() {\n"
	"  var gs = all();\n"
	"  for (var i = 0; i < gs.length; i++) {\n"
	"    var g = gs[i];\n"
	"    g.style.display = ''; g.style.opacity = '';\n"
	"    place(g, PAD + num(g, 'data-x') / TOTAL * W, num(g, 'data-w') / TOTAL * W);\n"
	"  }\n"
	"  resetBtn.style.opacity = '0';\n"
	"}\n"
	"function clearSearch() {\n"
	"  var gs = all();\n"
	"  for (var i = 0; i < gs.length; i++) {\n"
	"    var r = gs[i].getElementsByTagName('rect')[0], f = r.getAttribute('data-fill');\n"
	"    if (f) { r.setAttribute('fill', f); r.removeAttribute('data-fill'); }\n"
	"  }\n"
	"  matched.textContent = ' ';\n"
	"}\n"
	"function askSearch() {\n"
	"  var term = window.prompt('Search for (regular expression):', lastTerm);\n"
	"  if (term !== null) search(term);\n"
	"}\n"
	"function search(term) {\n"
	"  var re = null, gs = all(), spans = [], sum = 0, end = -1;\n"
	"  clearSearch(); lastTerm = term;\n"
	"  if (!term) return;\n"
	"  try { re = new RegExp(term); } catch (err) { re = null; }\n"
	"  for (var i = 0; i < gs.length; i++) {\n"
	"    var g = gs[i], name = g.getAttribute('data-n'), r = g.getElementsByTagName('rect')[0];\n"
	"    if (re ? !re.test(name) : name.indexOf(term) < 0) continue;\n"
	"    r.setAttribute('data-fill', r.getAttribute('fill')); r.setAttribute('fill', 'rgb(220,0,220)');\n"
	"    spans.push([num(g, 'data-x'), num(g, 'data-x') + num(g, 'data-w')]);\n"
	"  }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
	"  for (var k = 0; k < spans.length; k++) {\n"
	"    var s = Math.max(spans[k][0], end);\n"
	"    if (spans[k][1] > s) { sum += spans[k][1] - s; end = spans[k][1]; }\n"
	"  }\n"
	"  matched.textContent = 'Matched: ' + (100 * sum / TOTAL).toFixed(1) + '%';\n"
	"}\n"
	"]]></script>\n";

static void put_header(FILE *out, const struct flamegraph_opts *opts, int width, int height)
{
	const char *title = opts && opts->title ? opts->title : "CPU flame graph";

	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" onload=\"init(evt)\">\n",
		width, height, width, height);
	fputs(svg_style, out);
	fputs(svg_script, out);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"rgb(250,250,244)\"/>\n",
		width, height);
	fprintf(out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", width / 2);
	put_xml_str(out, title, 512);
	fputs("</text>\n", out);
	if (opts && opts->subtitle) {
		fprintf(out, "<text id=\"subtitle\" x=\"%d\" y=\"42\" text-anchor=\"middle\">",
			width / 2);
		put_xml_str(out, opts->subtitle, 1024);
		fputs("</text>\n", out);
	}
	fprintf(out, "<text id=\"reset\" class=\"ui\" x=\"%d\" y=\"24\" style=\"opacity:0\">"
		     "Reset Zoom</text>\n", PAD_SIDE);
	fprintf(out, "<text id=\"search\" class=\"ui\" x=\"%d\" y=\"24\" text-anchor=\"end\">"
		     "Search</text>\n", width - PAD_SIDE);
	fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PAD_SIDE, height - 12);
	fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n",
		width - PAD_SIDE, height - 12);
}

struct svg {
	FILE *out;
	const struct tree *t;
	int64_t total;
	double inner;	/* pixels for all samples */
	int height;
};

static void put_frame(const struct svg *s, uint32_t id, uint32_t depth, int64_t x)
{
	const struct fnode *nd = &s->t->nodes[id];
	const char *name = name_text(&s->t->names, nd->name);
	size_t len = strlen(name);
	double px = PAD_SIDE + (double)x * s->inner / (double)s->total;
	double pw = (double)nd->total * s->inner / (double)s->total;
	int y = s->height - PAD_BOTTOM - (int)(depth + 1) * FRAME_H;
	char bx[32], bw[32], btx[32], bpct[32], fill[32];
	double fit = (pw - 6) / CHAR_W;

	frame_fill(name, len, fill, sizeof(fill));
	fputs("<g class=\"f\" data-n=\"", s->out);
	put_xml(s->out, name, len);
	fprintf(s->out, "\" data-x=\"%" PRId64 "\" data-w=\"%" PRId64 "\" data-d=\"%u\"><title>", x,
		nd->total, depth);
	put_xml(s->out, name, len);
	fprintf(s->out,
		" (%" PRId64 " samples, %s%%)</title><rect x=\"%s\" y=\"%d\" width=\"%s\" "
		"height=\"%d\" rx=\"2\" ry=\"2\" fill=\"%s\"/><text x=\"%s\" y=\"%d\">",
		nd->total, fixed2(bpct, sizeof(bpct), 100.0 * (double)nd->total / (double)s->total),
		fixed2(bx, sizeof(bx), px), y, fixed2(bw, sizeof(bw), pw), FRAME_H - 1, fill,
		fixed2(btx, sizeof(btx), px + 3), y + FRAME_H - 4);
	if (fit >= 3) {
		size_t chars = (size_t)fit;

		if (utf8_count(name, len) <= chars) {
			put_xml(s->out, name, len);
		} else {
			put_xml(s->out, name, utf8_prefix(name, len, chars - 2));
			fputs("..", s->out);
		}
	}
	fputs("</text></g>\n", s->out);
}

/* A frame waiting to be drawn. */
struct walk {
	uint32_t node, depth;
	int64_t x;	/* samples to its left */
};

int flamegraph__write_svg(const struct profile *p, FILE *out, const struct flamegraph_opts *opts)
{
	struct tree t;
	struct svg s = { .out = out, .t = &t };
	int width = opts && opts->width > 0 ? opts->width : 1200;
	double minw = opts && opts->min_width_px > 0 ? opts->min_width_px : 0.1;
	struct walk *stack = NULL;
	uint32_t sp = 0;
	uint64_t elided = 0;
	char bmin[32];
	int err;

	if (width < 200)
		width = 200;
	if (width > 100000)
		width = 100000;
	if (!(minw <= width))	/* also NaN and infinity */
		minw = width;
	s.inner = width - 2 * PAD_SIDE;
	err = tree_build(&t, p);
	if (err)
		goto out;
	s.total = t.nodes[0].total;
	s.height = PAD_TOP + (int)(t.max_depth + 1) * FRAME_H + PAD_BOTTOM;
	if (s.height < MIN_HEIGHT)
		s.height = MIN_HEIGHT;
	put_header(out, opts, width, s.height);
	if (!s.total) {
		fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no samples</text>\n",
			width / 2, s.height / 2);
		fprintf(out, "<g id=\"frames\" data-total=\"0\" data-width=\"%d\" data-pad=\"%d\">"
			     "</g>\n</svg>\n", width - 2 * PAD_SIDE, PAD_SIDE);
		goto done;
	}

	stack = malloc((size_t)t.n * sizeof(*stack));	/* each node is pushed once */
	if (!stack) {
		err = -ENOMEM;
		goto out;
	}
	fprintf(out, "<g id=\"frames\" data-total=\"%" PRId64 "\" data-width=\"%d\" data-pad=\"%d\">\n",
		s.total, width - 2 * PAD_SIDE, PAD_SIDE);
	stack[sp++] = (struct walk){ .node = 0, .depth = 0, .x = 0 };
	while (sp) {
		struct walk e = stack[--sp];
		const struct fnode *nd = &t.nodes[e.node];
		int64_t cx = e.x;

		/*
		 * A frame too narrow to draw: left out and counted. Its children are
		 * narrower still, so they are walked only to be counted too.
		 */
		if ((double)nd->total * s.inner / (double)s.total < minw)
			elided++;
		else
			put_frame(&s, e.node, e.depth, e.x);
		/* children laid out left to right, stacked so the leftmost comes out first */
		for (uint32_t k = 0; k < nd->nchild; k++) {
			struct walk *c = &stack[sp + nd->nchild - 1 - k];

			c->node = t.order[nd->first + k];
			c->depth = e.depth + 1;
			c->x = cx;
			cx += t.nodes[c->node].total;
		}
		sp += nd->nchild;
	}
	fputs("</g>\n", out);
	if (elided)
		fprintf(out, "<text id=\"elided\" x=\"%d\" y=\"42\" text-anchor=\"end\">%" PRIu64
			     " frames narrower than %s px not shown</text>\n",
			width - PAD_SIDE, elided, fixed2(bmin, sizeof(bmin), minw));
	fputs("</svg>\n", out);
done:
	if (fflush(out) || ferror(out))
		err = -EIO;
out:
	tree_fini(&t);
	free(stack);
	return err;
}
