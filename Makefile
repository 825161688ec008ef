# Two commands do all setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test stress lint bench figures clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/perpabm demo
	$(BIN)/perpabm run --scenario default --paths 20 --seed 1 --progress

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The property-based tests with ten times the examples (hypothesis profile "stress").
stress: $(STAMP)
	PERPABM_HYPOTHESIS_PROFILE=stress $(BIN)/python -m pytest -q \
		tests/test_model_properties.py tests/test_exchange_properties.py

lint: $(STAMP)
	$(BIN)/ruff check .

# The benchmark suite: prints one table (the machine, ratios first, figures with their
# targets or goals) and writes benchmarks/results/bench.json; `--quick` is a smoke test of it.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Every experiment's figures and tables, at the path counts the README quotes.
figures: $(STAMP)
	$(BIN)/python experiments/vault_cap/run.py --paths 32 --seed 1
	$(BIN)/python experiments/who_is_hit/run.py --paths 16 --seed 1
	$(BIN)/python experiments/ranking_rules/run.py --paths 64 --seed 1
	$(BIN)/python experiments/liquidator_vault/run.py --paths 32 --seed 1
	$(BIN)/python experiments/population/run.py --paths 4 --seed 1
	$(BIN)/python experiments/adl_accounts/run.py --paths 32 --seed 1
	$(BIN)/python experiments/fund_size/run.py --paths 32 --seed 7
	$(BIN)/python experiments/leverage/run.py --paths 24 --seed 1
	$(BIN)/python experiments/volatility/run.py --paths 24 --seed 1
	$(BIN)/python experiments/time_step/run.py --paths 96 --seed 1
	$(BIN)/python experiments/leverage_tails/run.py --seeds 8
	$(BIN)/python experiments/calibration/run.py --paths 16 --seed 1
	cp experiments/calibration/oct10_2025_calibrated.toml perpabm/scenarios/
	$(BIN)/python experiments/sensitivity/run.py --points 64 --paths 4 --seed 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find perpabm -name '*.nbi' -delete -o -name '*.nbc' -delete  # compiled kernels
