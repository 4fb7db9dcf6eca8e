/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * storm: a loopback TCP connection-storm generator for benchmarking the event pipeline.
 *
 * One forked server process accepts with epoll, echoes the payload and closes; N forked client
 * workers loop connect / send / recv / close until the duration elapses. Two ways to close:
 *   fin (default): clients close normally, so every connection walks the full TCP state
 *     machine (10 state changes) and TIME_WAIT accumulates as it would in real traffic; run it
 *     in a network namespace with a wide ip_local_port_range and tcp_tw_reuse=1 (tools/bench.sh
 *     does) to keep ephemeral ports from running out.
 *   rst: clients abort with SO_LINGER 0 and the server waits for the reset: 6 state changes per
 *     connection (CLOSE->SYN_SENT->ESTABLISHED->CLOSE on each side, LISTEN->SYN_RECV for the
 *     child), no TIME_WAIT. With --payload 0 this is the short-connection storm: connect, abort.
 *
 * Processes, not threads, so the tool builds with plain libc. Counters live in a shared
 * anonymous mapping, one slot per process and one writer per slot: no locking, and the parent
 * reads them after the children are reaped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum storm_exit {
	EXIT_RAN = 0,		/* the storm ran; numbers printed */
	EXIT_SETUP = 1,		/* could not set up (socket, bind, fork, ...) */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_NO_TRAFFIC = 3,	/* ran, but not a single connection completed */
	EXIT_INTERRUPTED = 130, /* SIGINT/SIGTERM: partial numbers printed */
};

#define MAX_WORKERS	 1024
#define MAX_PAYLOAD	 (16u << 20)
#define MAX_DURATION_S	 86400.0
#define ERRNO_SLOTS	 256		/* errno values at or above this land in the last slot */
#define IO_TIMEOUT_MS	 5000		/* one connection may not take longer than this */
#define ERROR_BACKOFF_US 1000		/* after a failed connection: don't spin on failures */
#define REAP_GRACE_MS	 3000		/* children past the deadline get this long, then SIGKILL */
#define SERVER_POLL_MS	 100
#define BUF_SIZE	 65536

struct config {
	double duration_s;
	unsigned int workers;
	const char *addr_str;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned int port; /* 0: pick a free one */
	unsigned int payload; /* 0: connect and close, nothing sent */
	bool close_rst;	      /* clients abort with SO_LINGER 0 */
	bool json;
};

/* One per process, in shared memory; each slot has exactly one writer. */
struct stats {
	uint64_t connections; /* client: completed round trips; server: connections accepted */
	uint64_t echoed;      /* server: connections that got their full echo */
	uint64_t short_replies; /* client: peer closed before the full echo came back */
	uint64_t errors[ERRNO_SLOTS];
};

struct storm {
	struct config cfg;
	int listen_fd;
	struct timespec start;
	struct timespec deadline;
	struct timespec stopped; /* when SIGINT/SIGTERM arrived */
	pid_t parent;
	pid_t server_pid;
	pid_t *worker_pids;
	struct stats *stats; /* [0] server, [1..workers] clients */
	size_t stats_len;
	bool interrupted;
};

static const char usage_text[] =
	"Usage: storm [OPTIONS]\n"
	"Loopback TCP connection storm: N client processes loop connect/send/recv/close against\n"
	"an in-process epoll echo server until the duration elapses.\n"
	"\n"
	"  -d, --duration SECONDS  how long to run (decimal allowed, default 10)\n"
	"  -w, --workers N         client processes, 1-1024 (default: number of online CPUs)\n"
	"  -a, --addr ADDR         IPv4 or IPv6 address to serve on (default 127.0.0.1)\n"
	"  -p, --port PORT         server port, 1-65535 (default: a free one)\n"
	"  -b, --payload BYTES     bytes each client sends and the server echoes back,\n"
	"                          0-16777216 (default 1; 0: connect, then close)\n"
	"  -c, --close fin|rst     how clients close: fin, a normal close (10 state changes per\n"
	"                          connection, TIME_WAIT); rst, an abort with SO_LINGER 0 (6 state\n"
	"                          changes, the server closes after the reset) (default fin)\n"
	"  -j, --json              print the summary as one JSON object\n"
	"  -h, --help              this text\n"
	"\n"
	"Exit codes: 0 ran; 1 setup failed; 2 bad usage; 3 no connection completed;\n"
	"130 interrupted by SIGINT/SIGTERM (partial summary printed).\n";

