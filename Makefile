# keyrot: `make demo` rehearses the whole system locally; `make test` runs the suite.
#
# Every install comes from a lock file with exact versions and sha256 hashes (requirements/*.txt, generated from
# pyproject.toml by `make lock`): never from the ranges in pyproject.toml. .venv is rebuilt from scratch whenever
# the lock or pyproject.toml is newer than it, so it never carries a package the lock no longer names.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/dev.txt
# The one way anything is installed from a lock (tests/infra/test_lock.py runs these flags against a local index).
PIP_LOCKED := -m pip install --quiet --disable-pip-version-check --require-hashes
# keyrot itself, from this checkout, built by the locked setuptools: nothing unpinned is fetched.
PIP_SELF   := -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation

.PHONY: test demo sandbox sandbox-down demo-soak soak bench lint lock lock-upgrade clean manifest verify-aws

$(STAMP): $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; keyrot needs Python 3.11+" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_LOCKED) -r $(LOCK)
	$(BIN)/python $(PIP_SELF) -e .
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m lab.demo

# The playground: the rehearsal's stack kept running on 127.0.0.1 (prints the export lines); stop it with sandbox-down.
sandbox: $(STAMP)
	$(BIN)/python -m lab.sandbox up

# No $(STAMP) here: stopping a sandbox must never rebuild the virtualenv it runs from.
sandbox-down:
	$(BIN)/python -m lab.sandbox down

# The rehearsal 20 times in a row: passes and p50/p95 into bench/results.json (about 20 minutes; not in test or bench).
demo-soak: $(STAMP)
	$(BIN)/python -m bench.demo_soak $(SOAK_ARGS)

# The stateful lifecycle proof at length: many more, longer random sequences than `make test` runs (up to an hour).
soak: $(STAMP)
	KEYROT_SOAK=1 $(BIN)/python -m pytest tests/prove/test_lifecycle_stateful.py -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

# ruff, then mypy as pyproject.toml's [tool.mypy] sets it (strict over keyrot and infra; tests/unit/test_types.py too).
lint: $(STAMP)
	$(BIN)/ruff check lambdas infra tests bench
	$(BIN)/mypy --config-file pyproject.toml

# Regenerate the locks from pyproject.toml, keeping every version the current locks hold unless pyproject.toml no
# longer allows it (`make lock-upgrade` takes the newest releases instead), then the Lambda's pins from the lock.
LOCK_VENV := build/lock-venv
PIP_COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet

$(LOCK_VENV)/.installed: requirements/lock-tools.txt
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python $(PIP_LOCKED) -r requirements/lock-tools.txt
	@touch $@

lock: $(LOCK_VENV)/.installed
	$(PIP_COMPILE) $(LOCK_FLAGS) --all-extras -o requirements/dev.txt pyproject.toml
	$(PIP_COMPILE) $(LOCK_FLAGS) --extra cli --extra lambda --extra pulumi -c requirements/dev.txt \
		-o requirements/deploy.txt pyproject.toml
	$(PIP_COMPILE) $(LOCK_FLAGS) --no-config --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements/lock-tools.txt requirements/lock-tools.in
	PYTHONPATH=lambdas $(LOCK_VENV)/bin/python -m infra.lambda_requirements

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

# The runtime files the Lambda archive ships (keyrot/pulumi/data/lambda-files.txt), from `git ls-files`: run after
# adding, moving or removing a module under lambdas/keyrot (tests/infra/test_archive_manifest.py says when).
manifest: $(STAMP)
	$(BIN)/python -m infra.lambda_manifest

# Check, in a real sandbox AWS account and a throwaway OpenAI project, what this repository cannot check offline
# (README: "Not verified here"): deploys a temporary environment, rotates, revokes, fires an alarm, destroys it all.
# Never run by `make test` or CI. It refuses without the flag, and names the account first:
#   make verify-aws VERIFY_ARGS="--i-understand-this-creates-resources --openai-project proj_... --notify-email you@..."
# The admin key comes from $KEYROT_VERIFY_ADMIN_KEY or a hidden prompt. Needs the Pulumi CLI and AWS credentials.
verify-aws: $(STAMP)
	$(BIN)/python -m keyrot.pulumi.verify $(VERIFY_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
