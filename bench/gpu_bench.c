/*
 * gpu_bench.c — the engine on the CPU against the CUDA backend, on the
 * shapes of Davis (68 drugs x 442 targets, 1024-value drug n-grams, 8420
 * protein k-mers) and the default architecture.  Run by bench/gpu.sh:
 *
 *   gpu_bench PATH/moe_pg_cuda.so [cpu_epochs gpu_epochs screen_drugs cpu_sample_drugs]
 *   gpu_bench --cpu-only ...     (a dry run with the CPU standing in for the GPU)
 *
 *   1. training: seconds per epoch (Davis-sized, 80/20 train/validation);
 *   2. bulk scoring: pairs per second over all 30,056 Davis pairs, each
 *      drug and target computed once and the pairs batched (what
 *      CALL moe_score does inside a backend);
 *   3. screening: screen_drugs (default 100,000) new drugs against the 442
 *      targets; the CPU figure is measured on cpu_sample_drugs drugs and
 *      scaled up.
 *
 * Vectors and labels are random (speed does not depend on them); the
 * model's weights are its initialisation.  Prints "SKIP: ..." and exits 0
 * without a CUDA device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "backend_loader.h"
#include "infer.h"
#include "model.h"
#include "rng.h"
#include "train.h"

#define N_DRUGS 68
#define N_TARGETS 442
#define DRUG_DIM 1024
#define PROTEIN_DIM 8420

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
die(const char *what, const moe_error *err)
{
	fprintf(stderr, "gpu_bench: %s: %s\n", what, err != NULL ? err->message : "failed");
	exit(1);
}

static float *
random_drugs(moe_rng *rng, int n)
{
	float	   *v = malloc(sizeof(float) * (size_t) n * DRUG_DIM);

	for (size_t i = 0; i < (size_t) n * DRUG_DIM; i++)
		v[i] = moe_rng_uniform(rng) < 0.05f ? 1.0f : 0.0f;
	return v;
}

static float *
random_targets(moe_rng *rng, int n)
{
	float	   *v = malloc(sizeof(float) * (size_t) n * PROTEIN_DIM);

	for (size_t i = 0; i < (size_t) n * PROTEIN_DIM; i++)
		v[i] = moe_rng_uniform(rng) < 0.1f ? moe_rng_uniform(rng) * 0.01f : 0.0f;
	return v;
}

/* Seconds per epoch of training on be. */
static double
train_epochs(moe_backend *be, const float *drugs, const float *targets, int epochs)
{
	static int32_t di[N_DRUGS * N_TARGETS],
				pi[N_DRUGS * N_TARGETS];
	static float label[N_DRUGS * N_TARGETS];
	moe_rng		rng;
	moe_config	arch;
	moe_train_options opt;
	moe_train_data data;
	moe_trainer *t;
	moe_error	err;
	const int	n = N_DRUGS * N_TARGETS,
				n_train = n * 4 / 5;
	double		seconds = 0.0;

	moe_rng_seed(&rng, 1);
	for (int i = 0; i < n; i++)
	{
		di[i] = i / N_TARGETS;
		pi[i] = i % N_TARGETS;
		label[i] = 5.0f + fabsf(moe_rng_normal(&rng));
	}
	moe_config_defaults(&arch, DRUG_DIM, PROTEIN_DIM);
	moe_train_options_defaults(&opt);
	opt.epochs = epochs;
	opt.patience = 0;
	data.n_drugs = N_DRUGS;
	data.drug_dim = DRUG_DIM;
	data.drug_vec = drugs;
	data.n_proteins = N_TARGETS;
	data.protein_dim = PROTEIN_DIM;
	data.protein_vec = targets;
	data.train = (moe_rows) {n_train, di, pi, label};
	data.valid = (moe_rows) {n - n_train, di + n_train, pi + n_train, label + n_train};
	if (moe_trainer_create(&arch, &opt, &data, be, NULL, NULL, &t, &err) != MOE_OK)
		die("trainer", &err);
	for (int e = 0; e < epochs; e++)
	{
		moe_epoch_report rep;

		if (moe_trainer_epoch(t, &rep, &err) != MOE_OK)
			die("epoch", &err);
		seconds += rep.seconds;
	}
	moe_trainer_free(t);
	return seconds / epochs;
}

