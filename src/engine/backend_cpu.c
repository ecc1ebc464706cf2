/*
 * backend_cpu.c — the reference backend: plain loops plus OpenBLAS sgemm.
 *
 * Each function is the CPU twin of a CUDA kernel (cuda/); keep them
 * numerically simple and obviously correct, since the parity tests hold the
 * GPU to them.
 */
#include "backend.h"
#include "gemm_rows.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LAYERNORM_EPS 1e-5f

/* Declared by OpenBLAS; not in the generic cblas.h. */
extern void openblas_set_num_threads(int num_threads);
extern int	openblas_get_num_procs(void);

void
moe_backend_cpu_set_threads(int threads)
{
	openblas_set_num_threads(threads > 0 ? threads : openblas_get_num_procs());
	moe_gemm_rows_set_threads(threads);
}

/* ---- memory ----------------------------------------------------------- */

static void *
cpu_alloc(moe_backend *be, size_t bytes)
{
	return calloc(1, bytes > 0 ? bytes : 1);
}

static void
cpu_release(moe_backend *be, void *ptr)
{
	free(ptr);
}

static void
cpu_memcpy(moe_backend *be, void *dst, const void *src, size_t bytes)
{
	if (bytes > 0 && dst != src)
		memmove(dst, src, bytes);
}

static void
cpu_fill(moe_backend *be, float *x, size_t n, float value)
{
	for (size_t i = 0; i < n; i++)
		x[i] = value;
}

static moe_status
cpu_check(moe_backend *be, moe_error *err)
{
	return MOE_OK;
}

/* ---- dense layers ----------------------------------------------------- */

static void
cpu_linear_forward(moe_backend *be, float *out, const float *in, const float *W,
				   const float *b, int M, int N, int K)
{
	if (M <= 0)
		return;
	for (int m = 0; m < M; m++)
		memcpy(out + (size_t) m * N, b, sizeof(float) * N);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K,
				1.0f, in, K, W, K, 1.0f, out, N);
}

static void
cpu_linear_infer(moe_backend *be, float *out, int ldo, const float *in, int ldi, const float *W,
				 int ldw, const float *b, int M, int N, int K)
{
	if (M > 0)
		moe_gemm_rows(out, ldo, in, ldi, W, ldw, b, M, N, K);
}

static void
cpu_linear_infer_row_sparse(moe_backend *be, float *out, const float *in, const float *W, int ldw,
							const float *panel, const float *b, int N, int K)
{
	moe_gemv_rows_sparse(out, in, W, ldw, panel, b, N, K);
}

static void
cpu_linear_backward(moe_backend *be, float *din, float *dW, float *db,
					const float *dout, const float *in, const float *W,
					int M, int N, int K)
{
	if (M <= 0)
	{
		memset(dW, 0, sizeof(float) * (size_t) N * K);
		memset(db, 0, sizeof(float) * N);
		return;
	}
	if (din != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N,
					1.0f, dout, N, W, K, 0.0f, din, K);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M,
				1.0f, dout, N, in, K, 0.0f, dW, K);
	memset(db, 0, sizeof(float) * N);
	for (int m = 0; m < M; m++)
	{
		const float *row = dout + (size_t) m * N;

		for (int j = 0; j < N; j++)
			db[j] += row[j];
	}
}

/*
 * Sum of x[0..n) with eight interleaved accumulators reduced in a fixed
 * tree: vectorisable without -ffast-math, and the same order every time.
 */
static inline float
sum8(const float *x, int n)
{
	float		acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int			n8 = n - n % 8;
	float		s;

	for (int j = 0; j < n8; j += 8)
		for (int l = 0; l < 8; l++)
			acc[l] += x[j + l];
	s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
	for (int j = n8; j < n; j++)
		s += x[j];
	return s;
}

/* Sum of (x - mu)^2, the same way. */
static inline float
sumsq8(const float *x, int n, float mu)
{
	float		acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int			n8 = n - n % 8;
	float		s;

	for (int j = 0; j < n8; j += 8)
		for (int l = 0; l < 8; l++)
		{
			float		d = x[j + l] - mu;

			acc[l] += d * d;
		}
	s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
	for (int j = n8; j < n; j++)
		s += (x[j] - mu) * (x[j] - mu);
	return s;
}

