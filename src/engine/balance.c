#include "balance.h"

#include <math.h>
#include <string.h>

static const char *const lb_names[MOE_LB_N_METHODS] = {
	"none", "entropy", "cv", "importance", "importance_e", "switch", "zloss", "router_entropy",
	"aux_free", "sinkhorn"
};

const char *
moe_lb_method_name(moe_lb_method method)
{
	if ((int) method < 0 || (size_t) method >= sizeof(lb_names) / sizeof(lb_names[0]))
		return "unknown";
	return lb_names[method];
}

moe_status
moe_lb_method_parse(const char *name, moe_lb_method *out, moe_error *err)
{
	for (size_t i = 0; i < sizeof(lb_names) / sizeof(lb_names[0]); i++)
		if (strcmp(name, lb_names[i]) == 0)
		{
			*out = (moe_lb_method) i;
			return MOE_OK;
		}
	return moe_fail(err, MOE_ERR_INVALID, "unknown load-balancing method \"%s\" (valid: %s)",
					name, MOE_LB_CHOICES);
}

static void
zero(float *dP, int E)
{
	if (dP != NULL)
		for (int i = 0; i < E; i++)
			dP[i] = 0.0f;
}

/* Mean and unbiased standard deviation of P. */
static void
mean_std(const float *P, int E, double *mean, double *std)
{
	double		mu = 0.0,
				ss = 0.0;

	for (int i = 0; i < E; i++)
		mu += P[i];
	mu /= E;
	for (int i = 0; i < E; i++)
		ss += (P[i] - mu) * (P[i] - mu);
	*mean = mu;
	*std = E > 1 ? sqrt(ss / (E - 1)) : 0.0;
}

static double
entropy_loss(const float *P, int E, float *dP)
{
	double		logE = log((double) E),
				sum = 0.0;

	if (E < 2)
	{
		zero(dP, E);
		return 0.0;
	}
	for (int i = 0; i < E; i++)
	{
		/* P log P -> 0 as P -> 0; the clamp keeps the gradient finite. */
		double		p = P[i] > 1e-12f ? P[i] : 1e-12;

		sum += p * log(p);
		if (dP != NULL)
			dP[i] = (float) ((log(p) + 1.0) / logE);
	}
	return sum / logE;
}

static double
cv_loss(const float *P, int E, float *dP, int power)
{
	double		mu,
				s;

	mean_std(P, E, &mu, &s);
	if (E < 2 || mu <= 0.0)
	{
		zero(dP, E);
		return 0.0;
	}
	if (power == 1)
	{
		if (dP != NULL)
			for (int i = 0; i < E; i++)
				dP[i] = s > 0.0
					? (float) ((P[i] - mu) / ((E - 1) * s * mu) - s / (E * mu * mu))
					: 0.0f;
		return s / mu;
	}
	if (dP != NULL)
		for (int i = 0; i < E; i++)
			dP[i] = (float) (2.0 * (P[i] - mu) / ((E - 1) * mu * mu) -
							 2.0 * s * s / (E * mu * mu * mu));
	return (s * s) / (mu * mu);
}

static double
switch_loss(const float *P, const float *f, int E, float *dP)
{
	double		sum = 0.0;

	if (f == NULL)
	{
		zero(dP, E);
		return 0.0;
	}
	for (int i = 0; i < E; i++)
	{
		sum += (double) f[i] * P[i];
		if (dP != NULL)
			dP[i] = (float) E * f[i];
	}
	return E * sum;
}

double
moe_balance_loss(moe_lb_method method, const float *P, const float *f, int E, float *dP)
{
	switch (method)
	{
		case MOE_LB_ENTROPY:
			return entropy_loss(P, E, dP);
		case MOE_LB_CV:
			return cv_loss(P, E, dP, 1);
		case MOE_LB_IMPORTANCE:
			return cv_loss(P, E, dP, 2);
		case MOE_LB_IMPORTANCE_E:
			{
				double		v = cv_loss(P, E, dP, 2);

				if (dP != NULL)
					for (int i = 0; i < E; i++)
						dP[i] *= (float) E;
				return v * E;
			}
		case MOE_LB_SWITCH:
			return switch_loss(P, f, E, dP);
		case MOE_LB_NONE:
		case MOE_LB_ZLOSS:
		case MOE_LB_ROUTER_ENTROPY:
		case MOE_LB_AUX_FREE:
		case MOE_LB_SINKHORN:
		case MOE_LB_N_METHODS:
		default:
			zero(dP, E);
			return 0.0;
	}
}

