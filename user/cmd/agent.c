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
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <arpa/inet.h>

#include "ablate.h"
#include "agent.h"
#include "audit.h"
#include "cgroup.h"
#include "clock.h"
#include "engine.h"
#include "format.h"
#include "http.h"
#include "jsonlog.h"
#include "log.h"
#include "logseq.h"
#include "metrics.h"
#include "names.h"
#include "runtime.h"
#include "safefile.h"
#include "sdnotify.h"
#include "sockdiag.h"
#include "webconfig.h"

#define LOG_QUEUE_BYTES (4 << 20)
#define LOG_REPORT_NS	(60 * 1000000000ULL) /* write errors on stderr at most once a minute */
#define LOG_CHECK_NS	(1000000000ULL)	     /* path still ours? retry a failed open */
#define STATUS_NS	(10 * 1000000000ULL)
#define SEED_TIMEOUT_MS 5000

struct agent {
	const struct config *cfg;
	struct runtime rt;
	struct format_ctx fmt;
	struct metrics m;
	bool log_on, http_on, diag_on;
	struct jsonlog log;
	uint32_t log_mask;
	struct logseq seq;
	struct http_server http;
	struct webconfig web; /* --web-config; read once, at start */
	bool web_on;
	struct sockdiag diag;
	uint64_t next_diag_ns;
	uint64_t seeded;
	struct sdnotify sd;
	uint64_t last_log_check_ns, last_status_ns;
};

/*
 * The log-gap line of the pending gap; false if it could not be queued with room for the line
 * after it (otherwise a nearly full queue would alternate gap lines and drops).
 */
static bool write_gap(struct agent *s, uint64_t real_ns)
{
	char *line = jsonlog_reserve(&s->log, LOGSEQ_LINE_MAX + SP_LINE_MAX);
	size_t n;

	if (!line)
		return false;
	n = logseq_format_gap(&s->seq, line, LOGSEQ_LINE_MAX, real_ns);
	if (!n)
		return false;
	logseq_take(&s->seq);
	logseq_gap_done(&s->seq);
	jsonlog_commit(&s->log, n);
	return true;
}

static void on_event(void *ctx, const struct sp_event *ev)
{
	struct agent *s = ctx;
	char *line;
	size_t n;

	metrics_on_event(&s->m, ev);
	if (!s->log_on || (unsigned int)ev->action >= SP_ACT_MAX ||
	    !(s->log_mask & (1u << ev->action)))
		return;
	if (s->cfg->ablate & ABLATE_FORMAT) {
		logseq_take(&s->seq);
		return;
	}
	/* after a loss, the next line written says so */
	if (logseq_gap_pending(&s->seq) && !write_gap(s, ev->real_ns)) {
		logseq_drop(&s->seq, s->log.last_errno);
		return;
	}
	line = jsonlog_reserve(&s->log, SP_LINE_MAX);
	if (!line) {
		/* counted as dropped: its number is gone with it */
		logseq_drop(&s->seq, s->log.last_errno);
		return;
	}
	n = format_json(line, SP_LINE_MAX, ev, logseq_peek(&s->seq), &s->fmt);
	if (n && (s->cfg->ablate & ABLATE_WRITE)) {
		logseq_take(&s->seq);
		return; /* reserved, never committed: discarded */
	}
	if (n) {
		logseq_take(&s->seq);
		jsonlog_commit(&s->log, n);
	}
}

/* The service label of a socket: its unit, else its container's short id, else the command. */
static size_t service_of(void *ctx, uint64_t cgroup_id, const char *comm, const char **name)
{
	struct agent *s = ctx;
	const struct cg_attr *a = cgroup_id ? cg_lookup(s->rt.cg, cgroup_id) : NULL;
	size_t len = 0;

	if (a)
		*name = cg_service(a, &len);
	if (!len) {
		*name = comm;
		len = strnlen(comm, SP_COMM_MAX);
	}
	return len;
}

static void update_self(struct agent *s)
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
		bad += s->rt.counts.decode_errors[r];
	me->decode_errors = bad;
	me->loop_stalls = s->rt.counts.loop_stalls;
}

