// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The metrics HTTP request path: our part of it is the request handler user/cmd/http.c gives
 * libmicrohttpd (method and URL routing, upload discarding, the render call and who frees its
 * body). HTTP parsing itself is libmicrohttpd's, so the library is replaced here by stubs that
 * capture the handler at http_start() and record what it queues; the handler is then driven
 * as libmicrohttpd drives it: headers, optional upload chunks, final call.
 *
 * Checks: GET/HEAD /metrics answers 200 with the rendered exposition (valid, see
 * fuzz_check_exposition) and its content type, a render failure 500, another URL 404, another
 * method 405; exactly one response per request, counted once in http_server.requests; a
 * failed response allocation answers MHD_NO and still frees the body (LeakSanitizer).
 *
 * Input: one byte of options (bit 0: response allocation fails, bit 1: rendering fails, bit 2:
 * an upload arrives first), the method and the URL each NUL-terminated, then events for the
 * metrics registry (see fuzz_event).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "http.h"
#include "metrics.h"

#include "fuzz_common.h"

#define MAX_EVENTS 16

struct MHD_Response {
	void *body;
	size_t len;
	enum MHD_ResponseMemoryMode mode;
	char type[64];
};

static struct {
	MHD_AccessHandlerCallback handler;
	void *handler_cls;
	bool fail_create;
	unsigned int queued, code, created, destroyed;
	char type[64];
	char *body; /* copy of the queued body */
	size_t len;
} mhd;

static char fake_daemon, fake_connection;

/* ---- libmicrohttpd stubs: the functions user/cmd/http.c calls ---- */

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
				    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	mhd.handler = dh;
	mhd.handler_cls = dh_cls;
	return (struct MHD_Daemon *)&fake_daemon;
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
						enum MHD_DaemonInfoType info_type, ...)
{
	return NULL;
}

enum MHD_Result MHD_run(struct MHD_Daemon *daemon)
{
	return MHD_YES;
}

enum MHD_Result MHD_get_timeout(struct MHD_Daemon *daemon, MHD_UNSIGNED_LONG_LONG *timeout)
{
	return MHD_NO;
}

/* No socket context: the handler must cope with a connection it does not track. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
							enum MHD_ConnectionInfoType info_type, ...)
{
	return NULL;
}

size_t MHD_http_unescape(char *val)
{
	return strlen(val);
}

/* basic auth and TLS: never reached, the target runs without a web-config */
char *MHD_basic_auth_get_username_password(struct MHD_Connection *connection, char **password)
{
	fuzz_assert(0, "basic auth without a web-config");
	return NULL;
}

void MHD_free(void *ptr)
{
	free(ptr);
}

enum MHD_Result MHD_queue_basic_auth_fail_response(struct MHD_Connection *connection,
						   const char *realm, struct MHD_Response *response)
{
	fuzz_assert(0, "401 without a web-config");
	return MHD_NO;
}

enum MHD_Result MHD_is_feature_supported(enum MHD_FEATURE feature)
{
	return MHD_NO;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	fuzz_assert(daemon == (struct MHD_Daemon *)&fake_daemon, "stopping another daemon");
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;

	if (mhd.fail_create)
		return NULL;
	r = calloc(1, sizeof(*r));
	fuzz_assert(r, "calloc");
	r->body = buffer;
	r->len = size;
	r->mode = mode;
	mhd.created++;
	return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header,
					const char *content)
{
	if (!strcmp(header, MHD_HTTP_HEADER_CONTENT_TYPE))
		snprintf(r->type, sizeof(r->type), "%s", content);
	return MHD_YES;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int code,
				   struct MHD_Response *r)
{
	fuzz_assert(c == (struct MHD_Connection *)&fake_connection, "queued on another connection");
	mhd.queued++;
	mhd.code = code;
	memcpy(mhd.type, r->type, sizeof(mhd.type));
	free(mhd.body);
	mhd.body = malloc(r->len + 1);
	fuzz_assert(mhd.body, "malloc");
	if (r->len)
		memcpy(mhd.body, r->body, r->len); /* ASan: the body is still alive */
	mhd.body[r->len] = '\0';
	mhd.len = r->len;
	return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *r)
{
	if (!r)
		return;
	if (r->mode == MHD_RESPMEM_MUST_FREE)
		free(r->body);
	free(r);
	mhd.destroyed++;
}

/* ---- the render callback: a registry fed with fuzzed events ---- */

struct render_ctx {
	struct metrics m;
	bool fail;
	unsigned int calls;
	char *expect; /* a second rendering, to compare the body with */
	long expect_len;
};

