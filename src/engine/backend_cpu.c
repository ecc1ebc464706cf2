/*
 * backend_cpu.c — the reference backend: plain loops plus OpenBLAS sgemm.
 *
 * Each function is the CPU twin of a CUDA kernel (cuda/); keep them
 * numerically simple and obviously correct, since the parity tests hold the
 * GPU to them.
 */
#include "backend.h"
#include "gemm_rows.h"
#include "row_ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LAYERNORM_EPS 1e-5f

/* Declared by OpenBLAS; not in the generic cblas.h. */
extern void openblas_set_num_threads(int num_threads);
extern int	openblas_get_num_threads(void);

/*
 * OpenBLAS always runs single-threaded: the engine shares products out
 * among its own threads (gemm_rows.h), which also run the sparse first
 * layers and inference.  Two pools on the same cores made each wait for the
 * other (OpenBLAS's workers spin for a while after every product).
 *
 * Set only when not 1 already: in a forked process (a PostgreSQL backend)
 * OpenBLAS 0.3.21 restarts its thread server on every set, even to 1, and
 * the helper it starts spins for about 0.1 s of CPU before it sleeps.  Set
 * once before the fork (the postmaster, moe_pg.c), no backend pays it.
 */
void
moe_blas_single_threaded(void)
{
	if (openblas_get_num_threads() != 1)
		openblas_set_num_threads(1);
}

void
moe_backend_cpu_set_threads(int threads)
{
	moe_blas_single_threaded();
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

/* Host memory: uploading, downloading and copying are one copy. */
#define cpu_upload cpu_memcpy
#define cpu_download cpu_memcpy
#define cpu_copy cpu_memcpy

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

/* The column blocks [b0, b1) of part t of T, over blocks of width cols. */
static void
part_blocks(int N, int cols, int t, int T, int *n0, int *n1)
{
	int			blocks = (N + cols - 1) / cols,
				per = (blocks + T - 1) / T;

	*n0 = t * per * cols < N ? t * per * cols : N;
	*n1 = (t + 1) * per * cols < N ? (t + 1) * per * cols : N;
}


/*
 * C[M,N] = A op(B) (+ C when accumulate), row-major, as one single-threaded
 * sgemm per part of the columns of C: op(B) is B[K,N] (ldb) or, transposed,
 * B[N,K].  A and its transposition are the caller's.  The parts are whole
 * panels of 32 columns; the same number of threads gives the same bits.
 */
typedef struct sgemm_job
{
	CBLAS_TRANSPOSE ta,
				tb;
	int			M,
				N,
				K;
	const float *A;
	int			lda;
	const float *B;
	int			ldb;
	float		beta;
	float	   *C;
	int			ldc;
} sgemm_job;

static void
sgemm_part(void *arg, int t, int T)
{
	const sgemm_job *j = arg;
	int			n0,
				n1;

	part_blocks(j->N, MOE_SPARSE_PANEL, t, T, &n0, &n1);
	if (n1 <= n0)
		return;
	cblas_sgemm(CblasRowMajor, j->ta, j->tb, j->M, n1 - n0, j->K, 1.0f, j->A, j->lda,
				j->tb == CblasTrans ? j->B + (size_t) n0 * j->ldb : j->B + n0, j->ldb, j->beta,
				j->C + n0, j->ldc);
}

static void
parallel_sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, const float *A, int lda,
			   const float *B, int ldb, float beta, float *C, int ldc)
{
	sgemm_job	j = {ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc};
	int			T = moe_parallel_threads(2.0 * M * N * K),
				panels = (N + MOE_SPARSE_PANEL - 1) / MOE_SPARSE_PANEL;

	moe_run_parts(sgemm_part, &j, T < panels ? T : panels);
}

