/*
 * gemm_rows.h — a matrix product whose every output row depends only on the
 * matching input row, bit for bit.
 *
 * OpenBLAS picks kernels and blockings by the number of rows, so a row
 * scored alone and the same row scored in a batch of 500 can differ in the
 * last bits.  Inference must not (docs/architecture.md, "Serving": a row's
 * prediction never depends on the other rows in its batch), so the
 * inference path uses this product instead: each C[m][n] is computed by the
 * same fixed sequence of operations whatever M is and wherever row m sits.
 */
#ifndef MOE_GEMM_ROWS_H
#define MOE_GEMM_ROWS_H

#include <stddef.h>

/*
 * C[M,N] = A[M,K] . W[N,K]^T + b[N], rows of C, A and W lda, ldc, ldw apart
 * (so W can be a block of columns of a wider matrix).  b may be NULL (0).
 */
void		moe_gemm_rows(float *C, int ldc, const float *A, int lda, const float *W, int ldw,
						  const float *b, int M, int N, int K);

/*
 * Threads of a large product (the columns are shared out; the bits do not
 * depend on the number of threads).  <= 0: one per online CPU, at most 8.
 */
void		moe_gemm_rows_set_threads(int threads);

/*
 * The same threads for other work: fn(arg, t, T) for t = 0 .. T-1, part 0
 * on the calling thread, the others on helpers; returns when all are done.
 * Each part must write its own outputs, so that the bits do not depend on
 * T.  moe_parallel_threads says how many parts a job of that many flops is
 * worth (1 below a few million).
 */
typedef void (*moe_part_fn) (void *arg, int t, int T);
void		moe_run_parts(moe_part_fn fn, void *arg, int parts);
int			moe_parallel_threads(double flops);

/*
 * One row whose input has many zeros (a ReLU's output: per-row scoring),
 * from a panel of W packed by moe_row_panel_pack: the rows of the panel
 * that meet a zero input are not read, which halves the weights streamed
 * per pair.  The bits are moe_gemm_rows's with M = 1: the panel keeps the
 * product's summation order, and a zero term leaves a partial sum as it is
 * (for finite weights, which checkpoints guarantee).  W and ldw serve CPUs
 * without AVX2 and FMA (there it is moe_gemm_rows itself) and inputs wider
 * than MOE_ROW_PANEL_MAX_K.
 */
#define MOE_ROW_PANEL_MAX_K 4096

/* Floats of the panel of an N x K weight matrix. */
size_t		moe_row_panel_floats(int N, int K);

/* W[N,K] (rows ldw apart) into panel P of moe_row_panel_floats(N, K). */
void		moe_row_panel_pack(float *P, const float *W, int ldw, int N, int K);

/* c[N] = a[K] . W^T + b (b may be NULL), reading P where it can. */
void		moe_gemv_rows_sparse(float *c, const float *a, const float *W, int ldw, const float *P,
								 const float *b, int N, int K);

#endif
