#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The kernel matrix: tests/vm/matrix.sh [--kernels "KVER..."] [--variants "V..."]
#                                       [--subset full|ci] [--tests "NAME..."] [--out DIR]
#                                       [--cell-timeout S] [--jobs N]
#
# For each kernel (default: every /boot/vmlinuz-* of the Debian packages make vmtest installs;
# with --subset ci, the newest generic one only),
# boots a guest with tests/vm/vm.sh and runs `sockpulse check`, then, once per connect-hook
# variant (default fentry kprobe tracepoint), the integration tests with SP_CONNECT_HOOK set
# (tests/integration/lib.sh forces the variant on every agent the tests start). A variant that
# check says does not attach on that kernel is not run: its cell fails with check's line.
#   --subset full  every integration test (35 to 75 min a cell under TCG, with another guest
#                  beside it: generic and rt, cloud);
#   --subset ci    test_check, test_connect and test_filters: every BPF program loaded and
#                  attached under every variant, real traffic checked (about 1 min a cell).
#   --tests "NAME..."  these integration tests instead of the subset's.
#   --cell-timeout S   a cell's guest is stopped after S seconds (default 7200: a full cloud
#                  cell with a second guest beside it took 73 to 75 minutes).
#   --jobs N       cells run N guests at once (default 1), each with 2 vCPUs under TCG. The
#                  times above are for 2 at once on 2 cores; more guests than cores slow every
#                  cell toward its timeout. A cell's lines are printed when it ends.
# Prints, per kernel, check's lines; then the matrix kernel x variant -> passed/failed/skipped,
# and each failing test with its FAIL lines. This machine's kernel row comes from the last
# `make test` logs in build/test-logs, if any. Logs per cell: DIR/KVER/VARIANT/ (run.log: the
# runner's output; test-logs/: each test's log; console.log: the guest kernel's console).
# DIR defaults to build/vm/matrix. The sockpulse build in build/ is used as it is: build it
# first (make vmtest does).
#
# Exit status: 0 when every cell passed, 1 otherwise, 2 on usage error.
set -uo pipefail

usage() {
	sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# --help: the whole comment at the top of this file.
help() {
	sed -n '3,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
	exit 0
}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2

kernels=""
variants="fentry kprobe tracepoint"
subset=full
out=build/vm/matrix
cell_timeout=7200
only=""
jobs=1
while [ $# -gt 0 ]; do
	case $1 in
	--kernels) [ $# -ge 2 ] || usage; kernels=$2; shift 2 ;;
	--variants) [ $# -ge 2 ] || usage; variants=$2; shift 2 ;;
	--subset) [ $# -ge 2 ] || usage; subset=$2; shift 2 ;;
	--tests) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--cell-timeout) [ $# -ge 2 ] || usage; cell_timeout=$2; shift 2 ;;
	--jobs) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
	-h | --help) help ;;
	*) usage ;;
	esac
done
[[ $jobs =~ ^[1-9][0-9]?$ ]] || { echo "matrix.sh: --jobs $jobs: 1 to 99" >&2; exit 2; }
[[ $cell_timeout =~ ^[1-9][0-9]*$ ]] ||
	{ echo "matrix.sh: --cell-timeout $cell_timeout: seconds > 0" >&2; exit 2; }
case $subset in
full) tests=() ;;
ci) tests=(test_check test_connect test_filters) ;;
*) echo "matrix.sh: --subset $subset: full or ci" >&2; exit 2 ;;
esac
if [ -n "$only" ]; then
	read -r -a tests <<<"$only"
	for t in "${tests[@]}"; do
		[ -f "tests/integration/$t.sh" ] ||
			{ echo "matrix.sh: --tests: no tests/integration/$t.sh" >&2; exit 2; }
	done
fi
for v in $variants; do
	case $v in
	fentry | kprobe | tracepoint) ;;
	*) echo "matrix.sh: --variants: $v is not fentry, kprobe or tracepoint" >&2; exit 2 ;;
	esac
done
if [ -z "$kernels" ]; then
	kernels=$(ls /boot | sed -n 's/^vmlinuz-//p' | grep -E -- '-(amd64|rt-amd64|cloud-amd64)$' |
		sort -V)
	[ "$subset" != ci ] || kernels=$(grep -E -- '-[0-9]+-amd64$' <<<"$kernels" | tail -n1)
	if [ -z "$kernels" ]; then
		echo "matrix.sh: no kernel in /boot (make vmtest installs them)" >&2
		exit 2
	fi
fi
[ -x build/sockpulse ] && [ -x build/tools/sp_conn ] ||
	{ echo "matrix.sh: build/sockpulse or build/tools/sp_conn missing (make all)" >&2; exit 2; }
vm=tests/vm/vm.sh
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The guest's integration timeout: TCG is several times slower than this machine.
guest_env=("SP_INTEGRATION_TIMEOUT=${SP_INTEGRATION_TIMEOUT:-600}")
declare -A cell=()
start_all=$SECONDS

