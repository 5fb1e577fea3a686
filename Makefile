.PHONY: run test lint fmt
run:   ## install, start the embedded services, migrate, serve on 127.0.0.1:8000
	bash scripts/run.sh
test:  ## install, start the test services, run the suite
	bash scripts/test.sh
lint:
	.venv/bin/ruff check .
fmt:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
