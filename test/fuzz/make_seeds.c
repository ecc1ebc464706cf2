/*
 * make_seeds.c — write the seed corpora and dictionaries of the fuzz targets.
 *
 *   make_seeds OUTDIR [DATA_DIR]
 *
 * writes
 *   OUTDIR/checkpoint/   valid checkpoints of a few small models (made with
 *                        the engine API: create, initialise, serialise)
 *   OUTDIR/smiles/       2 settings bytes + a SMILES string (fuzz_smiles.c)
 *   OUTDIR/protein/      1 settings byte + a sequence (fuzz_protein.c)
 *   OUTDIR/checkpoint.dict, OUTDIR/smiles.dict   libFuzzer dictionaries
 *
 * The strings are a handful built in here plus, when DATA_DIR has them,
 * up to MAX_PER_FILE rows spread over {davis,kiba}/drugs.csv and
 * {davis,kiba}/targets.csv (second column).  Nothing binary is committed:
 * scripts/fuzz.sh runs this before every fuzzing session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "model.h"

#define MAX_PER_FILE	64

static const char *outdir;
static int	n_smiles,
			n_protein;

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "make_seeds: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void
make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("cannot create directory", path);
}

static void
write_file(const char *sub, const char *name, const void *prefix, size_t prefix_len,
		   const void *body, size_t body_len)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die("cannot write", path);
	if ((prefix_len > 0 && fwrite(prefix, 1, prefix_len, f) != prefix_len) ||
		(body_len > 0 && fwrite(body, 1, body_len, f) != body_len) || fclose(f) != 0)
		die("cannot write", path);
}

/* ---- checkpoints -------------------------------------------------------- */

static void
write_checkpoint(moe_backend *be, const moe_config *cfg, uint64_t seed, const char *meta,
				 FILE *dict, int index)
{
	moe_model  *m = NULL;
	moe_error	err;
	size_t		len = 0;
	unsigned char *buf;
	char		name[32];

	if (moe_model_create(cfg, be, &m, &err) != MOE_OK)
		die("cannot create a seed model", err.message);
	moe_model_init(m, seed, NULL);
	/* non-trivial input standardisation, as a trained model has */
	{
		float	   *dshift = malloc(sizeof(float) * cfg->drug_dim),
				   *dscale = malloc(sizeof(float) * cfg->drug_dim),
				   *pshift = malloc(sizeof(float) * cfg->protein_dim),
				   *pscale = malloc(sizeof(float) * cfg->protein_dim);

		if (!dshift || !dscale || !pshift || !pscale)
			die("out of memory", NULL);
		for (int i = 0; i < cfg->drug_dim; i++)
		{
			dshift[i] = 0.25f * (float) i;
			dscale[i] = 1.0f + 0.5f * (float) i;
		}
		for (int i = 0; i < cfg->protein_dim; i++)
		{
			pshift[i] = -0.125f * (float) i;
			pscale[i] = 2.0f;
		}
		moe_model_set_input_norm(m, dshift, dscale, pshift, pscale);
		free(dshift);
		free(dscale);
		free(pshift);
		free(pscale);
	}
	if (moe_checkpoint_size(m, strlen(meta), &len, &err) != MOE_OK)
		die("cannot size a seed checkpoint", err.message);
	buf = malloc(len);
	if (buf == NULL)
		die("out of memory", NULL);
	if (moe_checkpoint_write(m, m->params, meta, strlen(meta), buf, len, &err) != MOE_OK)
		die("cannot write a seed checkpoint", err.message);
	snprintf(name, sizeof(name), "ckpt-%d.bin", index);
	write_file("checkpoint", name, NULL, 0, buf, len);
	printf("  checkpoint %s: %zu bytes, %zu parameters, %d tensors\n", name, len,
		   m->layout.n_params, m->layout.n_tensors);

	/* every tensor name, for the dictionary */
	for (int i = 0; i < m->layout.n_tensors; i++)
		fprintf(dict, "\"%s\"\n", m->layout.tensors[i].name);
	free(buf);
	moe_model_free(m);
}

