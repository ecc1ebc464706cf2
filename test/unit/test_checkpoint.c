/*
 * test_checkpoint.c — round trips and every way a checkpoint can be bad.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "rng.h"
#include "unit.h"

static moe_backend *be;

static moe_model *
small_model(void)
{
	moe_config	cfg;
	moe_model  *m = NULL;
	moe_error	err;

	moe_config_defaults(&cfg, 6, 9);
	cfg.drug_hidden[0] = 5;
	cfg.protein_hidden[0] = 4;
	cfg.gate_hidden[0] = 7;
	cfg.gate_hidden[1] = 3;
	cfg.expert_hidden[0] = 6;
	cfg.expert_hidden[1] = 2;
	cfg.n_experts = 3;
	cfg.top_k = 2;
	cfg.label_mean = 5.5f;
	cfg.label_std = 0.75f;
	moe_model_create(&cfg, be, &m, &err);
	moe_model_init(m, 99, NULL);
	return m;
}

static unsigned char *
serialise(moe_model *m, const char *meta, size_t *len)
{
	moe_error	err;
	unsigned char *buf;

	moe_checkpoint_size(m, strlen(meta), len, &err);
	buf = malloc(*len);
	CHECK_INT(moe_checkpoint_write(m, m->params, meta, strlen(meta), buf, *len, &err), MOE_OK);
	return buf;
}

/* Rewrite the trailing CRC after a deliberate edit. */
static void
reseal(unsigned char *buf, size_t len)
{
	uint32_t	crc = moe_crc32(buf, len - 4);

	for (int i = 0; i < 4; i++)
		buf[len - 4 + i] = (unsigned char) (crc >> (8 * i));
}

static void
test_crc32_known_value(void)
{
	/* the standard check value of CRC-32/ISO-HDLC */
	CHECK(moe_crc32("123456789", 9) == 0xcbf43926u);
	CHECK(moe_crc32("", 0) == 0);
}

static void
test_round_trip(void)
{
	moe_model  *m = small_model(),
			   *back = NULL;
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	const char *meta = "{\"dataset\": \"davis\", \"fold\": 0}";
	unsigned char *buf = serialise(m, meta, &len);

	CHECK_INT(moe_checkpoint_read(buf, len, &view, &err), MOE_OK);
	CHECK_INT(view.version, MOE_CHECKPOINT_VERSION);
	CHECK_INT(view.metadata_len, strlen(meta));
	CHECK(memcmp(view.metadata, meta, strlen(meta)) == 0);
	CHECK(memcmp(&view.cfg, &m->cfg, sizeof(moe_config)) == 0);
	CHECK_INT(view.n_params, m->layout.n_params);

	CHECK_INT(moe_checkpoint_load(buf, len, be, &back, &err), MOE_OK);
	if (back != NULL)
	{
		CHECK(memcmp(back->params, m->params, sizeof(float) * m->layout.n_params) == 0);
		CHECK_NEAR(back->cfg.label_mean, 5.5, 0);
		moe_model_free(back);
	}
	/* writing is deterministic */
	{
		size_t		len2;
		unsigned char *again = serialise(m, meta, &len2);

		CHECK_INT(len2, len);
		CHECK(memcmp(again, buf, len) == 0);
		free(again);
	}
	free(buf);
	moe_model_free(m);
}

static void
test_every_truncation_is_an_error(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	unsigned char *buf = serialise(m, "{}", &len);
	int			wrong = 0;

	for (size_t cut = 0; cut < len; cut++)
	{
		/* a fresh copy of exactly cut bytes, so valgrind sees any overread */
		unsigned char *part = malloc(cut > 0 ? cut : 1);

		memcpy(part, buf, cut);
		if (moe_checkpoint_read(part, cut, &view, &err) != MOE_ERR_CORRUPT)
			wrong++;
		free(part);
	}
	CHECK_INT(wrong, 0);
	CHECK_INT(moe_checkpoint_read(buf, len - 1, &view, &err), MOE_ERR_CORRUPT);
	CHECK(strstr(err.message, "truncated") != NULL);
	CHECK_INT(moe_checkpoint_read(NULL, 0, &view, &err), MOE_ERR_CORRUPT);
	free(buf);
	moe_model_free(m);
}

