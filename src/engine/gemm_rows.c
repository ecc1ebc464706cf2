/*
 * gemm_rows.c — the row-independent product of gemm_rows.h.
 *
 * Per output element the arithmetic is fixed by K alone: K is cut into
 * blocks of KB values; within a block, 8 lane accumulators each sum every
 * 8th product (fused multiply-add where the CPU has it), the lanes are
 * reduced in a fixed tree, the block's leftover values are added one by
 * one, and the block sum is added to C.  Tiling over rows and columns only
 * changes which elements are computed together, never how one is computed.
 */
#include "gemm_rows.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KB 512					/* K block: keeps tiles of A in L2 */
#define MR 3					/* rows per register tile */
#define NR 4					/* columns per register tile */
#define M_CHUNK 48				/* rows of A kept hot per K block */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static inline float
hsum8(__m256 v)
{
	/* fixed tree: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then (0+1) */
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);
	__m128		s = _mm_add_ps(lo, hi);
	__m128		t = _mm_add_ps(s, _mm_movehl_ps(s, s));

	return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

/*
 * One tile of mr x nr outputs over k in [k0, k1).  mr <= MR and nr <= NR;
 * the compiler specialises the constant-size calls.
 */
__attribute__((target("avx2,fma")))
static inline void
tile_avx2(float *C, const float *A, const float *W, int mr, int nr, int ldc, int lda, int ldw,
		  int k0, int k1)
{
	__m256		acc[MR][NR];
	int			k8 = k0 + ((k1 - k0) / 8) * 8;

	for (int i = 0; i < mr; i++)
		for (int j = 0; j < nr; j++)
			acc[i][j] = _mm256_setzero_ps();
	for (int k = k0; k < k8; k += 8)
	{
		__m256		a[MR];

		for (int i = 0; i < mr; i++)
			a[i] = _mm256_loadu_ps(A + (size_t) i * lda + k);
		for (int j = 0; j < nr; j++)
		{
			__m256		w = _mm256_loadu_ps(W + (size_t) j * ldw + k);

			for (int i = 0; i < mr; i++)
				acc[i][j] = _mm256_fmadd_ps(a[i], w, acc[i][j]);
		}
	}
	for (int i = 0; i < mr; i++)
		for (int j = 0; j < nr; j++)
		{
			float		s = hsum8(acc[i][j]);

			for (int k = k8; k < k1; k++)
				s = __builtin_fmaf(A[(size_t) i * lda + k], W[(size_t) j * ldw + k], s);
			C[(size_t) i * ldc + j] += s;
		}
}

/*
 * One row against eight columns: the per-row scoring case, where every
 * weight is read once per call and the product waits on memory; eight
 * independent streams keep more loads in flight than a 1 x 4 tile.  Each
 * element's arithmetic is exactly tile_avx2's.
 */
__attribute__((target("avx2,fma")))
static inline void
row8_avx2(float *C, const float *A, const float *W, int ldw, int k0, int k1)
{
	__m256		acc[8];
	int			k8 = k0 + ((k1 - k0) / 8) * 8;

	for (int j = 0; j < 8; j++)
		acc[j] = _mm256_setzero_ps();
	for (int k = k0; k < k8; k += 8)
	{
		__m256		a = _mm256_loadu_ps(A + k);

		for (int j = 0; j < 8; j++)
			acc[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(W + (size_t) j * ldw + k), acc[j]);
	}
	for (int j = 0; j < 8; j++)
	{
		float		s = hsum8(acc[j]);

		for (int k = k8; k < k1; k++)
			s = __builtin_fmaf(A[k], W[(size_t) j * ldw + k], s);
		C[j] += s;
	}
}

