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

#include <stddef.h>

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

			for (int n = 0; n < N; n += NR)
			{
				int			nr = N - n < NR ? N - n : NR;

				for (int m = m0; m < m1; m += MR)
				{
					int			mr = m1 - m < MR ? m1 - m : MR;
					float	   *c = C + (size_t) m * ldc + n;
					const float *a = A + (size_t) m * lda;
					const float *w = W + (size_t) n * ldw;

					if (mr == MR && nr == NR)
						tile_avx2(c, a, w, MR, NR, ldc, lda, ldw, k0, k1);
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

void
moe_gemm_rows(float *C, int ldc, const float *A, int lda, const float *W, int ldw,
			  const float *b, int M, int N, int K)
{
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++)
			C[(size_t) m * ldc + n] = b != NULL ? b[n] : 0.0f;
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		gemm_avx2(C, ldc, A, lda, W, ldw, M, N, K);
		return;
	}
#endif
	gemm_generic(C, ldc, A, lda, W, ldw, M, N, K);
}
