// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sp_conn: a small TCP actor for the integration tests. It makes one precise TCP behaviour happen
 * (connect with given socket options, serve and reset, hold a connection open while the test
 * breaks the path, send paced data, a burst of short connections) and prints what it saw as
 * "key=value" lines on stdout, flushed at once, so tests can compare the agent's JSON lines with
 * the facts the socket itself reports: pid, comm, socket cookie, addresses, errno names.
 *
 *   sp_conn connect ADDR PORT [options]
 *   sp_conn serve ADDR PORT [options]       (--fork-accept: a child, comm sp_worker, accepts;
 *                                            the parent keeps the listener, as prefork masters do)
 *   sp_conn burst ADDR PORT --count N
 *   sp_conn fill ADDR PORT --count N [--interval MS] [--hold SEC]
 *
 * Output lines (one per step, first word is the step):
 *   listening pid=P comm=C family=ipv4 addr=A port=N cookie=K
 *   start pid=P comm=C family=ipv4 cookie=K            (connect: just before connect())
 *   connect pid=P comm=C family=ipv4 cookie=K local=A lport=N remote=A rport=N result=ok errno=0 us=T
 *   accepted pid=P comm=C cookie=K local=A lport=N peer=A peer_port=N
 *   sent bytes=N
 *   end reason=eof|error|hold|rst bytes_received=N [error=ENAME]
 *   closed linger0=0|1
 *   burst-fail i=N op=connect|accept error=ENAME us=T   (one per failed connection)
 *   burst count=N failed=N us=T
 *   shutdown how=wr
 *   fill opened=N result=ok|ENAME
 *
 * While a blocking connect() waits, a second thread can interrupt it after MS milliseconds:
 * --signal-after sends the connecting thread SIGUSR1, whose handler is installed without
 * SA_RESTART (connect() returns EINTR); --shutdown-after calls shutdown(SHUT_RDWR) on the socket;
 * --close-after closes its descriptor (the connect() goes on to its own end: the call holds the
 * file). The connect line then prints what connect() returned.
 *
 * Exit codes: 0 every step done (for connect: connected), 1 connect failed (the errno is
 * printed), 2 usage error, 3 a system call other than connect failed, 4 the connection ended with
 * an error during --hold, 5 the --deadline expired.
 *
 * Everything is bounded: blocking calls carry timeouts and the whole process has a deadline
 * (alarm), so a test can never hang on this helper.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

enum {
	EXIT_DONE = 0,
	EXIT_CONNECT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_SYSCALL = 3,
	EXIT_CONN_ERROR = 4,
	EXIT_DEADLINE = 5,
};

struct opts {
	const char *mode;
	const char *addr;
	int port;
	/* connect */
	const char *bind_addr;
	int bind_port;
	bool reuseaddr;
	int syncnt;
	int ka_idle, ka_intvl, ka_cnt;
	int user_timeout_ms;
	bool nonblock;
	int timeout_s;
	const char *wait_file;
	long send_bytes;
	/* paced sending: chunks of chunk_bytes every chunk_ms, then tail_bytes after tail_ms */
	int chunks, chunk_bytes, chunk_ms;
	int tail_ms, tail_bytes;
	double hold_s;
	bool linger0;
	/* serve */
	int count;
	bool no_accept;
	bool echo;
	bool rst_after_accept;
	bool leak;		/* serve: accepted sockets are never read nor closed */
	bool fork_accept;	/* serve: a child named sp_worker accepts (prefork servers) */
	bool shutdown_wr;	/* connect: half-close after connecting */
	bool ka_on;		/* connect: SO_KEEPALIVE with the namespace's settings */
	int interval_ms;	/* fill: between connects */
	int interrupt;		/* connect: INT_* done by a second thread after interrupt_ms */
	int interrupt_ms;
	int backlog;
	int deadline_s;
};

