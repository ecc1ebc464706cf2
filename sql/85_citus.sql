-- ---------------------------------------------------------------------------
-- Citus: every model on every worker (docs/citus.md)

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
    ok boolean;
    answer text;
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
    -- each model's fingerprint once, then every worker
    FOR m IN SELECT x.id, (@extschema@.moe_model_info(x.id)).params_md5 AS md5
               FROM moe.models x WHERE model IS NULL OR x.id = model ORDER BY x.id LOOP
        FOR w IN SELECT n.nodename, n.nodeport FROM pg_catalog.pg_dist_node n
                  WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0 ORDER BY n.nodeid LOOP
            -- what the worker holds under this id: the same weights, others, or nothing
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
            -- the row as it is here, id included; the worker's identity moves past it
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
    'Citus: copy every model (or one) and the deployed names to every worker under the same ids; models a worker already holds with the same weights are left, another model under the same id is an error';
REVOKE ALL ON FUNCTION moe_distribute(bigint) FROM PUBLIC;
