/*
 * dataset.h — named datasets (moe.datasets) and reading them into the
 * contiguous arrays the engine trains and evaluates on.  Owns the reading
 * of a dataset's rows.  Called by training and by evaluation_rows.h;
 * calls relation_read.h and spi_safe.h.
 */
#ifndef MOE_PG_DATASET_H
#define MOE_PG_DATASET_H

#include "postgres.h"

#include "train.h"

typedef enum moe_split
{
	MOE_SPLIT_TRAIN = 0,
	MOE_SPLIT_VALID,
	MOE_SPLIT_TEST,
	MOE_N_SPLITS
} moe_split;

/* A registered dataset, with every identifier already quoted for SQL. */
typedef struct moe_dataset_def
{
	char	   *name;
	Oid			relid;
	char	   *relation;		/* schema-qualified, quoted */
	char	   *drug_col;
	char	   *protein_col;
	char	   *label_col;
	char	   *split_col;
	char	   *fold_col;		/* NULL when the dataset has no folds */
	char	   *drug_key_col;	/* NULL when vectors identify drugs */
	char	   *protein_key_col;
} moe_dataset_def;

/* One split's rows as indices into the entity tables. */
typedef struct moe_split_rows
{
	int			n;
	int			capacity;
	int32	   *drug_idx;
	int32	   *protein_idx;
	float	   *label;
	char	  **extra;			/* the extra column as text, when one was asked for */
} moe_split_rows;

/* Everything read for one fold, allocated in one memory context. */
typedef struct moe_dataset_data
{
	int			n_drugs;
	int			drug_dim;
	float	   *drug_vec;
	char	  **drug_key;		/* n_drugs keys (NULL when keyless) */
	int			n_proteins;
	int			protein_dim;
	float	   *protein_vec;
	char	  **protein_key;
	moe_split_rows split[MOE_N_SPLITS];
	int64		ignored_rows;	/* rows whose split is none of the three */
} moe_dataset_data;

/* The registered dataset called name; ERROR 42704 when there is none. */
moe_dataset_def *moe_dataset_lookup(const char *name);

/*
 * Read the rows of fold (ignored when the dataset has no fold column) into
 * out, allocating in the current memory context.  Validates every vector
 * and label on the way, with errors that name the offending key or row.
 * extra_column (a column name, unquoted; may be NULL) is read along as
 * text, e.g. a planted cluster.
 */
void		moe_dataset_read(const moe_dataset_def *def, int fold, const char *extra_column,
							 moe_dataset_data *out);

/* The key of a drug or protein: its key column's text, or "#<n>" for
 * datasets without keys. */
const char *moe_dataset_drug_key(const moe_dataset_data *d, int i);
const char *moe_dataset_protein_key(const moe_dataset_data *d, int i);

/* View a split as the engine's rows. */
moe_rows	moe_split_as_rows(const moe_split_rows *s);

const char *moe_split_name(moe_split s);

#endif
