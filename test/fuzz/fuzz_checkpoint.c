/*
 * fuzz_checkpoint.c — libFuzzer target for the checkpoint reader.
 *
 * Each input is read twice: as it is, which exercises everything up to the
 * checksum, and resealed (total_bytes set to the input's length and the
 * CRC-32 recomputed), so that mutations reach the configuration, metadata
 * and tensor-table checks behind the checksum.  Both copies are exactly
 * sized heap buffers, so AddressSanitizer sees any read past the end.
 *
 * Whenever a read succeeds:
 *   - the view must point inside the input (metadata, 4-byte aligned data
 *     ending just before the CRC);
 *   - the checkpoint is loaded into a model on the CPU backend, which may
 *     only fail for a non-finite parameter;
 *   - the loaded model predicts one all-zero row, and is written back: the
 *     bytes must be the input's, since an accepted checkpoint is canonical;
 *   - everything is freed (LeakSanitizer checks).
 *
 * Build and run: scripts/fuzz.sh (docs/fuzzing.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "infer.h"
#include "predict.h"

static moe_backend *be;

/* A broken property is a crash: libFuzzer keeps the input as an artifact. */
#define REQUIRE(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_checkpoint: property failed: %s (line %d)\n", #cond, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	be = moe_backend_cpu_create(1);
	return be == NULL;
}

/* One prediction from all-zero vectors, to run the loaded layout. */
static void
predict_once(moe_model *model)
{
	moe_infer_ws *ws = NULL;
	moe_error	err;
	float	   *drug = calloc((size_t) model->cfg.drug_dim, sizeof(float));
	float	   *protein = calloc((size_t) model->cfg.protein_dim, sizeof(float));
	float		pred = 0.0f;

	REQUIRE(drug != NULL && protein != NULL);
	if (moe_infer_ws_create(model, 1, &ws, &err) == MOE_OK)
	{
		moe_status	st = moe_infer_vectors(model, ws, drug, protein, 1, &pred, NULL, NULL, &err);

		REQUIRE(st == MOE_OK || st == MOE_ERR_NOMEM || st == MOE_ERR_BACKEND);
		moe_infer_ws_free(model, ws);
	}
	free(drug);
	free(protein);
}

static void
check_one(const unsigned char *buf, size_t len)
{
	moe_checkpoint_view view;
	moe_model  *model = NULL;
	moe_error	err;
	moe_status	st;

	st = moe_checkpoint_read(buf, len, &view, &err);
	REQUIRE(st == MOE_OK || st == MOE_ERR_CORRUPT || st == MOE_ERR_VERSION);
	if (st != MOE_OK)
		return;

	/* the view describes bytes of the input */
	REQUIRE(view.version == MOE_CHECKPOINT_VERSION);
	REQUIRE(view.metadata >= (const char *) buf);
	REQUIRE(view.metadata_len <= len - (size_t) ((const unsigned char *) view.metadata - buf));
	REQUIRE(view.data > buf && (size_t) (view.data - buf) % 4 == 0);
	REQUIRE((size_t) (view.data - buf) + 4 * view.n_params + 4 == len);

	st = moe_checkpoint_load(buf, len, be, &model, &err);
	REQUIRE(st == MOE_OK || st == MOE_ERR_CORRUPT || st == MOE_ERR_NOMEM);
	if (st != MOE_OK)
	{
		REQUIRE(model == NULL);
		return;
	}
	REQUIRE(memcmp(&model->cfg, &view.cfg, sizeof(moe_config)) == 0);
	REQUIRE(model->layout.n_params == view.n_params);

	predict_once(model);

	/* writing the model back gives the very same bytes */
	{
		size_t		size = 0;
		unsigned char *again;

		REQUIRE(moe_checkpoint_size(model, view.metadata_len, &size, &err) == MOE_OK);
		REQUIRE(size == len);
		again = malloc(size);
		REQUIRE(again != NULL);
		REQUIRE(moe_checkpoint_write(model, model->params, view.metadata, view.metadata_len,
									 again, size, &err) == MOE_OK);
		REQUIRE(memcmp(again, buf, len) == 0);
		free(again);
	}
	moe_model_free(model);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy;

	/* the input as it is; a zero-length one as a NULL-free empty buffer */
	copy = malloc(size > 0 ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	check_one(copy, size);

	/* resealed: total_bytes (offset 16) and the trailing CRC made to match */
	if (size >= 28)
	{
		uint32_t	crc;

		for (int i = 0; i < 8; i++)
			copy[16 + i] = (unsigned char) ((uint64_t) size >> (8 * i));
		crc = moe_crc32(copy, size - 4);
		for (int i = 0; i < 4; i++)
			copy[size - 4 + i] = (unsigned char) (crc >> (8 * i));
		check_one(copy, size);
	}
	free(copy);
	return 0;
}