/*
 * Score every pair of n_drugs x n_targets (entities first, then pairs in
 * batches of rows) on be; returns pairs per second.
 */
static double
score_pairs(moe_backend *be, moe_model *model, const float *drugs, int n_drugs,
			const float *targets, int n_targets, int rows)
{
	moe_infer_ws *ws;
	moe_error	err;
	int			pf = moe_entity_part_floats(model);
	float	   *dtab = (float *) drugs,
			   *ttab = (float *) targets,
			   *dparts,
			   *tparts;
	int32_t    *idx = malloc(sizeof(int32_t) * rows),
			   *di = malloc(sizeof(int32_t) * rows),
			   *pi = malloc(sizeof(int32_t) * rows);
	double		t0;
	int64_t		pairs = (int64_t) n_drugs * n_targets,
				done = 0;

	if (moe_infer_ws_create(model, rows, &ws, &err) != MOE_OK)
		die("inference workspace", &err);
	if (!be->host_memory)
	{
		dtab = be->alloc(be, sizeof(float) * (size_t) n_drugs * DRUG_DIM);
		ttab = be->alloc(be, sizeof(float) * (size_t) n_targets * PROTEIN_DIM);
		if (dtab == NULL || ttab == NULL)
			die("entity tables", NULL);
		be->upload(be, dtab, drugs, sizeof(float) * (size_t) n_drugs * DRUG_DIM);
		be->upload(be, ttab, targets, sizeof(float) * (size_t) n_targets * PROTEIN_DIM);
	}
	dparts = be->alloc(be, sizeof(float) * (size_t) n_drugs * pf);
	tparts = be->alloc(be, sizeof(float) * (size_t) n_targets * pf);
	if (dparts == NULL || tparts == NULL)
		die("entity parts", NULL);

	t0 = now();
	for (int from = 0; from < n_drugs; from += rows)
	{
		int			n = n_drugs - from < rows ? n_drugs - from : rows;

		for (int i = 0; i < n; i++)
			idx[i] = from + i;
		if (moe_entity_parts(model, ws, MOE_DRUG, dtab, idx, n, dparts + (size_t) from * pf, &err) != MOE_OK)
			die("drug parts", &err);
	}
	for (int from = 0; from < n_targets; from += rows)
	{
		int			n = n_targets - from < rows ? n_targets - from : rows;

		for (int i = 0; i < n; i++)
			idx[i] = from + i;
		if (moe_entity_parts(model, ws, MOE_PROTEIN, ttab, idx, n, tparts + (size_t) from * pf, &err) != MOE_OK)
			die("target parts", &err);
	}
	while (done < pairs)
	{
		int			M = pairs - done < rows ? (int) (pairs - done) : rows;

		for (int i = 0; i < M; i++)
		{
			di[i] = (int32_t) ((done + i) / n_targets);
			pi[i] = (int32_t) ((done + i) % n_targets);
		}
		if (moe_infer_pairs(model, ws, dparts, di, tparts, pi, M, NULL, &err) != MOE_OK)
			die("pairs", &err);
		done += M;
	}
	t0 = now() - t0;

	be->release(be, dparts);
	be->release(be, tparts);
	if (!be->host_memory)
	{
		be->release(be, dtab);
		be->release(be, ttab);
	}
	moe_infer_ws_free(model, ws);
	free(idx);
	free(di);
	free(pi);
	return pairs / t0;
}

