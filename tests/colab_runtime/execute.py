"""Execute one notebook as a Colab user would, with nbclient (Colab has no papermill).

    python execute.py NOTEBOOK EXECUTED WORKDIR PARAMETERS_JSON CELL_TIMEOUT_S

Run by the emulated runtime's own Python (tests/test_colab_runtime.py): the values of
PARAMETERS_JSON are written into a cell after the one tagged ``parameters`` (what a student does
by editing that cell), and the notebook runs top to bottom. An exception stops the run; every
output, errors raised while *displaying* included, stays in EXECUTED for the test to read.
"""

import json
import sys

import nbclient
import nbformat

source, executed, workdir, parameters, timeout = sys.argv[1:6]
nb = nbformat.read(source, as_version=4)
tagged = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
assignments = "\n".join(f"{name} = {value!r}" for name, value in json.loads(parameters).items())
nb.cells.insert(tagged + 1, nbformat.v4.new_code_cell(f"# set by the test\n{assignments}"))
client = nbclient.NotebookClient(nb, timeout=int(timeout), kernel_name="python3",
                                 resources={"metadata": {"path": workdir}})
try:
    client.execute()
finally:
    nbformat.write(nb, executed)
