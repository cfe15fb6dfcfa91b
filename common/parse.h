/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_PARSE_H
#define COMMON_PARSE_H
/* Values of options and environment variables, read the same way by both daemons. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* on/true/yes/1 or off/false/no/0 (any case); -EINVAL for anything else. */
static inline int parse_bool(const char *val, bool *ret)
{
	static const char *const yes[] = { "on", "true", "yes", "1" }, *const no[] = { "off", "false",
										      "no", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(val, yes[i])) {
			*ret = true;
			return 0;
		}
		if (!strcasecmp(val, no[i])) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}
#endif
