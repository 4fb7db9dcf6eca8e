#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# --web-config, checked with curl: the README's example file (plus a user whose hash mkpasswd
# makes here), with a throwaway self-signed certificate from openssl. Over https, the right user
# and password get 200 and the metrics; a wrong password, an unknown user or none get 401 with
# the Basic challenge, on any path; plain http to the TLS port gets no HTTP answer; a client that
# never starts its handshake is closed by the deadline while scrapes go on. Bad web-configs (an
# unknown key, a world-writable file, a missing certificate, a key readable by others, a key
# that is not the certificate's) exit 2 with one line, before anything is loaded. The README's
# Prometheus scrape config passes promtool.
. "$(dirname "$0")/lib.sh"
sp_require_bpf
command -v curl >/dev/null || fail "curl not installed (Debian curl)"
command -v openssl >/dev/null || fail "openssl not installed (Debian openssl)"
command -v mkpasswd >/dev/null || fail "mkpasswd not installed (Debian whois)"
command -v python3 >/dev/null || fail "python3 not installed"
[ "$SP_FAILS" -eq 0 ] || sp_finish

README=$(dirname "$0")/../../README.md
W=$SP_TMP/web
mkdir -p "$W"
chmod 0755 "$SP_TMP" "$W"

# The ```yaml block of README.md whose first line is $1.
readme_block() {
	awk -v first="$1" '/^```yaml$/ { getline l; if (l == first) { on = 1; print l } next }
		on && /^```$/ { exit } on { print }' "$README"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$W/server.key" -out "$W/server.crt" 2>"$SP_TMP/openssl.err" ||
	fail "openssl: $(cat "$SP_TMP/openssl.err")"
chmod 0600 "$W/server.key"
readme_block "# /etc/sockpulse/web.yml" >"$W/web.yml"
check "README.md has the example web-config" grep -q '^  prometheus: \$2y\$' "$W/web.yml"
printf '  scraper: %s\n' "$(mkpasswd -m bcrypt 's3cret pass')" >>"$W/web.yml"
chmod 0644 "$W/web.yml"

host_agent_start h - --web-config "$W/web.yml" || sp_finish
URL=${SP_METRICS_URL[h]}
check "the ready line says https ($URL)" test "${URL#https://127.0.0.1:}" != "$URL"
PORT=${URL#https://127.0.0.1:}
PORT=${PORT%/metrics}
TLS=(--cacert "$W/server.crt" --max-time 10 -s)

# code CURL-ARGS...: the HTTP status curl saw ("000": none); headers in $SP_TMP/hdr, the body in
# $SP_TMP/body
code() {
	curl "${TLS[@]}" -D "$SP_TMP/hdr" -o "$SP_TMP/body" -w '%{http_code}' "$@" 2>/dev/null
}

check_eq "README user, right password: 200" "$(code -u prometheus:example "$URL")" 200
check "the body is the metrics" grep -q '^sockpulse_build_info{' "$SP_TMP/body"
check_eq "mkpasswd user, right password: 200" \
	"$(code -u 'scraper:s3cret pass' "https://localhost:$PORT/metrics")" 200
# each 401 below is a real check, not the per-second budget (4 uncached checks a second)
sleep 1.1
check_eq "wrong password: 401" "$(code -u prometheus:wrong "$URL")" 401
check "401 carries the Basic challenge" \
	grep -qi '^WWW-Authenticate: Basic realm="sockpulse"' "$SP_TMP/hdr"
check "401 carries no metrics" bash -c "! grep -q sockpulse_ '$SP_TMP/body'"
check_eq "no credentials: 401" "$(code "$URL")" 401
sleep 1.1
check_eq "unknown user: 401" "$(code -u nobody:example "$URL")" 401
check_eq "one user's password for another: 401" "$(code -u scraper:example "$URL")" 401
check_eq "no credentials, another path: 401 (not 404)" \
	"$(code "https://127.0.0.1:$PORT/nothing")" 401
check_eq "credentials, another path: 404" \
	"$(code -u prometheus:example "https://127.0.0.1:$PORT/nothing")" 404
check_eq "an untrusted certificate is refused by curl" \
	"$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -u prometheus:example "$URL")" 000

curl -s --max-time 5 -o "$SP_TMP/plain" -w '%{http_code}' -u prometheus:example \
	"http://127.0.0.1:$PORT/metrics" >"$SP_TMP/plain.code" 2>/dev/null
rc=$?
check "plain http to the TLS port fails (curl exit $rc)" test "$rc" -ne 0
check_eq "plain http: no HTTP status" "$(cat "$SP_TMP/plain.code")" 000
check "plain http: no metrics" bash -c "! grep -q sockpulse_ '$SP_TMP/plain' 2>/dev/null"

# Clients that connect and never start the handshake: scrapes are answered meanwhile, and the
# deadline closes them.
cat >"$SP_TMP/silent.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(8)]
time.sleep(9)
closed = 0
for s in socks:
    s.settimeout(0.5)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print("closed %d" % closed)
PY
timeout 20 python3 "$SP_TMP/silent.py" "$PORT" >"$SP_TMP/silent.out" 2>&1 &
SILENT=$!
sleep 1
check_eq "a scrape while 8 clients sit in the handshake: 200" \
	"$(code -u prometheus:example "$URL")" 200
wait "$SILENT"
check_eq "the silent clients were closed by the deadline" "$(cat "$SP_TMP/silent.out")" "closed 8"
check_eq "still serving after all that" "$(code -u prometheus:example "$URL")" 200
check "the 401s are counted" grep -q '^sockpulse_http_requests_total{code="other"} [1-9]' \
	"$SP_TMP/body"
host_agent_stop h

# bad NAME WANT-LINE: the agent with $W/NAME as --web-config exits 2 with one line holding WANT
bad() {
	local name=$1 want=$2 rc
	# --duration: an agent that takes the file anyway stops soon, and fails the check
	timeout 20 "$SOCKPULSE" agent --log off --metrics 127.0.0.1:0 --duration 2 \
		--web-config "$W/$name" >"$SP_TMP/bad.out" 2>"$SP_TMP/bad.err"
	rc=$?
	check_eq "$name: exit status" "$rc" 2
	SP_CHECKS=$((SP_CHECKS + 1))
	if [ "$(wc -l <"$SP_TMP/bad.err")" -eq 1 ] && grep -qF -- "$want" "$SP_TMP/bad.err"; then
		pass_check "$name: one line: $(cat "$SP_TMP/bad.err")"
	else
		fail "$name: stderr is not one line with '$want':"
		sed 's/^/    /' "$SP_TMP/bad.err"
	fi
}

{ cat "$W/web.yml"; printf 'http_server_config:\n  http2: false\n'; } >"$W/unknown.yml"
bad unknown.yml "unknown.yml:10: unknown key 'http_server_config'"
sed 's/^  key_file: .*/&\n  min_version: TLS13/' "$W/web.yml" >"$W/unknown-tls.yml"
bad unknown-tls.yml "unknown-tls.yml:5: unknown key 'tls_server_config.min_version'"
install -m 0666 "$W/web.yml" "$W/wide.yml"
bad wide.yml "$W/wide.yml: refused: is writable by others (mode 0666)"
sed 's/server\.crt/missing.crt/' "$W/web.yml" >"$W/missing.yml"
bad missing.yml "missing.yml:3: cert_file $W/missing.crt: No such file or directory"
install -m 0644 "$W/server.key" "$W/open.key"
sed 's/server\.key/open.key/' "$W/web.yml" >"$W/open-key.yml"
bad open-key.yml "key_file $W/open.key: refused: is readable by others (mode 0644)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=other -keyout "$W/other.key" -out "$W/other.crt" 2>/dev/null
chmod 0600 "$W/other.key"
sed 's/server\.key/other.key/' "$W/web.yml" >"$W/mismatch.yml"
bad mismatch.yml "GnuTLS refused the pair"
sed 's/^  prometheus: .*/  prometheus: example/' "$W/web.yml" >"$W/plain-password.yml"
bad plain-password.yml "plain-password.yml:8: user 'prometheus': not a bcrypt hash"

# The README's scrape config, with its files here
if command -v promtool >/dev/null; then
	mkdir -p "$SP_TMP/prom"
	cp "$W/server.crt" "$SP_TMP/prom/sockpulse-ca.crt"
	printf 'example\n' >"$SP_TMP/prom/sockpulse.password"
	readme_block "scrape_configs:" | sed "s|/etc/prometheus/|$SP_TMP/prom/|" \
		>"$SP_TMP/prom/prometheus.yml"
	check "README.md's scrape config has scheme https and basic_auth" \
		grep -q 'scheme: https' "$SP_TMP/prom/prometheus.yml"
	check "README.md's scrape config passes promtool check config" \
		promtool check config "$SP_TMP/prom/prometheus.yml"
else
	fail "promtool not installed (Debian prometheus)"
fi
sp_finish
