/*
 * backend_cuda.cu — the CUDA backend: cuBLAS for the training GEMMs, and one
 * kernel per function of src/engine/backend_cpu.c, its CPU twin.
 *
 * Each kernel follows its twin's formula and, wherever the twin's order of
 * operations can be kept without giving up the parallelism that matters, its
 * order too, so most results are the CPU's bits:
 *
 *   - elementwise kernels (ReLU, dropout, mul, add, scale, gathers, Adam,
 *     the bias fills) are one thread per element with the twin's
 *     expression; this file is compiled with --fmad=false, so a*b+c is never
 *     contracted into an FMA that the CPU build does not do either;
 *   - per-row kernels (softmax, top-k, combine, route, z-loss, entropy,
 *     MSE) are one thread per row calling the very function the twin's loop
 *     calls (src/engine/row_ops.h, which also holds the per-element
 *     bodies of Adam, the combine's backward and the noisy logits);
 *     LayerNorm's forward keeps the twin's eight interleaved accumulators
 *     (eight lanes of a warp) and its reduction tree;
 *   - column sums (bias gradients, LayerNorm's gamma/beta gradients, column
 *     means) are one thread per column adding the rows in order;
 *   - linear_infer is our own kernel with gemm_rows.c's exact sequence per
 *     output (K blocks of 512, eight FMA lanes, the same tree, the tail
 *     FMAs), so it is row-independent bit for bit like the CPU's, and equal
 *     to the CPU's AVX2+FMA path;
 *   - linear_forward/linear_backward use cuBLAS sgemm (FP32, no TF32), whose
 *     summation order differs from OpenBLAS: those, and everything fed by
 *     them, match within the tolerances of docs/cuda.md, not bit for bit;
 *   - expf/logf/exp/log/cosf come from CUDA's libdevice, which may differ
 *     from glibc by an ulp or two (softmax, noise, softplus, z-loss,
 *     entropy).
 *
 * Errors never abort: the first failure is recorded (out of memory as
 * MOE_ERR_NOMEM), later work is skipped, and check() reports it.  Reporting
 * clears it unless the device is left unusable (an illegal address, say),
 * in which case every later call fails the same way.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <type_traits>

#include "backend.h"
#include "backend_loader.h"
#include "row_ops.h"
#include "backend_cuda.h"

/* The entry points have exactly the types the loader looks them up as. */
static_assert(std::is_same<decltype(&moe_cuda_abi), moe_cuda_abi_fn>::value, "moe_cuda_abi");
static_assert(std::is_same<decltype(&moe_cuda_device_count), moe_cuda_device_count_fn>::value,
			  "moe_cuda_device_count");
static_assert(std::is_same<decltype(&moe_cuda_device_name), moe_cuda_device_name_fn>::value,
			  "moe_cuda_device_name");
static_assert(std::is_same<decltype(&moe_cuda_backend_create), moe_cuda_backend_create_fn>::value,
			  "moe_cuda_backend_create");

#define EXPORT extern "C" MOE_CUDA_EXPORT

#define LAYERNORM_EPS 1e-5f		/* backend_cpu.c */
#define THREADS 256				/* per block, elementwise and per-row kernels */

/* ---- state and errors ------------------------------------------------- */

typedef struct cu_state
{
	int			device;
	cudaStream_t stream;
	cublasHandle_t blas;
	moe_status	status;			/* sticky: the first failure, or MOE_OK */
	bool		fatal;			/* the device is unusable: never cleared */
	char		message[256];
	/* scratch, grown on demand */
	double	   *d_doubles;
	size_t		d_doubles_cap;
	float	   *d_floats;
	size_t		d_floats_cap;
	double	   *h_doubles;
	size_t		h_doubles_cap;
} cu_state;

static inline cu_state *
S(moe_backend *be)
{
	return (cu_state *) be->state;
}

