/*
 * balance.h — auxiliary load-balancing losses of the router.
 *
 * With T rows, E experts and gate probabilities p, P[i] = mean_t p[t,i] is
 * the batch's mean probability of expert i (the "importance"), and f[i] the
 * fraction of the T*k selections that went to expert i.  Each loss is a
 * function of P (f enters as a constant), so its gradient is returned with
 * respect to P; the model spreads it over the rows (dp[t,i] = dP[i] / T).
 * Formulas: docs/training.md ("Balancing terms").
 */
#ifndef MOE_BALANCE_H
#define MOE_BALANCE_H

#include "moe_status.h"

typedef enum moe_lb_method
{
	MOE_LB_NONE = 0,
	MOE_LB_ENTROPY,				/* -H(P) / log E: -1 when balanced, 0 when collapsed */
	MOE_LB_CV,					/* std(P) / mean(P), unbiased std */
	MOE_LB_IMPORTANCE,			/* CV(P)^2 (Shazeer et al. 2017) */
	MOE_LB_IMPORTANCE_E,		/* CV(P)^2 * E, the seed's scaling of it */
	MOE_LB_SWITCH,				/* E * sum f_i P_i, 1 when balanced */
	/* not functions of P; the trainer applies them elsewhere: */
	MOE_LB_ZLOSS,				/* mean_t logsumexp(z_t)^2 on the router logits */
	MOE_LB_ROUTER_ENTROPY,		/* bonus: -mean_t H(p_t) / log E, per row */
	MOE_LB_AUX_FREE,			/* bias on the selection scores, no loss */
	MOE_LB_SINKHORN,			/* cross-entropy to a balanced assignment of the batch */
	MOE_LB_N_METHODS
} moe_lb_method;

#define MOE_LB_CHOICES "none, entropy, cv, importance, importance_e, switch, zloss, router_entropy, aux_free, sinkhorn"

/* At most this many terms are combined in one run. */
#define MOE_MAX_BALANCE_TERMS 8

/* One term of the auxiliary objective with its weight (for aux_free the
 * weight is the bias update rate gamma). */
typedef struct moe_balance_term
{
	moe_lb_method method;
	float		weight;
} moe_balance_term;

/* True for the methods that are functions of the mean probabilities P. */
static inline int
moe_lb_uses_pbar(moe_lb_method m)
{
	return m == MOE_LB_ENTROPY || m == MOE_LB_CV || m == MOE_LB_IMPORTANCE ||
		m == MOE_LB_IMPORTANCE_E || m == MOE_LB_SWITCH;
}

const char *moe_lb_method_name(moe_lb_method method);
moe_status	moe_lb_method_parse(const char *name, moe_lb_method *out, moe_error *err);

/*
 * The loss for P[E] (and the selection fractions f[E], used by "switch"
 * only; may be NULL otherwise).  When dP is not NULL it receives dLoss/dP.
 */
double		moe_balance_loss(moe_lb_method method, const float *P, const float *f, int E,
							 float *dP);

/*
 * The balanced assignment of a batch ("sinkhorn"): from the gate
 * probabilities p[M, E] (rows sum to one), a target q[M, E] that keeps each
 * row's preferences but gives every expert its share of the batch:
 * p^MOE_ASSIGN_SHARPNESS scaled by MOE_ASSIGN_ITERATIONS rounds of Sinkhorn
 * normalisation to rows of sum one and columns of sum about M / E, then each
 * row's first choice capped at MOE_ASSIGN_MAX_SHARE (the excess goes to its
 * other experts), so that the target specialises rows without asking for a
 * one-hot gate whose second selected expert weighs nothing.  Returns the
 * mean cross-entropy -1/M sum q log p.  q is a target, held constant, so
 * the gradient with respect to the logits z of p = softmax(z / T) is
 * (p - q) / (M T).  work holds M * E doubles.  Why these constants:
 * docs/training.md ("Why these defaults").
 */
#define MOE_ASSIGN_SHARPNESS 2.0
#define MOE_ASSIGN_ITERATIONS 5
#define MOE_ASSIGN_MAX_SHARE 0.75
double		moe_balanced_assignment(const float *p, int M, int E, float *q, double *work);

#endif
