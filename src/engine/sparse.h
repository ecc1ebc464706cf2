/*
 * sparse.h — sparse first layers: the encoders' first Linear over input
 * vectors that are mostly zeros (ECFP fingerprints are about 3 % non-zero,
 * k-mer compositions about 12 %).
 *
 * The first layer reads standardised inputs, x_std = (x - shift) * scale,
 * which are dense even when x is sparse.  Standardisation is folded into
 * the layer instead of being materialised:
 *
 *   W x_std + b  =  (W diag(scale)) x  +  (b - c),   c = W (shift * scale)
 *
 * so the product touches only x's non-zeros, and c is one dense
 * matrix-vector product per step.  The weight gradient splits the same
 * way: dW = (dpre^T x) diag(scale) - db (shift * scale)^T, a sparse outer
 * product plus a rank-one correction.  The products run over the distinct
 * entities of a batch (a drug appears in many rows; its first layer is the
 * same in all of them), by feature: for every input feature, the entities
 * that have it, so each row of the transposed weights is read once per
 * step.  Training uses it when an entity table is at most
 * MOE_SPARSE_DENSITY non-zero (docs/training.md); inference, for any input
 * vector that sparse (infer.h).
 *
 * Every backend implements the products (backend.h); the helpers here
 * build the host-side index structures.
 */
#ifndef MOE_SPARSE_H
#define MOE_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "moe_status.h"

/*
 * The largest fraction of non-zero values for which the sparse path is
 * used.  Measured on this machine (bench/training.sh): the sparse product
 * of the Davis protein layer (12 % non-zero) costs about a third of the
 * dense one; at a quarter the two break even.
 */
#define MOE_SPARSE_DENSITY 0.25

/* Fraction of non-zero values of n vectors of dim values. */
double		moe_density(const float *x, int64_t n, int dim);

/* The non-zero values of n vectors of dim values, and of the vector with
 * most: what a sparse table of them would hold, without building it. */
void		moe_sparse_count(const float *x, int n, int dim, int64_t *nnz, int64_t *widest);

/* A table of n vectors of dim values in compressed sparse rows (host). */
typedef struct moe_sparse_table
{
	int			n;
	int			dim;
	int64_t		nnz;
	int64_t    *row_ptr;		/* n + 1 */
	int32_t    *col;			/* nnz, ascending within a row */
	float	   *val;			/* nnz */
} moe_sparse_table;

moe_status	moe_sparse_table_build(const float *x, int n, int dim, moe_sparse_table *out,
								   moe_error *err);
void		moe_sparse_table_free(moe_sparse_table *t);

/*
 * One batch of rows over a sparse table: its distinct entities (in order of
 * first appearance), each row's entity among them, the rows of each
 * entity (for summing their gradients in a fixed order), and the
 * entities' non-zeros by feature (compressed sparse columns), entity
 * order within a feature.  Host arrays, reused from batch to batch.
 */
typedef struct moe_sparse_batch
{
	int			rows;
	int			distinct;		/* U */
	int32_t    *local;			/* [rows] the row's entity, 0..U-1 */
	int32_t    *seg_ptr;		/* [U + 1] rows of entity u: perm[seg_ptr[u] .. seg_ptr[u+1]) */
	int32_t    *perm;			/* [rows] */
	int32_t    *col_ptr;		/* [dim + 1] */
	int32_t    *ent;			/* [nnz] the entity, 0..U-1 */
	float	   *val;			/* [nnz] */
	int64_t		nnz;
	/* capacity */
	int			max_rows;
	int			dim;
	int64_t		max_nnz;
	int32_t    *seen;			/* [table n] scratch: entity -> local + 1 */
	int32_t    *first;			/* [max_rows] scratch: the entity of each local u */
	int32_t    *cursor;			/* [max(dim, max_rows)] scratch */
	int			table_n;
} moe_sparse_batch;

/* Room for batches of up to max_rows rows over table. */
moe_status	moe_sparse_batch_create(const moe_sparse_table *table, int max_rows,
									moe_sparse_batch *b, moe_error *err);
void		moe_sparse_batch_free(moe_sparse_batch *b);

/* Fill b for rows idx[0..M) of table (M <= max_rows). */
void		moe_sparse_batch_fill(moe_sparse_batch *b, const moe_sparse_table *table,
								  const int32_t *idx, int M);

#endif
