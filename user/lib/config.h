/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The optional configuration file (--config FILE). One setting per line, `key = value`, where
 * key is a long option name without the dashes; `#` starts a comment line; blank lines are
 * ignored. Options without a value (json, log-activity, ...) take true/false (also yes/no, on/off,
 * 1/0). A value may be double-quoted. The caller applies the file first and the command line
 * after it, so flags win.
 *
 * Errors (unknown key, missing '=', bad boolean, what the option parser rejects) name the file
 * and the line: "FILE:LINE: ...".
 */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_LINE_MAX 4096

/*
 * Applies one setting: @name the long option, @value its argument or NULL for flags set to true.
 * Returns 0, or non-zero after printing why (the caller has set the line context).
 */
typedef int (*config_apply_fn)(void *ctx, const char *name, const char *value);

/*
 * Reads @path and calls @apply for each setting, in order. @opts: the long options (getopt
 * table, {0}-terminated); options named in @forbidden (NULL-terminated) may not appear.
 * Returns 0, or -errno/-EINVAL after printing one line "sockpulse: FILE:LINE: why" on stderr.
 * @where receives "FILE:LINE: " for the setting being applied (for the apply callback's messages).
 */
int config_load(const char *path, const struct option *opts, const char *const *forbidden,
		config_apply_fn apply, void *ctx, char *where, size_t where_cap);

/* The value of --config in argv (either "--config FILE" or "--config=FILE"), or NULL. */
const char *config_find_arg(int argc, char **argv);

#endif
