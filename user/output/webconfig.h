/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * --web-config: TLS and basic auth for /metrics, in the subset of node_exporter's web-config
 * YAML that a metrics endpoint needs:
 *
 *   tls_server_config:
 *     cert_file: server.crt      # PEM; relative paths are relative to the YAML file
 *     key_file: server.key       # PEM; not readable by others
 *   basic_auth_users:
 *     prometheus: $2y$10$...     # bcrypt ($2y$, $2b$, $2a$)
 *
 * Every file is opened as safefile.h says (no symlink, owner root or the agent's user, not
 * writable by others); the key must not be readable by others either. Unknown keys, duplicate
 * keys and anything that is not this shape are refused with the line they are on. libyaml
 * parses, libcrypt (crypt_r) checks the hashes.
 */
#ifndef SP_WEBCONFIG_H
#define SP_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBCONFIG_FILE_MAX  (64 * 1024)	  /* the YAML file */
#define WEBCONFIG_PEM_MAX   (1024 * 1024) /* a certificate chain or a key */
#define WEBCONFIG_USERS_MAX 64
#define WEBCONFIG_NAME_MAX  128 /* user names, bytes, NUL included */
#define WEBCONFIG_PASS_MAX  256 /* passwords longer are refused */
#define WEBCONFIG_COST_MAX  12	/* bcrypt cost: a check runs inside the event loop */
/* Uncached password checks (bcrypt, milliseconds each) allowed per second; past that, 401
 * without checking: guessing cannot stall the loop. A scraper whose password was checked once
 * is answered from the cache and never waits for this budget. */
#define WEBCONFIG_CHECKS_PER_S 4

struct webconfig_user {
	char name[WEBCONFIG_NAME_MAX]; /* zero-padded: compared whole, in constant time */
	char hash[64];
	char ok[WEBCONFIG_PASS_MAX]; /* the last password that matched, zero-padded; "" none */
	bool cached;
};

struct webconfig {
	char path[4096];
	char *cert_pem, *key_pem; /* NUL-terminated; NULL: no TLS */
	char cert_path[4096], key_path[4096];
	struct webconfig_user *users; /* NULL: no basic auth */
	unsigned int n_users;
	struct crypt_data *crypt; /* crypt_r's scratch (tens of KiB) */
	uint64_t budget_s;	  /* the second the check budget is counted in */
	unsigned int checks;	  /* uncached checks in that second */
	uint64_t throttled;	  /* requests refused without a check */
};

enum webconfig_auth {
	WEBCONFIG_AUTH_OK = 0,
	WEBCONFIG_AUTH_BAD,  /* missing, unknown user or wrong password */
	WEBCONFIG_AUTH_BUSY, /* the check budget of this second is spent: refused unchecked */
};

/*
 * Reads @path and the files it names into @wc. 0, or -errno with one line in @why: "FILE:LINE:
 * unknown key 'x'", "key file FILE: refused: is readable by others (mode 0644)"...
 */
int webconfig_load(struct webconfig *wc, const char *path, char *why, size_t cap);
/* Clears the key from memory and frees everything; NULL-safe, @wc can be loaded again. */
void webconfig_free(struct webconfig *wc);
static inline bool webconfig_tls(const struct webconfig *wc)
{
	return wc && wc->cert_pem;
}
static inline bool webconfig_auth_on(const struct webconfig *wc)
{
	return wc && wc->n_users;
}
/*
 * @user and @pass from the request (NULL: not given) against the users, at @now_ns (monotonic).
 * The user name is compared with every user in constant time; an unknown user costs a bcrypt
 * check as a known one does.
 */
enum webconfig_auth webconfig_check(struct webconfig *wc, const char *user, const char *pass,
				    uint64_t now_ns);

#endif