__attribute__((target("avx2,fma")))
static void
gemm_avx2(float *C, int ldc, const float *A, int lda, const float *W, int ldw, int M, int N, int K)
{
	for (int k0 = 0; k0 < K; k0 += KB)
	{
		int			k1 = k0 + KB < K ? k0 + KB : K;

		for (int m0 = 0; m0 < M; m0 += M_CHUNK)
		{
			int			m1 = m0 + M_CHUNK < M ? m0 + M_CHUNK : M;
			int			n = 0;

			if (m1 - m0 == 1)
				for (; n + 8 <= N; n += 8)
					row8_avx2(C + (size_t) m0 * ldc + n, A + (size_t) m0 * lda,
							  W + (size_t) n * ldw, ldw, k0, k1);
			for (; n < N; n += NR)
			{
				int			nr = N - n < NR ? N - n : NR;

				for (int m = m0; m < m1; m += MR)
				{
					int			mr = m1 - m < MR ? m1 - m : MR;
					float	   *c = C + (size_t) m * ldc + n;
					const float *a = A + (size_t) m * lda;
					const float *w = W + (size_t) n * ldw;

					/* constant sizes let the compiler keep the tile in
					 * registers; one row is the per-row scoring case */
					if (mr == MR && nr == NR)
						tile_avx2(c, a, w, MR, NR, ldc, lda, ldw, k0, k1);
					else if (mr == 1 && nr == NR)
						tile_avx2(c, a, w, 1, NR, ldc, lda, ldw, k0, k1);
					else if (mr == 2 && nr == NR)
						tile_avx2(c, a, w, 2, NR, ldc, lda, ldw, k0, k1);
					else
						tile_avx2(c, a, w, mr, nr, ldc, lda, ldw, k0, k1);
				}
			}
		}
	}
}
#endif

/* Portable twin with the same structure (8 lanes, same tree, same blocks);
 * without FMA its bits differ from the AVX2 path, but it too is
 * row-independent, which is the property that matters. */
static void
gemm_generic(float *C, int ldc, const float *A, int lda, const float *W, int ldw, int M, int N,
			 int K)
{
	for (int k0 = 0; k0 < K; k0 += KB)
	{
		int			k1 = k0 + KB < K ? k0 + KB : K;
		int			k8 = k0 + ((k1 - k0) / 8) * 8;

		for (int m = 0; m < M; m++)
			for (int n = 0; n < N; n++)
			{
				const float *a = A + (size_t) m * lda;
				const float *w = W + (size_t) n * ldw;
				float		lane[8] = {0};
				float		s;

				for (int k = k0; k < k8; k += 8)
					for (int l = 0; l < 8; l++)
						lane[l] += a[k + l] * w[k + l];
				s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
					((lane[1] + lane[5]) + (lane[3] + lane[7]));
				for (int k = k8; k < k1; k++)
					s += a[k] * w[k];
				C[(size_t) m * ldc + n] += s;
			}
	}
}

static int	gemm_threads = 0;	/* 0: one per online CPU, at most MAX_THREADS */

#define MAX_THREADS 8
#define MIN_FLOPS_PER_THREAD (16 << 20)	/* below this a thread costs more than it saves */

void
moe_gemm_rows_set_threads(int threads)
{
	gemm_threads = threads > MAX_THREADS ? MAX_THREADS : threads;
}

static int
thread_count(int M, int N, int K)
{
	int			t = moe_parallel_threads(2.0 * M * N * K);

	/* every thread gets at least one full column tile */
	while (t > 1 && N / t < 4)
		t--;
	return t;
}

/* One thread's share: the columns [n0, n1) of every row. */
typedef struct gemm_part
{
	float	   *C;
	const float *A,
			   *W;
	int			ldc,
				lda,
				ldw,
				M,
				n0,
				n1,
				K;
} gemm_part;

static void
gemm_columns(const gemm_part *g)
{
	float	   *C = g->C + g->n0;
	const float *W = g->W + (size_t) g->n0 * g->ldw;
	int			N = g->n1 - g->n0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		gemm_avx2(C, g->ldc, g->A, g->lda, W, g->ldw, g->M, N, g->K);
		return;
	}
#endif
	gemm_generic(C, g->ldc, g->A, g->lda, W, g->ldw, g->M, N, g->K);
}

/*
 * A small pool of helper threads, started on first need and kept: starting
 * a thread per product costs more than a product of a few million flops.
 * Every worker wakes for every generation of jobs and acknowledges it, so
 * none can miss one; worker i runs part i when there is one.  Helpers
 * block every signal: the host's signal handlers (PostgreSQL's) must run
 * on the calling thread.
 */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_caller = PTHREAD_MUTEX_INITIALIZER;	/* one job at a time */
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static int	pool_size = 0;		/* helpers started (worker numbers 1..pool_size) */
static unsigned long pool_generation = 0;
static int	pool_pending = 0;
static moe_part_fn pool_fn = NULL;
static void *pool_arg = NULL;
static int	pool_nparts = 0;
static unsigned long pool_start_generation[MAX_THREADS];	/* per worker, at its start */