/* What the second thread does to a blocking connect() (--signal/--shutdown/--close-after). */
enum { INT_NONE, INT_SIGNAL, INT_SHUTDOWN, INT_CLOSE };

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ 0, "0" },
	{ ECONNREFUSED, "ECONNREFUSED" },
	{ ETIMEDOUT, "ETIMEDOUT" },
	{ EHOSTUNREACH, "EHOSTUNREACH" },
	{ ENETUNREACH, "ENETUNREACH" },
	{ ECONNRESET, "ECONNRESET" },
	{ ECONNABORTED, "ECONNABORTED" },
	{ EADDRNOTAVAIL, "EADDRNOTAVAIL" },
	{ EADDRINUSE, "EADDRINUSE" },
	{ EINPROGRESS, "EINPROGRESS" },
	{ EALREADY, "EALREADY" },
	{ EACCES, "EACCES" },
	{ EPERM, "EPERM" },
	{ EINVAL, "EINVAL" },
	{ EPIPE, "EPIPE" },
	{ EAGAIN, "EAGAIN" },
	{ EINTR, "EINTR" },
	{ ENOBUFS, "ENOBUFS" },
	{ EPROTO, "EPROTO" },
	{ ENETDOWN, "ENETDOWN" },
	{ EHOSTDOWN, "EHOSTDOWN" },
	{ ENOPROTOOPT, "ENOPROTOOPT" },
	{ EAFNOSUPPORT, "EAFNOSUPPORT" },
	{ EISCONN, "EISCONN" },
	{ ENOTCONN, "ENOTCONN" },
	{ EMFILE, "EMFILE" },
	{ EBADF, "EBADF" },
};

