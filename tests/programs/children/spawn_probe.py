"""Start one child Python, which takes locks as argv[1] says ("none", "acyclic" or "cycle"), and
print the child's answer: was networkx imported by the time the child's report was written?"""
import subprocess
import sys

TAKE = {
    "none": "a = threading.Lock()\nwith a: pass\n",
    "acyclic": "a, b = threading.Lock(), threading.Lock()\nwith a:\n    with b: pass\n",
    "cycle": ("a = threading.Lock()\nb = threading.Lock()\n"
              "with a:\n    with b: pass\nwith b:\n    with a: pass\n"),
}

# Registered before `import threading` switches lockwatch on, so it runs after lockwatch's own
# exit handler (atexit runs handlers last in, first out): it sees what writing the report imported.
PROBE = ("import atexit, sys\n"
         "atexit.register(lambda: print('lockwatch', 'lockwatch.control' in sys.modules,"
         " 'networkx', 'networkx' in sys.modules))\n"
         "import threading\n")

child = subprocess.run([sys.executable, "-c", PROBE + TAKE[sys.argv[1]]], capture_output=True, text=True,
                       timeout=120)
print(child.stdout.strip())
sys.stderr.write(child.stderr)
