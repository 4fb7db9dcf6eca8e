// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse agent`: the unattended host agent. One sink on the agent core that
 *   - appends the chosen actions as JSON lines to the log file (jsonlog.c: rotation, SIGHUP),
 *   - keeps the metrics (metrics.c) and serves them on /metrics (http.c),
 *   - reads the socket table at start (seeding) and every --sockdiag-interval (sockdiag.c),
 *   - talks to systemd (sdnotify.c): READY after attach and bind, STATUS, WATCHDOG, STOPPING.
 * Nothing here is fatal once running: log and scrape problems are counted and reported.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "ablate.h"
#include "agent.h"
#include "audit.h"
#include "clock.h"
#include "engine.h"
#include "format.h"
#include "http.h"
#include "jsonlog.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "sdnotify.h"
#include "service.h"
#include "sockdiag.h"

#define LOG_QUEUE_BYTES (4 << 20)
#define LOG_REPORT_NS	(60 * 1000000000ULL) /* write errors on stderr at most once a minute */
#define LOG_CHECK_NS	(1000000000ULL)	     /* path still ours? retry a failed open */
#define STATUS_NS	(10 * 1000000000ULL)
#define SEED_TIMEOUT_MS 5000

struct service {
	const struct config *cfg;
	struct agent agent;
	struct format_ctx fmt;
	struct metrics m;
	bool log_on, http_on, diag_on;
	struct jsonlog log;
	uint32_t log_mask;
	uint64_t seq;
	struct http_server http;
	struct sockdiag diag;
	uint64_t next_diag_ns;
	uint64_t seeded;
	struct sdnotify sd;
	uint64_t last_log_check_ns, last_status_ns;
};

static void on_event(void *ctx, const struct sp_event *ev)
{
	struct service *s = ctx;
	char *line;
	size_t n;

	metrics_on_event(&s->m, ev);
	if (!s->log_on || (unsigned int)ev->action >= SP_ACT_MAX ||
	    !(s->log_mask & (1u << ev->action)))
		return;
	if (s->cfg->ablate & ABLATE_FORMAT) {
		s->seq++;
		return;
	}
	line = jsonlog_reserve(&s->log, SP_LINE_MAX);
	if (!line)
		return; /* counted as dropped */
	n = format_json(line, SP_LINE_MAX, ev, s->seq + 1, &s->fmt);
	if (n && (s->cfg->ablate & ABLATE_WRITE)) {
		s->seq++;
		return; /* reserved, never committed: discarded */
	}
	if (n) {
		s->seq++;
		jsonlog_commit(&s->log, n);
	}
}

static void update_self(struct service *s)
{
	struct metrics_self *me = &s->m.self;
	uint64_t bad = 0;

	if (s->log_on) {
		me->log_lines_written = s->log.st.lines_written;
		me->log_bytes_written = s->log.st.bytes_written;
		me->log_lines_dropped = s->log.st.lines_dropped;
		me->log_write_errors = s->log.st.write_errors;
		me->log_rotations = s->log.st.rotations;
		me->log_reopens = s->log.st.reopens;
	}
	memcpy(me->http_requests, s->http.requests, sizeof(me->http_requests));
	if (s->diag_on) {
		me->diag_dumps = s->diag.dumps;
		me->diag_errors = s->diag.errors;
		me->diag_last_duration_s = s->diag.last_duration_ns / 1e9;
	}
	for (int r = 1; r < DECODE_RESULT_MAX; r++)
		bad += s->agent.counts.decode_errors[r];
	me->decode_errors = bad;
	me->loop_stalls = s->agent.counts.loop_stalls;
}

static long render(void *ctx, char **body)
{
	struct service *s = ctx;

	update_self(s);
	if (s->agent.engine) {
		struct stuck_proc procs[4 * METRICS_TOP_N];
		struct portfc_tuple top[METRICS_TOP_N];
		size_t n;

		n = stuck_top_procs(engine_stuck(s->agent.engine), procs, 4 * METRICS_TOP_N);
		metrics_set_stuck(&s->m, procs, n);
		n = portfc_top(engine_ports(s->agent.engine), top, METRICS_TOP_N);
		metrics_set_ports(&s->m, top, n);
	}
	return metrics_render(&s->m, body);
}

static void send_status(struct service *s)
{
	char msg[256];
	uint64_t events = 0, lost = 0;

	for (int t = 1; t < SP_REC_TYPE_MAX; t++) {
		events += s->agent.counts.received[t];
		lost += s->agent.counts.lost[t];
	}
	snprintf(msg, sizeof(msg), "STATUS=%llu events, %llu lost, %llu log lines, %llu log errors",
		 (unsigned long long)events, (unsigned long long)lost,
		 (unsigned long long)s->log.st.lines_written,
		 (unsigned long long)s->log.st.write_errors);
	sdnotify_send(&s->sd, msg);
}

