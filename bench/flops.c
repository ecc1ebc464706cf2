/*
 * bench/flops.c — what the matrix products of this machine can do:
 * OpenBLAS sgemm (all threads and one) and the engine's row-independent
 * product, in GFLOP/s, measured in one run.  Used by bench/scoring.sh to
 * put bulk scoring in proportion to the machine's FLOP limit.
 *
 *   cc -O3 -Isrc/engine bench/flops.c src/engine/gemm_rows.c -lopenblas -o flops && ./flops
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemm_rows.h"

extern void openblas_set_num_threads(int);
extern int	openblas_get_num_procs(void);

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best of several runs of C[M,N] = A[M,K] W[N,K]^T, in GFLOP/s. */
static double
measure(int M, int N, int K, int which)
{
	float	   *A = malloc(sizeof(float) * M * K),
			   *W = malloc(sizeof(float) * N * K),
			   *C = malloc(sizeof(float) * M * N),
			   *b = calloc(N, sizeof(float));
	double		best = 1e30;

	for (int i = 0; i < M * K; i++)
		A[i] = (float) (i % 7) * 0.1f;
	for (int i = 0; i < N * K; i++)
		W[i] = (float) (i % 5) * 0.1f;
	for (int rep = 0; rep < 5; rep++)
	{
		double		t0 = now();

		if (which == 0)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N);
		else
			moe_gemm_rows(C, N, A, K, W, K, b, M, N, K);
		t0 = now() - t0;
		if (t0 < best)
			best = t0;
	}
	free(A), free(W), free(C), free(b);
	return 2.0 * M * N * K / best / 1e9;
}

int
main(void)
{
	int			procs = openblas_get_num_procs();

	openblas_set_num_threads(procs);
	printf("sgemm_gflops_all_threads %.1f threads %d\n", measure(1024, 1024, 1024, 0), procs);
	openblas_set_num_threads(1);
	printf("sgemm_gflops_one_thread %.1f\n", measure(1024, 1024, 1024, 0));
	printf("gemm_rows_gflops_256x512x1024 %.1f\n", measure(256, 512, 1024, 1));
	printf("gemm_rows_gflops_1x512x8420 %.1f\n", measure(1, 512, 8420, 1));
	printf("gemm_rows_gflops_256x512x8420 %.1f\n", measure(256, 512, 8420, 1));
	return 0;
}
