/*
 * test_gemm_rows.c — the row-independent product: right within float
 * rounding, and the same bits for a row whatever its batch and whatever the
 * number of threads.
 */
#include <stdlib.h>
#include <string.h>

#include "gemm_rows.h"
#include "unit.h"

static float
value(unsigned i, unsigned salt)
{
	unsigned	h = (i + 1) * 2654435761u ^ salt * 40503u;

	h ^= h >> 13;
	return (float) (h % 2001) / 1000.0f - 1.0f;
}

static float *
filled(size_t n, unsigned salt)
{
	float	   *x = malloc(sizeof(float) * n);

	for (size_t i = 0; i < n; i++)
		x[i] = value((unsigned) i, salt);
	return x;
}

/* Odd sizes, strides and a bias against a double-precision reference. */
static void
test_matches_reference(void)
{
	const int	M = 7,
				N = 13,
				K = 1037,
				lda = K + 3,
				ldw = K + 5,
				ldc = N + 2;
	float	   *A = filled((size_t) M * lda, 1),
			   *W = filled((size_t) N * ldw, 2),
			   *b = filled(N, 3),
			   *C = filled((size_t) M * ldc, 4);
	double		worst = 0.0;

	moe_gemm_rows(C, ldc, A, lda, W, ldw, b, M, N, K);
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++)
		{
			double		ref = b[n];

			for (int k = 0; k < K; k++)
				ref += (double) A[m * lda + k] * W[n * ldw + k];
			if (fabs(C[m * ldc + n] - ref) > worst)
				worst = fabs(C[m * ldc + n] - ref);
		}
	CHECK(worst < 1e-3);		/* sums of ~1000 products of magnitude <= 1 */
	CHECK(C[ldc - 1] == value(ldc - 1, 4));	/* padding between rows untouched */
	free(A), free(W), free(b), free(C);
}

/* Each row alone gives the bits it gets in a batch of 200. */
static void
test_rows_are_independent(void)
{
	const int	M = 200,
				N = 37,
				K = 1100;
	float	   *A = filled((size_t) M * K, 5),
			   *W = filled((size_t) N * K, 6),
			   *batch = malloc(sizeof(float) * M * N),
			   one[37];
	int			same = 0;

	moe_gemm_rows(batch, N, A, K, W, K, NULL, M, N, K);
	for (int m = 0; m < M; m++)
	{
		moe_gemm_rows(one, N, A + (size_t) m * K, K, W, K, NULL, 1, N, K);
		same += memcmp(one, batch + (size_t) m * N, sizeof(one)) == 0;
	}
	CHECK_INT(same, M);
	free(A), free(W), free(batch);
}

/* A product large enough to be shared among threads: the same bits for
 * 1, 2, 3 and 8 threads. */
static void
test_threads_do_not_change_bits(void)
{
	const int	M = 96,
				N = 301,
				K = 2049;
	float	   *A = filled((size_t) M * K, 7),
			   *W = filled((size_t) N * K, 8),
			   *b = filled(N, 9),
			   *ref = malloc(sizeof(float) * M * N),
			   *C = malloc(sizeof(float) * M * N);
	int			threads[] = {2, 3, 8};

	moe_gemm_rows_set_threads(1);
	moe_gemm_rows(ref, N, A, K, W, K, b, M, N, K);
	for (int i = 0; i < 3; i++)
	{
		memset(C, 0, sizeof(float) * M * N);
		moe_gemm_rows_set_threads(threads[i]);
		moe_gemm_rows(C, N, A, K, W, K, b, M, N, K);
		CHECK(memcmp(C, ref, sizeof(float) * M * N) == 0);
	}
	moe_gemm_rows_set_threads(0);
	free(A), free(W), free(b), free(ref), free(C);
}

/*
 * One row from a panel, skipping its zero inputs, against the dense
 * product of that row alone and in a batch: the same bits.  Sizes cover
 * several K blocks, leftover inputs in each, a partial last chunk of
 * columns, a bias and none, a row of zeros only and one without zeros.
 */
static void
test_sparse_row_matches_dense(void)
{
	const int	sizes[][2] = {{256, 512}, {37, 1100}, {64, 8}, {1, 3}, {130, 1029}};

	for (int s = 0; s < 5; s++)
	{
		const int	N = sizes[s][0],
					K = sizes[s][1],
					M = 5,
					ldw = K + 3;
		float	   *A = filled((size_t) M * K, 10 + s),
				   *W = filled((size_t) N * ldw, 20 + s),
				   *b = filled(N, 30 + s),
				   *P = malloc(sizeof(float) * moe_row_panel_floats(N, K)),
				   *dense = malloc(sizeof(float) * M * N),
				   *one = malloc(sizeof(float) * N),
				   *sparse = malloc(sizeof(float) * N);
		int			same = 0;

		/* rows 0-2: about half zeros, like a ReLU's output; 3: all zeros;
		 * 4: no zeros */
		for (int m = 0; m < 3; m++)
			for (int k = 0; k < K; k++)
				if (A[(size_t) m * K + k] < 0.0f)
					A[(size_t) m * K + k] = 0.0f;
		memset(A + (size_t) 3 * K, 0, sizeof(float) * K);
		for (int k = 0; k < K; k++)
			if (A[(size_t) 4 * K + k] == 0.0f)
				A[(size_t) 4 * K + k] = 0.5f;
		moe_row_panel_pack(P, W, ldw, N, K);
		for (int withbias = 0; withbias < 2; withbias++)
		{
			const float *bias = withbias ? b : NULL;

			moe_gemm_rows(dense, N, A, K, W, ldw, bias, M, N, K);
			for (int m = 0; m < M; m++)
			{
				moe_gemm_rows(one, N, A + (size_t) m * K, K, W, ldw, bias, 1, N, K);
				moe_gemv_rows_sparse(sparse, A + (size_t) m * K, W, ldw, P, bias, N, K);
				same += memcmp(sparse, one, sizeof(float) * N) == 0 &&
					memcmp(sparse, dense + (size_t) m * N, sizeof(float) * N) == 0;
			}
		}
		CHECK_INT(same, 2 * M);
		free(A), free(W), free(b), free(P), free(dense), free(one), free(sparse);
	}
}

int
main(void)
{
	RUN(test_matches_reference);
	RUN(test_rows_are_independent);
	RUN(test_threads_do_not_change_bits);
	RUN(test_sparse_row_matches_dense);
	return unit_summary("test_gemm_rows");
}