static const char *errname(int err)
{
	static char buf[32];
	size_t i;

	for (i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

static void on_alarm(int sig)
{
	static const char msg[] = "deadline reason=deadline\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing else to do: we are leaving anyway */
	}
	_exit(EXIT_DEADLINE);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *comm(void)
{
	static char name[17];

	/* asked each time: a --fork-accept child renames itself */
	if (prctl(PR_GET_NAME, name) < 0)
		snprintf(name, sizeof(name), "?");
	return name;
}

static int sys_fail(const char *what)
{
	printf("error step=%s error=%s errno=%d\n", what, errname(errno), errno);
	return EXIT_SYSCALL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sp_conn connect ADDR PORT [--bind ADDR] [--bind-port N] [--reuseaddr]\n"
		"         [--syncnt N] [--keepalive IDLE,INTVL,CNT] [--user-timeout MS] [--nonblock]\n"
		"         [--timeout SEC] [--wait-file PATH] [--send BYTES] [--chunks N,BYTES,MS]\n"
		"         [--tail MS,BYTES] [--hold SEC] [--linger0] [--deadline SEC]\n"
		"       sp_conn serve ADDR PORT [--count N] [--no-accept] [--echo] [--rst-after-accept]\n"
		"         [--send BYTES] [--chunks N,BYTES,MS] [--tail MS,BYTES] [--hold SEC] [--linger0]\n"
		"         [--backlog N] [--timeout SEC] [--deadline SEC]\n"
		"       sp_conn burst ADDR PORT --count N [--deadline SEC]\n"
		"       sp_conn fill ADDR PORT --count N [--interval MS] [--hold SEC] [--deadline SEC]\n"
		"  connect also: [--shutdown-wr] [--keepalive-on]\n"
		"         [--signal-after MS | --shutdown-after MS | --close-after MS]\n"
		"  serve also: [--leak] [--fork-accept] [--wait-file PATH] (after each accept, before\n"
		"         anything else is done with the connection; with --leak, before the hold)\n"
		"exit: 0 done, 1 connect failed, 2 usage, 3 syscall error, 4 connection error during\n"
		"      --hold, 5 deadline expired\n");
}

static bool parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "a,b[,c]" of n non-negative ints */
static bool parse_ints(const char *s, int n, int *v)
{
	char buf[64], *save = NULL, *tok;
	int i = 0;
	long x;

	if (!s || strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (i >= n || !parse_int(tok, 0, INT_MAX, &x))
			return false;
		v[i++] = (int)x;
	}
	return i == n;
}

static bool parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v < 0 || v > 3600)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	long v;
	int i;

	if (argc < 4)
		return -1;
	o->mode = argv[1];
	o->addr = argv[2];
	if (!parse_int(argv[3], 0, 65535, &v))
		return -1;
	o->port = (int)v;
	for (i = 4; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool used = true;

		if (!strcmp(a, "--reuseaddr")) {
			o->reuseaddr = true;
			used = false;
		} else if (!strcmp(a, "--nonblock")) {
			o->nonblock = true;
			used = false;
		} else if (!strcmp(a, "--linger0")) {
			o->linger0 = true;
			used = false;
		} else if (!strcmp(a, "--no-accept")) {
			o->no_accept = true;
			used = false;
		} else if (!strcmp(a, "--echo")) {
			o->echo = true;
			used = false;
		} else if (!strcmp(a, "--rst-after-accept")) {
			o->rst_after_accept = true;
			used = false;
		} else if (!strcmp(a, "--leak")) {
			o->leak = true;
			used = false;
		} else if (!strcmp(a, "--fork-accept")) {
			o->fork_accept = true;
			used = false;
		} else if (!strcmp(a, "--shutdown-wr")) {
			o->shutdown_wr = true;
			used = false;
		} else if (!strcmp(a, "--keepalive-on")) {
			o->ka_on = true;
			used = false;
		} else if (!val) {
			return -1;
		} else if (!strcmp(a, "--bind")) {
			o->bind_addr = val;
		} else if (!strcmp(a, "--bind-port")) {
			if (!parse_int(val, 0, 65535, &v))
				return -1;
			o->bind_port = (int)v;
		} else if (!strcmp(a, "--syncnt")) {
			if (!parse_int(val, 1, 127, &v))
				return -1;
			o->syncnt = (int)v;
		} else if (!strcmp(a, "--keepalive")) {
			int k[3];

			if (!parse_ints(val, 3, k) || !k[0] || !k[1] || !k[2])
				return -1;
			o->ka_idle = k[0];
			o->ka_intvl = k[1];
			o->ka_cnt = k[2];
		} else if (!strcmp(a, "--user-timeout")) {
			if (!parse_int(val, 1, 3600000, &v))
				return -1;
			o->user_timeout_ms = (int)v;
		} else if (!strcmp(a, "--timeout")) {
			if (!parse_int(val, 1, 3600, &v))
				return -1;
			o->timeout_s = (int)v;
		} else if (!strcmp(a, "--signal-after") || !strcmp(a, "--shutdown-after") ||
			   !strcmp(a, "--close-after")) {
			if (o->interrupt || !parse_int(val, 1, 600000, &v))
				return -1;
			o->interrupt = !strcmp(a, "--signal-after")	 ? INT_SIGNAL
				       : !strcmp(a, "--shutdown-after") ? INT_SHUTDOWN
									 : INT_CLOSE;
			o->interrupt_ms = (int)v;
		} else if (!strcmp(a, "--wait-file")) {
			o->wait_file = val;
		} else if (!strcmp(a, "--send")) {
			if (!parse_int(val, 0, 64L << 20, &v))
				return -1;
			o->send_bytes = v;
		} else if (!strcmp(a, "--chunks")) {
			int k[3];

			if (!parse_ints(val, 3, k) || k[1] > (1 << 20))
				return -1;
			o->chunks = k[0];
			o->chunk_bytes = k[1];
			o->chunk_ms = k[2];
		} else if (!strcmp(a, "--tail")) {
			int k[2];

			if (!parse_ints(val, 2, k) || k[1] > (1 << 20))
				return -1;
			o->tail_ms = k[0];
			o->tail_bytes = k[1];
		} else if (!strcmp(a, "--hold")) {
			if (!parse_secs(val, &o->hold_s))
				return -1;
		} else if (!strcmp(a, "--count")) {
			if (!parse_int(val, 1, 1000000, &v))
				return -1;
			o->count = (int)v;
		} else if (!strcmp(a, "--interval")) {
			if (!parse_int(val, 0, 60000, &v))
				return -1;
			o->interval_ms = (int)v;
		} else if (!strcmp(a, "--backlog")) {
			if (!parse_int(val, 1, 65535, &v))
				return -1;
			o->backlog = (int)v;
		} else if (!strcmp(a, "--deadline")) {
			if (!parse_int(val, 1, 3600, &v))
				return -1;
			o->deadline_s = (int)v;
		} else {
			return -1;
		}
		if (used)
			i++;
	}
	return 0;
}

