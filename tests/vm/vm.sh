#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Runs one command in a guest booted from a Debian kernel package of this machine:
#
#   tests/vm/vm.sh --kernel KVER [--mem MiB] [--smp N] [--timeout S] [--accel tcg|kvm]
#                  [--fs auto|9p|virtiofs] [--results DIR] [--console FILE] -- COMMAND...
#
# KVER names /boot/vmlinuz-KVER and /lib/modules/KVER (e.g. 6.1.0-57-amd64). The guest's root is
# this machine's / shared read-only (virtio-9p, or virtiofs through virtiofsd for kernels built
# without 9p: chosen from /boot/config-KVER unless --fs says), under a tmpfs overlay; a busybox
# initramfs (built once per kernel into build/vm/) loads the modules, mounts what the tests use
# (bpffs, tracefs, debugfs, cgroup2, devpts, /dev/fd, tmpfs /run and /tmp), chroots and runs
# COMMAND in the current directory, with a fixed PATH and HOME plus this environment's SP_*,
# SOCKPULSE, TOOLS, ASAN_OPTIONS and UBSAN_OPTIONS. COMMAND's stdout and stderr are streamed here
# while it runs; they come back, with its exit status, through a second, writable share
# (--results DIR, default a temporary directory under build/vm/ removed at the end). The kernel
# console goes to --console FILE (default: DIR/console.log) and is printed if the guest dies
# before the command ends. --accel tcg (default) needs no KVM; a nested KVM guest hung before
# its first console line where this was written.
#
# Exit status: COMMAND's; 124 on timeout (qemu killed); 125 if the guest could not run it (boot,
# mount or module failure: the console tail says why); 2 on usage error.
set -euo pipefail

usage() {
	sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# --help: the whole comment at the top of this file.
help() {
	sed -n '3,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
	exit 0
}

die() {
	echo "vm.sh: $*" >&2
	exit 2
}

kver=""
mem=2048
smp=2
timeout_s=1800
accel=tcg
fs=auto
results=""
console=""
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) [ $# -ge 2 ] || usage; kver=$2; shift 2 ;;
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--smp) [ $# -ge 2 ] || usage; smp=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--accel) [ $# -ge 2 ] || usage; accel=$2; shift 2 ;;
	--fs) [ $# -ge 2 ] || usage; fs=$2; shift 2 ;;
	--results) [ $# -ge 2 ] || usage; results=$2; shift 2 ;;
	--console) [ $# -ge 2 ] || usage; console=$2; shift 2 ;;
	-h | --help) help ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
[ -n "$kver" ] ||
	die "--kernel KVER is required (here: $(ls /boot | sed -n 's/^vmlinuz-//p' | tr '\n' ' '))"
[ $# -gt 0 ] || die "no command given (after --)"
[[ $mem =~ ^[0-9]+$ ]] && [ "$mem" -ge 256 ] && [ "$mem" -le 65536 ] ||
	die "--mem $mem: a size in MiB between 256 and 65536"
[[ $smp =~ ^[0-9]+$ ]] && [ "$smp" -ge 1 ] && [ "$smp" -le 64 ] || die "--smp $smp: 1 to 64"
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -ge 1 ] || die "--timeout $timeout_s: seconds > 0"
case $accel in tcg | kvm) ;; *) die "--accel $accel: tcg or kvm" ;; esac
case $fs in auto | 9p | virtiofs) ;; *) die "--fs $fs: auto, 9p or virtiofs" ;; esac

vmlinuz=/boot/vmlinuz-$kver
config=/boot/config-$kver
moddir=/lib/modules/$kver
[ -r "$vmlinuz" ] || die "$vmlinuz not found (install the kernel package: make vmtest does)"
[ -d "$moddir" ] || die "$moddir not found"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (qemu-system-x86)"
busybox=/bin/busybox
# The initramfs has no libraries: busybox must be static (ldd fails on it).
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
	die "$busybox is not a static busybox (install busybox-static)"

