// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The BPF file observer: what a tracepoint-based design costs before any of ward's own work
// (`ward bench --floors`). Host-wide, every process: the syscall tracepoints of the calls
// that open, write, unlink and rename files, plus exec, fork and exit.
//
// Three modes, each its own set of programs (user space loads one set only, so a mode pays
// no branch for the others):
// - count (`ward_c_*`): per tgid, a count per event kind in the `procs` hash; nothing goes to
//   user space. When a thread-group leader exits, its counts are folded into the per-CPU
//   `totals` and its entry removed, so the hash holds live processes only.
// - ring (`ward_r_*`): every event, as a 16-byte `struct event`, into the `events` ring
//   buffer, drained by a user-space thread. Reservation failures are counted.
// - filtered (`ward_f_*`): as ring, but nothing for tgids in `trusted`, and of the write
//   events only the first per tgid per WRITE_WINDOW_NS (state in `writers`).
//
// No argument of any tracepoint is read: the programs need no context layout, no BTF and no
// CO-RE, and work on any kernel with BPF tracepoint programs and the BPF ring buffer
// (Linux >= 5.8). Attaching needs tracefs (user space mounts it when it is not).
//
// Contract with user space (crates/bpf/src/files.rs):
// - `struct event` below, 16 bytes, native endianness.
// - `procs`: hash u32 tgid -> struct counts; `totals`: per-CPU array[1] of struct counts.
// - `counters`: per-CPU array, index COUNTER_*.
// - `trusted`: hash u32 tgid -> u8.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define KIND_OPEN 0
#define KIND_WRITE 1
#define KIND_UNLINK 2
#define KIND_RENAME 3
#define KIND_EXEC 4
#define KIND_FORK 5
#define KIND_EXIT 6
#define KINDS 7

#define COUNTER_SUBMITTED 0  // ring/filtered: records submitted to the ring buffer
#define COUNTER_DROPPED 1    // ring/filtered: reservation failed (ring full)
#define COUNTER_UNTRACKED 2  // count: `procs` full (counted in `totals` instead);
			     // filtered: `writers` full (the write is emitted)
#define COUNTER_SUPPRESSED 3 // filtered: events not emitted (trusted, or write window)
#define COUNTER_MAX 4

#define WRITE_WINDOW_NS (100ull * 1000 * 1000)

struct event {
	__u64 ktime_ns; // bpf_ktime_get_ns(): CLOCK_MONOTONIC
	__u32 tgid;
	__u32 kind; // KIND_*
};
_Static_assert(sizeof(struct event) == 16, "user space decodes 16-byte events");

struct counts {
	__u64 n[KINDS];
};
_Static_assert(sizeof(struct counts) == 8 * KINDS, "user space decodes 7 u64s");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct counts);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counts);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); // user space may resize before load
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} trusted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64); // ktime of the last write emitted
} writers SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1; // per-CPU slot: no atomics needed
}

static __always_inline void count_total(__u32 kind)
{
	__u32 zero = 0;
	struct counts *t = bpf_map_lookup_elem(&totals, &zero);
	if (t && kind < KINDS)
		t->n[kind] += 1;
}

// ---- count mode ----------------------------------------------------------------------

static __always_inline int do_count(__u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct counts *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p) {
		struct counts zero = {};
		// -EEXIST when another thread of the process inserted it meanwhile: fine.
		bpf_map_update_elem(&procs, &tgid, &zero, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p) {
			count(COUNTER_UNTRACKED);
			count_total(kind);
			return 0;
		}
	}
	if (kind < KINDS)
		__sync_fetch_and_add(&p->n[kind], 1);
	return 0;
}

static __always_inline int do_count_exit(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	do_count(KIND_EXIT);
	// The leader's exit stands for the process's (a leader that exits before its other
	// threads leaves their later events in a new entry, folded at nobody's exit: they stay
	// in `procs`, which user space sums too).
	if ((__u32)pid_tgid != tgid)
		return 0;
	struct counts *p = bpf_map_lookup_elem(&procs, &tgid);
	__u32 zero = 0;
	struct counts *t = bpf_map_lookup_elem(&totals, &zero);
	if (p && t) {
#pragma unroll
		for (int k = 0; k < KINDS; k++)
			t->n[k] += p->n[k];
	}
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}

