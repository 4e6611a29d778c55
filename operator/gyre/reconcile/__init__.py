"""Pure reconcile decisions: `plan(observed) -> Plan` per kind. No I/O, no kopf, no Kubernetes client.

A controller observes (its object, its children, the objects it depends on), calls its kind's plan function, and
applies what comes back. Everything a reconcile decides is therefore testable on plain data.
"""