# run_cell KVER VARIANT: one cell's integration tests in a guest. Writes DIR/KVER/VARIANT/result
# (passed/failed/skipped, or why there is none) and report (the lines to print when it ends).
run_cell() {
	local k=$1 v=$2 cdir=$out/$1/$2 t0=$SECONDS rc summary result p f s
	# run.sh writes its per-test logs into build/test-logs, on the guest's tmpfs overlay: copy
	# them into the results share.
	"$vm" --kernel "$k" --timeout "$cell_timeout" --results "$cdir" -- \
		env "${guest_env[@]}" SP_CONNECT_HOOK="$v" bash -c \
		'./tests/run.sh --out build --integration-only "$@"; rc=$?
		 cp -r build/test-logs /run/sp-vm/test-logs; exit $rc' run "${tests[@]}" \
		>"$cdir/run.log" 2>&1
	rc=$?
	# the failure lines name the guest's log paths: point them at the copies
	sed -i "s|$root/build/test-logs/|$cdir/test-logs/|" "$cdir/run.log"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$cdir/run.log" |
		tail -n1)
	if [ -n "$summary" ]; then
		read -r p _ f _ s _ <<<"$summary"
		result="$p/$f/$s"
	else
		result="no result (vm.sh exit $rc)"
	fi
	echo "$result" >"$cdir/result"
	{
		echo "== $k $v: $result passed/failed/skipped in $((SECONDS - t0)) s"
		grep -E '^test_[a-z0-9_]+ +(FAIL|SKIP)' "$cdir/run.log" | sed 's/^/   /'
	} >"$cdir/report"
}

# First each kernel's check, one guest at a time (a minute or so each): it decides the cells.
todo=()
for k in $kernels; do
	kdir=$out/$k
	rm -rf "$kdir"
	mkdir -p "$kdir/check"
	echo "== $k: sockpulse check"
	"$vm" --kernel "$k" --timeout 300 --results "$kdir/check" -- build/sockpulse check \
		>"$kdir/check.out" 2>"$kdir/check.err"
	rc=$?
	sed 's/^/   /' "$kdir/check.out"
	[ $rc -eq 0 ] || { echo "   (exit $rc)"; sed 's/^/   /' "$kdir/check.err" | tail -n 20; }
	for v in $variants; do
		line=$(grep -m1 "^$v: " "$kdir/check.out")
		if ! grep -Eq "^$v: load ok, attach ok" <<<"$line"; then
			cell[$k/$v]="not run: ${line:-no check line}"
			echo "== $k $v: not run (${line:-check printed no line for $v})"
			continue
		fi
		mkdir -p "$kdir/$v"
		todo+=("$k/$v")
	done
done

# Then the cells, up to $jobs guests at once; each prints its lines when it ends.
declare -A running=() # pid -> KVER/VARIANT
finish_one() {
	local pid c
	wait -n -p pid "${!running[@]}"
	c=${running[$pid]}
	unset "running[$pid]"
	cell[$c]=$(cat "$out/$c/result" 2>/dev/null || echo "no result (runner died)")
	cat "$out/$c/report" 2>/dev/null || echo "== ${c/\// }: ${cell[$c]}"
}
for c in "${todo[@]}"; do
	while [ ${#running[@]} -ge "$jobs" ]; do finish_one; done
	echo "== ${c/\// }: integration tests${tests[*]:+ (${tests[*]})} started"
	run_cell "${c%/*}" "${c#*/}" &
	running[$!]=$c
done
while [ ${#running[@]} -gt 0 ]; do finish_one; done

# This machine's kernel: the last `make test` (build/test-logs), read the way run.sh decides.
host_row() {
	local p=0 f=0 s=0 log name failed=() newest
	newest=$(ls -t build/test-logs/test_*.log 2>/dev/null | head -n1)
	if [ -z "$newest" ]; then
		echo "see make test (no build/test-logs yet)"
		return
	fi
	for script in tests/integration/test_*.sh; do
		name=$(basename "$script" .sh)
		log=build/test-logs/$name.log
		if [ ! -f "$log" ]; then
			continue
		elif grep -q "^$name: all [0-9]* checks passed" "$log"; then
			p=$((p + 1))
		elif grep -q '^SKIP:' "$log"; then
			s=$((s + 1))
		else
			f=$((f + 1))
			failed+=("$name")
		fi
	done
	echo "$p/$f/$s (make test logs of $(date -u -r "$newest" '+%Y-%m-%d %H:%M UTC'))" \
		"${failed[*]:+failed: ${failed[*]}}"
}

echo
echo "Kernel matrix, $(date -u '+%Y-%m-%d'), integration tests${tests[*]:+ (${tests[*]})}:" \
	"passed/failed/skipped per connect-hook variant ($(( (SECONDS - start_all) / 60 )) min)"
printf '%-24s' kernel
for v in $variants; do printf ' %-16s' "$v"; done
echo
ok=1
for k in $kernels; do
	printf '%-24s' "$k"
	for v in $variants; do
		c=${cell[$k/$v]}
		case $c in
		*/0/0) ;;
		*) ok=0 ;;
		esac
		case $c in
		not\ run* | no\ result*) printf ' %-16s' "-" ;;
		*) printf ' %-16s' "$c" ;;
		esac
	done
	echo
done
printf '%-24s %s\n' "$(uname -r) (host)" "$(host_row)"
for k in $kernels; do
	for v in $variants; do
		case ${cell[$k/$v]} in
		*/0/0) ;;
		*)
			echo "$k $v: ${cell[$k/$v]}"
			[ -f "$out/$k/$v/run.log" ] || continue
			grep -E -A8 '^test_[a-z0-9_]+ +FAIL' "$out/$k/$v/run.log" | sed 's/^/   /'
			;;
		esac
	done
done
echo "logs: $out/KERNEL/VARIANT/"
[ $ok = 1 ]