static void ts_add_ms(struct timespec *ts, double ms)
{
	long long ns = ts->tv_nsec + (long long)(ms * 1e6);

	ts->tv_sec += ns / 1000000000LL;
	ts->tv_nsec = ns % 1000000000LL;
}

static double ts_diff_ms(const struct timespec *a, const struct timespec *b)
{
	return (a->tv_sec - b->tv_sec) * 1e3 + (a->tv_nsec - b->tv_nsec) / 1e6;
}

static struct timespec now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

/* Milliseconds until @ts, clamped to [0, INT_MAX] for poll()/epoll_wait(). */
static int ms_until(const struct timespec *ts)
{
	struct timespec t = now();
	double ms = ts_diff_ms(ts, &t);

	if (ms <= 0)
		return 0;
	if (ms >= INT_MAX)
		return INT_MAX;
	return (int)ms + 1; /* round up: never wake before the deadline */
}

static void count_error(struct stats *st, int err)
{
	if (err < 0 || err >= ERRNO_SLOTS)
		err = ERRNO_SLOTS - 1;
	st->errors[err]++;
}

static const char *errno_name(int err, char *buf, size_t len)
{
	const char *name = err == ERRNO_SLOTS - 1 ? NULL : strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, len, err == ERRNO_SLOTS - 1 ? "E_OTHER" : "E%d", err);
	return buf;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* !(v > 0) also rejects NaN */
	if (errno || *end || !(v > 0) || v > MAX_DURATION_S)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_addr(struct config *cfg)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg->addr;

	memset(&cfg->addr, 0, sizeof(cfg->addr));
	if (inet_pton(AF_INET, cfg->addr_str, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(cfg->port);
		cfg->addr_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, cfg->addr_str, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cfg->port);
		cfg->addr_len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static void set_port(struct sockaddr_storage *ss, unsigned int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option longopts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "payload", required_argument, NULL, 'b' },
		{ "close", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned long v;
	long cpus;
	int opt;

	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	*cfg = (struct config){
		.duration_s = 10,
		.workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned int)cpus,
		.addr_str = "127.0.0.1",
		.payload = 1,
	};

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":d:w:a:p:b:c:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (parse_seconds(optarg, &cfg->duration_s)) {
				fprintf(stderr,
					"storm: --duration '%s': want seconds in (0, %.0f]\n",
					optarg, MAX_DURATION_S);
				return -EINVAL;
			}
			break;
		case 'w':
			if (parse_uint(optarg, 1, MAX_WORKERS, &v)) {
				fprintf(stderr,
					"storm: --workers '%s': want an integer in [1, %d]\n",
					optarg, MAX_WORKERS);
				return -EINVAL;
			}
			cfg->workers = v;
			break;
		case 'a':
			cfg->addr_str = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65535, &v)) {
				fprintf(stderr,
					"storm: --port '%s': want an integer in [1, 65535]\n",
					optarg);
				return -EINVAL;
			}
			cfg->port = v;
			break;
		case 'b':
			if (parse_uint(optarg, 0, MAX_PAYLOAD, &v)) {
				fprintf(stderr,
					"storm: --payload '%s': want an integer in [0, %u]\n",
					optarg, MAX_PAYLOAD);
				return -EINVAL;
			}
			cfg->payload = v;
			break;
		case 'c':
			if (strcmp(optarg, "fin") && strcmp(optarg, "rst")) {
				fprintf(stderr, "storm: --close '%s': want fin or rst\n", optarg);
				return -EINVAL;
			}
			cfg->close_rst = optarg[0] == 'r';
			break;
		case 'j':
			cfg->json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case ':':
			fprintf(stderr, "storm: option '%s' needs an argument\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "storm: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "storm: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (parse_addr(cfg)) {
		fprintf(stderr, "storm: --addr '%s': not an IPv4 or IPv6 address\n", cfg->addr_str);
		return -EINVAL;
	}
	return 0;
}

