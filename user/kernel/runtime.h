/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent core shared by every mode (watch, top, the host agent): it owns the BPF skeleton,
 * the ring, the engine and one epoll loop over the ring, a timerfd, a signalfd and whatever file
 * descriptors the mode adds (terminal, metrics server). Events, decoded or made by the engine,
 * go to the mode's sink callbacks.
 */
#ifndef SP_RUNTIME_H
#define SP_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "decode.h"
#include "event.h"
#include "loader.h"
#include "loop.h"
#include "sockpulse.h"

#define RUNTIME_BATCH 64 /* decoded events handed to the engine at once */

struct ring_buffer;
struct engine;
struct tablewalk;
struct audit;
struct audit_sock;

struct runtime_sink {
	void *ctx;
	/* every event, in order; ev->real_ns is filled */
	void (*on_event)(void *ctx, const struct sp_event *ev);
	/* once per tick (100 ms) after the ring was drained */
	void (*on_tick)(void *ctx, uint64_t now_mono_ns);
	/* after each loop iteration: write out what was buffered; false stops the loop */
	bool (*on_flush)(void *ctx);
	/* SIGHUP */
	void (*on_hup)(void *ctx);
	/* socket-table walks (at start, then every --audit-interval): each socket, then the
	 * audit of the whole walk; optional */
	void (*on_walk_start)(void *ctx);
	void (*on_walk_sock)(void *ctx, const struct audit_sock *s, uint64_t target_ms);
	void (*on_walk_done)(void *ctx, const struct audit *a, bool ok);
};

struct runtime_counts {
	uint64_t received[SP_REC_TYPE_MAX];	/* decoded ring records by kind */
	uint64_t lost[SP_REC_TYPE_MAX];		/* reported kernel drops by kind */
	uint64_t decode_errors[DECODE_RESULT_MAX];
	uint64_t engine_events;
	uint64_t loop_stalls;			/* ticks that came late */
	uint64_t no_storage;			/* kernel: socket table full */
};

struct socktab;
struct cg_cache;

/* Sockets and listeners whose owner and ends the agent keeps (a cache: see socktab.h). */
#define RUNTIME_SOCKTAB_LISTENERS 4096u

struct runtime {
	const struct config *cfg;
	struct loader loader;
	struct ring_buffer *ring;
	struct engine *engine;
	struct tablewalk *walk; /* NULL: no socket-table walks (no engine, or no iterator) */
	struct socktab *socks;	/* owners and ends the ring records lack */
	bool owners_wanted;	/* a socket showed up with no known owner: walk for it */
	struct cg_cache *cg;	/* cgroup ids to units, containers, pods; NULL: no cgroup2 mount */
	struct runtime_sink sink;
	struct loop loop;
	uint64_t deadline; /* --duration ends the run at this CLOCK_MONOTONIC time; 0: never */
	int64_t real_offset;
	uint64_t start_mono;
	uint64_t last_tick;
	uint64_t last_lost_check;
	struct runtime_counts counts;
	struct sp_event batch[RUNTIME_BATCH]; /* awaiting the engine */
	int n_batch;
	bool stop;
	int exit_code;
};

/* Loads and attaches the BPF side, sets up the ring, the engine and the loop. enum sp_exit. */
int runtime_open(struct runtime *a, const struct config *cfg, const struct runtime_sink *sink);
/*
 * Walks the socket table once now, then every --audit-interval from the tick: call when the
 * sinks are ready for what the walk hands them (before "ready"). Without an engine, or when the
 * iterator cannot load (said once), there are no walks.
 */
void runtime_walk_start(struct runtime *a);
/* BPF programs the agent has attached: the tracing ones, and the socket-table iterator. */
int runtime_programs(const struct runtime *a);
/* Adds a descriptor to the loop (EPOLLIN); 0 or -errno. */
int runtime_add_fd(struct runtime *a, int fd, loop_fd_fn fn, void *ctx);
/* Runs until --duration, SIGINT/SIGTERM, runtime_stop() or a sink asking to stop. enum sp_exit. */
int runtime_run(struct runtime *a);
void runtime_stop(struct runtime *a, int exit_code);
/* Hands everything waiting in the ring to the sink and the engine now (a mode that works for
 * a while between ticks, like drawing the dashboard, keeps the ring from filling). */
void runtime_drain(struct runtime *a);
/* Events per kind and losses, on stderr. */
void runtime_summary(const struct runtime *a);
void runtime_close(struct runtime *a);

#endif
