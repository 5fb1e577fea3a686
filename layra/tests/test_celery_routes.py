from layra.celery import app


def test_pipeline_steps_go_to_their_queues_and_the_rest_to_default():
    app.loader.import_default_modules()
    router = app.amqp.router
    assert router.route({}, "knowledge.ingest_file")["queue"].name == "ingest"
    assert router.route({}, "knowledge.embed_file")["queue"].name == "gpu"
    for name in ("knowledge.purge_file", "workflows.run_execute", "operations.nightly_cleanup"):
        assert name in app.tasks
        assert router.route({}, name)["queue"].name == "default"