static int open_listener(struct storm *s)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	int one = 1;
	int fd;

	fd = socket(s->cfg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Restarting the bench on a fixed port must not trip over the last run's TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&s->cfg.addr, s->cfg.addr_len) ||
	    listen(fd, 4096) || getsockname(fd, (struct sockaddr *)&bound, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	s->cfg.port = ntohs(bound.ss_family == AF_INET ?
				    ((struct sockaddr_in *)&bound)->sin_port :
				    ((struct sockaddr_in6 *)&bound)->sin6_port);
	set_port(&s->cfg.addr, s->cfg.port);
	s->listen_fd = fd;
	return 0;
}

/*
 * Called first in every child: die with the parent (even on SIGKILL), take SIGTERM by default
 * so the parent can stop us, and leave SIGINT to the parent, which reaps and reports.
 */
static int child_setup(pid_t parent)
{
	sigset_t set;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		return -1;
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

/* ---- server ---------------------------------------------------------------------------- */

struct conn {
	uint32_t got;	   /* bytes received */
	uint32_t sent;	   /* bytes echoed */
	char *pend;	   /* echo bytes the socket would not take yet */
	uint32_t pend_len;
	uint32_t pend_off;
	bool open;
	bool echoed; /* counted: the whole payload went back */
};

struct server {
	struct storm *s;
	struct stats *st;
	int ep;
	struct conn *conns; /* indexed by fd */
	size_t nconns;
	char buf[BUF_SIZE];
};

static void server_close(struct server *sv, int fd)
{
	struct conn *c = &sv->conns[fd];

	free(c->pend);
	*c = (struct conn){ 0 };
	close(fd); /* also drops it from the epoll set */
}

static void server_accept(struct server *sv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i, fd, err;

	/* Bounded batch, so established connections are served between bursts of SYNs. */
	for (i = 0; i < 64; i++) {
		fd = accept4(sv->s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			count_error(sv->st, err);
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
				usleep(ERROR_BACKOFF_US);
			if (err != EINTR && err != ECONNABORTED)
				return;
			continue;
		}
		if ((size_t)fd >= sv->nconns) {
			count_error(sv->st, EMFILE);
			close(fd);
			continue;
		}
		ev.data.fd = fd;
		if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, fd, &ev)) {
			count_error(sv->st, errno);
			close(fd);
			continue;
		}
		sv->conns[fd] = (struct conn){ .open = true };
		sv->st->connections++;
	}
}

