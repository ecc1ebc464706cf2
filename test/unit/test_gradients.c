/*
 * test_gradients.c — every backward of the engine against central finite
 * differences.
 *
 * Tolerance: the engine computes in float32, so a central difference with
 * step h = 1e-3 carries rounding noise of about 1e-7 * |L| / h.  A gradient
 * passes when |numeric - analytic| <= 2e-3 + 2e-2 * |analytic|.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "balance.h"
#include "model.h"
#include "rng.h"
#include "unit.h"

#define H 1e-3f
#define ABS_TOL 2e-3
#define REL_TOL 2e-2

static moe_backend *be;

static void
fill_normal(float *x, size_t n, moe_rng *rng, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = moe_rng_normal(rng) * scale;
}

static double
dot(const float *a, const float *b, size_t n)
{
	double		s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double) a[i] * b[i];
	return s;
}

static int
grad_matches(double numeric, double analytic)
{
	return fabs(numeric - analytic) <= ABS_TOL + REL_TOL * fabs(analytic);
}

/* Check d(c . f(x))/dx for a function of x given as a callback. */
typedef double (*scalar_fn) (void *ctx);

static int
check_param(float *x, size_t n, const float *analytic, scalar_fn f, void *ctx, const char *what)
{
	int			bad = 0;

	for (size_t i = 0; i < n; i++)
	{
		float		saved = x[i];
		double		lp,
					lm,
					num;

		x[i] = saved + H;
		lp = f(ctx);
		x[i] = saved - H;
		lm = f(ctx);
		x[i] = saved;
		num = (lp - lm) / (2.0 * H);
		if (!grad_matches(num, analytic[i]))
		{
			if (bad < 5)
				fprintf(stderr, "  %s[%zu]: numeric %.6g analytic %.6g\n", what, i, num, analytic[i]);
			bad++;
		}
	}
	return bad;
}

/* ---- linear ------------------------------------------------------------ */

typedef struct
{
	int			M, N, K;
	float	   *in, *W, *b, *out, *c;
} linear_case;

static double
linear_loss(void *p)
{
	linear_case *t = p;

	be->linear_forward(be, t->out, t->in, t->W, t->b, t->M, t->N, t->K);
	return dot(t->out, t->c, (size_t) t->M * t->N);
}

static void
test_linear_backward(void)
{
	linear_case t = {5, 4, 3};
	moe_rng		rng;
	float	   *din, *dW, *db;

	moe_rng_seed(&rng, 1);
	t.in = malloc(sizeof(float) * 15);
	t.W = malloc(sizeof(float) * 12);
	t.b = malloc(sizeof(float) * 4);
	t.out = malloc(sizeof(float) * 20);
	t.c = malloc(sizeof(float) * 20);
	din = malloc(sizeof(float) * 15);
	dW = malloc(sizeof(float) * 12);
	db = malloc(sizeof(float) * 4);
	fill_normal(t.in, 15, &rng, 1);
	fill_normal(t.W, 12, &rng, 1);
	fill_normal(t.b, 4, &rng, 1);
	fill_normal(t.c, 20, &rng, 1);
	be->linear_backward(be, din, dW, db, t.c, t.in, t.W, t.M, t.N, t.K);
	CHECK_INT(check_param(t.in, 15, din, linear_loss, &t, "din"), 0);
	CHECK_INT(check_param(t.W, 12, dW, linear_loss, &t, "dW"), 0);
	CHECK_INT(check_param(t.b, 4, db, linear_loss, &t, "db"), 0);
	free(t.in), free(t.W), free(t.b), free(t.out), free(t.c), free(din), free(dW), free(db);
}

/* ---- layernorm --------------------------------------------------------- */

typedef struct
{
	int			M, N;
	float	   *in, *gamma, *beta, *out, *mean, *rstd, *c;
} ln_case;

static double
ln_loss(void *p)
{
	ln_case    *t = p;

	be->layernorm_forward(be, t->out, t->mean, t->rstd, t->in, t->gamma, t->beta, t->M, t->N);
	return dot(t->out, t->c, (size_t) t->M * t->N);
}

