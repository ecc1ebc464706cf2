/*
 * test_train.c — the trainer learns, is bit-for-bit reproducible, keeps the
 * best epoch; inference is row-independent; only routed experts compute.
 */
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "predict.h"
#include "rng.h"
#include "train.h"
#include "unit.h"

static moe_backend *be;

/* A toy problem: label depends on the drug through a cluster-specific
 * direction chosen by the protein's cluster. */
typedef struct toy
{
	int			nd, np, dd, dp;
	float	   *drug, *protein;
	int32_t    *tr_d, *tr_p, *va_d, *va_p;
	float	   *tr_y, *va_y;
	int			ntr, nva;
} toy;

static void
toy_make(toy *t, uint64_t seed)
{
	moe_rng		rng;
	float		w[3][8];
	int			n = 0;

	t->nd = 30, t->np = 12, t->dd = 8, t->dp = 6;
	t->drug = malloc(sizeof(float) * t->nd * t->dd);
	t->protein = malloc(sizeof(float) * t->np * t->dp);
	moe_rng_seed(&rng, seed);
	for (int i = 0; i < t->nd * t->dd; i++)
		t->drug[i] = moe_rng_normal(&rng);
	for (int c = 0; c < 3; c++)
		for (int j = 0; j < 8; j++)
			w[c][j] = moe_rng_normal(&rng) * 0.5f;
	for (int p = 0; p < t->np; p++)
		for (int j = 0; j < t->dp; j++)
			t->protein[p * t->dp + j] = (j == p % 3 ? 3.0f : 0.0f) + 0.3f * moe_rng_normal(&rng);
	t->tr_d = malloc(sizeof(int32_t) * 360);
	t->tr_p = malloc(sizeof(int32_t) * 360);
	t->tr_y = malloc(sizeof(float) * 360);
	t->va_d = malloc(sizeof(int32_t) * 360);
	t->va_p = malloc(sizeof(int32_t) * 360);
	t->va_y = malloc(sizeof(float) * 360);
	t->ntr = t->nva = 0;
	for (int d = 0; d < t->nd; d++)
		for (int p = 0; p < t->np; p++, n++)
		{
			float		y = 6.0f;

			for (int j = 0; j < 8; j++)
				y += w[p % 3][j] * t->drug[d * 8 + j];
			if (n % 5 == 0)
			{
				t->va_d[t->nva] = d, t->va_p[t->nva] = p, t->va_y[t->nva++] = y;
			}
			else
			{
				t->tr_d[t->ntr] = d, t->tr_p[t->ntr] = p, t->tr_y[t->ntr++] = y;
			}
		}
}

static void
toy_free(toy *t)
{
	free(t->drug), free(t->protein), free(t->tr_d), free(t->tr_p), free(t->tr_y);
	free(t->va_d), free(t->va_p), free(t->va_y);
}

static moe_train_data
toy_data(toy *t)
{
	moe_train_data d = {t->nd, t->dd, t->drug, t->np, t->dp, t->protein,
		{t->ntr, t->tr_d, t->tr_p, t->tr_y},
	{t->nva, t->va_d, t->va_p, t->va_y}};

	return d;
}

static void
small_arch(moe_config *cfg, int dd, int dp)
{
	moe_config_defaults(cfg, dd, dp);
	cfg->drug_hidden[0] = 32;
	cfg->protein_hidden[0] = 16;
	cfg->gate_hidden[0] = 32;
	cfg->gate_hidden[1] = 16;
	cfg->expert_hidden[0] = 32;
	cfg->expert_hidden[1] = 16;
	cfg->n_experts = 3;
	cfg->top_k = 2;
}

static double
variance(const float *y, int n)
{
	double		m = 0,
				v = 0;

	for (int i = 0; i < n; i++)
		m += y[i];
	m /= n;
	for (int i = 0; i < n; i++)
		v += (y[i] - m) * (y[i] - m);
	return v / n;
}

