"""The shipped toy models as ONNX graphs for the course site's in-browser explorer (site/explorer/).

    graphs.py        the models cut where the course cuts them: style encoder, mask embedder, decoder
    half_storage.py  store float32 weights that are exactly half-precision values as float16 (lossless)
    verify.py        each graph under onnxruntime against the model's own methods in torch
    export.py        export, verify and write the graphs and their manifest; is an export current?
    samples.py       toy faces (image and label map) for the page, and the palettes it offers

Everything here needs ``onnx``/``onnxscript``/``onnxruntime`` only when it runs (``pip install
-e '.[course]'``): ``import ca2sis_lib`` never imports them.
"""
