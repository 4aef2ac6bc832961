"""The playground: the rehearsal's dev stack kept running on 127.0.0.1, for a person to drive.

    python -m lab.sandbox up      # provision, put the admin key, apply the guardrails, first rotations; print exports
    python -m lab.sandbox tick    # run the monitor once, show what on-call received
    python -m lab.sandbox env     # the `export` lines again (eval "$(python -m lab.sandbox env)")
    python -m lab.sandbox down    # stop it: no process and no port left

`make sandbox` and `make sandbox-down` run the first and the last.
"""
