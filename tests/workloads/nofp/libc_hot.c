// SPDX-License-Identifier: Apache-2.0
/*
 * Built with -O2 -fomit-frame-pointer. The hot path runs through Debian's libc,
 * which has no frame pointers either: qsort() calling our comparator, bsearch(),
 * and memcpy(). Every sample should unwind to main. Runs argv[1] seconds.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 20000
static int data[N], sorted[N];
static char src[1 << 20], dst[1 << 20];
volatile long sink;
/* called through a pointer: glibc's headers would otherwise inline bsearch */
static void *(*volatile bsearch_fn)(const void *, const void *, size_t, size_t,
				     int (*)(const void *, const void *)) = bsearch;

__attribute__((noinline)) int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

__attribute__((noinline)) void do_sort(void)
{
	for (int i = 0; i < N; i++)
		data[i] = (int)((i * 2654435761u) % 1000003u);
	qsort(data, N, sizeof(int), cmp_int);
	memcpy(sorted, data, sizeof(data));
}

__attribute__((noinline)) void do_search(void)
{
	for (int i = 0; i < 20000; i++) {
		int key = (int)((i * 40503u) % 1000003u);

		sink += bsearch_fn(&key, sorted, N, sizeof(int), cmp_int) != NULL;
	}
}

__attribute__((noinline)) void do_copy(void)
{
	for (int i = 0; i < 40; i++) {
		memcpy(dst, src, sizeof(src));
		src[i] = (char)i;
	}
	sink += dst[5];
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		do_sort();
		do_search();
		do_copy();
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
	return 0;
}