static void
cpu_linear_forward(moe_backend *be, float *out, const float *in, const float *W,
				   const float *b, int M, int N, int K)
{
	if (M <= 0)
		return;
	for (int m = 0; m < M; m++)
		memcpy(out + (size_t) m * N, b, sizeof(float) * N);
	parallel_sgemm(CblasNoTrans, CblasTrans, M, N, K, in, K, W, K, 1.0f, out, N);
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
cpu_linear_infer_sparse_input(moe_backend *be, float *out, const float *x, const float *panel, int N,
							  int K)
{
	memcpy(out, panel + (size_t) K * N, sizeof(float) * N);
	for (int j = 0; j < K; j++)
		if (x[j] != 0.0f)
		{
			const float *w = panel + (size_t) j * N;
			float		v = x[j];

			for (int n = 0; n < N; n++)
				out[n] += v * w[n];
		}
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
		parallel_sgemm(CblasNoTrans, CblasNoTrans, M, K, N, dout, N, W, K, 0.0f, din, K);
	parallel_sgemm(CblasTrans, CblasNoTrans, N, K, M, dout, N, in, K, 0.0f, dW, K);
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

/* ---- sparse first layers ------------------------------------------- */

/*
 * The sparse first layers' products, shared out among the gemm_rows threads
 * by blocks of SPARSE_COLS output columns: each part owns its columns, and
 * within a column every sum runs in the same order whatever the number of
 * threads, so the bits do not depend on it.  Blocking by columns also keeps
 * what one feature touches (its weights, the entities' partial sums) in
 * the first-level cache.
 */
#define SPARSE_COLS MOE_SPARSE_PANEL

typedef struct sparse_job
{
	float	   *out;
	const float *in;
	const float *scale;
	const float *shift;
	const float *db;
	const int32_t *col_ptr;
	const int32_t *ent;
	const float *val;
	int			U,
				N,
				K;
} sparse_job;

static int
sparse_parts(const sparse_job *j, double flops)
{
	int			T = moe_parallel_threads(flops),
				blocks = (j->N + SPARSE_COLS - 1) / SPARSE_COLS;

	return T < blocks ? T : blocks;
}

/* Wt (column panels) = W^T diag(scale), for the panels of part t: each
 * panel written in order, from SPARSE_COLS rows of W read side by side. */
static void
transpose_scaled_part(void *arg, int t, int T)
{
	const sparse_job *j = arg;
	int			n_lo,
				n_hi;

	part_blocks(j->N, SPARSE_COLS, t, T, &n_lo, &n_hi);
	for (int n0 = n_lo; n0 < n_hi; n0 += SPARSE_COLS)
	{
		int			w = j->N - n0 < SPARSE_COLS ? j->N - n0 : SPARSE_COLS;
		float	   *panel = j->out + (size_t) n0 * j->K;

		for (int k = 0; k < j->K; k++)
			for (int i = 0; i < w; i++)
				panel[(size_t) k * w + i] = j->in[(size_t) (n0 + i) * j->K + k] * j->scale[k];
	}
}

static void
cpu_transpose_scaled(moe_backend *be, float *Wt, const float *W, const float *scale, int N, int K)
{
	sparse_job	j = {.out = Wt, .in = W, .scale = scale, .N = N, .K = K};

	moe_run_parts(transpose_scaled_part, &j, sparse_parts(&j, 8.0 * N * K));
}

/*
 * The entities' values of one block of columns, packed contiguously: rows
 * N floats apart would, for N a power of two, all fall into the same few
 * cache sets and evict each other.
 */
static float *
pack_block(float *pack, const float *rows, int U, int N, int n0, int w)
{
	for (int u = 0; u < U; u++)
		memcpy(pack + (size_t) u * SPARSE_COLS, rows + (size_t) u * N + n0, sizeof(float) * w);
	return pack;
}

/*
 * The inner loops of one feature on one block of SPARSE_COLS columns, in
 * two versions with the same operations in the same order (a multiply,
 * then an add: no fused multiply-add), so the bits do not depend on the
 * CPU: AVX2 where there is one, plain C elsewhere.
 *   scatter: acc[ent[p]] += val[p] * w for the feature's entries p
 *   gather:  out = sum over p of val[p] * d[ent[p]]
 */
typedef void (*sparse_scatter_fn) (float *acc, const float *w, const int32_t *ent, const float *val,
								   int32_t p0, int32_t p1);
typedef void (*sparse_gather_fn) (float *out, const float *d, const int32_t *ent, const float *val,
								  int32_t p0, int32_t p1);

static void
scatter_generic(float *acc, const float *w, const int32_t *ent, const float *val, int32_t p0,
				int32_t p1)
{
	for (int32_t p = p0; p < p1; p++)
	{
		float	   *o = acc + (size_t) ent[p] * SPARSE_COLS;

		for (int n = 0; n < SPARSE_COLS; n++)
			o[n] = o[n] + val[p] * w[n];
	}
}

static void
gather_generic(float *out, const float *d, const int32_t *ent, const float *val, int32_t p0,
			   int32_t p1)
{
	float		acc[SPARSE_COLS] = {0};

	for (int32_t p = p0; p < p1; p++)
	{
		const float *row = d + (size_t) ent[p] * SPARSE_COLS;

		for (int n = 0; n < SPARSE_COLS; n++)
			acc[n] = acc[n] + val[p] * row[n];
	}
	memcpy(out, acc, sizeof(acc));
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2")))
static void
scatter_avx2(float *acc, const float *w, const int32_t *ent, const float *val, int32_t p0, int32_t p1)
{
	__m256		w0 = _mm256_loadu_ps(w),
				w1 = _mm256_loadu_ps(w + 8),
				w2 = _mm256_loadu_ps(w + 16),
				w3 = _mm256_loadu_ps(w + 24);

	for (int32_t p = p0; p < p1; p++)
	{
		float	   *o = acc + (size_t) ent[p] * SPARSE_COLS;
		__m256		v = _mm256_set1_ps(val[p]);

		_mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_mul_ps(v, w0)));
		_mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_loadu_ps(o + 8), _mm256_mul_ps(v, w1)));
		_mm256_storeu_ps(o + 16, _mm256_add_ps(_mm256_loadu_ps(o + 16), _mm256_mul_ps(v, w2)));
		_mm256_storeu_ps(o + 24, _mm256_add_ps(_mm256_loadu_ps(o + 24), _mm256_mul_ps(v, w3)));
	}
}

