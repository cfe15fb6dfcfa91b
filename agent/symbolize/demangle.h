/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_DEMANGLE_H
#define AGENT_DEMANGLE_H

/*
 * Demangles C++ (Itanium ABI) and Rust (legacy and v0) symbol names with
 * libiberty. Returns a malloc'd string, or NULL when the name is not mangled
 * (the caller keeps the original). Rust's "::h<16 hex digits>" hash suffix is
 * dropped: it only makes identical functions look different.
 */
char *demangle(const char *name);

#endif