/* Train to the end; returns the trainer (caller frees). */
static moe_trainer *
train_toy(toy *t, moe_train_options *opt, moe_epoch_report *last)
{
	moe_config	arch;
	moe_train_data d = toy_data(t);
	moe_trainer *tr = NULL;
	moe_error	err;

	small_arch(&arch, t->dd, t->dp);
	if (moe_trainer_create(&arch, opt, &d, be, NULL, NULL, &tr, &err) != MOE_OK)
	{
		fprintf(stderr, "trainer: %s\n", err.message);
		return NULL;
	}
	while (!moe_trainer_done(tr))
		if (moe_trainer_epoch(tr, last, &err) != MOE_OK)
		{
			fprintf(stderr, "epoch: %s\n", err.message);
			break;
		}
	return tr;
}

static void
test_learns_and_keeps_best_epoch(void)
{
	toy			t;
	moe_train_options opt;
	moe_epoch_report last;
	moe_trainer *tr;
	double		var;

	toy_make(&t, 1);
	moe_train_options_defaults(&opt);
	opt.epochs = 60;
	opt.batch_size = 32;
	opt.lr = 3e-3f;
	opt.patience = 0;
	tr = train_toy(&t, &opt, &last);
	CHECK(tr != NULL);
	if (tr == NULL)
		return;
	var = variance(t.va_y, t.nva);
	printf("  toy: validation variance %.4f, best validation MSE %.4f at epoch %d\n",
		   var, last.best_val_mse, last.best_epoch);
	CHECK(last.best_val_mse < 0.2 * var);
	CHECK(last.best_val_mse <= last.val_mse);
	CHECK_INT(last.epoch, 60);

	/* the returned model predicts the best epoch's validation MSE */
	{
		moe_model  *m = moe_trainer_best_model(tr);
		moe_infer_ws *ws;
		moe_error	err;
		float	   *pred = malloc(sizeof(float) * t.nva);
		moe_rows	rows = {t.nva, t.va_d, t.va_p, t.va_y};
		double		mse = 0;

		moe_infer_ws_create(m, 64, &ws, &err);
		CHECK_INT(moe_predict_rows(m, ws, t.drug, t.protein, &rows, pred, &err), MOE_OK);
		for (int i = 0; i < t.nva; i++)
			mse += (pred[i] - t.va_y[i]) * (pred[i] - t.va_y[i]);
		CHECK_NEAR(mse / t.nva, last.best_val_mse, 1e-5);
		free(pred);
		moe_infer_ws_free(m, ws);
	}
	moe_trainer_free(tr);
	toy_free(&t);
}

static void
test_same_seed_same_bits(void)
{
	toy			t;
	moe_train_options opt;
	moe_epoch_report last;
	moe_trainer *a,
			   *b,
			   *c;

	toy_make(&t, 2);
	moe_train_options_defaults(&opt);
	opt.epochs = 4;
	opt.batch_size = 50;
	a = train_toy(&t, &opt, &last);
	b = train_toy(&t, &opt, &last);
	opt.seed = 43;
	c = train_toy(&t, &opt, &last);
	if (a && b && c)
	{
		moe_model  *ma = moe_trainer_best_model(a),
				   *mb = moe_trainer_best_model(b),
				   *mc = moe_trainer_best_model(c);
		size_t		n = sizeof(float) * ma->layout.n_params;

		CHECK(memcmp(ma->params, mb->params, n) == 0);
		CHECK(memcmp(ma->params, mc->params, n) != 0);
	}
	moe_trainer_free(a);
	moe_trainer_free(b);
	moe_trainer_free(c);
	toy_free(&t);
}

static void
test_early_stopping(void)
{
	toy			t;
	moe_train_options opt;
	moe_epoch_report last;
	moe_trainer *tr;

	toy_make(&t, 3);
	moe_train_options_defaults(&opt);
	opt.epochs = 500;
	opt.batch_size = 64;
	opt.lr = 1e-2f;
	opt.lr_schedule = MOE_LR_CONSTANT;
	opt.patience = 3;
	tr = train_toy(&t, &opt, &last);
	CHECK(tr != NULL);
	if (tr)
	{
		CHECK(moe_trainer_done(tr));
		CHECK(last.epoch < 500);
		CHECK_INT(last.epoch - last.best_epoch, 3);
	}
	moe_trainer_free(tr);
	toy_free(&t);
}

static bool
stop_now(void *ctx)
{
	return ++*(int *) ctx > 2;
}