__attribute__((target("avx2")))
static void
gather_avx2(float *out, const float *d, const int32_t *ent, const float *val, int32_t p0, int32_t p1)
{
	__m256		a0 = _mm256_setzero_ps(),
				a1 = _mm256_setzero_ps(),
				a2 = _mm256_setzero_ps(),
				a3 = _mm256_setzero_ps();

	for (int32_t p = p0; p < p1; p++)
	{
		const float *row = d + (size_t) ent[p] * SPARSE_COLS;
		__m256		v = _mm256_set1_ps(val[p]);

		a0 = _mm256_add_ps(a0, _mm256_mul_ps(v, _mm256_loadu_ps(row)));
		a1 = _mm256_add_ps(a1, _mm256_mul_ps(v, _mm256_loadu_ps(row + 8)));
		a2 = _mm256_add_ps(a2, _mm256_mul_ps(v, _mm256_loadu_ps(row + 16)));
		a3 = _mm256_add_ps(a3, _mm256_mul_ps(v, _mm256_loadu_ps(row + 24)));
	}
	_mm256_storeu_ps(out, a0);
	_mm256_storeu_ps(out + 8, a1);
	_mm256_storeu_ps(out + 16, a2);
	_mm256_storeu_ps(out + 24, a3);
}
#endif

static sparse_scatter_fn
scatter_kernel(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2"))
		return scatter_avx2;
#endif
	return scatter_generic;
}

static sparse_gather_fn
gather_kernel(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2"))
		return gather_avx2;
#endif
	return gather_generic;
}

/* out[u, n] = sum over the features of entity u of val * Wt[feature, n],
 * features in increasing order, for the columns of part t. */
static void
sparse_forward_part(void *arg, int t, int T)
{
	const sparse_job *j = arg;
	sparse_scatter_fn scatter = scatter_kernel();
	float	   *acc = malloc(sizeof(float) * SPARSE_COLS * (j->U > 0 ? j->U : 1));
	int			n_lo,
				n_hi;

	if (acc == NULL)
		abort();				/* a few kB: the caller's own allocations are far larger */
	part_blocks(j->N, SPARSE_COLS, t, T, &n_lo, &n_hi);
	for (int n0 = n_lo; n0 < n_hi; n0 += SPARSE_COLS)
	{
		int			w = n_hi - n0 < SPARSE_COLS ? n_hi - n0 : SPARSE_COLS;

		memset(acc, 0, sizeof(float) * SPARSE_COLS * j->U);
		for (int k = 0; k < j->K; k++)
		{
			float		wk[SPARSE_COLS] = {0};

			if (j->col_ptr[k] == j->col_ptr[k + 1])
				continue;
			memcpy(wk, j->in + (size_t) n0 * j->K + (size_t) k * w, sizeof(float) * w);
			scatter(acc, wk, j->ent, j->val, j->col_ptr[k], j->col_ptr[k + 1]);
		}
		for (int u = 0; u < j->U; u++)
			memcpy(j->out + (size_t) u * j->N + n0, acc + (size_t) u * SPARSE_COLS, sizeof(float) * w);
	}
	free(acc);
}

static void
cpu_sparse_linear_forward(moe_backend *be, float *out, const float *Wt, const int32_t *col_ptr,
						  const int32_t *ent, const float *val, int U, int N, int K)
{
	sparse_job	j = {.out = out, .in = Wt, .col_ptr = col_ptr, .ent = ent, .val = val, .U = U, .N = N,
	.K = K};

	moe_run_parts(sparse_forward_part, &j, sparse_parts(&j, 2.0 * col_ptr[K] * N));
}