static void
set_error(moe_error *err, moe_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_error(moe_error *err, moe_status st, const char *fmt, ...)
{
	va_list		ap;

	if (err == NULL)
		return;
	err->status = st;
	err->position = 0;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Record the first failure; later ones are consequences of it. */
static void
fail(moe_backend *be, moe_status st, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
fail(moe_backend *be, moe_status st, bool fatal, const char *fmt, ...)
{
	cu_state   *s = S(be);
	va_list		ap;

	if (s->status != MOE_OK)
		return;
	s->status = st;
	s->fatal = fatal;
	va_start(ap, fmt);
	vsnprintf(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
}

/* Errors after which the context is still good (CUDA clears them). */
static bool
recoverable(cudaError_t e)
{
	return e == cudaErrorMemoryAllocation || e == cudaErrorInvalidValue ||
		e == cudaErrorInvalidConfiguration || e == cudaErrorLaunchOutOfResources;
}

static void
cuda_failed(moe_backend *be, cudaError_t e, const char *what)
{
	bool		fatal = !recoverable(e);

	if (e == cudaErrorMemoryAllocation)
		fail(be, MOE_ERR_NOMEM, false, "out of GPU memory in %s", what);
	else
		fail(be, MOE_ERR_BACKEND, fatal, "CUDA error in %s: %s%s", what, cudaGetErrorString(e),
			 fatal ? " (the GPU is unusable in this session; reconnect)" : "");
}

/* After a launch or an API call: record what went wrong, if anything. */
static bool
ok_after(moe_backend *be, cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		e = cudaGetLastError();
	else
		(void) cudaGetLastError();	/* clear it; we keep our own copy */
	if (e != cudaSuccess)
	{
		cuda_failed(be, e, what);
		return false;
	}
	return true;
}

#define LAUNCHED(be, what) ok_after((be), cudaSuccess, (what))

static bool
blas_ok(moe_backend *be, cublasStatus_t st, const char *what)
{
	if (st == CUBLAS_STATUS_SUCCESS)
		return true;
	if (st == CUBLAS_STATUS_ALLOC_FAILED)
		fail(be, MOE_ERR_NOMEM, false, "out of GPU memory in %s (cuBLAS)", what);
	else
		fail(be, MOE_ERR_BACKEND, st == CUBLAS_STATUS_EXECUTION_FAILED,
			 "cuBLAS error %d in %s", (int) st, what);
	return false;
}

/* True when work may go ahead. */
static inline bool
live(moe_backend *be)
{
	return S(be)->status == MOE_OK;
}

static inline unsigned
blocks_for(size_t n, unsigned threads)
{
	size_t		b = (n + threads - 1) / threads;

	/* grid-stride loops cover the rest */
	return (unsigned) (b > (size_t) 1 << 20 ? (size_t) 1 << 20 : b);
}

#define GRID_STRIDE(i, n) \
	for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
		 i += (size_t) blockDim.x * gridDim.x)

/* Device scratch of at least n doubles / floats, host scratch of n doubles. */
static double *
d_doubles(moe_backend *be, size_t n)
{
	cu_state   *s = S(be);

	if (n > s->d_doubles_cap)
	{
		void	   *p = NULL;

		cudaFree(s->d_doubles);
		s->d_doubles = NULL;
		s->d_doubles_cap = 0;
		if (!ok_after(be, cudaMalloc(&p, n * sizeof(double)), "scratch allocation"))
			return NULL;
		s->d_doubles = (double *) p;
		s->d_doubles_cap = n;
	}
	return s->d_doubles;
}

static float *
d_floats(moe_backend *be, size_t n)
{
	cu_state   *s = S(be);

	if (n > s->d_floats_cap)
	{
		void	   *p = NULL;

		cudaFree(s->d_floats);
		s->d_floats = NULL;
		s->d_floats_cap = 0;
		if (!ok_after(be, cudaMalloc(&p, n * sizeof(float)), "scratch allocation"))
			return NULL;
		s->d_floats = (float *) p;
		s->d_floats_cap = n;
	}
	return s->d_floats;
}

static double *
h_doubles(moe_backend *be, size_t n)
{
	cu_state   *s = S(be);

	if (n > s->h_doubles_cap)
	{
		double	   *p = (double *) realloc(s->h_doubles, n * sizeof(double));

		if (p == NULL)
		{
			fail(be, MOE_ERR_NOMEM, false, "out of host memory for %zu values", n);
			return NULL;
		}
		s->h_doubles = p;
		s->h_doubles_cap = n;
	}
	return s->h_doubles;
}

/* Copy n doubles of device scratch to host scratch; NULL on failure. */
static const double *
fetch_doubles(moe_backend *be, const double *dev, size_t n)
{
	cu_state   *s = S(be);
	double	   *host = h_doubles(be, n);

	if (host == NULL)
		return NULL;
	if (!ok_after(be, cudaMemcpyAsync(host, dev, n * sizeof(double), cudaMemcpyDeviceToHost,
									  s->stream), "copy to host") ||
		!ok_after(be, cudaStreamSynchronize(s->stream), "synchronise"))
		return NULL;
	return host;
}

/* ---- memory ----------------------------------------------------------- */

static void *
cu_alloc(moe_backend *be, size_t bytes)
{
	cu_state   *s = S(be);
	void	   *p = NULL;
	cudaError_t e;

	if (s->fatal)
		return NULL;
	/* never a NULL for zero bytes: callers read NULL as failure */
	e = cudaMalloc(&p, bytes > 0 ? bytes : 16);
	if (e != cudaSuccess)
	{
		size_t		free_b = 0,
					total_b = 0;

		(void) cudaGetLastError();
		if (e == cudaErrorMemoryAllocation)
		{
			cudaMemGetInfo(&free_b, &total_b);
			fail(be, MOE_ERR_NOMEM, false,
				 "out of GPU memory allocating %.1f MiB (%.1f MiB free of %.1f MiB)",
				 bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
		}
		else
			cuda_failed(be, e, "cudaMalloc");
		return NULL;
	}
	/* zeroed, like calloc; ordered before any later work on the stream */
	if (!ok_after(be, cudaMemsetAsync(p, 0, bytes > 0 ? bytes : 16, s->stream), "cudaMemset"))
	{
		cudaFree(p);
		return NULL;
	}
	return p;
}

static void
cu_release(moe_backend *be, void *ptr)
{
	if (ptr != NULL)
	{
		cudaFree(ptr);
		(void) cudaGetLastError();
	}
}

static void
cu_upload(moe_backend *be, void *dst, const void *host_src, size_t bytes)
{
	/* pageable memory: the source is staged before the call returns, so
	 * the caller may reuse it at once */
	if (bytes == 0 || !live(be))
		return;
	ok_after(be, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, S(be)->stream),
			 "copy to the GPU");
}

static void
cu_download(moe_backend *be, void *host_dst, const void *src, size_t bytes)
{
	cu_state   *s = S(be);

	if (bytes == 0)
		return;
	if (live(be) &&
		ok_after(be, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s->stream),
				 "copy to the host") &&
		ok_after(be, cudaStreamSynchronize(s->stream), "synchronise"))
		return;
	/* never leave the caller garbage to index with (host_sel_idx, say) */
	memset(host_dst, 0, bytes);
}

static void
cu_copy(moe_backend *be, void *dst, const void *src, size_t bytes)
{
	if (bytes == 0 || dst == src || !live(be))
		return;
	ok_after(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, S(be)->stream),
			 "copy on the GPU");
}

__global__ void
fill_kernel(float *x, size_t n, float value)
{
	GRID_STRIDE(i, n)
		x[i] = value;
}

static void
cu_fill(moe_backend *be, float *x, size_t n, float value)
{
	if (n == 0 || !live(be))
		return;
	fill_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(x, n, value);
	LAUNCHED(be, "fill");
}

static moe_status
cu_check(moe_backend *be, moe_error *err)
{
	cu_state   *s = S(be);
	moe_status	st;

	if (s->status == MOE_OK)
		ok_after(be, cudaStreamSynchronize(s->stream), "a kernel");
	if (s->status == MOE_OK)
		return MOE_OK;
	st = s->status;
	set_error(err, st, "%s", s->message);
	if (!s->fatal)
	{
		s->status = MOE_OK;
		s->message[0] = '\0';
	}
	return st;
}

/* ---- dense layers ----------------------------------------------------- */

/* out[m, :] = b for every row m */
__global__ void
bias_rows_kernel(float *out, const float *b, int M, int N)
{
	GRID_STRIDE(i, (size_t) M * N)
		out[i] = b[i % N];
}

static void
cu_linear_forward(moe_backend *be, float *out, const float *in, const float *W,
				  const float *b, int M, int N, int K)
{
	const float one = 1.0f;

	if (M <= 0 || !live(be))
		return;
	bias_rows_kernel<<<blocks_for((size_t) M * N, THREADS), THREADS, 0, S(be)->stream>>>(out, b, M, N);
	if (!LAUNCHED(be, "linear_forward bias"))
		return;
	/* column-major view: out^T[N,M] = W[N,K] . in^T[K,M] + out^T */
	blas_ok(be, cublasSgemm(S(be)->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, W, K, in, K,
							&one, out, N), "linear_forward");
}

/*
 * linear_infer: gemm_rows.c's arithmetic, one output at a time.  Per output
 * C[m][n]: C = b[n] (or 0); for each K block [k0, k0 + 512): eight lanes,
 * lane l accumulating fmaf(A[k], W[k], lane) for k = k0 + l, k0 + l + 8, ...
 * below k8 (the block's largest multiple of 8); s = ((l0 + l4) + (l2 + l6))
 * + ((l1 + l5) + (l3 + l7)); s = fmaf(A[k], W[k], s) for the block's tail;
 * C += s.  Nothing depends on M or on where the row sits.
 *
 * Tiles: 16 x 16 threads, each computing 2 x 2 outputs (rows ty, ty + 16 and
 * columns tx, tx + 16 of a 32 x 32 tile), K staged through shared memory 32
 * at a time (K blocks start at multiples of 512, so the lanes line up with
 * k & 7).
 */
#define LI_KB 512
#define LI_TILE 32
#define LI_TK 32

__device__ __forceinline__ float
lane_tree(const float *a)
{
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

__global__ void __launch_bounds__(256)
linear_infer_kernel(float *C, int ldc, const float *A, int lda, const float *W, int ldw,
					const float *b, int M, int N, int K)
{
	__shared__ float As[LI_TILE][LI_TK + 1];
	__shared__ float Ws[LI_TILE][LI_TK + 1];
	const int	tx = threadIdx.x,
				ty = threadIdx.y,
				tid = ty * 16 + tx;
	const int	m0 = blockIdx.y * LI_TILE,
				n0 = blockIdx.x * LI_TILE;
	float		c[2][2];

	for (int j = 0; j < 2; j++)
	{
		int			n = n0 + tx + 16 * j;
		float		bias = (b != NULL && n < N) ? b[n] : 0.0f;

		c[0][j] = bias;
		c[1][j] = bias;
	}

	for (int k0 = 0; k0 < K; k0 += LI_KB)
	{
		const int	k1 = k0 + LI_KB < K ? k0 + LI_KB : K;
		const int	k8 = k0 + ((k1 - k0) / 8) * 8;
		float		acc[2][2][8];
		float		s[2][2];
		bool		tail = false;

#pragma unroll
		for (int i = 0; i < 2; i++)
#pragma unroll
			for (int j = 0; j < 2; j++)
			{
#pragma unroll
				for (int l = 0; l < 8; l++)
					acc[i][j][l] = 0.0f;
				s[i][j] = 0.0f;
			}

		for (int kt = k0; kt < k1; kt += LI_TK)
		{
			const int	kend = k1 - kt < LI_TK ? k1 - kt : LI_TK;

			for (int t = tid; t < LI_TILE * LI_TK; t += 256)
			{
				int			r = t / LI_TK,
							kk = t % LI_TK;
				bool		kin = kk < kend;

				As[r][kk] = (kin && m0 + r < M) ? A[(size_t) (m0 + r) * lda + kt + kk] : 0.0f;
				Ws[r][kk] = (kin && n0 + r < N) ? W[(size_t) (n0 + r) * ldw + kt + kk] : 0.0f;
			}
			__syncthreads();
			for (int g = 0; g < kend; g += 8)
			{
				if (kt + g < k8)
				{
#pragma unroll
					for (int l = 0; l < 8; l++)
					{
						float		a0 = As[ty][g + l],
									a1 = As[ty + 16][g + l],
									w0 = Ws[tx][g + l],
									w1 = Ws[tx + 16][g + l];

						acc[0][0][l] = fmaf(a0, w0, acc[0][0][l]);
						acc[0][1][l] = fmaf(a0, w1, acc[0][1][l]);
						acc[1][0][l] = fmaf(a1, w0, acc[1][0][l]);
						acc[1][1][l] = fmaf(a1, w1, acc[1][1][l]);
					}
				}
				else
				{
					/* the block's tail: fewer than 8 values, after the tree */
#pragma unroll
					for (int i = 0; i < 2; i++)
#pragma unroll
						for (int j = 0; j < 2; j++)
							s[i][j] = lane_tree(acc[i][j]);
					tail = true;
					for (int kk = g; kk < kend; kk++)
					{
						float		a0 = As[ty][kk],
									a1 = As[ty + 16][kk],
									w0 = Ws[tx][kk],
									w1 = Ws[tx + 16][kk];

						s[0][0] = fmaf(a0, w0, s[0][0]);
						s[0][1] = fmaf(a0, w1, s[0][1]);
						s[1][0] = fmaf(a1, w0, s[1][0]);
						s[1][1] = fmaf(a1, w1, s[1][1]);
					}
				}
			}
			__syncthreads();
		}
#pragma unroll
		for (int i = 0; i < 2; i++)
#pragma unroll
			for (int j = 0; j < 2; j++)
				c[i][j] += tail ? s[i][j] : lane_tree(acc[i][j]);
	}

	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
		{
			int			m = m0 + ty + 16 * i,
						n = n0 + tx + 16 * j;

			if (m < M && n < N)
				C[(size_t) m * ldc + n] = c[i][j];
		}
}

static void
cu_linear_infer(moe_backend *be, float *out, int ldo, const float *in, int ldi, const float *W,
				int ldw, const float *b, int M, int N, int K)
{
	/* gridDim.y is at most 65535: very tall products go in slices */
	const int	max_rows = 65535 * LI_TILE;

	if (N <= 0)
		return;
	for (int r0 = 0; r0 < M && live(be); r0 += max_rows)
	{
		int			rows = M - r0 < max_rows ? M - r0 : max_rows;
		dim3		grid((N + LI_TILE - 1) / LI_TILE, (rows + LI_TILE - 1) / LI_TILE);

		linear_infer_kernel<<<grid, dim3(16, 16), 0, S(be)->stream>>>(
			out + (size_t) r0 * ldo, ldo, in + (size_t) r0 * ldi, ldi, W, ldw, b, rows, N, K);
		LAUNCHED(be, "linear_infer");
	}
}

/* db[j] = sum over rows of dout[:, j], rows in order (the twin's loop) */
__global__ void
column_sum_kernel(float *db, const float *dout, int M, int N)
{
	GRID_STRIDE(j, (size_t) N)
	{
		float		acc = 0.0f;

		for (int m = 0; m < M; m++)
			acc += dout[(size_t) m * N + j];
		db[j] = acc;
	}
}

static void
cu_linear_backward(moe_backend *be, float *din, float *dW, float *db, const float *dout,
				   const float *in, const float *W, int M, int N, int K)
{
	cu_state   *s = S(be);
	const float one = 1.0f,
				zero = 0.0f;

	if (!live(be))
		return;
	if (M <= 0)
	{
		cu_fill(be, dW, (size_t) N * K, 0.0f);
		cu_fill(be, db, N, 0.0f);
		return;
	}
	/* din^T[K,M] = W^T[K,N] . dout^T[N,M] */
	if (din != NULL &&
		!blas_ok(be, cublasSgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, W, K, dout, N,
								 &zero, din, K), "linear_backward (input)"))
		return;
	/* dW^T[K,N] = in^T[K,M] . dout[M,N] */
	if (!blas_ok(be, cublasSgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, in, K, dout, N,
								 &zero, dW, K), "linear_backward (weights)"))
		return;
	column_sum_kernel<<<blocks_for(N, THREADS), THREADS, 0, s->stream>>>(db, dout, M, N);
	LAUNCHED(be, "linear_backward (bias)");
}

