"""The Ray runtime (docs/architecture.md section 7), the only package that imports ``ray``:
``cluster`` (joining, stdout), ``host`` (the node host, a plain class), ``actors`` (the actor
classes, their start and teardown), ``windows`` (the window driver), ``sides`` (side chains
whose state lives on their hosts or chain drivers) and ``run`` (``run_ray``)."""