static void
test_every_flipped_byte_is_an_error(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	unsigned char *buf = serialise(m, "{\"a\": 1}", &len);
	int			accepted = 0;

	for (size_t i = 0; i < len; i++)
	{
		moe_status	st;

		buf[i] ^= 0x5a;
		st = moe_checkpoint_read(buf, len, &view, &err);
		/* a flip in the version field may read as a newer version */
		if (st != MOE_ERR_CORRUPT && !(st == MOE_ERR_VERSION && i >= 8 && i < 12))
			accepted++;
		buf[i] ^= 0x5a;
	}
	CHECK_INT(accepted, 0);
	CHECK_INT(moe_checkpoint_read(buf, len, &view, &err), MOE_OK);
	free(buf);
	moe_model_free(m);
}

static void
test_future_version_is_refused(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	unsigned char *buf = serialise(m, "{}", &len);

	buf[8] = MOE_CHECKPOINT_VERSION + 1;
	reseal(buf, len);
	CHECK_INT(moe_checkpoint_read(buf, len, &view, &err), MOE_ERR_VERSION);
	CHECK(strstr(err.message, "newer") != NULL);
	free(buf);
	moe_model_free(m);
}

static size_t unpadded_header(const moe_model *m, size_t meta_len);

static void
test_forged_fields_are_refused(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_model  *back;
	moe_error	err;
	size_t		len;
	unsigned char *buf = serialise(m, "{}", &len);
	unsigned char *copy = malloc(len);
	/* config starts at byte 24: drug_dim, protein_dim, n_drug_layers, 4
	 * widths, ...; n_experts and top_k follow the 4 blocks of 5 u32 */
	size_t		top_k_at = 24 + 4 * (2 + 4 * 5) + 4;
	size_t		data_at = len - 4 - sizeof(float) * m->layout.n_params;
	float		nan = NAN;

	/* top_k larger than the number of experts */
	memcpy(copy, buf, len);
	copy[top_k_at] = 9;
	reseal(copy, len);
	CHECK_INT(moe_checkpoint_read(copy, len, &view, &err), MOE_ERR_CORRUPT);
	CHECK(strstr(err.message, "top_k") != NULL);

	/* a drug dimension that does not match the tensor table */
	memcpy(copy, buf, len);
	copy[24] = 7;
	reseal(copy, len);
	CHECK_INT(moe_checkpoint_read(copy, len, &view, &err), MOE_ERR_CORRUPT);

	/* a tensor count that the configuration does not imply: the message
	 * names both counts */
	{
		size_t		count_at = unpadded_header(m, 2) - 8 - 4;
		char		expected[64];

		for (int i = 0; i < m->layout.n_tensors; i++)
			count_at -= 2 + strlen(m->layout.tensors[i].name) + 4 + 8 * m->layout.tensors[i].ndim + 16;
		memcpy(copy, buf, len);
		copy[count_at] ^= 1;
		reseal(copy, len);
		CHECK_INT(moe_checkpoint_read(copy, len, &view, &err), MOE_ERR_CORRUPT);
		snprintf(expected, sizeof(expected), "its configuration implies %d", m->layout.n_tensors);
		CHECK(strstr(err.message, expected) != NULL);
	}

	/* a NaN parameter under a valid checksum */
	memcpy(copy, buf, len);
	memcpy(copy + data_at + 4 * (m->layout.n_params - 1), &nan, 4);
	reseal(copy, len);
	CHECK_INT(moe_checkpoint_read(copy, len, &view, &err), MOE_OK);
	CHECK_INT(moe_checkpoint_load(copy, len, be, &back, &err), MOE_ERR_CORRUPT);
	CHECK(strstr(err.message, "not finite") != NULL);

	/* trailing garbage */
	{
		unsigned char *longer = malloc(len + 3);

		memcpy(longer, buf, len);
		memset(longer + len, 0, 3);
		CHECK_INT(moe_checkpoint_read(longer, len + 3, &view, &err), MOE_ERR_CORRUPT);
		free(longer);
	}
	/* not a checkpoint at all */
	CHECK_INT(moe_checkpoint_read("hello, world, this is text", 26, &view, &err), MOE_ERR_CORRUPT);
	CHECK(strstr(err.message, "magic") != NULL);

	free(copy);
	free(buf);
	moe_model_free(m);
}

/* Bytes up to the end of n_params: where the padding starts. */
static size_t
unpadded_header(const moe_model *m, size_t meta_len)
{
	size_t		n = 24 + 25 * 4 + 4 * 4 + 4 + meta_len + 4;

	for (int i = 0; i < m->layout.n_tensors; i++)
		n += 2 + strlen(m->layout.tensors[i].name) + 4 + 8 * m->layout.tensors[i].ndim + 16;
	return n + 8;
}