static void
test_interrupt_stops_between_steps(void)
{
	toy			t;
	moe_config	arch;
	moe_train_options opt;
	moe_train_data d;
	moe_trainer *tr;
	moe_epoch_report rep;
	moe_error	err;
	int			polls = 0;

	toy_make(&t, 4);
	d = toy_data(&t);
	small_arch(&arch, t.dd, t.dp);
	moe_train_options_defaults(&opt);
	opt.batch_size = 16;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, stop_now, &polls, &tr, &err), MOE_OK);
	CHECK_INT(moe_trainer_epoch(tr, &rep, &err), MOE_ERR_CANCELLED);
	CHECK_INT(polls, 3);
	moe_trainer_free(tr);
	toy_free(&t);
}

static void
test_bad_options_and_data(void)
{
	toy			t;
	moe_config	arch;
	moe_train_options opt;
	moe_train_data d;
	moe_trainer *tr;
	moe_error	err;

	toy_make(&t, 5);
	small_arch(&arch, t.dd, t.dp);
	moe_train_options_defaults(&opt);
	d = toy_data(&t);

	opt.lr = -1;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "lr") != NULL);
	moe_train_options_defaults(&opt);
	arch.top_k = 4;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "top_k") != NULL);
	small_arch(&arch, t.dd, t.dp);
	arch.drug_dim = 9;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_INVALID);
	small_arch(&arch, t.dd, t.dp);
	t.tr_y[7] = NAN;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_DATA);
	CHECK(strstr(err.message, "row 8") != NULL);
	t.tr_y[7] = 1;
	t.tr_p[3] = 99;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_INVALID);
	d.train.n = 0;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &tr, &err), MOE_ERR_DATA);
	toy_free(&t);
}

/* A small random model for the inference tests. */
static moe_model *
random_model(int dd, int dp, int experts, int k, uint64_t seed)
{
	moe_config	cfg;
	moe_model  *m;
	moe_error	err;

	moe_config_defaults(&cfg, dd, dp);
	cfg.drug_hidden[0] = 24;
	cfg.protein_hidden[0] = 20;
	cfg.gate_hidden[0] = 16;
	cfg.gate_hidden[1] = 8;
	cfg.expert_hidden[0] = 12;
	cfg.expert_hidden[1] = 6;
	cfg.n_experts = experts;
	cfg.top_k = k;
	cfg.label_mean = 6.0f;
	cfg.label_std = 1.5f;
	moe_model_create(&cfg, be, &m, &err);
	moe_model_init(m, seed, NULL);
	return m;
}

/* A row's prediction must not depend on the other rows of its batch. */
static void
test_inference_is_row_independent(void)
{
	moe_model  *m = random_model(20, 30, 4, 2, 8);
	moe_infer_ws *ws;
	moe_error	err;
	moe_rng		rng;
	const int	M = 37;
	float	   *drug = malloc(sizeof(float) * M * 20),
			   *protein = malloc(sizeof(float) * M * 30),
				batch[37],
				one;
	int			differ = 0;

	moe_infer_ws_create(m, M, &ws, &err);
	moe_rng_seed(&rng, 8);
	for (int i = 0; i < M * 20; i++)
		drug[i] = moe_rng_normal(&rng);
	for (int i = 0; i < M * 30; i++)
		protein[i] = moe_rng_normal(&rng);
	CHECK_INT(moe_infer_vectors(m, ws, drug, protein, M, batch, NULL, NULL, &err), MOE_OK);
	for (int i = 0; i < M; i++)
	{
		CHECK_INT(moe_infer_vectors(m, ws, drug + i * 20, protein + i * 30, 1, &one, NULL, NULL, &err), MOE_OK);
		differ += one != batch[i];
	}
	CHECK_INT(differ, 0);
	free(drug), free(protein);
	moe_infer_ws_free(m, ws);
	moe_model_free(m);
}

/*
 * Six random drugs of 10 values, four random proteins of 14, and the 24
 * pairs of every drug with every protein.
 */
static void
six_by_four(uint64_t seed, float drugs[60], float proteins[56], int32_t di[24], int32_t pi[24])
{
	moe_rng		rng;

	moe_rng_seed(&rng, seed);
	for (int i = 0; i < 60; i++)
		drugs[i] = moe_rng_normal(&rng);
	for (int i = 0; i < 56; i++)
		proteins[i] = moe_rng_normal(&rng);
	for (int i = 0; i < 24; i++)
		di[i] = i % 6, pi[i] = i / 6;
}

