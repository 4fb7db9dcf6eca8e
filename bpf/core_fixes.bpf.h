/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What differs between the kernels sockpulse runs on (5.13 to current), each difference with the
 * kernel change behind it. The code elsewhere calls these and stays the same on every kernel the
 * program loads on (README, "Supported kernels"). Here:
 *   - core_child_unnamed(): 6.1 moves an accepted child to SYN_RECV before naming it;
 *   - queued_icmp_error(): 6.1 reports an ICMP error before tcp_v4_err() stores it;
 *   - fd_tcp_sock(): bpf_rdonly_cast() exists from 6.2; before, a build without it.
 * Handled in place, where the code needs them:
 *   - port_selected() (sockfacts.bpf.h): verifiers before 6.2 do not bound a byte-swapped u16,
 *     so the port bitmap index keeps an explicit mask;
 *   - sys_enter_connect() (connect.bpf.h): PREEMPT_RT kernels grow the common trace header, so
 *     the syscall tracepoints read struct syscall_trace_enter/exit, not the raw layout;
 *   - sp_error_report (sockpulse.bpf.c): an ICMP error taken while the owner held the socket
 *     lock is in sk_err_soft, not sk_err.
 */
#ifndef SP_CORE_FIXES_BPF_H
#define SP_CORE_FIXES_BPF_H

#include "sockfacts.bpf.h"

/*
 * Kernel difference: on 6.1 (Debian 12's kernel, seen under qemu) inet_csk_clone_lock() moves a
 * child to SYN_RECV before it copies the request's ports and addresses into it, and the clone
 * still carries its listener's cookie then; 6.18 names the child first. A child that is still
 * unnamed at that transition (no remote port) has its line written at its next transition,
 * with its own identity and the original time.
 */
static __always_inline bool core_child_unnamed(const struct sock *sk)
{
	return sk->__sk_common.skc_dport == 0;
}

#define SO_EE_ORIGIN_ICMP 2
#define SO_EE_ORIGIN_ICMP6 3

/*
 * The ICMP error just queued on the socket's error queue (ip_icmp_error() reports it before
 * tcp_v4_err() stores the soft error on 6.1, and SO_ERROR clears that one later anyway): its
 * errno, 0 if the newest queued error is not an ICMP one.
 */
static __always_inline int queued_icmp_error(struct sock *sk)
{
	struct sk_buff *skb;
	struct sock_extended_err ee = {};

	if (!sk->sk_error_queue.qlen)
		return 0;
	skb = sk->sk_error_queue.prev;
	if (!skb || bpf_probe_read_kernel(&ee, sizeof(ee),
					  (void *)skb->cb +
						  bpf_core_field_offset(struct sock_exterr_skb, ee)))
		return 0;
	return ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6
		       ? (int)ee.ee_errno
		       : 0;
}

/*
 * The struct sock behind a file descriptor of the current task, if it is a TCP socket. Two
 * builds of this file (see the Makefile): with bpf_rdonly_cast() (6.2+) every field is a plain
 * load through a BTF pointer; the compat build (SP_FD_WALK_COMPAT) pays a probe-read helper call
 * per field, several times the cost on each connect() and accept(). They are two objects, not
 * two programs in one: libbpf resolves every kfunc extern of an object, and on a kernel without
 * this one it searches module BTFs, which needs CAP_SYS_ADMIN (non-root agents fail to load).
 */
static __always_inline bool sock_wanted(__u16 type, __u8 state, bool want_unconnected)
{
	/* Only a connect() on an unconnected socket is a new attempt; a repeated call on a
	 * connecting socket only collects the earlier outcome. */
	return type == SOCK_STREAM && (!want_unconnected || state == SS_UNCONNECTED);
}

#ifndef SP_FD_WALK_COMPAT
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline struct sock *fd_tcp_sock(int fd, bool want_unconnected)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* fdt->fd is an array of pointers: the element at a variable index is read */
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	f = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	if (!sock || !sock_wanted(sock->type, sock->state, want_unconnected))
		return NULL;
	sk = sock->sk;
	if (!sk)
		return NULL;
	family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return NULL;
	return sk;
}
#else
static __always_inline struct sock *fd_tcp_sock(int fd, bool want_unconnected)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || !sock_wanted(BPF_CORE_READ(sock, type), BPF_CORE_READ(sock, state),
				  want_unconnected))
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || !is_tcp_core(sk))
		return NULL;
	return sk;
}
#endif

#endif
