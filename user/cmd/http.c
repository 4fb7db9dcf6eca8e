// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libmicrohttpd glue for /metrics; see http.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "webconfig.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct http_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* The library closes it when it sees the socket shut: its own bookkeeping stays right. */
static void conn_shut(struct http_server *h, struct http_conn *hc)
{
	if (hc->closing)
		return;
	shutdown(hc->fd, SHUT_RDWR);
	hc->closing = true;
	h->open--;
}

/* Slots full: the connection that has waited longest (since accept or its last reply) makes
 * room; a scrape is answered in a millisecond, a client holding a slot is not. */
static void evict_oldest(struct http_server *h)
{
	struct http_conn *old = NULL;

	for (unsigned int i = 0; i < HTTP_CONN_TRACK; i++) {
		struct http_conn *hc = &h->conns[i];

		if (hc->c && !hc->closing && (!old || hc->since_ns < old->since_ns))
			old = hc;
	}
	if (old) {
		conn_shut(h, old);
		h->evictions++;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct http_conn *hc = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (hc) {
			if (!hc->closing)
				h->open--;
			memset(hc, 0, sizeof(*hc));
		}
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (unsigned int i = 0; i < HTTP_CONN_TRACK && ci; i++) {
		if (h->conns[i].c)
			continue;
		if (h->open >= HTTP_CONN_LIMIT)
			evict_oldest(h);
		h->conns[i] = (struct http_conn){ .c = c, .fd = ci->connect_fd,
						  .since_ns = clock_mono_ns() };
		h->open++;
		*socket_context = &h->conns[i];
		return;
	}
	/* not tracked (cannot happen: the library's own limit is our table's size): no deadline
	 * could close it, so do not keep it */
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

static void sweep(struct http_server *h, uint64_t now_ns)
{
	for (unsigned int i = 0; i < HTTP_CONN_TRACK; i++) {
		struct http_conn *hc = &h->conns[i];

		if (hc->c && !hc->closing && now_ns - hc->since_ns > HTTP_DEADLINE_NS) {
			conn_shut(h, hc);
			h->deadlines++;
		}
	}
}

/* "%00" stays as it is: a NUL in the decoded URL would cut "/metrics%00" to "/metrics". */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	if (strstr(s, "%00"))
		return strlen(s);
	return MHD_http_unescape(s);
}

static MHD_RESULT reply(struct http_server *h, struct MHD_Connection *c, unsigned int code,
			const char *type, void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct http_conn *hc = conn_of(c);

	/* answered: the next request on this connection has a deadline of its own, and the
	 * reply is sent within this one */
	if (hc)
		hc->since_ns = clock_mono_ns();
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	MHD_RESULT ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	h->requests[code == 200 ? 0 : code == 404 ? 1 : 2]++;
	return ret;
}

/* 401 with the challenge; the body only says what is missing. */
static MHD_RESULT deny(struct http_server *h, struct MHD_Connection *c)
{
	static const char body[] = "unauthorized: basic auth needed\n";
	struct http_conn *hc = conn_of(c);
	struct MHD_Response *r;
	MHD_RESULT ret;

	if (hc)
		hc->since_ns = clock_mono_ns();
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	ret = MHD_queue_basic_auth_fail_response(c, HTTP_REALM, r);
	MHD_destroy_response(r);
	h->requests[2]++;
	h->unauthorized++;
	return ret;
}

/* The user and password of the request against the web-config; the password is wiped. */
static bool authorized(struct http_server *h, struct MHD_Connection *c)
{
	enum webconfig_auth a;
	char *user, *pass = NULL;

	if (!webconfig_auth_on(h->web))
		return true;
	user = MHD_basic_auth_get_username_password(c, &pass);
	a = webconfig_check(h->web, user, pass, clock_mono_ns());
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	if (a == WEBCONFIG_AUTH_BUSY)
		pr_debug("metrics: password checks of this second spent: 401 unchecked");
	return a == WEBCONFIG_AUTH_OK;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_len, void **con_cls)
{
	static const char not_found[] = "not found: the metrics are at /metrics\n";
	static const char bad_method[] = "only GET and HEAD\n";
	static int first_call;
	struct http_server *h = cls;
	char *body = NULL;
	long len;

	/* the first call only announces the headers; answer on the second */
	if (*con_cls != &first_call) {
		*con_cls = &first_call;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0; /* a body we do not want: discard it */
		return MHD_YES;
	}
	/* before routing: without credentials, nothing about the server is told */
	if (!authorized(h, c))
		return deny(h, c);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", (void *)bad_method,
			     sizeof(bad_method) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(h, c, MHD_HTTP_NOT_FOUND, "text/plain", (void *)not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	len = h->render(h->ctx, &body);
	if (len < 0)
		return reply(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", (void *)"", 0,
			     MHD_RESPMEM_PERSISTENT);
	return reply(h, c, MHD_HTTP_OK, CONTENT_TYPE, body, (size_t)len, MHD_RESPMEM_MUST_FREE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	sp_vlog(LOG_DEBUG, fmt, ap);
}

/* The TLS options of @web for MHD_OPTION_ARRAY (@o: 4 items); none without TLS. */
static void tls_options(const struct webconfig *web, struct MHD_OptionItem *o)
{
	size_t n = 0;

	if (webconfig_tls(web)) {
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, web->key_pem };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, web->cert_pem };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
						  (void *)HTTP_TLS_PRIORITIES };
	}
	o[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
}

int http_tls_check(const struct webconfig *web, char *why, size_t cap)
{
	struct MHD_OptionItem tls[4];
	struct MHD_Daemon *d;

	if (!webconfig_tls(web))
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(why, cap, "this libmicrohttpd was built without TLS (GnuTLS): "
				   "tls_server_config cannot be served");
		return -ENOTSUP;
	}
	tls_options(web, tls);
	/* a daemon with no socket: GnuTLS reads the pair as the real one will */
	d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0, NULL,
			     NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!d) {
		snprintf(why, cap, "%s, %s: GnuTLS refused the pair (both PEM? the key of this "
				   "certificate?)",
			 web->cert_path, web->key_path);
		return -EINVAL;
	}
	MHD_stop_daemon(d);
	return 0;
}

