/*
 * row_ops.h — the per-row (and per-element) bodies of the backend
 * operations, written once for both backends.
 *
 * backend_cpu.c calls these from its loops over rows; cuda/backend_cuda.cu
 * calls the same functions from its kernels, one thread per row (or per
 * element), so the GPU runs the CPU's expressions in the CPU's order.  They
 * are plain C that also compiles as CUDA C++: under nvcc MOE_HOST_DEVICE
 * (backend.h) makes them __host__ __device__; for a C compiler it is empty
 * and the CPU code is exactly what it was.
 *
 * Row pointers are computed by the callers with (size_t) index arithmetic;
 * an optional output (a gradient to add to) is NULL when not wanted.
 */
#ifndef MOE_ROW_OPS_H
#define MOE_ROW_OPS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* ---- the router ------------------------------------------------------- */

/* p[0..E) = softmax(z[0..E) * inv_t), shifted by the row's maximum */
static inline MOE_HOST_DEVICE void
moe_softmax_row(float *p, const float *z, int E, float inv_t)
{
	float		zmax = z[0];
	float		sum = 0.0f;

	for (int e = 1; e < E; e++)
		if (z[e] > zmax)
			zmax = z[e];
	for (int e = 0; e < E; e++)
	{
		p[e] = expf((z[e] - zmax) * inv_t);
		sum += p[e];
	}
	for (int e = 0; e < E; e++)
		p[e] /= sum;
}

/* dz[0..E) = p * (dp - sum(p * dp)) * inv_t, the adjoint of moe_softmax_row */
static inline MOE_HOST_DEVICE void
moe_softmax_backward_row(float *dz, const float *p, const float *dp, int E, float inv_t)
{
	float		dot = 0.0f;

	for (int e = 0; e < E; e++)
		dot += p[e] * dp[e];
	for (int e = 0; e < E; e++)
		dz[e] = p[e] * (dp[e] - dot) * inv_t;
}

/* idx[0..k) = top-k of p + bias (bias may be NULL), ties to the lower
 * index; w[0..k) = their p renormalised to sum to 1 (1/k if the sum is 0) */
static inline MOE_HOST_DEVICE void
moe_topk_route_row(int32_t *idx, float *w, const float *p, const float *bias, int E, int k)
{
	float		sum = 0.0f;

	/* Selection sort over E (small): the strict ">" keeps the lower index on
	 * ties, and excluding chosen experts keeps them distinct. */
	for (int s = 0; s < k; s++)
	{
		int			best = -1;
		float		best_score = 0.0f;

		for (int e = 0; e < E; e++)
		{
			float		score = p[e] + (bias ? bias[e] : 0.0f);
			bool		taken = false;

			for (int t = 0; t < s; t++)
				taken |= idx[t] == e;
			if (taken)
				continue;
			if (best < 0 || score > best_score)
			{
				best = e;
				best_score = score;
			}
		}
		idx[s] = best;
		w[s] = p[best];
		sum += p[best];
	}
	for (int s = 0; s < k; s++)
		w[s] = sum > 0.0f ? w[s] / sum : 1.0f / k;
}

/* sum over s < k of w[s] * y[s], in order: one row's combined output */
static inline MOE_HOST_DEVICE float
moe_combine_row(const float *w, const float *y, int k)
{
	float		acc = 0.0f;

	for (int s = 0; s < k; s++)
		acc += w[s] * y[s];
	return acc;
}

/* dw[i] = g * y[i] and dy[i] = g * w[i]: one slot of the combine's adjoint */
static inline MOE_HOST_DEVICE void
moe_combine_backward_at(float *dw, float *dy, float g, const float *w, const float *y, size_t i)
{
	dw[i] = g * y[i];
	dy[i] = g * w[i];
}

/* dp[0..E) = adjoint of w = p[idx] / sum(p[idx]) for the row's slot
 * gradients g[0..k) (zero for unselected experts, and all zero if the sum is 0) */
