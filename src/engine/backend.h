/*
 * backend.h — the one interface between the model code and the hardware.
 *
 * Every tensor the model touches lives in backend memory and every piece of
 * arithmetic on it is one of the operations below.  backend_cpu.c is the
 * readable reference (OpenBLAS for the matrix products); a CUDA backend
 * implements the same table kernel for kernel.  Callers never learn which
 * backend ran.
 *
 * Conventions: matrices are row-major; "rows" is the batch dimension M.
 * Operations do not fail one by one: a backend that hits an error (a GPU
 * running out of memory, say) records it, ignores further work, and reports
 * it from check(); the model code calls check() at step boundaries.
 */
#ifndef MOE_BACKEND_H
#define MOE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "moe_status.h"

/*
 * The inline functions at the end are shared with CUDA device code
 * (cuda/backend_cuda.cu), so a GPU draws the same dropout masks and noise
 * as the CPU.  Under nvcc they become __host__ __device__; for a C compiler
 * the marker is empty and the CPU code is exactly what it was.
 */
#if defined(__CUDACC__)
#define MOE_HOST_DEVICE __host__ __device__
#else
#define MOE_HOST_DEVICE
#endif

/*
 * Version of this table's layout.  The CUDA backend is a separately built
 * shared object (cuda/moe_pg_cuda.so) that fills in a moe_backend; the
 * loader (backend_loader.h) refuses one built against another layout.
 * Bump it whenever a member is added, removed or reordered.
 */
#define MOE_BACKEND_ABI_VERSION 3
#define MOE_BACKEND_ABI (MOE_BACKEND_ABI_VERSION * 100000u + (unsigned) sizeof(moe_backend))

/*
 * Where element (k, n) of a K x N matrix in column panels lives: panel
 * n / MOE_SPARSE_PANEL holds columns [n0, n0 + w) of every row k, row after
 * row, w = MOE_SPARSE_PANEL except for a narrower last panel.
 */
#define MOE_SPARSE_PANEL 32

static inline size_t
moe_panel_index(int k, int n, int N, int K)
{
	int			n0 = n - n % MOE_SPARSE_PANEL,
				w = N - n0 < MOE_SPARSE_PANEL ? N - n0 : MOE_SPARSE_PANEL;

	return (size_t) n0 * K + (size_t) k * w + (n - n0);
}

typedef struct moe_backend moe_backend;

struct moe_backend
{
	const char *name;
	/* true when backend memory is ordinary host memory (no copies needed) */
	bool		host_memory;

	/* ---- memory ---------------------------------------------------- */
	void	   *(*alloc) (moe_backend *be, size_t bytes);	/* zeroed; NULL on failure */
	void		(*release) (moe_backend *be, void *ptr);
	void		(*upload) (moe_backend *be, void *dst, const void *host_src, size_t bytes);
	void		(*download) (moe_backend *be, void *host_dst, const void *src, size_t bytes);
	void		(*copy) (moe_backend *be, void *dst, const void *src, size_t bytes);
	void		(*fill) (moe_backend *be, float *x, size_t n, float value);
	/* Sticky error state: MOE_OK, or the first failure since the last reset.
	 * Reporting a failure resets it (a session survives a GPU running out
	 * of memory), unless the failure left the device unusable. */
	moe_status	(*check) (moe_backend *be, moe_error *err);

