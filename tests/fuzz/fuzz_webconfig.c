// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The web-config file: webconfig_load() over arbitrary YAML, in a private directory holding a
 * certificate and a key it may name (relative paths resolve there).
 *
 * Checks: the result is 0 or a negative errno; a refusal is one line that starts with the path
 * and leaves nothing allocated; what is accepted has TLS whole (certificate and key) or not at
 * all, and users with a name (no ':') and a 60-byte bcrypt hash; webconfig_free() leaves nothing
 * behind (LeakSanitizer). The password check is the unit tests': each is a bcrypt run, and so is
 * each accepted user here, which is why the smoke runs this target 4000 times, not 20000
 * (fuzz_webconfig.options).
 *
 * Input: the YAML file's bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "webconfig.h"

#include "fuzz_common.h"

static char dir[64], path[96];

static void put(const char *name, const char *text, mode_t mode)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fuzz_assert(fd >= 0, "%s: %s", p, strerror(errno));
	fuzz_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s", p);
	fuzz_assert(fchmod(fd, mode) == 0, "chmod %s", p);
	close(fd);
}

static void remove_dir(void)
{
	static const char *const names[] = { "server.crt", "server.key", "open.key", "web.yml" };
	char p[128];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(dir, sizeof(dir), "/tmp/sp-fuzz-webconfig-XXXXXX");
	fuzz_assert(mkdtemp(dir), "mkdtemp");
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/web.yml", dir);
	put("server.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
	put("server.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", 0600);
	put("open.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", 0644);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webconfig wc;
	char why[1024];
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	fuzz_assert(fd >= 0 && write(fd, data, size) == (ssize_t)size, "write %s", path);
	close(fd);
	r = webconfig_load(&wc, path, why, sizeof(why));
	fuzz_assert(r <= 0, "webconfig_load: %d", r);
	if (r) {
		fuzz_assert(!strncmp(why, path, strlen(path)), "refusal without the path: %s", why);
		fuzz_assert(!strchr(why, '\n'), "refusal of more than one line: %s", why);
		fuzz_assert(!wc.users && !wc.cert_pem && !wc.key_pem && !wc.crypt, "kept on error");
		return 0;
	}
	fuzz_assert(!wc.cert_pem == !wc.key_pem, "half of TLS");
	fuzz_assert(wc.n_users <= WEBCONFIG_USERS_MAX, "%u users", wc.n_users);
	for (unsigned int i = 0; i < wc.n_users; i++) {
		fuzz_assert(wc.users[i].name[0] && !strchr(wc.users[i].name, ':'), "user name");
		fuzz_assert(strlen(wc.users[i].hash) == 60, "hash of %s", wc.users[i].name);
	}
	webconfig_free(&wc);
	fuzz_assert(!wc.users && !wc.key_pem && !wc.cert_pem, "kept after free");
	return 0;
}