static inline MOE_HOST_DEVICE void
moe_route_backward_row(float *dp, const float *g, const float *w, const int32_t *idx,
					   const float *p, int E, int k)
{
	float		sum = 0.0f,
				wg = 0.0f;

	for (int s = 0; s < k; s++)
	{
		sum += p[idx[s]];
		wg += w[s] * g[s];
	}
	for (int e = 0; e < E; e++)
		dp[e] = 0.0f;
	if (sum <= 0.0f)
		return;
	for (int s = 0; s < k; s++)
		dp[idx[s]] = (g[s] - wg) / sum;
}

/* log(1 + e^x) without overflow */
static inline MOE_HOST_DEVICE float
moe_softplus(float x)
{
	return x > 20.0f ? x : log1pf(expf(x));
}

/* logit + eps * softplus(noise_pre): one noisy gating logit */
static inline MOE_HOST_DEVICE float
moe_noisy_logit(float logit, float eps, float noise_pre)
{
	return logit + eps * moe_softplus(noise_pre);
}

/* d_out * eps * sigmoid(noise_pre): the noise pre-activation's gradient */
static inline MOE_HOST_DEVICE float
moe_noisy_logit_grad(float d_out, float eps, float noise_pre)
{
	return d_out * eps / (1.0f + expf(-noise_pre));
}

/* Returns the row's logsumexp(z[0..E)) (in double); when dz is not NULL,
 * adds scale * d(lse^2)/dz / M = scale * 2 lse softmax(z) / M to dz[0..E) */
static inline MOE_HOST_DEVICE double
moe_zloss_row(float *dz, const float *z, int E, float scale, int M)
{
	float		zmax = z[0];
	double		se = 0.0,
				lse;

	for (int e = 1; e < E; e++)
		if (z[e] > zmax)
			zmax = z[e];
	for (int e = 0; e < E; e++)
		se += exp((double) z[e] - zmax);
	lse = zmax + log(se);
	if (dz != NULL)
		for (int e = 0; e < E; e++)
			dz[e] += (float) (scale * 2.0 * lse * exp((double) z[e] - lse) / M);
	return lse;
}

/* Returns sum minus the row's sum of q log q (q = p clamped to >= 1e-12),
 * added term by term; when dp is not NULL, adds
 * -scale (log q + 1) / (M logE) to dp[0..E) */
static inline MOE_HOST_DEVICE double
moe_entropy_row(double sum, float *dp, const float *p, int E, float scale, int M, double logE)
{
	for (int e = 0; e < E; e++)
	{
		/* p log p -> 0 as p -> 0; the clamp keeps the gradient finite */
		double		q = p[e] > 1e-12f ? p[e] : 1e-12;

		sum -= q * log(q);
		if (dp != NULL)
			dp[e] += (float) (-scale * (log(q) + 1.0) / (M * logE));
	}
	return sum;
}

/* ---- loss and optimiser ----------------------------------------------- */

/* Returns (pred[m] - target[m])^2 in double; when dpred is not NULL,
 * writes dpred[m] = 2 (pred[m] - target[m]) / M */
static inline MOE_HOST_DEVICE double
moe_mse_at(float *dpred, const float *pred, const float *target, size_t m, int M)
{
	float		d = pred[m] - target[m];

	if (dpred != NULL)
		dpred[m] = 2.0f * d / M;
	return (double) d * d;
}

/* One Adam(W) step on element i: moments m, v and then param, with bias
 * corrections bc1, bc2 and decoupled weight decay (0 gives plain Adam) */
static inline MOE_HOST_DEVICE void
moe_adam_at(float *param, const float *grad, float *m, float *v, size_t i, float lr,
			float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2)
{
	float		g = grad[i];
	float		mhat,
				vhat;

	m[i] = beta1 * m[i] + (1.0f - beta1) * g;
	v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
	mhat = m[i] / bc1;
	vhat = v[i] / bc2;
	param[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * param[i]);
}

#endif