static long render(void *ctx, char **body)
{
	struct agent *s = ctx;

	update_self(s);
	if (s->rt.engine) {
		struct stuck_proc procs[4 * METRICS_TOP_N];
		struct portfc_tuple top[METRICS_TOP_N];
		size_t n;

		metrics_set_leases(&s->m, engine_leases(s->rt.engine));
		n = stuck_top_procs(engine_stuck(s->rt.engine), procs, 4 * METRICS_TOP_N);
		metrics_set_stuck(&s->m, procs, n);
		n = portfc_top(engine_ports(s->rt.engine), top, METRICS_TOP_N);
		metrics_set_ports(&s->m, top, n);
	}
	return metrics_render(&s->m, body);
}

static void send_status(struct agent *s)
{
	char msg[256];
	uint64_t events = 0, lost = 0;

	for (int t = 1; t < SP_REC_TYPE_MAX; t++) {
		events += s->rt.counts.received[t];
		lost += s->rt.counts.lost[t];
	}
	snprintf(msg, sizeof(msg), "STATUS=%llu events, %llu lost, %llu log lines, %llu log errors",
		 (unsigned long long)events, (unsigned long long)lost,
		 (unsigned long long)s->log.st.lines_written,
		 (unsigned long long)s->log.st.write_errors);
	sdnotify_send(&s->sd, msg);
}

static void on_tick(void *ctx, uint64_t now)
{
	struct agent *s = ctx;

	if (s->http_on)
		http_run(&s->http, now); /* deadlines */
	sdnotify_watchdog(&s->sd, now);
	if (s->diag_on && now >= s->next_diag_ns) {
		sockdiag_start(&s->diag, NULL); /* -EBUSY: the last one is still running */
		s->next_diag_ns = now + s->cfg->walk.sockdiag_interval_ns;
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
	struct agent *s = ctx;

	if (s->log_on)
		jsonlog_flush(&s->log, clock_mono_ns()); /* errors are counted, never fatal */
	return true;
}

static void on_hup(void *ctx)
{
	struct agent *s = ctx;
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
	http_run(ctx, clock_mono_ns());
}

static void on_diag(void *ctx, int fd, uint32_t events)
{
	sockdiag_process(ctx);
}

static void diag_done(void *ctx, const struct diag_tally *t, bool ok)
{
	struct agent *s = ctx;
	struct metrics_dest top[METRICS_TOP_N];
	uint64_t other;
	unsigned int n;

	n = diag_tally_top(t, top, METRICS_TOP_N, &other);
	metrics_set_diag(&s->m, t->states, t->states[SP_ST_TIME_WAIT], top, n, other);
}

/*
 * Seeding: every socket of the start-up dump. Established connections older than the agent get
 * their leases now in the engine's lease table, so they show at once (the metrics read it).
 */
static void seed_sock(void *ctx, const struct diag_tally *t, const struct diag_sock *ds)
{
	struct agent *s = ctx;
	struct sp_conn c;

	if (ds->state != SP_ST_ESTABLISHED || !ds->cookie)
		return;
	if (s->rt.engine) {
		diag_to_conn(t, ds, &c);
		engine_seed(s->rt.engine, &c, clock_mono_ns());
	}
	s->seeded++;
}

static void walk_start(void *ctx)
{
	struct agent *s = ctx;

	metrics_ka_begin(&s->m);
}

static void walk_sock(void *ctx, const struct audit_sock *as, uint64_t target_ms)
{
	struct agent *s = ctx;

	(void)target_ms;
	if (as->state == SP_ST_ESTABLISHED)
		metrics_ka_add(&s->m, as->service_port, ka_idle_detect_ms(&as->ka));
}

static void walk_done(void *ctx, const struct audit *a, bool ok)
{
	struct agent *s = ctx;

	(void)a;
	(void)ok;
	metrics_ka_end(&s->m);
}

/* The last event.sequence of the log we append to, or of its newest rotated file; 0: none. */
static uint64_t last_sequence(const struct jsonlog *lg)
{
	char path[PATH_MAX], why[160];
	uint64_t seq = 0;
	int fd;

	if (lg->fd >= 0 && logseq_last_in_fd(lg->fd, &seq) == 0)
		return seq;
	if (lg->keep == 0 || snprintf(path, sizeof(path), "%s.1", lg->path) >= (int)sizeof(path))
		return 0;
	fd = safefile_open(path, O_RDONLY, 0, SAFEFILE_LOG, why, sizeof(why));
	if (fd < 0)
		return 0;
	if (logseq_last_in_fd(fd, &seq))
		seq = 0;
	close(fd);
	return seq;
}

/* Numbers continue the file's; the first line of this run says it started, with its id. */
static void start_sequence(struct agent *s)
{
	uint64_t prev = last_sequence(&s->log);
	uint8_t rnd[16] = { 0 };
	char *line;
	size_t n;

	/* early in boot the pool may not be ready: the clock and pid still tell runs apart */
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t t = clock_real_ns(), p = (uint64_t)getpid();

		memcpy(rnd, &t, sizeof(t));
		memcpy(rnd + 8, &p, sizeof(p));
	}
	logseq_init(&s->seq, prev, rnd);
	line = jsonlog_reserve(&s->log, LOGSEQ_LINE_MAX);
	n = line ? logseq_format_start(&s->seq, line, LOGSEQ_LINE_MAX, clock_real_ns(), SP_VERSION,
				       prev)
		 : 0;
	if (n) {
		logseq_take(&s->seq);
		jsonlog_commit(&s->log, n);
	}
}

