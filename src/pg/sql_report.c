/*
 * sql_report.c — moe_report(model): a self-contained XHTML page with inline
 * SVG charts of a model's training and routing, to open in a browser.
 *
 * The page is well-formed XML (tests parse it with PostgreSQL's xml type):
 * every chart is built from numbers read through SPI, nothing is fetched.
 */
#include "model_store.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "spi_safe.h"

#define CHART_W 720
#define CHART_H 260
#define MARGIN_L 56
#define MARGIN_R 16
#define MARGIN_T 24
#define MARGIN_B 36

/* Colours for experts (cycled beyond ten). */
static const char *const palette[] = {
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"
};

static const char *
colour(int i)
{
	return palette[i % (int) (sizeof(palette) / sizeof(palette[0]))];
}

/* Text made safe for XML character data and attributes. */
static void
append_xml(StringInfo s, const char *text)
{
	for (const char *p = text; *p; p++)
	{
		switch (*p)
		{
			case '&':
				appendStringInfoString(s, "&amp;");
				break;
			case '<':
				appendStringInfoString(s, "&lt;");
				break;
			case '>':
				appendStringInfoString(s, "&gt;");
				break;
			case '"':
				appendStringInfoString(s, "&quot;");
				break;
			default:
				/* control characters are not allowed in XML 1.0 */
				appendStringInfoChar(s, ((unsigned char) *p < 0x20 && *p != '\n' && *p != '\t') ? '?' : *p);
		}
	}
}

/* ---- data ------------------------------------------------------------- */

typedef struct report_data
{
	int64		model_id;
	int64		run_id;			/* 0 for an imported model */
	char	   *name;
	char	   *dataset;
	char	   *config;
	char	   *metrics;
	char	   *created;
	int			n_experts;
	int			best_epoch;
	int			n_epochs;
	double	   *train_mse;		/* [n_epochs] */
	double	   *val_mse;		/* [n_epochs], NaN when absent */
	char	  **status;			/* [n_epochs] router status */
	double	   *share;			/* [n_epochs, n_experts] of the mean gate probability */
	double	   *selection;		/* [n_epochs, n_experts] of the top-k selections */
	double	   *lead;			/* [n_epochs, n_experts] of the top-1 leads */
	int			n_targets;
	char	  **target_key;		/* [n_targets], sorted by dominant expert, purity */
	int		   *target_dominant;
	double	   *target_share;	/* [n_targets, n_experts] */
} report_data;

static char *
value_or_empty(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return pstrdup(v ? v : "");
}

static double
float_value(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NAN : DatumGetFloat8(d);
}