/* dWt[k, n] = sum over the entities that have feature k of val * d[u, n],
 * entities in order, for the columns of part t; every row written. */
static void
sparse_backward_part(void *arg, int t, int T)
{
	const sparse_job *j = arg;
	sparse_gather_fn gather = gather_kernel();
	float	   *pack = calloc((size_t) SPARSE_COLS * (j->U > 0 ? j->U : 1), sizeof(float));
	int			n_lo,
				n_hi;

	if (pack == NULL)
		abort();
	part_blocks(j->N, SPARSE_COLS, t, T, &n_lo, &n_hi);
	for (int n0 = n_lo; n0 < n_hi; n0 += SPARSE_COLS)
	{
		int			w = n_hi - n0 < SPARSE_COLS ? n_hi - n0 : SPARSE_COLS;
		const float *d = pack_block(pack, j->in, j->U, j->N, n0, w);

		for (int k = 0; k < j->K; k++)
		{
			float		acc[SPARSE_COLS];

			gather(acc, d, j->ent, j->val, j->col_ptr[k], j->col_ptr[k + 1]);
			memcpy(j->out + (size_t) n0 * j->K + (size_t) k * w, acc, sizeof(float) * w);
		}
	}
	free(pack);
}

static void
cpu_sparse_linear_backward(moe_backend *be, float *dWt, const float *d, const int32_t *col_ptr,
						   const int32_t *ent, const float *val, int N, int K)
{
	int			U = 0;
	sparse_job	j;

	for (int32_t p = 0; p < col_ptr[K]; p++)
		if (ent[p] + 1 > U)
			U = ent[p] + 1;
	j = (sparse_job) {.out = dWt, .in = d, .col_ptr = col_ptr, .ent = ent, .val = val, .U = U, .N = N,
	.K = K};
	moe_run_parts(sparse_backward_part, &j, sparse_parts(&j, 2.0 * col_ptr[K] * N + 4.0 * N * K));
}

/* dW[n, k] = dWt[k, n] scale[k] - db[n] shift[k] scale[k] (dWt in column
 * panels) for the panels of part t, in tiles of SPARSE_COLS inputs as
 * above. */
static void
transpose_scaled_back_part(void *arg, int t, int T)
{
	const sparse_job *j = arg;
	int			n_lo,
				n_hi;

	part_blocks(j->N, SPARSE_COLS, t, T, &n_lo, &n_hi);
	for (int n0 = n_lo; n0 < n_hi; n0 += SPARSE_COLS)
	{
		int			w = j->N - n0 < SPARSE_COLS ? j->N - n0 : SPARSE_COLS;
		const float *panel = j->in + (size_t) n0 * j->K;

		for (int k0 = 0; k0 < j->K; k0 += SPARSE_COLS)
		{
			int			k1 = k0 + SPARSE_COLS < j->K ? k0 + SPARSE_COLS : j->K;

			for (int i = 0; i < w; i++)
			{
				float	   *row = j->out + (size_t) (n0 + i) * j->K;
				float		db = j->db[n0 + i];

				for (int k = k0; k < k1; k++)
					row[k] = panel[(size_t) k * w + i] * j->scale[k] - db * (j->shift[k] * j->scale[k]);
			}
		}
	}
}

static void
cpu_transpose_scaled_back(moe_backend *be, float *dW, const float *dWt, const float *scale,
						  const float *shift, const float *db, int N, int K)
{
	sparse_job	j = {.out = dW, .in = dWt, .scale = scale, .shift = shift, .db = db, .N = N, .K = K};

	moe_run_parts(transpose_scaled_back_part, &j, sparse_parts(&j, 8.0 * N * K));
}

static void
cpu_segment_sum_rows(moe_backend *be, float *out, const float *in, const int32_t *perm,
					 const int32_t *seg_ptr, int U, int N)
{
	for (int u = 0; u < U; u++)
	{
		float	   *o = out + (size_t) u * N;

		memset(o, 0, sizeof(float) * N);
		for (int32_t q = seg_ptr[u]; q < seg_ptr[u + 1]; q++)
		{
			const float *row = in + (size_t) perm[q] * N;

			for (int n = 0; n < N; n++)
				o[n] += row[n];
		}
	}
}

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
		moe_softmax_row(probs + (size_t) m * E, logits + (size_t) m * E, E, inv_t);
}

static void
cpu_softmax_backward(moe_backend *be, float *dlogits, const float *dprobs,
					 const float *probs, int M, int E, float temperature)
{
	float		inv_t = 1.0f / temperature;

	for (int m = 0; m < M; m++)
		moe_softmax_backward_row(dlogits + (size_t) m * E, probs + (size_t) m * E,
								 dprobs + (size_t) m * E, E, inv_t);
}

