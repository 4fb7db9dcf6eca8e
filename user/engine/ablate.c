// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ablate.h"
#include "log.h"
#include "util.h"

static const struct {
	const char *name;
	unsigned int bit;
} parts[] = {
	{ "syscalls", ABLATE_SYSCALLS }, { "tcp_probe", ABLATE_TCP_PROBE },
	{ "engine", ABLATE_ENGINE },	 { "format", ABLATE_FORMAT },
	{ "write", ABLATE_WRITE },
};

/* Every connect-hook variant and the accept hooks: whichever the loader picks stays off. */
static const struct {
	const char *prog;
	unsigned int bit;
} progs[] = {
	{ "sp_sys_enter_connect", ABLATE_SYSCALLS }, { "sp_sys_exit_connect", ABLATE_SYSCALLS },
	{ "sp_kprobe_connect", ABLATE_SYSCALLS },    { "sp_kretprobe_connect", ABLATE_SYSCALLS },
	{ "sp_fentry_connect", ABLATE_SYSCALLS },    { "sp_fexit_connect", ABLATE_SYSCALLS },
	{ "sp_sys_exit_accept4", ABLATE_SYSCALLS },  { "sp_sys_exit_accept", ABLATE_SYSCALLS },
	{ "sp_tcp_probe", ABLATE_TCP_PROBE },
};

int ablate_parse(const char *s, unsigned int *mask, const char **bad, int *bad_len)
{
	const char *p = s, *end;
	size_t len, i;

	*mask = 0;
	while (p && *p) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < ARRAY_SIZE(parts); i++)
			if (len && strlen(parts[i].name) == len && !strncmp(parts[i].name, p, len))
				break;
		if (i == ARRAY_SIZE(parts)) {
			*bad = p;
			*bad_len = (int)len;
			return -EINVAL;
		}
		*mask |= parts[i].bit;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

unsigned int ablate_from_env(void)
{
	const char *s = getenv(ABLATE_ENV), *bad = NULL;
	unsigned int mask;
	int bad_len = 0;

	if (!s || !*s)
		return 0;
	if (ablate_parse(s, &mask, &bad, &bad_len)) {
		pr_warn("%s: unknown part '%.*s' (syscalls, tcp_probe, engine, format, write): "
			"nothing switched off",
			ABLATE_ENV, bad_len, bad);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		if (mask & parts[i].bit)
			pr_warn("%s: %s switched off, for a benchmark: lines are missing or wrong",
				ABLATE_ENV, parts[i].name);
	return mask;
}

bool ablate_prog_off(unsigned int mask, const char *name)
{
	for (size_t i = 0; mask && i < ARRAY_SIZE(progs); i++)
		if ((mask & progs[i].bit) && !strcmp(progs[i].prog, name))
			return true;
	return false;
}
