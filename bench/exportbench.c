// SPDX-License-Identifier: Apache-2.0
/*
 * exportbench: encodes a synthetic profile of N distinct stacks as pprof and
 * as OTLP (common/pprof.c, agent/export/otlp.c), prints the time per encoding (median
 * of R runs) and the bytes before and after gzip, and writes the pprof to OUT
 * for bench/export.sh to compare with go tool pprof's own encoding.
 *
 *   exportbench [STACKS] [RUNS] [OUT]     (defaults 10000, 21, /tmp/exportbench.pb.gz)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "export.h"
#include "otlp.h"
#include "pprof.h"
#include "profile.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static size_t gz_size(const uint8_t *buf, size_t len)
{
	uLongf out_len = compressBound((uLong)len);
	uint8_t *out = malloc(out_len);

	if (!out || compress2(out, &out_len, buf, (uLong)len, 1) != Z_OK)
		out_len = 0;
	free(out);
	return out_len;
}

int main(int argc, char **argv)
{
	int nstacks = argc > 1 ? atoi(argv[1]) : 10000, runs = argc > 2 ? atoi(argv[2]) : 21;
	const char *out = argc > 3 ? argv[3] : "/tmp/exportbench.pb.gz";
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x4000000, .file = "/usr/bin/app",
				  .build_id = "0123456789abcdef" };
	struct export_label labels[3] = { { "namespace", "shop" }, { "pod", "web-1" },
					  { "container", "app" } };
	double t_pprof[101], t_otlp[101];
	uint8_t *buf;
	size_t len, pprof_len = 0, otlp_len = 0, pprof_gz = 0, otlp_gz = 0;
	int nfuncs = 2000;
	unsigned int seed = 42;

	if (runs > 101)
		runs = 101;
	p->period_nanos = 52631578;
	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 60000000000LL;
	profile__add_mapping(p, &m);
	for (int f = 0; f < nfuncs; f++) {
		char name[64];
		struct prof_location l = { .mapping = 0, .address = 0x400000 + (uint64_t)f * 64,
					   .function = name, .file = "src/app.cc", .line = f };

		snprintf(name, sizeof(name), "ns::Service::handler_%d(int, char const*)", f);
		profile__add_location(p, &l);
	}
	for (int s = 0; s < nstacks; s++) {
		uint32_t locs[32], depth = 8 + (uint32_t)(rand_r(&seed) % 24);
		struct prof_label l[2] = { { .key = "pid", .num = 1000 + s % 7 },
					   { .key = "thread", .str = "worker" } };

		for (uint32_t d = 0; d < depth; d++)
			locs[d] = (uint32_t)(rand_r(&seed) % (unsigned int)nfuncs);
		locs[depth - 1] = 0;	/* main */
		profile__add_sample(p, locs, depth, 1 + rand_r(&seed) % 20, l, 2);
	}
	for (int r = 0; r < runs; r++) {
		double t0 = now_ms();

		if (pprof__encode(p, false, &buf, &len))
			return 1;
		t_pprof[r] = now_ms() - t0;
		pprof_len = len;
		pprof_gz = gz_size(buf, len);
		free(buf);
		t0 = now_ms();
		if (otlp__encode(p, "checkout", labels, 3, &buf, &len))
			return 1;
		t_otlp[r] = now_ms() - t0;
		otlp_len = len;
		otlp_gz = gz_size(buf, len);
		free(buf);
	}
	qsort(t_pprof, (size_t)runs, sizeof(double), cmp_d);
	qsort(t_otlp, (size_t)runs, sizeof(double), cmp_d);
	printf("exportbench: %d distinct stacks, %d functions, median of %d runs\n", nstacks, nfuncs,
	       runs);
	printf("  pprof encode: %.2f ms, %zu bytes, %zu gzipped\n", t_pprof[runs / 2], pprof_len,
	       pprof_gz);
	printf("  OTLP  encode: %.2f ms, %zu bytes, %zu gzipped\n", t_otlp[runs / 2], otlp_len, otlp_gz);
	printf("  against the 20 ms target: pprof %.3f, OTLP %.3f\n", t_pprof[runs / 2] / 20,
	       t_otlp[runs / 2] / 20);
	if (pprof__write_file(p, out))
		return 1;
	profile__free(p);
	return 0;
}
