/*
 * parity.c — the CUDA backend against its CPU twin (backend_cpu.c).
 *
 *   parity PATH/moe_pg_cuda.so          (make cuda-parity)
 *   parity --cpu-only                   (a dry run of the program itself)
 *
 * Every operation of backend.h runs on both backends with the same inputs
 * and the results are compared; then whole training steps (forward,
 * backward, Adam) on the same parameters and batch, inference on the same
 * checkpoint, and checkpoints carried from one device to the other.
 *
 * Error measure: for a tensor, max |gpu - cpu| / max |cpu| (the largest
 * error relative to the tensor's scale, so values near zero after
 * cancellation do not count as huge relative errors); for a scalar,
 * |gpu - cpu| / |cpu|.  Tolerances (docs/cuda.md):
 *   TOL_EXACT  0      data movement, masks, selections, integer results
 *   TOL_FWD    1e-5   elementwise and per-row kernels, linear_infer
 *   TOL_GEMM   1e-4   cuBLAS sgemm against OpenBLAS (linear_forward/backward)
 *   TOL_STEP   1e-3   gradients of a whole training step
 * Each line also counts results identical to the bit: most kernels keep
 * the CPU's order of operations and are expected to match exactly.
 *
 * The library must load whenever it was built (a failure is an error); with
 * no driver or no device the program prints "SKIP: no CUDA device" and
 * exits 0, so machines without a GPU stay green.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_loader.h"
#include "checkpoint.h"
#include "infer.h"
#include "model.h"
#include "rng.h"

#define TOL_EXACT 0.0
#define TOL_FWD 1e-5
#define TOL_GEMM 1e-4
#define TOL_STEP 1e-3

static moe_backend *cpu,
		   *gpu;
static moe_rng rng;
static int	failures = 0,
			checks = 0;

/* ---- reporting -------------------------------------------------------- */

static void
report(bool ok, const char *what, double err, size_t identical, size_t n, double tol)
{
	checks++;
	if (!ok)
		failures++;
	printf("%s %-46s err %.2e  identical %zu/%zu  (tol %.0e)\n", ok ? "ok  " : "FAIL", what, err,
		   identical, n, tol);
}

static void
compare(const char *what, const float *c, const float *g, size_t n, double tol)
{
	double		max_ref = 0.0,
				max_diff = 0.0,
				err;
	size_t		identical = 0;
	bool		finite = true;

	for (size_t i = 0; i < n; i++)
	{
		if (isfinite(c[i]) != isfinite(g[i]))
			finite = false;
		if (memcmp(&c[i], &g[i], sizeof(float)) == 0)
			identical++;
		if (fabs(c[i]) > max_ref)
			max_ref = fabs(c[i]);
		if (fabs((double) g[i] - c[i]) > max_diff)
			max_diff = fabs((double) g[i] - c[i]);
	}
	err = max_diff / (max_ref > 0.0 ? max_ref : 1.0);
	report(finite && err <= tol, what, err, identical, n, tol);
}

static void
compare_scalar(const char *what, double c, double g, double tol)
{
	double		err = fabs(g - c) / (fabs(c) > 0.0 ? fabs(c) : 1.0);

	report(isfinite(g) && err <= tol, what, err, c == g ? 1 : 0, 1, tol);
}

static void
compare_int(const char *what, const int32_t *c, const int32_t *g, size_t n)
{
	size_t		identical = 0;

	for (size_t i = 0; i < n; i++)
		identical += c[i] == g[i];
	report(identical == n, what, (double) (n - identical), identical, n, TOL_EXACT);
}

/* The GPU's sticky error after a group of operations. */
static void
gpu_ok(const char *what)
{
	moe_error	err;

	moe_error_clear(&err);
	if (gpu->check(gpu, &err) != MOE_OK)
	{
		checks++;
		failures++;
		printf("FAIL %s: the GPU reported: %s\n", what, err.message);
	}
}

/* ---- tensors held by both backends ------------------------------------- */

typedef struct twin
{
	float	   *c;				/* CPU backend memory */
	float	   *g;				/* GPU backend memory */
	size_t		n;
	float	   *host;			/* scratch for downloads */
} twin;

typedef struct itwin
{
	int32_t    *c;
	int32_t    *g;
	size_t		n;
} itwin;

static twin
twin_from(const float *values, size_t n)
{
	twin		t = {cpu->alloc(cpu, sizeof(float) * n), gpu->alloc(gpu, sizeof(float) * n), n,
	malloc(sizeof(float) * (n > 0 ? n : 1))};

	if (t.c == NULL || t.g == NULL || t.host == NULL)
	{
		fprintf(stderr, "parity: out of memory for %zu values\n", n);
		exit(2);
	}
	if (values != NULL)
	{
		cpu->upload(cpu, t.c, values, sizeof(float) * n);
		gpu->upload(gpu, t.g, values, sizeof(float) * n);
	}
	return t;
}

static twin
twin_zero(size_t n)
{
	return twin_from(NULL, n);
}

static twin
twin_normal(size_t n, float scale, float offset)
{
	float	   *v = malloc(sizeof(float) * (n > 0 ? n : 1));
	twin		t;

	for (size_t i = 0; i < n; i++)
		v[i] = offset + scale * moe_rng_normal(&rng);
	t = twin_from(v, n);
	free(v);
	return t;
}

static void
twin_free(twin *t)
{
	cpu->release(cpu, t->c);
	gpu->release(gpu, t->g);
	free(t->host);
	memset(t, 0, sizeof(*t));
}

static itwin
itwin_from(const int32_t *values, size_t n)
{
	itwin		t = {cpu->alloc(cpu, sizeof(int32_t) * n), gpu->alloc(gpu, sizeof(int32_t) * n), n};

	if (t.c == NULL || t.g == NULL)
	{
		fprintf(stderr, "parity: out of memory for %zu indices\n", n);
		exit(2);
	}
	if (values != NULL)
	{
		cpu->upload(cpu, t.c, values, sizeof(int32_t) * n);
		gpu->upload(gpu, t.g, values, sizeof(int32_t) * n);
	}
	return t;
}

static void
itwin_free(itwin *t)
{
	cpu->release(cpu, t->c);
	gpu->release(gpu, t->g);
	memset(t, 0, sizeof(*t));
}

/* Compare the two copies of a twin. */
static void
expect(const char *what, twin *t, double tol)
{
	gpu->download(gpu, t->host, t->g, sizeof(float) * t->n);
	compare(what, t->c, t->host, t->n, tol);
}

static void
expect_int(const char *what, itwin *t)
{
	int32_t    *h = malloc(sizeof(int32_t) * (t->n > 0 ? t->n : 1));

	gpu->download(gpu, h, t->g, sizeof(int32_t) * t->n);
	compare_int(what, t->c, h, t->n);
	free(h);
}

/* Make the GPU copy equal to the CPU copy (same inputs for the next op). */
static void
sync_to_gpu(twin *t)
{
	gpu->upload(gpu, t->g, t->c, sizeof(float) * t->n);
}

