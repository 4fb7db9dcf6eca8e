// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sockpulse audit`: see auditcmd.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auditcmd.h"
#include "clock.h"
#include "loader.h"
#include "log.h"
#include "tablewalk.h"

struct audit_cmd {
	const struct config *cfg;
	uint64_t real_ns;
	uint64_t seq;
	uint64_t listed;
};

static void on_sock(void *ctx, const struct audit_sock *s, uint64_t target_ms)
{
	struct audit_cmd *c = ctx;

	if (!c->cfg->walk.audit_connections || s->state != SP_ST_ESTABLISHED)
		return;
	if (c->cfg->json) {
		audit_print_sock_json(stdout, s, target_ms, c->real_ns, &c->seq);
	} else {
		if (!c->listed)
			printf("Connections:\n");
		audit_print_sock_text(stdout, s, target_ms);
	}
	c->listed++;
}

static void on_done(void *ctx, const struct audit *a, bool ok)
{
	struct audit_cmd *c = ctx;

	(void)ok;
	if (c->cfg->json) {
		audit_print_json(stdout, a, c->real_ns, &c->seq);
		return;
	}
	if (c->listed)
		putchar('\n');
	audit_print_text(stdout, a);
}

int audit_run(const struct config *cfg)
{
	struct audit_cmd c = {.cfg = cfg, .real_ns = clock_real_ns()};
	struct tablewalk_hooks hooks = {
		.ctx = &c,
		.owners = true,
		.on_sock = on_sock,
		.on_done = on_done,
	};
	struct tablewalk tw;
	int ret, err;

	ret = loader_preflight();
	if (ret)
		return ret;
	err = tablewalk_open(&tw, cfg, NULL, &hooks);
	if (err) {
		tablewalk_close(&tw);
		return err == -EPERM || err == -EACCES ? SP_EXIT_PRIVILEGE : SP_EXIT_KERNEL;
	}
	err = tablewalk_run(&tw, clock_mono_ns());
	ret = SP_EXIT_OK;
	if (err) {
		pr_warn("audit: cannot walk the socket table: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
	} else if (!tw.ok) {
		pr_warn("audit: some namespaces could not be walked (see -v); the report covers "
			"the others");
	}
	if (fflush(stdout) || ferror(stdout)) {
		pr_warn("audit: cannot write the report: %s", strerror(errno));
		ret = SP_EXIT_FAILURE;
	}
	tablewalk_close(&tw);
	return ret;
}