/* Write what is pending; returns 1 when all of it went out, 0 when blocked, -errno on error. */
static int server_flush(struct server *sv, int fd)
{
	struct conn *c = &sv->conns[fd];
	ssize_t n;

	while (c->pend_off < c->pend_len) {
		n = send(fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		c->pend_off += n;
		c->sent += n;
	}
	c->pend_off = c->pend_len = 0;
	return 1;
}

/*
 * Read what arrived and echo it. While the client does not take our echo, stop reading
 * (EPOLLOUT only): backpressure instead of an unbounded buffer.
 */
static void server_io(struct server *sv, int fd)
{
	struct epoll_event ev = { .data.fd = fd };
	struct conn *c = &sv->conns[fd];
	ssize_t n;
	int ret;

	if (c->pend_len) {
		ret = server_flush(sv, fd);
		if (ret < 0)
			goto fail;
		if (!ret)
			return;
		ev.events = EPOLLIN;
		if (epoll_ctl(sv->ep, EPOLL_CTL_MOD, fd, &ev)) {
			ret = -errno;
			goto fail;
		}
	}
	while (c->got < sv->s->cfg.payload) {
		n = recv(fd, sv->buf, sizeof(sv->buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			ret = -errno;
			goto fail;
		}
		if (n == 0) { /* client gave up (its deadline passed): not an error */
			server_close(sv, fd);
			return;
		}
		c->got += n;
		if (!c->pend) {
			c->pend = malloc(BUF_SIZE);
			if (!c->pend) {
				ret = -ENOMEM;
				goto fail;
			}
		}
		memcpy(c->pend, sv->buf, n);
		c->pend_len = n;
		c->pend_off = 0;
		ret = server_flush(sv, fd);
		if (ret < 0)
			goto fail;
		if (!ret) {
			ev.events = EPOLLOUT;
			if (epoll_ctl(sv->ep, EPOLL_CTL_MOD, fd, &ev)) {
				ret = -errno;
				goto fail;
			}
			return;
		}
	}
	if (c->sent < sv->s->cfg.payload)
		return;
	if (!c->echoed) {
		c->echoed = true;
		sv->st->echoed++;
	}
	if (sv->s->cfg.close_rst) {
		/* The client aborts: close only after its reset (or an EOF), which already moved
		 * the socket to CLOSE, so no FIN of ours adds state changes. */
		n = recv(fd, sv->buf, sizeof(sv->buf), 0);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
			return;
	}
	server_close(sv, fd); /* fin: a normal close, the server side goes through FIN_WAIT */
	return;
fail:
	/* Past the deadline, clients abandon connections mid-echo: resets then are expected. */
	if (ms_until(&sv->s->deadline))
		count_error(sv->st, -ret);
	server_close(sv, fd);
}

static int server_run(struct storm *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = -1 }, evs[256];
	struct timespec stop = s->deadline;
	struct server *sv;
	struct rlimit rl;
	int i, n, err = 0;

	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->s = s;
	sv->st = &s->stats[0];
	if (getrlimit(RLIMIT_NOFILE, &rl))
		rl.rlim_cur = 1024;
	sv->nconns = rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
	sv->conns = calloc(sv->nconns, sizeof(*sv->conns));
	sv->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!sv->conns || sv->ep < 0 || epoll_ctl(sv->ep, EPOLL_CTL_ADD, s->listen_fd, &ev)) {
		err = sv->conns ? -errno : -ENOMEM;
		goto out;
	}
	/* Outlive the clients a little to finish their last echoes; the parent stops us sooner. */
	ts_add_ms(&stop, REAP_GRACE_MS);
	while (ms_until(&stop) > 0 && getppid() == s->parent) {
		n = epoll_wait(sv->ep, evs, ARRAY_SIZE(evs), SERVER_POLL_MS);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd < 0)
				server_accept(sv);
			else if (sv->conns[evs[i].data.fd].open)
				server_io(sv, evs[i].data.fd);
		}
	}
out:
	if (sv->ep >= 0)
		close(sv->ep);
	free(sv->conns); /* the process exits next: fds and pending buffers go with it */
	free(sv);
	return err;
}

/* ---- clients --------------------------------------------------------------------------- */

