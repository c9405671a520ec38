// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// ward's observation point for worm fan-out: every outbound TCP connect(2) to a watched
// port (445/139 by default) on this host, with the connecting process, as one ring-buffer
// record; and an in-kernel refusal of every connect of a process that ward has convicted.
//
// Attached (through bpf_link, so it detaches when ward's descriptors close, also on a
// crash) as cgroup/connect4 and cgroup/connect6 to the root of the cgroup-v2 hierarchy:
// every process on the host, whatever its cgroup or network namespace, passes through it.
//
// The connect hooks are built against the plain uapi headers (struct bpf_sock_addr is uapi)
// and need no kernel BTF. Needs Linux >= 5.8 (BPF ring buffer).
//
// Optional, where the kernel has BTF (user space loads them only then): tp_btf programs on
// sched_process_fork and sched_process_exit keep the deny set right by themselves. A child
// forked by a denied process is denied from its first instruction (no window between fork
// and user space noticing it), and a denied process's entry is removed when its whole
// thread group has exited, so that a recycled pid is never refused.
//
// Contract with user space (crates/bpf/src/monitor.rs decodes exactly this):
// - `struct event` below, 40 bytes, native endianness, address bytes in network order.
// - counters: per-CPU array, index COUNTER_*.
// - `ports`: hash u16 (host order) -> u8, the watched destination ports.
// - `deny`: hash u32 tgid -> u8; a tgid present has every connect refused (EPERM).
// - `config`: array[1] of u32 flags (CONFIG_REPORT_LOOPBACK).

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#endif

#define COUNTER_SUBMITTED 0
#define COUNTER_DROPPED 1
#define COUNTER_DENIED 2
#define COUNTER_MAX 3

#define CONFIG_REPORT_LOOPBACK 1u

struct event {
	__u64 ktime_ns; // bpf_ktime_get_ns(): CLOCK_MONOTONIC
	__u32 tgid;     // process id
	__u32 tid;      // thread id
	__u32 uid;      // real uid of the caller
	__u16 dport;    // destination port, host order
	__u8 family;    // 4 or 6
	__u8 denied;    // 1 when this connect was refused by the deny map
	__u8 daddr[16]; // network order; IPv4 in the first 4 bytes
};

// The layout crates/bpf/src/event.rs decodes; a change here must change it too.
_Static_assert(sizeof(struct event) == 40, "user space decodes 40-byte events");
_Static_assert(__builtin_offsetof(struct event, tgid) == 8, "event layout");
_Static_assert(__builtin_offsetof(struct event, tid) == 12, "event layout");
_Static_assert(__builtin_offsetof(struct event, uid) == 16, "event layout");
_Static_assert(__builtin_offsetof(struct event, dport) == 20, "event layout");
_Static_assert(__builtin_offsetof(struct event, family) == 22, "event layout");
_Static_assert(__builtin_offsetof(struct event, denied) == 23, "event layout");
_Static_assert(__builtin_offsetof(struct event, daddr) == 24, "event layout");

// Minimal CO-RE views of kernel structs (libbpf relocates the offsets against the running
// kernel's BTF); only the fork/exit programs use them.
typedef struct {
	int counter;
} ward_atomic_t;

struct signal_struct {
	ward_atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); // user space may resize before load
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1; // per-CPU slot: no atomics needed
}

static __always_inline int report_loopback(void)
{
	__u32 zero = 0;
	__u32 *flags = bpf_map_lookup_elem(&config, &zero);
	return flags && (*flags & CONFIG_REPORT_LOOPBACK);
}

// Common tail of both hooks. `daddr` is 16 bytes in network order (IPv4 in the first 4).
// Returns the verdict: 1 allow, 0 refuse (the caller's connect fails with EPERM).
static __always_inline int handle(__u8 family, __u32 type, __u16 dport, const __u32 daddr[4],
				  int loopback)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u8 denied = bpf_map_lookup_elem(&deny, &tgid) != 0;

	if (denied)
		count(COUNTER_DENIED);

	// Reported: TCP connects to a watched port (denied ones too, whatever the protocol
	// would have been, so that user space sees what a convicted process still tries).
	if (type != SOCK_STREAM && !denied)
		return 1;
	if (!bpf_map_lookup_elem(&ports, &dport))
		return denied ? 0 : 1;
	if (loopback && !report_loopback())
		return denied ? 0 : 1;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_DROPPED);
		return denied ? 0 : 1;
	}
	e->ktime_ns = bpf_ktime_get_ns();
	e->tgid = tgid;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->dport = dport;
	e->family = family;
	e->denied = denied;
	__builtin_memcpy(e->daddr, daddr, 16);
	bpf_ringbuf_submit(e, 0);
	count(COUNTER_SUBMITTED);
	return denied ? 0 : 1;
}

SEC("cgroup/connect4")
int ward_connect4(struct bpf_sock_addr *ctx)
{
	__u32 daddr[4] = {};
	daddr[0] = ctx->user_ip4;
	__u16 dport = bpf_ntohs((__u16)ctx->user_port);
	__u8 first = ((__u8 *)daddr)[0];
	// 127.0.0.0/8 and 0.0.0.0 (which connects to this host)
	int loopback = first == 127 || daddr[0] == 0;
	return handle(4, ctx->type, dport, daddr, loopback);
}

SEC("cgroup/connect6")
int ward_connect6(struct bpf_sock_addr *ctx)
{
	__u32 daddr[4];
	daddr[0] = ctx->user_ip6[0];
	daddr[1] = ctx->user_ip6[1];
	daddr[2] = ctx->user_ip6[2];
	daddr[3] = ctx->user_ip6[3];
	__u16 dport = bpf_ntohs((__u16)ctx->user_port);
	int loopback = 0;
	if (daddr[0] == 0 && daddr[1] == 0) {
		// ::1, :: and the IPv4-mapped ::ffff:127.x.y.z / ::ffff:0.0.0.0
		if (daddr[2] == 0 && (daddr[3] == 0 || daddr[3] == bpf_htonl(1)))
			loopback = 1;
		else if (daddr[2] == bpf_htonl(0xffff) &&
			 (((__u8 *)daddr)[12] == 127 || daddr[3] == 0))
			loopback = 1;
	}
	return handle(6, ctx->type, dport, daddr, loopback);
}

// A process forked by a denied process is denied too (threads share the tgid already).
SEC("tp_btf/sched_process_fork")
int ward_fork(unsigned long long *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx[0];
	struct task_struct *child = (struct task_struct *)ctx[1];
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	__u8 one = 1;

	if (ctgid != ptgid && bpf_map_lookup_elem(&deny, &ptgid))
		bpf_map_update_elem(&deny, &ctgid, &one, BPF_ANY);
	return 0;
}

// When the last thread of a denied process exits, forget it (its pid may be reused).
SEC("tp_btf/sched_process_exit")
int ward_exit(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	__u32 tgid = p->tgid;

	// do_exit() has already decremented signal->live: 0 means the group is dead.
	if (p->signal->live.counter == 0)
		bpf_map_delete_elem(&deny, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