int http_start(struct http_server *h, const struct sockaddr *addr, socklen_t len,
	       struct webconfig *web, http_metrics_fn render, void *ctx)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[4];
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int fd;

	memset(h, 0, sizeof(*h));
	h->render = render;
	h->ctx = ctx;
	h->web = web;
	tls_options(web, tls);
	if (webconfig_tls(web))
		flags |= MHD_USE_TLS;
	/* "[::]" means both families, as it does for most servers: a second process cannot
	 * take 127.0.0.1 on our port */
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_DUAL_STACK;
	/* port 0 lets the kernel choose; MHD wants a non-zero port argument, the address wins */
	h->d = MHD_start_daemon(flags, 1, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_TRACK,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTP_PER_IP_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
				MHD_OPTION_LISTEN_BACKLOG_SIZE, 64U, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!h->d)
		return errno ? -errno : -EADDRINUSE;
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
	fd = info ? info->listen_fd : -1;
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
		h->port =
		    ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						      : ((struct sockaddr_in *)&bound)->sin_port);
	(void)len;
	return 0;
}

int http_fd(const struct http_server *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

void http_run(struct http_server *h, uint64_t now_ns)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!h->d)
		return;
	sweep(h, now_ns);
	/* The library's epoll is edge-triggered: what it has ready (pipelined requests, replies
	 * to send) is done now, not when the next tick comes. */
	for (int i = 0; i < HTTP_RUN_MAX; i++) {
		MHD_run(h->d);
		if (MHD_get_timeout(h->d, &t) != MHD_YES || t != 0)
			break;
	}
}

void http_stop(struct http_server *h)
{
	if (h && h->d)
		MHD_stop_daemon(h->d);
	if (h)
		h->d = NULL;
}