/* Poll one fd until @events, the per-connection timeout, or the run's deadline. */
static int wait_fd(int fd, short events, const struct timespec *limit, const struct timespec *end)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int ms, ret;

	for (;;) {
		if (!ms_until(end))
			return -ECANCELED;
		ms = ms_until(limit);
		if (!ms)
			return -ETIMEDOUT;
		if (ms > ms_until(end))
			ms = ms_until(end);
		ret = poll(&pfd, 1, ms);
		if (ret > 0)
			return pfd.revents;
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * One connection: connect, send the payload while reading the echo, close.
 * Optimistic I/O: try the send right after the nonblocking connect (loopback handshakes are
 * usually done by then; a socket still in SYN_SENT answers EAGAIN, a refused one its error) and
 * poll only when the kernel says "not yet". Fewer syscalls per connection, more storm.
 * Returns 0 on a full round trip, -ECANCELED when the run ended mid-way (not an error),
 * -EPIPE for a short reply, or -errno.
 */
static int client_once(struct storm *s, char *buf, size_t buflen)
{
	const struct config *cfg = &s->cfg;
	struct timespec limit = now();
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	uint32_t sent = 0, got = 0;
	int fd, ret, revents = POLLOUT;
	socklen_t errlen = sizeof(ret);
	size_t len;
	ssize_t n;

	ts_add_ms(&limit, IO_TIMEOUT_MS);
	fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&cfg->addr, cfg->addr_len) && errno != EINPROGRESS) {
		ret = -errno;
		goto out;
	}
	if (!cfg->payload) {
		/* Nothing to send: wait for the handshake, so the close comes from ESTABLISHED. */
		revents = wait_fd(fd, POLLOUT, &limit, &s->deadline);
		if (revents < 0) {
			ret = revents;
			goto out;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &ret, &errlen))
			ret = errno;
		if (ret) {
			ret = -ret;
			goto out;
		}
		goto done;
	}
	for (;;) {
		if (sent < cfg->payload && (revents & (POLLOUT | POLLERR | POLLHUP))) {
			len = cfg->payload - sent < buflen ? cfg->payload - sent : buflen;
			n = send(fd, buf, len, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				ret = -errno;
				goto out;
			}
			if (n > 0)
				sent += n;
		}
		/* The echo overwrites buf with the same bytes we send: one buffer is enough. */
		if (revents & (POLLIN | POLLERR | POLLHUP)) {
			n = recv(fd, buf, buflen, 0);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				ret = -errno;
				goto out;
			}
			if (n == 0) {
				ret = -EPIPE;
				goto out;
			}
			if (n > 0)
				got += n;
			if (got >= cfg->payload)
				break;
		}
		revents = wait_fd(fd, POLLIN | (sent < cfg->payload ? POLLOUT : 0), &limit,
				  &s->deadline);
		if (revents < 0) {
			ret = revents;
			goto out;
		}
	}
done:
	ret = 0;
	/* A failure here would only make this close a normal one: count it, not the connection. */
	if (cfg->close_rst &&
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)))
		ret = -errno;
out:
	close(fd);
	return ret;
}

static void client_run(struct storm *s, struct stats *st)
{
	char *buf = malloc(BUF_SIZE);
	int ret;

	if (!buf) {
		count_error(st, ENOMEM);
		return;
	}
	memset(buf, 'x', BUF_SIZE);
	while (ms_until(&s->deadline) > 0) {
		ret = client_once(s, buf, BUF_SIZE);
		if (!ret) {
			st->connections++;
		} else if (ret == -ECANCELED) {
			break;
		} else {
			if (ret == -EPIPE)
				st->short_replies++;
			else
				count_error(st, -ret);
			usleep(ERROR_BACKOFF_US);
		}
	}
	free(buf);
}

/* ---- parent ---------------------------------------------------------------------------- */

static pid_t spawn(struct storm *s, int role)
{
	pid_t pid = fork();
	int err;

	if (pid)
		return pid;
	if (child_setup(s->parent))
		_exit(EXIT_SETUP);
	if (role == 0) {
		err = server_run(s);
		if (err)
			fprintf(stderr, "storm: server: %s\n", strerror(-err));
		_exit(err ? EXIT_SETUP : EXIT_RAN);
	}
	close(s->listen_fd);
	client_run(s, &s->stats[role]);
	_exit(EXIT_RAN);
}

/* Reap whatever has exited; returns how many of ours (workers and server) still run. */
static unsigned int reap(struct storm *s, int *failed)
{
	unsigned int i, running = 0;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		bool ok = WIFEXITED(status) && WEXITSTATUS(status) == EXIT_RAN;
		bool termed = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;

		/* We stop the server, and the workers when interrupted, with SIGTERM on purpose. */
		if (termed && (pid == s->server_pid || s->interrupted))
			ok = true;
		if (pid == s->server_pid)
			s->server_pid = 0;
		for (i = 0; i < s->cfg.workers; i++)
			if (s->worker_pids[i] == pid)
				s->worker_pids[i] = 0;
		*failed += !ok;
	}
	for (i = 0; i < s->cfg.workers; i++)
		running += s->worker_pids[i] != 0;
	return running + (s->server_pid != 0);
}