static void
random_indices(int32_t *idx, int n, int below)
{
	for (int i = 0; i < n; i++)
		idx[i] = (int32_t) moe_rng_below(&rng, (uint32_t) below);
}

/* The first n of a random permutation of [0, below): distinct indices. */
static void
distinct_indices(int32_t *idx, int n, int below)
{
	uint32_t   *perm = malloc(sizeof(uint32_t) * below);

	for (int i = 0; i < below; i++)
		perm[i] = i;
	moe_rng_shuffle_u32(&rng, perm, below);
	for (int i = 0; i < n; i++)
		idx[i] = (int32_t) perm[i];
	free(perm);
}

/* ---- memory and dense layers ------------------------------------------ */

static void
test_memory(void)
{
	twin		a = twin_normal(1000, 1.0f, 0.0f),
				b = twin_zero(1000);

	cpu->copy(cpu, b.c, a.c, sizeof(float) * 1000);
	gpu->copy(gpu, b.g, a.g, sizeof(float) * 1000);
	expect("upload, copy, download", &b, TOL_EXACT);
	cpu->fill(cpu, b.c, 999, -2.5f);
	gpu->fill(gpu, b.g, 999, -2.5f);
	expect("fill", &b, TOL_EXACT);
	gpu_ok("memory");
	twin_free(&a);
	twin_free(&b);
}

static void
test_dense(int M, int N, int K)
{
	char		name[96];
	twin		in = twin_normal((size_t) M * K, 1.0f, 0.1f),
				W = twin_normal((size_t) N * K, 1.0f / sqrtf((float) K), 0.0f),
				b = twin_normal(N, 0.1f, 0.0f),
				out = twin_zero((size_t) M * N),
				dout = twin_normal((size_t) M * N, 1.0f, 0.0f),
				din = twin_zero((size_t) M * K),
				dW = twin_zero((size_t) N * K),
				db = twin_zero(N);

	cpu->linear_forward(cpu, out.c, in.c, W.c, b.c, M, N, K);
	gpu->linear_forward(gpu, out.g, in.g, W.g, b.g, M, N, K);
	snprintf(name, sizeof(name), "linear_forward %dx%dx%d", M, N, K);
	expect(name, &out, TOL_GEMM);

	cpu->linear_infer(cpu, out.c, N, in.c, K, W.c, K, b.c, M, N, K);
	gpu->linear_infer(gpu, out.g, N, in.g, K, W.g, K, b.g, M, N, K);
	snprintf(name, sizeof(name), "linear_infer %dx%dx%d", M, N, K);
	expect(name, &out, TOL_FWD);

	/* each row alone gives the batch's bits on the GPU too */
	{
		float	   *batch = malloc(sizeof(float) * (size_t) M * N),
				   *alone = malloc(sizeof(float) * N);
		size_t		identical = 0;
		int			rows_checked = 0;

		gpu->download(gpu, batch, out.g, sizeof(float) * (size_t) M * N);
		for (int r = 0; r < M; r += (M > 8 ? M / 7 : 1))
		{
			float	   *row = gpu->alloc(gpu, sizeof(float) * N);

			gpu->linear_infer(gpu, row, N, in.g + (size_t) r * K, K, W.g, K, b.g, 1, N, K);
			gpu->download(gpu, alone, row, sizeof(float) * N);
			gpu->release(gpu, row);
			identical += memcmp(alone, batch + (size_t) r * N, sizeof(float) * N) == 0;
			rows_checked++;
		}
		snprintf(name, sizeof(name), "linear_infer row-independent %dx%dx%d", M, N, K);
		report(identical == (size_t) rows_checked, name, (double) (rows_checked - identical),
			   identical, rows_checked, TOL_EXACT);
		free(batch);
		free(alone);
	}

	cpu->linear_backward(cpu, din.c, dW.c, db.c, dout.c, in.c, W.c, M, N, K);
	gpu->linear_backward(gpu, din.g, dW.g, db.g, dout.g, in.g, W.g, M, N, K);
	snprintf(name, sizeof(name), "linear_backward din %dx%dx%d", M, N, K);
	expect(name, &din, TOL_GEMM);
	snprintf(name, sizeof(name), "linear_backward dW %dx%dx%d", M, N, K);
	expect(name, &dW, TOL_GEMM);
	snprintf(name, sizeof(name), "linear_backward db %dx%dx%d", M, N, K);
	expect(name, &db, TOL_FWD);
	gpu_ok("dense");

	twin_free(&in);
	twin_free(&W);
	twin_free(&b);
	twin_free(&out);
	twin_free(&dout);
	twin_free(&din);
	twin_free(&dW);
	twin_free(&db);
}

/* linear_infer on a block of columns of a wider W, with row strides. */
static void
test_infer_strides(void)
{
	const int	M = 45,
				N = 19,
				K = 700,
				ldi = K + 3,
				ldw = 2 * K + 5,
				ldo = N + 7;
	twin		in = twin_normal((size_t) M * ldi, 1.0f, 0.0f),
				W = twin_normal((size_t) N * ldw, 0.05f, 0.0f),
				out = twin_zero((size_t) M * ldo);

	/* the second block of K columns, no bias */
	cpu->linear_infer(cpu, out.c, ldo, in.c, ldi, W.c + K, ldw, NULL, M, N, K);
	gpu->linear_infer(gpu, out.g, ldo, in.g, ldi, W.g + K, ldw, NULL, M, N, K);
	expect("linear_infer strided block, no bias", &out, TOL_FWD);
	gpu_ok("linear_infer strides");
	twin_free(&in);
	twin_free(&W);
	twin_free(&out);
}

