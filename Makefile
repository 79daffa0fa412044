# The two commands of the README:  make demo  (an example app on a local runtime)  and  make test.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,frameworks]"
	touch $@

install: $(VENV)/.installed

# The FastAPI example started by its own bootstrap, as SCF would, behind the local emulator.
demo: install
	PYTHON="$(CURDIR)/$(PY)" $(PY) -m scf_asgi local --bootstrap examples/fastapi_app/bootstrap --port 8000

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