	/* ---- dense layers ---------------------------------------------- */
	/* out[M,N] = in[M,K] . W[N,K]^T + b[N] */
	void		(*linear_forward) (moe_backend *be, float *out, const float *in,
								   const float *W, const float *b, int M, int N, int K);
	/* The same product for inference: row m of out depends on row m of in
	 * alone, bit for bit, whatever M is (gemm_rows.h).  Rows of out, in and
	 * W are ldo, ldi and ldw apart (W may be a block of columns of a wider
	 * matrix); b may be NULL. */
	void		(*linear_infer) (moe_backend *be, float *out, int ldo, const float *in, int ldi,
								 const float *W, int ldw, const float *b, int M, int N, int K);
	/* Optional (NULL: callers use linear_infer): linear_infer for one row
	 * whose input is mostly zeros, also given W's panel (host memory, made by
	 * moe_row_panel_pack); the same bits, fewer weights read.  The CPU has
	 * it: a lone row there waits on weight bytes.  A GPU does not: its
	 * parameters are device memory, and one row waits on the launch. */
	void		(*linear_infer_row_sparse) (moe_backend *be, float *out, const float *in,
											const float *W, int ldw, const float *panel,
											const float *b, int N, int K);
	/* Optional (NULL: callers use linear_infer): an encoder's first layer
	 * for one raw input row x[K] that is mostly zeros, from its encoder
	 * panel (host memory, infer.h: W^T diag(scale) then b - W (shift *
	 * scale)): out[n] = bias[n] + sum over the non-zero x[j], j ascending,
	 * of x[j] * panel[j][n]. */
	void		(*linear_infer_sparse_input) (moe_backend *be, float *out, const float *x,
											  const float *panel, int N, int K);
	/* din[M,K] = dout . W (skipped when din is NULL); dW = dout^T . in;
	 * db = column sums of dout.  dW and db are overwritten, not added to. */
	void		(*linear_backward) (moe_backend *be, float *din, float *dW, float *db,
									const float *dout, const float *in, const float *W,
									int M, int N, int K);
	/* out = gamma * (in - mean) * rstd + beta, per row of N; saves mean, rstd */
	void		(*layernorm_forward) (moe_backend *be, float *out, float *mean, float *rstd,
									  const float *in, const float *gamma, const float *beta,
									  int M, int N);
	/* din is overwritten; dgamma and dbeta are overwritten */
	void		(*layernorm_backward) (moe_backend *be, float *din, float *dgamma, float *dbeta,
									   const float *dout, const float *in, const float *mean,
									   const float *rstd, const float *gamma, int M, int N);
	/* out = max(in, 0), in place allowed */
	void		(*relu_forward) (moe_backend *be, float *out, const float *in, size_t n);
	/* din = dout where out > 0, else 0; in place allowed */
	void		(*relu_backward) (moe_backend *be, float *din, const float *dout,
								  const float *out, size_t n);
	/* Inverted dropout with a counter-based mask: element i is kept when
	 * moe_dropout_uniform(key, i) >= p, and then scaled by 1/(1-p).
	 * mask receives 0 or 1/(1-p); out = in * mask. */
	void		(*dropout_forward) (moe_backend *be, float *out, float *mask, const float *in,
									size_t n, float p, uint64_t key);
	/* dx = dy * mask (in place allowed) */
	void		(*mul) (moe_backend *be, float *out, const float *a, const float *b, size_t n);
	/* y += x */
	void		(*add) (moe_backend *be, float *y, const float *x, size_t n);

	/* ---- sparse first layers (sparse.h) ----------------------------- */
	/*
	 * Wt and dWt are K x N matrices stored in column panels of
	 * MOE_SPARSE_PANEL columns (moe_panel_index): a product that walks the
	 * features for one panel of columns then reads memory in order.
	 */
	/* Wt = (W[N,K] diag(scale))^T */
	void		(*transpose_scaled) (moe_backend *be, float *Wt, const float *W, const float *scale,
									 int N, int K);
	/* out[U,N] = 0; then for every feature j < K and every entry p of its
	 * column (col_ptr[j] <= p < col_ptr[j+1]), in that order:
	 * out[ent[p],:] += val[p] * Wt[j,:] */
	void		(*sparse_linear_forward) (moe_backend *be, float *out, const float *Wt,
										  const int32_t *col_ptr, const int32_t *ent,
										  const float *val, int U, int N, int K);
	/* dWt[j,:] = sum over the entries p of column j, in order, of
	 * val[p] * d[ent[p],:] (0 for a feature without entries) */
	void		(*sparse_linear_backward) (moe_backend *be, float *dWt, const float *d,
										   const int32_t *col_ptr, const int32_t *ent,
										   const float *val, int N, int K);
	/* dW[N,K] = dWt^T diag(scale) - db (shift * scale)^T */
	void		(*transpose_scaled_back) (moe_backend *be, float *dW, const float *dWt,
										  const float *scale, const float *shift,
										  const float *db, int N, int K);
	/* out[u,:] = sum over q from seg_ptr[u] to seg_ptr[u+1], in order, of
	 * in[perm[q],:] (the rows of a batch summed per entity) */
	void		(*segment_sum_rows) (moe_backend *be, float *out, const float *in,
									 const int32_t *perm, const int32_t *seg_ptr, int U, int N);

