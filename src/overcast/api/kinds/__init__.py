"""One module per Neutron resource: its API schema (``SCHEMA``) and behaviour."""