static void
test_layernorm_backward(void)
{
	ln_case		t = {4, 6};
	moe_rng		rng;
	size_t		n = 24;
	float	   *din = malloc(sizeof(float) * n),
			   *dg = malloc(sizeof(float) * 6),
			   *dbt = malloc(sizeof(float) * 6);

	moe_rng_seed(&rng, 2);
	t.in = malloc(sizeof(float) * n);
	t.out = malloc(sizeof(float) * n);
	t.c = malloc(sizeof(float) * n);
	t.gamma = malloc(sizeof(float) * 6);
	t.beta = malloc(sizeof(float) * 6);
	t.mean = malloc(sizeof(float) * 4);
	t.rstd = malloc(sizeof(float) * 4);
	fill_normal(t.in, n, &rng, 1);
	fill_normal(t.c, n, &rng, 1);
	fill_normal(t.gamma, 6, &rng, 1);
	fill_normal(t.beta, 6, &rng, 1);
	ln_loss(&t);
	be->layernorm_backward(be, din, dg, dbt, t.c, t.in, t.mean, t.rstd, t.gamma, t.M, t.N);
	CHECK_INT(check_param(t.in, n, din, ln_loss, &t, "din"), 0);
	CHECK_INT(check_param(t.gamma, 6, dg, ln_loss, &t, "dgamma"), 0);
	CHECK_INT(check_param(t.beta, 6, dbt, ln_loss, &t, "dbeta"), 0);
	free(t.in), free(t.out), free(t.c), free(t.gamma), free(t.beta), free(t.mean), free(t.rstd);
	free(din), free(dg), free(dbt);
}

/* ---- softmax with temperature ----------------------------------------- */

typedef struct
{
	int			M, E;
	float		T;
	float	   *z, *p, *c;
} sm_case;

static double
sm_loss(void *p)
{
	sm_case    *t = p;

	be->softmax_forward(be, t->p, t->z, t->M, t->E, t->T);
	return dot(t->p, t->c, (size_t) t->M * t->E);
}

static void
test_softmax_backward(void)
{
	float		temps[] = {1.0f, 0.5f, 2.0f};

	for (int ti = 0; ti < 3; ti++)
	{
		sm_case		t = {3, 5, temps[ti]};
		moe_rng		rng;
		float		z[15], p[15], c[15], dz[15];

		moe_rng_seed(&rng, 3 + ti);
		t.z = z, t.p = p, t.c = c;
		fill_normal(z, 15, &rng, 1);
		fill_normal(c, 15, &rng, 1);
		sm_loss(&t);
		be->softmax_backward(be, dz, c, p, t.M, t.E, t.T);
		CHECK_INT(check_param(z, 15, dz, sm_loss, &t, "dlogits"), 0);
		for (int m = 0; m < 3; m++)
		{
			double		s = 0;

			for (int e = 0; e < 5; e++)
				s += p[m * 5 + e];
			CHECK_NEAR(s, 1.0, 1e-6);
		}
	}
}

/* ---- top-k routing: ties, renormalisation and its adjoint ------------- */

static void
test_topk_ties_go_to_lower_index(void)
{
	float		probs[8] = {0.1f, 0.3f, 0.3f, 0.3f, 0.25f, 0.25f, 0.25f, 0.25f};
	int32_t		idx[4];
	float		w[4];

	be->topk_route(be, idx, w, probs, NULL, 2, 4, 2);
	CHECK_INT(idx[0], 1);
	CHECK_INT(idx[1], 2);
	CHECK_INT(idx[2], 0);
	CHECK_INT(idx[3], 1);
	CHECK_NEAR(w[0], 0.5, 1e-7);
	CHECK_NEAR(w[2] + w[3], 1.0, 1e-7);

	/* a bias steers the choice but not the weights */
	float		bias[4] = {0.0f, 0.0f, 0.0f, 0.2f};

	be->topk_route(be, idx, w, probs, bias, 1, 4, 2);
	CHECK_INT(idx[0], 3);
	CHECK_INT(idx[1], 1);
	CHECK_NEAR(w[0], 0.5, 1e-7);
}

typedef struct
{
	int			M, E, k;
	float	   *p, *c;
	int32_t    *idx;
	float	   *w;
} route_case;

static double
route_loss(void *ctx)
{
	route_case *t = ctx;

	/* renormalise with the selection held fixed */
	for (int m = 0; m < t->M; m++)
	{
		double		s = 0;

		for (int j = 0; j < t->k; j++)
			s += t->p[m * t->E + t->idx[m * t->k + j]];
		for (int j = 0; j < t->k; j++)
			t->w[m * t->k + j] = (float) (t->p[m * t->E + t->idx[m * t->k + j]] / s);
	}
	return dot(t->w, t->c, (size_t) t->M * t->k);
}