static void
test_layernorm(int M, int N)
{
	char		name[96];
	twin		in = twin_normal((size_t) M * N, 2.0f, 0.5f),
				gamma = twin_normal(N, 0.2f, 1.0f),
				beta = twin_normal(N, 0.1f, 0.0f),
				out = twin_zero((size_t) M * N),
				mean = twin_zero(M),
				rstd = twin_zero(M),
				x = twin_zero((size_t) M * N),
				dout = twin_normal((size_t) M * N, 1.0f, 0.0f),
				din = twin_zero((size_t) M * N),
				dgamma = twin_zero(N),
				dbeta = twin_zero(N);

	cpu->layernorm_forward(cpu, out.c, mean.c, rstd.c, in.c, gamma.c, beta.c, M, N);
	gpu->layernorm_forward(gpu, out.g, mean.g, rstd.g, in.g, gamma.g, beta.g, M, N);
	snprintf(name, sizeof(name), "layernorm_forward %dx%d", M, N);
	expect(name, &out, TOL_FWD);
	snprintf(name, sizeof(name), "layernorm_forward mean %dx%d", M, N);
	expect(name, &mean, TOL_FWD);
	snprintf(name, sizeof(name), "layernorm_forward rstd %dx%d", M, N);
	expect(name, &rstd, TOL_FWD);

	/* in place */
	cpu->copy(cpu, x.c, in.c, sizeof(float) * M * N);
	gpu->copy(gpu, x.g, in.g, sizeof(float) * M * N);
	cpu->layernorm_forward(cpu, x.c, mean.c, rstd.c, x.c, gamma.c, beta.c, M, N);
	gpu->layernorm_forward(gpu, x.g, mean.g, rstd.g, x.g, gamma.g, beta.g, M, N);
	snprintf(name, sizeof(name), "layernorm_forward in place %dx%d", M, N);
	expect(name, &x, TOL_FWD);

	sync_to_gpu(&mean);
	sync_to_gpu(&rstd);
	cpu->layernorm_backward(cpu, din.c, dgamma.c, dbeta.c, dout.c, in.c, mean.c, rstd.c, gamma.c, M, N);
	gpu->layernorm_backward(gpu, din.g, dgamma.g, dbeta.g, dout.g, in.g, mean.g, rstd.g, gamma.g, M, N);
	snprintf(name, sizeof(name), "layernorm_backward din %dx%d", M, N);
	expect(name, &din, TOL_FWD);
	snprintf(name, sizeof(name), "layernorm_backward dgamma %dx%d", M, N);
	expect(name, &dgamma, TOL_FWD);
	snprintf(name, sizeof(name), "layernorm_backward dbeta %dx%d", M, N);
	expect(name, &dbeta, TOL_FWD);
	gpu_ok("layernorm");

	twin_free(&in);
	twin_free(&gamma);
	twin_free(&beta);
	twin_free(&out);
	twin_free(&mean);
	twin_free(&rstd);
	twin_free(&x);
	twin_free(&dout);
	twin_free(&din);
	twin_free(&dgamma);
	twin_free(&dbeta);
}

static void
test_elementwise(void)
{
	const size_t n = 100003;
	twin		in = twin_normal(n, 1.0f, 0.0f),
				out = twin_zero(n),
				dout = twin_normal(n, 1.0f, 0.0f),
				din = twin_zero(n),
				mask = twin_zero(n),
				y = twin_normal(n, 1.0f, 0.0f);

	cpu->relu_forward(cpu, out.c, in.c, n);
	gpu->relu_forward(gpu, out.g, in.g, n);
	expect("relu_forward", &out, TOL_EXACT);
	cpu->relu_backward(cpu, din.c, dout.c, out.c, n);
	gpu->relu_backward(gpu, din.g, dout.g, out.g, n);
	expect("relu_backward", &din, TOL_EXACT);

	cpu->dropout_forward(cpu, out.c, mask.c, in.c, n, 0.3f, 0x1234abcdULL);
	gpu->dropout_forward(gpu, out.g, mask.g, in.g, n, 0.3f, 0x1234abcdULL);
	expect("dropout_forward mask (counter-based)", &mask, TOL_EXACT);
	expect("dropout_forward", &out, TOL_EXACT);

	cpu->mul(cpu, din.c, dout.c, mask.c, n);
	gpu->mul(gpu, din.g, dout.g, mask.g, n);
	expect("mul", &din, TOL_EXACT);
	cpu->add(cpu, y.c, in.c, n);
	gpu->add(gpu, y.g, in.g, n);
	expect("add", &y, TOL_EXACT);
	cpu->scale(cpu, y.c, n, 0.37f);
	gpu->scale(gpu, y.g, n, 0.37f);
	expect("scale", &y, TOL_EXACT);
	compare_scalar("sum_squares", cpu->sum_squares(cpu, y.c, n), gpu->sum_squares(gpu, y.g, n),
				   1e-12);
	gpu_ok("elementwise");

	twin_free(&in);
	twin_free(&out);
	twin_free(&dout);
	twin_free(&din);
	twin_free(&mask);
	twin_free(&y);
}

static void
test_rows(void)
{
	const int	n_src = 50,
				width = 33,
				rows = 80;
	int32_t		idx[80],
				didx[20];
	twin		src = twin_normal((size_t) n_src * width, 1.0f, 0.0f),
				shift = twin_normal(width, 0.5f, 0.0f),
				scale = twin_normal(width, 0.2f, 1.0f),
				dst = twin_zero((size_t) rows * width),
				acc = twin_normal((size_t) n_src * width, 1.0f, 0.0f);
	itwin		ix,
				dix;

	random_indices(idx, rows, n_src);
	ix = itwin_from(idx, rows);
	cpu->gather_rows(cpu, dst.c, src.c, ix.c, rows, width, NULL, NULL);
	gpu->gather_rows(gpu, dst.g, src.g, ix.g, rows, width, NULL, NULL);
	expect("gather_rows", &dst, TOL_EXACT);
	cpu->gather_rows(cpu, dst.c, src.c, ix.c, rows, width, shift.c, scale.c);
	gpu->gather_rows(gpu, dst.g, src.g, ix.g, rows, width, shift.g, scale.g);
	expect("gather_rows standardised", &dst, TOL_EXACT);
	cpu->gather_rows(cpu, dst.c, src.c, ix.c, rows, width, NULL, scale.c);
	gpu->gather_rows(gpu, dst.g, src.g, ix.g, rows, width, NULL, scale.g);
	expect("gather_rows scale only", &dst, TOL_EXACT);

	distinct_indices(didx, 20, n_src);
	dix = itwin_from(didx, 20);
	cpu->scatter_add_rows(cpu, acc.c, dst.c, dix.c, 20, width);
	gpu->scatter_add_rows(gpu, acc.g, dst.g, dix.g, 20, width);
	expect("scatter_add_rows", &acc, TOL_EXACT);

	{
		const int	M = 31,
					Na = 17,
					Nb = 9;
		twin		a = twin_normal((size_t) M * Na, 1.0f, 0.0f),
					b = twin_normal((size_t) M * Nb, 1.0f, 0.0f),
					cat = twin_zero((size_t) M * (Na + Nb)),
					a2 = twin_zero((size_t) M * Na),
					b2 = twin_zero((size_t) M * Nb);

		cpu->concat_cols(cpu, cat.c, a.c, b.c, M, Na, Nb);
		gpu->concat_cols(gpu, cat.g, a.g, b.g, M, Na, Nb);
		expect("concat_cols", &cat, TOL_EXACT);
		cpu->split_cols(cpu, a2.c, b2.c, cat.c, M, Na, Nb);
		gpu->split_cols(gpu, a2.g, b2.g, cat.g, M, Na, Nb);
		expect("split_cols a", &a2, TOL_EXACT);
		expect("split_cols b", &b2, TOL_EXACT);
		twin_free(&a);
		twin_free(&b);
		twin_free(&cat);
		twin_free(&a2);
		twin_free(&b2);
	}
	{
		const int	M = 64,
					N = 40,
					lda = 100,
					ldb = 90,
					ldo = 45;
		int32_t		ai[64],
					bi[64];
		twin		a = twin_normal((size_t) 10 * lda, 1.0f, 0.0f),
					b = twin_normal((size_t) 12 * ldb, 1.0f, 0.0f),
					bias = twin_normal(N, 0.1f, 0.0f),
					out = twin_zero((size_t) M * ldo);
		itwin		ax,
					bx;

		random_indices(ai, M, 10);
		random_indices(bi, M, 12);
		ax = itwin_from(ai, M);
		bx = itwin_from(bi, M);
		cpu->sum_parts(cpu, out.c, ldo, bias.c, a.c + 5, lda, ax.c, b.c + 3, ldb, bx.c, M, N);
		gpu->sum_parts(gpu, out.g, ldo, bias.g, a.g + 5, lda, ax.g, b.g + 3, ldb, bx.g, M, N);
		expect("sum_parts", &out, TOL_EXACT);
		twin_free(&a);
		twin_free(&b);
		twin_free(&bias);
		twin_free(&out);
		itwin_free(&ax);
		itwin_free(&bx);
	}
	{
		twin		s = twin_normal(n_src, 1.0f, 0.0f),
					d = twin_zero(rows),
					back = twin_zero(n_src);

		cpu->gather(cpu, d.c, s.c, ix.c, rows);
		gpu->gather(gpu, d.g, s.g, ix.g, rows);
		expect("gather", &d, TOL_EXACT);
		cpu->scatter(cpu, back.c, d.c, dix.c, 20);
		gpu->scatter(gpu, back.g, d.g, dix.g, 20);
		expect("scatter", &back, TOL_EXACT);
		twin_free(&s);
		twin_free(&d);
		twin_free(&back);
	}
	gpu_ok("rows");

	twin_free(&src);
	twin_free(&shift);
	twin_free(&scale);
	twin_free(&dst);
	twin_free(&acc);
	itwin_free(&ix);
	itwin_free(&dix);
}