static void on_tick(void *ctx, uint64_t now)
{
	struct service *s = ctx;

	if (s->http_on)
		http_run(&s->http); /* connection timeouts */
	sdnotify_watchdog(&s->sd, now);
	if (s->diag_on && now >= s->next_diag_ns) {
		sockdiag_start(&s->diag, NULL); /* -EBUSY: the last one is still running */
		s->next_diag_ns = now + s->cfg->sockdiag_interval_ns;
	}
	if (s->log_on && now - s->last_log_check_ns >= LOG_CHECK_NS) {
		s->last_log_check_ns = now;
		jsonlog_tick(&s->log, now, LOG_REPORT_NS);
	}
	if (now - s->last_status_ns >= STATUS_NS) {
		s->last_status_ns = now;
		send_status(s);
	}
}

static bool on_flush(void *ctx)
{
	struct service *s = ctx;

	if (s->log_on)
		jsonlog_flush(&s->log, clock_mono_ns()); /* errors are counted, never fatal */
	return true;
}

static void on_hup(void *ctx)
{
	struct service *s = ctx;
	int err;

	if (!s->log_on)
		return;
	err = jsonlog_reopen(&s->log, clock_mono_ns());
	if (err)
		pr_warn("SIGHUP: cannot reopen %s: %s (retrying every second)", s->log.path,
			strerror(-err));
	else
		pr_info("SIGHUP: reopened %s", s->log.path);
}

static void on_http(void *ctx, int fd, uint32_t events)
{
	http_run(ctx);
}

static void on_diag(void *ctx, int fd, uint32_t events)
{
	sockdiag_process(ctx);
}

static void diag_done(void *ctx, const struct diag_tally *t, bool ok)
{
	struct service *s = ctx;
	struct metrics_dest top[METRICS_TOP_N];
	uint64_t other;
	unsigned int n;

	n = diag_tally_top(t, top, METRICS_TOP_N, &other);
	metrics_set_diag(&s->m, t->states, t->states[SP_ST_TIME_WAIT], top, n, other);
}

/*
 * Seeding: every socket of the start-up dump. Established connections older than the agent get
 * their leases now, so they show at once (metrics, and the engine's lease table).
 */
static void seed_sock(void *ctx, const struct diag_tally *t, const struct diag_sock *ds)
{
	struct service *s = ctx;
	struct sp_conn c;

	if (ds->state != SP_ST_ESTABLISHED || !ds->cookie)
		return;
	metrics_seed_connection(&s->m, ds->cookie);
	if (s->agent.engine) {
		diag_to_conn(t, ds, &c);
		engine_seed(s->agent.engine, &c, clock_mono_ns());
	}
	s->seeded++;
}

static void walk_start(void *ctx)
{
	struct service *s = ctx;

	metrics_ka_begin(&s->m);
}

static void walk_sock(void *ctx, const struct audit_sock *as, uint64_t target_ms)
{
	struct service *s = ctx;

	(void)target_ms;
	if (as->state == SP_ST_ESTABLISHED)
		metrics_ka_add(&s->m, as->service_port, ka_idle_detect_ms(&as->ka));
}

static void walk_done(void *ctx, const struct audit *a, bool ok)
{
	struct service *s = ctx;

	(void)a;
	(void)ok;
	metrics_ka_end(&s->m);
}

static int start_log(struct service *s)
{
	const struct config *cfg = s->cfg;
	int err;

	s->log_mask = cfg->log_actions | (cfg->log_activity ? 1u << SP_ACT_ACTIVITY : 0);
	err =
	    jsonlog_open(&s->log, cfg->log_path, cfg->log_max_size, cfg->log_keep, LOG_QUEUE_BYTES);
	if (err == -EBUSY) {
		pr_warn("log %s is locked by another process (another sockpulse agent?): use a "
			"log file of its own",
			cfg->log_path);
		jsonlog_close(&s->log, clock_mono_ns());
		return SP_EXIT_FAILURE;
	}
	if (err == -EINVAL || err == -ENOMEM) {
		pr_warn("log %s: %s", cfg->log_path, strerror(-err));
		return SP_EXIT_FAILURE;
	}
	s->log_on = true;
	s->m.self.log_enabled = true;
	if (err)
		pr_warn("log %s: %s failed: %s; lines are queued and the open retried every second",
			cfg->log_path, s->log.last_op, strerror(-err));
	return SP_EXIT_OK;
}

