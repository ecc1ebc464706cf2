/*
 * train_options.h — the training options of moe_train, moe_cross_validate
 * and moe_sweep: one table of names and types, read from a procedure's
 * named arguments or from a jsonb object, validated together.  Owns the
 * option table, and checks moe_train's SQL signature (names, types,
 * defaults) against it.  Called by sql_train.c; calls device.h,
 * featurizer_spec.h and json_write.h.
 */
#ifndef MOE_PG_TRAIN_OPTIONS_H
#define MOE_PG_TRAIN_OPTIONS_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/jsonb.h"

#include "featurizer.h"
#include "model.h"
#include "train.h"

/* When a finished run points its name at the new model. */
typedef enum moe_deploy_mode
{
	MOE_DEPLOY_IF_BETTER = 0,	/* no deployment yet, or a better test MSE on the same split */
	MOE_DEPLOY_ALWAYS,
	MOE_DEPLOY_NEVER
} moe_deploy_mode;

#define MOE_DEPLOY_CHOICES "always, if_better, never"

const char *moe_deploy_mode_name(moe_deploy_mode mode);

/* Everything one training run needs to know. */
typedef struct train_spec
{
	char	   *dataset;
	int			fold;
	char	   *model_name;
	moe_deploy_mode deploy;
	double		max_seconds;	/* stop after the epoch that passes this; 0 = no limit */
	bool		refit;			/* after early stopping, retrain on train + valid */
	int			device;			/* moe_device_choice; -1: the moe_pg.device setting */
	int64		experiment_id;	/* 0 when the run belongs to no experiment */
	char	   *params_json;	/* a sweep's grid point, as the user wrote it; else NULL */
	moe_config	arch;			/* dimensions are filled from the data */
	/* how the dataset's vectors were made (recorded with the model) */
	moe_featurizer drug_featurizer;
	moe_featurizer protein_featurizer;
	moe_train_options opt;
	/* kept apart until validation, where they become opt.balance */
	char	   *lb_method;
	float		lb_weight;
	Jsonb	   *balance;
} train_spec;

/* Defaults, the same as the SQL signature of moe_train. */
void		train_spec_defaults(train_spec *spec);

/*
 * moe_train's arguments: dataset, fold, model_name, then every option in
 * table order, then options jsonb (applied last, overriding).
 */
void		train_spec_from_call(train_spec *spec, FunctionCallInfo fcinfo);

/* Override options from a jsonb object; unknown keys are an error that
 * lists the valid ones.  what names the argument in messages. */
void		train_spec_apply_json(train_spec *spec, Jsonb *options, const char *what);

/* Check the options together and turn lb_method/lb_weight/balance into
 * the list of terms. */
void		train_spec_finalize(train_spec *spec);

/* The options as a JSON object (the config stored with runs and models). */
char	   *train_spec_config_json(const train_spec *spec);

/* True if name is an option that a jsonb object may set. */
bool		train_option_exists(const char *name);

/* "experts, top_k, ..." for error messages. */
const char *train_option_names(void);

#endif