static void
test_route_backward(void)
{
	route_case	t = {4, 5, 3};
	float		p[20], c[12], w[12], dp[20], w2[12];
	int32_t		idx[12];
	moe_rng		rng;

	moe_rng_seed(&rng, 9);
	for (int i = 0; i < 20; i++)
		p[i] = 0.05f + moe_rng_uniform(&rng);
	fill_normal(c, 12, &rng, 1);
	be->topk_route(be, idx, w, p, NULL, t.M, t.E, t.k);
	t.p = p, t.c = c, t.idx = idx, t.w = w2;
	route_loss(&t);
	for (int i = 0; i < 12; i++)
		CHECK_NEAR(w2[i], w[i], 1e-6);
	be->route_backward(be, dp, c, w, idx, p, t.M, t.E, t.k);
	CHECK_INT(check_param(p, 20, dp, route_loss, &t, "dprobs"), 0);
}

/* ---- combine ----------------------------------------------------------- */

typedef struct
{
	int			M, k;
	float	   *w, *y, *out, *c;
} comb_case;

static double
comb_loss(void *ctx)
{
	comb_case  *t = ctx;

	be->combine_forward(be, t->out, t->w, t->y, t->M, t->k);
	return dot(t->out, t->c, t->M);
}

static void
test_combine_backward(void)
{
	comb_case	t = {5, 2};
	float		w[10], y[10], out[5], c[5], dw[10], dy[10];
	moe_rng		rng;

	moe_rng_seed(&rng, 11);
	fill_normal(w, 10, &rng, 1);
	fill_normal(y, 10, &rng, 1);
	fill_normal(c, 5, &rng, 1);
	t.w = w, t.y = y, t.out = out, t.c = c;
	be->combine_backward(be, dw, dy, c, w, y, 5, 2);
	CHECK_INT(check_param(w, 10, dw, comb_loss, &t, "dw"), 0);
	CHECK_INT(check_param(y, 10, dy, comb_loss, &t, "dy"), 0);
}

/* ---- mse --------------------------------------------------------------- */

typedef struct
{
	float	   *pred, *target;
	int			M;
} mse_case;

static double
mse_loss(void *ctx)
{
	mse_case   *t = ctx;

	return be->mse_forward_backward(be, NULL, t->pred, t->target, t->M);
}

static void
test_mse_backward(void)
{
	float		pred[7], target[7], d[7];
	mse_case	t = {pred, target, 7};
	moe_rng		rng;

	moe_rng_seed(&rng, 12);
	fill_normal(pred, 7, &rng, 1);
	fill_normal(target, 7, &rng, 1);
	be->mse_forward_backward(be, d, pred, target, 7);
	CHECK_INT(check_param(pred, 7, d, mse_loss, &t, "dpred"), 0);
}

/* ---- balancing losses ---------------------------------------------------- */

typedef struct
{
	moe_lb_method method;
	float	   *P, *f;
	int			E;
} bal_case;

static double
bal_loss(void *ctx)
{
	bal_case   *t = ctx;

	return moe_balance_loss(t->method, t->P, t->f, t->E, NULL);
}

static void
test_balance_losses(void)
{
	moe_lb_method methods[] = {MOE_LB_ENTROPY, MOE_LB_CV, MOE_LB_IMPORTANCE, MOE_LB_IMPORTANCE_E, MOE_LB_SWITCH};
	float		P[5] = {0.1f, 0.3f, 0.25f, 0.15f, 0.2f};
	float		f[5] = {0.05f, 0.35f, 0.3f, 0.1f, 0.2f};
	float		uniform[5] = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
	float		dP[5];

	for (int i = 0; i < 5; i++)
	{
		bal_case	t = {methods[i], P, f, 5};

		moe_balance_loss(methods[i], P, f, 5, dP);
		CHECK_INT(check_param(P, 5, dP, bal_loss, &t, moe_lb_method_name(methods[i])), 0);
	}
	/* values at perfect balance, from the formulas */
	CHECK_NEAR(moe_balance_loss(MOE_LB_ENTROPY, uniform, NULL, 5, NULL), -1.0, 1e-6);
	CHECK_NEAR(moe_balance_loss(MOE_LB_CV, uniform, NULL, 5, NULL), 0.0, 1e-6);
	CHECK_NEAR(moe_balance_loss(MOE_LB_IMPORTANCE, uniform, NULL, 5, NULL), 0.0, 1e-6);
	CHECK_NEAR(moe_balance_loss(MOE_LB_SWITCH, uniform, uniform, 5, NULL), 1.0, 1e-6);
	/* a hand value: P = (0.1, 0.3, 0.25, 0.15, 0.2), mean 0.2, unbiased
	 * variance 0.025/4 = 0.00625, cv = 0.0790569 / 0.2 */
	CHECK_NEAR(moe_balance_loss(MOE_LB_CV, P, NULL, 5, NULL), 0.39528471, 1e-6);
	CHECK_NEAR(moe_balance_loss(MOE_LB_IMPORTANCE, P, NULL, 5, NULL), 0.15625, 1e-6);
	CHECK_NEAR(moe_balance_loss(MOE_LB_IMPORTANCE_E, P, NULL, 5, NULL), 5 * 0.15625, 1e-6);
	/* collapse is the worst case for entropy: -H/log E -> 0 */
	float		collapsed[5] = {1.0f, 0, 0, 0, 0};

	CHECK_NEAR(moe_balance_loss(MOE_LB_ENTROPY, collapsed, NULL, 5, NULL), 0.0, 1e-6);

	moe_lb_method m;
	moe_error	err;

	CHECK_INT(moe_lb_method_parse("entropy", &m, &err), MOE_OK);
	CHECK_INT(m, MOE_LB_ENTROPY);
	CHECK_INT(moe_lb_method_parse("bogus", &m, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "entropy") != NULL);
}

