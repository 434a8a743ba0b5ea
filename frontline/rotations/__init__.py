"""Support rotations: who rotates when, and HR's say over it.

* :mod:`~frontline.rotations.solver`: the planner, a pure LP/MIP over plain data (no database).
* :mod:`~frontline.rotations.inputs`: the solver's input built from roster and rotation rows (pure).
* :mod:`~frontline.rotations.service`: the planning service (load -> solver input -> solve -> write).
* :mod:`~frontline.rotations.overrides`: HR's move, swap, defer, exempt, lock, unlock and mentor re-pairing.
* :mod:`~frontline.rotations.onboarding`: the pending new hires and their placement by the full planner.
* :mod:`~frontline.rotations.export`: the plan as JSON or CSV records.
* :mod:`~frontline.rotations.lifecycle`, :mod:`~frontline.rotations.weeks`: rotation states and week arithmetic.
* :mod:`~frontline.rotations.queries`, :mod:`~frontline.rotations.timeline`, :mod:`~frontline.rotations.dashboard`:
  what the console reads (a rotation's details, the plan timeline, the dashboard figures).
"""
