// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The web-config file of /metrics: TLS and basic auth; see webconfig.h. */
#define _GNU_SOURCE
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "log.h"
#include "safefile.h"
#include "util.h"
#include "webconfig.h"


/* where a problem is: the file, and the line of the node (libyaml counts from 0) */
struct wc_parse {
	struct webconfig *wc;
	yaml_document_t *doc;
	char *why;
	size_t cap;
};

static int __attribute__((format(printf, 4, 5)))
fail_at(struct wc_parse *p, const yaml_node_t *n, int err, const char *fmt, ...)
{
	char msg[512], path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_escape(path, sizeof(path), p->wc->path);
	if (n)
		snprintf(p->why, p->cap, "%s:%lu: %s", path, (unsigned long)n->start_mark.line + 1,
			 msg);
	else
		snprintf(p->why, p->cap, "%s: %s", path, msg);
	return err;
}

/* The whole of a file opened safely, NUL-terminated, at most @max bytes. */
static int read_all(const char *path, bool secret, size_t max, char **out, char *why, size_t cap)
{
	char reason[160], shown[512];
	struct stat st;
	size_t n = 0;
	char *buf;
	int fd, err = 0;

	log_escape(shown, sizeof(shown), path);
	fd = safefile_open(path, O_RDONLY, 0, SAFEFILE_CONFIG, reason, sizeof(reason));
	if (fd == -SAFEFILE_REFUSED) {
		snprintf(why, cap, "%s: refused: %s", shown, reason);
		return fd;
	}
	if (fd < 0) {
		snprintf(why, cap, "%s: %s", shown, strerror(-fd));
		return fd;
	}
	/* a private key others can read is no longer private: say so rather than serve it */
	if (secret && fstat(fd, &st) == 0 && (st.st_mode & S_IROTH)) {
		snprintf(why, cap, "%s: refused: is readable by others (mode %04o): chmod o-r",
			 shown, (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -SAFEFILE_REFUSED;
	}
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			snprintf(why, cap, "%s: %s", shown, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			err = -EFBIG;
			snprintf(why, cap, "%s: larger than %zu bytes", shown, max);
			break;
		}
	}
	close(fd);
	if (!err && memchr(buf, '\0', n)) {
		err = -EINVAL;
		snprintf(why, cap, "%s: contains a NUL byte", shown);
	}
	if (err) {
		explicit_bzero(buf, n < max + 1 ? n : max + 1);
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Keys of a mapping must be plain strings, each once. */
static int check_keys(struct wc_parse *p, const yaml_node_t *map, const char *what)
{
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);

		if (!scalar(k))
			return fail_at(p, k, -EINVAL, "%s: keys must be strings", what);
		for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++) {
			const char *other = scalar(yaml_document_get_node(p->doc, b->key));

			if (other && strcmp(other, scalar(k)) == 0)
				return fail_at(p, k, -EINVAL, "duplicate key '%s'", scalar(k));
		}
	}
	return 0;
}

static int expect_map(struct wc_parse *p, const yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return fail_at(p, n, -EINVAL, "%s: a mapping (key: value lines) expected", what);
	return check_keys(p, n, what);
}

/* A file named in the YAML: relative to the YAML's directory, as node_exporter does. */
static int resolve(struct wc_parse *p, const yaml_node_t *v, const char *key, char *out, size_t cap)
{
	const char *s = scalar(v), *slash = strrchr(p->wc->path, '/');
	int n;

	if (!s || !*s)
		return fail_at(p, v, -EINVAL, "%s: a file name expected", key);
	if (s[0] == '/' || !slash)
		n = snprintf(out, cap, "%s", s);
	else
		n = snprintf(out, cap, "%.*s/%s", (int)(slash - p->wc->path), p->wc->path, s);
	if (n < 0 || (size_t)n >= cap)
		return fail_at(p, v, -ENAMETOOLONG, "%s: name too long", key);
	return 0;
}