// ---- ring mode -----------------------------------------------------------------------

static __always_inline int emit(__u32 tgid, __u32 kind, __u64 now)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_DROPPED);
		return 0;
	}
	e->ktime_ns = now;
	e->tgid = tgid;
	e->kind = kind;
	bpf_ringbuf_submit(e, 0);
	count(COUNTER_SUBMITTED);
	return 0;
}

static __always_inline int do_ring(__u32 kind)
{
	return emit(bpf_get_current_pid_tgid() >> 32, kind, bpf_ktime_get_ns());
}

static __always_inline int do_ring_exit(void)
{
	return do_ring(KIND_EXIT);
}

// ---- filtered mode -------------------------------------------------------------------

static __always_inline int do_filtered(__u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_lookup_elem(&trusted, &tgid)) {
		count(COUNTER_SUPPRESSED);
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	if (kind == KIND_WRITE) {
		__u64 *last = bpf_map_lookup_elem(&writers, &tgid);
		if (last) {
			if (now - *last < WRITE_WINDOW_NS) {
				count(COUNTER_SUPPRESSED);
				return 0;
			}
			*last = now; // racing threads may both emit: harmless
		} else if (bpf_map_update_elem(&writers, &tgid, &now, BPF_ANY)) {
			count(COUNTER_UNTRACKED);
		}
	}
	return emit(tgid, kind, now);
}

static __always_inline int do_filtered_exit(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	do_filtered(KIND_EXIT);
	if ((__u32)pid_tgid == tgid)
		bpf_map_delete_elem(&writers, &tgid);
	return 0;
}

// ---- the hooks -----------------------------------------------------------------------
//
// Program names (15 characters at most, the kernel's limit): ward_<mode>_<hook>. The list
// of hooks is files.rs's HOOKS; a change here must change it too.

#define SYSCALL(mode, fn, hook, sys, kind)                                        \
	SEC("tracepoint/syscalls/sys_enter_" #sys)                                \
	int ward_##mode##_##hook(void *ctx)                                       \
	{                                                                         \
		return fn(kind);                                                  \
	}

#define HOOKS(mode, fn, exit_fn)                                                  \
	SYSCALL(mode, fn, openat, openat, KIND_OPEN)                              \
	SYSCALL(mode, fn, openat2, openat2, KIND_OPEN)                            \
	SYSCALL(mode, fn, open, open, KIND_OPEN)                                  \
	SYSCALL(mode, fn, creat, creat, KIND_OPEN)                                \
	SYSCALL(mode, fn, write, write, KIND_WRITE)                               \
	SYSCALL(mode, fn, pwrite64, pwrite64, KIND_WRITE)                         \
	SYSCALL(mode, fn, writev, writev, KIND_WRITE)                             \
	SYSCALL(mode, fn, pwritev, pwritev, KIND_WRITE)                           \
	SYSCALL(mode, fn, pwritev2, pwritev2, KIND_WRITE)                         \
	SYSCALL(mode, fn, cfr, copy_file_range, KIND_WRITE)                       \
	SYSCALL(mode, fn, unlinkat, unlinkat, KIND_UNLINK)                        \
	SYSCALL(mode, fn, unlink, unlink, KIND_UNLINK)                            \
	SYSCALL(mode, fn, rename2, renameat2, KIND_RENAME)                      \
	SYSCALL(mode, fn, renameat, renameat, KIND_RENAME)                        \
	SYSCALL(mode, fn, rename, rename, KIND_RENAME)                            \
	SEC("tracepoint/sched/sched_process_exec")                                \
	int ward_##mode##_exec(void *ctx)                                         \
	{                                                                         \
		return fn(KIND_EXEC);                                             \
	}                                                                         \
	SEC("tracepoint/sched/sched_process_fork")                                \
	int ward_##mode##_fork(void *ctx)                                         \
	{                                                                         \
		return fn(KIND_FORK); /* in the parent's context */               \
	}                                                                         \
	SEC("tracepoint/sched/sched_process_exit")                                \
	int ward_##mode##_exit(void *ctx)                                         \
	{                                                                         \
		return exit_fn();                                                 \
	}

HOOKS(c, do_count, do_count_exit)
HOOKS(r, do_ring, do_ring_exit)
HOOKS(f, do_filtered, do_filtered_exit)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