/* Smallest probability taken into a logarithm or a power: keeps both finite
 * for an expert the gate has all but abandoned. */
#define ASSIGN_FLOOR 1e-30

/* work = p^MOE_ASSIGN_SHARPNESS scaled to rows of sum 1 and columns of sum
 * about M / E by alternating column and row normalisations (rows last). */
static void
sinkhorn_sharpened(const float *p, int M, int E, double *work)
{
	const double share = (double) M / E;

	/* each row scaled by its largest entry first (a row factor, which the
	 * row normalisation absorbs) so that no power underflows */
	for (int r = 0; r < M; r++)
	{
		const float *pr = p + (size_t) r * E;
		double		top = ASSIGN_FLOOR;

		for (int e = 0; e < E; e++)
			if (pr[e] > top)
				top = pr[e];
		for (int e = 0; e < E; e++)
			work[(size_t) r * E + e] = pow((pr[e] > ASSIGN_FLOOR ? pr[e] : ASSIGN_FLOOR) / top,
										   MOE_ASSIGN_SHARPNESS);
	}
	for (int it = 0; it < MOE_ASSIGN_ITERATIONS; it++)
	{
		for (int e = 0; e < E; e++)
		{
			double		col = 0.0;

			for (int r = 0; r < M; r++)
				col += work[(size_t) r * E + e];
			if (col > 0.0)
				for (int r = 0; r < M; r++)
					work[(size_t) r * E + e] *= share / col;
		}
		for (int r = 0; r < M; r++)
		{
			double	   *w = work + (size_t) r * E,
						row = 0.0;

			for (int e = 0; e < E; e++)
				row += w[e];
			for (int e = 0; e < E; e++)
				w[e] /= row;
		}
	}
}

/* Lower a row's largest entry to MOE_ASSIGN_MAX_SHARE and give the excess to
 * the others in proportion to their entries (to their probabilities when
 * the others are all zero), so that the row still sums to one. */
static void
cap_first_choice(double *w, const float *pr, int E)
{
	int			first = 0;
	double		rest = 0.0;

	for (int e = 1; e < E; e++)
		if (w[e] > w[first])
			first = e;
	if (w[first] <= MOE_ASSIGN_MAX_SHARE || E < 2)
		return;
	for (int e = 0; e < E; e++)
		if (e != first)
			rest += w[e];
	if (rest > 1e-12)
	{
		double		scale = (1.0 - MOE_ASSIGN_MAX_SHARE) / rest;

		for (int e = 0; e < E; e++)
			w[e] = e == first ? MOE_ASSIGN_MAX_SHARE : w[e] * scale;
		return;
	}
	rest = 0.0;
	for (int e = 0; e < E; e++)
		if (e != first)
			rest += pr[e];
	for (int e = 0; e < E; e++)
		w[e] = e == first ? MOE_ASSIGN_MAX_SHARE
			: (1.0 - MOE_ASSIGN_MAX_SHARE) * (rest > 0.0 ? pr[e] / rest : 1.0 / (E - 1));
}

double
moe_balanced_assignment(const float *p, int M, int E, float *q, double *work)
{
	double		ce = 0.0;

	sinkhorn_sharpened(p, M, E, work);
	for (int r = 0; r < M; r++)
		cap_first_choice(work + (size_t) r * E, p + (size_t) r * E, E);
	for (size_t i = 0; i < (size_t) M * E; i++)
	{
		q[i] = (float) work[i];
		ce -= work[i] * log(p[i] > ASSIGN_FLOOR ? p[i] : ASSIGN_FLOOR);
	}
	return ce / M;
}