static void
cpu_layernorm_forward(moe_backend *be, float *out, float *mean, float *rstd,
					  const float *in, const float *gamma, const float *beta,
					  int M, int N)
{
	for (int m = 0; m < M; m++)
	{
		const float *x = in + (size_t) m * N;
		float	   *y = out + (size_t) m * N;
		float		mu = sum8(x, N) / N;
		float		rs = 1.0f / sqrtf(sumsq8(x, N, mu) / N + LAYERNORM_EPS);

		/* in place is fine: each y[j] is written after x[j] is read */
		for (int j = 0; j < N; j++)
			y[j] = (x[j] - mu) * rs * gamma[j] + beta[j];
		mean[m] = mu;
		rstd[m] = rs;
	}
}

static void
cpu_layernorm_backward(moe_backend *be, float *din, float *dgamma, float *dbeta,
					   const float *dout, const float *in, const float *mean,
					   const float *rstd, const float *gamma, int M, int N)
{
	memset(dgamma, 0, sizeof(float) * N);
	memset(dbeta, 0, sizeof(float) * N);
	for (int m = 0; m < M; m++)
	{
		const float *x = in + (size_t) m * N;
		const float *dy = dout + (size_t) m * N;
		float	   *dx = din + (size_t) m * N;
		float		mu = mean[m],
					rs = rstd[m];
		float		sum_dxhat = 0.0f,
					sum_dxhat_xhat = 0.0f;

		for (int j = 0; j < N; j++)
		{
			float		xhat = (x[j] - mu) * rs;
			float		dxhat = dy[j] * gamma[j];

			dgamma[j] += dy[j] * xhat;
			dbeta[j] += dy[j];
			sum_dxhat += dxhat;
			sum_dxhat_xhat += dxhat * xhat;
		}
		sum_dxhat /= N;
		sum_dxhat_xhat /= N;
		for (int j = 0; j < N; j++)
		{
			float		xhat = (x[j] - mu) * rs;
			float		dxhat = dy[j] * gamma[j];

			dx[j] = rs * (dxhat - sum_dxhat - xhat * sum_dxhat_xhat);
		}
	}
}