static void
cpu_topk_route(moe_backend *be, int32_t *sel_idx, float *sel_w, const float *probs,
			   const float *bias, int M, int E, int k)
{
	for (int m = 0; m < M; m++)
		moe_topk_route_row(sel_idx + (size_t) m * k, sel_w + (size_t) m * k,
						   probs + (size_t) m * E, bias, E, k);
}

static void
cpu_combine_forward(moe_backend *be, float *out, const float *w, const float *y, int M, int k)
{
	for (int m = 0; m < M; m++)
		out[m] = moe_combine_row(w + (size_t) m * k, y + (size_t) m * k, k);
}

static void
cpu_combine_backward(moe_backend *be, float *dw, float *dy, const float *dout,
					 const float *w, const float *y, int M, int k)
{
	for (int m = 0; m < M; m++)
		for (int s = 0; s < k; s++)
			moe_combine_backward_at(dw, dy, dout[m], w, y, (size_t) m * k + s);
}

static void
cpu_route_backward(moe_backend *be, float *dprobs, const float *dw, const float *sel_w,
				   const int32_t *sel_idx, const float *probs, int M, int E, int k)
{
	for (int m = 0; m < M; m++)
		moe_route_backward_row(dprobs + (size_t) m * E, dw + (size_t) m * k,
							   sel_w + (size_t) m * k, sel_idx + (size_t) m * k,
							   probs + (size_t) m * E, E, k);
}

static void
cpu_noisy_logits(moe_backend *be, float *out, float *eps, const float *logits,
				 const float *noise_pre, size_t n, uint64_t key)
{
	for (size_t i = 0; i < n; i++)
	{
		eps[i] = moe_counter_normal(key, i);
		out[i] = moe_noisy_logit(logits[i], eps[i], noise_pre[i]);
	}
}

static void
cpu_noisy_logits_backward(moe_backend *be, float *d_noise_pre, const float *d_out,
						  const float *eps, const float *noise_pre, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d_noise_pre[i] = moe_noisy_logit_grad(d_out[i], eps[i], noise_pre[i]);
}

static double
cpu_zloss(moe_backend *be, float *dlogits, const float *logits, int M, int E, float scale)
{
	double		sum = 0.0;

	for (int m = 0; m < M; m++)
	{
		double		lse = moe_zloss_row(dlogits != NULL ? dlogits + (size_t) m * E : NULL,
										logits + (size_t) m * E, E, scale, M);

		sum += lse * lse;
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
	/* one running sum over all rows, term by term */
	for (int m = 0; m < M; m++)
		sum = moe_entropy_row(sum, dprobs != NULL ? dprobs + (size_t) m * E : NULL,
							  probs + (size_t) m * E, E, scale, M, logE);
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
		sum += moe_mse_at(dpred, pred, target, m, M);
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

typedef struct adam_job
{
	float	   *param;
	const float *grad;
	float	   *m,
			   *v;
	size_t		n;
	float		lr,
				beta1,
				beta2,
				eps,
				weight_decay,
				bc1,
				bc2;
} adam_job;

/* Elements [n * t / T, n * (t + 1) / T): each element on its own. */
static void
adam_part(void *arg, int t, int T)
{
	const adam_job *j = arg;
	size_t		i0 = j->n * t / T,
				i1 = j->n * (t + 1) / T;

	for (size_t i = i0; i < i1; i++)
		moe_adam_at(j->param, j->grad, j->m, j->v, i, j->lr, j->beta1, j->beta2, j->eps,
					j->weight_decay, j->bc1, j->bc2);
}

static void
cpu_adam_update(moe_backend *be, float *param, const float *grad, float *m, float *v,
				size_t n, float lr, float beta1, float beta2, float eps,
				float weight_decay, int64_t step)
{
	adam_job	j = {param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
		1.0f - powf(beta1, (float) step), 1.0f - powf(beta2, (float) step)};

	/* about twenty operations per element; memory-bound, so threads help
	 * only as far as the memory bus does */
	moe_run_parts(adam_part, &j, moe_parallel_threads(20.0 * n));
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
	moe_backend_cpu_set_threads(blas_threads);
	be->name = "cpu";
	be->host_memory = true;
	MOE_BACKEND_SET_OPS(be, cpu);
	be->linear_infer_row_sparse = cpu_linear_infer_row_sparse;
	be->linear_infer_sparse_input = cpu_linear_infer_sparse_input;
	return be;
}