/* The balanced assignment keeps each row a distribution, gives every
 * expert about its share of a collapsed batch, and leaves a batch that is
 * already balanced and confident where it was. */
static void
test_balanced_assignment(void)
{
	enum {M = 64, E = 4};
	float		p[M * E], q[M * E];
	double		work[M * E], col[E] = {0}, ce;

	/* collapsed: every row gives expert 0 about 0.9, a little preference
	 * among the others that varies by row */
	for (int r = 0; r < M; r++)
	{
		double		rest[E - 1], sum = 0;

		for (int e = 0; e < E - 1; e++)
			sum += rest[e] = 1.0 + ((r + e) % (E - 1) == 0 ? 1.0 : 0.0) + 0.01 * ((r * 7 + e) % 5);
		p[r * E] = 0.9f;
		for (int e = 1; e < E; e++)
			p[r * E + e] = (float) (0.1 * rest[e - 1] / sum);
	}
	ce = moe_balanced_assignment(p, M, E, q, work);
	CHECK(isfinite(ce) && ce > 0.0);
	for (int r = 0; r < M; r++)
	{
		double		row = 0;

		for (int e = 0; e < E; e++)
		{
			row += q[r * E + e];
			col[e] += q[r * E + e];
			CHECK(q[r * E + e] >= 0.0f);
		}
		CHECK_NEAR(row, 1.0, 1e-5);
	}
	for (int e = 0; e < E; e++)
		CHECK_NEAR(col[e], (double) M / E, 0.1 * M / E);
	/* the assignment follows the rows' preferences among the others */
	for (int r = 0; r < M; r++)
	{
		int			best = 1;

		for (int e = 2; e < E; e++)
			if (p[r * E + e] > p[r * E + best])
				best = e;
		for (int e = 1; e < E; e++)
			if (e != best)
				CHECK(q[r * E + best] > q[r * E + e]);
	}

	/* balanced and confident: q keeps the rows' own choices, first choice
	 * capped at MOE_ASSIGN_MAX_SHARE, the rest shared by the others */
	for (int r = 0; r < M; r++)
		for (int e = 0; e < E; e++)
			p[r * E + e] = e == r % E ? 0.97f : 0.01f;
	moe_balanced_assignment(p, M, E, q, work);
	for (int r = 0; r < M; r++)
		for (int e = 0; e < E; e++)
			CHECK_NEAR(q[r * E + e], e == r % E ? MOE_ASSIGN_MAX_SHARE : (1.0 - MOE_ASSIGN_MAX_SHARE) / (E - 1),
					   1e-6);

	/* one-hot rows: the cap's excess follows the probabilities, which are
	 * all zero but one, so it is shared evenly */
	for (int r = 0; r < M; r++)
		for (int e = 0; e < E; e++)
			p[r * E + e] = e == r % E ? 1.0f : 0.0f;
	ce = moe_balanced_assignment(p, M, E, q, work);
	CHECK(isfinite(ce));
	for (int r = 0; r < M; r++)
	{
		double		row = 0;

		for (int e = 0; e < E; e++)
			row += q[r * E + e];
		CHECK_NEAR(row, 1.0, 1e-6);
		CHECK_NEAR(q[r * E + r % E], MOE_ASSIGN_MAX_SHARE, 1e-6);
	}
}

/* ---- the whole model ---------------------------------------------------- */