static void
read_report_data(int64 id, report_data *d)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext spi;

	memset(d, 0, sizeof(*d));
	d->model_id = id;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	spi = CurrentMemoryContext;

	if (moe_spi_execute("SELECT m.name, coalesce(m.dataset, ''), m.config::text, "
							  "coalesce(m.metrics::text, '{}'), to_char(m.created_at, 'YYYY-MM-DD HH24:MI'), "
							  "coalesce(r.id, 0), coalesce(r.best_epoch, 0), "
							  "CASE WHEN jsonb_typeof(m.config->'experts') = 'number' "
							  "THEN least(greatest(round((m.config->>'experts')::numeric), 0), 1000)::int END "
							  "FROM moe.models m LEFT JOIN moe.training_runs r ON r.model_id = m.id "
							  "WHERE m.id = $1", 1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		MemoryContextSwitchTo(outer);
		d->name = value_or_empty(t, td, 1);
		d->dataset = value_or_empty(t, td, 2);
		d->config = value_or_empty(t, td, 3);
		d->metrics = value_or_empty(t, td, 4);
		d->created = value_or_empty(t, td, 5);
		d->run_id = DatumGetInt64(SPI_getbinval(t, td, 6, &isnull));
		d->best_epoch = DatumGetInt32(SPI_getbinval(t, td, 7, &isnull));
		d->n_experts = DatumGetInt32(SPI_getbinval(t, td, 8, &isnull));
		/* config is free-form jsonb: a row written by hand may say anything */
		if (isnull || d->n_experts < 0 || d->n_experts > MOE_MAX_EXPERTS)
			d->n_experts = 0;
		MemoryContextSwitchTo(spi);
	}

	if (d->run_id > 0)
	{
		Datum		run[1] = {Int64GetDatum(d->run_id)};

		if (moe_spi_execute("SELECT h.epoch, h.train_mse, h.val_mse, coalesce(g.status, 'balanced') "
								  "FROM moe.training_history h LEFT JOIN moe.router_history g "
								  "ON g.run_id = h.run_id AND g.epoch = h.epoch "
								  "WHERE h.run_id = $1 ORDER BY h.epoch",
								  1, types, run, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read moe.training_history");
		MemoryContextSwitchTo(outer);
		d->n_epochs = (int) SPI_processed;
		d->train_mse = palloc0(sizeof(double) * (d->n_epochs + 1));
		d->val_mse = palloc0(sizeof(double) * (d->n_epochs + 1));
		d->status = palloc0(sizeof(char *) * (d->n_epochs + 1));
		d->share = palloc0(sizeof(double) * (d->n_epochs + 1) * d->n_experts);
		d->selection = palloc0(sizeof(double) * (d->n_epochs + 1) * d->n_experts);
		d->lead = palloc0(sizeof(double) * (d->n_epochs + 1) * d->n_experts);
		for (int i = 0; i < d->n_epochs; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;

			d->train_mse[i] = float_value(t, td, 2);
			d->val_mse[i] = float_value(t, td, 3);
			d->status[i] = value_or_empty(t, td, 4);
		}
		MemoryContextSwitchTo(spi);

		if (moe_spi_execute("SELECT epoch, expert, share, selection_fraction, lead_fraction FROM moe.expert_history "
								  "WHERE run_id = $1 AND layer = 1 ORDER BY epoch, expert",
								  1, types, run, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read moe.expert_history");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			int			epoch = DatumGetInt32(SPI_getbinval(t, td, 1, &isnull));
			int			expert = DatumGetInt32(SPI_getbinval(t, td, 2, &isnull));

			if (epoch >= 1 && epoch <= d->n_epochs && expert >= 0 && expert < d->n_experts)
			{
				size_t		at = (size_t) (epoch - 1) * d->n_experts + expert;

				d->share[at] = float_value(t, td, 3);
				d->selection[at] = float_value(t, td, 4);
				d->lead[at] = float_value(t, td, 5);
			}
		}
	}

	if (moe_spi_execute("SELECT key, dominant_expert, expert_rows, rows FROM moe.specialization_snapshots "
							  "WHERE model_id = $1 AND entity = 'target' "
							  "ORDER BY dominant_expert, purity DESC, key",
							  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.specialization_snapshots");
	MemoryContextSwitchTo(outer);
	d->n_targets = (int) SPI_processed;
	d->target_key = palloc0(sizeof(char *) * (d->n_targets + 1));
	d->target_dominant = palloc0(sizeof(int) * (d->n_targets + 1));
	d->target_share = palloc0(sizeof(double) * (d->n_targets + 1) * d->n_experts);
	for (int i = 0; i < d->n_targets; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		ArrayType  *counts = DatumGetArrayTypeP(SPI_getbinval(t, td, 3, &isnull));
		int64		rows = DatumGetInt64(SPI_getbinval(t, td, 4, &isnull));
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		d->target_key[i] = value_or_empty(t, td, 1);
		d->target_dominant[i] = DatumGetInt32(SPI_getbinval(t, td, 2, &isnull));
		deconstruct_array(counts, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
		for (int x = 0; x < n && x < d->n_experts; x++)
			d->target_share[(size_t) i * d->n_experts + x] =
				rows > 0 ? (double) DatumGetInt64(elems[x]) / rows : 0.0;
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();
}

/* ---- charts ----------------------------------------------------------- */

static double
nice_step(double span)
{
	double		raw = span / 5.0,
				mag = pow(10.0, floor(log10(raw > 0 ? raw : 1.0))),
				f = raw / mag;

	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Axes with ticks; maps data to pixels through the returned scales. */
typedef struct axes
{
	double		x0, x1, y0, y1;
} axes;

static double
px(const axes *a, double x)
{
	return MARGIN_L + (x - a->x0) / (a->x1 - a->x0) * (CHART_W - MARGIN_L - MARGIN_R);
}

static double
py(const axes *a, double y)
{
	return CHART_H - MARGIN_B - (y - a->y0) / (a->y1 - a->y0) * (CHART_H - MARGIN_T - MARGIN_B);
}

static void
draw_axes(StringInfo s, const axes *a, const char *xlabel, const char *ylabel)
{
	double		ystep = nice_step(a->y1 - a->y0);
	double		xstep = nice_step(a->x1 - a->x0);

	if (xstep < 1)
		xstep = 1;
	appendStringInfo(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fbfbfb\" stroke=\"#ccc\"/>\n",
					 MARGIN_L, MARGIN_T, CHART_W - MARGIN_L - MARGIN_R, CHART_H - MARGIN_T - MARGIN_B);
	for (double y = ceil(a->y0 / ystep) * ystep; y <= a->y1 + 1e-9; y += ystep)
		appendStringInfo(s, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
						 "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%g</text>\n",
						 MARGIN_L, CHART_W - MARGIN_R, py(a, y), py(a, y), MARGIN_L - 4, py(a, y) + 3, y);
	for (double x = ceil(a->x0 / xstep) * xstep; x <= a->x1 + 1e-9; x += xstep)
		appendStringInfo(s, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%g</text>\n",
						 px(a, x), CHART_H - MARGIN_B + 14, x);
	appendStringInfo(s, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">", (CHART_W + MARGIN_L) / 2,
					 CHART_H - 6);
	append_xml(s, xlabel);
	appendStringInfo(s, "</text><text x=\"12\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
					 "transform=\"rotate(-90 12 %d)\">", CHART_H / 2, CHART_H / 2);
	append_xml(s, ylabel);
	appendStringInfoString(s, "</text>\n");
}

static void
svg_open(StringInfo s, const char *title, int height)
{
	appendStringInfo(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
					 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\"><title>",
					 CHART_W, height, CHART_W, height);
	append_xml(s, title);
	appendStringInfoString(s, "</title>\n");
}

static void
polyline(StringInfo s, const axes *a, const double *y, int n, const char *stroke, bool dashed)
{
	bool		open = false;

	for (int i = 0; i < n; i++)
	{
		if (isnan(y[i]))
		{
			if (open)
				appendStringInfoString(s, "\"/>\n");
			open = false;
			continue;
		}
		if (!open)
			appendStringInfo(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
							 stroke, dashed ? " stroke-dasharray=\"5 3\"" : "");
		appendStringInfo(s, "%s%.1f,%.1f", open ? " " : "", px(a, i + 1), py(a, y[i]));
		open = true;
	}
	if (open)
		appendStringInfoString(s, "\"/>\n");
}

static void
legend(StringInfo s, int x, int y, const char *stroke, const char *label)
{
	appendStringInfo(s, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>"
					 "<text x=\"%d\" y=\"%d\" font-size=\"11\">", x, y - 4, stroke, x + 16, y);
	append_xml(s, label);
	appendStringInfoString(s, "</text>\n");
}

static void
chart_training_curves(StringInfo s, const report_data *d)
{
	axes		a = {1, d->n_epochs > 1 ? d->n_epochs : 2, 0, 0};

	for (int i = 0; i < d->n_epochs; i++)
	{
		if (d->train_mse[i] > a.y1)
			a.y1 = d->train_mse[i];
		if (!isnan(d->val_mse[i]) && d->val_mse[i] > a.y1)
			a.y1 = d->val_mse[i];
	}
	a.y1 = a.y1 > 0 ? a.y1 * 1.05 : 1.0;
	svg_open(s, "Training curves: MSE per epoch", CHART_H);
	draw_axes(s, &a, "epoch", "MSE");
	polyline(s, &a, d->train_mse, d->n_epochs, colour(0), false);
	polyline(s, &a, d->val_mse, d->n_epochs, colour(1), true);
	if (d->best_epoch >= 1)
		appendStringInfo(s, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#555\" "
						 "stroke-dasharray=\"2 2\"/><text x=\"%.1f\" y=\"%d\" font-size=\"10\" "
						 "text-anchor=\"end\">best epoch %d</text>\n",
						 px(&a, d->best_epoch), px(&a, d->best_epoch), MARGIN_T, CHART_H - MARGIN_B,
						 px(&a, d->best_epoch) - 3, (MARGIN_T + CHART_H - MARGIN_B) / 2, d->best_epoch);
	legend(s, CHART_W - 170, MARGIN_T + 14, colour(0), "training MSE");
	legend(s, CHART_W - 170, MARGIN_T + 30, colour(1), "validation MSE");
	appendStringInfoString(s, "</svg>\n");
}

static const char *
status_colour(const char *status)
{
	if (strcmp(status, "collapsed") == 0)
		return "#c0392b";
	if (strcmp(status, "dead_expert") == 0)
		return "#e67e22";
	if (strcmp(status, "imbalanced") == 0)
		return "#f1c40f";
	return "#59a14f";
}

/* Stacked shares (share[epoch, expert]) of the experts per epoch, with
 * the router status below. */
static void
chart_expert_usage(StringInfo s, const report_data *d, const double *share, const char *title)
{
	axes		a = {1, d->n_epochs > 1 ? d->n_epochs : 2, 0, 1};
	int			E = d->n_experts;
	double	   *base = palloc0(sizeof(double) * (d->n_epochs + 1));

	svg_open(s, title, CHART_H + 28);
	draw_axes(s, &a, "epoch", "share");
	for (int x = 0; x < E; x++)
	{
		appendStringInfo(s, "<polygon fill=\"%s\" fill-opacity=\"0.85\" stroke=\"none\" points=\"", colour(x));
		for (int i = 0; i < d->n_epochs; i++)
			appendStringInfo(s, "%.1f,%.1f ", px(&a, i + 1),
							 py(&a, base[i] + share[(size_t) i * E + x]));
		for (int i = d->n_epochs - 1; i >= 0; i--)
			appendStringInfo(s, "%.1f,%.1f ", px(&a, i + 1), py(&a, base[i]));
		appendStringInfoString(s, "\"/>\n");
		for (int i = 0; i < d->n_epochs; i++)
			base[i] += share[(size_t) i * E + x];
	}
	for (int i = 0; i < d->n_epochs; i++)
	{
		double		w = (CHART_W - MARGIN_L - MARGIN_R) / (double) d->n_epochs;

		appendStringInfo(s, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"10\" fill=\"%s\">"
						 "<title>epoch %d: ", MARGIN_L + i * w, CHART_H + 8, w, status_colour(d->status[i]),
						 i + 1);
		append_xml(s, d->status[i]);
		appendStringInfoString(s, "</title></rect>\n");
	}
	appendStringInfo(s, "<text x=\"%d\" y=\"%d\" font-size=\"10\">router status (the worse of probabilities and selections): "
					 "green balanced, yellow imbalanced, orange dead expert, red collapsed</text>\n", MARGIN_L, CHART_H + 26);
	for (int x = 0; x < E && x < 16; x++)
	{
		char		label[32];

		snprintf(label, sizeof(label), "expert %d", x);
		legend(s, CHART_W - 100, MARGIN_T + 14 + 14 * x, colour(x), label);
	}
	appendStringInfoString(s, "</svg>\n");
}

/* Targets (rows) by experts (columns), shaded by the share of the
 * target's rows each expert leads. */
static void
chart_routing_by_target(StringInfo s, const report_data *d)
{
	int			E = d->n_experts;
	double		cell_h = d->n_targets > 0 && d->n_targets < 120 ? 4.0 : 480.0 / (d->n_targets > 0 ? d->n_targets : 1);
	double		cell_w = (CHART_W - 200) / (double) E;
	int			height = (int) (MARGIN_T + cell_h * d->n_targets + 40);

	svg_open(s, "Routing by target: share of each target's rows led by each expert", height);
	for (int x = 0; x < E; x++)
		appendStringInfo(s, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">expert %d</text>\n",
						 160 + (x + 0.5) * cell_w, MARGIN_T - 6, x);
	for (int i = 0; i < d->n_targets; i++)
	{
		double		y = MARGIN_T + i * cell_h;

		for (int x = 0; x < E; x++)
		{
			double		v = d->target_share[(size_t) i * E + x];

			if (v <= 0.0)
				continue;
			appendStringInfo(s, "<rect x=\"%.1f\" y=\"%.2f\" width=\"%.1f\" height=\"%.2f\" fill=\"%s\" "
							 "fill-opacity=\"%.3f\"><title>", 160 + x * cell_w, y, cell_w, cell_h, colour(x), v);
			append_xml(s, d->target_key[i]);
			appendStringInfo(s, ": %.0f%% to expert %d</title></rect>\n", 100 * v, x);
		}
	}
	/* three short lines: the label must fit the 150 px left of the cells */
	appendStringInfo(s, "<text x=\"150\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">"
					 "<tspan x=\"150\">%d targets,</tspan><tspan x=\"150\" dy=\"12\">grouped by</tspan>"
					 "<tspan x=\"150\" dy=\"12\">dominant expert</tspan></text>\n",
					 MARGIN_T + cell_h * d->n_targets / 2 - 12, d->n_targets);
	appendStringInfoString(s, "</svg>\n");
}

static void
build_page(StringInfo s, const report_data *d)
{
	appendStringInfoString(s, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"
						   "<head><meta charset=\"utf-8\"/><title>moe_pg report: ");
	append_xml(s, d->name);
	appendStringInfoString(s, "</title><style>body{font-family:sans-serif;margin:24px;color:#222}"
						   "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
						   "pre{background:#f5f5f5;padding:8px;white-space:pre-wrap;font-size:12px}"
						   "</style></head>\n<body>\n<h1>Model ");
	appendStringInfo(s, "%lld: ", (long long) d->model_id);
	append_xml(s, d->name);
	appendStringInfoString(s, "</h1>\n<p>dataset ");
	append_xml(s, d->dataset[0] ? d->dataset : "(none recorded)");
	appendStringInfoString(s, ", created ");
	append_xml(s, d->created);
	appendStringInfo(s, ", %d experts, best epoch %d of %d</p>\n", d->n_experts, d->best_epoch, d->n_epochs);
	appendStringInfoString(s, "<h2>Metrics</h2>\n<pre>");
	append_xml(s, d->metrics);
	appendStringInfoString(s, "</pre>\n");

	if (d->n_epochs > 0)
	{
		appendStringInfoString(s, "<h2>Training curves</h2>\n");
		chart_training_curves(s, d);
		appendStringInfoString(s, "<h2>Expert usage over epochs, on the training rows</h2>\n"
							   "<p>Two views of the router: the probability mass it gives each expert, "
							   "and what it does with it, the top-k selections (and the top-1 leads). "
							   "The held-out rows' routing is under \"routing\" in the metrics.</p>\n");
		chart_expert_usage(s, d, d->share, "Probability view: share of the mean gate probability");
		chart_expert_usage(s, d, d->selection, "Selection view: share of the top-k selections");
		chart_expert_usage(s, d, d->lead, "Leads: share of the rows each expert is the first choice of");
	}
	else
		appendStringInfoString(s, "<p>No training history (an imported model).</p>\n");
	if (d->n_targets > 0)
	{
		appendStringInfoString(s, "<h2>Routing by target</h2>\n");
		chart_routing_by_target(s, d);
	}
	appendStringInfoString(s, "<h2>Configuration</h2>\n<pre>");
	append_xml(s, d->config);
	appendStringInfoString(s, "</pre>\n</body>\n</html>\n");
}

static text *
report(int64 id)
{
	report_data d;
	StringInfoData s;

	read_report_data(id, &d);
	initStringInfo(&s);
	build_page(&s, &d);
	return cstring_to_text_with_len(s.data, s.len);
}

PG_FUNCTION_INFO_V1(moe_report_sql);
Datum
moe_report_sql(PG_FUNCTION_ARGS)
{
	int64		id = get_fn_expr_argtype(fcinfo->flinfo, 0) == TEXTOID
		? moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)))
		: PG_GETARG_INT64(0);

	PG_RETURN_TEXT_P(report(id));
}
