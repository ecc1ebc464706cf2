-- More featurizers: ECFP fingerprints, conjoint triad, CKSAAP.  Shapes,
-- values, atom-order invariance, determinism, NULLs, every error.
BEGIN;
SELECT plan(50);

-- ---- ECFP ------------------------------------------------------------------
SELECT is(array_length(moe_featurize_ecfp('CCO'), 1), 2048, 'ECFP vector has the default 2048 buckets');
SELECT is(array_length(moe_featurize_ecfp('CCO', 2, 64), 1), 64, 'dim sets the number of buckets');
SELECT is(array_length(moe_featurize_ecfp('CCO', dim => 1), 1), 1, 'dim 1 is allowed');
-- CCO: CH3, CH2 and OH are three different atoms; radius 2 adds two more layers of three.
SELECT is((SELECT count(*) FROM unnest(moe_featurize_ecfp('CCO', 0, 1048576)) v WHERE v <> 0), 3::bigint,
          'CCO at radius 0 has three distinct atom identifiers');
SELECT is((SELECT count(*) FROM unnest(moe_featurize_ecfp('CCO', 2, 1048576)) v WHERE v <> 0), 9::bigint,
          'CCO at radius 2 has nine distinct identifiers');
SELECT is((SELECT max(v) FROM unnest(moe_featurize_ecfp('CCC', 0, 1048576)) v), ln(3)::real,
          'the two CH3 of propane share an identifier: log(1 + 2)');
SELECT is((SELECT array_agg(i ORDER BY i) FROM generate_subscripts(moe_featurize_ecfp('CCO'), 1) i
            WHERE (moe_featurize_ecfp('CCO'))[i] = ln(2)::real),
          '{276,483,602,853,1041,1347,1594,1650,1837}'::int[],
          'CCO lands in the buckets of the worked example in docs/ecfp.md (1-based here)');
SELECT is((moe_featurize_ecfp('CCO', 2, 1))[1], ln(10)::real, 'dim 1: all 3 atoms x 3 radii in one bucket');
SELECT is(moe_featurize_ecfp('CCO'), moe_featurize_ecfp('OCC'), 'atom order does not matter: CCO = OCC');
SELECT is(moe_featurize_ecfp('c1ccccc1O'), moe_featurize_ecfp('Oc1ccccc1'), 'atom order does not matter: phenol');
SELECT is(moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1', 3), moe_featurize_ecfp('Oc1ccc(NC(C)=O)cc1', 3),
          'atom order does not matter: paracetamol at radius 3');
