/*
 * featurizer_spec.h — how a dataset's and a model's input vectors were made,
 * as jsonb: {"featurizer": "ecfp", "radius": 2, "dim": 2048, "counts": true}
 * (names and parameters: src/engine/featurizer.h).  Owns the jsonb form,
 * its checks, and the featurizers of a loaded model; called by the dataset
 * and training code (to record a spec) and by scoring (to featurize text
 * and to name the expected featurizer in errors).
 */
#ifndef MOE_PG_FEATURIZER_SPEC_H
#define MOE_PG_FEATURIZER_SPEC_H

#include "model_store.h"

#include "utils/jsonb.h"

#include "featurizer.h"

/*
 * spec (NULL: vectors supplied by the user) into f, checked; side is
 * "drug" or "protein" and must fit the featurizer.  what names the argument
 * in errors (22023).
 */
void		moe_featurizer_from_jsonb(Jsonb *spec, const char *side, const char *what, moe_featurizer *f);

/* The canonical JSON text of f, every parameter written; "null" for user vectors. */
char	   *moe_featurizer_json(const moe_featurizer *f);

/* "moe_featurize_ecfp(smiles, radius => 2, ...)" or "vectors supplied by the user". */
char	   *moe_featurizer_text(const moe_featurizer *f);

/* The featurizers recorded with lm's model (its config), read once per load. */
void		moe_model_featurizers(moe_loaded_model *lm);

/*
 * text featurized the way lm's model expects for its side, as a real[]
 * datum; an error naming the model and saying so when the model was
 * trained on user vectors.  Text that opens with "{" is read as a real[]
 * literal instead.
 */
Datum		moe_featurize_for_model(moe_loaded_model *lm, bool drug, text *input);

/*
 * input featurized by f as a real[] datum: the moe_featurize_* functions
 * and text scoring both come here.  Parameters out of range are 22023
 * naming the parameter, unreadable text 22P02 with the featurizer's
 * message and position.
 */
Datum		moe_featurize_text(const moe_featurizer *f, text *input);

#endif