# A config option: y, m or empty. Without the config file, assume what Debian's generic kernel has.
kconfig() {
	[ -r "$config" ] || { echo m; return; }
	sed -n "s/^$1=//p" "$config"
}
if [ "$fs" = auto ]; then
	if [ "$(kconfig CONFIG_9P_FS)" != "" ] && [ "$(kconfig CONFIG_NET_9P_VIRTIO)" != "" ]; then
		fs=9p
	elif [ "$(kconfig CONFIG_VIRTIO_FS)" != "" ]; then
		fs=virtiofs
	else
		die "$kver has neither 9p over virtio nor virtiofs ($config)"
	fi
fi
virtiofsd=/usr/lib/qemu/virtiofsd
if [ "$fs" = virtiofs ]; then
	[ -x "$virtiofsd" ] || die "$virtiofsd not found (qemu-system-common)"
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
vmdir=$root/build/vm
mkdir -p "$vmdir"

# ---- initramfs: busybox, /init, the modules the root filesystem needs (in dependency order) ----
case $fs in
9p) want=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache
	9pnet 9pnet_virtio 9p overlay veth) ;;
virtiofs) want=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci fuse
	virtiofs overlay veth) ;;
esac

# Appends to mod_list the module paths (relative to $moddir) of NAME and its dependencies,
# dependencies first; nothing for a module built in or absent (then the kernel has it, or the
# mount says what is missing).
declare -A mod_seen=()
mod_list=()
mod_order() {
	local name=$1 line path dep
	line=$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)
	[ -n "$line" ] || return 0
	path=${line%%:*}
	[ -z "${mod_seen[$path]:-}" ] || return 0
	mod_seen[$path]=1
	for dep in ${line#*:}; do
		dep=$(basename "$dep")
		mod_order "${dep%%.ko*}"
	done
	mod_list+=("$path")
}

