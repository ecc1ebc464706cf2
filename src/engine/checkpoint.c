/*
 * checkpoint.c — write and read the checkpoint format of checkpoint.h.
 */
#include "checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib) ---------------------------- */

uint32_t
moe_crc32(const void *data, size_t len)
{
	uint32_t	table[256];
	const unsigned char *p = data;
	uint32_t	crc = 0xffffffffu;

	/* 256 entries are cheaper to build than to guard as shared state. */
	for (uint32_t i = 0; i < 256; i++)
	{
		uint32_t	c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* ---- little-endian writer and reader ------------------------------------ */

typedef struct writer
{
	unsigned char *buf;
	size_t		len;			/* capacity; 0 when only measuring */
	size_t		pos;
	bool		overflow;
} writer;

static void
put_bytes(writer *w, const void *src, size_t n)
{
	if (w->buf != NULL)
	{
		if (w->pos + n > w->len)
		{
			w->overflow = true;
			return;
		}
		memcpy(w->buf + w->pos, src, n);
	}
	w->pos += n;
}

static void
put_u64(writer *w, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	put_bytes(w, b, 8);
}

static void
put_u32(writer *w, uint32_t v)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	put_bytes(w, b, 4);
}

static void
put_u16(writer *w, uint16_t v)
{
	unsigned char b[2] = {(unsigned char) v, (unsigned char) (v >> 8)};

	put_bytes(w, b, 2);
}

static void
put_f32(writer *w, float f)
{
	uint32_t	v;

	memcpy(&v, &f, 4);
	put_u32(w, v);
}

typedef struct reader
{
	const unsigned char *buf;
	size_t		len;
	size_t		pos;
	bool		short_read;
} reader;

static bool
get_bytes(reader *r, void *dst, size_t n)
{
	if (r->short_read || n > r->len - r->pos)
	{
		r->short_read = true;
		if (dst != NULL)
			memset(dst, 0, n);
		return false;
	}
	if (dst != NULL)
		memcpy(dst, r->buf + r->pos, n);
	r->pos += n;
	return true;
}

static uint64_t
get_u64(reader *r)
{
	unsigned char b[8];
	uint64_t	v = 0;

	get_bytes(r, b, 8);
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static uint32_t
get_u32(reader *r)
{
	unsigned char b[4];

	get_bytes(r, b, 4);
	return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) | ((uint32_t) b[3] << 24);
}

static uint16_t
get_u16(reader *r)
{
	unsigned char b[2];

	get_bytes(r, b, 2);
	return (uint16_t) (b[0] | (b[1] << 8));
}

static float
get_f32(reader *r)
{
	uint32_t	v = get_u32(r);
	float		f;

	memcpy(&f, &v, 4);
	return f;
}

/* ---- the config block --------------------------------------------------- */

static void
put_config(writer *w, const moe_config *c)
{
	put_u32(w, (uint32_t) c->drug_dim);
	put_u32(w, (uint32_t) c->protein_dim);
	put_u32(w, (uint32_t) c->n_drug_layers);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		put_u32(w, (uint32_t) c->drug_hidden[i]);
	put_u32(w, (uint32_t) c->n_protein_layers);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		put_u32(w, (uint32_t) c->protein_hidden[i]);
	put_u32(w, (uint32_t) c->n_gate_layers);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		put_u32(w, (uint32_t) c->gate_hidden[i]);
	put_u32(w, (uint32_t) c->n_expert_layers);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		put_u32(w, (uint32_t) c->expert_hidden[i]);
	put_u32(w, (uint32_t) c->n_experts);
	put_u32(w, (uint32_t) c->top_k);
	put_u32(w, (uint32_t) c->noisy_gating);
	put_f32(w, c->temperature);
	put_f32(w, c->dropout);
	put_f32(w, c->label_mean);
	put_f32(w, c->label_std);
}

static void
get_config(reader *r, moe_config *c)
{
	memset(c, 0, sizeof(*c));
	c->drug_dim = (int32_t) get_u32(r);
	c->protein_dim = (int32_t) get_u32(r);
	c->n_drug_layers = (int32_t) get_u32(r);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		c->drug_hidden[i] = (int32_t) get_u32(r);
	c->n_protein_layers = (int32_t) get_u32(r);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		c->protein_hidden[i] = (int32_t) get_u32(r);
	c->n_gate_layers = (int32_t) get_u32(r);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		c->gate_hidden[i] = (int32_t) get_u32(r);
	c->n_expert_layers = (int32_t) get_u32(r);
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		c->expert_hidden[i] = (int32_t) get_u32(r);
	c->n_experts = (int32_t) get_u32(r);
	c->top_k = (int32_t) get_u32(r);
	c->noisy_gating = (int32_t) get_u32(r);
	c->temperature = get_f32(r);
	c->dropout = get_f32(r);
	c->label_mean = get_f32(r);
	c->label_std = get_f32(r);
}

/* ---- writing ------------------------------------------------------------ */

/* Everything up to the data; returns the header size (padding included). */
static size_t
put_header(writer *w, const moe_model *model, const char *metadata, size_t metadata_len,
		   uint64_t total)
{
	const moe_layout *l = &model->layout;

	put_bytes(w, MOE_CHECKPOINT_MAGIC, 8);
	put_u32(w, MOE_CHECKPOINT_VERSION);
	put_u32(w, 0);				/* header_bytes, patched below */
	put_u64(w, total);
	put_config(w, &model->cfg);
	put_u32(w, (uint32_t) metadata_len);
	put_bytes(w, metadata, metadata_len);
	put_u32(w, (uint32_t) l->n_tensors);
	for (int i = 0; i < l->n_tensors; i++)
	{
		const moe_tensor_info *t = &l->tensors[i];
		size_t		name_len = strlen(t->name);

		put_u16(w, (uint16_t) name_len);
		put_bytes(w, t->name, name_len);
		put_u32(w, (uint32_t) t->ndim);
		for (int d = 0; d < t->ndim; d++)
			put_u64(w, (uint64_t) t->dims[d]);
		put_u64(w, t->offset);
		put_u64(w, t->numel);
	}
	put_u64(w, l->n_params);
	while (w->pos % 4 != 0)
	{
		unsigned char zero = 0;

		put_bytes(w, &zero, 1);
	}
	return w->pos;
}

moe_status
moe_checkpoint_size(const moe_model *model, size_t metadata_len, size_t *out, moe_error *err)
{
	writer		w = {NULL, 0, 0, false};
	size_t		header;

	if (metadata_len > MOE_CHECKPOINT_MAX_METADATA)
		return moe_fail(err, MOE_ERR_INVALID, "checkpoint metadata of %zu bytes exceeds the limit of %d",
						metadata_len, MOE_CHECKPOINT_MAX_METADATA);
	header = put_header(&w, model, NULL, metadata_len, 0);
	*out = header + sizeof(float) * model->layout.n_params + 4;
	return MOE_OK;
}

moe_status
moe_checkpoint_write(const moe_model *model, const float *host_params, const char *metadata,
					 size_t metadata_len, void *buf, size_t buflen, moe_error *err)
{
	size_t		total = 0,
				header;
	writer		w;
	moe_status	st;

	if ((st = moe_checkpoint_size(model, metadata_len, &total, err)) != MOE_OK)
		return st;
	if (buflen < total)
		return moe_fail(err, MOE_ERR_INVALID, "checkpoint buffer of %zu bytes is smaller than %zu",
						buflen, total);
	w.buf = buf;
	w.len = buflen;
	w.pos = 0;
	w.overflow = false;
	header = put_header(&w, model, metadata, metadata_len, total);
	/* patch header_bytes now that it is known */
	for (int i = 0; i < 4; i++)
		((unsigned char *) buf)[12 + i] = (unsigned char) (header >> (8 * i));
	for (size_t i = 0; i < model->layout.n_params; i++)
		put_f32(&w, host_params[i]);
	put_u32(&w, moe_crc32(buf, w.pos));
	if (w.overflow || w.pos != total)
		return moe_fail(err, MOE_ERR_INVALID, "internal error: checkpoint size mismatch");
	return MOE_OK;
}

/* ---- reading ------------------------------------------------------------ */

static moe_status
truncated(moe_error *err, size_t len)
{
	return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint is truncated (%zu bytes)", len);
}

moe_status
moe_checkpoint_read(const void *buf, size_t len, moe_checkpoint_view *view, moe_error *err)
{
	reader		r = {buf, len, 0, false};
	char		magic[8];
	uint32_t	header_bytes,
				crc_stored,
				n_tensors;
	uint64_t	total,
				n_params;
	moe_layout	layout;
	moe_error	inner;
	moe_status	st;

	memset(view, 0, sizeof(*view));
	if (buf == NULL || len < 8)
		return moe_fail(err, MOE_ERR_CORRUPT, "not a moe_pg checkpoint (%zu bytes)", buf ? len : 0);
	get_bytes(&r, magic, 8);
	if (memcmp(magic, MOE_CHECKPOINT_MAGIC, 8) != 0)
		return moe_fail(err, MOE_ERR_CORRUPT, "not a moe_pg checkpoint (bad magic number)");
	if (len < 28)
		return truncated(err, len);
	view->version = get_u32(&r);
	if (view->version > MOE_CHECKPOINT_VERSION)
		return moe_fail(err, MOE_ERR_VERSION,
						"checkpoint format version %u is newer than this moe_pg reads (%d); upgrade the extension",
						view->version, MOE_CHECKPOINT_VERSION);
	if (view->version < 1)
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint has invalid format version 0");
	header_bytes = get_u32(&r);
	total = get_u64(&r);
	if (total > len)
		return truncated(err, len);
	if (total < len)
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint has %zu trailing bytes", (size_t) (len - total));
	crc_stored = (uint32_t) ((const unsigned char *) buf)[len - 4] |
		((uint32_t) ((const unsigned char *) buf)[len - 3] << 8) |
		((uint32_t) ((const unsigned char *) buf)[len - 2] << 16) |
		((uint32_t) ((const unsigned char *) buf)[len - 1] << 24);
	if (moe_crc32(buf, len - 4) != crc_stored)
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint is corrupted (checksum mismatch)");

	/* The checksum matched, but a checkpoint can still be forged: keep
	 * validating every field. */
	get_config(&r, &view->cfg);
	if ((st = moe_config_validate(&view->cfg, &inner)) != MOE_OK)
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint has an invalid configuration: %s",
						inner.message);
	view->metadata_len = get_u32(&r);
	if (view->metadata_len > MOE_CHECKPOINT_MAX_METADATA || view->metadata_len > len - r.pos)
		return truncated(err, len);
	view->metadata = (const char *) r.buf + r.pos;
	get_bytes(&r, NULL, view->metadata_len);

	if ((st = moe_layout_build(&view->cfg, &layout, &inner)) != MOE_OK)
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint configuration cannot be laid out: %s",
						inner.message);
	n_tensors = get_u32(&r);
	if (n_tensors != (uint32_t) layout.n_tensors)
	{
		/* the count is read before the layout is freed (freeing zeroes it) */
		int			implied = layout.n_tensors;

		moe_layout_free(&layout);
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint has %u tensors, its configuration implies %d",
						n_tensors, implied);
	}
	for (uint32_t i = 0; i < n_tensors; i++)
	{
		const moe_tensor_info *t = &layout.tensors[i];
		char		name[MOE_TENSOR_NAME_LEN];
		uint16_t	name_len = get_u16(&r);
		uint32_t	ndim;
		bool		same;

		if (name_len >= MOE_TENSOR_NAME_LEN || !get_bytes(&r, name, name_len))
		{
			moe_layout_free(&layout);
			return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint tensor %u has a bad name", i + 1);
		}
		name[name_len] = '\0';
		ndim = get_u32(&r);
		same = strcmp(name, t->name) == 0 && ndim == (uint32_t) t->ndim;
		for (uint32_t d = 0; d < ndim && d < 2; d++)
			same &= get_u64(&r) == (uint64_t) t->dims[d];
		same &= ndim <= 2;
		same &= get_u64(&r) == t->offset;
		same &= get_u64(&r) == t->numel;
		if (!same || r.short_read)
		{
			moe_layout_free(&layout);
			return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint tensor %u (\"%s\") does not match its configuration",
							i + 1, name);
		}
	}
	n_params = get_u64(&r);
	if (n_params != layout.n_params)
	{
		moe_layout_free(&layout);
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint holds %llu parameters, its configuration implies %zu",
						(unsigned long long) n_params, layout.n_params);
	}
	moe_layout_free(&layout);
	/* zero padding; a header ending at the very end of the buffer (its last
	 * bytes read as the checksum) must stop here, not spin on a short read */
	while (r.pos % 4 != 0)
	{
		unsigned char pad;

		if (!get_bytes(&r, &pad, 1))
			return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint sections do not add up");
		if (pad != 0)
			return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint has a non-zero padding byte at offset %zu",
							r.pos - 1);
	}
	if (r.short_read || r.pos != header_bytes || (len - 4 - r.pos) != n_params * sizeof(float))
		return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint sections do not add up");
	view->n_params = n_params;
	view->data = r.buf + r.pos;
	return MOE_OK;
}

moe_status
moe_checkpoint_load(const void *buf, size_t len, moe_backend *be, moe_model **out, moe_error *err)
{
	moe_checkpoint_view view;
	moe_model  *model;
	moe_status	st;
	float	   *host;

	*out = NULL;
	if ((st = moe_checkpoint_read(buf, len, &view, err)) != MOE_OK)
		return st;
	if ((st = moe_model_create(&view.cfg, be, &model, err)) != MOE_OK)
		return st;
	host = malloc(sizeof(float) * view.n_params);
	if (host == NULL)
	{
		moe_model_free(model);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory loading a checkpoint");
	}
	/* byte-wise: the data is little-endian float32 like every supported host */
	for (size_t i = 0; i < view.n_params; i++)
	{
		const unsigned char *b = view.data + 4 * i;
		uint32_t	v = (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) |
			((uint32_t) b[3] << 24);

		memcpy(&host[i], &v, 4);
		if (!isfinite(host[i]))
		{
			free(host);
			moe_model_free(model);
			return moe_fail(err, MOE_ERR_CORRUPT, "checkpoint parameter %zu is not finite", i);
		}
	}
	be->upload(be, model->params, host, sizeof(float) * view.n_params);
	free(host);
	*out = model;
	return MOE_OK;
}