static long render(void *ctx, char **body)
{
	struct render_ctx *rc = ctx;
	long len;

	rc->calls++;
	if (rc->fail)
		return -ENOMEM;
	len = metrics_render(&rc->m, body);
	fuzz_assert(len > 0, "metrics_render: %ld", len);
	fuzz_check_exposition(*body, (size_t)len, NULL, NULL);
	rc->expect_len = metrics_render(&rc->m, &rc->expect);
	return len;
}

static const char *take_str(struct fuzz_in *in)
{
	const char *s = (const char *)in->p;
	const uint8_t *nul = memchr(in->p, '\0', in->n);

	if (!nul)
		return NULL;
	in->n -= (size_t)(nul - in->p) + 1;
	in->p = nul + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct fuzz_in in = {data, size};
	static struct render_ctx rc;
	struct http_server h;
	const char *method, *url;
	uint64_t before[3];
	void *con_cls = NULL;
	size_t upload_len = 0;
	enum MHD_Result ret;
	unsigned int want;
	uint8_t opts;
	bool ok_method;
	int events = 0;

	opts = fin_u8(&in);
	method = take_str(&in);
	url = take_str(&in);
	if (!method || !url)
		return 0;
	memset(&mhd, 0, sizeof(mhd));
	mhd.fail_create = opts & 1;
	if (metrics_init(&rc.m, "0.1.0", "1.1.0", "fentry"))
		return 0;
	rc.fail = opts & 2;
	rc.calls = 0;
	rc.expect = NULL;
	while (in.n && events++ < MAX_EVENTS) {
		struct sp_event ev;

		fuzz_event(&in, &ev, true);
		metrics_on_event(&rc.m, &ev);
	}
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fuzz_assert(http_start(&h, (struct sockaddr *)&sin, sizeof(sin), NULL, render, &rc) == 0,
		    "http_start");
	fuzz_assert(mhd.handler && mhd.handler_cls == &h, "handler not registered");
	memcpy(before, h.requests, sizeof(before));

	/* headers: no answer yet */
	ret = mhd.handler(mhd.handler_cls, (struct MHD_Connection *)&fake_connection, url, method,
			  "HTTP/1.1", NULL, &upload_len, &con_cls);
	fuzz_assert(ret == MHD_YES && !mhd.queued, "answered on the headers call");
	if (opts & 4) {
		static const char chunk[] = "a body nobody asked for";

		upload_len = sizeof(chunk) - 1;
		ret = mhd.handler(mhd.handler_cls, (struct MHD_Connection *)&fake_connection, url,
				  method, "HTTP/1.1", chunk, &upload_len, &con_cls);
		fuzz_assert(ret == MHD_YES && !upload_len && !mhd.queued, "upload not discarded");
	}
	/* the final call answers */
	ret = mhd.handler(mhd.handler_cls, (struct MHD_Connection *)&fake_connection, url, method,
			  "HTTP/1.1", NULL, &upload_len, &con_cls);

	ok_method = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!ok_method)
		want = MHD_HTTP_METHOD_NOT_ALLOWED;
	else if (strcmp(url, "/metrics"))
		want = MHD_HTTP_NOT_FOUND;
	else if (rc.fail)
		want = MHD_HTTP_INTERNAL_SERVER_ERROR;
	else
		want = MHD_HTTP_OK;
	fuzz_assert(rc.calls == (ok_method && !strcmp(url, "/metrics")), "rendered %u times",
		    rc.calls);
	fuzz_assert(mhd.created == mhd.destroyed, "%u responses made, %u destroyed", mhd.created,
		    mhd.destroyed);
	if (mhd.fail_create) {
		fuzz_assert(ret == MHD_NO && !mhd.queued, "no response, yet answered");
		fuzz_assert(!memcmp(before, h.requests, sizeof(before)), "counted without answer");
	} else {
		unsigned int idx = want == 200 ? 0 : want == 404 ? 1 : 2;

		fuzz_assert(ret == MHD_YES && mhd.queued == 1, "%u responses queued", mhd.queued);
		fuzz_assert(mhd.code == want, "%s %s answered %u, not %u", method, url, mhd.code,
			    want);
		fuzz_assert(h.requests[idx] == before[idx] + 1, "request not counted");
		if (want == MHD_HTTP_OK) {
			fuzz_assert(!strncmp(mhd.type, "text/plain; version=0.0.4", 25),
				    "content type \"%s\"", mhd.type);
			fuzz_assert(rc.expect_len == (long)mhd.len &&
					!memcmp(rc.expect, mhd.body, mhd.len),
				    "body is not the rendering");
		}
	}
	http_stop(&h);
	fuzz_assert(!h.d, "daemon kept after http_stop");
	free(rc.expect);
	free(mhd.body);
	metrics_free(&rc.m);
	return 0;
}
