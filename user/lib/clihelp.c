// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The commands, and the help the option table prints for all of them or for one. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

#ifndef ARRAY_SIZE
#endif

#define HELP_WIDTH 80
#define HELP_COL 24 /* where the help text of an option starts */

static const struct {
	const char *name;
	enum sp_command cmd;
	const char *args;	/* after the command in the usage line */
	const char *summary;	/* the general help's command list */
	const char *about;	/* the command's own help, wrapped when printed */
} commands[] = {
	{ "watch", CMD_WATCH, " [OPTIONS]",
	  "stream events to stdout (the default when stdout is not a terminal)",
	  "Streams TCP events to stdout, one line each: state changes, connect outcomes, "
	  "keepalive and retransmission timeouts, resets, inbound activity, and the engine's "
	  "lease and spike verdicts. Aligned text, or JSON lines with --json (see docs/EVENTS.md)." },
	{ "top", CMD_TOP, " [OPTIONS]",
	  "live dashboard: peers, leases, failures, spikes (the default on a terminal)",
	  "Live terminal dashboard: peers and their leases, connect failures, spikes and the "
	  "latest events. Press ? inside for the keys." },
	{ "agent", CMD_AGENT, " [OPTIONS]",
	  "the host agent: JSON lines log, Prometheus /metrics, socket table gauges",
	  "The host agent for systemd (tools/sockpulse.service): the events of watch written to "
	  "a JSON lines log with rotation, Prometheus metrics on /metrics, socket table gauges "
	  "from sock_diag." },
	{ "audit", CMD_AUDIT, " [OPTIONS]", "keepalive audit of established connections, once",
	  "One-shot keepalive audit of established connections per service port and process: "
	  "the worst-case time to notice a dead peer, and suggested settings." },
	{ "replay", CMD_REPLAY, " FILE [OPTIONS]",
	  "feed a JSON lines log through the engine, print its verdicts",
	  "Feeds a JSON lines log (from watch --json or the agent's log; - for stdin) through "
	  "the engine and prints its lease and spike lines as the live run would have, on the "
	  "log's clock." },
	{ "check", CMD_CHECK, " [OPTIONS]",
	  "load every connect-hook variant, report what works here",
	  "Loads each connect-hook variant (fentry, kprobe, tracepoint), tries to attach it, and "
	  "says what works on this kernel. The filter and ring options shape what is loaded." },
	{ "help", CMD_HELP, " [COMMAND]", "this help, or a command's", NULL },
	{ "version", CMD_VERSION, "", "version", NULL },
};

const char *cli_command_name(enum sp_command cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "?";
}

int cli_parse_command(const char *word, enum sp_command *cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(word, commands[i].name) == 0) {
			*cmd = commands[i].cmd;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- help ---- */

/* @text from column @col, wrapped at HELP_WIDTH, continuation lines indented to @col. */
static void put_wrapped(FILE *out, const char *text, size_t col)
{
	size_t at = col;

	while (*text) {
		size_t word = strcspn(text, " ");

		if (at > col && at + 1 + word > HELP_WIDTH) {
			fprintf(out, "\n%*s", (int)col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', out);
			at++;
		}
		fwrite(text, 1, word, out);
		at += word;
		text += word;
		while (*text == ' ')
			text++;
	}
	fputc('\n', out);
}

void cli_command_list(char *buf, size_t cap, unsigned int cmds)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(commands) && off < cap; i++)
		if (cmds & (1u << commands[i].cmd))
			off += snprintf(buf + off, cap - off, "%s%s", off ? ", " : "",
					commands[i].name);
}

static void put_option(FILE *out, const struct sp_option *o)
{
	char head[64];
	int n;

	if (o->short_flag)
		n = snprintf(head, sizeof(head), "  -%c, --%s%s%s", o->short_flag, o->name,
			     o->arg ? " " : "", o->arg ? o->arg : "");
	else
		n = snprintf(head, sizeof(head), "      --%s%s%s", o->name, o->arg ? " " : "",
			     o->arg ? o->arg : "");
	fputs(head, out);
	if (n < HELP_COL)
		fprintf(out, "%*s", HELP_COL - n, "");
	else
		fprintf(out, "\n%*s", HELP_COL, "");
	put_wrapped(out, o->help, HELP_COL);
}

static void put_exit_codes(FILE *out)
{
	fputs("\nExit status:\n"
	      "  0  success (also after --duration, SIGINT or SIGTERM)\n"
	      "  1  runtime error\n"
	      "  2  usage error: bad command or value, or an option the command does not take\n"
	      "  3  missing privilege: needs root or CAP_BPF and CAP_PERFMON\n"
	      "  4  kernel unsupported: no BTF (/sys/kernel/btf/vmlinux) or BPF feature missing\n"
	      "  5  nothing attached: programs loaded but no hook could be attached\n",
	      out);
}

/*
 * The options of @mask's commands, by section. The general help (@general) names the commands of
 * each section; a command's own help lists only what it takes.
 */
static void put_sections(FILE *out, unsigned int mask, bool general)
{
	for (unsigned int s = 0; s < SEC_MAX; s++) {
		unsigned int sec_cmds = 0;
		char cmds[96];

		for (size_t i = 0; i < cli_n_options; i++)
			if (cli_options[i].section == s && (cli_options[i].cmds & mask))
				sec_cmds |= cli_options[i].cmds;
		if (!sec_cmds)
			continue;
		if (general && (sec_cmds & CMDS_ALL) != CMDS_ALL) {
			cli_command_list(cmds, sizeof(cmds), sec_cmds);
			fprintf(out, "\n%s (%s):\n", cli_section_labels[s], cmds);
		} else {
			fprintf(out, "\n%s:\n", cli_section_labels[s]);
		}
		for (size_t i = 0; i < cli_n_options; i++)
			if (cli_options[i].section == s && (cli_options[i].cmds & mask))
				put_option(out, &cli_options[i]);
	}
}

void cli_usage(FILE *out, enum sp_command cmd)
{
	size_t c;

	for (c = 0; c < ARRAY_SIZE(commands); c++)
		if (commands[c].cmd == cmd && commands[c].about)
			break;
	if (c < ARRAY_SIZE(commands)) {
		fprintf(out, "Usage: sockpulse %s%s\n\n", commands[c].name, commands[c].args);
		put_wrapped(out, commands[c].about, 0);
		put_sections(out, 1u << cmd, false);
		put_exit_codes(out);
		return;
	}
	fputs("Usage: sockpulse [COMMAND] [OPTIONS]\n"
	      "\n"
	      "Watches TCP from inside the kernel with eBPF: state changes, connect outcomes,\n"
	      "keepalive and retransmission timeouts, resets and inbound activity.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (c = 0; c < ARRAY_SIZE(commands); c++) {
		char head[40];

		snprintf(head, sizeof(head), "  %s%s", commands[c].name,
			 commands[c].cmd == CMD_REPLAY ? " FILE" : "");
		fprintf(out, "%-*s", HELP_COL, head);
		put_wrapped(out, commands[c].summary, HELP_COL);
	}
	fputs("\n'sockpulse help COMMAND' (or 'sockpulse COMMAND --help') shows only the options\n"
	      "that COMMAND takes; an option a command does not take is refused.\n",
	      out);
	put_sections(out, CMDS_ALL, true);
	put_exit_codes(out);
}