static void *
pool_worker(void *arg)
{
	int			me = (int) (intptr_t) arg;
	unsigned long seen = 0;

	pthread_mutex_lock(&pool_lock);
	/* not pool_generation: jobs may have been posted before this thread ran */
	seen = pool_start_generation[me];
	for (;;)
	{
		moe_part_fn fn;
		void	   *job_arg;
		int			nparts;

		while (pool_generation == seen)
			pthread_cond_wait(&pool_work, &pool_lock);
		seen = pool_generation;
		fn = pool_fn;
		job_arg = pool_arg;
		nparts = pool_nparts;
		pthread_mutex_unlock(&pool_lock);
		if (me < nparts)
			fn(job_arg, me, nparts);
		pthread_mutex_lock(&pool_lock);
		if (--pool_pending == 0)
			pthread_cond_signal(&pool_done);
	}
	return NULL;
}

/* Make sure helpers 1..want-1 exist; returns how many parts can run. */
static int
pool_grow(int want)
{
	sigset_t	all,
				old;

	if (pool_size >= want - 1)
		return want;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_mutex_lock(&pool_lock);
	while (pool_size < want - 1)
	{
		pthread_t	tid;

		pool_start_generation[pool_size + 1] = pool_generation;
		if (pthread_create(&tid, NULL, pool_worker, (void *) (intptr_t) (pool_size + 1)) != 0)
			break;
		pthread_detach(tid);
		pool_size++;
	}
	pthread_mutex_unlock(&pool_lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool_size + 1 < want ? pool_size + 1 : want;
}

int
moe_parallel_threads(double flops)
{
	int			t = gemm_threads;

	if (flops < 2.0 * MIN_FLOPS_PER_THREAD)
		return 1;
	if (t <= 0)
	{
		static int	cpus = 0;	/* asked once: sysconf reads /sys each time */

		if (cpus == 0)
		{
			long		n = sysconf(_SC_NPROCESSORS_ONLN);

			cpus = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int) n;
		}
		t = cpus;
	}
	while (t > 1 && flops / t < MIN_FLOPS_PER_THREAD)
		t--;
	return t;
}

void
moe_run_parts(moe_part_fn fn, void *arg, int parts)
{
	if (parts > MAX_THREADS)
		parts = MAX_THREADS;
	if (parts <= 1)
	{
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&pool_caller);
	parts = pool_grow(parts);
	if (parts <= 1)
	{
		/* no helper could be started */
		pthread_mutex_unlock(&pool_caller);
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&pool_lock);
	pool_fn = fn;
	pool_arg = arg;
	pool_nparts = parts;
	pool_pending = pool_size;
	pool_generation++;
	pthread_cond_broadcast(&pool_work);
	pthread_mutex_unlock(&pool_lock);
	fn(arg, 0, parts);
	pthread_mutex_lock(&pool_lock);
	while (pool_pending > 0)
		pthread_cond_wait(&pool_done, &pool_lock);
	pool_fn = NULL;
	pthread_mutex_unlock(&pool_lock);
	pthread_mutex_unlock(&pool_caller);
}

/* One product's split: part t of T computes its share of the columns. */
typedef struct gemm_job
{
	float	   *C;
	const float *A,
			   *W;
	int			ldc,
				lda,
				ldw,
				M,
				N,
				K;
} gemm_job;

static void
gemm_part_run(void *arg, int t, int T)
{
	const gemm_job *j = arg;
	/*
	 * Splitting the columns among threads changes which elements are
	 * computed together, never how one element is computed, so the bits do
	 * not depend on T.
	 */
	int			per = (j->N / T + 3) / 4 * 4,	/* whole column tiles per part */
				n0 = t * per,
				n1 = t == T - 1 ? j->N : (t + 1) * per;
	gemm_part	part = {j->C, j->A, j->W, j->ldc, j->lda, j->ldw, j->M, n0 < j->N ? n0 : j->N,
	n1 < j->N ? n1 : j->N, j->K};

	gemm_columns(&part);
}