static void
test_router(int M, int E, int k, float temperature)
{
	char		name[96];
	twin		logits = twin_normal((size_t) M * E, 2.0f, 0.0f),
				probs = twin_zero((size_t) M * E),
				dprobs = twin_normal((size_t) M * E, 1.0f, 0.0f),
				dlogits = twin_zero((size_t) M * E),
				bias = twin_normal(E, 0.02f, 0.0f),
				sel_w = twin_zero((size_t) M * k),
				y = twin_normal((size_t) M * k, 1.0f, 0.0f),
				pred = twin_zero(M),
				dout = twin_normal(M, 1.0f, 0.0f),
				dw = twin_zero((size_t) M * k),
				dy = twin_zero((size_t) M * k),
				noise_pre = twin_normal((size_t) M * E, 2.0f, 0.0f),
				eps = twin_zero((size_t) M * E),
				noisy = twin_zero((size_t) M * E),
				dnoise = twin_zero((size_t) M * E),
				colmean = twin_zero(E),
				target = twin_normal(M, 1.0f, 0.0f),
				dpred = twin_zero(M);
	itwin		sel = itwin_from(NULL, (size_t) M * k);
	float	   *p = malloc(sizeof(float) * M * E);

	cpu->softmax_forward(cpu, probs.c, logits.c, M, E, temperature);
	gpu->softmax_forward(gpu, probs.g, logits.g, M, E, temperature);
	snprintf(name, sizeof(name), "softmax_forward %dx%d T=%.2f", M, E, temperature);
	expect(name, &probs, TOL_FWD);

	/* top-k on the same probabilities, with exact ties in the first rows */
	memcpy(p, probs.c, sizeof(float) * M * E);
	for (int e = 0; e < E; e++)
		p[e] = 1.0f / E;		/* row 0: all tied */
	if (M > 1 && E > 2)
	{
		p[E + 1] = 0.4f;		/* row 1: experts 1 and 2 tied at the top */
		p[E + 2] = 0.4f;
	}
	cpu->upload(cpu, probs.c, p, sizeof(float) * M * E);
	sync_to_gpu(&probs);
	cpu->topk_route(cpu, sel.c, sel_w.c, probs.c, NULL, M, E, k);
	gpu->topk_route(gpu, sel.g, sel_w.g, probs.g, NULL, M, E, k);
	snprintf(name, sizeof(name), "topk_route selection %dx%d k=%d (ties)", M, E, k);
	expect_int(name, &sel);
	snprintf(name, sizeof(name), "topk_route weights %dx%d k=%d", M, E, k);
	expect(name, &sel_w, TOL_FWD);
	cpu->topk_route(cpu, sel.c, sel_w.c, probs.c, bias.c, M, E, k);
	gpu->topk_route(gpu, sel.g, sel_w.g, probs.g, bias.g, M, E, k);
	snprintf(name, sizeof(name), "topk_route selection with bias %dx%d k=%d", M, E, k);
	expect_int(name, &sel);

	cpu->softmax_backward(cpu, dlogits.c, dprobs.c, probs.c, M, E, temperature);
	gpu->softmax_backward(gpu, dlogits.g, dprobs.g, probs.g, M, E, temperature);
	expect("softmax_backward", &dlogits, TOL_FWD);

	sync_to_gpu(&sel_w);
	cpu->combine_forward(cpu, pred.c, sel_w.c, y.c, M, k);
	gpu->combine_forward(gpu, pred.g, sel_w.g, y.g, M, k);
	expect("combine_forward", &pred, TOL_FWD);
	cpu->combine_backward(cpu, dw.c, dy.c, dout.c, sel_w.c, y.c, M, k);
	gpu->combine_backward(gpu, dw.g, dy.g, dout.g, sel_w.g, y.g, M, k);
	expect("combine_backward dw", &dw, TOL_FWD);
	expect("combine_backward dy", &dy, TOL_FWD);
	cpu->route_backward(cpu, dprobs.c, dw.c, sel_w.c, sel.c, probs.c, M, E, k);
	gpu->route_backward(gpu, dprobs.g, dw.g, sel_w.g, sel.g, probs.g, M, E, k);
	expect("route_backward", &dprobs, TOL_FWD);

	cpu->noisy_logits(cpu, noisy.c, eps.c, logits.c, noise_pre.c, (size_t) M * E, 99);
	gpu->noisy_logits(gpu, noisy.g, eps.g, logits.g, noise_pre.g, (size_t) M * E, 99);
	expect("noisy_logits eps (counter-based normals)", &eps, TOL_FWD);
	expect("noisy_logits", &noisy, TOL_FWD);
	sync_to_gpu(&eps);
	cpu->noisy_logits_backward(cpu, dnoise.c, dlogits.c, eps.c, noise_pre.c, (size_t) M * E);
	gpu->noisy_logits_backward(gpu, dnoise.g, dlogits.g, eps.g, noise_pre.g, (size_t) M * E);
	expect("noisy_logits_backward", &dnoise, TOL_FWD);

	sync_to_gpu(&dlogits);
	compare_scalar("zloss value", cpu->zloss(cpu, dlogits.c, logits.c, M, E, 0.01f),
				   gpu->zloss(gpu, dlogits.g, logits.g, M, E, 0.01f), TOL_FWD);
	expect("zloss gradient", &dlogits, TOL_FWD);
	sync_to_gpu(&dprobs);
	compare_scalar("row_entropy value", cpu->row_entropy(cpu, dprobs.c, probs.c, M, E, 0.5f),
				   gpu->row_entropy(gpu, dprobs.g, probs.g, M, E, 0.5f), TOL_FWD);
	expect("row_entropy gradient", &dprobs, TOL_FWD);

	cpu->column_mean(cpu, colmean.c, probs.c, M, E);
	gpu->column_mean(gpu, colmean.g, probs.g, M, E);
	expect("column_mean", &colmean, TOL_EXACT);
	cpu->add_row_vector(cpu, dprobs.c, colmean.c, 0.25f, M, E);
	gpu->add_row_vector(gpu, dprobs.g, colmean.g, 0.25f, M, E);
	expect("add_row_vector", &dprobs, TOL_FWD);

	compare_scalar("mse value", cpu->mse_forward_backward(cpu, dpred.c, y.c, target.c, M),
				   gpu->mse_forward_backward(gpu, dpred.g, y.g, target.g, M), TOL_FWD);
	expect("mse gradient", &dpred, TOL_EXACT);
	gpu_ok("router");

	free(p);
	twin_free(&logits);
	twin_free(&probs);
	twin_free(&dprobs);
	twin_free(&dlogits);
	twin_free(&bias);
	twin_free(&sel_w);
	twin_free(&y);
	twin_free(&pred);
	twin_free(&dout);
	twin_free(&dw);
	twin_free(&dy);
	twin_free(&noise_pre);
	twin_free(&eps);
	twin_free(&noisy);
	twin_free(&dnoise);
	twin_free(&colmean);
	twin_free(&target);
	twin_free(&dpred);
	itwin_free(&sel);
}