	/* ---- moving rows ------------------------------------------------ */
	/* dst[i,:] = (src[idx[i],:] - shift) * scale; shift/scale may be NULL */
	void		(*gather_rows) (moe_backend *be, float *dst, const float *src, const int32_t *idx,
								int rows, int width, const float *shift, const float *scale);
	/* dst[idx[i],:] += src[i,:]; idx values must be distinct within one call */
	void		(*scatter_add_rows) (moe_backend *be, float *dst, const float *src,
									 const int32_t *idx, int rows, int width);
	/* out[M, Na+Nb] = [a | b] and its adjoint */
	void		(*concat_cols) (moe_backend *be, float *out, const float *a, const float *b,
								int M, int Na, int Nb);
	void		(*split_cols) (moe_backend *be, float *a, float *b, const float *in,
							   int M, int Na, int Nb);
	/* out[m, j] = (bias[j] + a[a_idx[m] * lda + j]) + b[b_idx[m] * ldb + j]
	 * for j < N: a first layer from its drug and protein parts, added in
	 * this order on every backend so cached and uncached agree. */
	void		(*sum_parts) (moe_backend *be, float *out, int ldo, const float *bias,
							  const float *a, int lda, const int32_t *a_idx,
							  const float *b, int ldb, const int32_t *b_idx, int M, int N);
	/* dst[i] = src[idx[i]] and dst[idx[i]] = src[i] on scalars */
	void		(*gather) (moe_backend *be, float *dst, const float *src, const int32_t *idx, int n);
	void		(*scatter) (moe_backend *be, float *dst, const float *src, const int32_t *idx, int n);

	/* ---- the router ------------------------------------------------- */
	/* probs = softmax(logits / temperature) per row of E */
	void		(*softmax_forward) (moe_backend *be, float *probs, const float *logits,
									int M, int E, float temperature);
	/* dlogits = (probs * (dprobs - sum(probs * dprobs))) / temperature */
	void		(*softmax_backward) (moe_backend *be, float *dlogits, const float *dprobs,
									 const float *probs, int M, int E, float temperature);
	/* Top-k of (probs + bias) per row (bias may be NULL; it steers the
	 * choice only); ties go to the lower expert index.  sel_idx[M,k] holds
	 * the experts in descending order, sel_w[M,k] their probs renormalised
	 * to sum to 1. */
	void		(*topk_route) (moe_backend *be, int32_t *sel_idx, float *sel_w, const float *probs,
							   const float *bias, int M, int E, int k);
	/* out[m] = sum_s w[m,s] * y[m,s] */
	void		(*combine_forward) (moe_backend *be, float *out, const float *w, const float *y,
									int M, int k);
	/* dw[m,s] = dout[m] * y[m,s]; dy[m,s] = dout[m] * w[m,s] */
	void		(*combine_backward) (moe_backend *be, float *dw, float *dy, const float *dout,
									 const float *w, const float *y, int M, int k);
	/* Adjoint of the renormalisation w = p_sel / sum(p_sel): writes dprobs[M,E]
	 * (zero for unselected experts). */
	void		(*route_backward) (moe_backend *be, float *dprobs, const float *dw,
								   const float *sel_w, const int32_t *sel_idx, const float *probs,
								   int M, int E, int k);
	/* Noisy top-k gating (Shazeer et al. 2017), training only:
	 * out = logits + eps * softplus(noise_pre) with eps[i] =
	 * moe_counter_normal(key, i), saved in eps for the backward. */
	void		(*noisy_logits) (moe_backend *be, float *out, float *eps, const float *logits,
								 const float *noise_pre, size_t n, uint64_t key);
	/* d_noise_pre = d_out * eps * sigmoid(noise_pre) */
	void		(*noisy_logits_backward) (moe_backend *be, float *d_noise_pre, const float *d_out,
										  const float *eps, const float *noise_pre, size_t n);
	/* ST-MoE z-loss: returns mean over rows of logsumexp(logits[m,:])^2 and,
	 * when dlogits is not NULL, adds scale times its gradient to dlogits. */
	double		(*zloss) (moe_backend *be, float *dlogits, const float *logits, int M, int E,
						  float scale);
	/* Mean over rows of the row's entropy H(probs[m,:]) / log E; when
	 * dprobs is not NULL, adds scale times its gradient to dprobs. */
	double		(*row_entropy) (moe_backend *be, float *dprobs, const float *probs, int M, int E,
								float scale);
	/* out[j] = mean over rows of x[:, j] */
	void		(*column_mean) (moe_backend *be, float *out, const float *x, int M, int N);
	/* x[m, j] += alpha * v[j] for every row m */
	void		(*add_row_vector) (moe_backend *be, float *x, const float *v, float alpha, int M, int N);

	/* ---- loss and optimiser ----------------------------------------- */
	/* Returns mean (pred - target)^2 and writes dpred = 2 (pred - target) / M. */
	double		(*mse_forward_backward) (moe_backend *be, float *dpred, const float *pred,
										 const float *target, int M);
	/* Sum of squares, for gradient-norm clipping. */
	double		(*sum_squares) (moe_backend *be, const float *x, size_t n);
	void		(*scale) (moe_backend *be, float *x, size_t n, float alpha);
	/* One Adam(W) step over n parameters; step counts from 1. */
	void		(*adam_update) (moe_backend *be, float *param, const float *grad, float *m, float *v,
								size_t n, float lr, float beta1, float beta2, float eps,
								float weight_decay, int64_t step);

