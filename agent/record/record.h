/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_RECORD_H
#define AGENT_RECORD_H

#include "cli.h"

/* Runs `profleet-agent record`; returns the process exit status (0 ok, 1 runtime error). */
int record_run(const struct record_config *cfg);

struct profile;
/* Writes one profile to one --output (atomically: a temporary file, then rename). */
int record_write_output(const struct profile *p, const struct output *o);
#endif