static int start_log(struct agent *s)
{
	const struct config *cfg = s->cfg;
	int err;

	s->log_mask = cfg->agent.log_actions | (cfg->agent.log_activity ? 1u << SP_ACT_ACTIVITY : 0);
	err =
	    jsonlog_open(&s->log, cfg->agent.log_path, cfg->agent.log_max_size, cfg->agent.log_keep, LOG_QUEUE_BYTES);
	if (err == -EBUSY) {
		pr_warn("log %s is locked by another process (another sockpulse agent?): use a "
			"log file of its own",
			cfg->agent.log_path);
		jsonlog_close(&s->log, clock_mono_ns());
		return SP_EXIT_FAILURE;
	}
	if (s->log.refused[0]) {
		pr_warn("log %s: refused: %s", cfg->agent.log_path, s->log.refused);
		jsonlog_close(&s->log, clock_mono_ns());
		return SP_EXIT_FAILURE;
	}
	if (err == -EINVAL || err == -ENOMEM) {
		pr_warn("log %s: %s", cfg->agent.log_path, strerror(-err));
		return SP_EXIT_FAILURE;
	}
	s->log_on = true;
	if (err)
		pr_warn("log %s: %s failed: %s; lines are queued and the open retried every second",
			cfg->agent.log_path, s->log.last_op, strerror(-err));
	start_sequence(s);
	return SP_EXIT_OK;
}

