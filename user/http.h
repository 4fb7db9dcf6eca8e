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
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_CONN_LIMIT	  64		  /* open connections we serve */
#define HTTP_CONN_TRACK	  (2 * HTTP_CONN_LIMIT) /* accepted, counting those being closed */
#define HTTP_PER_IP_LIMIT 16
#define HTTP_TIMEOUT_S	  10		  /* idle */
#define HTTP_DEADLINE_NS  (5 * 1000000000ULL) /* a whole request and its reply */
#define HTTP_MEMORY_LIMIT (32 * 1024)
#define HTTP_RUN_MAX	  64 /* libmicrohttpd passes per wake-up: a bound, not a pace */

struct MHD_Daemon;

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
	struct http_conn conns[HTTP_CONN_TRACK];
	unsigned int open;   /* in conns, not closing */
	uint64_t deadlines;  /* connections closed for missing the deadline */
	uint64_t evictions;  /* connections closed to make room */
};

/* Binds and listens (an IPv6 address accepts IPv4 too). 0 or -errno (EADDRINUSE, EACCES...). */
int http_start(struct http_server *h, const struct sockaddr *addr, socklen_t len,
	       http_metrics_fn render, void *ctx);
/* The descriptor for the event loop. */
int http_fd(const struct http_server *h);
/* Does whatever is ready and closes connections past their deadline; never blocks. */
void http_run(struct http_server *h, uint64_t now_ns);
void http_stop(struct http_server *h);

#endif