static void
test_adam(void)
{
	const size_t n = 100003;
	twin		param = twin_normal(n, 0.1f, 0.0f),
				grad = twin_normal(n, 0.01f, 0.0f),
				m = twin_normal(n, 0.001f, 0.0f),
				v = twin_zero(n);
	float	   *h = malloc(sizeof(float) * n);

	for (size_t i = 0; i < n; i++)
		h[i] = 1e-5f * fabsf(moe_rng_normal(&rng));
	cpu->upload(cpu, v.c, h, sizeof(float) * n);
	gpu->upload(gpu, v.g, h, sizeof(float) * n);
	for (int64_t step = 1; step <= 3; step++)
	{
		cpu->adam_update(cpu, param.c, grad.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
		gpu->adam_update(gpu, param.g, grad.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
	}
	expect("adam_update params (3 steps)", &param, TOL_FWD);
	expect("adam_update first moment", &m, TOL_FWD);
	expect("adam_update second moment", &v, TOL_FWD);
	gpu_ok("adam");
	free(h);
	twin_free(&param);
	twin_free(&grad);
	twin_free(&m);
	twin_free(&v);
}

/* ---- whole model ------------------------------------------------------ */

typedef struct side
{
	moe_backend *be;
	moe_model  *model;
	moe_workspace *ws;
	float	   *drugs;			/* entity tables in backend memory */
	float	   *proteins;
	float	   *grads;
	float	   *adam_m;
	float	   *adam_v;
	float	   *target;
} side;

static void
host_of(const side *s, float *dst, const float *src, size_t n)
{
	s->be->download(s->be, dst, src, sizeof(float) * n);
}

static moe_status
side_open(side *s, moe_backend *be, const moe_config *cfg, const float *drugs, int n_drugs,
		  const float *proteins, int n_proteins, const float *norm, int M, moe_error *err)
{
	moe_status	st;
	size_t		np;

	memset(s, 0, sizeof(*s));
	s->be = be;
	if ((st = moe_model_create(cfg, be, &s->model, err)) != MOE_OK)
		return st;
	moe_model_init(s->model, 11, NULL);
	moe_model_set_input_norm(s->model, norm, norm + cfg->drug_dim, norm + 2 * cfg->drug_dim,
							 norm + 2 * cfg->drug_dim + cfg->protein_dim);
	if ((st = moe_workspace_create(s->model, M, &s->ws, err)) != MOE_OK)
		return st;
	np = s->model->layout.n_params;
	s->drugs = be->alloc(be, sizeof(float) * n_drugs * cfg->drug_dim);
	s->proteins = be->alloc(be, sizeof(float) * n_proteins * cfg->protein_dim);
	s->grads = be->alloc(be, sizeof(float) * np);
	s->adam_m = be->alloc(be, sizeof(float) * np);
	s->adam_v = be->alloc(be, sizeof(float) * np);
	s->target = be->alloc(be, sizeof(float) * M);
	if (!s->drugs || !s->proteins || !s->grads || !s->adam_m || !s->adam_v || !s->target)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory");
	be->upload(be, s->drugs, drugs, sizeof(float) * n_drugs * cfg->drug_dim);
	be->upload(be, s->proteins, proteins, sizeof(float) * n_proteins * cfg->protein_dim);
	return be->check(be, err);
}

static void
side_close(side *s)
{
	moe_backend *be = s->be;

	if (be == NULL)
		return;					/* never opened */
	be->release(be, s->drugs);
	be->release(be, s->proteins);
	be->release(be, s->grads);
	be->release(be, s->adam_m);
	be->release(be, s->adam_v);
	be->release(be, s->target);
	if (s->model != NULL)
	{
		moe_workspace_free(s->model, s->ws);
		moe_model_free(s->model);
	}
}

/* Per tensor of the trainable part: the gradient (or parameter) error. */
static void
compare_tensors(const char *what, const moe_layout *l, const float *c, const float *g, double tol)
{
	double		worst = 0.0;
	const char *worst_name = "none";
	size_t		identical = 0,
				total = 0;
	bool		finite = true;

	for (int t = 0; t < l->n_tensors; t++)
	{
		const moe_tensor_info *ti = &l->tensors[t];
		double		max_ref = 0.0,
					max_diff = 0.0,
					err;

		if (ti->offset < l->trainable_offset)
			continue;
		for (size_t i = ti->offset; i < ti->offset + ti->numel; i++)
		{
			finite &= isfinite(g[i]) == isfinite(c[i]);
			identical += memcmp(&c[i], &g[i], sizeof(float)) == 0;
			if (fabs(c[i]) > max_ref)
				max_ref = fabs(c[i]);
			if (fabs((double) g[i] - c[i]) > max_diff)
				max_diff = fabs((double) g[i] - c[i]);
		}
		total += ti->numel;
		/* a tensor whose gradient is zero on the CPU (an expert no row
		 * chose) must be zero on the GPU too: absolute then */
		err = max_ref > 0.0 ? max_diff / max_ref : max_diff;
		if (err > worst)
		{
			worst = err;
			worst_name = ti->name;
		}
	}
	{
		char		name[128];

		snprintf(name, sizeof(name), "%s (worst: %s)", what, worst_name);
		report(finite && worst <= tol, name, worst, identical, total, tol);
	}
}

/*
 * One training step on both backends from the same parameters and batch:
 * forward (dropout and, when asked, noisy gating), MSE, router terms,
 * backward, gradient clipping's norm, Adam; then inference on the same
 * checkpoint, and checkpoints carried across.
 */
/* ---- sparse first layers (sparse.h) ------------------------------------- */

static void
test_sparse(void)
{
	const int	n = 40,
				K = 300,
				N = 72,
				M = 64;
	float	   *x = malloc(sizeof(float) * n * K);
	int32_t		idx[64];
	moe_sparse_table table;
	moe_sparse_batch b;
	moe_error	err;

	for (int i = 0; i < n * K; i++)
		x[i] = moe_rng_uniform(&rng) < 0.1f ? moe_rng_normal(&rng) : 0.0f;
	memset(x + 3 * K, 0, sizeof(float) * K);	/* an entity with no non-zero */
	random_indices(idx, M, n);
	idx[0] = 3;
	if (moe_sparse_table_build(x, n, K, &table, &err) != MOE_OK ||
		moe_sparse_batch_create(&table, M, &b, &err) != MOE_OK)
	{
		printf("FAIL sparse setup: %s\n", err.message);
		failures++;
		free(x);
		return;
	}
	moe_sparse_batch_fill(&b, &table, idx, M);
	{
		int			U = b.distinct;
		twin		W = twin_normal((size_t) N * K, 0.1f, 0.0f),
					scale = twin_normal(K, 0.2f, 1.0f),
					shift = twin_normal(K, 0.3f, 0.0f),
					Wt = twin_zero((size_t) K * N),
					val = twin_from(b.val, (size_t) b.nnz),
					out = twin_zero((size_t) U * N),
					rows = twin_normal((size_t) M * N, 1.0f, 0.0f),
					d = twin_zero((size_t) U * N),
					dWt = twin_zero((size_t) K * N),
					db = twin_normal(N, 1.0f, 0.0f),
					dW = twin_zero((size_t) N * K);
		itwin		col_ptr = itwin_from(b.col_ptr, (size_t) K + 1),
					ent = itwin_from(b.ent, (size_t) b.nnz),
					perm = itwin_from(b.perm, M),
					seg = itwin_from(b.seg_ptr, (size_t) U + 1);

		cpu->transpose_scaled(cpu, Wt.c, W.c, scale.c, N, K);
		gpu->transpose_scaled(gpu, Wt.g, W.g, scale.g, N, K);
		expect("transpose_scaled", &Wt, TOL_EXACT);
		cpu->sparse_linear_forward(cpu, out.c, Wt.c, col_ptr.c, ent.c, val.c, U, N, K);
		gpu->sparse_linear_forward(gpu, out.g, Wt.g, col_ptr.g, ent.g, val.g, U, N, K);
		expect("sparse_linear_forward", &out, TOL_FWD);
		cpu->segment_sum_rows(cpu, d.c, rows.c, perm.c, seg.c, U, N);
		gpu->segment_sum_rows(gpu, d.g, rows.g, perm.g, seg.g, U, N);
		expect("segment_sum_rows", &d, TOL_FWD);
		sync_to_gpu(&d);
		cpu->sparse_linear_backward(cpu, dWt.c, d.c, col_ptr.c, ent.c, val.c, N, K);
		gpu->sparse_linear_backward(gpu, dWt.g, d.g, col_ptr.g, ent.g, val.g, N, K);
		expect("sparse_linear_backward", &dWt, TOL_FWD);
		sync_to_gpu(&dWt);
		cpu->transpose_scaled_back(cpu, dW.c, dWt.c, scale.c, shift.c, db.c, N, K);
		gpu->transpose_scaled_back(gpu, dW.g, dWt.g, scale.g, shift.g, db.g, N, K);
		expect("transpose_scaled_back", &dW, TOL_FWD);
		gpu_ok("sparse first layers");
		twin_free(&W);
		twin_free(&scale);
		twin_free(&shift);
		twin_free(&Wt);
		twin_free(&val);
		twin_free(&out);
		twin_free(&rows);
		twin_free(&d);
		twin_free(&dWt);
		twin_free(&db);
		twin_free(&dW);
		itwin_free(&col_ptr);
		itwin_free(&ent);
		itwin_free(&perm);
		itwin_free(&seg);
	}
	moe_sparse_batch_free(&b);
	moe_sparse_table_free(&table);
	free(x);
}

static void
test_model(int top_k, bool noisy, float dropout, bool sparse)
{
	const int	Dd = 96,
				Dp = 80,
				n_drugs = 30,
				n_proteins = 25,
				M = 64,
				E = 4;
	moe_config	cfg;
	side		sc = {0},
				sg = {0};
	moe_error	err;
	float	   *drugs = malloc(sizeof(float) * n_drugs * Dd),
			   *proteins = malloc(sizeof(float) * n_proteins * Dp),
			   *norm = malloc(sizeof(float) * 2 * (Dd + Dp)),
			   *target = malloc(sizeof(float) * M);
	int32_t		di[64],
				pi[64];
	char		what[160],
				label[32];
	size_t		np;
	float	   *hc,
			   *hg;
	float		d_pbar[MOE_MAX_EXPERTS];
	moe_router_grad router = {0};
	int			same_routes = 0;

	moe_config_defaults(&cfg, Dd, Dp);
	cfg.drug_hidden[0] = 64;
	cfg.protein_hidden[0] = 48;
	cfg.gate_hidden[0] = 64;
	cfg.gate_hidden[1] = 32;
	cfg.expert_hidden[0] = 64;
	cfg.expert_hidden[1] = 32;
	cfg.n_experts = E;
	cfg.top_k = top_k;
	cfg.noisy_gating = noisy ? 1 : 0;
	cfg.dropout = dropout;
	cfg.temperature = 0.8f;
	snprintf(label, sizeof(label), "k=%d%s%s%s", top_k, noisy ? ", noisy" : "",
			 dropout > 0 ? ", dropout" : "", sparse ? ", sparse" : "");

	for (int i = 0; i < n_drugs * Dd; i++)
		drugs[i] = moe_rng_uniform(&rng) < 0.3f ? 1.0f : 0.0f;
	for (int i = 0; i < n_proteins * Dp; i++)
		proteins[i] = moe_rng_normal(&rng);
	/* drug shift, drug scale, protein shift, protein scale (side_open) */
	for (int j = 0; j < Dd; j++)
	{
		norm[j] = 0.1f * moe_rng_normal(&rng);
		norm[Dd + j] = 0.5f + moe_rng_uniform(&rng);
	}
	for (int j = 0; j < Dp; j++)
	{
		norm[2 * Dd + j] = 0.1f * moe_rng_normal(&rng);
		norm[2 * Dd + Dp + j] = 0.5f + moe_rng_uniform(&rng);
	}
	for (int i = 0; i < M; i++)
		target[i] = moe_rng_normal(&rng);
	random_indices(di, M, n_drugs);
	random_indices(pi, M, n_proteins);

	if (side_open(&sc, cpu, &cfg, drugs, n_drugs, proteins, n_proteins, norm, M, &err) != MOE_OK ||
		side_open(&sg, gpu, &cfg, drugs, n_drugs, proteins, n_proteins, norm, M, &err) != MOE_OK)
	{
		printf("FAIL model setup (%s): %s\n", label, err.message);
		failures++;
		side_close(&sc);
		side_close(&sg);
		return;
	}
	if (sparse)
	{
		/* the drugs are 30 % ones: both encoders' first layers sparse */
		static moe_sparse_table td,
					tp;

		moe_sparse_table_free(&td);
		moe_sparse_table_free(&tp);
		if (moe_sparse_table_build(drugs, n_drugs, Dd, &td, &err) != MOE_OK ||
			moe_sparse_table_build(proteins, n_proteins, Dp, &tp, &err) != MOE_OK ||
			moe_workspace_use_sparse(sc.model, sc.ws, 0, &td, &err) != MOE_OK ||
			moe_workspace_use_sparse(sc.model, sc.ws, 1, &tp, &err) != MOE_OK ||
			moe_workspace_use_sparse(sg.model, sg.ws, 0, &td, &err) != MOE_OK ||
			moe_workspace_use_sparse(sg.model, sg.ws, 1, &tp, &err) != MOE_OK)
		{
			printf("FAIL sparse model setup (%s): %s\n", label, err.message);
			failures++;
			side_close(&sc);
			side_close(&sg);
			return;
		}
	}
	np = sc.model->layout.n_params;
	hc = malloc(sizeof(float) * np);
	hg = malloc(sizeof(float) * np);
	cpu->upload(cpu, sc.target, target, sizeof(float) * M);
	gpu->upload(gpu, sg.target, target, sizeof(float) * M);

	/* the same initial parameters: one host init, uploaded to each */
	host_of(&sc, hc, sc.model->params, np);
	host_of(&sg, hg, sg.model->params, np);
	snprintf(what, sizeof(what), "model init (%s)", label);
	compare(what, hc, hg, np, TOL_EXACT);

	/* forward */
	if (moe_forward(sc.model, sc.ws, sc.drugs, sc.proteins, di, pi, M, 0xfeedULL, &err) != MOE_OK ||
		moe_forward(sg.model, sg.ws, sg.drugs, sg.proteins, di, pi, M, 0xfeedULL, &err) != MOE_OK)
	{
		printf("FAIL forward (%s): %s\n", label, err.message);
		failures++;
		goto done;
	}
	for (int m = 0; m < M; m++)
		same_routes += memcmp(sc.ws->host_sel_idx + m * top_k, sg.ws->host_sel_idx + m * top_k,
							  sizeof(int32_t) * top_k) == 0;
	host_of(&sg, hg, sg.ws->pred, M);
	snprintf(what, sizeof(what), "forward pred (%s)", label);
	compare(what, sc.ws->pred, hg, M, TOL_STEP);
	host_of(&sg, hg, sg.ws->probs, (size_t) M * E);
	snprintf(what, sizeof(what), "forward gate probs (%s)", label);
	compare(what, sc.ws->probs, hg, (size_t) M * E, TOL_STEP);
	snprintf(what, sizeof(what), "forward zloss (%s)", label);
	compare_scalar(what, sc.ws->zloss, sg.ws->zloss, TOL_STEP);
	snprintf(what, sizeof(what), "forward row entropy (%s)", label);
	compare_scalar(what, sc.ws->row_entropy, sg.ws->row_entropy, TOL_STEP);
	snprintf(what, sizeof(what), "forward routing (%s)", label);
	/* cuBLAS rounding may flip a near-tie; the gradients need equal routes */
	report(same_routes == M, what, (double) (M - same_routes), same_routes, M, TOL_EXACT);

	/* loss, router terms, backward */
	snprintf(what, sizeof(what), "mse (%s)", label);
	compare_scalar(what, cpu->mse_forward_backward(cpu, sc.ws->d_pred, sc.ws->pred, sc.target, M),
				   gpu->mse_forward_backward(gpu, sg.ws->d_pred, sg.ws->pred, sg.target, M), TOL_STEP);
	for (int e = 0; e < E; e++)
		d_pbar[e] = 0.01f * (e - E / 2.0f);
	router.d_pbar = d_pbar;
	router.zloss_weight = 1e-3f;
	router.row_entropy_weight = 1e-2f;
	if (moe_backward(sc.model, sc.ws, sc.grads, sc.ws->d_pred, &router, &err) != MOE_OK ||
		moe_backward(sg.model, sg.ws, sg.grads, sg.ws->d_pred, &router, &err) != MOE_OK)
	{
		printf("FAIL backward (%s): %s\n", label, err.message);
		failures++;
		goto done;
	}
	if (same_routes == M)
	{
		host_of(&sg, hg, sg.grads, np);
		snprintf(what, sizeof(what), "training step gradients (%s)", label);
		compare_tensors(what, &sc.model->layout, sc.grads, hg, TOL_STEP);
		{
			size_t		off = sc.model->layout.trainable_offset;

			snprintf(what, sizeof(what), "gradient norm^2 (%s)", label);
			compare_scalar(what, cpu->sum_squares(cpu, sc.grads + off, np - off),
						   gpu->sum_squares(gpu, sg.grads + off, np - off), TOL_STEP);
			cpu->adam_update(cpu, sc.model->params + off, sc.grads + off, sc.adam_m + off,
							 sc.adam_v + off, np - off, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
			gpu->adam_update(gpu, sg.model->params + off, sg.grads + off, sg.adam_m + off,
							 sg.adam_v + off, np - off, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
			host_of(&sg, hg, sg.model->params, np);
			/* Adam's first step moves each weight by about lr * sign(g):
			 * a gradient within rounding of zero may move either way */
			snprintf(what, sizeof(what), "parameters after Adam (%s)", label);
			compare_tensors(what, &sc.model->layout, sc.model->params, hg, 5e-3);
		}
	}
	else
		printf("note %d of %d rows routed differently (near-ties under cuBLAS rounding): "
			   "gradients not compared for %s\n", M - same_routes, M, label);
	gpu_ok("training step");

	/* inference on the same checkpoint: the CPU's parameters on both */
	{
		moe_infer_ws *wc = NULL,
				   *wg = NULL;
		float	   *pc = malloc(sizeof(float) * M),
				   *pg = malloc(sizeof(float) * M);
		moe_rows	rows = {M, di, pi, NULL};
		size_t		size;
		void	   *buf;
		moe_model  *loaded = NULL;
		moe_infer_ws *wl = NULL;

		gpu->upload(gpu, sg.model->params, sc.model->params, sizeof(float) * np);
		sg.model->cfg = sc.model->cfg;
		if (moe_infer_ws_create(sc.model, 32, &wc, &err) != MOE_OK ||
			moe_infer_ws_create(sg.model, 32, &wg, &err) != MOE_OK ||
			moe_predict_rows(sc.model, wc, sc.drugs, sc.proteins, &rows, pc, &err) != MOE_OK ||
			moe_predict_rows(sg.model, wg, sg.drugs, sg.proteins, &rows, pg, &err) != MOE_OK)
		{
			printf("FAIL inference (%s): %s\n", label, err.message);
			failures++;
		}
		else
		{
			snprintf(what, sizeof(what), "inference, same checkpoint (%s)", label);
			compare(what, pc, pg, M, TOL_FWD);
		}

		/* a checkpoint written from the GPU loads on the CPU, and back */
		host_of(&sg, hg, sg.model->params, np);
		if (moe_checkpoint_size(sg.model, 2, &size, &err) == MOE_OK &&
			(buf = malloc(size)) != NULL)
		{
			if (moe_checkpoint_write(sg.model, hg, "{}", 2, buf, size, &err) == MOE_OK &&
				moe_checkpoint_load(buf, size, cpu, &loaded, &err) == MOE_OK &&
				moe_infer_ws_create(loaded, 32, &wl, &err) == MOE_OK &&
				moe_predict_rows(loaded, wl, sc.drugs, sc.proteins, &rows, pc, &err) == MOE_OK)
			{
				snprintf(what, sizeof(what), "GPU checkpoint scored on the CPU (%s)", label);
				compare(what, pc, pg, M, TOL_FWD);
			}
			else
			{
				printf("FAIL checkpoint GPU -> CPU (%s): %s\n", label, err.message);
				failures++;
			}
			if (loaded != NULL)
			{
				moe_infer_ws_free(loaded, wl);
				moe_model_free(loaded);
				loaded = NULL;
				wl = NULL;
			}
			if (moe_checkpoint_load(buf, size, gpu, &loaded, &err) == MOE_OK &&
				moe_infer_ws_create(loaded, 32, &wl, &err) == MOE_OK &&
				moe_predict_rows(loaded, wl, sg.drugs, sg.proteins, &rows, pc, &err) == MOE_OK)
			{
				snprintf(what, sizeof(what), "checkpoint reloaded on the GPU (%s)", label);
				compare(what, pg, pc, M, TOL_EXACT);
			}
			else
			{
				printf("FAIL checkpoint -> GPU (%s): %s\n", label, err.message);
				failures++;
			}
			if (loaded != NULL)
			{
				moe_infer_ws_free(loaded, wl);
				moe_model_free(loaded);
			}
			free(buf);
		}
		moe_infer_ws_free(sc.model, wc);
		moe_infer_ws_free(sg.model, wg);
		free(pc);
		free(pg);
	}
	gpu_ok("inference");

done:
	side_close(&sc);
	side_close(&sg);
	free(hc);
	free(hg);
	free(drugs);
	free(proteins);
	free(norm);
	free(target);
}

/* Out of GPU memory is an error, reported once, and the backend goes on. */
static void
test_out_of_memory(void)
{
	moe_error	err;
	void	   *p = gpu->alloc(gpu, (size_t) 1 << 52);	/* 4 PiB */
	moe_status	first,
				second;

	moe_error_clear(&err);
	first = gpu->check(gpu, &err);
	second = gpu->check(gpu, NULL);
	report(p == NULL && first == MOE_ERR_NOMEM && second == MOE_OK,
		   "out of GPU memory: NULL, NOMEM once, then usable", 0.0, 1, 1, TOL_EXACT);
	printf("     (message: %s)\n", err.message);
	test_memory();
}

int
main(int argc, char **argv)
{
	moe_cuda_library lib;
	moe_error	err;
	moe_cuda_availability a;
	char		desc[160];

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s PATH/moe_pg_cuda.so | --cpu-only\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "--cpu-only") == 0)
	{
		/* a dry run of this program where there is no GPU: a second CPU
		 * backend stands in for it, so every comparison must come out
		 * identical (the out-of-memory check needs a real device) */
		gpu = moe_backend_cpu_create(1);
		snprintf(desc, sizeof(desc), "the CPU again (--cpu-only)");
		goto run;
	}
	/* The library must load whenever it was built, driver or not (the
	 * loader itself stops earlier on a machine without the driver). */
	{
		void	   *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);

		if (h == NULL)
		{
			fprintf(stderr, "FAIL: %s does not load: %s\n", argv[1], dlerror());
			return 1;
		}
		printf("ok   %s loads (cuBLAS and the CUDA runtime resolve)\n", argv[1]);
	}
	a = moe_cuda_open(argv[1], &lib, &err);
	if (a == MOE_CUDA_NO_DEVICE)
	{
		printf("SKIP: %s\n", err.message);	/* "no CUDA device: why" */
		return 0;
	}
	if (a != MOE_CUDA_AVAILABLE)
	{
		/* built but not loadable: that is a broken build, not a skip */
		fprintf(stderr, "FAIL: %s\n", err.message);
		return 1;
	}
	gpu = moe_cuda_create(&lib, 0, &err);
	if (gpu == NULL)
	{
		fprintf(stderr, "FAIL: %s\n", err.message);
		return 1;
	}
	moe_cuda_describe(&lib, 0, desc, sizeof(desc));
run:
	cpu = moe_backend_cpu_create(1);
	printf("# parity: CPU (OpenBLAS, 1 thread) against %s\n", desc);
	moe_rng_seed(&rng, 2024);

	test_memory();
	test_dense(1, 7, 5);
	test_dense(37, 53, 1029);
	test_dense(256, 512, 1024);
	test_dense(300, 33, 2000);
	test_infer_strides();
	test_layernorm(77, 512);
	test_layernorm(5, 37);
	test_layernorm(300, 7);
	test_elementwise();
	test_rows();
	test_router(300, 8, 3, 0.7f);
	test_router(65, 4, 2, 1.0f);
	test_router(10, 64, 64, 2.0f);
	test_adam();
	test_sparse();
	test_model(2, false, 0.1f, false);
	test_model(2, true, 0.1f, false);
	test_model(4, true, 0.0f, false);	/* every expert selected: routing cannot differ */
	test_model(2, false, 0.1f, true);
	if (gpu->host_memory)
		printf("note out-of-memory check skipped (--cpu-only)\n");
	else
		test_out_of_memory();

	printf("parity: %d checks, %d failures\n", checks, failures);
	gpu->destroy(gpu);
	cpu->destroy(cpu);
	return failures == 0 ? 0 : 1;
}
