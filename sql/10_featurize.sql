-- ---------------------------------------------------------------------------
-- Featurizers

CREATE FUNCTION moe_featurize_smiles(smiles text, dim integer DEFAULT 1024, max_n integer DEFAULT 3)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_featurize_smiles_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurize_smiles(text, integer, integer) IS
    'SMILES token n-grams (n = 1..max_n) hashed into dim buckets, log(1 + count)';

CREATE FUNCTION moe_featurize_protein(sequence text, k integer DEFAULT 3)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_featurize_protein_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurize_protein(text, integer) IS
    'Amino-acid 1..k-mer composition (20 + 400 + 8000 values for k = 3)';

CREATE FUNCTION moe_featurizer_spec(spec jsonb, side text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moe_featurizer_spec_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_featurizer_spec(jsonb, text) IS
    'A featurizer spec checked and written out in full, e.g. {"featurizer": "ecfp"} -> {"featurizer": "ecfp", "radius": 2, "dim": 2048, "counts": true}; side is drug or protein';
