# Two commands matter (see README): `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint strip student bench checkpoints clean colab book explorer inspector

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[notebooks,course,test]'
	touch $(STAMP)

## make run: execute every notebook on the toy default; executed copies and figures go to outputs/
run: $(STAMP)
	$(PY) scripts/run_notebooks.py --out outputs $(if $(SMOKE),--smoke,)

## make test: lint, then every test (notebooks in smoke mode included)
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

## make strip: remove outputs and execution counts from notebooks/ (run before committing)
strip: $(STAMP)
	$(PY) scripts/strip_notebooks.py notebooks/*.ipynb

## make student: the students' notebooks (solutions, model answers, hidden tests and outputs removed) -> student/
student: $(STAMP)
	$(PY) scripts/make_student.py --out student

## make clean: remove what the tools made; student/ only if every notebook in it is as make student wrote it
clean:
	rm -rf outputs _build .pytest_cache .ruff_cache
	test ! -e student || $(PY) -m ca2sis_lib.owned_folder remove student --tool scripts/make_student.py

## make colab REPO=owner/name [BRANCH=main]: set where the repository lives (pyproject.toml [project.urls])
## and write it into every notebook's first cell and Colab badge, README.md and docs/
colab: $(STAMP)
	$(PY) scripts/colab.py $(if $(REPO),--repo $(REPO),) $(if $(BRANCH),--branch $(BRANCH),)

## make book: the course site from the executed notebooks of `make run` (outputs/) and docs/ -> _build/site
book: $(STAMP)
	$(PY) scripts/build_site.py --executed outputs --out _build/site

## make explorer: the site's in-browser explorer alone -> _build/explorer (serve it: python -m http.server -d _build)
explorer: $(STAMP)
	$(PY) scripts/build_explorer.py --out _build/explorer

## make inspector [CHECKPOINT=official:<path> DATA=<folder>] [PORT=8866]: the attention inspector and the
## style-and-shape editor as a web app without code (Voila), on the shipped toy model by default; the
## JupyterLab-only extensions that nbgrader and notebook install are kept out of the page (they fail there)
inspector: $(STAMP)
	JUPYTER_PATH='$(CURDIR)/app/jupyter' CA2SIS_EXPORT_DIR='$(CURDIR)/outputs/lecture' CA2SIS_CHECKPOINT='$(CHECKPOINT)' CA2SIS_DATA='$(or $(DATA),toy)' $(PY) -m voila app/lecture.ipynb \
		--no-browser --port=$(or $(PORT),8866) --Voila.ip=$(or $(HOST),127.0.0.1) --show_tracebacks=True --template=ca2sis \
		--VoilaConfiguration.extension_denylist="['@jupyter/nbgrader','@jupyter-notebook/lab-extension']"

## make bench: CPU (and, where present, CUDA) benchmarks -> benchmarks/results/
bench: $(STAMP)
	$(PY) benchmarks/bench.py

## make checkpoints [ONLY="ca2sis_tiny_toy_mapping ..."]: train, export and evaluate the shipped toy models
## (on 2 cores: CA²-SIS 49 min, SEAN 22, the toy parser 17, the mapping network 15; quality.json records each)
checkpoints: $(STAMP)
	$(PY) scripts/make_checkpoints.py --runs runs $(if $(ONLY),--only $(ONLY),)