/*
 * Parts computed once and reused (what the SQL layer caches), parts of a
 * whole batch, and rows with repeated entities: the same bits.
 */
static void
test_cached_parts_give_the_same_bits(void)
{
	moe_model  *m = random_model(10, 14, 5, 2, 3);
	moe_infer_ws *ws;
	moe_error	err;
	int			PF = moe_entity_part_floats(m);
	float		drugs[6 * 10], proteins[4 * 14], direct[24], cached[24];
	float	   *dparts = malloc(sizeof(float) * 6 * PF),
			   *pparts = malloc(sizeof(float) * 4 * PF);
	int32_t		di[24], pi[24], all_d[6] = {0, 1, 2, 3, 4, 5}, all_p[4] = {0, 1, 2, 3};
	int			differ = 0;

	moe_infer_ws_create(m, 24, &ws, &err);
	six_by_four(4, drugs, proteins, di, pi);
	CHECK_INT(moe_infer_rows(m, ws, drugs, di, proteins, pi, 24, NULL, &err), MOE_OK);
	memcpy(direct, moe_infer_results(ws)->pred, sizeof(direct));

	/* each entity's part computed on its own, as a per-row cache would */
	for (int d = 0; d < 6; d++)
		CHECK_INT(moe_entity_parts(m, ws, MOE_DRUG, drugs, &all_d[d], 1, dparts + d * PF, &err), MOE_OK);
	CHECK_INT(moe_entity_parts(m, ws, MOE_PROTEIN, proteins, all_p, 4, pparts, &err), MOE_OK);
	for (int i = 0; i < 24; i++)
	{
		CHECK_INT(moe_infer_pairs(m, ws, dparts, &di[i], pparts, &pi[i], 1, NULL, &err), MOE_OK);
		cached[i] = moe_infer_results(ws)->pred[0];
		differ += cached[i] != direct[i];
	}
	CHECK_INT(differ, 0);

	/* every entity's part once, the pairs in batches smaller than the rows
	 * (validation's path): the same bits again */
	{
		moe_infer_ws *small;
		moe_rows	rows = {24, di, pi, NULL};
		float		whole[24];

		moe_infer_ws_create(m, 5, &small, &err);
		CHECK_INT(moe_predict_rows_whole(m, small, drugs, 6, proteins, 4, &rows, dparts, pparts, whole, &err),
				  MOE_OK);
		differ = 0;
		for (int i = 0; i < 24; i++)
			differ += whole[i] != direct[i];
		CHECK_INT(differ, 0);
		moe_infer_ws_free(m, small);
	}
	free(dparts), free(pparts);
	moe_infer_ws_free(m, ws);
	moe_model_free(m);
}

/*
 * Row panels (a lone pair skipping its zero hidden inputs) give the bits of
 * the dense product, alone and in a batch, with widths that fill no panel
 * chunk evenly and a gate deep enough to have two panelled blocks; and
 * they are what a lone pair reads (spoiling them changes its answer).
 */