void
moe_gemm_rows(float *C, int ldc, const float *A, int lda, const float *W, int ldw,
			  const float *b, int M, int N, int K)
{
	gemm_job	job = {C, A, W, ldc, lda, ldw, M, N, K};

	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++)
			C[(size_t) m * ldc + n] = b != NULL ? b[n] : 0.0f;
	moe_run_parts(gemm_part_run, &job, thread_count(M, N, K));
}

/* ---- one sparse row from a panel ------------------------------------ */

/*
 * A panel holds W in chunks of PANEL_COLS output columns (the last one
 * padded with zeros); within a chunk one row of PANEL_COLS weights per
 * input k, in the order the product sums them: K block by K block, and
 * within a block lane 0's inputs (k0, k0 + 8, ...), lane 1's, ..., lane
 * 7's, then the block's leftover inputs.  A row's non-zero inputs then
 * pick rows of the panel in increasing address order.
 */
#define PANEL_COLS 64
#define PANEL_GROUPS 9			/* 8 lanes and the leftovers, per K block */
#define PREFETCH_ROWS 8			/* how far ahead a sparse row's weights are fetched */

size_t
moe_row_panel_floats(int N, int K)
{
	return (size_t) ((N + PANEL_COLS - 1) / PANEL_COLS) * PANEL_COLS * (size_t) K;
}

/* The input k at each panel row, in summation order. */
static void
panel_order(int K, int32_t *order)
{
	int			pos = 0;

	for (int k0 = 0; k0 < K; k0 += KB)
	{
		int			k1 = k0 + KB < K ? k0 + KB : K;
		int			k8 = k0 + ((k1 - k0) / 8) * 8;

		for (int lane = 0; lane < 8; lane++)
			for (int k = k0 + lane; k < k8; k += 8)
				order[pos++] = k;
		for (int k = k8; k < k1; k++)
			order[pos++] = k;
	}
}

void
moe_row_panel_pack(float *P, const float *W, int ldw, int N, int K)
{
	int32_t    *order = malloc(sizeof(int32_t) * (K > 0 ? K : 1));

	if (order == NULL)
		abort();				/* K ints: the caller just allocated far more */
	panel_order(K, order);
	for (int n0 = 0; n0 < N; n0 += PANEL_COLS)
	{
		float	   *chunk = P + (size_t) n0 * K;

		for (int pos = 0; pos < K; pos++)
			for (int j = 0; j < PANEL_COLS; j++)
				chunk[(size_t) pos * PANEL_COLS + j] =
					n0 + j < N ? W[(size_t) (n0 + j) * ldw + order[pos]] : 0.0f;
	}
	free(order);
}

#if defined(__x86_64__) && defined(__GNUC__)

/*
 * The non-zero inputs of a, as panel rows and values, grouped: group g of
 * K block b is entries [start[b * 9 + g], start[b * 9 + g + 1]).
 */
static int
nonzero_groups(const float *a, int K, int32_t *row, float *val, int32_t *start)
{
	int			pos = 0,
				n = 0,
				g = 0;

	for (int k0 = 0; k0 < K; k0 += KB)
	{
		int			k1 = k0 + KB < K ? k0 + KB : K;
		int			k8 = k0 + ((k1 - k0) / 8) * 8;

		for (int lane = 0; lane <= 8; lane++)
		{
			int			from = lane < 8 ? k0 + lane : k8,
						to = lane < 8 ? k8 : k1,
						step = lane < 8 ? 8 : 1;

			start[g++] = n;
			for (int k = from; k < to; k += step, pos++)
				if (a[k] != 0.0f)
				{
					row[n] = pos;
					val[n++] = a[k];
				}
		}
	}
	start[g] = n;
	/* prefetches past the end touch the first row, which is harmless */
	for (int i = 0; i < PREFETCH_ROWS; i++)
		row[n + i] = 0;
	return g;
}

/*
 * One chunk of PANEL_COLS outputs: per K block, each lane's sum over its
 * non-zero inputs in increasing k (fused multiply-add from zero, as
 * tile_avx2's accumulators), the lanes reduced in hsum8's tree, the
 * leftovers added one by one, the block sum added to c.
 */
