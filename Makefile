# Two entry points a fresh machine needs: `make demo` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: demo django-demo flask-demo spa-demo test lint install system-deps screenshots bench messages security-matrix

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m examples.starlette_app

django-demo: $(STAMP)
	cd examples/django_app && ../../$(PY) manage.py rundemo

flask-demo: $(STAMP)
	$(PY) -m examples.flask_app.app

spa-demo: $(STAMP)
	$(PY) -m examples.spa.app

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: system-deps $(BENCH_STAMP)
	bash bench/system-deps.sh
	$(PY) -m bench.run

# The catalog template from the sources, every language's catalog updated from it (new
# messages empty, removed ones dropped: tests/test_catalog.py then lists what to translate),
# and compiled to the .mo files the package ships.
LOCALES := src/mfa_middleware/locale
messages: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k NP_:1,2 --no-location --sort-output --omit-header \
		-o $(LOCALES)/mfa_middleware.pot .
	$(VENV)/bin/pybabel update -D mfa_middleware -i $(LOCALES)/mfa_middleware.pot -d $(LOCALES) \
		--no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date
	$(VENV)/bin/pybabel compile -D mfa_middleware -d $(LOCALES) --statistics

security-matrix: $(STAMP)
	$(PY) scripts/security_matrix.py

screenshots: $(STAMP) system-deps
	$(PY) scripts/screenshots.py

lint: $(STAMP)
	$(PY) -m ruff check src tests examples scripts bench
	$(PY) -m mypy src
	$(VENV)/bin/lint-imports

system-deps:
	bash scripts/system-deps.sh

test: system-deps lint
	$(PY) -m pytest --cov --cov-branch --cov-report=term --cov-fail-under=90