/*
 * LayerNorm forward, one warp per row.  Lanes 0-7 are the twin's eight
 * accumulators (sum8/sumsq8 in backend_cpu.c), reduced by the same tree;
 * the leftover columns are added in order; then all 32 lanes write.
 */
__device__ __forceinline__ float
warp_tree8(float acc)
{
	float		a[8];

#pragma unroll
	for (int l = 0; l < 8; l++)
		a[l] = __shfl_sync(0xffffffffu, acc, l);
	return lane_tree(a);
}

__global__ void
layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *in,
						 const float *gamma, const float *beta, int M, int N)
{
	const int	lane = threadIdx.x & 31;
	const int	n8 = N - N % 8;
	const size_t warps = (size_t) gridDim.x * blockDim.x / 32;

	/* the loop is uniform across a warp: blockDim is a multiple of 32 */
	for (size_t row = (blockIdx.x * (size_t) blockDim.x + threadIdx.x) / 32; row < (size_t) M;
		 row += warps)
	{
		const float *x = in + row * N;
		float	   *y = out + row * N;
		float		acc = 0.0f,
					mu,
					ss,
					rs;

		if (lane < 8)
			for (int j = lane; j < n8; j += 8)
				acc += x[j];
		mu = warp_tree8(acc);
		for (int j = n8; j < N; j++)
			mu += x[j];
		mu = mu / N;

		acc = 0.0f;
		if (lane < 8)
			for (int j = lane; j < n8; j += 8)
			{
				float		d = x[j] - mu;

				acc += d * d;
			}
		ss = warp_tree8(acc);
		for (int j = n8; j < N; j++)
			ss += (x[j] - mu) * (x[j] - mu);
		rs = 1.0f / sqrtf(ss / N + LAYERNORM_EPS);

		__syncwarp();			/* every read of x before any write (in place) */
		for (int j = lane; j < N; j += 32)
			y[j] = (x[j] - mu) * rs * gamma[j] + beta[j];
		if (lane == 0)
		{
			mean[row] = mu;
			rstd[row] = rs;
		}
		__syncwarp();
	}
}

