/*
 * evaluation_rows.h — a model and the dataset rows it is to be run on, for
 * the functions that evaluate or inspect a model over a dataset
 * (sql_evaluate.c, sql_routing.c), which are its only callers.  Calls the
 * model store, dataset.h and spi_safe.h.
 */
#ifndef MOE_PG_EVALUATION_ROWS_H
#define MOE_PG_EVALUATION_ROWS_H

#include "model_store.h"

#include "dataset.h"

typedef struct evaluation_rows
{
	int64		model_id;
	moe_loaded_model *lm;
	char	   *dataset;
	int			fold;
	moe_dataset_def *def;
	moe_dataset_data data;
	moe_rows	rows;			/* the chosen splits, concatenated */
	int8	   *split;			/* per row: its moe_split */
	char	  **extra;			/* per row: the extra column (or NULL) */
} evaluation_rows;

/*
 * Load model model_id and read its rows: dataset NULL means the model's
 * own dataset, fold_given false its own fold, split one of 'train',
 * 'valid', 'test' or 'all'.  Errors for unknown splits, empty selections
 * and vectors of the wrong length.
 */
void		evaluation_rows_read(evaluation_rows *mr, int64 model_id, const char *dataset, const char *split,
							bool fold_given, int fold, const char *extra_column);

/* The same with the model, dataset, split and fold from arguments 0..3
 * (model by id when by_name is false). */
void		evaluation_rows_from_args(evaluation_rows *mr, FunctionCallInfo fcinfo, bool by_name,
								 const char *extra_column);

/*
 * Run the model over every row, batch by batch, checking for cancel
 * between batches.  Any output may be NULL: pred [n] in label units,
 * probs [n, E], selected and weights [n, k], outputs [n, E] (every
 * expert's output in label units; costs every expert on every row).
 */
void		evaluation_rows_infer(evaluation_rows *mr, float *pred, float *probs, int32 *selected,
							 float *weights, float *outputs);

#endif
