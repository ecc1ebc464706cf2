/*
 * gemm_rows.h — a matrix product whose every output row depends only on the
 * matching input row, bit for bit.
 *
 * OpenBLAS picks kernels and blockings by the number of rows, so a row
 * scored alone and the same row scored in a batch of 500 can differ in the
 * last bits.  Inference must not (ARCHITECTURE.md section 5: a row's
 * prediction never depends on the other rows in its batch), so the
 * inference path uses this product instead: each C[m][n] is computed by the
 * same fixed sequence of operations whatever M is and wherever row m sits.
 */
#ifndef MOE_GEMM_ROWS_H
#define MOE_GEMM_ROWS_H

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

#endif