static void signal_all(struct storm *s, int sig, bool server)
{
	unsigned int i;

	if (server && s->server_pid)
		kill(s->server_pid, sig);
	for (i = 0; i < s->cfg.workers; i++)
		if (s->worker_pids[i])
			kill(s->worker_pids[i], sig);
}

/*
 * Wait for the workers to finish at the deadline (or stop them on SIGINT/SIGTERM), then stop
 * the server. Nothing is left running when this returns: stragglers get SIGKILL.
 * Returns how many children exited abnormally.
 */
static int supervise(struct storm *s)
{
	struct timespec kill_at = s->deadline, give_up, ts;
	unsigned int running;
	sigset_t set;
	int failed = 0, ms, sig;

	ts_add_ms(&kill_at, REAP_GRACE_MS);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		running = reap(s, &failed);
		if (running <= (s->server_pid != 0))
			break; /* no worker left */
		ms = ms_until(&kill_at);
		if (!ms) {
			signal_all(s, SIGKILL, false);
			break;
		}
		ts = (struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
		sig = sigtimedwait(&set, NULL, &ts);
		if ((sig == SIGINT || sig == SIGTERM) && !s->interrupted) {
			s->interrupted = true;
			s->stopped = now();
			signal_all(s, SIGTERM, false);
			kill_at = s->stopped;
			ts_add_ms(&kill_at, REAP_GRACE_MS);
		}
	}
	/* The workers are done: the server has nothing left to do. */
	signal_all(s, SIGTERM, true);
	kill_at = now();
	ts_add_ms(&kill_at, REAP_GRACE_MS);
	give_up = kill_at;
	ts_add_ms(&give_up, REAP_GRACE_MS);
	while (reap(s, &failed) && ms_until(&give_up)) {
		if (!ms_until(&kill_at))
			signal_all(s, SIGKILL, true);
		usleep(10000);
	}
	return failed;
}

static void print_errors_text(const char *who, const struct stats *st)
{
	char name[32];
	unsigned int i;

	for (i = 0; i < ERRNO_SLOTS; i++)
		if (st->errors[i])
			printf("  %s error %-16s %llu\n", who, errno_name(i, name, sizeof(name)),
			       (unsigned long long)st->errors[i]);
}

static void print_errors_json(const struct stats *st)
{
	const char *sep = "";
	char name[32];
	unsigned int i;

	putchar('{');
	for (i = 0; i < ERRNO_SLOTS; i++) {
		if (!st->errors[i])
			continue;
		printf("%s\"%s\":%llu", sep, errno_name(i, name, sizeof(name)),
		       (unsigned long long)st->errors[i]);
		sep = ",";
	}
	putchar('}');
}

/* Prints the summary; returns the number of completed connections. */
static uint64_t report(const struct storm *s, double elapsed_s, int failed)
{
	const struct config *cfg = &s->cfg;
	struct stats sum = { 0 };
	uint64_t errs = 0;
	unsigned int w, i;
	double rate;

	for (w = 1; w <= cfg->workers; w++) {
		sum.connections += s->stats[w].connections;
		sum.short_replies += s->stats[w].short_replies;
		for (i = 0; i < ERRNO_SLOTS; i++) {
			sum.errors[i] += s->stats[w].errors[i];
			errs += s->stats[w].errors[i];
		}
	}
	rate = elapsed_s > 0 ? sum.connections / elapsed_s : 0;

	if (cfg->json) {
		printf("{\"addr\":\"%s\",\"port\":%u,\"workers\":%u,\"payload\":%u,"
		       "\"close\":\"%s\",\"duration_s\":%.3f,\"elapsed_s\":%.3f,\"connections\":%llu,"
		       "\"conn_per_s\":%.1f,\"error_total\":%llu,\"short_replies\":%llu,"
		       "\"errors\":",
		       cfg->addr_str, cfg->port, cfg->workers, cfg->payload,
		       cfg->close_rst ? "rst" : "fin", cfg->duration_s, elapsed_s, (unsigned long long)sum.connections, rate,
		       (unsigned long long)errs, (unsigned long long)sum.short_replies);
		print_errors_json(&sum);
		printf(",\"server\":{\"accepted\":%llu,\"echoed\":%llu,\"errors\":",
		       (unsigned long long)s->stats[0].connections,
		       (unsigned long long)s->stats[0].echoed);
		print_errors_json(&s->stats[0]);
		printf("},\"failed_children\":%d,\"interrupted\":%s}\n", failed,
		       s->interrupted ? "true" : "false");
	} else {
		printf("storm: %s port %u, %u workers, payload %u B, close %s, %.3f s%s\n",
		       cfg->addr_str, cfg->port, cfg->workers, cfg->payload,
		       cfg->close_rst ? "rst" : "fin", elapsed_s,
		       s->interrupted ? " (interrupted)" : "");
		printf("  connections %llu  conn/s %.1f  errors %llu  short replies %llu\n",
		       (unsigned long long)sum.connections, rate, (unsigned long long)errs,
		       (unsigned long long)sum.short_replies);
		printf("  server accepted %llu  echoed %llu\n",
		       (unsigned long long)s->stats[0].connections,
		       (unsigned long long)s->stats[0].echoed);
		print_errors_text("client", &sum);
		print_errors_text("server", &s->stats[0]);
		if (failed)
			printf("  %d child process(es) failed\n", failed);
	}
	fflush(stdout);
	return sum.connections;
}