static void
make_checkpoints(void)
{
	moe_backend *be = moe_backend_cpu_create(1);
	moe_config	cfg;
	char		path[4096];
	FILE	   *dict;

	if (be == NULL)
		die("cannot create the CPU backend", NULL);
	snprintf(path, sizeof(path), "%s/checkpoint.dict", outdir);
	dict = fopen(path, "w");
	if (dict == NULL)
		die("cannot write", path);
	fprintf(dict, "\"MOEPGCK\\x00\"\n\"\\x01\\x00\\x00\\x00\"\n");

	/* 1: the shape of test_checkpoint.c's model */
	moe_config_defaults(&cfg, 6, 9);
	cfg.drug_hidden[0] = 5;
	cfg.protein_hidden[0] = 4;
	cfg.gate_hidden[0] = 7;
	cfg.gate_hidden[1] = 3;
	cfg.expert_hidden[0] = 6;
	cfg.expert_hidden[1] = 2;
	cfg.n_experts = 3;
	cfg.top_k = 2;
	cfg.label_mean = 5.5f;
	cfg.label_std = 0.75f;
	write_checkpoint(be, &cfg, 99, "{\"dataset\": \"davis\", \"fold\": 0}", dict, 1);

	/* 2: noisy gating, no gate or expert blocks, one expert, no metadata */
	moe_config_defaults(&cfg, 3, 2);
	cfg.drug_hidden[0] = 2;
	cfg.protein_hidden[0] = 2;
	cfg.n_gate_layers = 0;
	cfg.gate_hidden[0] = cfg.gate_hidden[1] = 0;
	cfg.n_expert_layers = 0;
	cfg.expert_hidden[0] = cfg.expert_hidden[1] = 0;
	cfg.n_experts = 1;
	cfg.top_k = 1;
	cfg.noisy_gating = 1;
	write_checkpoint(be, &cfg, 7, "", dict, 2);

	/* 3: deeper encoders, four experts with top-1, odd metadata length */
	moe_config_defaults(&cfg, 4, 5);
	cfg.n_drug_layers = 3;
	cfg.drug_hidden[0] = 3;
	cfg.drug_hidden[1] = 2;
	cfg.drug_hidden[2] = 2;
	cfg.n_protein_layers = 2;
	cfg.protein_hidden[0] = 3;
	cfg.protein_hidden[1] = 2;
	cfg.n_gate_layers = 1;
	cfg.gate_hidden[0] = 3;
	cfg.gate_hidden[1] = 0;
	cfg.n_expert_layers = 1;
	cfg.expert_hidden[0] = 2;
	cfg.expert_hidden[1] = 0;
	cfg.n_experts = 4;
	cfg.top_k = 1;
	cfg.temperature = 0.5f;
	cfg.dropout = 0.0f;
	cfg.label_mean = 11.7f;
	cfg.label_std = 0.8f;
	write_checkpoint(be, &cfg, 3, "{\"a\":1}", dict, 3);

	fclose(dict);
	be->destroy(be);
}

/* ---- strings ------------------------------------------------------------ */

static void
add_smiles(const char *s, size_t len)
{
	unsigned char prefix[2];
	char		name[32];

	/* spread the settings over the seeds; every one valid */
	prefix[0] = (unsigned char) ((1 + n_smiles % 8) + 10 * (n_smiles % 4));	/* max_n 1..8 */
	/* radius 0..4, counts or bits, each of the four dims */
	prefix[1] = (unsigned char) (n_smiles % 5 + 6 * ((n_smiles / 5) % 2) + 12 * ((n_smiles / 3) % 4));
	snprintf(name, sizeof(name), "smiles-%04d", n_smiles);
	write_file("smiles", name, prefix, 2, s, len);
	n_smiles++;
}

static void
add_protein(const char *s, size_t len)
{
	unsigned char prefix[1];
	char		name[32];

	/* max_k 1..3, max_gap 0..5 */
	prefix[0] = (unsigned char) (1 + n_protein % 3 + 5 * ((n_protein / 3) % 6));
	snprintf(name, sizeof(name), "protein-%04d", n_protein);
	write_file("protein", name, prefix, 1, s, len);
	n_protein++;
}

/*
 * Up to MAX_PER_FILE rows of a two-column CSV with a header, spread evenly,
 * each row's second column handed to add.  A missing file adds nothing.
 */
