# OphAI Clinic: `make run` runs the app, `make test` runs the whole test suite.
# Both do all set-up first (venv, pinned requirements, system packages, database, translations).
PY := .venv/bin/python

.PHONY: run test setup python system migrate check lint format bench audit

run: setup
	scripts/run.sh

test: python system
	$(PY) manage.py compilemessages --ignore=.venv -v 0
	$(PY) -m pytest $(PYTEST_ARGS)

setup: python system
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py sync_roles
	$(PY) manage.py compilemessages --ignore=.venv -v 0
	$(PY) manage.py register_model --bundled --activate-if-none
	$(PY) manage.py bootstrap_users
	$(PY) manage.py seed_demo

python:
	scripts/setup_python.sh

system:
	scripts/install_system_packages.sh

# Static checks CI runs beside the tests.
check: python
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

# Known vulnerabilities in the pinned requirements (needs PyPI's JSON API or OSV).
audit: python
	scripts/audit_dependencies.sh

format: python
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