static int storm_setup(struct storm *s)
{
	sigset_t set;
	int err;

	/* Signals are taken synchronously by supervise(); children unblock what they need. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	s->parent = getpid();
	s->stats_len = (s->cfg.workers + 1) * sizeof(*s->stats);
	s->stats = mmap(NULL, s->stats_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			-1, 0);
	if (s->stats == MAP_FAILED) {
		s->stats = NULL;
		fprintf(stderr, "storm: mmap: %s\n", strerror(errno));
		return -ENOMEM;
	}
	s->worker_pids = calloc(s->cfg.workers, sizeof(*s->worker_pids));
	if (!s->worker_pids) {
		fprintf(stderr, "storm: out of memory\n");
		return -ENOMEM;
	}
	err = open_listener(s);
	if (err) {
		fprintf(stderr, "storm: listen on %s port %u: %s\n", s->cfg.addr_str, s->cfg.port,
			strerror(-err));
		return err;
	}
	return 0;
}

static int storm_start(struct storm *s)
{
	unsigned int i;
	pid_t pid;
	int err;

	s->start = now();
	s->deadline = s->start;
	ts_add_ms(&s->deadline, s->cfg.duration_s * 1e3);
	for (i = 0; i <= s->cfg.workers; i++) {
		pid = spawn(s, i);
		if (pid < 0) {
			err = errno;
			fprintf(stderr, "storm: fork: %s\n", strerror(err));
			return -err;
		}
		if (i == 0)
			s->server_pid = pid;
		else
			s->worker_pids[i - 1] = pid;
	}
	return 0;
}

static void storm_cleanup(struct storm *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s->worker_pids);
	if (s->stats)
		munmap(s->stats, s->stats_len);
}

int main(int argc, char **argv)
{
	struct storm s = { .listen_fd = -1 };
	uint64_t done = 0;
	struct timespec end;
	int err, failed;

	err = parse_args(argc, argv, &s.cfg);
	if (err)
		return err > 0 ? EXIT_RAN : EXIT_USAGE;
	err = storm_setup(&s);
	if (err)
		goto cleanup;
	err = storm_start(&s);
	if (err)
		signal_all(&s, SIGTERM, true); /* don't let a half-started storm run its course */
	failed = supervise(&s);
	if (err)
		goto cleanup;

	/* The run is the duration (or until interrupted), not the duration plus reaping. */
	end = s.interrupted ? s.stopped : s.deadline;
	done = report(&s, ts_diff_ms(&end, &s.start) / 1e3, failed);
cleanup:
	storm_cleanup(&s);
	if (err)
		return EXIT_SETUP;
	if (s.interrupted)
		return EXIT_INTERRUPTED;
	return done ? EXIT_RAN : EXIT_NO_TRAFFIC;
}