typedef struct
{
	moe_model  *model;
	moe_workspace *ws;
	float	   *drug, *protein;
	int32_t    *di, *pi;
	int			M;
	float	   *c;				/* loss = c . pred + router terms */
	float		lambda;			/* weight of the balance loss on Pbar */
	moe_lb_method method;
	float		zloss_weight;
	float		row_entropy_weight;
	float		assign_weight;	/* of the cross-entropy to assign_q, held fixed */
	const float *assign_q;
	int32_t    *ref_sel;		/* selection of the unperturbed model */
	int			flipped;		/* evaluations whose selection changed */
} model_case;

/* -1/M sum q log p over the gate probabilities, q the fixed target */
static double
assignment_loss(const model_case *t)
{
	const int	E = t->model->cfg.n_experts;
	double		ce = 0.0;

	if (t->assign_q == NULL)
		return 0.0;
	for (int i = 0; i < t->M * E; i++)
		ce -= t->assign_q[i] * log(t->ws->probs[i]);
	return ce / t->M;
}

static double
model_loss(void *ctx)
{
	model_case *t = ctx;
	const moe_config *cfg = &t->model->cfg;
	int			nk = t->M * cfg->top_k;

	moe_forward(t->model, t->ws, t->drug, t->protein, t->di, t->pi, t->M, 1234, NULL);
	if (t->ref_sel != NULL && memcmp(t->ref_sel, t->ws->host_sel_idx, sizeof(int32_t) * nk) != 0)
		t->flipped++;
	return dot(t->ws->pred, t->c, t->M) +
		t->lambda * moe_balance_loss(t->method, t->ws->host_pbar, NULL, cfg->n_experts, NULL) +
		t->zloss_weight * t->ws->zloss - t->row_entropy_weight * t->ws->row_entropy +
		t->assign_weight * assignment_loss(t);
}

/*
 * Check every trainable parameter of a small model against central
 * differences.  Where a perturbation flips the top-k selection or crosses
 * a ReLU kink (the two one-sided differences disagree), the loss is not
 * differentiable within the step, so those parameters are counted, and
 * must be rare, rather than checked.
 */
/* Zero most of a table of n x dim values, keeping row dense_row whole and
 * leaving row zero_row all zeros: what sparse first layers meet. */
static void
sparsify(float *x, int n, int dim, int dense_row, int zero_row, moe_rng *rng)
{
	for (int r = 0; r < n; r++)
		for (int j = 0; j < dim; j++)
			if (r == zero_row || (r != dense_row && moe_rng_uniform(rng) < 0.6f))
				x[(size_t) r * dim + j] = 0.0f;
}

