-- ---------------------------------------------------------------------------
-- Training

CREATE PROCEDURE moe_train(
    dataset text,
    fold integer DEFAULT 0,
    model_name text DEFAULT NULL,
    experts integer DEFAULT 4,
    top_k integer DEFAULT 2,
    lb_method text DEFAULT 'entropy',
    lb_weight real DEFAULT 0.001,
    epochs integer DEFAULT 100,
    batch_size integer DEFAULT 256,
    lr real DEFAULT 0.001,
    lr_schedule text DEFAULT 'cosine',
    weight_decay real DEFAULT 0,
    dropout real DEFAULT 0.1,
    temperature real DEFAULT 1.0,
    patience integer DEFAULT 10,
    seed bigint DEFAULT 42,
    drug_hidden integer[] DEFAULT '{512}',
    protein_hidden integer[] DEFAULT '{512}',
    gate_hidden integer[] DEFAULT '{512,256}',
    expert_hidden integer[] DEFAULT '{512,256}',
    grad_clip real DEFAULT 0,
    deploy boolean DEFAULT true)
AS 'MODULE_PATHNAME', 'moe_train_sql'
LANGUAGE C;
COMMENT ON PROCEDURE moe_train(text, integer, text, integer, integer, text, real, integer, integer,
                               real, text, real, real, real, integer, bigint, integer[], integer[],
                               integer[], integer[], real, boolean) IS
    'Train an MoE affinity model on a dataset; commits one history row per epoch';
