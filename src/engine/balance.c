#include "balance.h"

#include <math.h>
#include <string.h>

static const char *const lb_names[MOE_LB_N_METHODS] = {
	"none", "entropy", "cv", "importance", "importance_e", "switch", "zloss", "router_entropy",
	"aux_free"
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
		case MOE_LB_N_METHODS:
		default:
			zero(dP, E);
			return 0.0;
	}
}