static void
cpu_relu_forward(moe_backend *be, float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

static void
cpu_relu_backward(moe_backend *be, float *din, const float *dout, const float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

static void
cpu_dropout_forward(moe_backend *be, float *out, float *mask, const float *in,
					size_t n, float p, uint64_t key)
{
	float		keep_scale = 1.0f / (1.0f - p);

	for (size_t i = 0; i < n; i++)
	{
		mask[i] = moe_dropout_uniform(key, i) >= p ? keep_scale : 0.0f;
		out[i] = in[i] * mask[i];
	}
}

static void
cpu_mul(moe_backend *be, float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] * b[i];
}

static void
cpu_add(moe_backend *be, float *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

/* ---- moving rows ------------------------------------------------------ */

static void
cpu_gather_rows(moe_backend *be, float *dst, const float *src, const int32_t *idx,
				int rows, int width, const float *shift, const float *scale)
{
	for (int i = 0; i < rows; i++)
	{
		const float *s = src + (size_t) idx[i] * width;
		float	   *d = dst + (size_t) i * width;

		if (shift == NULL && scale == NULL)
			memcpy(d, s, sizeof(float) * width);
		else
			for (int j = 0; j < width; j++)
				d[j] = (s[j] - (shift ? shift[j] : 0.0f)) * (scale ? scale[j] : 1.0f);
	}
}

static void
cpu_scatter_add_rows(moe_backend *be, float *dst, const float *src, const int32_t *idx,
					 int rows, int width)
{
	for (int i = 0; i < rows; i++)
	{
		float	   *d = dst + (size_t) idx[i] * width;
		const float *s = src + (size_t) i * width;

		for (int j = 0; j < width; j++)
			d[j] += s[j];
	}
}

static void
cpu_concat_cols(moe_backend *be, float *out, const float *a, const float *b,
				int M, int Na, int Nb)
{
	for (int m = 0; m < M; m++)
	{
		memcpy(out + (size_t) m * (Na + Nb), a + (size_t) m * Na, sizeof(float) * Na);
		memcpy(out + (size_t) m * (Na + Nb) + Na, b + (size_t) m * Nb, sizeof(float) * Nb);
	}
}

static void
cpu_split_cols(moe_backend *be, float *a, float *b, const float *in, int M, int Na, int Nb)
{
	for (int m = 0; m < M; m++)
	{
		memcpy(a + (size_t) m * Na, in + (size_t) m * (Na + Nb), sizeof(float) * Na);
		memcpy(b + (size_t) m * Nb, in + (size_t) m * (Na + Nb) + Na, sizeof(float) * Nb);
	}
}

static void
cpu_sum_parts(moe_backend *be, float *out, int ldo, const float *bias, const float *a, int lda,
			  const int32_t *a_idx, const float *b, int ldb, const int32_t *b_idx, int M, int N)
{
	for (int m = 0; m < M; m++)
	{
		const float *x = a + (size_t) a_idx[m] * lda;
		const float *y = b + (size_t) b_idx[m] * ldb;
		float	   *o = out + (size_t) m * ldo;

		for (int j = 0; j < N; j++)
			o[j] = (bias[j] + x[j]) + y[j];
	}
}

static void
cpu_gather(moe_backend *be, float *dst, const float *src, const int32_t *idx, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = src[idx[i]];
}

static void
cpu_scatter(moe_backend *be, float *dst, const float *src, const int32_t *idx, int n)
{
	for (int i = 0; i < n; i++)
		dst[idx[i]] = src[i];
}

/* ---- the router ------------------------------------------------------- */

static void
cpu_softmax_forward(moe_backend *be, float *probs, const float *logits,
					int M, int E, float temperature)
{
	float		inv_t = 1.0f / temperature;

	for (int m = 0; m < M; m++)
	{
		const float *z = logits + (size_t) m * E;
		float	   *p = probs + (size_t) m * E;
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
}

static void
cpu_softmax_backward(moe_backend *be, float *dlogits, const float *dprobs,
					 const float *probs, int M, int E, float temperature)
{
	float		inv_t = 1.0f / temperature;

	for (int m = 0; m < M; m++)
	{
		const float *p = probs + (size_t) m * E;
		const float *dp = dprobs + (size_t) m * E;
		float	   *dz = dlogits + (size_t) m * E;
		float		dot = 0.0f;

		for (int e = 0; e < E; e++)
			dot += p[e] * dp[e];
		for (int e = 0; e < E; e++)
			dz[e] = p[e] * (dp[e] - dot) * inv_t;
	}
}

static void
cpu_topk_route(moe_backend *be, int32_t *sel_idx, float *sel_w, const float *probs,
			   const float *bias, int M, int E, int k)
{
	for (int m = 0; m < M; m++)
	{
		const float *p = probs + (size_t) m * E;
		int32_t    *idx = sel_idx + (size_t) m * k;
		float	   *w = sel_w + (size_t) m * k;
		float		sum = 0.0f;

		/* Selection sort over E (small): the strict ">" keeps the lower
		 * index on ties, and excluding chosen experts keeps them distinct. */
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
}

static void
cpu_combine_forward(moe_backend *be, float *out, const float *w, const float *y, int M, int k)
{
	for (int m = 0; m < M; m++)
	{
		float		acc = 0.0f;

		for (int s = 0; s < k; s++)
			acc += w[(size_t) m * k + s] * y[(size_t) m * k + s];
		out[m] = acc;
	}
}

static void
cpu_combine_backward(moe_backend *be, float *dw, float *dy, const float *dout,
					 const float *w, const float *y, int M, int k)
{
	for (int m = 0; m < M; m++)
		for (int s = 0; s < k; s++)
		{
			size_t		i = (size_t) m * k + s;

			dw[i] = dout[m] * y[i];
			dy[i] = dout[m] * w[i];
		}
}

static void
cpu_route_backward(moe_backend *be, float *dprobs, const float *dw, const float *sel_w,
				   const int32_t *sel_idx, const float *probs, int M, int E, int k)
{
	for (int m = 0; m < M; m++)
	{
		const int32_t *idx = sel_idx + (size_t) m * k;
		const float *w = sel_w + (size_t) m * k;
		const float *g = dw + (size_t) m * k;
		float	   *dp = dprobs + (size_t) m * E;
		float		sum = 0.0f,
					wg = 0.0f;

		for (int s = 0; s < k; s++)
		{
			sum += probs[(size_t) m * E + idx[s]];
			wg += w[s] * g[s];
		}
		for (int e = 0; e < E; e++)
			dp[e] = 0.0f;
		if (sum <= 0.0f)
			continue;
		for (int s = 0; s < k; s++)
			dp[idx[s]] = (g[s] - wg) / sum;
	}
}

static inline float
softplus(float x)
{
	/* log(1 + e^x) without overflow */
	return x > 20.0f ? x : log1pf(expf(x));
}

static void
cpu_noisy_logits(moe_backend *be, float *out, float *eps, const float *logits,
				 const float *noise_pre, size_t n, uint64_t key)
{
	for (size_t i = 0; i < n; i++)
	{
		eps[i] = moe_counter_normal(key, i);
		out[i] = logits[i] + eps[i] * softplus(noise_pre[i]);
	}
}

static void
cpu_noisy_logits_backward(moe_backend *be, float *d_noise_pre, const float *d_out,
						  const float *eps, const float *noise_pre, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d_noise_pre[i] = d_out[i] * eps[i] / (1.0f + expf(-noise_pre[i]));
}

static double
cpu_zloss(moe_backend *be, float *dlogits, const float *logits, int M, int E, float scale)
{
	double		sum = 0.0;

	for (int m = 0; m < M; m++)
	{
		const float *z = logits + (size_t) m * E;
		float		zmax = z[0];
		double		se = 0.0,
					lse;

		for (int e = 1; e < E; e++)
			if (z[e] > zmax)
				zmax = z[e];
		for (int e = 0; e < E; e++)
			se += exp((double) z[e] - zmax);
		lse = zmax + log(se);
		sum += lse * lse;
		/* d(lse^2)/dz_e = 2 lse softmax(z)_e, averaged over rows */
		if (dlogits != NULL)
			for (int e = 0; e < E; e++)
				dlogits[(size_t) m * E + e] +=
					(float) (scale * 2.0 * lse * exp((double) z[e] - lse) / M);
	}
	return M > 0 ? sum / M : 0.0;
}

static double
cpu_row_entropy(moe_backend *be, float *dprobs, const float *probs, int M, int E, float scale)
{
	double		logE = log((double) E),
				sum = 0.0;

	if (E < 2)
		return 0.0;
	for (int m = 0; m < M; m++)
	{
		const float *p = probs + (size_t) m * E;

		for (int e = 0; e < E; e++)
		{
			/* p log p -> 0 as p -> 0; the clamp keeps the gradient finite */
			double		q = p[e] > 1e-12f ? p[e] : 1e-12;

			sum -= q * log(q);
			if (dprobs != NULL)
				dprobs[(size_t) m * E + e] += (float) (-scale * (log(q) + 1.0) / (M * logE));
		}
	}
	return sum / (M * logE);
}

static void
cpu_column_mean(moe_backend *be, float *out, const float *x, int M, int N)
{
	for (int j = 0; j < N; j++)
		out[j] = 0.0f;
	for (int m = 0; m < M; m++)
		for (int j = 0; j < N; j++)
			out[j] += x[(size_t) m * N + j];
	for (int j = 0; j < N; j++)
		out[j] = M > 0 ? out[j] / M : 0.0f;
}

static void
cpu_add_row_vector(moe_backend *be, float *x, const float *v, float alpha, int M, int N)
{
	for (int m = 0; m < M; m++)
		for (int j = 0; j < N; j++)
			x[(size_t) m * N + j] += alpha * v[j];
}

/* ---- loss and optimiser ----------------------------------------------- */

static double
cpu_mse_forward_backward(moe_backend *be, float *dpred, const float *pred,
						 const float *target, int M)
{
	double		sum = 0.0;

	for (int m = 0; m < M; m++)
	{
		float		d = pred[m] - target[m];

		sum += (double) d * d;
		if (dpred != NULL)
			dpred[m] = 2.0f * d / M;
	}
	return M > 0 ? sum / M : 0.0;
}

static double
cpu_sum_squares(moe_backend *be, const float *x, size_t n)
{
	double		sum = 0.0;

	for (size_t i = 0; i < n; i++)
		sum += (double) x[i] * x[i];
	return sum;
}

static void
cpu_scale(moe_backend *be, float *x, size_t n, float alpha)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= alpha;
}

static void
cpu_adam_update(moe_backend *be, float *param, const float *grad, float *m, float *v,
				size_t n, float lr, float beta1, float beta2, float eps,
				float weight_decay, int64_t step)
{
	float		bc1 = 1.0f - powf(beta1, (float) step);
	float		bc2 = 1.0f - powf(beta2, (float) step);

	for (size_t i = 0; i < n; i++)
	{
		float		g = grad[i];

		m[i] = beta1 * m[i] + (1.0f - beta1) * g;
		v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;

		float		mhat = m[i] / bc1;
		float		vhat = v[i] / bc2;

		/* decoupled weight decay (AdamW); 0 gives plain Adam */
		param[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * param[i]);
	}
}

static void
cpu_destroy(moe_backend *be)
{
	free(be);
}

moe_backend *
moe_backend_cpu_create(int blas_threads)
{
	moe_backend *be = calloc(1, sizeof(moe_backend));

	if (be == NULL)
		return NULL;
	if (blas_threads > 0)
		moe_backend_cpu_set_threads(blas_threads);
	be->name = "cpu";
	be->host_memory = true;
	be->alloc = cpu_alloc;
	be->release = cpu_release;
	be->upload = cpu_memcpy;
	be->download = cpu_memcpy;
	be->copy = cpu_memcpy;
	be->fill = cpu_fill;
	be->check = cpu_check;
	be->linear_forward = cpu_linear_forward;
	be->linear_infer = cpu_linear_infer;
	be->linear_infer_row_sparse = cpu_linear_infer_row_sparse;
	be->linear_backward = cpu_linear_backward;
	be->layernorm_forward = cpu_layernorm_forward;
	be->layernorm_backward = cpu_layernorm_backward;
	be->relu_forward = cpu_relu_forward;
	be->relu_backward = cpu_relu_backward;
	be->dropout_forward = cpu_dropout_forward;
	be->mul = cpu_mul;
	be->add = cpu_add;
	be->gather_rows = cpu_gather_rows;
	be->scatter_add_rows = cpu_scatter_add_rows;
	be->concat_cols = cpu_concat_cols;
	be->split_cols = cpu_split_cols;
	be->sum_parts = cpu_sum_parts;
	be->gather = cpu_gather;
	be->scatter = cpu_scatter;
	be->softmax_forward = cpu_softmax_forward;
	be->softmax_backward = cpu_softmax_backward;
	be->topk_route = cpu_topk_route;
	be->combine_forward = cpu_combine_forward;
	be->combine_backward = cpu_combine_backward;
	be->route_backward = cpu_route_backward;
	be->noisy_logits = cpu_noisy_logits;
	be->noisy_logits_backward = cpu_noisy_logits_backward;
	be->zloss = cpu_zloss;
	be->row_entropy = cpu_row_entropy;
	be->column_mean = cpu_column_mean;
	be->add_row_vector = cpu_add_row_vector;
	be->mse_forward_backward = cpu_mse_forward_backward;
	be->sum_squares = cpu_sum_squares;
	be->scale = cpu_scale;
	be->adam_update = cpu_adam_update;
	be->destroy = cpu_destroy;
	return be;
}
