.PHONY: run test bench-api lint fmt
run:   ## install, start the embedded services, migrate, serve on 127.0.0.1:8000
	bash scripts/run.sh
test:  ## install, start the test services, run the suite
	bash scripts/test.sh
bench-api:  ## the API load benchmark by hand on a private stack: make bench-api ARGS="--clients 50 --seconds 30 --json"
	bash scripts/bench_api.sh $(ARGS)
lint:
	.venv/bin/ruff check .
fmt:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
