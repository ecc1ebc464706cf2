/*
 * bench/gate_gradients.c — why a router collapses: the size of the
 * gradient each balancing term sends into the gate, against the gradient of
 * the prediction loss, at initialisation and after each early epoch of a
 * run with the given balancing (docs/training.md, "Why these defaults").
 *
 * Trains on the synthetic planted-cluster data of scripts/demo.sh (60 drugs
 * x 40 targets, 4 clusters, seed 7) and, before the first epoch and after
 * each of the first epochs, takes the same 8 training batches of 256 rows
 * and measures the L2 norm over the gate's parameters of
 *   - the gradient of the MSE of the predictions, and
 *   - the gradient of each balancing term at a usual weight alone,
 * with the mean of each row's largest gate probability (0.25 = uniform
 * over 4 experts, 1 = every row sure of one expert).
 *
 *   cc -O2 -Isrc/engine bench/gate_gradients.c src/engine/[a-z]*.c -lopenblas -lm -ldl -lpthread -o gate_gradients
 *   ./gate_gradients [epochs] [balance]      e.g.  ./gate_gradients 6 entropy:0.001
 *
 * bench/gate_gradients.sh builds it and runs it with the 0.1.0 default
 * (entropy 0.001) and with the current default.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "balance.h"
#include "model.h"
#include "synthetic.h"
#include "train.h"

#define BATCH 256
#define BATCHES 8

typedef struct term
{
	moe_lb_method method;
	float		weight;
} term;

/* The terms measured, each at a weight it is commonly used with. */
static const term measured[] = {
	{MOE_LB_ENTROPY, 0.001f}, {MOE_LB_IMPORTANCE, 0.1f}, {MOE_LB_SWITCH, 0.01f},
	{MOE_LB_SINKHORN, 0.03f}
};
#define N_MEASURED ((int) (sizeof(measured) / sizeof(measured[0])))

static double
gate_norm(const moe_model *m, const float *g)
{
	double		s = 0.0;

	for (int k = 0; k < m->layout.n_tensors; k++)
	{
		const char *name = m->layout.tensors[k].name;

		/* the gate's learnt tensors; the aux-free bias is not learnt */
		if (strncmp(name, "gate.", 5) != 0 || strstr(name, "select_bias") != NULL)
			continue;
		for (size_t i = 0; i < m->layout.tensors[k].numel; i++)
			s += (double) g[m->layout.tensors[k].offset + i] * g[m->layout.tensors[k].offset + i];
	}
	return sqrt(s);
}

/* Gate gradient of one term alone on the current forward pass. */
static double
term_norm(moe_model *m, moe_workspace *ws, float *grads, const float *zero_dpred, term t,
		  const float *frac)
{
	const int	E = m->cfg.n_experts;
	moe_router_grad rg = {0};
	float		dP[MOE_MAX_EXPERTS],
				d_pbar[MOE_MAX_EXPERTS];
	static float q[BATCH * MOE_MAX_EXPERTS],
				d_logits[BATCH * MOE_MAX_EXPERTS];
	static double work[BATCH * MOE_MAX_EXPERTS];
	moe_error	err;

	if (t.method == MOE_LB_SINKHORN)
	{
		moe_balanced_assignment(ws->probs, BATCH, E, q, work);
		for (int i = 0; i < BATCH * E; i++)
			d_logits[i] = t.weight * (ws->probs[i] - q[i]) / (BATCH * m->cfg.temperature);
		rg.d_logits_extra = d_logits;
	}
	else
	{
		moe_balance_loss(t.method, ws->host_pbar, frac, E, dP);
		for (int e = 0; e < E; e++)
			d_pbar[e] = t.weight * dP[e];
		rg.d_pbar = d_pbar;
	}
	moe_backward(m, ws, grads, zero_dpred, &rg, &err);
	return gate_norm(m, grads);
}

static void
measure(moe_model *m, const moe_train_data *d, int epoch)
{
	const int	E = m->cfg.n_experts,
				K = m->cfg.top_k;
	moe_workspace *ws;
	moe_error	err;
	float	   *grads = calloc(m->layout.n_params, sizeof(float));
	static float dpred[BATCH],
				zero[BATCH];
	double		mse_norm = 0.0,
				norm[N_MEASURED] = {0},
				max_prob = 0.0;

	if (grads == NULL || moe_workspace_create(m, BATCH, &ws, &err) != MOE_OK)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (int b = 0; b < BATCHES; b++)
	{
		int			from = (int) ((int64_t) b * (d->train.n - BATCH) / (BATCHES - 1));
		float		frac[MOE_MAX_EXPERTS] = {0};

		moe_forward(m, ws, d->drug_vec, d->protein_vec, d->train.drug_idx + from,
					d->train.protein_idx + from, BATCH, 1, &err);
		for (int i = 0; i < BATCH; i++)
		{
			float		y = (d->train.label[from + i] - m->cfg.label_mean) / m->cfg.label_std,
						top = 0.0f;

			dpred[i] = 2.0f * (ws->pred[i] - y) / BATCH;
			for (int e = 0; e < E; e++)
				top = fmaxf(top, ws->probs[i * E + e]);
			max_prob += top / (BATCH * BATCHES);
		}
		for (int i = 0; i < BATCH * K; i++)
			frac[ws->host_sel_idx[i]] += 1.0f / (BATCH * K);
		moe_backward(m, ws, grads, dpred, NULL, &err);
		mse_norm += gate_norm(m, grads) / BATCHES;
		for (int j = 0; j < N_MEASURED; j++)
			norm[j] += term_norm(m, ws, grads, zero, measured[j], frac) / BATCHES;
	}
	printf("%5d %10.3e", epoch, mse_norm);
	for (int j = 0; j < N_MEASURED; j++)
		printf(" %10.3e %8.1e", norm[j], norm[j] / mse_norm);
	printf(" %8.3f\n", max_prob);
	free(grads);
	moe_workspace_free(m, ws);
}

