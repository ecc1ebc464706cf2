/*
 * sparse.c — see sparse.h.
 */
#include "sparse.h"

#include <stdlib.h>
#include <string.h>

double
moe_density(const float *x, int64_t n, int dim)
{
	int64_t		nz = 0,
				total = n * (int64_t) dim;

	for (int64_t i = 0; i < total; i++)
		nz += x[i] != 0.0f;
	return total > 0 ? (double) nz / (double) total : 1.0;
}

void
moe_sparse_count(const float *x, int n, int dim, int64_t *nnz, int64_t *widest)
{
	*nnz = *widest = 0;
	for (int r = 0; r < n; r++)
	{
		const float *row = x + (size_t) r * dim;
		int64_t		k = 0;

		for (int j = 0; j < dim; j++)
			k += row[j] != 0.0f;
		*nnz += k;
		if (k > *widest)
			*widest = k;
	}
}

void
moe_sparse_table_free(moe_sparse_table *t)
{
	if (t == NULL)
		return;
	free(t->row_ptr);
	free(t->col);
	free(t->val);
	memset(t, 0, sizeof(*t));
}

moe_status
moe_sparse_table_build(const float *x, int n, int dim, moe_sparse_table *out, moe_error *err)
{
	int64_t		nnz = 0,
				at = 0;

	memset(out, 0, sizeof(*out));
	for (int64_t i = 0; i < (int64_t) n * dim; i++)
		nnz += x[i] != 0.0f;
	out->n = n;
	out->dim = dim;
	out->nnz = nnz;
	out->row_ptr = malloc(sizeof(int64_t) * ((size_t) n + 1));
	out->col = malloc(sizeof(int32_t) * (size_t) (nnz > 0 ? nnz : 1));
	out->val = malloc(sizeof(float) * (size_t) (nnz > 0 ? nnz : 1));
	if (out->row_ptr == NULL || out->col == NULL || out->val == NULL)
	{
		moe_sparse_table_free(out);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory for a sparse table of %lld values",
						(long long) nnz);
	}
	for (int r = 0; r < n; r++)
	{
		const float *row = x + (size_t) r * dim;

		out->row_ptr[r] = at;
		for (int j = 0; j < dim; j++)
			if (row[j] != 0.0f)
			{
				out->col[at] = j;
				out->val[at] = row[j];
				at++;
			}
	}
	out->row_ptr[n] = at;
	return MOE_OK;
}

void
moe_sparse_batch_free(moe_sparse_batch *b)
{
	if (b == NULL)
		return;
	free(b->local);
	free(b->seg_ptr);
	free(b->perm);
	free(b->col_ptr);
	free(b->ent);
	free(b->val);
	free(b->seen);
	free(b->first);
	free(b->cursor);
	memset(b, 0, sizeof(*b));
}

moe_status
moe_sparse_batch_create(const moe_sparse_table *table, int max_rows, moe_sparse_batch *b,
						moe_error *err)
{
	int64_t		widest = 0;

	memset(b, 0, sizeof(*b));
	for (int r = 0; r < table->n; r++)
		if (table->row_ptr[r + 1] - table->row_ptr[r] > widest)
			widest = table->row_ptr[r + 1] - table->row_ptr[r];
	b->max_rows = max_rows;
	b->dim = table->dim;
	b->table_n = table->n;
	/* at most min(rows, entities) distinct entities of at most widest each */
	b->max_nnz = widest * (max_rows < table->n ? max_rows : table->n);
	b->local = malloc(sizeof(int32_t) * (size_t) max_rows);
	b->seg_ptr = malloc(sizeof(int32_t) * ((size_t) max_rows + 1));
	b->perm = malloc(sizeof(int32_t) * (size_t) max_rows);
	b->col_ptr = malloc(sizeof(int32_t) * ((size_t) table->dim + 1));
	b->ent = malloc(sizeof(int32_t) * (size_t) (b->max_nnz > 0 ? b->max_nnz : 1));
	b->val = malloc(sizeof(float) * (size_t) (b->max_nnz > 0 ? b->max_nnz : 1));
	b->seen = calloc((size_t) (table->n > 0 ? table->n : 1), sizeof(int32_t));
	b->first = malloc(sizeof(int32_t) * (size_t) max_rows);
	b->cursor = malloc(sizeof(int32_t) * (size_t) (table->dim > max_rows ? table->dim : max_rows));
	if (!b->local || !b->seg_ptr || !b->perm || !b->col_ptr || !b->ent || !b->val || !b->seen ||
		!b->first || !b->cursor)
	{
		moe_sparse_batch_free(b);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory for a sparse batch of %d rows", max_rows);
	}
	return MOE_OK;
}

void
moe_sparse_batch_fill(moe_sparse_batch *b, const moe_sparse_table *table, const int32_t *idx,
					  int M)
{
	int			U = 0;

	b->rows = M;
	/* distinct entities in order of first appearance */
	for (int m = 0; m < M; m++)
	{
		int32_t		e = idx[m];

		if (b->seen[e] == 0)
		{
			b->first[U] = e;
			b->seen[e] = ++U;
		}
		b->local[m] = b->seen[e] - 1;
	}
	b->distinct = U;
	for (int u = 0; u < U; u++)
		b->seen[b->first[u]] = 0;	/* ready for the next batch */

	/* non-zeros by feature: count, prefix sums, then place in entity order */
	memset(b->col_ptr, 0, sizeof(int32_t) * ((size_t) b->dim + 1));
	for (int u = 0; u < U; u++)
	{
		int32_t		e = b->first[u];

		for (int64_t q = table->row_ptr[e]; q < table->row_ptr[e + 1]; q++)
			b->col_ptr[table->col[q] + 1]++;
	}
	for (int j = 0; j < b->dim; j++)
		b->col_ptr[j + 1] += b->col_ptr[j];
	b->nnz = b->col_ptr[b->dim];
	memcpy(b->cursor, b->col_ptr, sizeof(int32_t) * (size_t) b->dim);
	for (int u = 0; u < U; u++)
	{
		int32_t		e = b->first[u];

		for (int64_t q = table->row_ptr[e]; q < table->row_ptr[e + 1]; q++)
		{
			int32_t		at = b->cursor[table->col[q]]++;

			b->ent[at] = u;
			b->val[at] = table->val[q];
		}
	}

	/* rows grouped by entity, in row order within an entity */
	memset(b->seg_ptr, 0, sizeof(int32_t) * ((size_t) U + 1));
	for (int m = 0; m < M; m++)
		b->seg_ptr[b->local[m] + 1]++;
	for (int u = 0; u < U; u++)
		b->seg_ptr[u + 1] += b->seg_ptr[u];
	memcpy(b->cursor, b->seg_ptr, sizeof(int32_t) * (size_t) U);
	for (int m = 0; m < M; m++)
		b->perm[b->cursor[b->local[m]]++] = m;
}