/* Fills ss from a literal address; the family follows the address. */
static int make_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* "10.0.0.1" / "fd00::1" (IPv4-mapped printed as IPv4) and the port, host order. */
static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap, int *port)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, buf, cap);
		*port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, cap);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, cap);
		*port = ntohs(sin6->sin6_port);
	} else {
		snprintf(buf, cap, "?");
		*port = 0;
	}
}

static uint64_t cookie_of(int fd)
{
	uint64_t c = 0;
	socklen_t l = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) < 0)
		return 0;
	return c;
}

static void sock_names(int fd, char *l, char *r, size_t cap, int *lport, int *rport)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		addr_str(&ss, l, cap, lport);
	else
		snprintf(l, cap, "?"), *lport = 0;
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		addr_str(&ss, r, cap, rport);
	else
		snprintf(r, cap, "?"), *rport = 0;
}

static int set_int(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		return sys_fail(what);
	return 0;
}

static int set_timeouts(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return sys_fail("timeouts");
	return 0;
}

static int close_conn(int fd, bool linger0)
{
	if (linger0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
			return sys_fail("linger");
	}
	close(fd);
	printf("closed linger0=%d\n", linger0 ? 1 : 0);
	return 0;
}

static int send_all(int fd, long bytes)
{
	char buf[4096];
	long left = bytes;

	memset(buf, 'x', sizeof(buf));
	while (left > 0) {
		ssize_t n = send(fd, buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf),
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_fail("send");
		}
		left -= n;
	}
	printf("sent bytes=%ld\n", bytes);
	return 0;
}

/* --send, then --chunks, then --tail: the data this side pushes after the connection is up. */
static int send_pattern(int fd, const struct opts *o)
{
	int err, i;

	if (o->send_bytes > 0 && (err = send_all(fd, o->send_bytes)))
		return err;
	if (o->chunks > 0) {
		if ((err = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "nodelay")))
			return err;
		for (i = 0; i < o->chunks; i++) {
			if (i)
				sleep_ms(o->chunk_ms);
			if ((err = send_all(fd, o->chunk_bytes)))
				return err;
		}
	}
	if (o->tail_bytes > 0) {
		sleep_ms(o->tail_ms);
		if ((err = send_all(fd, o->tail_bytes)))
			return err;
	}
	return 0;
}

/*
 * Keeps the connection open for up to hold_s seconds, reading (and echoing with --echo). Ends
 * early on EOF or on a socket error (ETIMEDOUT from keepalive or retransmission, ECONNRESET).
 */