static void start_diag(struct service *s)
{
	int err;

	if (!s->cfg->sockdiag_interval_ns)
		return;
	err = sockdiag_open(&s->diag, s->cfg, diag_done, s);
	if (err) {
		pr_warn("sock_diag: %s: socket table gauges are off", strerror(-err));
		sockdiag_close(&s->diag);
		return;
	}
	s->diag_on = true;
	err = sockdiag_dump_sync(&s->diag, seed_sock, SEED_TIMEOUT_MS);
	if (err)
		pr_warn("sock_diag: start-up dump: %s", strerror(-err));
	s->next_diag_ns = clock_mono_ns() + s->cfg->sockdiag_interval_ns;
}

static int start_http(struct service *s, char *where, size_t cap)
{
	struct sockaddr_storage ss;
	char host[64] = "";
	socklen_t len;
	bool off;
	int err;

	snprintf(where, cap, "off");
	if (metrics_parse_listen(s->cfg->metrics, &ss, &len, &off) || off)
		return SP_EXIT_OK;
	err = http_start(&s->http, (struct sockaddr *)&ss, len, render, s);
	if (err) {
		pr_warn("metrics: cannot listen on %s: %s", s->cfg->metrics, strerror(-err));
		return SP_EXIT_FAILURE;
	}
	err = agent_add_fd(&s->agent, http_fd(&s->http), on_http, &s->http);
	if (err) {
		pr_warn("metrics: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	s->http_on = true;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		snprintf(where, cap, "http://[%s]:%u/metrics", host, s->http.port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		snprintf(where, cap, "http://%s:%u/metrics", host, s->http.port);
	}
	return SP_EXIT_OK;
}

int service_run(const struct config *cfg)
{
	static struct service s; /* large (agent, metrics): not on the stack */
	const struct agent_sink sink = {
	    .ctx = &s,
	    .on_event = on_event,
	    .on_tick = on_tick,
	    .on_flush = on_flush,
	    .on_hup = on_hup,
	    .on_walk_start = walk_start,
	    .on_walk_sock = walk_sock,
	    .on_walk_done = walk_done,
	};
	char metrics_at[128], msg[512];
	int ret, err;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.m.self.start_time_s = (uint64_t)time(NULL);
	err = sdnotify_open(&s.sd);
	if (err)
		pr_warn("NOTIFY_SOCKET: %s; not telling systemd", strerror(-err));
	ret = agent_open(&s.agent, cfg, &sink);
	if (ret)
		goto out;
	s.fmt.connect_hook = connect_hook_name(s.agent.loader.hook);
	err = metrics_init(&s.m, SP_VERSION, loader_libbpf_version(), s.fmt.connect_hook);
	s.m.self.start_time_s = (uint64_t)time(NULL);
	if (err) {
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	if (cfg->log_path) {
		ret = start_log(&s);
		if (ret)
			goto out;
	}
	start_diag(&s);
	if (s.diag_on && agent_add_fd(&s.agent, sockdiag_fd(&s.diag), on_diag, &s.diag)) {
		pr_warn("sock_diag: cannot join the event loop: socket table gauges are off");
		s.diag_on = false;
	}
	ret = start_http(&s, metrics_at, sizeof(metrics_at));
	if (ret)
		goto out;
	agent_walk_start(&s.agent);

	pr_info("ready: %d programs attached, log %s, metrics %s, sock_diag %s "
		"(%d namespaces, %llu established connections seeded)",
		agent_programs(&s.agent), cfg->log_path ? cfg->log_path : "off", metrics_at,
		s.diag_on ? "on" : "off", s.diag_on ? s.diag.n_ns : 0,
		(unsigned long long)s.seeded);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=watching: %d programs attached, metrics %s",
		 agent_programs(&s.agent), metrics_at);
	sdnotify_send(&s.sd, msg);

	ret = agent_run(&s.agent);
	sdnotify_send(&s.sd, "STOPPING=1");
	agent_summary(&s.agent);
	if (s.log_on && (s.log.st.write_errors || s.log.st.lines_dropped))
		pr_warn("summary: log %s: %llu write errors, %llu lines dropped", s.log.path,
			(unsigned long long)s.log.st.write_errors,
			(unsigned long long)s.log.st.lines_dropped);
out:
	http_stop(&s.http);
	if (s.diag_on || s.diag.buf)
		sockdiag_close(&s.diag);
	if (s.log_on)
		jsonlog_close(&s.log, clock_mono_ns());
	agent_close(&s.agent);
	metrics_free(&s.m);
	sdnotify_close(&s.sd);
	return ret;
}