int
main(int argc, char **argv)
{
	moe_synthetic_spec spec;
	moe_synthetic syn;
	moe_config	cfg;
	moe_train_options opt;
	moe_train_data data = {0};
	moe_trainer *trainer;
	moe_epoch_report rep;
	moe_error	err;
	int32_t    *drug_idx[2],
			   *protein_idx[2];
	float	   *label[2];
	int			n[2] = {0, 0};
	int			epochs = argc > 1 ? atoi(argv[1]) : 6;

	moe_synthetic_defaults(&spec);
	spec.n_drugs = 60;
	spec.n_targets = 40;
	spec.n_clusters = 4;
	spec.seed = 7;
	if (moe_synthetic_generate(&spec, &syn, &err) != MOE_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	/* the split of moe_synthetic_dta: 70 % training, 15 % validation */
	for (int s = 0; s < 2; s++)
	{
		drug_idx[s] = malloc(sizeof(int32_t) * spec.n_drugs * spec.n_targets);
		protein_idx[s] = malloc(sizeof(int32_t) * spec.n_drugs * spec.n_targets);
		label[s] = malloc(sizeof(float) * spec.n_drugs * spec.n_targets);
	}
	for (int a = 0; a < spec.n_drugs; a++)
		for (int t = 0; t < spec.n_targets; t++)
		{
			int64_t		pair = (int64_t) a * spec.n_targets + t;
			float		u = moe_dropout_uniform(spec.seed ^ 0x73706c6974ULL, (uint64_t) pair);
			int			s = u < 0.70f ? 0 : u < 0.85f ? 1 : -1;

			if (s < 0)
				continue;			/* a test row */
			drug_idx[s][n[s]] = a;
			protein_idx[s][n[s]] = t;
			label[s][n[s]++] = syn.label[pair];
		}
	data.n_drugs = spec.n_drugs;
	data.drug_dim = syn.drug_dim;
	data.drug_vec = syn.drug_vec;
	data.n_proteins = spec.n_targets;
	data.protein_dim = syn.target_dim;
	data.protein_vec = syn.target_vec;
	data.train = (moe_rows) {n[0], drug_idx[0], protein_idx[0], label[0]};
	data.valid = (moe_rows) {n[1], drug_idx[1], protein_idx[1], label[1]};

	moe_config_defaults(&cfg, syn.drug_dim, syn.target_dim);
	moe_train_options_defaults(&opt);
	opt.epochs = epochs;
	opt.patience = 0;
	if (argc > 2)
	{
		char	   *spec_text = strdup(argv[2]);

		opt.n_balance = 0;
		for (char *tok = strtok(spec_text, ","); tok != NULL; tok = strtok(NULL, ","))
		{
			char	   *colon = strchr(tok, ':');
			moe_lb_method m;

			if (colon == NULL)
			{
				fprintf(stderr, "balance terms are method:weight, e.g. entropy:0.001\n");
				return 2;
			}
			*colon = '\0';
			if (moe_lb_method_parse(tok, &m, &err) != MOE_OK ||
				moe_train_options_add_balance(&opt, m, (float) atof(colon + 1), &err) != MOE_OK)
			{
				fprintf(stderr, "%s\n", err.message);
				return 2;
			}
		}
	}
	if (moe_trainer_create(&cfg, &opt, &data, moe_backend_cpu_create(1), NULL, NULL, &trainer, &err) != MOE_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	printf("# gate gradient norms (mean of %d batches of %d training rows); ratio = term / mse\n",
		   BATCHES, BATCH);
	printf("%5s %10s", "epoch", "mse");
	for (int j = 0; j < N_MEASURED; j++)
	{
		char		label[64];

		snprintf(label, sizeof(label), "%s@%g", moe_lb_method_name(measured[j].method),
				 (double) measured[j].weight);
		printf(" %10s %8s", label, "ratio");
	}
	printf(" %8s\n", "max_prob");
	/* moe_trainer_best_model puts the best epoch's weights in place: with
	 * no early stopping and measuring only after improving epochs, those
	 * are the weights training goes on with */
	measure(moe_trainer_best_model(trainer), &data, 0);
	while (!moe_trainer_done(trainer))
	{
		if (moe_trainer_epoch(trainer, &rep, &err) != MOE_OK)
		{
			fprintf(stderr, "%s\n", err.message);
			return 1;
		}
		if (rep.improved)
			measure(moe_trainer_best_model(trainer), &data, rep.epoch);
		else
			printf("%5d (validation did not improve; not measured)\n", rep.epoch);
	}
	moe_trainer_free(trainer);
	return 0;
}