static void
cu_layernorm_forward(moe_backend *be, float *out, float *mean, float *rstd, const float *in,
					 const float *gamma, const float *beta, int M, int N)
{
	if (M <= 0 || !live(be))
		return;
	layernorm_forward_kernel<<<blocks_for((size_t) M * 32, THREADS), THREADS, 0, S(be)->stream>>>(
		out, mean, rstd, in, gamma, beta, M, N);
	LAUNCHED(be, "layernorm_forward");
}

/* Per row: the twin's two sums, in column order, already divided by N. */
__global__ void
layernorm_row_sums_kernel(float *sums, const float *dout, const float *in, const float *mean,
						  const float *rstd, const float *gamma, int M, int N)
{
	GRID_STRIDE(m, (size_t) M)
	{
		const float *x = in + m * N;
		const float *dy = dout + m * N;
		float		mu = mean[m],
					rs = rstd[m],
					sum_dxhat = 0.0f,
					sum_dxhat_xhat = 0.0f;

		for (int j = 0; j < N; j++)
		{
			float		xhat = (x[j] - mu) * rs;
			float		dxhat = dy[j] * gamma[j];

			sum_dxhat += dxhat;
			sum_dxhat_xhat += dxhat * xhat;
		}
		sums[2 * m] = sum_dxhat / N;
		sums[2 * m + 1] = sum_dxhat_xhat / N;
	}
}

/* Per column: dgamma and dbeta over the rows in order. */
__global__ void
layernorm_param_grads_kernel(float *dgamma, float *dbeta, const float *dout, const float *in,
							 const float *mean, const float *rstd, int M, int N)
{
	GRID_STRIDE(j, (size_t) N)
	{
		float		dg = 0.0f,
					dbt = 0.0f;

		for (int m = 0; m < M; m++)
		{
			size_t		i = (size_t) m * N + j;
			float		xhat = (in[i] - mean[m]) * rstd[m];

			dg += dout[i] * xhat;
			dbt += dout[i];
		}
		dgamma[j] = dg;
		dbeta[j] = dbt;
	}
}

__global__ void
layernorm_input_grad_kernel(float *din, const float *sums, const float *dout, const float *in,
							const float *mean, const float *rstd, const float *gamma, int M, int N)
{
	GRID_STRIDE(i, (size_t) M * N)
	{
		size_t		m = i / N,
					j = i % N;
		float		rs = rstd[m];
		float		xhat = (in[i] - mean[m]) * rs;
		float		dxhat = dout[i] * gamma[j];

		din[i] = rs * (dxhat - sums[2 * m] - xhat * sums[2 * m + 1]);
	}
}

static void
cu_layernorm_backward(moe_backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
					  const float *in, const float *mean, const float *rstd, const float *gamma,
					  int M, int N)
{
	cu_state   *s = S(be);
	float	   *sums;

	if (!live(be))
		return;
	if (M <= 0)
	{
		cu_fill(be, dgamma, N, 0.0f);
		cu_fill(be, dbeta, N, 0.0f);
		return;
	}
	if ((sums = d_floats(be, (size_t) 2 * M)) == NULL)
		return;
	/* din may alias dout: it is written last, each element by the thread
	 * that read it */
	layernorm_row_sums_kernel<<<blocks_for(M, 128), 128, 0, s->stream>>>(sums, dout, in, mean, rstd,
																		 gamma, M, N);
	layernorm_param_grads_kernel<<<blocks_for(N, 128), 128, 0, s->stream>>>(dgamma, dbeta, dout, in,
																			 mean, rstd, M, N);
	layernorm_input_grad_kernel<<<blocks_for((size_t) M * N, THREADS), THREADS, 0, s->stream>>>(
		din, sums, dout, in, mean, rstd, gamma, M, N);
	LAUNCHED(be, "layernorm_backward");
}

