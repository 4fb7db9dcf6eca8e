/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ring record -> normalized event. The record is untrusted: size, type and every enum checked. */
#ifndef SP_DECODE_H
#define SP_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum decode_result {
	DECODE_OK = 0,
	DECODE_SHORT,	/* smaller than the record header or the record */
	DECODE_SIZE,	/* size does not match the record type */
	DECODE_TYPE,	/* unknown record type */
	DECODE_FIELD,	/* an enum or family out of range */
	DECODE_RESULT_MAX,
};

/*
 * Decodes one ring record. real_offset_ns is CLOCK_REALTIME - CLOCK_MONOTONIC, used to fill
 * ev->real_ns from the record's bpf_ktime_get_ns() stamp. On error ev is unspecified.
 */
enum decode_result decode_record(const void *data, size_t size, int64_t real_offset_ns,
				 struct sp_event *ev);
const char *decode_result_name(enum decode_result r);

#endif
