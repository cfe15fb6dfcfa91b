/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_FLAMEGRAPH_H
#define AGENT_FLAMEGRAPH_H

#include <stdio.h>

struct profile;

/*
 * Folded stacks, one line per distinct stack, sorted: "comm;root;...;leaf N".
 * The process name (label "comm") comes first; kernel frames end in "_[k]";
 * ';' inside a name becomes ':' and line breaks become spaces.
 */
int folded__write(const struct profile *p, FILE *out);

struct flamegraph_opts {
	const char *title;	/* NULL = "CPU flame graph" */
	const char *subtitle;	/* NULL = none */
	int width;		/* 0 = 1200 */
	double min_width_px;	/* 0 = 0.1: narrower frames are left out (and counted) */
};

/*
 * A self-contained SVG flame graph: root at the bottom, widths proportional to
 * samples, colours hashed from names (kernel frames in their own hue), a
 * <title> per frame for hover, and a small script for details, click-to-zoom
 * and search. Same input, same bytes.
 */
int flamegraph__write_svg(const struct profile *p, FILE *out, const struct flamegraph_opts *opts);

#endif
