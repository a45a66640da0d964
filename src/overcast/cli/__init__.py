"""The ``overcast`` command: a client of the REST API (Neutron v2.0 shapes).

Exports :func:`main`.  Layout: ``main`` (argparse tree, dispatch, pass-through
to ``server``/``agent``/``lab``), ``client`` (HTTP, name-or-id lookup,
errors), ``output`` (tables, json, yaml, value), ``resource`` (the declarative
``Spec`` and the generic verbs), and one module per resource family.
"""

from overcast.cli.main import main

__all__ = ["main"]
