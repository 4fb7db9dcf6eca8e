/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The metrics endpoint: libmicrohttpd without a thread of its own. Its epoll descriptor joins the
 * agent's loop; http_run() is called when that is readable and on every tick (timeouts). Every
 * socket is non-blocking, so a slow or malformed client costs a connection slot, never the loop:
 * connections are limited in number, per address, in memory, and in idle time.
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_CONN_LIMIT	  64
#define HTTP_PER_IP_LIMIT 16
#define HTTP_TIMEOUT_S	  10
#define HTTP_MEMORY_LIMIT (32 * 1024)

struct MHD_Daemon;

/* Renders the body of /metrics into *body (malloc'ed); returns its length or -errno. */
typedef long (*http_metrics_fn)(void *ctx, char **body);

struct http_server {
	struct MHD_Daemon *d;
	http_metrics_fn render;
	void *ctx;
	uint16_t port;	      /* bound port (useful with port 0) */
	uint64_t requests[3]; /* 200, 404, other */
};

/* Binds and listens. 0 or -errno (EADDRINUSE, EACCES...). */
int http_start(struct http_server *h, const struct sockaddr *addr, socklen_t len,
	       http_metrics_fn render, void *ctx);
/* The descriptor for the event loop. */
int http_fd(const struct http_server *h);
/* Does whatever is ready; never blocks. */
void http_run(struct http_server *h);
void http_stop(struct http_server *h);

#endif
