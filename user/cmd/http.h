/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The metrics endpoint: libmicrohttpd without a thread of its own. Its epoll descriptor joins the
 * agent's loop; http_run() is called when that is readable, runs until libmicrohttpd has nothing
 * ready (pipelined requests are answered at once, not on the next tick), and on every tick
 * (deadlines). Every socket is non-blocking, so a slow or malformed client costs a connection
 * slot, never the loop. No local user can starve the scrapes: connections are limited per
 * address; each request, header to last byte of the reply, has a deadline whatever the pace of
 * the client; and when the slots are full, a new connection takes the slot of the oldest one
 * that is still unanswered.
 *
 * With a web-config (webconfig.h), the same server speaks TLS (libmicrohttpd with GnuTLS: the
 * handshake runs inside the same non-blocking passes, under the same deadline) and asks for
 * basic auth before anything else: a request without the right user and password gets 401 and
 * `WWW-Authenticate: Basic realm="sockpulse"`, whatever its URL.
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

#define HTTP_CONN_LIMIT	  64		  /* open connections we serve */
#define HTTP_CONN_TRACK	  (2 * HTTP_CONN_LIMIT) /* accepted, counting those being closed */
#define HTTP_PER_IP_LIMIT 16
#define HTTP_TIMEOUT_S	  10		  /* idle */
#define HTTP_DEADLINE_NS  (5 * NSEC_PER_SEC) /* a whole request and its reply */
#define HTTP_MEMORY_LIMIT (32 * 1024)
#define HTTP_RUN_MAX	  64 /* libmicrohttpd passes per wake-up: a bound, not a pace */

#define HTTP_REALM "sockpulse"
/* TLS 1.2 and 1.3 only, as node_exporter's default min_version */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct MHD_Daemon;
struct webconfig;

/* Renders the body of /metrics into *body (malloc'ed); returns its length or -errno. */
typedef long (*http_metrics_fn)(void *ctx, char **body);

struct http_conn {
	void *c;	   /* the library's connection; NULL: free slot */
	int fd;
	bool closing;	   /* shut down by us, waiting for the library to close it */
	uint64_t since_ns; /* accepted, or last reply queued: the deadline runs from here */
};

struct http_server {
	struct MHD_Daemon *d;
	http_metrics_fn render;
	void *ctx;
	uint16_t port;	      /* bound port (useful with port 0) */
	uint64_t requests[3]; /* 200, 404, other */
	struct webconfig *web; /* TLS and users; NULL: plain HTTP, no auth */
	uint64_t unauthorized; /* 401s */
	struct http_conn conns[HTTP_CONN_TRACK];
	unsigned int open;   /* in conns, not closing */
	uint64_t deadlines;  /* connections closed for missing the deadline */
	uint64_t evictions;  /* connections closed to make room */
};

/*
 * Binds and listens (an IPv6 address accepts IPv4 too), with TLS and basic auth if @web says so
 * (NULL: neither; it must outlive the server). 0 or -errno (EADDRINUSE, EACCES...).
 */
int http_start(struct http_server *h, const struct sockaddr *addr, socklen_t len,
	       struct webconfig *web, http_metrics_fn render, void *ctx);
/*
 * Whether libmicrohttpd can serve @web's certificate and key: it has TLS, and GnuTLS takes the
 * pair (PEM, the key is the certificate's). 0, or -errno with one line in @why. Binds nothing.
 */
int http_tls_check(const struct webconfig *web, char *why, size_t cap);
/* The descriptor for the event loop. */
int http_fd(const struct http_server *h);
/* Does whatever is ready and closes connections past their deadline; never blocks. */
void http_run(struct http_server *h, uint64_t now_ns);
void http_stop(struct http_server *h);

#endif
