/*
 * train.h — training an MoE model: options, data, and an epoch-at-a-time
 * trainer so the caller (the SQL procedure) can record and commit each
 * epoch, and can stop between any two steps.
 *
 * Objective per mini-batch: MSE on standardised labels + the weighted
 * auxiliary terms of balance.h (times the balancing schedule's scale).
 * Adam(W), learning-rate schedule per step, router temperature schedule per
 * epoch, early stopping on validation MSE with patience; the best epoch's
 * parameters (and temperature) are kept.  Same seed, same machine, same thread count: the
 * same parameters, bit for bit.
 */
#ifndef MOE_TRAIN_H
#define MOE_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "balance.h"
#include "infer.h"
#include "model.h"
#include "moe_status.h"

typedef enum moe_lr_schedule
{
	MOE_LR_CONSTANT = 0,
	MOE_LR_COSINE,				/* lr -> lr_min along a half cosine */
	MOE_LR_LINEAR,				/* lr -> lr_min linearly */
	MOE_LR_STEP,				/* lr * lr_gamma every lr_step_epochs epochs */
	MOE_LR_CONSTANT_LINEAR,		/* lr until lr_decay_start of the run, then linear to lr_min */
	MOE_LR_WARMUP,				/* linear warmup over lr_warmup_epochs, then lr */
	MOE_LR_N_SCHEDULES
} moe_lr_schedule;

#define MOE_LR_CHOICES "constant, cosine, linear, step, constant_linear, warmup"

/* How the weights of the balancing terms change over epochs. */
typedef enum moe_lb_schedule
{
	MOE_LBS_CONSTANT = 0,
	MOE_LBS_WARMUP,				/* e / lb_warmup_epochs up to 1: 1/W in the first epoch */
	MOE_LBS_INTERPOLATE,		/* lb_min_scale -> 1 over lb_warmup_epochs */
	MOE_LBS_ADAPTIVE,			/* times lb_decay whenever validation improves, floor lb_min_scale */
	MOE_LBS_N_SCHEDULES
} moe_lb_schedule;

#define MOE_LB_SCHEDULE_CHOICES "constant, warmup, interpolate, adaptive"

/* How the router temperature moves from temperature to temperature_end. */
typedef enum moe_temperature_schedule
{
	MOE_TS_CONSTANT = 0,
	MOE_TS_LINEAR,
	MOE_TS_COSINE,
	MOE_TS_EXPONENTIAL,
	MOE_TS_STEP,				/* equal ratios every temperature_step_epochs epochs */
	MOE_TS_N_SCHEDULES
} moe_temperature_schedule;

#define MOE_TEMPERATURE_SCHEDULE_CHOICES "constant, linear, cosine, exponential, step"

const char *moe_lr_schedule_name(moe_lr_schedule s);
moe_status	moe_lr_schedule_parse(const char *name, moe_lr_schedule *out, moe_error *err);
const char *moe_lb_schedule_name(moe_lb_schedule s);
moe_status	moe_lb_schedule_parse(const char *name, moe_lb_schedule *out, moe_error *err);
const char *moe_temperature_schedule_name(moe_temperature_schedule s);
moe_status	moe_temperature_schedule_parse(const char *name, moe_temperature_schedule *out,
										   moe_error *err);

/* Whether the encoders' first layers read their inputs sparse (sparse.h). */
typedef enum moe_sparse_inputs
{
	MOE_SPARSE_AUTO = 0,		/* when a table is at most MOE_SPARSE_DENSITY non-zero */
	MOE_SPARSE_OFF,
	MOE_SPARSE_ON
} moe_sparse_inputs;

#define MOE_SPARSE_INPUT_CHOICES "auto, off, on"

const char *moe_sparse_inputs_name(moe_sparse_inputs s);
moe_status	moe_sparse_inputs_parse(const char *name, moe_sparse_inputs *out, moe_error *err);

typedef struct moe_train_options
{
	int			epochs;			/* maximum number of epochs */
	int			batch_size;
	/* learning rate */
	float		lr;
	float		lr_min;			/* end of the decaying schedules */
	moe_lr_schedule lr_schedule;
	int			lr_warmup_epochs;	/* linear warmup before any schedule; 0 = none */
	int			lr_step_epochs; /* step: epochs between decays */
	float		lr_gamma;		/* step: factor per decay */
	float		lr_decay_start; /* constant_linear: fraction of the run before decay */
	float		weight_decay;	/* decoupled (AdamW); 0 = Adam */
	float		grad_clip;		/* max global gradient norm; 0 = off */
	float		ema_decay;		/* validate and keep an exponential moving average
								 * of the weights with this decay per step; 0 = off */
	/* auxiliary objective: a sum of weighted terms, scaled by the schedule */
	int			n_balance;
	moe_balance_term balance[MOE_MAX_BALANCE_TERMS];
	moe_lb_schedule lb_schedule;
	int			lb_warmup_epochs;
	float		lb_min_scale;
	float		lb_decay;
	/* router temperature (the start value is the model's cfg.temperature) */
	moe_temperature_schedule temperature_schedule;
	float		temperature_end;	/* NaN: the same as the start */
	int			temperature_step_epochs;
	/* early stopping */
	int			patience;		/* epochs without improvement; 0 = off */
	float		min_delta;		/* improvement smaller than this does not count */
	uint64_t	seed;
	moe_sparse_inputs sparse_inputs;
} moe_train_options;

