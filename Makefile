# Two commands matter (see README): `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# TORCH_INDEX=cpu: torch and torchvision from PyTorch's CPU-only wheels, without the 4 GiB of CUDA libraries and triton
# that PyPI's Linux torch brings (benchmarks/results/install_size.md); another value is used as the index URL. Give it
# when .venv is created (`rm -rf .venv` first): an installed torch is kept. Default: torch from PyPI.
TORCH_INDEX ?=
TORCH_INDEX_URL := $(if $(filter cpu,$(TORCH_INDEX)),https://download.pytorch.org/whl/cpu,$(TORCH_INDEX))
comma := ,
# One install stamp per set of extras, so each command installs only what it needs (README, "Install"):
RUN_STAMP    := $(VENV)/.installed-notebooks
COURSE_STAMP := $(VENV)/.installed-notebooks+course
STAMP        := $(VENV)/.installed-notebooks+course+test

.PHONY: run test lint strip student bench checkpoints clean colab book explorer inspector

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(if $(TORCH_INDEX_URL),$(PY) -m pip install torch torchvision --index-url $(TORCH_INDEX_URL),)
	$(PY) -m pip install -e '.[$(subst +,$(comma),$*)]'
	touch $@

## make run: execute every notebook on the toy default; executed copies and figures go to outputs/
run: $(RUN_STAMP)
	$(PY) scripts/run_notebooks.py --out outputs $(if $(SMOKE),--smoke,)

## make test: lint, then every test (notebooks in smoke mode included)
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

## make strip: remove outputs and execution counts from notebooks/ (run before committing)
strip: $(RUN_STAMP)
	$(PY) scripts/strip_notebooks.py notebooks/*.ipynb

## make student: the students' notebooks (solutions, model answers, hidden tests and outputs removed) -> student/
student: $(COURSE_STAMP)
	$(PY) scripts/make_student.py --out student

## make clean: remove what the tools made; student/ only if every notebook in it is as make student wrote it
clean:
	rm -rf outputs _build .pytest_cache .ruff_cache
	test ! -e student || $(PY) -m ca2sis_lib.owned_folder remove student --tool scripts/make_student.py

## make colab REPO=owner/name [BRANCH=main] [STUDENT_BRANCH=student] [STUDENT_REPO=owner/name]: set where the
## repository lives (pyproject.toml [project.urls]) and write it into every notebook's first cell and Colab badge,
## README.md and docs/; STUDENT_*: where the students' copy lives ([tool.ca2sis]; `make student` writes it)
colab: $(RUN_STAMP)
	$(PY) scripts/colab.py $(if $(REPO),--repo $(REPO),) $(if $(BRANCH),--branch $(BRANCH),) \
		$(if $(STUDENT_BRANCH),--student-branch $(STUDENT_BRANCH),) $(if $(STUDENT_REPO),--student-repo $(STUDENT_REPO),)

## make book: the course site from the executed notebooks of `make run` (outputs/) and docs/ -> _build/site
book: $(COURSE_STAMP)
	$(PY) scripts/build_site.py --executed outputs --out _build/site

## make explorer: the site's in-browser explorer alone -> _build/explorer (serve it: python -m http.server -d _build)
explorer: $(STAMP)
	$(PY) scripts/build_explorer.py --out _build/explorer

## make inspector [CHECKPOINT=official:<path> DATA=<folder>] [PORT=8866] [HOST=0.0.0.0 TOKEN=<secret>]: the attention
## inspector and the style-and-shape editor as a web app without code (Voila), on the shipped toy model by default;
## on 127.0.0.1 unless HOST says otherwise, and then only with a token (made and printed when TOKEN is not given);
## idle kernels of closed pages are culled; exports go to exports/lecture/ only, which make clean keeps
inspector: $(COURSE_STAMP)
	JUPYTER_PATH='$(CURDIR)/app/jupyter' CA2SIS_EXPORT_DIR='$(CURDIR)/exports/lecture' CA2SIS_CHECKPOINT='$(CHECKPOINT)' \
	CA2SIS_DATA='$(or $(DATA),toy)' $(PY) scripts/serve_lecture.py --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8866) \
		$(if $(TOKEN),--token '$(TOKEN)',)

## make bench: CPU (and, where present, CUDA) benchmarks -> benchmarks/results/
bench: $(RUN_STAMP)
	$(PY) benchmarks/bench.py

## make checkpoints [ONLY="ca2sis_tiny_toy_mapping ..."]: train, export and evaluate the shipped toy models
## (on 2 cores: CA²-SIS 49 min, SEAN 22, the toy parser 17, the mapping network 15; quality.json records each)
checkpoints: $(RUN_STAMP)
	$(PY) scripts/make_checkpoints.py --runs runs $(if $(ONLY),--only $(ONLY),)
