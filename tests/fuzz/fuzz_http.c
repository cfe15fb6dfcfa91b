// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: how the controller's HTTP API reads a request: the path, the
 * from and until arguments and the two token headers, given as up to five
 * NUL-separated strings (a missing one is absent). A request it accepts names
 * a route, and a store route names valid Kubernetes names and a token.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *part[5] = { 0 }, why[300];
	struct http_route rt;
	unsigned int status;
	size_t off = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	for (int i = 0; i < 5 && off <= size; i++) {
		part[i] = buf + off;
		off += strlen(buf + off) + 1;
	}
	status = http_route(part[0], part[1], part[2], part[3], part[4], &rt, why, sizeof(why));
	if (status && status != 400 && status != 401 && status != 404)
		abort();
	if (status && !why[0])
		abort();
	if (!status && rt.kind == ROUTE_NONE)
		abort();
	if (!status && (rt.kind == ROUTE_PROFILE || rt.kind == ROUTE_SVG) &&
	    (!k8s_name_valid(rt.name, strlen(rt.name)) ||
	     (rt.ns[0] && !k8s_name_valid(rt.ns, strlen(rt.ns))) || !rt.token || !*rt.token ||
	     rt.from < 0 || rt.until < 0))
		abort();
	free(buf);
	return 0;
}
