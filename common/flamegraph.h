/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_FLAMEGRAPH_H
#define AGENT_FLAMEGRAPH_H

#include <stdio.h>

struct profile;

/*
 * Folded stacks (the input format of flamegraph.pl, speedscope, ...): one line
 * per distinct stack, "comm;root_fn;...;leaf_fn count\n".
 * - The process name (label "comm") is the first element when the sample has one.
 * - Kernel frames end in "_[k]", Python frames in "_[py]"; a frame is named by
 *   its system name when it has one (Python: "module.Class.method").
 * - ';' inside a name becomes ':', CR and LF become ' ', and names are cut at
 *   FG_MAX_NAME bytes; stacks that are identical after this are merged.
 * - Lines are sorted by their frames, compared one frame at a time (so a stack
 *   comes right before the stacks that extend it), frames compared bytewise.
 * - A sample with no frames and no comm counts as "[unknown]", an empty name
 *   or comm as "[unknown]" or no comm; samples with a count <= 0 are left out.
 * 0, -EINVAL (a sample points past the locations), -ENOMEM, -E2BIG (more
 * than FG_MAX_NODES distinct frames) or -EIO (writing failed).
 */
int folded__write(const struct profile *p, FILE *out);

#define FG_MAX_NAME 4096	/* bytes of a frame name kept */
/*
 * Distinct (caller path, frame) pairs, the nodes of the frame tree: enough for
 * 100k samples of 127 frames that share nothing. Each costs about 40 bytes
 * while writing (500 MB at the cap); real profiles share most of their paths.
 */
#define FG_MAX_NODES (1u << 24)

struct flamegraph_opts {
	const char *title;	/* NULL = "CPU flame graph" */
	const char *subtitle;	/* NULL = none */
	int width;		/* pixels; 0 = 1200; kept within 200..100000 */
	double min_width_px;	/* 0 = 0.1: narrower frames (and all above them) are left
				 * out, and how many is shown */
};

/*
 * A self-contained SVG flame graph, from the same frame tree as the folded
 * output: root ("all") at the bottom, the process name above it, width
 * proportional to samples, siblings in name order. Colours are warm and hashed
 * from the name (same name, same colour); kernel frames are blue. Each frame is
 * a <g> holding <title>name (N samples, P%)</title>, a <rect> and its name cut
 * to fit. An inline script shows details on hover, zooms on click (Reset Zoom
 * to go back), and searches with Ctrl-F or "Search" (regular expression).
 * Every name is XML-escaped; invalid UTF-8 becomes U+FFFD. The same profile
 * always gives the same bytes. A profile without samples gives a valid SVG
 * saying "no samples". Errors as folded__write.
 */
int flamegraph__write_svg(const struct profile *p, FILE *out, const struct flamegraph_opts *opts);

#endif