static void
check_model(bool noisy, float temperature, float zloss_weight, float row_entropy_weight,
			float assign_weight, bool sparse)
{
	moe_config	cfg;
	moe_model  *model;
	moe_workspace *ws;
	moe_error	err;
	moe_rng		rng;
	model_case	t;
	const int	M = 6;
	float		drug[4 * 5], protein[3 * 7], c[6];
	int32_t		di[6] = {0, 1, 2, 3, 0, 1}, pi[6] = {0, 1, 2, 0, 1, 2};
	float		d_pbar[MOE_MAX_EXPERTS];
	moe_router_grad router = {0};

	moe_config_defaults(&cfg, 5, 7);
	cfg.drug_hidden[0] = 6;
	cfg.protein_hidden[0] = 5;
	cfg.gate_hidden[0] = 8;
	cfg.gate_hidden[1] = 6;
	cfg.expert_hidden[0] = 7;
	cfg.expert_hidden[1] = 4;
	cfg.temperature = temperature;
	cfg.dropout = 0.2f;
	cfg.noisy_gating = noisy;
	CHECK_INT(moe_model_create(&cfg, be, &model, &err), MOE_OK);
	moe_model_init(model, 5, NULL);
	CHECK_INT(moe_workspace_create(model, M, &ws, &err), MOE_OK);

	moe_rng_seed(&rng, 77);
	fill_normal(drug, 20, &rng, 1);
	fill_normal(protein, 21, &rng, 1);
	fill_normal(c, 6, &rng, 1);
	if (sparse)
	{
		sparsify(drug, 4, 5, 1, 3, &rng);
		sparsify(protein, 3, 7, 0, 2, &rng);
	}
	/* a non-trivial input standardisation and selection bias, not trained */
	{
		float		ds[5], dc[5], ps[7], pc[7];

		for (int j = 0; j < 5; j++)
			ds[j] = 0.1f * j, dc[j] = 1.0f + 0.1f * j;
		for (int j = 0; j < 7; j++)
			ps[j] = -0.1f * j, pc[j] = 0.8f + 0.05f * j;
		moe_model_set_input_norm(model, ds, dc, ps, pc);
		model->params[model->layout.select_bias + 1] = 0.05f;
	}
	/* the first layers over sparse tables, standardisation folded in */
	moe_sparse_table sd = {0},
				sp = {0};

	if (sparse)
	{
		CHECK_INT(moe_sparse_table_build(drug, 4, 5, &sd, &err), MOE_OK);
		CHECK_INT(moe_sparse_table_build(protein, 3, 7, &sp, &err), MOE_OK);
		CHECK_INT(moe_workspace_use_sparse(model, ws, 0, &sd, &err), MOE_OK);
		CHECK_INT(moe_workspace_use_sparse(model, ws, 1, &sp, &err), MOE_OK);
	}

	memset(&t, 0, sizeof(t));
	t.model = model;
	t.ws = ws;
	t.drug = drug;
	t.protein = protein;
	t.di = di;
	t.pi = pi;
	t.M = M;
	t.c = c;
	t.lambda = 0.5f;
	t.method = MOE_LB_ENTROPY;
	t.zloss_weight = zloss_weight;
	t.row_entropy_weight = row_entropy_weight;
	t.assign_weight = assign_weight;

	size_t		np = model->layout.n_params,
				off = model->layout.trainable_offset;
	float	   *grads = calloc(np, sizeof(float));
	int32_t		ref[6 * 2];

	model_loss(&t);
	memcpy(ref, ws->host_sel_idx, sizeof(ref));
	moe_balance_loss(t.method, ws->host_pbar, NULL, cfg.n_experts, d_pbar);
	for (int e = 0; e < cfg.n_experts; e++)
		d_pbar[e] *= t.lambda;
	router.d_pbar = d_pbar;
	router.zloss_weight = zloss_weight;
	router.row_entropy_weight = row_entropy_weight;
	/* the balanced assignment's target at this point, and its gradient */
	float		q[6 * MOE_MAX_EXPERTS],
				d_logits[6 * MOE_MAX_EXPERTS];
	double		work[6 * MOE_MAX_EXPERTS];

	if (assign_weight != 0.0f)
	{
		moe_balanced_assignment(ws->probs, M, cfg.n_experts, q, work);
		for (int i = 0; i < M * cfg.n_experts; i++)
			d_logits[i] = assign_weight * (ws->probs[i] - q[i]) / (M * temperature);
		t.assign_q = q;
		router.d_logits_extra = d_logits;
	}
	CHECK_INT(moe_backward(model, ws, grads, c, &router, &err), MOE_OK);

	int			bad = 0,
				skipped = 0,
				checked = 0;

	t.ref_sel = ref;
	for (size_t i = off; i < np; i++)
	{
		float		saved = model->params[i];
		double		lp,
					lm,
					l0 = model_loss(&t),
					num;
		int			before = t.flipped;

		model->params[i] = saved + H;
		lp = model_loss(&t);
		model->params[i] = saved - H;
		lm = model_loss(&t);
		model->params[i] = saved;
		if (t.flipped != before || !grad_matches((lp - l0) / H, (l0 - lm) / H))
		{
			skipped++;
			continue;
		}
		checked++;
		num = (lp - lm) / (2.0 * H);
		if (!grad_matches(num, grads[i]))
		{
			if (bad < 10)
			{
				const char *name = "?";

				for (int k = 0; k < model->layout.n_tensors; k++)
					if (i >= model->layout.tensors[k].offset &&
						i < model->layout.tensors[k].offset + model->layout.tensors[k].numel)
						name = model->layout.tensors[k].name;
				fprintf(stderr, "  param %zu (%s): numeric %.6g analytic %.6g\n", i, name, num, grads[i]);
			}
			bad++;
		}
	}
	printf("  model gradient check%s%s: %d parameters checked, %d skipped (selection flip or kink), %d bad\n",
		   noisy ? " (noisy gating, z-loss, row entropy, assignment)" : "", sparse ? " (sparse first layers)" : "",
		   checked, skipped, bad);
	CHECK_INT(bad, 0);
	CHECK(skipped * 20 < checked);
	/* the check covered experts that received rows (their gradients are
	 * not trivially zero): at least three of the four did */
	{
		int			used = 0;

		model_loss(&t);
		for (int e = 0; e < cfg.n_experts; e++)
			used += ws->expert_offset[e + 1] > ws->expert_offset[e];
		CHECK(used >= 3);
	}
	if (noisy)
	{
		/* the noise head is part of what was checked */
		double		g = 0;

		for (size_t i = model->layout.noise_W; i < model->layout.noise_b + cfg.n_experts; i++)
			g += fabs(grads[i]);
		CHECK(g > 0);
	}

	free(grads);
	moe_workspace_free(model, ws);
	moe_model_free(model);
	moe_sparse_table_free(&sd);
	moe_sparse_table_free(&sp);
}

