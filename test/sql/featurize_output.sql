-- Exact featurizer output and error texts.
SELECT moe_featurize_protein('ACDW', 1);
SELECT moe_featurize_protein('ACA', 2) = moe_featurize_protein('aca', 2) AS case_insensitive;
SELECT array_length(moe_featurize_smiles('CC(=O)Oc1ccccc1C(=O)O', 16, 3), 1) AS aspirin_dim,
       (SELECT count(*) FROM unnest(moe_featurize_smiles('CC(=O)Oc1ccccc1C(=O)O', 4096, 1)) v WHERE v > 0) AS distinct_tokens;
SELECT moe_featurize_smiles('CC O');
SELECT moe_featurize_smiles('C1CC)C1');
SELECT moe_featurize_smiles('C%1C');
SELECT moe_featurize_smiles('Cl', 2000000);
SELECT moe_featurize_protein('MKTAYIAKQR1');
SELECT moe_featurize_protein(E'MKT\tA');
SELECT moe_featurize_protein('MKT', 0);
