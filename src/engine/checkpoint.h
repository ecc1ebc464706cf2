/*
 * checkpoint.h — the on-disk (and in-table) format of a trained model.
 *
 * Layout, all integers little-endian (docs/checkpoint.md has the table):
 *
 *   magic            8 bytes  "MOEPGCK\0"
 *   format_version   u32      MOE_CHECKPOINT_VERSION
 *   header_bytes     u32      bytes from the start to the tensor data
 *   total_bytes      u64      whole checkpoint, checksum included
 *   config           fixed fields of moe_config, in declaration order
 *   metadata_bytes   u32, then that many bytes of UTF-8 JSON (no NUL)
 *   n_tensors        u32, then per tensor:
 *                      name_len u16, name, ndim u32, dims i64[ndim],
 *                      offset u64, numel u64   (offset/numel in floats)
 *   n_params         u64
 *   padding          zero bytes up to a multiple of 4
 *   data             n_params float32
 *   crc32            u32, IEEE CRC-32 of every byte before it
 *
 * Reading validates everything before trusting anything: magic, version,
 * lengths, checksum, the config, and that the tensor table is exactly the
 * one the config implies.  A truncated, corrupted or future checkpoint is
 * an error with a message saying which, never a crash.
 */
#ifndef MOE_CHECKPOINT_H
#define MOE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "moe_status.h"

#define MOE_CHECKPOINT_MAGIC	"MOEPGCK"	/* plus the terminating NUL: 8 bytes */
#define MOE_CHECKPOINT_VERSION	1
#define MOE_CHECKPOINT_MAX_METADATA (16 * 1024 * 1024)

/* What a checkpoint says, with pointers into the caller's buffer. */
typedef struct moe_checkpoint_view
{
	uint32_t	version;
	moe_config	cfg;
	const char *metadata;		/* not NUL-terminated */
	size_t		metadata_len;
	const unsigned char *data;	/* n_params floats, 4-byte aligned within the buffer */
	size_t		n_params;
} moe_checkpoint_view;

/* Bytes needed to write a model with metadata_len bytes of metadata. */
moe_status	moe_checkpoint_size(const moe_model *model, size_t metadata_len, size_t *out,
								moe_error *err);

/* Serialise; params are the model's parameters as a host array. */
moe_status	moe_checkpoint_write(const moe_model *model, const float *host_params,
								 const char *metadata, size_t metadata_len,
								 void *buf, size_t buflen, moe_error *err);

/* Parse and fully validate. */
moe_status	moe_checkpoint_read(const void *buf, size_t len, moe_checkpoint_view *view,
								moe_error *err);

/* Parse, validate and build a model on be holding a copy of the parameters. */
moe_status	moe_checkpoint_load(const void *buf, size_t len, moe_backend *be,
								moe_model **out, moe_error *err);

uint32_t	moe_crc32(const void *data, size_t len);

#endif
