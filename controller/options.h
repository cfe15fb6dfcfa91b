/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_OPTIONS_H
#define CONTROLLER_OPTIONS_H
/* The controller's command line and environment (PROFLEET_*). */
struct ctl_options;

/* 0, or -1 after saying what is wrong on stderr; exits for --help and --version. */
int options_parse(int argc, char **argv, struct ctl_options *o);
#endif