static void
test_row_panels_give_the_same_bits(void)
{
	moe_config	cfg;
	moe_model  *m;
	moe_infer_ws *ws;
	moe_error	err;
	float		drugs[6 * 10], proteins[4 * 14], batch[24], dense_alone[24];
	int32_t		di[24], pi[24];
	int			differ = 0,
				spoiled = 0;

	moe_config_defaults(&cfg, 10, 14);
	cfg.drug_hidden[0] = 24;
	cfg.protein_hidden[0] = 20;
	cfg.n_gate_layers = 3;
	cfg.gate_hidden[0] = 96;
	cfg.gate_hidden[1] = 70;
	cfg.gate_hidden[2] = 33;
	cfg.expert_hidden[0] = 80;
	cfg.expert_hidden[1] = 65;
	cfg.n_experts = 5;
	cfg.top_k = 2;
	CHECK_INT(moe_model_create(&cfg, be, &m, &err), MOE_OK);
	moe_model_init(m, 12, NULL);
	CHECK(moe_row_panels_floats(m) > 0);
	moe_infer_ws_create(m, 24, &ws, &err);
	six_by_four(5, drugs, proteins, di, pi);
	CHECK_INT(moe_infer_rows(m, ws, drugs, di, proteins, pi, 24, NULL, &err), MOE_OK);
	memcpy(batch, moe_infer_results(ws)->pred, sizeof(batch));
	for (int i = 0; i < 24; i++)
	{
		CHECK_INT(moe_infer_rows(m, ws, drugs, &di[i], proteins, &pi[i], 1, NULL, &err), MOE_OK);
		dense_alone[i] = moe_infer_results(ws)->pred[0];
	}

	CHECK_INT(moe_model_make_row_panels(m, &err), MOE_OK);
	for (int i = 0; i < 24; i++)
	{
		float		alone;

		CHECK_INT(moe_infer_rows(m, ws, drugs, &di[i], proteins, &pi[i], 1, NULL, &err), MOE_OK);
		alone = moe_infer_results(ws)->pred[0];
		differ += alone != batch[i] || alone != dense_alone[i];
	}
	CHECK_INT(differ, 0);

	memset(m->owned_row_panels, 0, sizeof(float) * moe_row_panels_floats(m));
	for (int i = 0; i < 24; i++)
	{
		CHECK_INT(moe_infer_rows(m, ws, drugs, &di[i], proteins, &pi[i], 1, NULL, &err), MOE_OK);
		spoiled += moe_infer_results(ws)->pred[0] != batch[i];
	}
	CHECK(spoiled > 0);
	moe_infer_ws_free(m, ws);
	moe_model_free(m);
}

/* Every expert's output, weighted over the selected ones, is the
 * prediction; and inference agrees with the training forward (no dropout)
 * up to the difference between BLAS and the row-independent product. */
static void
test_outputs_and_training_forward_agree(void)
{
	moe_model  *m = random_model(8, 9, 4, 2, 6);
	moe_infer_ws *iws;
	moe_workspace *tws;
	moe_error	err;
	moe_rng		rng;
	float		drugs[5 * 8], proteins[5 * 9], outputs[5 * 4], pred[5], train_pred[5];
	int32_t		idx[5] = {0, 1, 2, 3, 4};

	m->cfg.dropout = 0.0f;
	moe_infer_ws_create(m, 5, &iws, &err);
	moe_workspace_create(m, 5, &tws, &err);
	moe_rng_seed(&rng, 9);
	for (int i = 0; i < 40; i++)
		drugs[i] = moe_rng_normal(&rng);
	for (int i = 0; i < 45; i++)
		proteins[i] = moe_rng_normal(&rng);
	CHECK_INT(moe_infer_rows(m, iws, drugs, idx, proteins, idx, 5, outputs, &err), MOE_OK);
	memcpy(pred, moe_infer_results(iws)->pred, sizeof(pred));
	for (int r = 0; r < 5; r++)
	{
		const moe_infer_out *o = moe_infer_results(iws);
		double		sum = 0;

		for (int s = 0; s < 2; s++)
			sum += o->sel_w[r * 2 + s] * outputs[r * 4 + o->host_sel[r * 2 + s]];
		CHECK_NEAR(sum, pred[r], 1e-4);
	}
	CHECK_INT(moe_forward(m, tws, drugs, proteins, idx, idx, 5, 0, &err), MOE_OK);
	for (int r = 0; r < 5; r++)
	{
		train_pred[r] = m->cfg.label_mean + m->cfg.label_std * tws->pred[r];
		CHECK_NEAR(train_pred[r], pred[r], 1e-4);
	}
	moe_infer_ws_free(m, iws);
	moe_workspace_free(m, tws);
	moe_model_free(m);
}

/* Experts no row was routed to get exactly zero gradients, and routing
 * reports exactly what forward used. */
