"""``kernelab explain``: a local web page that shows a trained CNN at work, kernel by kernel.

Draw or upload a digit and watch every feature map; click a pixel of any layer for the exact
arithmetic behind it; edit a kernel (typed values, or Sobel, Gaussian, Laplacian, Gabor...)
and see every downstream map and the prediction change. The parts:

* ``source.py``: the run (or ONNX file) loaded once, read-only; one model copy per tab;
* ``compute.py``, ``kernel_view.py``, ``inputs.py``, ``training.py``: what the page shows,
  computed with the engine, as plain dicts; ``timeline_view.py``: a tab's model taken to a
  recorded step of the run's kernel timeline;
* ``limits.py``: what a request may cost (work, memory, requests in flight), checked first;
* ``api.py``: the JSON API as methods; ``app.py``: the web layer (Starlette) and the server;
* ``live.py`` (``kernelab explain --train``, ``kernelab studio``): the Train view's runs, one
  per tab, trained in a worker thread (``live_run.py``) of a child process
  (``live_process.py``) from the page's choices (``live_config.py``), streamed to the page
  (``live_view.py``, ``live_web.py``: Server-Sent Events);
* ``notebook.py``: ``kl.explain``, the page served from a notebook's kernel, in an IFrame;
* ``static/``: the page (HTML, one script, one style sheet; nothing from the internet).

``kernelab explain`` calls :func:`app.serve`. Only this package's web layer needs the
``explain`` extra (Starlette and uvicorn).
"""