void		moe_train_options_defaults(moe_train_options *opt);

/*
 * The default balancing (docs/training.md, "Why these defaults"): the
 * importance loss keeps the gate's mean probabilities even, the aux-free
 * bias the top-k selections, and the balanced-assignment term gives each
 * row a confident first choice among experts that share the batch.
 */
#define MOE_DEFAULT_IMPORTANCE 0.1f
#define MOE_DEFAULT_AUX_FREE 0.01f
#define MOE_DEFAULT_SINKHORN 0.1f
#define MOE_DEFAULT_BALANCE_TEXT "{\"importance\": 0.1, \"aux_free\": 0.01, \"sinkhorn\": 0.1}"
/* Replace the auxiliary terms by the default ones. */
void		moe_train_options_default_balance(moe_train_options *opt);
/* Replace the auxiliary terms by one. */
void		moe_train_options_set_balance(moe_train_options *opt, moe_lb_method method, float weight);
/* Add a term; MOE_ERR_INVALID when the method is already there or the list is full. */
moe_status	moe_train_options_add_balance(moe_train_options *opt, moe_lb_method method, float weight,
										  moe_error *err);
moe_status	moe_train_options_validate(const moe_train_options *opt, moe_error *err);

/* Host arrays; the trainer does not copy them on a host backend, so they
 * must outlive it. */
typedef struct moe_train_data
{
	int			n_drugs;
	int			drug_dim;
	const float *drug_vec;		/* n_drugs x drug_dim */
	int			n_proteins;
	int			protein_dim;
	const float *protein_vec;	/* n_proteins x protein_dim */
	moe_rows	train;
	moe_rows	valid;			/* may be empty: then no early stopping */
} moe_train_data;

typedef struct moe_epoch_report
{
	int			epoch;			/* 1-based */
	double		train_loss;		/* the objective, standardised units */
	double		train_mse;		/* label units */
	double		aux_loss;		/* the auxiliary terms' weighted contribution to the loss */
	/* every method's unweighted value, averaged over the epoch's batches,
	 * whether or not it is trained with (0 for none and aux_free) */
	double		aux_value[MOE_LB_N_METHODS];
	double		lb_scale;		/* the schedule's multiplier of the term weights */
	double		temperature;	/* router temperature of this epoch */
	double		val_mse;		/* label units; NaN without validation rows */
	double		lr;				/* learning rate at the end of the epoch */
	double		seconds;
	bool		improved;		/* best validation so far */
	int			best_epoch;
	double		best_val_mse;
	int			n_experts;
	double		expert_prob[MOE_MAX_EXPERTS];	/* mean gate probability */
	int64_t		expert_count[MOE_MAX_EXPERTS];	/* top-k selections */
	int64_t		expert_leads[MOE_MAX_EXPERTS];	/* rows it was the first choice of */
	double		expert_bias[MOE_MAX_EXPERTS];	/* aux-free selection bias at the end */
} moe_epoch_report;

typedef struct moe_trainer moe_trainer;

/* Polled between steps; returning true stops the epoch with
 * MOE_ERR_CANCELLED. */
typedef bool (*moe_interrupt_fn) (void *ctx);

/*
 * arch gives the architecture (dimensions must match data); the trainer
 * fills the label standardisation and the input standardisation from the
 * training rows.
 */
moe_status	moe_trainer_create(const moe_config *arch, const moe_train_options *opt,
							   const moe_train_data *data, moe_backend *be,
							   moe_interrupt_fn interrupted, void *ctx,
							   moe_trainer **out, moe_error *err);
/*
 * The memory, in bytes, that moe_trainer_create(arch, opt, data) would
 * hold beyond the data itself (parameters, optimiser state, copies,
 * workspaces, per-row arrays), computed from the shapes alone so a caller
 * can refuse a run before anything is allocated.
 */
moe_status	moe_trainer_bytes(const moe_config *arch, const moe_train_options *opt,
							  const moe_train_data *data, size_t *bytes, moe_error *err);
moe_status	moe_trainer_epoch(moe_trainer *t, moe_epoch_report *report, moe_error *err);
/* Density of each entity table (non-zero fraction) and whether its
 * encoder's first layer trains sparse (index 0: drug, 1: protein). */
void		moe_trainer_inputs(const moe_trainer *t, double density[2], bool sparse[2]);

/* True once the epoch budget is spent or patience ran out. */
bool		moe_trainer_done(const moe_trainer *t);
/* Load the best epoch's parameters into the model and return it (owned by
 * the trainer). */
moe_model  *moe_trainer_best_model(moe_trainer *t);
void		moe_trainer_free(moe_trainer *t);

#endif