	void		(*destroy) (moe_backend *be);
	void	   *state;			/* the backend's own data */
};

/* The CPU backend (always available). blas_threads <= 0 keeps OpenBLAS's choice. */
moe_backend *moe_backend_cpu_create(int blas_threads);

/* Threads of the CPU backend's matrix products; <= 0 means one per core. */
void		moe_backend_cpu_set_threads(int threads);

/* OpenBLAS to one thread (the engine's own threads share products out);
 * cheap when it already is.  Best called once before a process forks. */
void		moe_blas_single_threaded(void);

/* Counter-based uniform in [0,1) used by dropout on every backend, so a
 * CPU and a GPU run draw identical masks. */
static inline MOE_HOST_DEVICE float
moe_dropout_uniform(uint64_t key, uint64_t i)
{
	uint64_t	z = key + (i + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (float) (z >> 40) * (1.0f / 16777216.0f);
}

/* A standard normal from the same counter-based stream (Box-Muller on
 * draws 2i and 2i+1), for the noise of noisy gating. */
static inline MOE_HOST_DEVICE float
moe_counter_normal(uint64_t key, uint64_t i)
{
	float		u1 = moe_dropout_uniform(key, 2 * i) + (0.5f / 16777216.0f);
	float		u2 = moe_dropout_uniform(key, 2 * i + 1);

	return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

/*
 * Fill a backend's table from functions named <prefix>_<op>, one for each
 * op every backend implements (all but the host-memory-only
 * linear_infer_row_sparse and linear_infer_sparse_input).  The CPU and
 * CUDA backends fill theirs with this one list, so neither can leave an op
 * out, or give it another name, without failing to compile.
 */
#define MOE_BACKEND_SET_OPS(be, prefix) \
	do { \
		(be)->alloc = prefix##_alloc; \
		(be)->release = prefix##_release; \
		(be)->upload = prefix##_upload; \
		(be)->download = prefix##_download; \
		(be)->copy = prefix##_copy; \
		(be)->fill = prefix##_fill; \
		(be)->check = prefix##_check; \
		(be)->linear_forward = prefix##_linear_forward; \
		(be)->linear_infer = prefix##_linear_infer; \
		(be)->linear_backward = prefix##_linear_backward; \
		(be)->layernorm_forward = prefix##_layernorm_forward; \
		(be)->layernorm_backward = prefix##_layernorm_backward; \
		(be)->relu_forward = prefix##_relu_forward; \
		(be)->relu_backward = prefix##_relu_backward; \
		(be)->dropout_forward = prefix##_dropout_forward; \
		(be)->mul = prefix##_mul; \
		(be)->add = prefix##_add; \
		(be)->transpose_scaled = prefix##_transpose_scaled; \
		(be)->sparse_linear_forward = prefix##_sparse_linear_forward; \
		(be)->sparse_linear_backward = prefix##_sparse_linear_backward; \
		(be)->transpose_scaled_back = prefix##_transpose_scaled_back; \
		(be)->segment_sum_rows = prefix##_segment_sum_rows; \
		(be)->gather_rows = prefix##_gather_rows; \
		(be)->scatter_add_rows = prefix##_scatter_add_rows; \
		(be)->concat_cols = prefix##_concat_cols; \
		(be)->split_cols = prefix##_split_cols; \
		(be)->sum_parts = prefix##_sum_parts; \
		(be)->gather = prefix##_gather; \
		(be)->scatter = prefix##_scatter; \
		(be)->softmax_forward = prefix##_softmax_forward; \
		(be)->softmax_backward = prefix##_softmax_backward; \
		(be)->topk_route = prefix##_topk_route; \
		(be)->combine_forward = prefix##_combine_forward; \
		(be)->combine_backward = prefix##_combine_backward; \
		(be)->route_backward = prefix##_route_backward; \
		(be)->noisy_logits = prefix##_noisy_logits; \
		(be)->noisy_logits_backward = prefix##_noisy_logits_backward; \
		(be)->zloss = prefix##_zloss; \
		(be)->row_entropy = prefix##_row_entropy; \
		(be)->column_mean = prefix##_column_mean; \
		(be)->add_row_vector = prefix##_add_row_vector; \
		(be)->mse_forward_backward = prefix##_mse_forward_backward; \
		(be)->sum_squares = prefix##_sum_squares; \
		(be)->scale = prefix##_scale; \
		(be)->adam_update = prefix##_adam_update; \
		(be)->destroy = prefix##_destroy; \
	} while (0)

#endif
