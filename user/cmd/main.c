// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>

#include "ablate.h"
#include "auditcmd.h"
#include "cli.h"
#include "loader.h"
#include "log.h"
#include "replaycmd.h"
#include "agent.h"
#include "top.h"
#include "watch.h"

static int run(struct config *cfg)
{
	switch (cfg->cmd) {
	case CMD_HELP:
		cli_usage(stdout, cfg->help_cmd);
		return SP_EXIT_OK;
	case CMD_VERSION:
		printf("sockpulse %s (libbpf %s)\n", SP_VERSION, loader_libbpf_version());
		return SP_EXIT_OK;
	case CMD_REPLAY:
		return replay_run(cfg);
	case CMD_CHECK:
		return loader_check(cfg);
	case CMD_AGENT:
		return agent_run(cfg);
	case CMD_TOP:
		return top_run(cfg);
	case CMD_AUDIT:
		return audit_run(cfg);
	case CMD_WATCH:
	default:
		return watch_run(cfg);
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	int ret;

	config_init(&cfg);
	ret = cli_parse(argc, argv, &cfg);
	if (ret)
		goto out;
	if (cfg.verbose)
		log_set_level(LOG_DEBUG);
	cfg.ablate = ablate_from_env();
	ret = run(&cfg);
out:
	config_release(&cfg);
	return ret;
}
