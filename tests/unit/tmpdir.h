/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A scratch directory for the tests of one file: tmpdir_make() in the group's setup, teardown()
 * removes it with everything in it, at(NAME) is a path inside it.
 */
#ifndef SP_TEST_TMPDIR_H
#define SP_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[256];

static int tmpdir_make(const char *name)
{
	snprintf(dir, sizeof(dir), "/tmp/sp-%s-XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	static char p[2][512]; /* two at a time: symlink(at(a), at(b)) */
	static int i;

	i = !i;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

#endif
