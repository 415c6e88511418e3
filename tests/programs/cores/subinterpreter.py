"""A subinterpreter made while the compiled core runs: it runs the site hook too (LOCKWATCH=1 is
set for the program's children), hence lockwatch, which must leave the main interpreter's core as
it was (its configuration is process-wide C state; a subinterpreter takes the pure-Python core)."""
import threading

import _testcapi

L = threading.Lock()
with L:
    pass
_testcapi.run_in_subinterp("import threading\nlock = threading.Lock()\nwith lock:\n    pass\n")
for _ in range(1000):
    with L:
        pass
print("FINISHED")
