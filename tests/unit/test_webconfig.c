/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The web-config parser over good and bad files: what is read (PEM text, users, relative paths
 * resolved against the file's directory), what is refused and with which line (unknown and
 * duplicate keys, missing files, wrong shapes, hashes that are not bcrypt, costs the loop cannot
 * afford, a world-writable file, a key readable by others), and the password check: right,
 * wrong, unknown user, the cache after a success, and the per-second budget of uncached checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "safefile.h"
#include "webconfig.h"

#define NS_PER_S 1000000000ULL

/* "secret" and "other", bcrypt cost 5 (mkpasswd -m bcrypt) */
#define HASH_SECRET "$2b$05$k3BoprBHSqtILkMyhe1PBODHBUB5mTQd7rX4grebQwjwhM/1.1oAe"
#define HASH_OTHER  "$2b$05$N4N4jpDhxrtJqVNHKGKRoO05JHy0xtYUJVW8UD0ikBfZrZBIHn/em"
#define HASH_2A	    "$2a$05$wo0/fPYj7.W7kVL/UI.NjuVpH/xPJzKzMwV3RpMbqZkDuOXOL6d8O"
#define CERT	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define KEY	    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

#include "tmpdir.h"

static int setup(void **state)
{
	return tmpdir_make("webconfig");
}

static void write_file(const char *name, mode_t mode, const char *text)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void pem_files(void)
{
	write_file("server.crt", 0644, CERT);
	write_file("server.key", 0600, KEY);
}

/* Loads web.yml holding @yaml; expects the error @err whose line contains @want. */
static void expect_refused(const char *yaml, int err, const char *want)
{
	struct webconfig wc;
	char why[1024];

	write_file("web.yml", 0644, yaml);
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), err);
	if (!strstr(why, want))
		fail_msg("'%s' does not say '%s'", why, want);
	assert_null(strchr(why, '\n'));
	assert_null(wc.users);
	assert_null(wc.key_pem);
	webconfig_free(&wc);
}

static void test_good(void **state)
{
	struct webconfig wc;
	char why[1024];

	char text[1024];

	pem_files();
	/* a relative cert_file is beside the YAML; an absolute key_file is taken as it is */
	snprintf(text, sizeof(text),
		 "tls_server_config:\n  cert_file: server.crt\n  key_file: %s\n"
		 "basic_auth_users:\n  prometheus: " HASH_SECRET "\n  'b o b': '" HASH_2A "'\n",
		 at("server.key"));
	write_file("web.yml", 0640, text);
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), 0);
	assert_true(webconfig_tls(&wc));
	assert_true(webconfig_auth_on(&wc));
	assert_string_equal(wc.cert_pem, CERT);
	assert_string_equal(wc.key_pem, KEY);
	assert_string_equal(wc.cert_path, at("server.crt")); /* beside the YAML */
	assert_int_equal(wc.n_users, 2);
	assert_string_equal(wc.users[0].name, "prometheus");
	assert_string_equal(wc.users[1].name, "b o b");
	webconfig_free(&wc);
	assert_null(wc.key_pem);
	webconfig_free(&wc); /* twice is harmless */
}

static void test_partial(void **state)
{
	struct webconfig wc;
	char why[1024];

	/* empty: nothing asked for */
	write_file("web.yml", 0644, "");
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), 0);
	assert_false(webconfig_tls(&wc));
	assert_false(webconfig_auth_on(&wc));
	webconfig_free(&wc);
	/* users only: auth over plain HTTP */
	write_file("web.yml", 0644, "basic_auth_users:\n  u: " HASH_SECRET "\n");
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), 0);
	assert_false(webconfig_tls(&wc));
	assert_true(webconfig_auth_on(&wc));
	webconfig_free(&wc);
	/* TLS only */
	pem_files();
	write_file("web.yml", 0644,
		   "tls_server_config: {cert_file: server.crt, key_file: server.key}\n");
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), 0);
	assert_true(webconfig_tls(&wc));
	assert_false(webconfig_auth_on(&wc));
	webconfig_free(&wc);
}

static void test_bad_shape(void **state)
{
	pem_files();
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
		       "http_server_config:\n  http2: false\n",
		       -EINVAL, "web.yml:4: unknown key 'http_server_config'");
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
		       "  client_auth_type: RequireAndVerifyClientCert\n",
		       -EINVAL, "web.yml:4: unknown key 'tls_server_config.client_auth_type'");
	expect_refused("tls_server_config:\n  cert_file: server.crt\n", -EINVAL,
		       "needs cert_file and key_file");
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file:\n", -EINVAL,
		       "web.yml:3: key_file: a file name expected");
	expect_refused("tls_server_config: server.crt\n", -EINVAL, "web.yml:1: tls_server_config: "
								   "a mapping");
	expect_refused("- a\n- b\n", -EINVAL, "web.yml:1: the file: a mapping");
	expect_refused("basic_auth_users:\n  a: " HASH_SECRET "\n  a: " HASH_OTHER "\n", -EINVAL,
		       "web.yml:3: duplicate key 'a'");
	expect_refused("basic_auth_users:\n  [a]: " HASH_SECRET "\n", -EINVAL,
		       "keys must be strings");
	expect_refused("basic_auth_users: [\n", -EINVAL, "not YAML");
	expect_refused("basic_auth_users:\n  'a:b': " HASH_SECRET "\n", -EINVAL, "without ':'");
	expect_refused("basic_auth_users:\n  a: secret\n", -EINVAL,
		       "web.yml:2: user 'a': not a bcrypt hash");
	expect_refused("basic_auth_users:\n  a: $6$salt$0123456789\n", -EINVAL, "not a bcrypt hash");
	expect_refused("basic_auth_users:\n  a: $2b$13$k3BoprBHSqtILkMyhe1PBODHBUB5mTQd7rX4grebQwjwh"
		       "M/1.1oAe\n",
		       -EINVAL, "bcrypt cost 13");
	/* the right shape, but not a hash libcrypt can read (a salt character out of its set) */
	expect_refused("basic_auth_users:\n  a: $2b$05$k3Bopr!HSqtILkMyhe1PBODHBUB5mTQd7rX4grebQwjwh"
		       "M/1.1oAe\n",
		       -EINVAL, "libcrypt");
}

