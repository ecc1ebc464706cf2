-- ---------------------------------------------------------------------------
-- Citus: every model on every worker (docs/citus.md)

-- The cluster's copies of the coordinator's models.  moe_distribute() makes
-- it a Citus reference table and fills it, so Citus keeps a copy on every
-- node, nodes added later included; a worker reads its copy (the local
-- shard) when its own moe.models lacks an id.  Empty and unused without
-- Citus.
CREATE TABLE moe.model_copies (
    id          bigint PRIMARY KEY,
    params_md5  text NOT NULL,
    checkpoint  bytea NOT NULL,
    copied_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE moe.model_copies ALTER COLUMN checkpoint SET STORAGE EXTERNAL;
COMMENT ON TABLE moe.model_copies IS
    'Citus: the coordinator''s models as a reference table on every node, filled by moe_distribute()';

CREATE FUNCTION moe_distribute(model bigint DEFAULT NULL)
RETURNS TABLE (node text, model_id bigint, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the rows travel as SQL text: read back the same on the worker
SET datestyle = 'ISO, YMD'
SET bytea_output = 'hex'
AS $$
DECLARE
    w record;
    m record;
    here text;
    there text;
    ok boolean;
    answer text;
    blob bytea;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'moe_distribute needs the citus extension in this database',
            HINT = 'On a single server every model is already where it is scored.';
    END IF;
    IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'moe_distribute runs on the coordinator',
            HINT = 'Call it where the models are trained and imported.';
    END IF;
    IF model IS NOT NULL AND NOT EXISTS (SELECT 1 FROM moe.models x WHERE x.id = model) THEN
        RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('model %s does not exist', model);
    END IF;
    -- a reference table: Citus puts a copy on every node, and on every node
    -- added later before it moves shards there
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid = 'moe.model_copies'::regclass) THEN
        PERFORM pg_catalog.create_reference_table('moe.model_copies');
    END IF;
    -- each model's fingerprint once; the cluster's copy, then every worker's own
    FOR m IN SELECT x.id, (@extschema@.moe_model_info(x.id)).params_md5 AS md5
               FROM moe.models x WHERE model IS NULL OR x.id = model ORDER BY x.id LOOP
        SELECT c.params_md5 INTO there FROM moe.model_copies c WHERE c.id = m.id;
        IF there IS NULL THEN
            SELECT x.checkpoint INTO blob FROM moe.models x WHERE x.id = m.id;
            INSERT INTO moe.model_copies (id, params_md5, checkpoint) VALUES (m.id, m.md5, blob);
            node := 'every node'; model_id := m.id; action := 'copied';
            RETURN NEXT;
        ELSIF there = m.md5 THEN
            node := 'every node'; model_id := m.id; action := 'present';
            RETURN NEXT;
        ELSE
            RAISE EXCEPTION USING ERRCODE = '55000',
                MESSAGE = format('moe.model_copies holds another model under id %s', m.id),
                DETAIL = format('Its params_md5 is %s, this server''s %s.', there, m.md5),
                HINT = format('Delete it (DELETE FROM moe.model_copies WHERE id = %s), then distribute again.', m.id);
        END IF;
        FOR w IN SELECT n.nodename, n.nodeport FROM pg_catalog.pg_dist_node n
                  WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0 ORDER BY n.nodeid LOOP
            -- a worker's own moe.models comes first: the same weights, others, or nothing
            SELECT r.success, r.result INTO ok, here
              FROM pg_catalog.master_run_on_worker(ARRAY[w.nodename], ARRAY[w.nodeport],
                       ARRAY[format('SELECT coalesce((SELECT (%I.moe_model_info(x.id)).params_md5 FROM moe.models x WHERE x.id OPERATOR(pg_catalog.=) %s), %L)',
                                    '@extschema@', m.id, 'none')], false) r;
            IF NOT ok THEN
                RAISE EXCEPTION USING ERRCODE = '08000',
                    MESSAGE = format('could not ask worker %s:%s for model %s', w.nodename, w.nodeport, m.id),
                    DETAIL = here;
            END IF;
            IF here = m.md5 THEN
                node := format('%s:%s', w.nodename, w.nodeport); model_id := m.id; action := 'present';
                RETURN NEXT;
                CONTINUE;
            END IF;
            IF here <> 'none' THEN
                RAISE EXCEPTION USING ERRCODE = '55000',
                    MESSAGE = format('worker %s:%s holds another model under id %s', w.nodename, w.nodeport, m.id),
                    DETAIL = format('Its params_md5 is %s, this server''s %s.', here, m.md5),
                    HINT = 'Drop that model on the worker (it is not this server''s), then distribute again.';
            END IF;
            -- the row as it is here, id included, so the deployed names can
            -- point at it; the worker's identity moves past it
            SELECT r.success, r.result INTO ok, answer
              FROM pg_catalog.master_run_on_worker(ARRAY[w.nodename], ARRAY[w.nodeport], ARRAY[
                       (SELECT format('INSERT INTO moe.models (id, name, dataset, fold, config, metrics, created_at, created_by, checkpoint) '
                                      'VALUES (%s, %L, %L, %L, %L, %L, %L, %L, %L); '
                                      'SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(''moe.models'', ''id''), '
                                      'greatest(%s, (SELECT pg_catalog.max(id) FROM moe.models)))',
                                      x.id, x.name, x.dataset, x.fold, x.config, x.metrics, x.created_at, x.created_by,
                                      x.checkpoint, x.id)
                          FROM moe.models x WHERE x.id = m.id)], false) r;
            IF NOT ok THEN
                RAISE EXCEPTION USING ERRCODE = '08000',
                    MESSAGE = format('could not copy model %s to worker %s:%s', m.id, w.nodename, w.nodeport),
                    DETAIL = answer;
            END IF;
            node := format('%s:%s', w.nodename, w.nodeport); model_id := m.id; action := 'copied';
            RETURN NEXT;
        END LOOP;
    END LOOP;
    -- copies of models no longer here go (all models only)
    IF model IS NULL THEN
        FOR m IN SELECT c.id FROM moe.model_copies c ORDER BY c.id LOOP
            IF NOT EXISTS (SELECT 1 FROM moe.models x WHERE x.id = m.id) THEN
                DELETE FROM moe.model_copies c WHERE c.id = m.id;
                node := 'every node'; model_id := m.id; action := 'removed';
                RETURN NEXT;
            END IF;
        END LOOP;
    END IF;
    FOR w IN SELECT n.nodename, n.nodeport FROM pg_catalog.pg_dist_node n
              WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0 ORDER BY n.nodeid LOOP
        -- the names, pointing where they point here
        SELECT r.success, r.result INTO ok, answer
          FROM pg_catalog.master_run_on_worker(ARRAY[w.nodename], ARRAY[w.nodeport], ARRAY[
                   coalesce((SELECT string_agg(format('INSERT INTO moe.deployments (name, model_id, owner) VALUES (%L, %s, %L) '
                                                      'ON CONFLICT (name) DO UPDATE SET model_id = EXCLUDED.model_id '
                                                      'WHERE moe.deployments.model_id IS DISTINCT FROM EXCLUDED.model_id',
                                                      d.name, d.model_id, d.owner), '; ' ORDER BY d.name)
                               FROM moe.deployments d WHERE model IS NULL OR d.model_id = model), 'SELECT 1')], false) r;
        IF NOT ok THEN
            RAISE EXCEPTION USING ERRCODE = '08000',
                MESSAGE = format('could not copy the deployed names to worker %s:%s', w.nodename, w.nodeport),
                DETAIL = answer;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION moe_distribute(bigint) IS
    'Citus: copy every model (or one) and the deployed names to every worker under the same ids, and put the models in moe.model_copies, a reference table that reaches nodes added later; the same weights are left, another model under the same id is an error';
REVOKE ALL ON FUNCTION moe_distribute(bigint) FROM PUBLIC;