static void
test_model_backward(void)
{
	check_model(false, 0.7f, 0.0f, 0.0f, 0.0f, false);
}

static void
test_model_backward_router_terms(void)
{
	check_model(true, 1.3f, 0.3f, 0.4f, 0.6f, false);
}

/* The sparse first layers against finite differences, standardisation on,
 * with an all-zero and a fully dense entity. */
static void
test_model_backward_sparse(void)
{
	check_model(false, 0.9f, 0.0f, 0.0f, 0.0f, true);
}

/*
 * The sparse first layers against the dense ones on a wider model: the
 * same forward (predictions, routing) and the same gradients within float
 * rounding, on random sparse inputs with standardisation, an all-zero and a
 * fully dense entity, and entities repeated in the batch.
 */
static void
test_sparse_equals_dense(void)
{
	const int	nd = 9,
				np = 7,
				Dd = 64,
				Dp = 48,
				M = 20;
	moe_config	cfg;
	moe_model  *model;
	moe_workspace *dense,
			   *sparse;
	moe_sparse_table sd,
				sp;
	moe_error	err;
	moe_rng		rng;
	float	   *drug = malloc(sizeof(float) * nd * Dd),
			   *protein = malloc(sizeof(float) * np * Dp),
				d_pred[20];
	int32_t		di[20],
				pi[20];
	size_t		np_params;
	float	   *g_dense,
			   *g_sparse;
	moe_router_grad router = {0};
	double		worst_pred = 0,
				worst_grad = 0;

	moe_config_defaults(&cfg, Dd, Dp);
	cfg.drug_hidden[0] = 32;
	cfg.protein_hidden[0] = 24;
	cfg.gate_hidden[0] = 16;
	cfg.gate_hidden[1] = 8;
	cfg.expert_hidden[0] = 16;
	cfg.expert_hidden[1] = 8;
	CHECK_INT(moe_model_create(&cfg, be, &model, &err), MOE_OK);
	moe_model_init(model, 8, NULL);
	moe_rng_seed(&rng, 5);
	fill_normal(drug, nd * Dd, &rng, 1);
	fill_normal(protein, np * Dp, &rng, 1);
	sparsify(drug, nd, Dd, 2, 5, &rng);
	sparsify(protein, np, Dp, 0, 6, &rng);
	{
		float		ds[64], dc[64], ps[48], pc[48];

		for (int j = 0; j < Dd; j++)
			ds[j] = 0.3f * moe_rng_normal(&rng), dc[j] = 0.5f + moe_rng_uniform(&rng);
		for (int j = 0; j < Dp; j++)
			ps[j] = 0.3f * moe_rng_normal(&rng), pc[j] = 0.5f + moe_rng_uniform(&rng);
		moe_model_set_input_norm(model, ds, dc, ps, pc);
	}
	for (int m = 0; m < M; m++)
	{
		di[m] = (int32_t) (moe_rng_uniform(&rng) * nd) % nd;
		pi[m] = (int32_t) (moe_rng_uniform(&rng) * np) % np;
		d_pred[m] = 0.1f * moe_rng_normal(&rng);
	}
	di[0] = 5;					/* the all-zero drug */
	pi[1] = 0;					/* the fully dense protein */
	CHECK_INT(moe_sparse_table_build(drug, nd, Dd, &sd, &err), MOE_OK);
	CHECK_INT(moe_sparse_table_build(protein, np, Dp, &sp, &err), MOE_OK);
	CHECK_INT(moe_workspace_create(model, M, &dense, &err), MOE_OK);
	CHECK_INT(moe_workspace_create(model, M, &sparse, &err), MOE_OK);
	CHECK_INT(moe_workspace_use_sparse(model, sparse, 0, &sd, &err), MOE_OK);
	CHECK_INT(moe_workspace_use_sparse(model, sparse, 1, &sp, &err), MOE_OK);

	np_params = model->layout.n_params;
	g_dense = calloc(np_params, sizeof(float));
	g_sparse = calloc(np_params, sizeof(float));
	CHECK_INT(moe_forward(model, dense, drug, protein, di, pi, M, 99, &err), MOE_OK);
	CHECK_INT(moe_forward(model, sparse, drug, protein, di, pi, M, 99, &err), MOE_OK);
	CHECK(memcmp(dense->host_sel_idx, sparse->host_sel_idx, sizeof(int32_t) * M * cfg.top_k) == 0);
	for (int m = 0; m < M; m++)
	{
		double		d = fabs(dense->pred[m] - sparse->pred[m]) / (1e-3 + fabs(dense->pred[m]));

		worst_pred = d > worst_pred ? d : worst_pred;
	}
	CHECK_INT(moe_backward(model, dense, g_dense, d_pred, &router, &err), MOE_OK);
	CHECK_INT(moe_backward(model, sparse, g_sparse, d_pred, &router, &err), MOE_OK);
	for (size_t i = model->layout.trainable_offset; i < np_params; i++)
	{
		double		d = fabs(g_dense[i] - g_sparse[i]) / (1e-4 + fabs(g_dense[i]));

		worst_grad = d > worst_grad ? d : worst_grad;
	}
	printf("  sparse vs dense first layers: largest relative difference %.2g (predictions), %.2g (gradients)\n",
		   worst_pred, worst_grad);
	CHECK(worst_pred < 1e-4);
	CHECK(worst_grad < 1e-3);
	/* the first layers' gradients are really there (not trivially zero) */
	{
		double		gw = 0;

		for (size_t i = 0; i < (size_t) cfg.drug_hidden[0] * Dd; i++)
			gw += fabs(g_sparse[model->layout.drug.block[0].W + i]);
		CHECK(gw > 0);
	}
	free(g_dense);
	free(g_sparse);
	moe_workspace_free(model, dense);
	moe_workspace_free(model, sparse);
	moe_model_free(model);
	moe_sparse_table_free(&sd);
	moe_sparse_table_free(&sp);
	free(drug);
	free(protein);
}