static int parse_tls(struct wc_parse *p, const yaml_node_t *map)
{
	const yaml_node_t *cert = NULL, *key = NULL;
	char sub[600];
	int err;

	err = expect_map(p, map, "tls_server_config");
	if (err)
		return err;
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
		const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);

		if (strcmp(scalar(k), "cert_file") == 0)
			cert = v;
		else if (strcmp(scalar(k), "key_file") == 0)
			key = v;
		else
			return fail_at(p, k, -EINVAL,
				       "unknown key 'tls_server_config.%s' (supported: cert_file, "
				       "key_file)",
				       scalar(k));
	}
	if (!cert || !key)
		return fail_at(p, map, -EINVAL, "tls_server_config: needs cert_file and key_file");
	err = resolve(p, cert, "cert_file", p->wc->cert_path, sizeof(p->wc->cert_path));
	if (!err)
		err = resolve(p, key, "key_file", p->wc->key_path, sizeof(p->wc->key_path));
	if (err)
		return err;
	err = read_all(p->wc->cert_path, false, WEBCONFIG_PEM_MAX, &p->wc->cert_pem, sub,
		       sizeof(sub));
	if (err)
		return fail_at(p, cert, err, "cert_file %s", sub);
	err = read_all(p->wc->key_path, true, WEBCONFIG_PEM_MAX, &p->wc->key_pem, sub, sizeof(sub));
	if (err)
		return fail_at(p, key, err, "key_file %s", sub);
	return 0;
}

/* "$2b$10$" + 53 characters, a cost the loop can afford, and libcrypt agrees it is bcrypt. */
static int check_hash(struct wc_parse *p, const yaml_node_t *v, const char *user)
{
	const char *h = scalar(v), *out;
	int cost;

	if (!h || strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) ||
	    h[3] != '$' || sscanf(h + 4, "%2d", &cost) != 1 || h[6] != '$')
		return fail_at(p, v, -EINVAL, "user '%s': not a bcrypt hash ($2y$, $2b$ or $2a$)",
			       user);
	if (cost < 4 || cost > WEBCONFIG_COST_MAX)
		return fail_at(
		    p, v, -EINVAL,
		    "user '%s': bcrypt cost %d, not from 4 to %d (each check runs in the "
		    "agent's event loop)",
		    user, cost, WEBCONFIG_COST_MAX);
	out = crypt_r("", h, p->wc->crypt);
	if (!out || strncmp(out, h, 29) != 0 || strlen(out) != 60)
		return fail_at(p, v, -EINVAL, "user '%s': libcrypt does not take this bcrypt hash",
			       user);
	return 0;
}

static int parse_users(struct wc_parse *p, const yaml_node_t *map)
{
	struct webconfig *wc = p->wc;
	size_t n;
	int err;

	err = expect_map(p, map, "basic_auth_users");
	if (err)
		return err;
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	if (n > WEBCONFIG_USERS_MAX)
		return fail_at(p, map, -EINVAL, "basic_auth_users: more than %d users",
			       WEBCONFIG_USERS_MAX);
	if (!n)
		return 0;
	wc->users = calloc(n, sizeof(*wc->users));
	if (!wc->users)
		return -ENOMEM;
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
		const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);
		const char *name = scalar(k);
		struct webconfig_user *u = &wc->users[wc->n_users];

		/* Basic auth cannot carry a ':' in a name; a control byte is a mistake */
		if (!*name || strlen(name) >= sizeof(u->name) || strchr(name, ':') ||
		    strpbrk(name, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
				  "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
				  "\x7f"))
			return fail_at(
			    p, k, -EINVAL,
			    "basic_auth_users: a user name of 1 to %zu bytes, without ':' "
			    "or control characters",
			    sizeof(u->name) - 1);
		err = check_hash(p, v, name);
		if (err)
			return err;
		memcpy(u->name, name, strlen(name));
		memcpy(u->hash, scalar(v), 60);
		wc->n_users++;
	}
	return 0;
}

static int parse_doc(struct wc_parse *p)
{
	const yaml_node_t *root = yaml_document_get_root_node(p->doc);
	int err;

	if (!root) /* an empty file: nothing asked for, as node_exporter takes it */
		return 0;
	err = expect_map(p, root, "the file");
	if (err)
		return err;
	for (yaml_node_pair_t *a = root->data.mapping.pairs.start; a < root->data.mapping.pairs.top;
	     a++) {
		const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
		const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);

		if (strcmp(scalar(k), "tls_server_config") == 0)
			err = parse_tls(p, v);
		else if (strcmp(scalar(k), "basic_auth_users") == 0)
			err = parse_users(p, v);
		else
			err = fail_at(p, k, -EINVAL,
				      "unknown key '%s' (supported: tls_server_config, "
				      "basic_auth_users)",
				      scalar(k));
		if (err)
			return err;
	}
	return 0;
}