__global__ void
relu_forward_kernel(float *out, const float *in, size_t n)
{
	GRID_STRIDE(i, n)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

static void
cu_relu_forward(moe_backend *be, float *out, const float *in, size_t n)
{
	if (n == 0 || !live(be))
		return;
	relu_forward_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(out, in, n);
	LAUNCHED(be, "relu_forward");
}

__global__ void
relu_backward_kernel(float *din, const float *dout, const float *out, size_t n)
{
	GRID_STRIDE(i, n)
		din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

static void
cu_relu_backward(moe_backend *be, float *din, const float *dout, const float *out, size_t n)
{
	if (n == 0 || !live(be))
		return;
	relu_backward_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(din, dout, out, n);
	LAUNCHED(be, "relu_backward");
}

__global__ void
dropout_kernel(float *out, float *mask, const float *in, size_t n, float p, float keep_scale,
			   uint64_t key)
{
	GRID_STRIDE(i, n)
	{
		float		k = moe_dropout_uniform(key, i) >= p ? keep_scale : 0.0f;

		mask[i] = k;
		out[i] = in[i] * k;
	}
}

static void
cu_dropout_forward(moe_backend *be, float *out, float *mask, const float *in, size_t n, float p,
				   uint64_t key)
{
	if (n == 0 || !live(be))
		return;
	dropout_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(out, mask, in, n, p,
																		  1.0f / (1.0f - p), key);
	LAUNCHED(be, "dropout_forward");
}

__global__ void
mul_kernel(float *out, const float *a, const float *b, size_t n)
{
	GRID_STRIDE(i, n)
		out[i] = a[i] * b[i];
}

static void
cu_mul(moe_backend *be, float *out, const float *a, const float *b, size_t n)
{
	if (n == 0 || !live(be))
		return;
	mul_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(out, a, b, n);
	LAUNCHED(be, "mul");
}

__global__ void
add_kernel(float *y, const float *x, size_t n)
{
	GRID_STRIDE(i, n)
		y[i] += x[i];
}

static void
cu_add(moe_backend *be, float *y, const float *x, size_t n)
{
	if (n == 0 || !live(be))
		return;
	add_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(y, x, n);
	LAUNCHED(be, "add");
}

/* ---- sparse first layers (sparse.h) -----------------------------------
 * Each thread sums its terms in the same order as the CPU twin (features
 * ascending, entries in order), so the two agree but for rounding. */

/* element (k, n) of a K x N matrix in column panels (backend.h) */
__device__ static size_t
panel_index(size_t k, size_t n, int N, int K)
{
	size_t		n0 = n - n % MOE_SPARSE_PANEL,
				w = (size_t) N - n0 < MOE_SPARSE_PANEL ? (size_t) N - n0 : MOE_SPARSE_PANEL;

	return n0 * K + k * w + (n - n0);
}

__global__ void
transpose_scaled_kernel(float *Wt, const float *W, const float *scale, int N, int K)
{
	GRID_STRIDE(i, (size_t) K * N)
	{
		size_t		k = i / N,
					n = i % N;

		Wt[panel_index(k, n, N, K)] = W[n * K + k] * scale[k];
	}
}

static void
cu_transpose_scaled(moe_backend *be, float *Wt, const float *W, const float *scale, int N, int K)
{
	if (N <= 0 || K <= 0 || !live(be))
		return;
	transpose_scaled_kernel<<<blocks_for((size_t) K * N, THREADS), THREADS, 0, S(be)->stream>>>(
		Wt, W, scale, N, K);
	LAUNCHED(be, "transpose_scaled");
}

/* one thread per output column: it walks every feature's entries in order */
__global__ void
sparse_linear_forward_kernel(float *out, const float *Wt, const int32_t *col_ptr,
							 const int32_t *ent, const float *val, int U, int N, int K)
{
	int			n = blockIdx.x * blockDim.x + threadIdx.x;

	if (n >= N)
		return;
	for (int u = 0; u < U; u++)
		out[(size_t) u * N + n] = 0.0f;
	for (int j = 0; j < K; j++)
	{
		float		w = Wt[panel_index(j, n, N, K)];

		for (int32_t p = col_ptr[j]; p < col_ptr[j + 1]; p++)
			out[(size_t) ent[p] * N + n] += val[p] * w;
	}
}

static void
cu_sparse_linear_forward(moe_backend *be, float *out, const float *Wt, const int32_t *col_ptr,
						 const int32_t *ent, const float *val, int U, int N, int K)
{
	if (U <= 0 || N <= 0 || !live(be))
		return;
	sparse_linear_forward_kernel<<<blocks_for((size_t) N, THREADS), THREADS, 0, S(be)->stream>>>(
		out, Wt, col_ptr, ent, val, U, N, K);
	LAUNCHED(be, "sparse_linear_forward");
}

__global__ void
sparse_linear_backward_kernel(float *dWt, const float *d, const int32_t *col_ptr,
							  const int32_t *ent, const float *val, int N, int K)
{
	GRID_STRIDE(i, (size_t) K * N)
	{
		size_t		j = i / N,
					n = i % N;
		float		acc = 0.0f;

		for (int32_t p = col_ptr[j]; p < col_ptr[j + 1]; p++)
			acc += val[p] * d[(size_t) ent[p] * N + n];
		dWt[panel_index(j, n, N, K)] = acc;
	}
}

static void
cu_sparse_linear_backward(moe_backend *be, float *dWt, const float *d, const int32_t *col_ptr,
						  const int32_t *ent, const float *val, int N, int K)
{
	if (N <= 0 || K <= 0 || !live(be))
		return;
	sparse_linear_backward_kernel<<<blocks_for((size_t) K * N, THREADS), THREADS, 0,
		S(be)->stream>>>(dWt, d, col_ptr, ent, val, N, K);
	LAUNCHED(be, "sparse_linear_backward");
}

__global__ void
transpose_scaled_back_kernel(float *dW, const float *dWt, const float *scale, const float *shift,
							 const float *db, int N, int K)
{
	GRID_STRIDE(i, (size_t) N * K)
	{
		size_t		n = i / K,
					k = i % K;

		dW[i] = dWt[panel_index(k, n, N, K)] * scale[k] - db[n] * (shift[k] * scale[k]);
	}
}

static void
cu_transpose_scaled_back(moe_backend *be, float *dW, const float *dWt, const float *scale,
						 const float *shift, const float *db, int N, int K)
{
	if (N <= 0 || K <= 0 || !live(be))
		return;
	transpose_scaled_back_kernel<<<blocks_for((size_t) N * K, THREADS), THREADS, 0,
		S(be)->stream>>>(dW, dWt, scale, shift, db, N, K);
	LAUNCHED(be, "transpose_scaled_back");
}

__global__ void
segment_sum_rows_kernel(float *out, const float *in, const int32_t *perm, const int32_t *seg_ptr,
						int U, int N)
{
	GRID_STRIDE(i, (size_t) U * N)
	{
		size_t		u = i / N,
					n = i % N;
		float		acc = 0.0f;

		for (int32_t q = seg_ptr[u]; q < seg_ptr[u + 1]; q++)
			acc += in[(size_t) perm[q] * N + n];
		out[i] = acc;
	}
}

static void
cu_segment_sum_rows(moe_backend *be, float *out, const float *in, const int32_t *perm,
					const int32_t *seg_ptr, int U, int N)
{
	if (U <= 0 || N <= 0 || !live(be))
		return;
	segment_sum_rows_kernel<<<blocks_for((size_t) U * N, THREADS), THREADS, 0, S(be)->stream>>>(
		out, in, perm, seg_ptr, U, N);
	LAUNCHED(be, "segment_sum_rows");
}

/* ---- moving rows ------------------------------------------------------ */

__global__ void
gather_rows_kernel(float *dst, const float *src, const int32_t *idx, int rows, int width,
				   const float *shift, const float *scale)
{
	GRID_STRIDE(i, (size_t) rows * width)
	{
		size_t		r = i / width,
					j = i % width;
		float		v = src[(size_t) idx[r] * width + j];

		if (shift != NULL || scale != NULL)
			v = (v - (shift ? shift[j] : 0.0f)) * (scale ? scale[j] : 1.0f);
		dst[i] = v;
	}
}

static void
cu_gather_rows(moe_backend *be, float *dst, const float *src, const int32_t *idx, int rows,
			   int width, const float *shift, const float *scale)
{
	if (rows <= 0 || width <= 0 || !live(be))
		return;
	gather_rows_kernel<<<blocks_for((size_t) rows * width, THREADS), THREADS, 0, S(be)->stream>>>(
		dst, src, idx, rows, width, shift, scale);
	LAUNCHED(be, "gather_rows");
}

/* idx values are distinct within one call, so no two threads meet */
__global__ void
scatter_add_rows_kernel(float *dst, const float *src, const int32_t *idx, int rows, int width)
{
	GRID_STRIDE(i, (size_t) rows * width)
	{
		size_t		r = i / width,
					j = i % width;

		dst[(size_t) idx[r] * width + j] += src[i];
	}
}

static void
cu_scatter_add_rows(moe_backend *be, float *dst, const float *src, const int32_t *idx, int rows,
					int width)
{
	if (rows <= 0 || width <= 0 || !live(be))
		return;
	scatter_add_rows_kernel<<<blocks_for((size_t) rows * width, THREADS), THREADS, 0,
		S(be)->stream>>>(dst, src, idx, rows, width);
	LAUNCHED(be, "scatter_add_rows");
}

__global__ void
concat_cols_kernel(float *out, const float *a, const float *b, int M, int Na, int Nb)
{
	const int	W = Na + Nb;

	GRID_STRIDE(i, (size_t) M * W)
	{
		size_t		m = i / W;
		int			j = (int) (i % W);

		out[i] = j < Na ? a[m * Na + j] : b[m * Nb + (j - Na)];
	}
}

static void
cu_concat_cols(moe_backend *be, float *out, const float *a, const float *b, int M, int Na, int Nb)
{
	if (M <= 0 || !live(be))
		return;
	concat_cols_kernel<<<blocks_for((size_t) M * (Na + Nb), THREADS), THREADS, 0,
		S(be)->stream>>>(out, a, b, M, Na, Nb);
	LAUNCHED(be, "concat_cols");
}

__global__ void
split_cols_kernel(float *a, float *b, const float *in, int M, int Na, int Nb)
{
	const int	W = Na + Nb;

	GRID_STRIDE(i, (size_t) M * W)
	{
		size_t		m = i / W;
		int			j = (int) (i % W);

		if (j < Na)
			a[m * Na + j] = in[i];
		else
			b[m * Nb + (j - Na)] = in[i];
	}
}

static void
cu_split_cols(moe_backend *be, float *a, float *b, const float *in, int M, int Na, int Nb)
{
	if (M <= 0 || !live(be))
		return;
	split_cols_kernel<<<blocks_for((size_t) M * (Na + Nb), THREADS), THREADS, 0,
		S(be)->stream>>>(a, b, in, M, Na, Nb);
	LAUNCHED(be, "split_cols");
}

__global__ void
sum_parts_kernel(float *out, int ldo, const float *bias, const float *a, int lda,
				 const int32_t *a_idx, const float *b, int ldb, const int32_t *b_idx, int M, int N)
{
	GRID_STRIDE(i, (size_t) M * N)
	{
		size_t		m = i / N,
					j = i % N;

		out[m * ldo + j] = (bias[j] + a[(size_t) a_idx[m] * lda + j]) + b[(size_t) b_idx[m] * ldb + j];
	}
}

static void
cu_sum_parts(moe_backend *be, float *out, int ldo, const float *bias, const float *a, int lda,
			 const int32_t *a_idx, const float *b, int ldb, const int32_t *b_idx, int M, int N)
{
	if (M <= 0 || N <= 0 || !live(be))
		return;
	sum_parts_kernel<<<blocks_for((size_t) M * N, THREADS), THREADS, 0, S(be)->stream>>>(
		out, ldo, bias, a, lda, a_idx, b, ldb, b_idx, M, N);
	LAUNCHED(be, "sum_parts");
}

__global__ void
gather_kernel(float *dst, const float *src, const int32_t *idx, int n)
{
	GRID_STRIDE(i, (size_t) n)
		dst[i] = src[idx[i]];
}

__global__ void
scatter_kernel(float *dst, const float *src, const int32_t *idx, int n)
{
	GRID_STRIDE(i, (size_t) n)
		dst[idx[i]] = src[i];
}

static void
cu_gather(moe_backend *be, float *dst, const float *src, const int32_t *idx, int n)
{
	if (n <= 0 || !live(be))
		return;
	gather_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(dst, src, idx, n);
	LAUNCHED(be, "gather");
}

static void
cu_scatter(moe_backend *be, float *dst, const float *src, const int32_t *idx, int n)
{
	if (n <= 0 || !live(be))
		return;
	scatter_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(dst, src, idx, n);
	LAUNCHED(be, "scatter");
}

/* ---- the router ------------------------------------------------------- */

/* One thread per row for all of these: E and k are small (<= 64). */

__global__ void
softmax_forward_kernel(float *probs, const float *logits, int M, int E, float inv_t)
{
	GRID_STRIDE(m, (size_t) M)
		moe_softmax_row(probs + m * E, logits + m * E, E, inv_t);
}

static void
cu_softmax_forward(moe_backend *be, float *probs, const float *logits, int M, int E,
				   float temperature)
{
	if (M <= 0 || !live(be))
		return;
	softmax_forward_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(probs, logits, M, E,
																		  1.0f / temperature);
	LAUNCHED(be, "softmax_forward");
}

__global__ void
softmax_backward_kernel(float *dlogits, const float *dprobs, const float *probs, int M, int E,
						float inv_t)
{
	GRID_STRIDE(m, (size_t) M)
		moe_softmax_backward_row(dlogits + m * E, probs + m * E, dprobs + m * E, E, inv_t);
}

static void
cu_softmax_backward(moe_backend *be, float *dlogits, const float *dprobs, const float *probs,
					int M, int E, float temperature)
{
	if (M <= 0 || !live(be))
		return;
	softmax_backward_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(dlogits, dprobs, probs,
																		   M, E, 1.0f / temperature);
	LAUNCHED(be, "softmax_backward");
}

/* Selection sort with a strict ">": ties go to the lower expert index. */
__global__ void
topk_route_kernel(int32_t *sel_idx, float *sel_w, const float *probs, const float *bias, int M,
				  int E, int k)
{
	GRID_STRIDE(m, (size_t) M)
		moe_topk_route_row(sel_idx + m * k, sel_w + m * k, probs + m * E, bias, E, k);
}

static void
cu_topk_route(moe_backend *be, int32_t *sel_idx, float *sel_w, const float *probs,
			  const float *bias, int M, int E, int k)
{
	if (M <= 0 || !live(be))
		return;
	topk_route_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(sel_idx, sel_w, probs, bias,
																	 M, E, k);
	LAUNCHED(be, "topk_route");
}

__global__ void
combine_forward_kernel(float *out, const float *w, const float *y, int M, int k)
{
	GRID_STRIDE(m, (size_t) M)
		out[m] = moe_combine_row(w + m * k, y + m * k, k);
}

static void
cu_combine_forward(moe_backend *be, float *out, const float *w, const float *y, int M, int k)
{
	if (M <= 0 || !live(be))
		return;
	combine_forward_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(out, w, y, M, k);
	LAUNCHED(be, "combine_forward");
}

__global__ void
combine_backward_kernel(float *dw, float *dy, const float *dout, const float *w, const float *y,
						int M, int k)
{
	GRID_STRIDE(i, (size_t) M * k)
		moe_combine_backward_at(dw, dy, dout[i / k], w, y, i);
}

static void
cu_combine_backward(moe_backend *be, float *dw, float *dy, const float *dout, const float *w,
					const float *y, int M, int k)
{
	if (M <= 0 || !live(be))
		return;
	combine_backward_kernel<<<blocks_for((size_t) M * k, THREADS), THREADS, 0, S(be)->stream>>>(
		dw, dy, dout, w, y, M, k);
	LAUNCHED(be, "combine_backward");
}

__global__ void
route_backward_kernel(float *dprobs, const float *dw, const float *sel_w, const int32_t *sel_idx,
					  const float *probs, int M, int E, int k)
{
	GRID_STRIDE(m, (size_t) M)
		moe_route_backward_row(dprobs + m * E, dw + m * k, sel_w + m * k, sel_idx + m * k,
							   probs + m * E, E, k);
}

static void
cu_route_backward(moe_backend *be, float *dprobs, const float *dw, const float *sel_w,
				  const int32_t *sel_idx, const float *probs, int M, int E, int k)
{
	if (M <= 0 || !live(be))
		return;
	route_backward_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(dprobs, dw, sel_w, sel_idx,
																		 probs, M, E, k);
	LAUNCHED(be, "route_backward");
}

__global__ void
noisy_logits_kernel(float *out, float *eps, const float *logits, const float *noise_pre, size_t n,
					uint64_t key)
{
	GRID_STRIDE(i, n)
	{
		float		e = moe_counter_normal(key, i);

		eps[i] = e;
		out[i] = moe_noisy_logit(logits[i], e, noise_pre[i]);
	}
}

static void
cu_noisy_logits(moe_backend *be, float *out, float *eps, const float *logits,
				const float *noise_pre, size_t n, uint64_t key)
{
	if (n == 0 || !live(be))
		return;
	noisy_logits_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(out, eps, logits,
																			   noise_pre, n, key);
	LAUNCHED(be, "noisy_logits");
}

__global__ void
noisy_logits_backward_kernel(float *d_noise_pre, const float *d_out, const float *eps,
							 const float *noise_pre, size_t n)
{
	GRID_STRIDE(i, n)
		d_noise_pre[i] = moe_noisy_logit_grad(d_out[i], eps[i], noise_pre[i]);
}

static void
cu_noisy_logits_backward(moe_backend *be, float *d_noise_pre, const float *d_out,
						 const float *eps, const float *noise_pre, size_t n)
{
	if (n == 0 || !live(be))
		return;
	noisy_logits_backward_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(
		d_noise_pre, d_out, eps, noise_pre, n);
	LAUNCHED(be, "noisy_logits_backward");
}

/* Per row: lse^2 into row_val (summed on the host in row order). */
__global__ void
zloss_kernel(double *row_val, float *dlogits, const float *logits, int M, int E, float scale)
{
	GRID_STRIDE(m, (size_t) M)
	{
		double		lse = moe_zloss_row(dlogits != NULL ? dlogits + m * E : NULL,
										logits + m * E, E, scale, M);

		row_val[m] = lse * lse;
	}
}

static double
cu_zloss(moe_backend *be, float *dlogits, const float *logits, int M, int E, float scale)
{
	double	   *rows;
	const double *host;
	double		sum = 0.0;

	if (M <= 0 || !live(be) || (rows = d_doubles(be, M)) == NULL)
		return 0.0;
	zloss_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(rows, dlogits, logits, M, E, scale);
	if (!LAUNCHED(be, "zloss") || (host = fetch_doubles(be, rows, M)) == NULL)
		return 0.0;
	for (int m = 0; m < M; m++)
		sum += host[m];
	return sum / M;
}

/* Per row: the row's sum of -q log q (the CPU keeps one running sum over
 * all rows instead, so the total may differ in the last bits of a double). */
__global__ void
row_entropy_kernel(double *row_val, float *dprobs, const float *probs, int M, int E, float scale,
				   double logE)
{
	GRID_STRIDE(m, (size_t) M)
		row_val[m] = moe_entropy_row(0.0, dprobs != NULL ? dprobs + m * E : NULL, probs + m * E,
									 E, scale, M, logE);
}

static double
cu_row_entropy(moe_backend *be, float *dprobs, const float *probs, int M, int E, float scale)
{
	double		logE = log((double) E),
				sum = 0.0;
	double	   *rows;
	const double *host;

	if (E < 2 || M <= 0 || !live(be) || (rows = d_doubles(be, M)) == NULL)
		return 0.0;
	row_entropy_kernel<<<blocks_for(M, 128), 128, 0, S(be)->stream>>>(rows, dprobs, probs, M, E,
																	  scale, logE);
	if (!LAUNCHED(be, "row_entropy") || (host = fetch_doubles(be, rows, M)) == NULL)
		return 0.0;
	for (int m = 0; m < M; m++)
		sum += host[m];
	return sum / (M * logE);
}

__global__ void
column_mean_kernel(float *out, const float *x, int M, int N)
{
	GRID_STRIDE(j, (size_t) N)
	{
		float		acc = 0.0f;

		for (int m = 0; m < M; m++)
			acc += x[(size_t) m * N + j];
		out[j] = M > 0 ? acc / M : 0.0f;
	}
}

static void
cu_column_mean(moe_backend *be, float *out, const float *x, int M, int N)
{
	if (N <= 0 || !live(be))
		return;
	column_mean_kernel<<<blocks_for(N, 128), 128, 0, S(be)->stream>>>(out, x, M, N);
	LAUNCHED(be, "column_mean");
}

__global__ void
add_row_vector_kernel(float *x, const float *v, float alpha, int M, int N)
{
	GRID_STRIDE(i, (size_t) M * N)
		x[i] += alpha * v[i % N];
}

static void
cu_add_row_vector(moe_backend *be, float *x, const float *v, float alpha, int M, int N)
{
	if (M <= 0 || N <= 0 || !live(be))
		return;
	add_row_vector_kernel<<<blocks_for((size_t) M * N, THREADS), THREADS, 0, S(be)->stream>>>(
		x, v, alpha, M, N);
	LAUNCHED(be, "add_row_vector");
}

/* ---- loss and optimiser ----------------------------------------------- */

/* Per row: d^2 in double (exact), summed on the host in row order, so the
 * loss is the CPU's to the bit when pred and target are. */
__global__ void
mse_kernel(double *row_val, float *dpred, const float *pred, const float *target, int M)
{
	GRID_STRIDE(m, (size_t) M)
		row_val[m] = moe_mse_at(dpred, pred, target, m, M);
}

static double
cu_mse_forward_backward(moe_backend *be, float *dpred, const float *pred, const float *target,
						int M)
{
	double	   *rows;
	const double *host;
	double		sum = 0.0;

	if (M <= 0 || !live(be) || (rows = d_doubles(be, M)) == NULL)
		return 0.0;
	mse_kernel<<<blocks_for(M, THREADS), THREADS, 0, S(be)->stream>>>(rows, dpred, pred, target, M);
	if (!LAUNCHED(be, "mse") || (host = fetch_doubles(be, rows, M)) == NULL)
		return 0.0;
	for (int m = 0; m < M; m++)
		sum += host[m];
	return sum / M;
}

/*
 * Sum of squares in double: each block reduces its grid-stride share with a
 * fixed tree; the host adds the block sums in order.  The grid depends on n
 * alone, so the result is the same on every run (it differs from the CPU's
 * sequential sum only in the last bits of a double).
 */
#define SS_THREADS 256
#define SS_MAX_BLOCKS 1024

__global__ void __launch_bounds__(SS_THREADS)
sum_squares_kernel(double *block_sums, const float *x, size_t n)
{
	__shared__ double part[SS_THREADS];
	double		acc = 0.0;

	GRID_STRIDE(i, n)
		acc += (double) x[i] * x[i];
	part[threadIdx.x] = acc;
	__syncthreads();
	for (int w = SS_THREADS / 2; w > 0; w /= 2)
	{
		if (threadIdx.x < w)
			part[threadIdx.x] += part[threadIdx.x + w];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		block_sums[blockIdx.x] = part[0];
}

static double
cu_sum_squares(moe_backend *be, const float *x, size_t n)
{
	unsigned	blocks;
	double	   *sums;
	const double *host;
	double		total = 0.0;

	if (n == 0 || !live(be))
		return 0.0;
	blocks = blocks_for(n, SS_THREADS);
	if (blocks > SS_MAX_BLOCKS)
		blocks = SS_MAX_BLOCKS;
	if ((sums = d_doubles(be, blocks)) == NULL)
		return 0.0;
	sum_squares_kernel<<<blocks, SS_THREADS, 0, S(be)->stream>>>(sums, x, n);
	if (!LAUNCHED(be, "sum_squares") || (host = fetch_doubles(be, sums, blocks)) == NULL)
		return 0.0;
	for (unsigned b = 0; b < blocks; b++)
		total += host[b];
	return total;
}

__global__ void
scale_kernel(float *x, size_t n, float alpha)
{
	GRID_STRIDE(i, n)
		x[i] *= alpha;
}

static void
cu_scale(moe_backend *be, float *x, size_t n, float alpha)
{
	if (n == 0 || !live(be))
		return;
	scale_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(x, n, alpha);
	LAUNCHED(be, "scale");
}

/* The twin's expressions exactly; the bias corrections come from the host
 * (glibc's powf, as on the CPU). */
__global__ void
adam_kernel(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
			float beta2, float eps, float weight_decay, float bc1, float bc2)
{
	GRID_STRIDE(i, n)
		moe_adam_at(param, grad, m, v, i, lr, beta1, beta2, eps, weight_decay, bc1, bc2);
}

static void
cu_adam_update(moe_backend *be, float *param, const float *grad, float *m, float *v, size_t n,
			   float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step)
{
	float		bc1 = 1.0f - powf(beta1, (float) step);
	float		bc2 = 1.0f - powf(beta2, (float) step);

	if (n == 0 || !live(be))
		return;
	adam_kernel<<<blocks_for(n, THREADS), THREADS, 0, S(be)->stream>>>(param, grad, m, v, n, lr,
																	   beta1, beta2, eps,
																	   weight_decay, bc1, bc2);
	LAUNCHED(be, "adam_update");
}

/* ---- life cycle ------------------------------------------------------- */

static void
cu_destroy(moe_backend *be)
{
	cu_state   *s;

	if (be == NULL)
		return;
	s = S(be);
	if (s != NULL)
	{
		cudaStreamSynchronize(s->stream);
		cudaFree(s->d_doubles);
		cudaFree(s->d_floats);
		free(s->h_doubles);
		if (s->blas != NULL)
			cublasDestroy(s->blas);
		if (s->stream != NULL)
			cudaStreamDestroy(s->stream);
		(void) cudaGetLastError();
		free(s);
	}
	free(be);
}

EXPORT unsigned
moe_cuda_abi(void)
{
	return MOE_BACKEND_ABI;
}

EXPORT int
moe_cuda_device_count(moe_error *err)
{
	int			n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (err != NULL)
	{
		err->status = MOE_OK;
		err->position = 0;
		err->message[0] = '\0';
	}
	if (e == cudaSuccess)
		return n;
	(void) cudaGetLastError();
	if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
	{
		/* not a failure: this machine simply has no usable GPU */
		set_error(err, MOE_OK, "%s", cudaGetErrorString(e));
		return 0;
	}
	set_error(err, MOE_ERR_BACKEND, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
	return -1;
}

EXPORT int
moe_cuda_device_name(int ordinal, char *buf, size_t len)
{
	cudaDeviceProp prop;

	if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess)
	{
		(void) cudaGetLastError();
		return -1;
	}
	snprintf(buf, len, "%s, %.1f GiB, sm_%d%d", prop.name,
			 prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor);
	return 0;
}

EXPORT moe_backend *
moe_cuda_backend_create(int device_ordinal, moe_error *err)
{
	moe_backend *be;
	cu_state   *s;
	cudaError_t e;
	cublasStatus_t bst;
	int			n = 0;

	if ((e = cudaGetDeviceCount(&n)) != cudaSuccess || device_ordinal < 0 || device_ordinal >= n)
	{
		(void) cudaGetLastError();
		set_error(err, MOE_ERR_BACKEND, "no CUDA device %d (%s)", device_ordinal,
				  e != cudaSuccess ? cudaGetErrorString(e) : "no such ordinal");
		return NULL;
	}
	be = (moe_backend *) calloc(1, sizeof(moe_backend));
	s = (cu_state *) calloc(1, sizeof(cu_state));
	if (be == NULL || s == NULL)
	{
		free(be);
		free(s);
		set_error(err, MOE_ERR_NOMEM, "out of memory creating the CUDA backend");
		return NULL;
	}
	be->state = s;
	s->device = device_ordinal;
	if ((e = cudaSetDevice(device_ordinal)) != cudaSuccess ||
		(e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess)
	{
		(void) cudaGetLastError();
		set_error(err, e == cudaErrorMemoryAllocation ? MOE_ERR_NOMEM : MOE_ERR_BACKEND,
				  "cannot start CUDA on device %d: %s", device_ordinal, cudaGetErrorString(e));
		cu_destroy(be);
		return NULL;
	}
	if ((bst = cublasCreate(&s->blas)) != CUBLAS_STATUS_SUCCESS)
	{
		s->blas = NULL;
		set_error(err, bst == CUBLAS_STATUS_ALLOC_FAILED ? MOE_ERR_NOMEM : MOE_ERR_BACKEND,
				  "cannot start cuBLAS on device %d (status %d)", device_ordinal, (int) bst);
		cu_destroy(be);
		return NULL;
	}
	/* FP32 throughout: no TF32 tensor cores, no atomics (deterministic) */
	cublasSetStream(s->blas, s->stream);
	cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH);
	cublasSetAtomicsMode(s->blas, CUBLAS_ATOMICS_NOT_ALLOWED);

	be->name = "cuda";
	be->host_memory = false;
	MOE_BACKEND_SET_OPS(be, cu);
	be->linear_infer_row_sparse = NULL;	/* see backend.h: not for device memory */
	return be;
}