static void test_bad_files(void **state)
{
	char big[WEBCONFIG_FILE_MAX + 64];
	struct webconfig wc;
	char why[1024];

	pem_files();
	expect_refused("tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n",
		       -ENOENT, "web.yml:2: cert_file");
	write_file("open.key", 0644, KEY);
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file: open.key\n",
		       -SAFEFILE_REFUSED, "web.yml:3: key_file");
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file: open.key\n",
		       -SAFEFILE_REFUSED, "readable by others (mode 0644)");
	write_file("open.crt", 0666, CERT);
	expect_refused("tls_server_config:\n  cert_file: open.crt\n  key_file: server.key\n",
		       -SAFEFILE_REFUSED, "writable by others");
	assert_int_equal(symlink(at("server.key"), at("link.key")) == 0 ? 0 : -errno, 0);
	expect_refused("tls_server_config:\n  cert_file: server.crt\n  key_file: link.key\n",
		       -SAFEFILE_REFUSED, "symbolic link");

	/* the YAML itself: world-writable, missing, too large, with a NUL */
	write_file("web.yml", 0666, "");
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), -SAFEFILE_REFUSED);
	assert_non_null(strstr(why, "refused: is writable by others (mode 0666)"));
	assert_int_equal(webconfig_load(&wc, at("nope.yml"), why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "nope.yml"));
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file("web.yml", 0644, big);
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), -EFBIG);
	write_file("web.yml", 0644, "a");
	{
		int fd = open(at("web.yml"), O_WRONLY | O_APPEND);

		assert_int_equal(write(fd, "\0: b\n", 5), 5);
		close(fd);
	}
	assert_int_equal(webconfig_load(&wc, at("web.yml"), why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "NUL"));
}

static void load_users(struct webconfig *wc)
{
	char why[1024];

	write_file("web.yml", 0644,
		   "basic_auth_users:\n  prometheus: " HASH_SECRET "\n  other: " HASH_OTHER "\n");
	assert_int_equal(webconfig_load(wc, at("web.yml"), why, sizeof(why)), 0);
}

static void test_check(void **state)
{
	uint64_t t = 100 * NS_PER_S;
	struct webconfig wc;

	load_users(&wc);
	assert_int_equal(webconfig_check(&wc, "prometheus", "secret", t), WEBCONFIG_AUTH_OK);
	assert_int_equal(webconfig_check(&wc, "other", "other", t), WEBCONFIG_AUTH_OK);
	t += NS_PER_S;
	assert_int_equal(webconfig_check(&wc, "prometheus", "other", t), WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "nobody", "secret", t), WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "prometheus", "secre", t), WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "prometheu", "secret", t + 2 * NS_PER_S),
			 WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "prometheus", NULL, t), WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, NULL, NULL, t), WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "prometheus", "", t), WEBCONFIG_AUTH_BAD);
	webconfig_free(&wc);
}

static void test_budget(void **state)
{
	uint64_t t = 100 * NS_PER_S;
	struct webconfig wc;

	load_users(&wc);
	for (int i = 0; i < WEBCONFIG_CHECKS_PER_S; i++)
		assert_int_equal(webconfig_check(&wc, "prometheus", "guess", t),
				 WEBCONFIG_AUTH_BAD);
	/* spent: even the right password is not checked this second */
	assert_int_equal(webconfig_check(&wc, "prometheus", "secret", t), WEBCONFIG_AUTH_BUSY);
	assert_int_equal(wc.throttled, 1);
	t += NS_PER_S;
	assert_int_equal(webconfig_check(&wc, "prometheus", "secret", t), WEBCONFIG_AUTH_OK);
	/* once checked, the scraper is answered from the cache however many guesses come */
	for (int i = 0; i < 2 * WEBCONFIG_CHECKS_PER_S; i++)
		webconfig_check(&wc, "prometheus", "guess", t);
	assert_int_equal(webconfig_check(&wc, "prometheus", "secret", t), WEBCONFIG_AUTH_OK);
	/* the cache holds the right password only */
	assert_int_equal(webconfig_check(&wc, "prometheus", "secret2", t + 5 * NS_PER_S),
			 WEBCONFIG_AUTH_BAD);
	assert_int_equal(webconfig_check(&wc, "other", "secret", t + 6 * NS_PER_S),
			 WEBCONFIG_AUTH_BAD);
	webconfig_free(&wc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