initrd=$vmdir/initramfs-$kver-$fs.cpio.gz
if [ ! -s "$initrd" ] || [ "$root/tests/vm/init.sh" -nt "$initrd" ] || [ "$0" -nt "$initrd" ] ||
	[ "$moddir/modules.dep" -nt "$initrd" ]; then
	stage=$(mktemp -d "$vmdir/initramfs.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,modules}
	cp "$busybox" "$stage/bin/busybox"
	install -m 0755 "$root/tests/vm/init.sh" "$stage/init"
	: >"$stage/modules.order"
	for m in "${want[@]}"; do
		mod_order "$m"
	done
	for path in "${mod_list[@]}"; do
		ko=$(basename "$path")
		case $ko in
		*.ko.xz) xz -dc "$moddir/$path" >"$stage/modules/${ko%.xz}"; ko=${ko%.xz} ;;
		*.ko.zst) zstd -qdc "$moddir/$path" >"$stage/modules/${ko%.zst}"; ko=${ko%.zst} ;;
		*.ko.gz) gzip -dc "$moddir/$path" >"$stage/modules/${ko%.gz}"; ko=${ko%.gz} ;;
		*) cp "$moddir/$path" "$stage/modules/$ko" ;;
		esac
		echo "$ko" >>"$stage/modules.order"
	done
	# another vm.sh may build the same image: each writes its own file, the rename is atomic
	(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$stage.cpio.gz"
	mv "$stage.cpio.gz" "$initrd"
	rm -rf "$stage"
fi

# ---- results share: the command script in, stdout/stderr/status out ----
own_results=0
if [ -z "$results" ]; then
	results=$(mktemp -d "$vmdir/run.XXXXXX")
	own_results=1
fi
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -f "$results"/{cmd,stdout,stderr,status}
[ -n "$console" ] || console=$results/console.log
: >"$console"

{
	echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	echo "export HOME=/root LANG=C.UTF-8 TERM=${TERM:-dumb}"
	while IFS= read -r var; do
		printf 'export %s=%q\n' "$var" "${!var}"
	done < <(compgen -e |
		grep -E '^(SP_[A-Za-z0-9_]*|SOCKPULSE|TOOLS|ASAN_OPTIONS|UBSAN_OPTIONS)$' || true)
	printf 'cd %q || exit 125\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$results/cmd"

pids=()
sockdir=""
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$own_results" = 1 ]; then
		rm -rf "$results"
	fi
	[ -z "$sockdir" ] || rm -rf "$sockdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- qemu ----
# loglevel=5: warnings and the stacks that follow them (a soft lockup's, say) reach
# console.log, KERN_INFO chatter (links going up) does not
append="console=ttyS0 panic=-1 quiet loglevel=5 sp_fs=$fs"
qargs=(-nographic -no-reboot -m "$mem" -smp "$smp" -nic none -serial "file:$console"
	-monitor none -kernel "$vmlinuz" -initrd "$initrd" -append "$append")
if [ "$accel" = kvm ]; then
	qargs+=(-accel kvm -cpu host,-arch-capabilities)
else
	qargs+=(-accel tcg,thread=multi -cpu max)
fi

case $fs in
9p)
	qargs+=(-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
		-device "virtio-9p-pci,fsdev=root,mount_tag=root"
		-fsdev "local,id=results,path=$results,security_model=none"
		-device "virtio-9p-pci,fsdev=results,mount_tag=results")
	;;
virtiofs)
	sockdir=$(mktemp -d "$vmdir/vfs.XXXXXX")
	for tag in root results; do
		# The root is read-only to the guest and does not change during a run: let the guest
		# cache it (about 15% less time a command than cache=none); results: no caching.
		if [ "$tag" = root ]; then src=/ vfs_cache=auto; else src=$results vfs_cache=none; fi
		# No announce_submounts: overlayfs refuses a lower layer with submounts (EREMOTE).
		"$virtiofsd" --socket-path="$sockdir/$tag.sock" -o source="$src" -o cache=$vfs_cache \
			-o sandbox=chroot >"$sockdir/$tag.log" 2>&1 &
		pids+=($!)
	done
	for _ in $(seq 100); do
		[ -S "$sockdir/root.sock" ] && [ -S "$sockdir/results.sock" ] && break
		sleep 0.05
	done
	[ -S "$sockdir/root.sock" ] && [ -S "$sockdir/results.sock" ] ||
		die "virtiofsd did not start: $(cat "$sockdir"/*.log)"
	qargs+=(-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem
		-chardev "socket,id=vfs-root,path=$sockdir/root.sock"
		-device "vhost-user-fs-pci,chardev=vfs-root,tag=root"
		-chardev "socket,id=vfs-results,path=$sockdir/results.sock"
		-device "vhost-user-fs-pci,chardev=vfs-results,tag=results")
	;;
esac

: >"$results/stdout"
: >"$results/stderr"
qemu-system-x86_64 "${qargs[@]}" </dev/null >"$results/qemu.log" 2>&1 &
qemu=$!
pids+=("$qemu")
# Streams the command's output while it runs (the guest writes straight through to these files).
tail -n +1 -s 0.2 -F --pid="$qemu" "$results/stdout" 2>/dev/null &
pids+=($!)
tail -n +1 -s 0.2 -F --pid="$qemu" "$results/stderr" >&2 2>/dev/null &
pids+=($!)

timed_out=0
deadline=$((SECONDS + timeout_s))
while kill -0 "$qemu" 2>/dev/null; do
	if [ $SECONDS -ge $deadline ]; then
		timed_out=1
		kill -TERM "$qemu" 2>/dev/null || true
		sleep 1
		kill -KILL "$qemu" 2>/dev/null || true
		break
	fi
	sleep 0.2
done
wait "$qemu" 2>/dev/null || true
sleep 0.3 # the tails print what is left, then exit with qemu

if [ $timed_out = 1 ]; then
	echo "vm.sh: timed out after ${timeout_s}s on $kver; console tail:" >&2
	tail -n 20 "$console" | sed 's/^/    /' >&2
	exit 124
fi
if [ ! -s "$results/status" ]; then
	echo "vm.sh: the guest ($kver, $fs) ended without running the command; console tail:" >&2
	tail -n 20 "$console" | sed 's/^/    /' >&2
	[ -s "$results/qemu.log" ] && sed 's/^/    qemu: /' "$results/qemu.log" >&2
	exit 125
fi
exit "$(cat "$results/status")"
