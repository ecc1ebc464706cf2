-- Featurizers: shapes, values, determinism, and every kind of bad input.
BEGIN;
SELECT plan(24);

SELECT is(array_length(moe_featurize_smiles('CCO'), 1), 1024, 'SMILES vector has the default 1024 buckets');
SELECT is(array_length(moe_featurize_smiles('CCO', 64, 2), 1), 64, 'dim sets the number of buckets');
-- CCO with n <= 2 has four n-grams: C, O, "C C", "C O"; C occurs twice.
SELECT is((SELECT count(*) FROM unnest(moe_featurize_smiles('CCO', 4096, 2)) v WHERE v <> 0), 4::bigint,
          'CCO has four distinct token n-grams up to n = 2');
SELECT ok((SELECT max(v) FROM unnest(moe_featurize_smiles('CCO', 4096, 1)) v) = ln(3)::real,
          'a token seen twice gives log(1 + 2)');
SELECT is(moe_featurize_smiles('c1ccccc1'), moe_featurize_smiles('c2ccccc2'),
          'ring-closure digits carry no chemistry');
SELECT isnt(moe_featurize_smiles('CCl'), moe_featurize_smiles('CCC'), 'Cl is one token');
SELECT is(moe_featurize_smiles('CC(=O)Nc1ccc(O)cc1'), moe_featurize_smiles('CC(=O)Nc1ccc(O)cc1'),
          'featurizing is deterministic');
SELECT is(moe_featurize_smiles(NULL), NULL, 'NULL in, NULL out');
SELECT throws_ok($$SELECT moe_featurize_smiles('CC&C')$$, '22P02',
                 'invalid character "&" at position 3 of SMILES string', 'a bad SMILES character is named with its position');
SELECT throws_ok($$SELECT moe_featurize_smiles('')$$, '22P02', NULL, 'an empty SMILES string is an error');
SELECT throws_ok($$SELECT moe_featurize_smiles('C(C')$$, '22P02', NULL, 'an unclosed branch is an error');
SELECT throws_ok($$SELECT moe_featurize_smiles('[NH4+')$$, '22P02', NULL, 'an unclosed bracket atom is an error');
SELECT throws_ok($$SELECT moe_featurize_smiles('CCO', 0)$$, '22023', NULL, 'dim 0 is refused');
SELECT throws_ok($$SELECT moe_featurize_smiles('CCO', 1024, 9)$$, '22023', NULL, 'max_n above 8 is refused');

SELECT is(array_length(moe_featurize_protein('MKV'), 1), 8420, 'protein vector has 20 + 400 + 8000 values for k = 3');
SELECT is(array_length(moe_featurize_protein('MKV', 2), 1), 420, 'k = 2 gives 20 + 400 values');
SELECT is(moe_featurize_protein('ACD', 1), '{0.33333334,0.33333334,0.33333334,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'::real[],
          'amino-acid composition in the order ACDEFGHIKLMNPQRSTVWY');
SELECT is(moe_featurize_protein('acd', 2), moe_featurize_protein('ACD', 2), 'lower case reads as upper case');
SELECT is((SELECT sum(v) FROM unnest((moe_featurize_protein('MKKFFDSRREQGGSGLGSGSSGGGGSTSGLGSGYIGRVF'))[21:420]) v)::numeric(6,4),
          1.0000::numeric(6,4), 'each k-mer block sums to one');
SELECT is((moe_featurize_protein('AXA', 2))[1], 1::real, 'X is accepted and skipped in k-mers');
SELECT throws_ok($$SELECT moe_featurize_protein('MKV*')$$, '22P02',
                 'invalid character "*" at position 4 of protein sequence', 'a bad residue is named with its position');
SELECT throws_ok($$SELECT moe_featurize_protein('')$$, '22P02', NULL, 'an empty sequence is an error');
SELECT throws_ok($$SELECT moe_featurize_protein('MKV', 4)$$, '22023', NULL, 'k above 3 is refused');

SELECT ok((SELECT bool_and(provolatile = 'i' AND proparallel = 's') FROM pg_proc
            WHERE proname IN ('moe_featurize_smiles', 'moe_featurize_protein')),
          'featurizers are IMMUTABLE and PARALLEL SAFE');

SELECT * FROM finish();
ROLLBACK;
