// SPDX-License-Identifier: Apache-2.0
/*
 * CPython embedded in a program not named python: the interpreter is in the
 * shared libpython3.11.so.1.0 (as in an application that embeds Python, or
 * pyenv's and conda's builds), not in the executable as in Debian's python3.11.
 *   embed SCRIPT [ARGS...]    runs SCRIPT as python3.11 would
 */
#include <Python.h>

int main(int argc, char **argv)
{
	return Py_BytesMain(argc, argv);
}
