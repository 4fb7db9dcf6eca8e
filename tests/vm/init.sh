#!/bin/busybox sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# /init of the guest initramfs built by tests/vm/vm.sh (busybox-static). Loads the modules listed
# in /modules.order, mounts the host's / read-only (9p or virtiofs, sp_fs= on the kernel command
# line) under a tmpfs overlay, mounts what the tests need, chroots and runs /run/sp-vm/cmd
# (written by the host into the results share: environment, directory, command). The command's
# stdout, stderr and exit status go back through the results share; then the guest powers off.
# A failure before the command runs prints "vm-init: ..." on the console and powers off.

/bin/busybox --install -s /bin
export PATH=/bin

die() {
	echo "vm-init: $*"
	poweroff -f
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

while read -r ko; do
	[ -n "$ko" ] || continue
	insmod "/modules/$ko" || die "insmod $ko failed"
done </modules.order

mkdir -p /lower /upper /newroot /results
case ${sp_fs:-9p} in
9p)
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=mmap root /lower ||
		die "cannot mount the host root over 9p"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results ||
		die "cannot mount the results share over 9p"
	;;
virtiofs)
	mount -t virtiofs -o ro root /lower || die "cannot mount the host root over virtiofs"
	mount -t virtiofs results /results || die "cannot mount the results share over virtiofs"
	;;
*)
	die "unknown sp_fs=$sp_fs"
	;;
esac

mount -t tmpfs -o mode=0755 upper /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
	die "cannot mount the overlay"

# The command's environment; any failure here ends the run ("vm-init: ..." on the console).
mnt() {
	mount "$@" || die "mount $* failed"
}

r=/newroot
mnt -t proc proc $r/proc
mnt -t sysfs sys $r/sys
mnt -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mnt -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $r/dev/pts
rm -f $r/dev/ptmx
ln -s pts/ptmx $r/dev/ptmx
mnt -t tmpfs -o mode=1777 shm $r/dev/shm
ln -sfn /proc/self/fd $r/dev/fd
ln -sfn /proc/self/fd/0 $r/dev/stdin
ln -sfn /proc/self/fd/1 $r/dev/stdout
ln -sfn /proc/self/fd/2 $r/dev/stderr
mnt -t bpf bpf $r/sys/fs/bpf
mnt -t tracefs tracefs $r/sys/kernel/tracing
mnt -t debugfs debugfs $r/sys/kernel/debug
# The host's /sys/fs/cgroup may be a v1 hierarchy; the guest has a single cgroup2 tree there.
mnt -t cgroup2 cgroup2 $r/sys/fs/cgroup
mnt -t tmpfs -o mode=0755 run $r/run
mkdir -p $r/run/netns $r/run/sp-vm $r/run/lock
mnt -t tmpfs -o mode=1777 tmp $r/tmp
mnt --move /results $r/run/sp-vm

# The kernel runs its module loader (e.g. inet_diag for sock_diag) in this initramfs' root, not
# the chroot: hand the request to the host's modprobe inside the new root.
mkdir -p /sbin
printf '#!/bin/busybox sh\nexec chroot /newroot /sbin/modprobe "$@"\n' >/sbin/modprobe-root
chmod 0755 /sbin/modprobe-root
echo /sbin/modprobe-root >/proc/sys/kernel/modprobe

ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
hostname sp-vm
echo "vm-init: ready, running the command"

# No controlling tty and stdin from /dev/null, as under the test runner.
chroot $r /bin/bash /run/sp-vm/cmd </dev/null >$r/run/sp-vm/stdout 2>$r/run/sp-vm/stderr
echo $? >$r/run/sp-vm/status.tmp
mv $r/run/sp-vm/status.tmp $r/run/sp-vm/status
sync
poweroff -f