/* z-loss and row entropy as functions of their inputs alone */
typedef struct
{
	float	   *x;
	int			M, E;
	int			which;
} router_case;

static double
router_value(void *ctx)
{
	router_case *t = ctx;

	return t->which == 0 ? be->zloss(be, NULL, t->x, t->M, t->E, 0.0f)
		: be->row_entropy(be, NULL, t->x, t->M, t->E, 0.0f);
}

static void
test_zloss_and_row_entropy(void)
{
	float		z[12], p[12], g[12];
	moe_rng		rng;
	router_case t = {z, 3, 4, 0};

	moe_rng_seed(&rng, 21);
	fill_normal(z, 12, &rng, 1);
	memset(g, 0, sizeof(g));
	be->zloss(be, g, z, 3, 4, 1.0f);
	CHECK_INT(check_param(z, 12, g, router_value, &t, "zloss"), 0);
	/* logsumexp of a row of zeros is log E */
	{
		float		zeros[4] = {0};

		CHECK_NEAR(be->zloss(be, NULL, zeros, 1, 4, 0.0f), log(4.0) * log(4.0), 1e-6);
	}
	for (int i = 0; i < 12; i++)
		p[i] = 0.05f + moe_rng_uniform(&rng);
	t.x = p;
	t.which = 1;
	memset(g, 0, sizeof(g));
	be->row_entropy(be, g, p, 3, 4, 1.0f);
	CHECK_INT(check_param(p, 12, g, router_value, &t, "row entropy"), 0);
	{
		float		uniform[4] = {0.25f, 0.25f, 0.25f, 0.25f},
					onehot[4] = {1, 0, 0, 0};

		CHECK_NEAR(be->row_entropy(be, NULL, uniform, 1, 4, 0.0f), 1.0, 1e-6);
		CHECK_NEAR(be->row_entropy(be, NULL, onehot, 1, 4, 0.0f), 0.0, 1e-6);
	}
}

int
main(void)
{
	be = moe_backend_cpu_create(1);
	RUN(test_linear_backward);
	RUN(test_layernorm_backward);
	RUN(test_softmax_backward);
	RUN(test_topk_ties_go_to_lower_index);
	RUN(test_route_backward);
	RUN(test_combine_backward);
	RUN(test_mse_backward);
	RUN(test_balance_losses);
	RUN(test_balanced_assignment);
	RUN(test_zloss_and_row_entropy);
	RUN(test_model_backward);
	RUN(test_model_backward_router_terms);
	RUN(test_model_backward_sparse);
	RUN(test_sparse_equals_dense);
	be->destroy(be);
	return unit_summary("test_gradients");
}
