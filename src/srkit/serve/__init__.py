"""``srkit serve``: a local web page to compare SR models on your own images.

:mod:`.jobs` holds the catalogue, the upload checks and the queue that runs one job at a time;
:mod:`.app` the Starlette application and ``serve()``; ``static/`` the page (HTML, CSS and plain
JavaScript, no CDN: it works offline). Needs ``pip install 'srkit[app]'``.
"""