static void start_diag(struct agent *s)
{
	int err;

	if (!s->cfg->walk.sockdiag_interval_ns)
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
	s->next_diag_ns = clock_mono_ns() + s->cfg->walk.sockdiag_interval_ns;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(a6) ||
	       (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* --web-config, and the files it names, read and checked before anything is loaded. */
static int load_web(struct agent *s)
{
	char why[1024];
	int err;

	if (!s->cfg->agent.web_config)
		return SP_EXIT_OK;
	err = webconfig_load(&s->web, s->cfg->agent.web_config, why, sizeof(why));
	if (!err) {
		s->web_on = true;
		err = http_tls_check(&s->web, why, sizeof(why));
	}
	if (err == -ENOMEM) {
		pr_warn("web-config: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	if (err) {
		pr_warn("web-config %s", why);
		return err == -ENOTSUP ? SP_EXIT_FAILURE : SP_EXIT_USAGE;
	}
	return SP_EXIT_OK;
}

static int start_http(struct agent *s, char *where, size_t cap)
{
	const char *scheme = webconfig_tls(&s->web) ? "https" : "http";
	struct sockaddr_storage ss;
	char host[64] = "";
	socklen_t len;
	bool off;
	int err;

	snprintf(where, cap, "off");
	if (metrics_parse_listen(s->cfg->agent.metrics, &ss, &len, &off) || off)
		return SP_EXIT_OK;
	err = http_start(&s->http, (struct sockaddr *)&ss, len, s->web_on ? &s->web : NULL, render,
			 s);
	if (err) {
		pr_warn("metrics: cannot listen on %s: %s", s->cfg->agent.metrics, strerror(-err));
		return SP_EXIT_FAILURE;
	}
	err = runtime_add_fd(&s->rt, http_fd(&s->http), on_http, &s->http);
	if (err) {
		pr_warn("metrics: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	s->http_on = true;
	if (!is_loopback(&ss) && !webconfig_tls(&s->web))
		pr_warn("metrics: %s is reachable from other hosts, and the metrics name peers and "
			"processes: bind 127.0.0.1 or [::1] unless a firewall guards the port",
			s->cfg->agent.metrics);
	if (!is_loopback(&ss) && webconfig_tls(&s->web) && !webconfig_auth_on(&s->web))
		pr_warn("metrics: %s is reachable from other hosts with TLS but no basic_auth_users: "
			"anyone who reaches it reads the metrics",
			s->cfg->agent.metrics);
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		snprintf(where, cap, "%s://[%s]:%u/metrics", scheme, host, s->http.port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		snprintf(where, cap, "%s://%s:%u/metrics", scheme, host, s->http.port);
	}
	return SP_EXIT_OK;
}

int agent_run(const struct config *cfg)
{
	static struct agent s; /* large (agent, metrics): not on the stack */
	const struct runtime_sink sink = {
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
	/* before the programs load: an unsafe log path is refused at once, in one line */
	if (cfg->agent.log_path) {
		ret = start_log(&s);
		if (ret)
			goto out;
	}
	ret = load_web(&s);
	if (ret)
		goto out;
	ret = runtime_open(&s.rt, cfg, &sink);
	if (ret)
		goto out;
	s.fmt.connect_hook = connect_hook_name(s.rt.loader.hook);
	s.fmt.cg = s.rt.cg;
	err = metrics_init(&s.m, SP_VERSION, loader_libbpf_version(), s.fmt.connect_hook);
	s.m.service_of = service_of;
	s.m.service_ctx = &s;
	s.m.services_top = cfg->agent.metrics_services;
	s.m.self.start_time_s = (uint64_t)time(NULL);
	if (err) {
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	s.m.self.log_enabled = s.log_on;
	start_diag(&s);
	if (s.diag_on && runtime_add_fd(&s.rt, sockdiag_fd(&s.diag), on_diag, &s.diag)) {
		pr_warn("sock_diag: cannot join the event loop: socket table gauges are off");
		s.diag_on = false;
	}
	ret = start_http(&s, metrics_at, sizeof(metrics_at));
	if (ret)
		goto out;
	runtime_walk_start(&s.rt);

	pr_info("ready: %d programs attached, log %s, metrics %s, sock_diag %s "
		"(%d namespaces, %llu established connections seeded)",
		runtime_programs(&s.rt), cfg->agent.log_path ? cfg->agent.log_path : "off", metrics_at,
		s.diag_on ? "on" : "off", s.diag_on ? s.diag.n_ns : 0,
		(unsigned long long)s.seeded);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=watching: %d programs attached, metrics %s",
		 runtime_programs(&s.rt), metrics_at);
	sdnotify_send(&s.sd, msg);

	ret = runtime_run(&s.rt);
	sdnotify_send(&s.sd, "STOPPING=1");
	runtime_summary(&s.rt);
	if (s.log_on && (s.log.st.write_errors || s.log.st.lines_dropped))
		pr_warn("summary: log %s: %llu write errors, %llu lines dropped", s.log.path,
			(unsigned long long)s.log.st.write_errors,
			(unsigned long long)s.log.st.lines_dropped);
out:
	http_stop(&s.http);
	webconfig_free(&s.web);
	if (s.diag_on || s.diag.buf)
		sockdiag_close(&s.diag);
	if (s.log_on)
		jsonlog_close(&s.log, clock_mono_ns());
	runtime_close(&s.rt);
	metrics_free(&s.m);
	sdnotify_close(&s.sd);
	return ret;
}