static int hold_conn(int fd, const struct opts *o)
{
	int64_t end = now_us() + (int64_t)(o->hold_s * 1e6);
	long received = 0;
	char buf[65536];

	for (;;) {
		int64_t left = end - now_us();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r;

		if (left <= 0) {
			printf("end reason=hold bytes_received=%ld\n", received);
			return 0;
		}
		r = poll(&p, 1, (int)((left + 999) / 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sys_fail("poll");
		if (r == 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			received += n;
			if (o->echo && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
				return sys_fail("echo");
			continue;
		}
		if (n == 0) {
			printf("end reason=eof bytes_received=%ld\n", received);
			return 0;
		}
		if (errno == EAGAIN || errno == EINTR)
			continue;
		printf("end reason=error bytes_received=%ld error=%s\n", received, errname(errno));
		return EXIT_CONN_ERROR;
	}
}

/* Waits until the test creates the file, at most the process's --deadline. */
static int wait_for_file(const char *path, int deadline_s)
{
	int64_t end = now_us() + (int64_t)deadline_s * 1000000;
	struct stat st;

	while (stat(path, &st) < 0) {
		if (now_us() > end) {
			printf("error step=wait-file error=ETIMEDOUT\n");
			return EXIT_SYSCALL;
		}
		sleep_ms(10);
	}
	return 0;
}

struct interrupter {
	pthread_t target;	/* the connecting thread */
	int fd;
	int what;		/* INT_* */
	int after_ms;
};

/* Interrupts the signal's target only: connect() returns EINTR, nothing else happens. */
static void on_interrupt(int sig)
{
	(void)sig;
}

static void *interrupter_run(void *arg)
{
	const struct interrupter *it = arg;

	sleep_ms(it->after_ms);
	switch (it->what) {
	case INT_SIGNAL:
		pthread_kill(it->target, SIGUSR1);
		break;
	case INT_SHUTDOWN:
		shutdown(it->fd, SHUT_RDWR);
		break;
	case INT_CLOSE:
		close(it->fd);
		break;
	}
	return NULL;
}

/* Starts the second thread of --signal/--shutdown/--close-after. */
static int interrupter_start(struct interrupter *it, pthread_t *th, int fd, const struct opts *o)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	int err;

	*it = (struct interrupter){ .target = pthread_self(), .fd = fd, .what = o->interrupt,
				    .after_ms = o->interrupt_ms };
	/* no SA_RESTART: the interrupted connect() returns EINTR instead of being restarted */
	sigemptyset(&sa.sa_mask);
	if (it->what == INT_SIGNAL && sigaction(SIGUSR1, &sa, NULL) < 0)
		return sys_fail("sigaction");
	err = pthread_create(th, NULL, interrupter_run, it);
	if (err) {
		errno = err;
		return sys_fail("pthread_create");
	}
	return 0;
}

static int do_connect(const struct opts *o)
{
	struct interrupter it;
	pthread_t th;
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	char l[64], r[64];
	int fd, err, res, lport, rport;
	int64_t t0, us;
	uint64_t cookie;

	if (make_addr(o->addr, o->port, &dst, &dlen) < 0) {
		fprintf(stderr, "sp_conn: bad address '%s'\n", o->addr);
		return EXIT_USAGE;
	}
	fd = socket(dst.ss_family, SOCK_STREAM | (o->nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return sys_fail("socket");
	if ((err = set_timeouts(fd, o->timeout_s)))
		return err;
	if (o->reuseaddr && (err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "reuseaddr")))
		return err;
	if (o->syncnt && (err = set_int(fd, IPPROTO_TCP, TCP_SYNCNT, o->syncnt, "syncnt")))
		return err;
	if (o->ka_cnt) {
		if ((err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "keepalive")) ||
		    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->ka_idle, "keepidle")) ||
		    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->ka_intvl, "keepintvl")) ||
		    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, o->ka_cnt, "keepcnt")))
			return err;
	}
	if (o->ka_on && (err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "keepalive")))
		return err;
	if (o->user_timeout_ms &&
	    (err = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, o->user_timeout_ms, "user-timeout")))
		return err;
	if (o->interrupt && o->nonblock) {
		fprintf(stderr, "sp_conn: --signal/--shutdown/--close-after need a blocking connect\n");
		return EXIT_USAGE;
	}
	if (o->bind_addr || o->bind_port) {
		const char *ba = o->bind_addr ? o->bind_addr : dst.ss_family == AF_INET ? "0.0.0.0" : "::";

		if (make_addr(ba, o->bind_port, &src, &slen) < 0 || src.ss_family != dst.ss_family) {
			fprintf(stderr, "sp_conn: bad bind address '%s'\n", ba);
			return EXIT_USAGE;
		}
		if (bind(fd, (struct sockaddr *)&src, slen) < 0)
			return sys_fail("bind");
	}
	cookie = cookie_of(fd);
	printf("start pid=%d comm=%s family=%s cookie=%llu\n", (int)getpid(), comm(),
	       dst.ss_family == AF_INET ? "ipv4" : "ipv6", (unsigned long long)cookie);
	if (o->interrupt && (err = interrupter_start(&it, &th, fd, o)))
		return err;

	t0 = now_us();
	res = connect(fd, (struct sockaddr *)&dst, dlen);
	err = res < 0 ? errno : 0;
	if (res < 0 && err == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t el = sizeof(err);
		int pr;

		do
			pr = poll(&p, 1, o->timeout_s * 1000);
		while (pr < 0 && errno == EINTR);
		if (pr < 0)
			return sys_fail("poll");
		if (pr == 0)
			err = EINPROGRESS; /* still connecting at our own bound: closed while pending */
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return sys_fail("so_error");
	}
	us = now_us() - t0;
	if (o->interrupt)
		pthread_join(th, NULL); /* its action is done before the descriptor is used again */
	sock_names(fd, l, r, sizeof(l), &lport, &rport);
	printf("connect pid=%d comm=%s family=%s cookie=%llu local=%s lport=%d remote=%s rport=%d "
	       "result=%s errno=%d us=%lld\n",
	       (int)getpid(), comm(), dst.ss_family == AF_INET ? "ipv4" : "ipv6",
	       (unsigned long long)cookie, l, lport, o->addr, o->port, err ? errname(err) : "ok",
	       err, (long long)us);
	if (o->interrupt == INT_CLOSE) {
		/* the descriptor is gone: nothing more to do with it */
		printf("closed linger0=0\n");
		return err ? EXIT_CONNECT_FAILED : EXIT_DONE;
	}
	if (err) {
		close(fd);
		printf("closed linger0=0\n");
		return EXIT_CONNECT_FAILED;
	}
	if (o->nonblock) {
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			return sys_fail("fcntl");
	}
	if (o->wait_file && (err = wait_for_file(o->wait_file, o->deadline_s)))
		return err;
	if ((err = send_pattern(fd, o)))
		return err;
	if (o->shutdown_wr) {
		if (shutdown(fd, SHUT_WR) < 0)
			return sys_fail("shutdown");
		printf("shutdown how=wr\n");
	}
	if (o->hold_s > 0 && (err = hold_conn(fd, o)))
		return err;
	return close_conn(fd, o->linger0);
}

