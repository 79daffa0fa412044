# The two commands of the README:  make demo  (an example app on a local runtime)  and  make test.
VENV ?= .venv
PY := $(VENV)/bin/python
# The demo has a venv of its own with only what it needs: scf-asgi[local] and the example's
# requirements (make install's venv has the whole development and framework matrix).
DEMO_VENV ?= .venv-demo
DEMO_PY := $(DEMO_VENV)/bin/python
PORT ?= 8000

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,local,frameworks,speed]"
	touch $@

install: $(VENV)/.installed

$(DEMO_VENV)/.installed: pyproject.toml examples/fastapi_app/requirements.txt
	python3 -m venv $(DEMO_VENV)
	$(DEMO_PY) -m pip install -q --upgrade pip
	$(DEMO_PY) -m pip install -q -e ".[local]" -r examples/fastapi_app/requirements.txt
	touch $@

# The FastAPI example started by its own bootstrap, as SCF would, behind the local emulator
# (the inspector at /_scf/); make demo PORT=8080 for another port.
demo: $(DEMO_VENV)/.installed
	PYTHON="$(CURDIR)/$(DEMO_PY)" $(DEMO_PY) -m scf_asgi local --bootstrap examples/fastapi_app/bootstrap --port $(PORT)

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .mypy_cache .ruff_cache
