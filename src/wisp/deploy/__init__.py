"""project.yml → desired state → plan → apply.

``project`` reads and validates a project directory, ``build`` turns code on disk
into an exec, ``desired`` shapes the bodies to PUT, ``plan`` compares them with the
server and ``apply`` carries the plan out.
"""