static int
add_csv_column(const char *path, void (*add) (const char *, size_t))
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;
	long		rows = 0,
				row = 0,
				stride;
	int			added = 0;

	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0)
		rows++;
	rows--;						/* the header */
	stride = rows > MAX_PER_FILE ? (rows + MAX_PER_FILE - 1) / MAX_PER_FILE : 1;
	rewind(f);
	if (getline(&line, &cap, f) <= 0)
		rows = 0;
	while ((n = getline(&line, &cap, f)) > 0)
	{
		char	   *comma = memchr(line, ',', (size_t) n);
		size_t		len;

		if (row++ % stride != 0 || comma == NULL)
			continue;
		len = (size_t) (line + n - (comma + 1));
		while (len > 0 && (comma[len] == '\n' || comma[len] == '\r'))
			len--;
		if (len > 0)
		{
			add(comma + 1, len);
			added++;
		}
	}
	free(line);
	fclose(f);
	return added;
}

static void
make_strings(const char *data_dir)
{
	static const char *const smiles[] = {
		"CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "C[C@@H](N)C(=O)O",
		"[NH4+].[Cl-]", "C%10CCCCC%10", "[2H]C([2H])([2H])Cl", "c1ccc2[nH]ccc2c1",
		"O=[N+]([O-])c1ccccc1", "[Se]", "*C#N", "F/C=C/F", "[Fe+2]", "C=1CC1",
		"[H][H]", "[H]C([H])([H])[H]", "C1CC2CCC1C2", "[13CH3:7][se]1cccc1", "C$C",
		"c1ccccc1-c1ccccc1", "[C@TH1](F)(Cl)Br", "[O--]", "[Cu+15]",
		"CCN(CC)CCOC(=O)C1=CC=C(C=C1)N", "Brc1ccc(I)cc1P(=O)(O)O", "B1OB(O)OB(O1)O",
	};
	static const char *const proteins[] = {
		"MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAEMTHVSFLR",
		"ACDEFGHIKLMNPQRSTVWY", "acdefghiklmnpqrstvwyXBZJUO", "MXXXM", "M", "MK", "MKV",
		"XXXXXXXX", "mkvlaAGVIA",
	};
	char		path[4096];
	int			from_data = 0;

	for (size_t i = 0; i < sizeof(smiles) / sizeof(smiles[0]); i++)
		add_smiles(smiles[i], strlen(smiles[i]));
	for (size_t i = 0; i < sizeof(proteins) / sizeof(proteins[0]); i++)
		add_protein(proteins[i], strlen(proteins[i]));
	if (data_dir != NULL)
	{
		static const char *const sets[] = {"davis", "kiba"};

		for (int k = 0; k < 2; k++)
		{
			snprintf(path, sizeof(path), "%s/%s/drugs.csv", data_dir, sets[k]);
			from_data += add_csv_column(path, add_smiles);
			snprintf(path, sizeof(path), "%s/%s/targets.csv", data_dir, sets[k]);
			from_data += add_csv_column(path, add_protein);
		}
	}
	printf("  %d SMILES and %d sequences (%d of them from %s)\n", n_smiles, n_protein,
		   from_data, from_data > 0 ? data_dir : "no data directory");

	/* the SMILES dictionary: tokens a mutator is slow to find alone */
	{
		static const char *const tokens[] = {
			"Cl", "Br", "[nH]", "[C@@H]", "[C@H]", "[N+]", "[O-]", "%10", "%99", "@@",
			"@TH1", "@AL2", "@SP3", "@TB12", "@OH25", "[2H]", "[se]", "[as]", "[te]",
			":1]", "[Fe+2]", "[Cu++]", "H3", "c1ccccc1", "=", "#", "$", "/", "\\\\", ".", "(", ")",
		};
		FILE	   *dict;

		snprintf(path, sizeof(path), "%s/smiles.dict", outdir);
		dict = fopen(path, "w");
		if (dict == NULL)
			die("cannot write", path);
		for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
			fprintf(dict, "\"%s\"\n", tokens[i]);
		fclose(dict);
	}
}

int
main(int argc, char **argv)
{
	char		path[4096];

	if (argc < 2 || argc > 3)
	{
		fprintf(stderr, "usage: make_seeds OUTDIR [DATA_DIR]\n");
		return 2;
	}
	outdir = argv[1];
	make_dir(outdir);
	snprintf(path, sizeof(path), "%s/checkpoint", outdir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/smiles", outdir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/protein", outdir);
	make_dir(path);

	make_checkpoints();
	make_strings(argc == 3 ? argv[2] : NULL);
	return 0;
}
