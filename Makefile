# The README's interface: `make demo` runs the main job, `make test` runs the tests.
# Both install first when needed; `make install` is idempotent (a second run takes seconds).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint gpu-test clean-demo

install: $(STAMP)

# Re-run only when the pinned set or the package metadata changes.
$(STAMP): requirements/lock.txt requirements/nodeps.txt pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'pip>=23' 'setuptools>=77,<81' wheel
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -c "import retinexmamba_mm, mmagic.models; print('retinexmamba_mm', retinexmamba_mm.__version__, 'installed')"
	touch $(STAMP)

demo: install
	$(PY) tools/demo.py

lint: install
	$(VENV)/bin/ruff check retinexmamba_mm tools tests

# pytest exits 5 when it collected no tests: that is a failure for us, not a pass.
test: install lint
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# On the GPU machine (see CONTRIBUTING in README): kernel parity and GPU tests.
gpu-test:
	bash tools/gpu/gpu_test.sh

clean-demo:
	rm -rf data/demo work_dirs/demo