static void
test_only_routed_experts_compute(void)
{
	moe_config	cfg;
	moe_model  *m;
	moe_workspace *ws;
	moe_error	err;
	float		drug[8] = {1, 2, 3, 4, 5, 6, 7, 8},
				protein[6] = {1, 0, 0, 0, 1, 0},
				d_pred[2] = {1, -1};
	int32_t		di[2] = {0, 1}, pi[2] = {0, 1};
	float	   *grads;
	int			used[8] = {0};

	moe_config_defaults(&cfg, 4, 3);
	cfg.drug_hidden[0] = 8;
	cfg.protein_hidden[0] = 8;
	cfg.gate_hidden[0] = 8;
	cfg.gate_hidden[1] = 8;
	cfg.expert_hidden[0] = 8;
	cfg.expert_hidden[1] = 8;
	cfg.n_experts = 8;
	cfg.top_k = 1;
	moe_model_create(&cfg, be, &m, &err);
	moe_model_init(m, 3, NULL);
	moe_workspace_create(m, 2, &ws, &err);
	grads = malloc(sizeof(float) * m->layout.n_params);
	for (size_t i = 0; i < m->layout.n_params; i++)
		grads[i] = 123.0f;		/* must be overwritten */
	CHECK_INT(moe_forward(m, ws, drug, protein, di, pi, 2, 7, &err), MOE_OK);
	CHECK_INT(moe_backward(m, ws, grads, d_pred, NULL, &err), MOE_OK);
	used[ws->host_sel_idx[0]] = used[ws->host_sel_idx[1]] = 1;
	for (int e = 0; e < 8; e++)
	{
		const moe_mlp_layout *x = &m->layout.expert[e];
		size_t		from = x->block[0].W,
					to = x->head_b + 1;
		double		sum = 0;
		int			stale = 0;

		for (size_t i = from; i < to; i++)
		{
			sum += fabs(grads[i]);
			stale += grads[i] == 123.0f;
		}
		CHECK_INT(stale, 0);
		if (used[e])
			CHECK(sum > 0);
		else
			CHECK(sum == 0);
	}
	free(grads);
	moe_workspace_free(m, ws);
	moe_model_free(m);
}

/*
 * ema_decay: after one step the kept weights are the warm-up average
 * d init + (1 - d) p1 with d = (1 + 1) / (10 + 1), where p1 are the weights
 * of the same run without averaging (averaging never changes training).
 */
static void
test_weight_average(void)
{
	toy			t;
	moe_config	arch;
	moe_train_options opt;
	moe_epoch_report last;
	moe_train_data d;
	moe_trainer *init_tr = NULL,
			   *plain,
			   *avg;
	moe_error	err;

	toy_make(&t, 7);
	moe_train_options_defaults(&opt);
	opt.epochs = 1;
	opt.batch_size = 4096;		/* one step */
	d = toy_data(&t);
	small_arch(&arch, t.dd, t.dp);
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &init_tr, &err), MOE_OK);
	plain = train_toy(&t, &opt, &last);
	opt.ema_decay = 0.99f;
	avg = train_toy(&t, &opt, &last);
	if (init_tr && plain && avg)
	{
		const float *p0 = moe_trainer_best_model(init_tr)->params,
				   *p1 = moe_trainer_best_model(plain)->params,
				   *pa = moe_trainer_best_model(avg)->params;
		size_t		n = moe_trainer_best_model(plain)->layout.n_params;
		double		dd = 2.0 / 11.0,
					worst = 0.0;
		int			moved = 0;

		/* the learnt parameters: the input statistics and the aux-free
		 * selection bias (moved by the default balancing) are not averaged */
		for (size_t i = moe_trainer_best_model(plain)->layout.trainable_offset; i < n; i++)
		{
			double		want = dd * p0[i] + (1.0 - dd) * p1[i],
						diff = fabs(pa[i] - want);

			if (diff > worst)
				worst = diff;
			moved += p0[i] != p1[i];
		}
		CHECK(moved > 0);
		CHECK(worst < 1e-6);
	}
	moe_trainer_free(init_tr);
	moe_trainer_free(plain);
	moe_trainer_free(avg);

	/* out of range */
	moe_train_options_defaults(&opt);
	opt.ema_decay = 1.0f;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &init_tr, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "ema_decay") != NULL);
	opt.ema_decay = NAN;
	CHECK_INT(moe_trainer_create(&arch, &opt, &d, be, NULL, NULL, &init_tr, &err), MOE_ERR_INVALID);
	toy_free(&t);
}

/*
 * Encoder panels (sparse inputs at inference): with panels, every entity
 * whose vector is mostly zeros goes through its non-zeros, a dense one
 * through the dense product; either way a pair scored alone and in a batch
 * of any composition gets the same bits, and the answers stay within
 * rounding of the dense path's.
 */
