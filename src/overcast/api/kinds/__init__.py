"""One module per Neutron resource: its API schema (``KIND``) and behaviour."""