__attribute__((target("avx2,fma")))
static void
sparse_chunk_avx2(float *c, const float *chunk, const int32_t *row, const float *val,
				  const int32_t *start, int blocks)
{
	__m256		out[PANEL_COLS / 8];

	for (int v = 0; v < PANEL_COLS / 8; v++)
		out[v] = _mm256_loadu_ps(c + 8 * v);
	for (int blk = 0; blk < blocks; blk++)
	{
		const int32_t *g = start + blk * PANEL_GROUPS;
		float		lanes[8][PANEL_COLS] __attribute__((aligned(32)));

		for (int lane = 0; lane < 8; lane++)
		{
			__m256		acc[PANEL_COLS / 8];

			for (int v = 0; v < PANEL_COLS / 8; v++)
				acc[v] = _mm256_setzero_ps();
			for (int t = g[lane]; t < g[lane + 1]; t++)
			{
				const float *w = chunk + (size_t) row[t] * PANEL_COLS;
				const char *ahead = (const char *) (chunk + (size_t) row[t + PREFETCH_ROWS] * PANEL_COLS);
				__m256		x = _mm256_set1_ps(val[t]);

				/* the rows picked skip around: the hardware prefetcher
				 * loses the stream, so name the rows a few steps ahead */
				for (int line = 0; line < PANEL_COLS * 4; line += 64)
					_mm_prefetch(ahead + line, _MM_HINT_T0);

				for (int v = 0; v < PANEL_COLS / 8; v++)
					acc[v] = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + 8 * v), acc[v]);
			}
			for (int v = 0; v < PANEL_COLS / 8; v++)
				_mm256_store_ps(lanes[lane] + 8 * v, acc[v]);
		}
		for (int v = 0; v < PANEL_COLS / 8; v++)
		{
#define LANE(l) _mm256_load_ps(lanes[l] + 8 * v)
			__m256		s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(LANE(0), LANE(4)),
														_mm256_add_ps(LANE(2), LANE(6))),
										  _mm256_add_ps(_mm256_add_ps(LANE(1), LANE(5)),
														_mm256_add_ps(LANE(3), LANE(7))));
#undef LANE

			for (int t = g[8]; t < g[9]; t++)
				s = _mm256_fmadd_ps(_mm256_set1_ps(val[t]),
									_mm256_loadu_ps(chunk + (size_t) row[t] * PANEL_COLS + 8 * v), s);
			out[v] = _mm256_add_ps(out[v], s);
		}
	}
	for (int v = 0; v < PANEL_COLS / 8; v++)
		_mm256_storeu_ps(c + 8 * v, out[v]);
}

__attribute__((target("avx2,fma")))
static void
gemv_sparse_avx2(float *c, const float *a, const float *P, const float *b, int N, int K)
{
	int32_t		row[MOE_ROW_PANEL_MAX_K + PREFETCH_ROWS],
				start[(MOE_ROW_PANEL_MAX_K / KB + 1) * PANEL_GROUPS + 1];
	float		val[MOE_ROW_PANEL_MAX_K];
	int			blocks = nonzero_groups(a, K, row, val, start) / PANEL_GROUPS;

	for (int n0 = 0; n0 < N; n0 += PANEL_COLS)
	{
		float		out[PANEL_COLS];
		int			width = N - n0 < PANEL_COLS ? N - n0 : PANEL_COLS;

		for (int j = 0; j < PANEL_COLS; j++)
			out[j] = b != NULL && j < width ? b[n0 + j] : 0.0f;
		sparse_chunk_avx2(out, P + (size_t) n0 * K, row, val, start, blocks);
		memcpy(c + n0, out, sizeof(float) * width);
	}
}
#endif

void
moe_gemv_rows_sparse(float *c, const float *a, const float *W, int ldw, const float *P,
					 const float *b, int N, int K)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (P != NULL && K <= MOE_ROW_PANEL_MAX_K &&
		__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		gemv_sparse_avx2(c, a, P, b, N, K);
		return;
	}
#endif
	moe_gemm_rows(c, N, a, K, W, ldw, b, 1, N, K);
}
