// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The configuration file: `key = value` lines whose keys are the long option names. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "safefile.h"
#include "util.h"

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static const struct option *find_option(const struct option *opts, const char *name)
{
	for (; opts->name; opts++)
		if (strcmp(opts->name, name) == 0)
			return opts;
	return NULL;
}

static bool is_forbidden(const char *const *forbidden, const char *name)
{
	for (; forbidden && *forbidden; forbidden++)
		if (strcmp(*forbidden, name) == 0)
			return true;
	return false;
}

/* 1 true, 0 false, -1 not a boolean */
static int parse_bool(const char *v)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

static int __attribute__((format(printf, 2, 3))) line_error(const char *where, const char *fmt, ...)
{
	char msg[CONFIG_LINE_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_warn("%s%s", where, msg);
	return -EINVAL;
}

static int apply_line(char *line, const struct option *opts, const char *const *forbidden,
		      config_apply_fn apply, void *ctx, const char *where)
{
	const struct option *o;
	char *eq, *key, *value;
	size_t vl;
	int b;

	eq = strchr(line, '=');
	if (!eq)
		return line_error(where, "expected 'key = value', got '%s'", line);
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key)
		return line_error(where, "missing key before '='");
	o = find_option(opts, key);
	if (!o || is_forbidden(forbidden, key))
		return line_error(where, "unknown key '%s'", key);
	vl = strlen(value);
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value[vl - 1] = '\0';
		value++;
	} else if (strchr(value, '"')) {
		return line_error(where, "unbalanced quotes in value of '%s'", key);
	}
	if (o->has_arg == no_argument) {
		b = parse_bool(value);
		if (b < 0)
			return line_error(where, "'%s' takes true or false", key);
		return b ? (apply(ctx, key, NULL) ? -EINVAL : 0) : 0;
	}
	if (!*value && o->has_arg == required_argument)
		return line_error(where, "'%s' needs a value", key);
	return apply(ctx, key, value) ? -EINVAL : 0;
}

int config_load(const char *path, const struct option *opts, const char *const *forbidden,
		config_apply_fn apply, void *ctx, char *where, size_t where_cap)
{
	char line[CONFIG_LINE_MAX + 2];
	unsigned int lineno = 0;
	size_t n;
	char *s;
	int err = 0;
	char why[160];
	FILE *f = NULL;
	int fd;

	fd = safefile_open(path, O_RDONLY, 0, SAFEFILE_CONFIG, why, sizeof(why));
	if (fd >= 0 && !(f = fdopen(fd, "r")))
		close(fd);
	if (!f) {
		err = fd < 0 ? fd : -errno;
		if (why[0])
			pr_warn("config %s: refused: %s", path, why);
		else
			pr_warn("config %s: %s", path, strerror(-err));
		return err;
	}
	/* zeroed first: bytes after the first NUL then show there was one (fgets hides it) */
	while ((memset(line, 0, sizeof(line)), fgets(line, sizeof(line), f))) {
		lineno++;
		snprintf(where, where_cap, "%s:%u: ", path, lineno);
		n = strlen(line);
		if (n + 1 < sizeof(line) && memchr(line + n + 1, '\n', sizeof(line) - n - 1)) {
			err = line_error(where, "NUL byte in line (is this a text file?)");
			break;
		}
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(f)) {
			err = line_error(where, "line longer than %d bytes", CONFIG_LINE_MAX);
			break;
		}
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		err = apply_line(s, opts, forbidden, apply, ctx, where);
		if (err)
			break;
	}
	if (!err && ferror(f)) {
		err = -EIO;
		pr_warn("config %s: read error", path);
	}
	fclose(f);
	if (where_cap)
		where[0] = '\0';
	return err;
}

const char *config_find_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0)
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}