static void
test_sparse_inputs_give_the_same_bits(void)
{
	const int	nd = 7,
				np = 5,
				Dd = 300,
				Dp = 400,
				M = 35;
	moe_config	cfg;
	moe_model  *m;
	moe_infer_ws *ws;
	moe_error	err;
	moe_rng		rng;
	float	   *drugs = calloc((size_t) nd * Dd, sizeof(float)),
			   *proteins = calloc((size_t) np * Dp, sizeof(float)),
				dense[35],
				batch[35],
				half[35];
	int32_t		di[35],
				pi[35];
	int			differ = 0;
	double		worst = 0;

	moe_config_defaults(&cfg, Dd, Dp);
	cfg.drug_hidden[0] = 32;
	cfg.protein_hidden[0] = 24;
	cfg.gate_hidden[0] = 16;
	cfg.gate_hidden[1] = 8;
	cfg.expert_hidden[0] = 16;
	cfg.expert_hidden[1] = 8;
	CHECK_INT(moe_model_create(&cfg, be, &m, &err), MOE_OK);
	moe_model_init(m, 4, NULL);
	moe_rng_seed(&rng, 9);
	{
		float	   *sh = malloc(sizeof(float) * Dp),
				   *sc = malloc(sizeof(float) * Dp);

		for (int j = 0; j < Dp; j++)
			sh[j] = 0.2f * moe_rng_normal(&rng), sc[j] = 0.5f + moe_rng_uniform(&rng);
		moe_model_set_input_norm(m, sh, sc, sh, sc);
		free(sh);
		free(sc);
	}
	/* drugs 5 % non-zero (drug 0 all zeros), proteins 15 % (protein 2 dense) */
	for (int i = 0; i < nd * Dd; i++)
		if (i >= Dd && moe_rng_uniform(&rng) < 0.05f)
			drugs[i] = 1.0f + moe_rng_uniform(&rng);
	for (int i = 0; i < np * Dp; i++)
		if (i / Dp == 2 || moe_rng_uniform(&rng) < 0.15f)
			proteins[i] = moe_rng_normal(&rng);
	for (int i = 0; i < M; i++)
		di[i] = i % nd, pi[i] = (i / nd) % np;
	CHECK_INT(moe_infer_ws_create(m, M, &ws, &err), MOE_OK);
	CHECK_INT(moe_infer_rows(m, ws, drugs, di, proteins, pi, M, NULL, &err), MOE_OK);
	memcpy(dense, moe_infer_results(ws)->pred, sizeof(dense));

	CHECK_INT(moe_model_make_row_panels(m, &err), MOE_OK);
	CHECK_INT(moe_infer_rows(m, ws, drugs, di, proteins, pi, M, NULL, &err), MOE_OK);
	memcpy(batch, moe_infer_results(ws)->pred, sizeof(batch));
	CHECK_INT(moe_infer_rows(m, ws, drugs, di, proteins, pi, 17, NULL, &err), MOE_OK);
	memcpy(half, moe_infer_results(ws)->pred, sizeof(float) * 17);
	CHECK_INT(moe_infer_rows(m, ws, drugs, di + 17, proteins, pi + 17, M - 17, NULL, &err), MOE_OK);
	memcpy(half + 17, moe_infer_results(ws)->pred, sizeof(float) * (M - 17));
	for (int i = 0; i < M; i++)
	{
		float		alone;
		double		d = fabs(batch[i] - dense[i]) / (1e-3 + fabs(dense[i]));

		CHECK_INT(moe_infer_rows(m, ws, drugs, &di[i], proteins, &pi[i], 1, NULL, &err), MOE_OK);
		alone = moe_infer_results(ws)->pred[0];
		differ += alone != batch[i] || half[i] != batch[i];
		worst = d > worst ? d : worst;
	}
	CHECK_INT(differ, 0);
	CHECK(worst < 1e-4);
	printf("  sparse inputs at inference: largest relative difference from the dense path %.2g\n", worst);
	moe_infer_ws_free(m, ws);
	moe_model_free(m);
	free(drugs);
	free(proteins);
}

/* The memory estimate that lets the SQL layer refuse a run before it
 * allocates: counted from the shapes alone, even for shapes far too large
 * to allocate, and covering at least the optimiser state. */