SELECT is(moe_featurize_ecfp('C1CCCC=1'), moe_featurize_ecfp('C=1CCCC1'), 'a ring-bond symbol may sit on either end');
SELECT is(moe_featurize_ecfp('C%10CCCCC%10'), moe_featurize_ecfp('C1CCCCC1'), 'ring-closure numbers carry no chemistry');
SELECT isnt(moe_featurize_smiles('CCO'), moe_featurize_smiles('OCC'), '(the n-gram featurizer does see atom order)');
SELECT isnt(moe_featurize_ecfp('CCO'), moe_featurize_ecfp('COC'), 'ethanol and dimethyl ether differ');
SELECT isnt(moe_featurize_ecfp('CC(=O)O'), moe_featurize_ecfp('CC(=O)[O-]'), 'the formal charge is seen');
SELECT ok((SELECT bool_and(v IN (0, 1)) FROM unnest(moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1', counts => false)) v),
          'counts => false gives 0/1 bits');
SELECT is((SELECT array_agg(i ORDER BY i) FROM generate_subscripts(moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1', counts => false), 1) i
            WHERE (moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1', counts => false))[i] <> 0),
          (SELECT array_agg(i ORDER BY i) FROM generate_subscripts(moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1'), 1) i
            WHERE (moe_featurize_ecfp('CC(=O)Nc1ccc(O)cc1'))[i] <> 0),
          'bits are set exactly where counts are non-zero');
SELECT is(moe_featurize_ecfp('CC1=C2C=C(C=CC2=NN1)C3=CC(=CN=C3)OCC(CC4=CC=CC=C4)N', 4, 4096),
          moe_featurize_ecfp('CC1=C2C=C(C=CC2=NN1)C3=CC(=CN=C3)OCC(CC4=CC=CC=C4)N', 4, 4096),
          'fingerprinting is deterministic');
SELECT is(moe_featurize_ecfp(NULL), NULL, 'NULL SMILES in, NULL out');
SELECT is(moe_featurize_ecfp('CCO', NULL), NULL, 'NULL radius in, NULL out');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CC&C')$$, '22P02',
                 'invalid character "&" at position 3 of SMILES string', 'a bad SMILES character is named with its position');
SELECT throws_ok($$SELECT moe_featurize_ecfp('')$$, '22P02', 'SMILES string is empty', 'an empty SMILES string is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp('C1CC')$$, '22P02',
                 'unclosed ring "1" at position 2 of SMILES string', 'an unclosed ring is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp('C11')$$, '22P02',
                 'ring closure "1" at position 3 of SMILES string bonds an atom to itself (opened at position 2)',
                 'a ring closure to the same atom is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CC)')$$, '22P02',
                 'unmatched ")" at position 3 of SMILES string', 'an unmatched ")" is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp('C(=)C')$$, '22P02',
                 'bond "=" at position 3 of SMILES string is not followed by an atom', 'a dangling bond is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp('C[Xx]')$$, '22P02',
                 'unknown element "Xx" at position 3 of SMILES string', 'an unknown element is an error');
SELECT throws_ok($$SELECT moe_featurize_ecfp(repeat('C', 100001))$$, '22P02',
                 'SMILES string is too long (100001 bytes, at most 100000)', 'more than 100000 characters is refused');
SELECT throws_ok($$SELECT moe_featurize_ecfp(repeat('C', 10001))$$, '22P02',
                 'SMILES string has more than 10000 atoms (atom 10001 at position 10001)', 'more than 10000 atoms is refused');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CCO', 5)$$, '22023',
                 'radius must be between 0 and 4, not 5', 'radius above 4 is refused');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CCO', -1)$$, '22023', NULL, 'a negative radius is refused');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CCO', 2, 0)$$, '22023',
                 'dim must be between 1 and 1048576, not 0', 'dim 0 is refused');
SELECT throws_ok($$SELECT moe_featurize_ecfp('CCO', 2, 1048577)$$, '22023', NULL, 'dim above 2^20 is refused');

-- ---- conjoint triad and CKSAAP -------------------------------------------------
SELECT is(array_length(moe_featurize_protein_triad('MKV'), 1), 343, 'the triad vector has 7^3 values');
-- ACDEF: triads ACD (0,6,5) -> 47, CDE (6,5,5) -> 334, DEF (5,5,1) -> 281 (0-based)
SELECT is(ARRAY[(moe_featurize_protein_triad('ACDEF'))[48], (moe_featurize_protein_triad('ACDEF'))[335],
                (moe_featurize_protein_triad('ACDEF'))[282]], ARRAY[1/3., 1/3., 1/3.]::real[],
          'ACDEF has three triads of a third each, at c1*49 + c2*7 + c3');
SELECT is((SELECT sum(v) FROM unnest(moe_featurize_protein_triad('MKKFFDSRREQGGSGLGSGSSGGGGSTSGLGSGYIGRVF')) v)::numeric(6,4),
          1.0000::numeric(6,4), 'triad frequencies sum to one');
SELECT is((moe_featurize_protein_triad('AXAAA'))[1], 1::real, 'a triad with X is skipped');
SELECT is(moe_featurize_protein_triad('acdef'), moe_featurize_protein_triad('ACDEF'), 'lower case reads as upper case');
SELECT is(array_length(moe_featurize_protein_cksaap('MKV'), 1), 1600, 'CKSAAP has 400 values per gap, gaps 0..3 by default');
SELECT is(array_length(moe_featurize_protein_cksaap('MKV', 5), 1), 2400, 'max_gap 5 gives 2400 values');
SELECT is(ARRAY[(moe_featurize_protein_cksaap('ACD', 1))[2], (moe_featurize_protein_cksaap('ACD', 1))[23],
                (moe_featurize_protein_cksaap('ACD', 1))[403]], '{0.5,0.5,1}'::real[],
          'ACD: AC and CD at gap 0, AD at gap 1');
SELECT is(moe_featurize_protein_cksaap('MKKFFDSRREQGGSGLGSGSSXGGGGSTSGLGSGYIGRVF', 0),
          (moe_featurize_protein('MKKFFDSRREQGGSGLGSGSSXGGGGSTSGLGSGYIGRVF', 2))[21:420],
          'gap 0 is the dipeptide composition of moe_featurize_protein');
SELECT is(moe_featurize_protein_triad(NULL), NULL, 'NULL sequence in, NULL out (triad)');
SELECT is(moe_featurize_protein_cksaap('MKV', NULL), NULL, 'NULL max_gap in, NULL out (CKSAAP)');
SELECT throws_ok($$SELECT moe_featurize_protein_triad('MKV*')$$, '22P02',
                 'invalid character "*" at position 4 of protein sequence', 'a bad residue is named with its position (triad)');
SELECT throws_ok($$SELECT moe_featurize_protein_cksaap('MK V')$$, '22P02',
                 'invalid character " " at position 3 of protein sequence', 'a bad residue is named with its position (CKSAAP)');
SELECT throws_ok($$SELECT moe_featurize_protein_triad('')$$, '22P02', 'protein sequence is empty', 'an empty sequence is an error');
SELECT throws_ok($$SELECT moe_featurize_protein_cksaap('MKV', 6)$$, '22023',
                 'max_gap must be between 0 and 5, not 6', 'max_gap above 5 is refused');

SELECT ok((SELECT bool_and(provolatile = 'i' AND proparallel = 's' AND proisstrict
                           AND obj_description(oid, 'pg_proc') IS NOT NULL) FROM pg_proc
            WHERE proname IN ('moe_featurize_ecfp', 'moe_featurize_protein_triad', 'moe_featurize_protein_cksaap'))
          AND (SELECT count(*) FROM pg_proc
                WHERE proname IN ('moe_featurize_ecfp', 'moe_featurize_protein_triad', 'moe_featurize_protein_cksaap')) = 3,
          'the three featurizers are IMMUTABLE, PARALLEL SAFE, STRICT and commented');

SELECT * FROM finish();
ROLLBACK;