int webconfig_load(struct webconfig *wc, const char *path, char *why, size_t cap)
{
	struct wc_parse p = {.wc = wc, .why = why, .cap = cap};
	yaml_parser_t parser;
	yaml_document_t doc;
	char *text = NULL, shown[512];
	int err;

	memset(wc, 0, sizeof(*wc));
	if (cap)
		why[0] = '\0';
	if (snprintf(wc->path, sizeof(wc->path), "%s", path) >= (int)sizeof(wc->path))
		return -ENAMETOOLONG;
	wc->crypt = calloc(1, sizeof(*wc->crypt));
	if (!wc->crypt)
		return -ENOMEM;
	err = read_all(path, false, WEBCONFIG_FILE_MAX, &text, why, cap);
	if (err) {
		webconfig_free(wc);
		return err;
	}
	if (!yaml_parser_initialize(&parser)) {
		free(text);
		webconfig_free(wc);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	if (!yaml_parser_load(&parser, &doc)) {
		log_escape(shown, sizeof(shown), path);
		snprintf(why, cap, "%s:%lu: not YAML: %s", shown,
			 (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "parse error");
		err = -EINVAL;
	} else {
		p.doc = &doc;
		err = parse_doc(&p);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	free(text);
	if (err)
		webconfig_free(wc);
	return err;
}

void webconfig_free(struct webconfig *wc)
{
	if (!wc)
		return;
	if (wc->key_pem) {
		explicit_bzero(wc->key_pem, strlen(wc->key_pem));
		free(wc->key_pem);
	}
	free(wc->cert_pem);
	if (wc->users)
		explicit_bzero(wc->users, wc->n_users * sizeof(*wc->users));
	free(wc->users);
	free(wc->crypt);
	wc->key_pem = wc->cert_pem = NULL;
	wc->users = NULL;
	wc->crypt = NULL;
	wc->n_users = 0;
}

/* Equal over the whole buffers: the time does not depend on where they differ. */
static bool same(const char *a, const char *b, size_t n)
{
	volatile unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return d == 0;
}

enum webconfig_auth webconfig_check(struct webconfig *wc, const char *user, const char *pass,
				    uint64_t now_ns)
{
	char name[WEBCONFIG_NAME_MAX] = {0}, pw[WEBCONFIG_PASS_MAX] = {0};
	struct webconfig_user *found = NULL;
	const char *out;
	bool ok;

	if (!wc->n_users)
		return WEBCONFIG_AUTH_OK;
	if (!user || !pass || strlen(user) >= sizeof(name) || strlen(pass) >= sizeof(pw))
		return WEBCONFIG_AUTH_BAD;
	memcpy(name, user, strlen(user));
	memcpy(pw, pass, strlen(pass));
	for (unsigned int i = 0; i < wc->n_users; i++)
		if (same(wc->users[i].name, name, sizeof(name)) && !found)
			found = &wc->users[i];
	if (found && found->cached && same(found->ok, pw, sizeof(pw))) {
		explicit_bzero(pw, sizeof(pw));
		return WEBCONFIG_AUTH_OK;
	}
	if (now_ns / NSEC_PER_SEC != wc->budget_s) {
		wc->budget_s = now_ns / NSEC_PER_SEC;
		wc->checks = 0;
	}
	if (wc->checks >= WEBCONFIG_CHECKS_PER_S) {
		wc->throttled++;
		explicit_bzero(pw, sizeof(pw));
		return WEBCONFIG_AUTH_BUSY;
	}
	wc->checks++;
	/* an unknown user costs a check too: the time does not tell which names exist */
	out = crypt_r(pw, found ? found->hash : wc->users[0].hash, wc->crypt);
	ok = found && out && strlen(out) == 60 && same(out, found->hash, 60);
	if (ok) {
		memcpy(found->ok, pw, sizeof(pw));
		found->cached = true;
	}
	explicit_bzero(pw, sizeof(pw));
	return ok ? WEBCONFIG_AUTH_OK : WEBCONFIG_AUTH_BAD;
}