static void
test_trainer_bytes(void)
{
	toy			t;
	moe_config	arch;
	moe_train_options opt;
	moe_train_data d;
	moe_model  *shape;
	moe_error	err;
	size_t		small,
				with_average,
				huge,
				np;

	toy_make(&t, 3);
	d = toy_data(&t);
	small_arch(&arch, t.dd, t.dp);
	moe_train_options_defaults(&opt);
	CHECK(moe_trainer_bytes(&arch, &opt, &d, &small, &err) == MOE_OK);
	CHECK(moe_model_wrap(&arch, be, NULL, &shape, &err) == MOE_OK);
	np = shape->layout.n_params;
	/* parameters, gradients, two moments, the best copy; workspaces on top */
	CHECK(small > 5 * sizeof(float) * np);
	CHECK(small < 5 * sizeof(float) * np + moe_workspace_bytes(shape, 256) + moe_infer_ws_bytes(shape, 256) +
		  (size_t) 64 * 1024);
	CHECK(moe_workspace_bytes(shape, 512) > moe_workspace_bytes(shape, 256));
	moe_model_free(shape);
	opt.ema_decay = 0.99f;
	CHECK(moe_trainer_bytes(&arch, &opt, &d, &with_average, &err) == MOE_OK);
	CHECK_INT(with_average - small, 2 * sizeof(float) * np);	/* the average and its spare */
	/* sparse first layers: the tables (counted, not built, by the estimate)
	 * and their workspaces, here against tables really built */
	{
		size_t		dense,
					sparse,
					expected = 0;
		int			bs = opt.batch_size < d.train.n ? opt.batch_size : d.train.n;

		opt.sparse_inputs = MOE_SPARSE_OFF;
		CHECK(moe_trainer_bytes(&arch, &opt, &d, &dense, &err) == MOE_OK);
		opt.sparse_inputs = MOE_SPARSE_ON;
		CHECK(moe_trainer_bytes(&arch, &opt, &d, &sparse, &err) == MOE_OK);
		CHECK(moe_model_wrap(&arch, be, NULL, &shape, &err) == MOE_OK);
		for (int i = 0; i < 2; i++)
		{
			moe_sparse_table table;
			int64_t		widest = 0;

			CHECK_INT(moe_sparse_table_build(i == 0 ? d.drug_vec : d.protein_vec,
											 i == 0 ? d.n_drugs : d.n_proteins,
											 i == 0 ? d.drug_dim : d.protein_dim, &table, &err), MOE_OK);
			for (int r = 0; r < table.n; r++)
				if (table.row_ptr[r + 1] - table.row_ptr[r] > widest)
					widest = table.row_ptr[r + 1] - table.row_ptr[r];
			expected += sizeof(int64_t) * ((size_t) table.n + 1) + (sizeof(int32_t) + sizeof(float)) * (size_t) table.nnz +
				moe_sparse_first_bytes(shape, i, table.n, widest, bs);
			moe_sparse_table_free(&table);
		}
		moe_model_free(shape);
		CHECK_INT(sparse - dense, expected);
		opt.sparse_inputs = MOE_SPARSE_AUTO;
	}
	for (int i = 0; i < MOE_MAX_LAYERS; i++)
		arch.drug_hidden[i] = arch.protein_hidden[i] = arch.gate_hidden[i] = MOE_MAX_WIDTH;
	arch.n_drug_layers = arch.n_protein_layers = arch.n_gate_layers = MOE_MAX_LAYERS;
	CHECK(moe_trainer_bytes(&arch, &opt, &d, &huge, &err) == MOE_OK);
	CHECK(huge > (size_t) 20 * 1024 * 1024 * 1024);	/* > 20 GB, and nothing was allocated */
	toy_free(&t);
}

int
main(void)
{
	be = moe_backend_cpu_create(1);
	RUN(test_learns_and_keeps_best_epoch);
	RUN(test_same_seed_same_bits);
	RUN(test_early_stopping);
	RUN(test_weight_average);
	RUN(test_interrupt_stops_between_steps);
	RUN(test_bad_options_and_data);
	RUN(test_inference_is_row_independent);
	RUN(test_cached_parts_give_the_same_bits);
	RUN(test_row_panels_give_the_same_bits);
	RUN(test_outputs_and_training_forward_agree);
	RUN(test_only_routed_experts_compute);
	RUN(test_trainer_bytes);
	RUN(test_sparse_inputs_give_the_same_bits);
	be->destroy(be);
	return unit_summary("test_train");
}
