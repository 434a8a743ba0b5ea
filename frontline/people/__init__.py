"""The people: departments, employees and absences, as HR's roster says.

* :mod:`~frontline.people.roster_csv`: reading and checking the roster CSV files (pure).
* :mod:`~frontline.people.roster`: importing a checked roster into the database (all or nothing).
* :mod:`~frontline.people.directory`: looking departments and employees up.
* :mod:`~frontline.people.events`: the ``employee.hired`` event that starts onboarding.
"""
