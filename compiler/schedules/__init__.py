"""Parameterised TIR schedules: one rule per kind of fused PrimFunc, with its knob space.

``base`` defines the rule interface (``ScheduleRule``: ``matches -> Workload``, ``space``,
``default``, ``apply``), ``registry`` picks a rule per PrimFunc and applies default or tuned
configs, ``cpu/`` holds the CPU rules (one op per module).
"""