static int listen_on(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char a[64];
	int fd, port, err;

	if (make_addr(o->addr, o->port, &ss, &len) < 0) {
		fprintf(stderr, "sp_conn: bad address '%s'\n", o->addr);
		return -EXIT_USAGE;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -sys_fail("socket");
	if ((err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "reuseaddr")) ||
	    (err = set_timeouts(fd, o->timeout_s)))
		return -err;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -sys_fail("bind");
	if (listen(fd, o->backlog) < 0)
		return -sys_fail("listen");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -sys_fail("getsockname");
	addr_str(&ss, a, sizeof(a), &port);
	printf("listening pid=%d comm=%s family=%s addr=%s port=%d cookie=%llu\n", (int)getpid(),
	       comm(), ss.ss_family == AF_INET ? "ipv4" : "ipv6", a, port,
	       (unsigned long long)cookie_of(fd));
	return fd;
}

static int do_serve(const struct opts *o)
{
	int lfd, i, err = 0;

	lfd = listen_on(o);
	if (lfd < 0)
		return -lfd;
	if (o->fork_accept) {
		/* A prefork server: the listener's owner is not the process that accepts. */
		int status;
		pid_t child;

		fflush(stdout);
		child = fork();
		if (child < 0)
			return sys_fail("fork");
		if (child > 0) {
			/* the master keeps its copy of the listener until the worker is done */
			if (waitpid(child, &status, 0) < 0)
				return sys_fail("waitpid");
			close(lfd);
			return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_SYSCALL;
		}
		prctl(PR_SET_NAME, "sp_worker");
	}
	if (o->no_accept) {
		sleep_ms((int)(o->hold_s * 1000));
		printf("end reason=hold bytes_received=0\n");
		close(lfd);
		return 0;
	}
	for (i = 0; i < o->count; i++) {
		char l[64], r[64];
		int fd, lport, rport;

		if (o->leak && i && o->hold_s > 0) {
			/* leaking: accept whatever comes within the hold, then exit */
			struct pollfd p = { .fd = lfd, .events = POLLIN };
			int pr = poll(&p, 1, (int)(o->hold_s * 1000));

			if (pr <= 0)
				break;
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return sys_fail("accept");
		if ((err = set_timeouts(fd, o->timeout_s)))
			return err;
		sock_names(fd, l, r, sizeof(l), &lport, &rport);
		printf("accepted pid=%d comm=%s cookie=%llu local=%s lport=%d peer=%s peer_port=%d\n",
		       (int)getpid(), comm(), (unsigned long long)cookie_of(fd), l, lport, r, rport);
		fflush(stdout);
		if (o->leak)
			continue; /* a descriptor leak: never read, never closed until exit */
		if (o->wait_file && (err = wait_for_file(o->wait_file, o->deadline_s)))
			return err;
		if (o->rst_after_accept) {
			close_conn(fd, true);
			continue;
		}
		if ((err = send_pattern(fd, o)))
			return err;
		if (o->hold_s > 0 && (err = hold_conn(fd, o)) && err != EXIT_CONN_ERROR)
			return err;
		close_conn(fd, o->linger0);
	}
	if (o->leak && o->hold_s > 0) {
		/* the leaked sockets' hold starts once the file exists, if one is named */
		if (o->wait_file && (err = wait_for_file(o->wait_file, o->deadline_s)))
			return err;
		sleep_ms((int)(o->hold_s * 1000));
		printf("end reason=hold bytes_received=0\n");
	}
	close(lfd);
	return err;
}

/*
 * Up to N connections opened one after the other and all kept open, --interval apart: fills the
 * local port range towards one destination. Stops at the first failed connect (printed), then
 * holds what it opened for --hold seconds.
 */
static int do_fill(const struct opts *o)
{
	struct sockaddr_storage dst;
	socklen_t dlen;
	int i, opened = 0, err = 0;

	if (make_addr(o->addr, o->port, &dst, &dlen) < 0) {
		fprintf(stderr, "sp_conn: bad address '%s'\n", o->addr);
		return EXIT_USAGE;
	}
	for (i = 0; i < o->count; i++) {
		char l[64], r[64];
		int fd = socket(dst.ss_family, SOCK_STREAM, 0), lport, rport;

		if (fd < 0)
			return sys_fail("socket");
		if (set_timeouts(fd, o->timeout_s))
			return EXIT_SYSCALL;
		err = connect(fd, (struct sockaddr *)&dst, dlen) < 0 ? errno : 0;
		sock_names(fd, l, r, sizeof(l), &lport, &rport);
		printf("connect pid=%d comm=%s cookie=%llu local=%s lport=%d result=%s errno=%d\n",
		       (int)getpid(), comm(), (unsigned long long)cookie_of(fd), l, lport,
		       err ? errname(err) : "ok", err);
		if (err) {
			close(fd);
			break;
		}
		opened++;
		if (o->interval_ms)
			sleep_ms(o->interval_ms);
	}
	printf("fill opened=%d result=%s\n", opened, err ? errname(err) : "ok");
	fflush(stdout);
	if (o->hold_s > 0)
		sleep_ms((int)(o->hold_s * 1000));
	return err ? EXIT_CONNECT_FAILED : 0;
}

/* N short connections to an in-process listener, as fast as possible: an event burst. */
static int do_burst(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int lfd, i, failed = 0;
	int64_t t0;

	lfd = listen_on(o);
	if (lfd < 0)
		return -lfd;
	if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		return sys_fail("getsockname");
	t0 = now_us();
	for (i = 0; i < o->count; i++) {
		int c = socket(ss.ss_family, SOCK_STREAM, 0), a;

		if (c < 0)
			return sys_fail("socket");
		if (set_timeouts(c, o->timeout_s))
			return EXIT_SYSCALL;
		if (connect(c, (struct sockaddr *)&ss, len) < 0) {
			printf("burst-fail i=%d op=connect error=%s us=%lld\n", i, errname(errno),
			       (long long)(now_us() - t0));
			failed++;
			close(c);
			continue;
		}
		a = accept(lfd, NULL, NULL);
		if (a < 0)
			printf("burst-fail i=%d op=accept error=%s us=%lld\n", i, errname(errno),
			       (long long)(now_us() - t0));
		close(c);
		if (a >= 0)
			close(a);
		else
			failed++;
	}
	printf("burst count=%d failed=%d us=%lld\n", o->count, failed, (long long)(now_us() - t0));
	close(lfd);
	return failed ? EXIT_SYSCALL : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_s = 20, .count = 1, .backlog = 128, .deadline_s = 60 };
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned int)o.deadline_s);

	if (!strcmp(o.mode, "connect"))
		err = do_connect(&o);
	else if (!strcmp(o.mode, "serve"))
		err = do_serve(&o);
	else if (!strcmp(o.mode, "burst"))
		err = do_burst(&o);
	else if (!strcmp(o.mode, "fill"))
		err = do_fill(&o);
	else {
		usage(stderr);
		err = EXIT_USAGE;
	}
	return err;
}