/* Metadata of at least 4 bytes that leaves the header unaligned. */
static const char *
unaligned_meta(const moe_model *m)
{
	static const char *const metas[] = {"{}  ", "{}   ", "{}    ", "{}     "};

	for (int i = 0; i < 4; i++)
		if (unpadded_header(m, strlen(metas[i])) % 4 != 0)
			return metas[i];
	return NULL;
}

/*
 * Set buf[at..at+3] so that the CRC-32 of buf[0..len-4) is zero.  CRC-32
 * is affine in the message bits, so this is a 32 x 32 system over GF(2).
 */
static void
forge_zero_crc(unsigned char *buf, size_t len, size_t at)
{
	uint32_t	base,
				col,
				piv_v[32] = {0},
				piv_m[32] = {0},
				x = 0;

	memset(buf + at, 0, 4);
	base = moe_crc32(buf, len - 4);
	for (int i = 0; i < 32; i++)
	{
		uint32_t	m = 1u << i;

		buf[at + i / 8] ^= (unsigned char) (1 << (i % 8));
		col = moe_crc32(buf, len - 4) ^ base;
		buf[at + i / 8] ^= (unsigned char) (1 << (i % 8));
		for (int b = 31; b >= 0 && col != 0; b--)
		{
			if (!((col >> b) & 1))
				continue;
			if (piv_v[b] == 0)
			{
				piv_v[b] = col;
				piv_m[b] = m;
				break;
			}
			col ^= piv_v[b];
			m ^= piv_m[b];
		}
	}
	for (int b = 31; b >= 0; b--)
		if ((base >> b) & 1)
		{
			base ^= piv_v[b];
			x ^= piv_m[b];
		}
	for (int i = 0; i < 32; i++)
		if ((x >> i) & 1)
			buf[at + i / 8] ^= (unsigned char) (1 << (i % 8));
}

/*
 * Found by test/fuzz/fuzz_checkpoint.c: a checkpoint cut right after
 * n_params, at an offset that is not a multiple of 4, whose checksum is
 * zero (so its last 4 bytes are both the high half of n_params and the
 * CRC) used to spin forever in the padding loop.  alarm() turns a
 * regression into a failure instead of a hang.
 */
static void
test_header_at_buffer_end_is_refused(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	const char *meta = unaligned_meta(m);
	unsigned char *buf = serialise(m, meta, &len);
	size_t		cut = unpadded_header(m, strlen(meta));
	unsigned char *part = malloc(cut);

	CHECK(cut % 4 != 0 && cut + 4 < len);
	memcpy(part, buf, cut);
	for (int i = 0; i < 8; i++)
		part[16 + i] = (unsigned char) ((uint64_t) cut >> (8 * i));
	CHECK(part[cut - 4] == 0 && part[cut - 3] == 0 && part[cut - 2] == 0 && part[cut - 1] == 0);
	forge_zero_crc(part, cut, 144);	/* the first 4 metadata bytes */
	CHECK(moe_crc32(part, cut - 4) == 0);

	alarm(60);
	CHECK_INT(moe_checkpoint_read(part, cut, &view, &err), MOE_ERR_CORRUPT);
	alarm(0);
	CHECK(strstr(err.message, "do not add up") != NULL);
	free(part);
	free(buf);
	moe_model_free(m);
}

/* Also found by the fuzzer: the padding is zero bytes, as written. */
static void
test_nonzero_padding_is_refused(void)
{
	moe_model  *m = small_model();
	moe_checkpoint_view view;
	moe_error	err;
	size_t		len;
	const char *meta = unaligned_meta(m);
	unsigned char *buf = serialise(m, meta, &len);
	size_t		pad_at = unpadded_header(m, strlen(meta));

	CHECK_INT(moe_checkpoint_read(buf, len, &view, &err), MOE_OK);
	CHECK_INT(view.data - buf, pad_at + (4 - pad_at % 4));
	CHECK_INT(buf[pad_at], 0);
	buf[pad_at] = 0x20;
	reseal(buf, len);
	CHECK_INT(moe_checkpoint_read(buf, len, &view, &err), MOE_ERR_CORRUPT);
	CHECK(strstr(err.message, "padding") != NULL);
	free(buf);
	moe_model_free(m);
}

int
main(void)
{
	be = moe_backend_cpu_create(1);
	RUN(test_crc32_known_value);
	RUN(test_round_trip);
	RUN(test_every_truncation_is_an_error);
	RUN(test_every_flipped_byte_is_an_error);
	RUN(test_future_version_is_refused);
	RUN(test_forged_fields_are_refused);
	RUN(test_header_at_buffer_end_is_refused);
	RUN(test_nonzero_padding_is_refused);
	be->destroy(be);
	return unit_summary("test_checkpoint");
}
