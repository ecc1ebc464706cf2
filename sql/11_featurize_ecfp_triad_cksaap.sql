-- ---------------------------------------------------------------------------
-- More featurizers: circular fingerprints, conjoint triad, CKSAAP (docs/ecfp.md,
-- docs/featurizers.md)

CREATE FUNCTION moe_featurize_ecfp(smiles text, radius integer DEFAULT 2, dim integer DEFAULT 2048,
                                   counts boolean DEFAULT true)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_featurize_ecfp_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurize_ecfp(text, integer, integer, boolean) IS
    'ECFP-style circular fingerprint of a parsed SMILES: every atom''s Morgan identifier at radius 0..radius folded into dim buckets, log(1 + count) or 0/1 bits';

CREATE FUNCTION moe_featurize_protein_triad(sequence text)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_featurize_protein_triad_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurize_protein_triad(text) IS
    'Conjoint triad (Shen et al. 2007): frequencies of the 343 triads of 7 amino-acid classes, summing to 1';

CREATE FUNCTION moe_featurize_protein_cksaap(sequence text, max_gap integer DEFAULT 3)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_featurize_protein_cksaap_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurize_protein_cksaap(text, integer) IS
    'Composition of k-spaced amino-acid pairs, k = 0..max_gap: 400 values per gap, each block summing to 1';