int
main(int argc, char **argv)
{
	moe_cuda_library lib;
	moe_error	err;
	moe_backend *cpu,
			   *gpu;
	moe_rng		rng;
	char		desc[160];
	int			cpu_epochs = argc > 2 ? atoi(argv[2]) : 1,
				gpu_epochs = argc > 3 ? atoi(argv[3]) : 5,
				screen = argc > 4 ? atoi(argv[4]) : 100000,
				sample = argc > 5 ? atoi(argv[5]) : 1000;
	float	   *drugs,
			   *targets,
			   *screen_drugs;
	moe_config	cfg;
	moe_model  *mc,
			   *mg;
	double		cpu_s,
				gpu_s,
				cpu_pps,
				gpu_pps;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s PATH/moe_pg_cuda.so [cpu_epochs gpu_epochs screen_drugs cpu_sample_drugs]\n",
				argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "--cpu-only") == 0)
	{
		/* checks the program itself on a machine without a GPU: a second
		 * CPU backend stands in for the GPU (its figures mean nothing) */
		gpu = moe_backend_cpu_create(0);
		snprintf(desc, sizeof(desc), "the CPU again (--cpu-only: a dry run of this program)");
	}
	else if (moe_cuda_open(argv[1], &lib, &err) != MOE_CUDA_AVAILABLE)
	{
		printf("SKIP: %s\n", err.message);
		return 0;
	}
	else if ((gpu = moe_cuda_create(&lib, 0, &err)) == NULL)
		die("CUDA backend", &err);
	else
		moe_cuda_describe(&lib, 0, desc, sizeof(desc));
	cpu = moe_backend_cpu_create(0);
	printf("# gpu_bench: CPU (OpenBLAS, all cores) against %s\n", desc);

	moe_rng_seed(&rng, 7);
	drugs = random_drugs(&rng, N_DRUGS);
	targets = random_targets(&rng, N_TARGETS);

	/* 1. training */
	cpu_s = train_epochs(cpu, drugs, targets, cpu_epochs);
	gpu_s = train_epochs(gpu, drugs, targets, gpu_epochs);
	printf("train_seconds_per_epoch cpu %.3f gpu %.3f speedup %.1fx (Davis shape, default model, batch 256)\n",
		   cpu_s, gpu_s, cpu_s / gpu_s);

	/* 2. bulk scoring of the Davis pairs */
	moe_config_defaults(&cfg, DRUG_DIM, PROTEIN_DIM);
	if (moe_model_create(&cfg, cpu, &mc, &err) != MOE_OK || moe_model_create(&cfg, gpu, &mg, &err) != MOE_OK)
		die("model", &err);
	moe_model_init(mc, 3, NULL);
	moe_model_init(mg, 3, NULL);
	cpu_pps = score_pairs(cpu, mc, drugs, N_DRUGS, targets, N_TARGETS, 256);
	gpu_pps = score_pairs(gpu, mg, drugs, N_DRUGS, targets, N_TARGETS, 16384);
	printf("davis_pairs_per_second cpu %.0f gpu %.0f speedup %.1fx (%d pairs)\n", cpu_pps, gpu_pps,
		   gpu_pps / cpu_pps, N_DRUGS * N_TARGETS);

	/* 3. screening new drugs against every target */
	screen_drugs = random_drugs(&rng, screen);
	cpu_pps = score_pairs(cpu, mc, screen_drugs, sample < screen ? sample : screen, targets, N_TARGETS, 256);
	gpu_pps = score_pairs(gpu, mg, screen_drugs, screen, targets, N_TARGETS, 16384);
	printf("screening %d drugs x %d targets: cpu %.0f s (measured on %d drugs) gpu %.1f s; pairs/s cpu %.0f gpu %.0f\n",
		   screen, N_TARGETS, (double) screen * N_TARGETS / cpu_pps, sample, (double) screen * N_TARGETS / gpu_pps,
		   cpu_pps, gpu_pps);

	moe_model_free(mc);
	moe_model_free(mg);
	free(drugs);
	free(targets);
	free(screen_drugs);
	gpu->destroy(gpu);
	cpu->destroy(cpu);
	return 0;
}
